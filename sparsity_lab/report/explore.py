"""Exploring stored results in Jupyter: pick runs by their config, plot any recorded metric.

The figure notebooks answer fixed questions; this module is for the next one. Everything reads the
tidy records of the store (README "Stored records"), so it works for every run a notebook, the CLI or
``run_many`` produced:

* :func:`metric_frame`: one metric as one row per (run, iteration), with the run's config columns;
* :func:`run_labels`: a legend label per run from the config fields that differ between the runs
  shown (the seed excluded: seeds are averaged into mean ± std bands);
* :func:`plot_metric`: that metric against the iteration (ASNI: epoch), mean ± std over seeds;
* :func:`explorer`: the same behind ipywidgets menus (run filters, metric, stage, scope, (p, q)).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from sparsity_lab import _roots

_roots.use_repository_roots()  # the repository's store, wherever the notebook runs

__all__ = ["MAX_LEGEND", "explorer", "metric_frame", "plot_metric", "run_labels"]

#: Lines beyond which a plot gets no legend (it would hide the plot); narrow the selection instead.
MAX_LEGEND = 12

#: Config columns never used to tell runs apart in a legend (bookkeeping, or averaged over).
_NOT_LABELS = {"run_id", "kind", "seed", "iteration", "stage", "metric", "scope", "group", "p", "q", "value"}


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


def run_labels(frame: pd.DataFrame) -> pd.Series:
    """A legend label per row: the config fields whose values differ between the runs in ``frame``."""
    from sparsity_lab.store import varying_columns

    runs = frame.drop_duplicates("run_id").set_index("run_id")
    varying = varying_columns(runs, exclude=_NOT_LABELS)
    if not varying:
        label = {rid: "all runs" for rid in runs.index}
    else:
        label = {rid: ", ".join(f"{c}={row[c]}" for c in varying) for rid, row in runs.iterrows()}
    return frame["run_id"].map(label)


def plot_metric(records: pd.DataFrame, metric: str, *, logy: bool = False, **select: Any) -> Figure:
    """``metric`` against the iteration, one line per label of :func:`run_labels`, mean ± std over seeds.
    ``select``: ``stage``, ``scope``, ``group``, ``p``, ``q`` as in :func:`metric_frame`."""
    from sparsity_lab.figures import style
    from sparsity_lab.figures._bands import line_with_band

    frame = metric_frame(records, metric, **select).assign(label=lambda f: run_labels(f))
    style.set_style()
    fig = Figure(figsize=(11, 4.5), layout="constrained")
    ax = fig.subplots()
    line_with_band(ax, frame, "iteration", "value", "label", logy=logy)
    what = ", ".join(f"{k}={v}" for k, v in select.items() if v is not None)
    ax.set(xlabel="iteration (ASNI: epoch)", ylabel=metric, title=f"{metric}{f' ({what})' if what else ''}")
    lines = frame["label"].nunique()
    seeds = frame.groupby("label")["seed"].nunique() if "seed" in frame.columns else pd.Series([1])
    note = f"{frame['run_id'].nunique()} runs, {lines} lines, seeds per line {seeds.min()}–{seeds.max()}"
    if lines <= MAX_LEGEND:
        ax.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    else:
        note += f"; no legend above {MAX_LEGEND} lines: narrow the selection"
    ax.text(0.0, -0.16, note, transform=ax.transAxes, fontsize="x-small", color="0.4")
    return fig


def explorer(store: Any = None, filters: Sequence[str] = ("kind", "dataset", "model", "method")) -> Any:
    """An ipywidgets panel over the store: a menu per config field in ``filters`` (multi-select), then the
    metric, stage, scope, group (layer name at layer/neuron scope) and (p, q); the plot redraws on every
    change. ``panel.refresh()`` re-reads the store (new runs appear in the menus)."""
    import ipywidgets as widgets
    from IPython.display import display

    from sparsity_lab.store import list_runs, load_results

    def complete_runs() -> pd.DataFrame:
        runs = list_runs(store)
        return runs[runs["status"] == "complete"]

    state: dict[str, pd.DataFrame] = {"runs": complete_runs()}
    if state["runs"].empty:
        raise ValueError("no complete runs in the store yet: run a figure notebook or `python -m sparsity_lab run`")
    menus = {f: widgets.SelectMultiple(description=f, rows=4) for f in filters if f in state["runs"].columns}
    metric, stage, scope, group = (widgets.Dropdown(description=d) for d in ("metric", "stage", "scope", "group"))
    pq = widgets.Dropdown(description="(p, q)")
    logy = widgets.Checkbox(description="log y", value=False)
    out = widgets.Output()
    panel = widgets.VBox()

    def chosen_runs() -> list[str]:
        keep = state["runs"]
        for field, menu in menus.items():
            if menu.value:
                keep = keep[keep[field].astype(str).isin(menu.value)]
        return list(keep["run_id"])

    def offer(menu: Any, column: str, rows: pd.DataFrame, preferred: str) -> None:
        """Set ``menu``'s options to the values of ``column``, keeping its value when it is still offered."""
        values = sorted(rows[column].dropna().unique().tolist())
        keep = menu.value if menu.value in values else (preferred if preferred in values else None)
        menu.options = values
        menu.value = keep if keep is not None else (values[0] if values else None)

    def reload() -> None:
        """List the store's complete runs again and offer their values in the run menus."""
        state["runs"] = complete_runs()
        with quiet():
            for field, menu in menus.items():
                values = sorted(state["runs"][field].dropna().astype(str).unique())
                menu.options = values
                menu.value = tuple(v for v in menu.value if v in values)
        refresh()

    def refresh(*_: Any) -> None:
        """Re-read the chosen runs' records, then offer the metrics they have."""
        if busy:
            return
        ids = chosen_runs()
        state["records"] = load_results(store=store, run_id=ids) if ids else pd.DataFrame()
        if state["records"].empty:
            show(None, "no complete run matches these filters")
            return
        with quiet():
            offer(metric, "metric", state["records"], "accuracy")
        choices()

    def choices(*_: Any) -> None:
        """Offer the stages, scopes and (p, q) pairs the chosen metric has, then draw."""
        if busy:
            return
        records = state["records"]
        with quiet():
            rows = records[records["metric"] == metric.value]
            offer(stage, "stage", rows, "retrained")
            rows = rows[rows["stage"] == stage.value]
            offer(scope, "scope", rows, "global")
            rows = rows[rows["scope"] == scope.value]
            offer(group, "group", rows, "all")
            rows = rows[rows["group"] == group.value]
            pairs = sorted({(a, b) for a, b in zip(rows["p"], rows["q"], strict=True) if pd.notna(a)})
            pq.options = [("–", None)] + [(f"({a:g}, {b:g})", (a, b)) for a, b in pairs]
            pq.value = pq.options[min(1, len(pq.options) - 1)][1]
        draw()

    def draw(*_: Any) -> None:
        if busy:
            return
        a, b = pq.value if pq.value else (None, None)
        try:
            fig = plot_metric(state["records"], metric.value, stage=stage.value, scope=scope.value,
                              group=group.value, p=a, q=b, logy=logy.value)
        except ValueError as err:  # e.g. a PQI grid without a chosen (p, q): say what to pick
            show(None, str(err))
            return
        show(fig, None)

    def show(fig: Figure | None, message: str | None) -> None:
        panel.figure, panel.message = fig, message  # what is on screen, also outside a kernel
        out.clear_output(wait=True)
        with out:
            if fig is not None:
                display(fig)
            else:
                print(message)

    busy: list[bool] = []

    @contextlib.contextmanager
    def quiet() -> Iterator[None]:
        """While options change, the observers do not redraw once per widget."""
        busy.append(True)
        try:
            yield
        finally:
            busy.pop()

    for menu in menus.values():
        menu.observe(refresh, names="value")
    for control in (metric, stage, scope, group):
        control.observe(choices, names="value")
    for control in (pq, logy):
        control.observe(draw, names="value")
    panel.children = [widgets.HBox(list(menus.values())), widgets.HBox([metric, stage, scope, group, pq, logy]), out]
    panel.refresh = reload
    reload()
    return panel
