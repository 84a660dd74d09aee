"""Getting the results a figure needs: build configs, run what is missing, load the tidy records."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd

from sparsity_lab.config import AsniConfig, ExperimentConfig, IterativeConfig, config_with
from sparsity_lab.store import ResultsStore, load_results


def iterative_configs(params: dict[str, Any], variants: Iterable[dict[str, Any]]) -> list[IterativeConfig]:
    """One IterativeConfig per (variant, seed) from a figure's params (profiles.figure_params)."""
    base = IterativeConfig(dataset=params["dataset"], model=params["model"], iterations=params["iterations"],
                           scope=params.get("scope", "global"), train_subset=params.get("train_subset", 0),
                           train=params["train"])
    extra = {k: params[k] for k in ("rank_weights", "val_size") if k in params}
    return [config_with(base, seed=seed, **extra, **variant) for variant in variants for seed in params["seeds"]]


def asni_configs(params: dict[str, Any], variants: Sequence[str]) -> list[AsniConfig]:
    """One AsniConfig per (variant, seed); κ defaults to T/10 as in the authors' runs when not given."""
    base = AsniConfig(dataset=params["dataset"], model=params["model"], s_max=params["s_max"],
                      kappa=params.get("kappa") or params["train"].epochs / 10, train_subset=params.get("train_subset", 0),
                      train=params["train"])
    return [dataclasses.replace(base, variant=v, seed=s) for v in variants for s in params["seeds"]]


def ensure_results(configs: Sequence[ExperimentConfig], *, store: ResultsStore | None = None,
                   device: str | None = None, progress: bool = True) -> pd.DataFrame:
    """Run (or reuse) every config, then return their records with config fields as columns."""
    from sparsity_lab.figures.plan import record_or_continue
    from sparsity_lab.sweep import run_many

    for config in configs:
        config.validate()  # every bad parameter fails before any training
    record_or_continue(configs)  # planning a batch (figures.plan): record and stop here
    store = store if store is not None else ResultsStore()
    outcomes = run_many(list(configs), devices=[device] if device else None, store=store, progress=progress)
    failed = [o for o in outcomes if o.status == "failed"]
    if failed:
        raise RuntimeError("runs failed: " + "; ".join(f"{o.run_id}: {o.error}" for o in failed))
    return load_results(store=store, run_id=[c.run_id for c in configs])
