"""Shared machinery of Figures 3 and 4 (SAP paper Figs. 4 and 5), the ablations of SAP's
hyperparameters under global pruning (:mod:`.pq_ablation`, :mod:`.eta_gamma_ablation`).

Each family of values is one row of the four panels of Fig. 2(a)
(:data:`trajectories.PANELS_RETRAINED`): retrained accuracy, percent remaining (log), global PQI
I_{0.5,1} (tracked at (0.5, 1) whatever (p, q) pruned) and Gini. SAP's rule (METHODS.md §3):
keep r = ⌈d (1+η_r)^{−q/(q−p)} (1 − I_{p,q})^{qp/(q−p)}⌉ and prune
c = ⌊d · clamp(γ (1 − r/d), 0, β)⌋, so larger γ or η_r prunes faster.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from sparsity_lab.figures import _sap_common as common
from sparsity_lab.figures._result import FigureResult
from sparsity_lab.figures.trajectories import PANELS_RETRAINED, draw_panels, endpoint_table, phases_table
from sparsity_lab.figures.trajectories import trajectory_frame as _trajectory_frame

__all__ = ["ablation_values", "draw_ablation", "run_ablation"]


def ablation_values(table: Mapping[str, tuple[float, ...]], profile: str, name: str,
                    override: Sequence[float] | None = None) -> tuple[float, ...]:
    """``table[profile]`` (the profile's list of ``name``), or ``override`` when given."""
    if override is not None:
        values = tuple(float(v) for v in override)
        if not values:
            raise ValueError(f"{name} must list at least one value")
        return values
    if profile not in table:
        raise ValueError(f"unknown profile {profile!r} for {name}: allowed {sorted(table)}")
    return table[profile]


def draw_ablation(frame: pd.DataFrame, variants: Sequence[common.Variant]) -> Figure:
    """One row of four panels per family; each row has its own legend (ordered colours)."""
    families = list(dict.fromkeys(v.family for v in variants))
    fig = Figure(figsize=(17, 4.3 * len(families)), layout="constrained")
    axes = fig.subplots(len(families), 4, squeeze=False)
    for row, family in zip(axes, families):
        labels = [v.label for v in variants if v.family == family]
        draw_panels(row, frame[frame["family"] == family], PANELS_RETRAINED, labels,
                    common.palette(labels, ordered=True), title_prefix=f"{family}: ")
        for ax in row:
            ax.set_title(ax.get_title().replace("(a) ", ""), fontsize="small")
        handles, names = row[0].get_legend_handles_labels()
        row[-1].legend(handles, names, title=family, loc="center left", bbox_to_anchor=(1.02, 0.5),
                       fontsize="small", title_fontsize="small")
    return fig


def run_ablation(name: str, variants: list[common.Variant], params: dict[str, Any], *, store: Any,
                 device: str | None, output_dir: Any, progress: bool, extra: str) -> FigureResult:
    """Run (or reuse) every variant × seed, draw the rows, return the figure and its tables."""
    configs, assignments = common.build_runs(params, variants)
    records = common.attach_labels(common.fetch(configs, store=store, device=device, progress=progress), assignments)
    frame = _trajectory_frame(records, PANELS_RETRAINED)
    fig = draw_ablation(frame, variants)
    tables = {"Endpoints (mean over seeds)": endpoint_table(frame),
              "PQI phases (mean global PQI)": phases_table(frame),
              "Trajectories (mean ± std over seeds)": common.summarise(frame, ["family", "label", "panel",
                                                                             "iteration"])}
    text = common.figure_caption(params, scope="global", extra=extra)
    return common.publish(fig, name, text, tables, assignments["run_id"], params, output_dir)
