"""The ASNI figures (FIGURES.md items 8-10; METHODS.md §4) and what they share.

* :func:`asni_schedule` (:mod:`.asni_schedule`): target s(t) vs realised sparsity, with accuracy.
* :func:`asni_concentration` (:mod:`.concentration`): per-layer histograms of the surviving weights
  with c⁻, c⁺ and ±θ, against one-shot global and layer-wise magnitude pruning of a dense network.
* :func:`asni2` (:mod:`.asni2`): ASNI-II retraining against its controls, and the storage of the
  learned initialisation.

This module holds the shared pipeline: resolve the profile's parameters, build one
:class:`~sparsity_lab.config.AsniConfig` per (variant, seed), run what is missing
(:func:`~sparsity_lab.figures.runs.ensure_results`), caption, and write the files.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from sparsity_lab.figures import style
from sparsity_lab.figures._result import FigureResult

# The figure functions asni_schedule, asni_concentration and asni2 are reached lazily (module __getattr__).
__all__ = ["VARIANT_LABELS", "asni_caption", "asni_params", "asni_results", "epoch_metric", "publish"]

#: Legend label of each AsniConfig.variant (METHODS.md §4).
VARIANT_LABELS: dict[str, str] = {
    "asni2": "ASNI-II (2L-level init)",
    "asni1": "ASNI-I (during its schedule)",
    "mask_init": "mask + original init",
    "mask_random_init": "mask + random init",
    "random_signs": "2L levels, random signs",
    "std_levels": "±std(θ₀) levels",
    "dense": "dense",
}

_ALIASES = {"epochs": "train.epochs"}


def asni_params(figure: str, profile: str = "quick", **overrides: Any) -> dict[str, Any]:
    """``profiles.figure_params`` plus the notebook shorthands: ``epochs`` (= T, sets ``train.epochs``) and
    ``train_<field>`` for any other training setting. None values keep the profile's value."""
    from sparsity_lab.profiles import figure_params

    overrides = {_ALIASES.get(k, k): v for k, v in overrides.items() if v is not None}
    train_fields = {k.split(".", 1)[1] if "." in k else k[len("train_"):]: overrides.pop(k)
                    for k in [k for k in overrides if k.startswith(("train.", "train_"))]}
    params = figure_params(figure, profile, **overrides)
    if train_fields:
        known = {f.name for f in dataclasses.fields(params["train"])}
        unknown = sorted(set(train_fields) - known)
        if unknown:
            raise ValueError(f"unknown training setting(s) {unknown}: allowed {sorted(known)}")
        params["train"] = dataclasses.replace(params["train"], **train_fields)
    params["seeds"] = [int(s) for s in params["seeds"]]
    return params


def asni_results(figure: str, profile: str, variants: Sequence[str], *, store: Any = None,
                 device: str | None = None, progress: bool = True,
                 **overrides: Any) -> tuple[dict[str, Any], list[Any], pd.DataFrame]:
    """(params, configs, tidy records of every (variant, seed)); runs what the store lacks."""
    from sparsity_lab.figures.runs import asni_configs, ensure_results

    params = asni_params(figure, profile, **overrides)
    configs = asni_configs(params, variants)
    records = ensure_results(configs, store=store, device=device, progress=progress)
    return params, configs, records


def asni_caption(params: Mapping[str, Any], extra: Mapping[str, Any] | str | None = None) -> str:
    """The caption every ASNI figure carries (FIGURES.md preamble): ASNI prunes after every epoch of
    one training run, so T = epochs and E = 1 epoch per pruning step; scope is the global threshold."""
    kappa = params.get("kappa") or params["train"].epochs / 10  # asni_configs' default
    fields: dict[str, Any] = {"S_max": f"{params['s_max']:g} %", "κ": f"{kappa:g}", "τ": params.get("tau", 0.5)}
    if params.get("train_subset"):
        fields["train subset"] = params["train_subset"]
    if isinstance(extra, Mapping):
        fields.update(extra)
    parts = [f"{k}={v}" for k, v in fields.items()]
    if isinstance(extra, str) and extra:
        parts.append(extra)
    return style.caption(params["profile"], params["dataset"], params["model"],
                         T=f"{params['train'].epochs} epochs", E="1 epoch per pruning step",
                         seeds=params["seeds"], scope="global (ASNI)", ranked="n/a (one run)",
                         extra=" · ".join(parts))


def epoch_metric(records: pd.DataFrame, metric: str = "accuracy", *, scope: str = "model",
                 group: str = "all") -> pd.DataFrame:
    """Per-epoch rows of one metric: columns ``variant``, ``seed``, ``epoch``, ``value`` (sorted)."""
    rows = records[(records["stage"] == "epoch") & (records["metric"] == metric)
                   & (records["scope"] == scope) & (records["group"] == group)]
    if rows.empty:
        raise ValueError(f"no per-epoch {metric!r} records (scope {scope!r}, group {group!r}); "
                         f"metrics present: {sorted(records['metric'].unique())}")
    out = rows.rename(columns={"iteration": "epoch"})[["variant", "seed", "epoch", "value"]]
    out = out.astype({"seed": int, "epoch": int, "value": float})
    return out.sort_values(["variant", "seed", "epoch"], kind="stable").reset_index(drop=True)


def publish(fig: Figure, name: str, caption: str, tables: Mapping[str, pd.DataFrame], run_ids: Sequence[str],
            params: Mapping[str, Any], output_dir: str | Path | None) -> FigureResult:
    """Put ``caption`` under the figure; with ``output_dir`` write ``<name>.png``, ``.pdf`` and one CSV per
    table. The written paths go to ``params["files"]`` of the result (the convention of the SAP figures)."""
    style.add_caption(fig, caption)
    files: list[Path] = []
    if output_dir is not None:
        files = [*style.save_figure(fig, output_dir, name), *style.save_tables(tables, output_dir, name)]
    return FigureResult(figure=fig, caption=caption, tables=dict(tables), run_ids=list(dict.fromkeys(run_ids)),
                        params={**params, "files": files})


def __getattr__(name: str) -> Any:
    """The three figure functions live in their own modules (imported on first use)."""
    modules = {"asni_schedule": "asni_schedule", "asni_concentration": "concentration", "asni2": "asni2"}
    if name in modules:
        import importlib

        return getattr(importlib.import_module(f"sparsity_lab.figures.{modules[name]}"), name)
    raise AttributeError(f"module 'sparsity_lab.figures.asni' has no attribute {name!r}")
