"""Figure 1 (SAP paper Fig. 2): trajectories of global iterative pruning, and the four-panel row
that Figures 3-4 (the ablations) reuse.

Row (a), x = iteration t = 0…T: test accuracy of the retrained model w_t; percent of remaining
prunable weights (log y); global PQI I_{0.5,1}(w_t ⊙ m_t); global Gini index. Row (b),
x = 0…T−1: accuracy of the pruned, not retrained model w_t ⊙ m_{t+1}; accuracy difference
retrained − pruned (percentage points); PQI of the pruned model; PQI difference
pruned − retrained. Mean ± std over seeds. The three PQI phases of docs/methods.md §3 (down,
up, down at collapse) are found on the mean PQI of SAP(1, 2) and shaded, by the rule claim 1.1 tests
(:func:`sparsity_lab.claims.pqi_phases.find_phases`), which also fills the phase table of every method.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from sparsity_lab.claims import sap_trajectories as claims
from sparsity_lab.figures import _sap_common as common
from sparsity_lab.figures import style
from sparsity_lab.figures._bases import METHOD_LABELS, SapParams, sap_caption
from sparsity_lab.figures._phases import PHASE_COLUMNS, phases_row
from sparsity_lab.figures.params import param
from sparsity_lab.figures.registry import Drawn, Inputs, Run, register_figure

__all__ = ["PANELS", "PANELS_PRUNED", "PANELS_RETRAINED", "Panel", "SapTrajectories", "TrajectoryParams",
           "draw_panel", "draw_panels", "endpoint_table", "phases_table", "trajectory_frame"]

KEYS = ["family", "label", "seed", "iteration"]
#: The curve whose PQI phases are shaded: SAP(1, 2), the setting claim 1.1 tests (it prunes hard enough to
#: collapse; SAP(0.5, 1) usually never reaches the compression and collapse phases within T).
PHASE_LABEL = "SAP (p=1, q=2)"


@dataclass(frozen=True)
class Panel:
    """One panel: the ``panel`` key of :func:`trajectory_frame`, its axis label, title, scale."""

    key: str
    ylabel: str
    title: str
    logy: bool = False


PANELS_RETRAINED = (
    Panel("accuracy", "test accuracy (%)", "(a) Retrained: test accuracy"),
    Panel("remaining", "remaining weights (%, log scale)", "(a) Remaining weights", logy=True),
    Panel("pqi", r"global PQI $I_{0.5,1}$", "(a) Global PQI"),
    Panel("gini", "global Gini index", "(a) Global Gini index"),
)
PANELS_PRUNED = (
    Panel("pruned_accuracy", "test accuracy (%)", "(b) Pruned, not retrained: accuracy"),
    Panel("accuracy_gap", "retrained − pruned (points)", "(b) Accuracy difference"),
    Panel("pruned_pqi", r"global PQI $I_{0.5,1}$", "(b) Pruned, not retrained: PQI"),
    Panel("pqi_gap", "pruned − retrained PQI", "(b) PQI difference"),
)

#: panel -> (metric, stage, scope, p, q) of the records it shows.
SOURCES: dict[str, tuple[str, str, str, float | None, float | None]] = {
    "accuracy": ("accuracy", "retrained", "model", None, None),
    "remaining": ("remaining", "retrained", "model", None, None),
    "pqi": ("pqi", "retrained", "global", 0.5, 1.0),
    "gini": ("gini", "retrained", "global", None, None),
    "pruned_accuracy": ("accuracy", "pruned", "model", None, None),
    "pruned_pqi": ("pqi", "pruned", "global", 0.5, 1.0),
}
#: panel -> (a, b): the per-seed difference a − b at the same iteration.
DIFFERENCES: dict[str, tuple[str, str]] = {"accuracy_gap": ("accuracy", "pruned_accuracy"),
                                           "pqi_gap": ("pruned_pqi", "pqi")}


def _source(records: pd.DataFrame, panel: str) -> pd.DataFrame:
    metric, stage, scope, p, q = SOURCES[panel]
    part = common.one_per(common.select(records, metric, stage=stage, scope=scope, p=p, q=q), KEYS)
    if metric in common.PERCENT_METRICS:
        part = part.assign(value=100.0 * part["value"])
    return part.assign(panel=panel)


def trajectory_frame(records: pd.DataFrame, panels: Sequence[Panel] = PANELS_RETRAINED + PANELS_PRUNED
                     ) -> pd.DataFrame:
    """Long frame ``family, label, seed, iteration, panel, value`` for ``panels``.

    ``records``: labelled records (:func:`_sap_common.attach_labels`). Accuracy and remaining are
    converted to percent; differences are taken per seed and iteration (only iterations where
    both terms exist, i.e. 0…T−1 for pruned-stage terms).
    """
    wanted = [p.key for p in panels]
    unknown = [k for k in wanted if k not in SOURCES and k not in DIFFERENCES]
    if unknown:
        raise ValueError(f"unknown panel(s) {unknown}: allowed {[*SOURCES, *DIFFERENCES]}")
    needed = {k for k in wanted if k in SOURCES} | {t for k in wanted if k in DIFFERENCES for t in DIFFERENCES[k]}
    parts = {k: _source(records, k) for k in SOURCES if k in needed}
    out = [parts[k] for k in wanted if k in SOURCES]
    for key in (k for k in wanted if k in DIFFERENCES):
        a, b = DIFFERENCES[key]
        both = parts[a].merge(parts[b], on=KEYS, suffixes=("_a", "_b"))
        out.append(both[KEYS].assign(panel=key, value=both["value_a"] - both["value_b"]))
    frame = pd.concat(out, ignore_index=True)
    return frame[[*KEYS, "panel", "value"]].sort_values([*KEYS, "panel"], kind="stable").reset_index(drop=True)


def phases_table(frame: pd.DataFrame) -> pd.DataFrame:
    """PQI phases per (family, label), found on the mean PQI and mean accuracy over seeds by the rule claim
    1.1 tests (:func:`sparsity_lab.claims.pqi_phases.find_phases`): the trough t_min, peak t_max and drop
    t_3 iterations (NaN where not found), ``three_phases`` (all three with the collapse), ``reached`` (how far
    the rule got: no decrease, no rise, no drop, no collapse, three phases) and the rule's finding."""
    rows = []
    means = frame[frame["panel"].isin(["pqi", "accuracy"])].groupby(["family", "label", "panel", "iteration"],
                                                                     sort=False)["value"].mean()
    for (family, label), part in means.groupby(level=["family", "label"], sort=False):
        curves = part.droplevel(["family", "label"])
        pqi = curves.xs("pqi", level="panel") if "pqi" in curves.index.get_level_values("panel") else pd.Series(dtype=float)
        acc = (curves.xs("accuracy", level="panel") if "accuracy" in curves.index.get_level_values("panel")
               else pd.Series(dtype=float))
        rows.append({"family": family, "label": label, **phases_row(pqi.dropna(), acc.dropna())})
    return pd.DataFrame(rows, columns=["family", "label", *PHASE_COLUMNS])


