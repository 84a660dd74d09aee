"""Exploring stored results in Jupyter: pick runs by figure, profile and config, plot any recorded metric.

The figure notebooks answer fixed questions; this module is for the next one. Everything reads the
tidy records of the store (README "Stored records", "Exploring results interactively"), so it works for
every run a notebook, the CLI or ``run_many`` produced:

* :func:`run_catalogue`: the store's complete runs with the figures and profiles that read each (from the
  figure registry's plans, :func:`sparsity_lab.report.pipeline.plan`), without reading any records;
* :func:`metric_frame`: one metric as one row per (run, iteration), with the run's config columns;
* :func:`run_labels`: a legend label per run from the config fields that differ between the runs
  shown (the seed excluded: seeds are averaged into mean ± std bands; a rule's own field, such as SAP's
  p and q, only on that rule's runs);
* :func:`plot_metric`: that metric against the iteration (ASNI: epoch), mean ± std over seeds, accuracy in %;
* :func:`explorer` (:mod:`sparsity_lab.report.explore_panel`): the same behind ipywidgets menus.
"""

from __future__ import annotations

import functools
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from sparsity_lab import _roots

_roots.use_repository_roots()  # the repository's store, wherever the notebook runs

__all__ = ["MAX_LEGEND", "PERCENT", "metric_frame", "plot_metric", "run_catalogue", "run_labels"]

#: Lines beyond which a plot gets no legend (it would hide the plot); narrow the selection instead.
MAX_LEGEND = 12

#: Metrics stored as fractions and shown in percent, with their axis label.
PERCENT = {"accuracy": "accuracy (%)"}

#: Config columns never used to tell runs apart in a legend (bookkeeping, or averaged over).
_NOT_LABELS = {"run_id", "kind", "seed", "iteration", "stage", "metric", "scope", "group", "p", "q", "value",
               "label", "figures", "profiles", "status", "steps", "size_bytes", "created", "problem"}


@functools.lru_cache(maxsize=1)
def _planned() -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
    """run id → (figure stems, profiles) over every registered figure at every profile."""
    from sparsity_lab.figures.params import PROFILES
    from sparsity_lab.figures.registry import all_figures
    from sparsity_lab.report.pipeline import plan

    figures: dict[str, dict[str, None]] = {}
    profiles: dict[str, dict[str, None]] = {}
    for profile in PROFILES:
        for spec, _, runs in plan(all_figures(), profile):
            for run in runs:
                figures.setdefault(run.run_id, {})[spec.stem] = None
                profiles.setdefault(run.run_id, {})[profile] = None
    return {rid: (tuple(sorted(figures[rid])), tuple(profiles[rid])) for rid in figures}


def run_catalogue(store: Any = None) -> pd.DataFrame:
    """One row per complete run (``list_runs`` columns) plus ``figures`` and ``profiles``: the figure
    notebooks and profiles whose plans contain the run (empty tuples for a run no figure reads)."""
    from sparsity_lab.store import list_runs

    runs = list_runs(store)
    runs = runs[runs["status"] == "complete"].reset_index(drop=True)
    planned = _planned()
    runs["figures"] = [planned.get(rid, ((), ()))[0] for rid in runs["run_id"]]
    runs["profiles"] = [planned.get(rid, ((), ()))[1] for rid in runs["run_id"]]
    return runs


def metric_frame(records: pd.DataFrame, metric: str, *, stage: str | None = None, scope: str | None = None,
                 group: str = "all", p: float | None = None, q: float | None = None) -> pd.DataFrame:
    """Rows of ``records`` for one metric (one row per run and iteration).

    ``stage`` and ``scope`` default to the only value the metric has, and must be given when it has
    several; ``p``/``q`` pick one pair of a PQI grid. Raises ValueError naming what is available.
    """
    if "run_id" not in records.columns:  # one run's records, e.g. from own_loop.iterative_pruning
        records = records.assign(run_id="this run")
    rows = records[records["metric"] == metric]
    if rows.empty:
        raise ValueError(f"metric {metric!r} is not in these records; available: {sorted(records['metric'].unique())}")
    chosen = {"stage": stage, "scope": scope, "group": group}
    for column, value in chosen.items():
        options = sorted(rows[column].dropna().unique())
        if value is None:
            if len(options) > 1:
                raise ValueError(f"metric {metric!r} has several {column}s {options}: pass {column}=...")
            continue
        if value not in options:
            raise ValueError(f"{column}={value!r} does not occur for metric {metric!r}; available: {options}")
        rows = rows[rows[column] == value]
    for column, value in (("p", p), ("q", q)):
        if value is not None:
            rows = rows[rows[column] == value]
    duplicated = rows.duplicated(["run_id", "iteration"])
    if duplicated.any():
        pairs = sorted(set(zip(rows["p"], rows["q"], strict=True)))
        raise ValueError(f"metric {metric!r} has several values per run and iteration; pick p and q from {pairs}")
    if rows.empty:
        raise ValueError(f"no rows of metric {metric!r} for p={p!r}, q={q!r}")
    return rows.reset_index(drop=True)


