"""Pieces shared by the SAP-paper figures 1-6 (docs/figures.md): parameters, run labelling, record
selection and summaries.

A figure builds its runs from *variants* (a label, the IterativeConfig overrides, and a family
such as a pruning scope or an ablation row). :func:`build_runs` turns variants into
:class:`~sparsity_lab.figures.registry.Run` s (one per seed) labelled ``family`` and ``label``; the
orchestrator adds those columns to the records ``load_results`` returns, so every observation knows
its curve without relying on how config columns are named.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from sparsity_lab.figures import style
from sparsity_lab.figures.registry import Run

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


def method_variants(methods: Sequence[str] | None = None, *, family: str = "",
                    extra: Mapping[str, Any] | None = None) -> list[Variant]:
    """The four methods of ``_bases.SAP_METHODS`` (or those whose labels are ``methods``, which may also
    name ``_bases.OPTIONAL_METHODS`` such as SNIP)."""
    from sparsity_lab.figures._bases import OPTIONAL_METHODS, SAP_METHODS

    known = dict(SAP_METHODS + OPTIONAL_METHODS)
    labels = [label for label, _ in SAP_METHODS] if methods is None else list(methods)
    unknown = [m for m in labels if m not in known]
    if unknown:
        raise ValueError(f"unknown method label(s) {unknown}: allowed {list(known)}")
    return [Variant(label, {**known[label], **(extra or {})}, family) for label in labels]


def build_runs(params: Any, variants: Iterable[Variant], **config: Any) -> list[Run]:
    """One :class:`Run` per variant and seed, labelled ``family`` and ``label`` (a run shared by two
    variants is listed twice: the orchestrator loads it once and gives its records both labels);
    ``config`` overrides the parameters' dataset/model (figure 6's setups)."""
    from sparsity_lab.figures._bases import sap_config

    return [Run(sap_config(params, seed=seed, **config, **dict(variant.overrides)),
                {"family": variant.family, "label": variant.label})
            for variant in variants for seed in params.seeds]


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
    """A fixed colour per method across all figures (``style.METHOD_COLOURS``, Okabe-Ito)."""
    return style.method_palette(labels)


def finish_axes(ax: Any, *, xlabel: str, ylabel: str, title: str | None = None, logy: bool = False) -> None:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if logy:
        ax.set_yscale("log")


def plain_log_axis(axis: Any) -> None:
    """Log-scale tick labels as plain numbers (``100``, ``20``, ``0.5``): at 1, 2, 5 × 10^k, at every
    1…9 × 10^k when the data span less than 1.3 decades, and at decades only when they span more than 4
    (so a horizontal axis over 100 … 0.0003 % stays legible; call after plotting)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    lo, hi = sorted(abs(v) for v in axis.get_view_interval())
    narrow = lo > 0 and math.log10(hi / lo) < 1.3
    wide = lo > 0 and math.log10(hi / lo) > 4
    subs = (1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0) if narrow else (1.0,) if wide else (1.0, 2.0, 5.0)
    axis.set_major_locator(LogLocator(base=10, subs=subs))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def integer_ticks(ax: Any) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
