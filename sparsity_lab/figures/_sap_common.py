"""Pieces shared by the SAP-paper figures 1-6 (FIGURES.md): parameters, run labelling, record
selection, summaries and publishing.

A figure builds its runs from *variants* (a label, the IterativeConfig overrides, and a family
such as a pruning scope or an ablation row). :func:`build_runs` turns variants into configs (one
per seed, deduplicated by run id: two families may share a run) and an *assignment* frame
``run_id → (family, label)``; :func:`attach_labels` joins it onto the records that
``load_results`` returns, so every observation knows its curve without relying on how config
columns are named (the config's ``scope``/``p``/``q`` come back as ``config_scope`` etc.).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from sparsity_lab.figures import style
from sparsity_lab.figures._result import FigureResult

#: Record metrics stored as fractions that the figures show in percent.
PERCENT_METRICS = frozenset({"accuracy", "remaining"})
#: The default "which trained weights were ranked" (IterativeConfig.rank_weights' default).
DEFAULT_RANKED = "last"
#: Equal-value tolerance when the same observation is recorded twice (e.g. PQI (0.5, 1) both as
#: the tracked pair and as a point of the (p, q) grid).
DUPLICATE_ATOL = 1e-9


@dataclass(frozen=True)
class Variant:
    """One curve of a figure: its legend label, its IterativeConfig overrides, its panel family."""

    label: str
    overrides: Mapping[str, Any] = field(default_factory=dict)
    family: str = ""


def resolve_params(figure: str, profile: str, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``profiles.figure_params`` plus an ``epochs`` override (E, written into ``params["train"]``).

    ``None`` values mean "the profile's value", as in ``figure_params``.
    """
    from sparsity_lab.profiles import figure_params

    overrides = {k: v for k, v in overrides.items() if v is not None}
    epochs = overrides.pop("epochs", None)
    params = figure_params(figure, profile, **overrides)
    if epochs is not None:
        if int(epochs) < 1:
            raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
        params["train"] = dataclasses.replace(params["train"], epochs=int(epochs))
    return params


def method_variants(methods: Sequence[str] | None = None, *, family: str = "",
                    extra: Mapping[str, Any] | None = None) -> list[Variant]:
    """The four methods of ``profiles.SAP_METHODS`` (or the subset whose labels are ``methods``)."""
    from sparsity_lab.profiles import SAP_METHODS

    known = dict(SAP_METHODS)
    labels = list(known) if methods is None else list(methods)
    unknown = [m for m in labels if m not in known]
    if unknown:
        raise ValueError(f"unknown method label(s) {unknown}: allowed {list(known)}")
    return [Variant(label, {**known[label], **(extra or {})}, family) for label in labels]


def build_runs(params: Mapping[str, Any], variants: Iterable[Variant]) -> tuple[list[Any], pd.DataFrame]:
    """Configs (one per variant and seed, unique by run id, in first-seen order) and the
    assignment frame with columns ``run_id, family, label`` (one row per variant and seed)."""
    from sparsity_lab.figures.runs import iterative_configs

    configs: dict[str, Any] = {}
    rows = []
    for variant in variants:
        for cfg in iterative_configs(dict(params), [dict(variant.overrides)]):
            configs.setdefault(cfg.run_id, cfg)
            rows.append({"run_id": cfg.run_id, "family": variant.family, "label": variant.label})
    return list(configs.values()), pd.DataFrame(rows, columns=["run_id", "family", "label"])


def fetch(configs: Sequence[Any], *, store: Any = None, device: str | None = None,
          progress: bool = True) -> pd.DataFrame:
    """Run what is missing and load the records (``figures.runs.ensure_results``)."""
    from sparsity_lab.figures.runs import ensure_results

    return ensure_results(list(configs), store=store, device=device, progress=progress)


def attach_labels(records: pd.DataFrame, assignments: pd.DataFrame) -> pd.DataFrame:
    """Records joined with their runs' (family, label); a run in two families appears twice.

    Raises ``ValueError`` when an assigned run has no records (a figure must not silently lose a
    curve) or when the records lack the ``seed`` column that bands average over.
    """
    for col in ("run_id", "seed"):
        if col not in records.columns:
            raise ValueError(f"records lack the column {col!r}; have {sorted(map(str, records.columns))}")
    missing = sorted(set(assignments["run_id"]) - set(records["run_id"]))
    if missing:
        raise ValueError(f"no records for run(s) {missing}")
    records = records.drop(columns=[c for c in ("family", "label") if c in records.columns])
    return records.merge(assignments, on="run_id", how="inner")


def select(records: pd.DataFrame, metric: str, *, stage: str = "retrained", scope: str = "model",
           group: str | None = "all", p: float | None = None, q: float | None = None) -> pd.DataFrame:
    """Rows of one observable; ``group=None`` keeps every group, ``p``/``q`` match with isclose.

    Raises ``KeyError`` naming the metric and what is present when nothing matches.
    """
    mask = (records["metric"] == metric) & (records["stage"] == stage) & (records["scope"] == scope)
    if group is not None:
        mask &= records["group"] == group
    for col, want in (("p", p), ("q", q)):
        if want is not None:
            mask &= np.isclose(records[col].to_numpy(float), want)
    if not mask.any():
        present = sorted(records.loc[records["stage"] == stage, ["metric", "scope"]]
                         .drop_duplicates().itertuples(index=False, name=None))
        raise KeyError(f"no records with metric={metric!r} stage={stage!r} scope={scope!r} group={group!r} "
                       f"p={p} q={q}; present (metric, scope) at stage {stage!r}: {present}")
    return records.loc[mask]