def endpoint_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Per (family, label) at the last iteration T: mean over seeds of accuracy (%), remaining (%),
    global PQI and Gini; plus the highest mean accuracy along the run and where it occurred."""
    by = ["family", "label"]
    means = frame.groupby([*by, "panel", "iteration"], sort=False)["value"].mean().unstack("panel").reset_index()
    rows = []
    for key, part in means.groupby(by, sort=False):
        last = part.loc[part["iteration"].idxmax()]
        best = part.loc[part["accuracy"].idxmax()]
        rows.append({**dict(zip(by, key)), "T": int(last["iteration"]),
                     "accuracy_at_T (%)": last["accuracy"], "remaining_at_T (%)": last["remaining"],
                     "pqi_at_T": last.get("pqi", np.nan), "gini_at_T": last.get("gini", np.nan),
                     "best_accuracy (%)": best["accuracy"], "best_at_iteration": int(best["iteration"])})
    return pd.DataFrame(rows)


def draw_panels(axes: Sequence[Any], frame: pd.DataFrame, panels: Sequence[Panel], hue_order: Sequence[str],
                colours: Mapping[str, Any], *, title_prefix: str = "", **line_kw: Any) -> None:
    """One panel per axis: mean ± std over seeds of each label against iteration (``line_kw``: to
    ``ax.plot``, e.g. ``linewidth``, ``marker``)."""
    line_kw = {"linewidth": 1.6, **line_kw}
    for ax, panel in zip(axes, panels):
        part = frame[frame["panel"] == panel.key]
        style.line_with_band(ax, part, "iteration", "value", "label", hue_order=hue_order, palette=dict(colours),
                             logy=panel.logy, **line_kw)
        common.finish_axes(ax, xlabel="pruning iteration t", ylabel=panel.ylabel,
                           title=f"{title_prefix}{panel.title}")
        common.integer_ticks(ax)
        if panel.logy:
            common.plain_log_axis(ax.yaxis)
        if panel.key.endswith("_gap"):
            ax.axhline(0.0, color="0.5", linewidth=0.8, zorder=0)


def draw_trajectories(frame: pd.DataFrame, hue_order: Sequence[str], *, annotate: str | None = PHASE_LABEL
                      ) -> Figure:
    """The 2 × 4 grid of Fig. 2 with one legend on top; phases shaded on the PQI panel."""
    fig = Figure(figsize=(17, 8.4), layout="constrained")
    axes = fig.subplots(2, 4)
    colours = common.method_palette(list(hue_order))
    draw_panels(axes[0], frame, PANELS_RETRAINED, hue_order, colours)
    draw_panels(axes[1], frame, PANELS_PRUNED, hue_order, colours)
    curve = frame[frame["label"] == annotate]
    if annotate is not None and not curve.empty:
        mean = curve.groupby(["panel", "iteration"])["value"].mean()
        if {"pqi", "accuracy"} <= set(mean.index.get_level_values("panel")):
            style.annotate_phases(axes[0][2], mean.xs("pqi").dropna(), mean.xs("accuracy").dropna())
        axes[0][2].set_title(f"(a) Global PQI (phases of {annotate})")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper center", ncol=len(labels))
    return fig


@dataclass
class TrajectoryParams(SapParams):
    """Figure 1: the SAP parameters plus which methods are drawn; three seeds at ``gpu``."""

    seeds: list[int] = param("seeds (one run per method and seed)", smoke=[0], quick=[0, 1], gpu=[0, 1, 2],
                             paper=[0, 1, 2, 3])

    methods: list[str] = param("methods drawn (labels of SAP_METHODS)", default=list(METHOD_LABELS),
                               choices=METHOD_LABELS)


PANELS = {p.key: p for p in PANELS_RETRAINED + PANELS_PRUNED}


def draw_panel(ax: Any, records: pd.DataFrame, key: str, methods: Sequence[str], **line_kw: Any) -> Any:
    """Panel ``key`` (a key of ``PANELS``) alone on ``ax``, from the labelled records, with a legend."""
    panel = PANELS[key]
    draw_panels([ax], trajectory_frame(records, [panel]), [panel], methods, common.method_palette(list(methods)),
                **line_kw)
    ax.legend(fontsize=style.LEGEND_FONTSIZE)
    return ax


@register_figure(number=1, name="sap_trajectories", params=TrajectoryParams, claims=claims.CLAIMS)
class SapTrajectories:
    """Figure 1 (docs/figures.md item 1)."""

    PLOT_OPTIONS: dict[str, Any] = {"methods": None, "annotate": PHASE_LABEL}
    PANELS = {k: p.title for k, p in PANELS.items()}

    @staticmethod
    def runs(p: TrajectoryParams) -> list[Run]:
        return common.build_runs(p, common.method_variants(p.methods))

    @staticmethod
    def draw_panel(name: str, ax: Any, inputs: Inputs, p: TrajectoryParams, methods: Sequence[str] | None = None,
                   **line_kw: Any) -> Any:
        return draw_panel(ax, inputs.records, name, list(methods or p.methods), **line_kw)

    @staticmethod
    def draw(inputs: Inputs, p: TrajectoryParams, methods: Sequence[str] | None = None,
             annotate: str | None = PHASE_LABEL) -> Drawn:
        """``methods``: the curves drawn, in legend order (None: the parameter ``methods``); ``annotate``:
        the label whose PQI phases are shaded (None: no shading)."""
        frame = trajectory_frame(inputs.records)
        fig = draw_trajectories(frame, list(methods or p.methods), annotate=annotate)
        tables = {"PQI phases (mean global PQI)": phases_table(frame).drop(columns="family"),
                  "Endpoints (mean over seeds)": endpoint_table(frame).drop(columns="family"),
                  "Trajectories (mean ± std over seeds)": common.summarise(frame, ["panel", "label", "iteration"])}
        caption = sap_caption(p, extra="PQI difference = pruned − retrained; accuracy difference = retrained − pruned")
        return Drawn(fig, caption, tables)
