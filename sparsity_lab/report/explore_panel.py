"""The explorer's ipywidgets panel (README "Exploring results interactively"): menus over the store's runs,
records read lazily, one labelled plot.

* Runs are picked by profile and figure first (which figures' plans hold a run:
  :func:`sparsity_lab.report.explore.run_catalogue`), then by kind, dataset, model and method; it opens on
  the profile with the most stored runs and its first figure, so the first plot compares that figure's
  runs, not every run of the store mixed.
* Records are read only for the chosen runs, each run once (a cache by run id): a store of thousands of
  runs costs the configs, not millions of rows.
* The plot is a PNG in an ``Image`` widget and messages an ``HTML`` widget: no ``Output`` widget, whose
  outputs nbclient (papermill) echoes back to the kernel on the shell socket while it waits for the cell's
  reply there, a reply it then sees only when its timeout expires.
"""

from __future__ import annotations

import contextlib
import html
import io
from collections.abc import Iterator, Sequence
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from sparsity_lab.report.explore import plot_metric, run_catalogue

__all__ = ["ALL", "explorer"]

#: The figure menu's entry for "every run at this profile".
ALL = "all figures"
#: The profile menu's entry for runs no figure's plan holds (e.g. made with ``sparsity_lab run``).
OTHER = "none (own runs)"


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return buf.getvalue()