def one_per(frame: pd.DataFrame, keys: Sequence[str], value: str = "value") -> pd.DataFrame:
    """``frame[keys + [value]]`` with exact duplicates of an observation collapsed.

    The same observation may be recorded twice (PQI (0.5, 1) as the tracked pair and as a grid
    point); equal values are collapsed, different ones raise ``ValueError``.
    """
    keys = list(keys)
    part = frame[[*keys, value]]
    spread = part.groupby(keys, dropna=False)[value].agg(lambda s: float(s.max() - s.min()) if len(s) else 0.0)
    bad = spread[spread > DUPLICATE_ATOL]
    if len(bad):
        raise ValueError(f"conflicting duplicate observations for {dict(zip(keys, np.atleast_1d(bad.index[0])))}")
    return part.drop_duplicates(subset=keys).reset_index(drop=True)


def summarise(frame: pd.DataFrame, by: Sequence[str], value: str = "value", seed_col: str = "seed") -> pd.DataFrame:
    """Mean, sample std (ddof = 1) and number of seeds of ``value`` per ``by`` cell."""
    stats = frame.groupby(list(by), sort=True, dropna=False)[value].agg(mean="mean", std="std", n="count")
    seeds = frame.groupby(list(by), sort=True, dropna=False)[seed_col].nunique()
    if (seeds != stats["n"]).any():
        raise ValueError("summarise: more than one row per seed in a cell; filter the frame first")
    return stats.reset_index()


def palette(levels: Sequence[Any], ordered: bool = False) -> dict[Any, Any]:
    """Colour per level: the colour-blind palette, or a sequential one for ordered values."""
    import seaborn as sns

    colours = (sns.color_palette("viridis", n_colors=len(levels)) if ordered
               else sns.color_palette("colorblind", n_colors=max(len(levels), 1)))
    return dict(zip(levels, colours))


def method_palette(labels: Sequence[str]) -> dict[str, Any]:
    """A fixed colour per method across all figures: the methods of ``profiles.SAP_METHODS`` take
    the first colours of the colour-blind palette in their order; other labels (controls) the
    next unused ones, in the order given."""
    import seaborn as sns

    from sparsity_lab.profiles import SAP_METHODS

    colours = sns.color_palette("colorblind", n_colors=10)
    fixed = {label: colours[i] for i, (label, _) in enumerate(SAP_METHODS)}
    spare = iter(colours[len(fixed):])
    return {label: fixed[label] if label in fixed else next(spare) for label in labels}


def ranked(params: Mapping[str, Any]) -> str:
    return str(params.get("rank_weights") or DEFAULT_RANKED)


def figure_caption(params: Mapping[str, Any], *, scope: str | None = None, extra: Any = None,
                   dataset: Any = None, model: Any = None) -> str:
    """``style.caption`` filled from a figure's params (E = ``params["train"].epochs``)."""
    return style.caption(params["profile"], dataset if dataset is not None else params["dataset"],
                         model if model is not None else params["model"], params["iterations"],
                         params["train"].epochs, list(params["seeds"]), scope or params.get("scope", "global"),
                         ranked(params), extra=extra)


def publish(fig: Figure, name: str, caption: str, tables: Mapping[str, pd.DataFrame], run_ids: Iterable[str],
            params: Mapping[str, Any], output_dir: str | Path | None) -> FigureResult:
    """Put the caption under the figure; with ``output_dir`` write ``<name>.png/.pdf`` and the
    tables as CSV (their paths go to ``params["files"]`` of the result)."""
    style.add_caption(fig, caption)
    files: list[Path] = []
    if output_dir is not None:
        files = [*style.save_figure(fig, output_dir, name), *style.save_tables(tables, output_dir, name)]
    return FigureResult(figure=fig, caption=caption, tables=dict(tables), run_ids=sorted(set(run_ids)),
                        params={**params, "files": files})


def finish_axes(ax: Any, *, xlabel: str, ylabel: str, title: str | None = None, logy: bool = False) -> None:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if logy:
        ax.set_yscale("log")


def plain_log_axis(axis: Any) -> None:
    """Log-scale tick labels as plain numbers (``100``, ``20``, ``0.5``): at 1, 2, 5 × 10^k, or
    at every 1…9 × 10^k when the data span less than 1.3 decades (call after plotting)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    lo, hi = sorted(abs(v) for v in axis.get_view_interval())
    narrow = lo > 0 and math.log10(hi / lo) < 1.3
    subs = (1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0) if narrow else (1.0, 2.0, 5.0)
    axis.set_major_locator(LogLocator(base=10, subs=subs))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def integer_ticks(ax: Any) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
