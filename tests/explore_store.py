"""A large synthetic store for the explorer's tests (no tests here): the real configs of the figures at two
profiles (quick + gpu: 148 runs, as in a store that ``make figures`` and the shipped gpu bundle filled),
each with tidy records written straight through the store API, no training (README "Stored records").

Rows per run are realistic in kind (accuracy, remaining, a (p, q) PQI grid at global and layer scope,
Gini; ASNI epochs with sparsity) and trimmed in number so the store builds in seconds.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from sparsity_lab.figures.registry import all_figures
from sparsity_lab.report import pipeline
from sparsity_lab.store import ResultsStore

PROFILES = ("quick", "gpu")
LAYERS = ("features.0.weight", "features.3.weight", "classifier.0.weight", "classifier.2.weight")
GRID = [(p, q) for p in (0.25, 0.5, 0.75, 1.0) for q in (1.0, 1.5, 2.0, 3.0) if p < q]


def _row(iteration: int, stage: str, metric: str, scope: str, group: str, value: float,
         p: float = math.nan, q: float = math.nan) -> dict[str, Any]:
    return {"iteration": iteration, "stage": stage, "metric": metric, "scope": scope, "group": group,
            "p": p, "q": q, "value": float(value)}


def iterative_step(t: int, rng: np.random.Generator) -> pd.DataFrame:
    """One pruning iteration's rows, retrained and pruned."""
    rows = []
    remaining = 0.8 ** t
    for stage in ("retrained", "pruned"):
        rows.append(_row(t, stage, "accuracy", "model", "all", 0.9 - 0.02 * t + 0.01 * rng.standard_normal()))
        rows.append(_row(t, stage, "loss", "model", "all", 0.3 + 0.02 * t))
        rows.append(_row(t, stage, "remaining", "model", "all", remaining))
        rows.append(_row(t, stage, "remaining", "global", "all", remaining))
        rows.append(_row(t, stage, "gini", "global", "all", 0.4 + 0.02 * t))
        for p, q in GRID:
            rows.append(_row(t, stage, "pqi", "global", "all", 0.1 + 0.01 * t * p / q, p, q))
            for layer in LAYERS:
                rows.append(_row(t, stage, "pqi", "layer", layer, 0.1 + 0.012 * t * p / q, p, q))
    return pd.DataFrame(rows)


def asni_step(epoch: int, rng: np.random.Generator) -> pd.DataFrame:
    """One ASNI epoch's rows."""
    rows = [_row(epoch, "epoch", "accuracy", "model", "all", 0.9 + 0.01 * rng.standard_normal()),
            _row(epoch, "epoch", "sparsity", "global", "all", min(90.0, 10.0 * epoch))]
    rows += [_row(epoch, "epoch", "sparsity", "layer", layer, min(90.0, 9.0 * epoch)) for layer in LAYERS]
    return pd.DataFrame(rows)


def build(store: ResultsStore, profiles: tuple[str, ...] = PROFILES, max_steps: int = 12) -> list[str]:
    """Write every run the figures need at ``profiles`` (complete, records only); return their ids."""
    rng = np.random.default_rng(0)
    configs = {r.run_id: r.config for prof in profiles for _, _, runs in pipeline.plan(all_figures(), prof)
               for r in runs}
    for run_id, config in configs.items():
        store.prepare(config)
        if config.kind == "iterative":
            steps, make = min(config.iterations + 1, max_steps), iterative_step
        else:
            steps, make = min(config.train.epochs, max_steps), asni_step
        for step in range(steps):
            store.save_step(run_id, step, make(step, rng))
        store.mark_complete(run_id, {"synthetic": True})
    return list(configs)