def _method_only() -> dict[str, tuple[str, ...]]:
    """Column → the methods whose rule reads that config field (``rules.base.config_field_methods``)."""
    from sparsity_lab.rules.base import config_field_methods
    from sparsity_lab.store.query import column_name

    return {column_name(f): methods for f, methods in config_field_methods().items()}


def run_labels(frame: pd.DataFrame) -> pd.Series:
    """A legend label per row: the config fields whose values differ between the runs in ``frame``; a
    field that only some methods' rules read (SAP's p, q) is left out of the other methods' labels."""
    from sparsity_lab.store import varying_columns

    runs = frame.drop_duplicates("run_id").set_index("run_id")
    method_only = {c: m for c, m in (_method_only() if "method" in runs.columns else {}).items() if c in runs}
    for column, methods in method_only.items():
        runs[column] = runs[column].where(runs["method"].isin(methods))
    # a rule's field tells runs apart only where it differs between that rule's runs (its NaN elsewhere does not)
    varying = [c for c in varying_columns(runs, exclude=_NOT_LABELS)
               if c not in method_only or runs[c].dropna().astype(str).nunique() > 1]
    if not varying:
        label = {rid: "all runs" for rid in runs.index}
    else:
        label = {rid: ", ".join(f"{c.removeprefix('config_')}={row[c]}" for c in varying if pd.notna(row[c]))
                 for rid, row in runs.iterrows()}
    return frame["run_id"].map(label)


def plot_metric(records: pd.DataFrame, metric: str, *, logy: bool = False, where: str | None = None,
                **select: Any) -> Figure:
    """``metric`` against the iteration, one line per label of :func:`run_labels`, mean ± std over seeds
    (metrics in :data:`PERCENT` in %). ``select``: ``stage``, ``scope``, ``group``, ``p``, ``q`` as in
    :func:`metric_frame`; ``where`` (e.g. the profile and figure the runs were picked by) ends the title."""
    from sparsity_lab.figures import style
    from sparsity_lab.figures._bands import line_with_band

    frame = metric_frame(records, metric, **select).assign(label=lambda f: run_labels(f))
    if metric in PERCENT:
        frame = frame.assign(value=frame["value"] * 100.0)
    style.set_style()
    fig = Figure(figsize=(11, 4.5), layout="constrained")
    ax = fig.subplots()
    line_with_band(ax, frame, "iteration", "value", "label", logy=logy)
    what = ", ".join(f"{k}={v}" for k, v in select.items() if v is not None)
    xlabel = "epoch" if set(frame.get("kind", ())) == {"asni"} else "pruning iteration t" if "kind" in frame else "iteration"
    ax.set(xlabel=xlabel, ylabel=PERCENT.get(metric, metric),
           title=f"{metric}{f' ({what})' if what else ''}{f' · {where}' if where else ''}")
    lines = frame["label"].nunique()
    seeds = frame.groupby("label")["seed"].nunique() if "seed" in frame.columns else pd.Series([1])
    note = f"{frame['run_id'].nunique()} runs, {lines} lines, seeds per line {seeds.min()}–{seeds.max()}"
    if lines <= MAX_LEGEND:
        ax.legend(fontsize=style.LEGEND_FONTSIZE, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    else:
        note += f"; no legend above {MAX_LEGEND} lines: narrow the selection"
    ax.text(0.0, -0.16, note, transform=ax.transAxes, fontsize="small", color="0.4")
    return fig