def explorer(store: Any = None, filters: Sequence[str] = ("kind", "dataset", "model", "method")) -> Any:
    """An ipywidgets panel over the store: profile and figure menus, a menu per config field in ``filters``
    (multi-select, none = all), then metric, stage, scope, group (a layer at layer/neuron scope), (p, q)
    and log y; the plot redraws on every change. ``panel.refresh()`` re-reads the store's run list."""
    import ipywidgets as widgets

    from sparsity_lab.store import load_results

    catalogue = run_catalogue(store)
    if catalogue.empty:
        raise ValueError("no complete runs in the store yet: run a figure notebook or `python -m sparsity_lab run`")
    state: dict[str, Any] = {"runs": catalogue, "cache": {}}
    profile = widgets.Dropdown(description="profile")
    figure = widgets.Dropdown(description="figure", layout=widgets.Layout(width="340px"))
    menus = {f: widgets.SelectMultiple(description=f, rows=4) for f in filters if f in catalogue.columns}
    metric, stage, scope, group = (widgets.Dropdown(description=d) for d in ("metric", "stage", "scope", "group"))
    pq = widgets.Dropdown(description="(p, q)")
    logy = widgets.Checkbox(description="log y", value=False)
    image = widgets.Image(format="png")
    note = widgets.HTML()
    panel = widgets.VBox()
    busy: list[bool] = []

    @contextlib.contextmanager
    def quiet() -> Iterator[None]:
        """While options change, the observers do not redraw once per widget."""
        busy.append(True)
        try:
            yield
        finally:
            busy.pop()

    def at_profile() -> pd.DataFrame:
        runs = state["runs"]
        if profile.value == OTHER:
            return runs[runs["profiles"].map(len) == 0]
        return runs[runs["profiles"].map(lambda p: profile.value in p)]

    def figure_runs() -> pd.DataFrame:
        keep = at_profile()
        if figure.value not in (None, ALL):
            keep = keep[keep["figures"].map(lambda f: figure.value in f)]
        return keep

    def chosen_runs() -> pd.DataFrame:
        keep = figure_runs()
        for field, menu in menus.items():
            if menu.value:
                keep = keep[keep[field].astype(str).isin(menu.value)]
        return keep

    def offer(menu: Any, values: list[Any], preferred: Any) -> None:
        """Set ``menu``'s options to ``values``, keeping its value when it is still offered."""
        keep = menu.value if menu.value in values else (preferred if preferred in values else None)
        menu.options = values
        menu.value = keep if keep is not None else (values[0] if values else None)

    def reload() -> None:
        """List the store's complete runs again and offer their profiles (the one with most runs first)."""
        state["runs"] = run_catalogue(store)
        counts = pd.Series([p for ps in state["runs"]["profiles"] for p in ps]).value_counts()
        names = list(counts.index) + ([OTHER] if (state["runs"]["profiles"].map(len) == 0).any() else [])
        with quiet():
            offer(profile, names, names[0] if names else None)
        on_profile()

    def on_profile(*_: Any) -> None:
        """Offer the figures that have runs at the chosen profile (the first by number), then the run menus."""
        if busy:
            return
        figures = sorted({f for fs in at_profile()["figures"] for f in fs})
        with quiet():
            offer(figure, figures + [ALL], figures[0] if figures else ALL)
        on_runs()

    def on_runs(*_: Any) -> None:
        """Offer the config values of the runs left, read their records (each run once), offer the metrics."""
        if busy:
            return
        with quiet():
            runs = figure_runs()
            for field, menu in menus.items():
                values = sorted(runs[field].dropna().astype(str).unique()) if field in runs else []
                menu.options = values
                menu.value = tuple(v for v in menu.value if v in values)
        ids = list(chosen_runs()["run_id"])
        missing = [rid for rid in ids if rid not in state["cache"]]
        if missing:
            fresh = load_results(store=store, run_id=missing)
            state["cache"].update({rid: rows for rid, rows in fresh.groupby("run_id", sort=False)})
        panel.loaded = [rid for rid in ids if rid in state["cache"]]
        frames = [state["cache"][rid] for rid in panel.loaded]
        state["records"] = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
        if state["records"].empty:
            show(None, "no complete run matches these filters")
            return
        with quiet():
            offer(metric, sorted(state["records"]["metric"].unique()), "accuracy")
        choices()

    def choices(*_: Any) -> None:
        """Offer the stages, scopes and (p, q) pairs the chosen metric has, then draw."""
        if busy:
            return
        records = state["records"]
        with quiet():
            rows = records[records["metric"] == metric.value]
            offer(stage, sorted(rows["stage"].dropna().unique()), "retrained")
            rows = rows[rows["stage"] == stage.value]
            offer(scope, sorted(rows["scope"].dropna().unique()), "model" if metric.value == "accuracy" else "global")
            rows = rows[rows["scope"] == scope.value]
            offer(group, sorted(rows["group"].dropna().unique()), "all")
            rows = rows[rows["group"] == group.value]
            pairs = sorted({(a, b) for a, b in zip(rows["p"], rows["q"], strict=True) if pd.notna(a)})
            pq.options = [("–", None)] + [(f"({a:g}, {b:g})", (a, b)) for a, b in pairs]
            pq.value = pq.options[min(1, len(pq.options) - 1)][1]
        draw()

    def draw(*_: Any) -> None:
        if busy:
            return
        a, b = pq.value if pq.value else (None, None)
        where = f"profile {profile.value}, {figure.value}"
        try:
            fig = plot_metric(state["records"], metric.value, stage=stage.value, scope=scope.value, group=group.value,
                              p=a, q=b, logy=logy.value, where=where)
        except ValueError as err:  # e.g. a PQI grid without a chosen (p, q): say what to pick
            show(None, str(err))
            return
        show(fig, None)

    def show(fig: Figure | None, message: str | None) -> None:
        panel.figure, panel.message = fig, message  # what is on screen, also outside a kernel
        image.value = _png(fig) if fig is not None else b""
        image.layout.display = None if fig is not None else "none"
        note.value = f"<pre>{html.escape(message)}</pre>" if message else ""

    profile.observe(on_profile, names="value")
    figure.observe(on_runs, names="value")
    for menu in menus.values():
        menu.observe(on_runs, names="value")
    for control in (metric, stage, scope, group):
        control.observe(choices, names="value")
    for control in (pq, logy):
        control.observe(draw, names="value")
    panel.children = [widgets.HBox([profile, figure]), widgets.HBox(list(menus.values())),
                      widgets.HBox([metric, stage, scope, group, pq, logy]), note, image]
    panel.profile, panel.figure_menu, panel.refresh = profile, figure, reload
    reload()
    return panel
