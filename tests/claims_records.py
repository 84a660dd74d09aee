"""Synthetic records shaped exactly like ``store.load_results`` returns them, for the claim tests.

Config columns come from the real config classes (``flatten_config`` + ``column_name``, as
``load_results`` writes them), so a renamed field breaks these tests rather than hiding behind them.
Accuracy is given in percentage points and stored as a fraction, as the runners store it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd

from sparsity_lab.config.configs import AsniConfig, IterativeConfig
from sparsity_lab.config.fields import config_with
from sparsity_lab.rules.asni_schedule import asni_target_sparsity
from sparsity_lab.store.query import column_name, flatten_config

NAN = math.nan


def _row(t: int, stage: str, metric: str, value: float, scope: str = "model", group: str = "all",
         p: float = NAN, q: float = NAN) -> dict[str, Any]:
    return {"iteration": t, "stage": stage, "metric": metric, "scope": scope, "group": group, "p": p, "q": q,
            "value": float(value)}


def _with_config(rows: list[dict], cfg: Any) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    flat = flatten_config(cfg.to_dict())
    frame.insert(0, "run_id", cfg.run_id)
    for key, value in flat.items():
        if key != "run_id":
            frame[column_name(key)] = [value] * len(frame)
    return frame


def iterative_run(accuracy: Sequence[float], *, remaining: Sequence[float] | None = None,
                  pqi: Sequence[float] | None = None, layers: Mapping[str, Sequence[float]] | None = None,
                  grid: Callable[[int, float, float], float] | None = None, pruned: bool = True,
                  seed: int = 0, **config: Any) -> pd.DataFrame:
    """One iterative run, t = 0..len(accuracy)-1: retrained accuracy (pt), remaining (default 0.8^t),
    global PQI (0.5, 1), per-layer remaining, a global (p, q) grid ``grid(t, p, q)``, and (``pruned``)
    the pruned-stage remaining of m_{t+1}. ``config``: IterativeConfig fields (method, p, q, scope, ...)."""
    T = len(accuracy) - 1
    cfg = config_with(IterativeConfig(dataset="digits", iterations=T, seed=seed), **config)
    rem = list(remaining) if remaining is not None else [0.8 ** t for t in range(T + 1)]
    rows = []
    for t in range(T + 1):
        rows.append(_row(t, "retrained", "accuracy", accuracy[t] / 100.0))
        rows.append(_row(t, "retrained", "remaining", rem[t]))
        rows.append(_row(t, "retrained", "remaining", rem[t], scope="global"))
        if pqi is not None:
            rows.append(_row(t, "retrained", "pqi", pqi[t], scope="global", p=0.5, q=1.0))
        for name, values in (layers or {}).items():
            rows.append(_row(t, "retrained", "remaining", values[t], scope="layer", group=name))
        if grid is not None:
            for p in [round(0.1 * k, 1) for k in range(1, 11)]:
                for q in [round(1.0 + 0.1 * k, 1) for k in range(11)]:
                    if p < q:
                        rows.append(_row(t, "retrained", "pqi", grid(t, p, q), scope="global", p=p, q=q))
        if pruned and t < T:
            rows.append(_row(t, "pruned", "remaining", rem[t + 1]))
    return _with_config(rows, cfg)


def iterative_seeds(n_seeds: int, accuracy: Sequence[float], **kw: Any) -> pd.DataFrame:
    """``n_seeds`` runs of one config whose accuracies are ``accuracy`` -/+ 1 pt (mean = ``accuracy``)."""
    offsets = [(-1.0 if s % 2 == 0 else 1.0) if n_seeds % 2 == 0 else 0.0 for s in range(n_seeds)]
    return pd.concat([iterative_run([a + off for a in accuracy], seed=s, **kw) for s, off in enumerate(offsets)],
                     ignore_index=True)


def asni_run(variant: str, accuracy: Sequence[float], *, n: int = 10_000, seed: int = 0, offset: int = 0,
             record_n: bool = False, **config: Any) -> pd.DataFrame:
    """One ASNI run of ``len(accuracy)`` epochs (accuracy in pt). An ``asni1`` run also records s(t) and a
    realised global sparsity exactly ``offset`` weights away from round(s(t) n), and final nonzero_weights
    (and, with ``record_n``, prunable_weights = n)."""
    epochs = len(accuracy)
    cfg = config_with(AsniConfig(dataset="digits", variant=variant, seed=seed, kappa=1.0, s_max=90.0),
                      **{"train.epochs": epochs, **config})
    rows = []
    zeros = 0
    for t in range(epochs):
        rows.append(_row(t, "epoch", "accuracy", accuracy[t] / 100.0))
        if variant == "asni1":
            s = asni_target_sparsity(t, s_max=cfg.s_max, kappa=cfg.kappa, total_epochs=epochs, tau=cfg.tau)
            zeros = round(s / 100.0 * n) + offset
            rows.append(_row(t, "epoch", "target_sparsity", s))
            rows.append(_row(t, "epoch", "sparsity", 100.0 * zeros / n, scope="global"))
    if variant == "asni1":
        rows.append(_row(epochs - 1, "final", "nonzero_weights", n - zeros))
        if record_n:
            rows.append(_row(epochs - 1, "final", "prunable_weights", n))
    return _with_config(rows, cfg)
