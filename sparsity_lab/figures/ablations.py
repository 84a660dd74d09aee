"""Shared machinery of Figures 3 and 4 (SAP paper Figs. 4 and 5), the ablations of SAP's
hyperparameters under global pruning (:mod:`.pq_ablation`, :mod:`.eta_gamma_ablation`).

Each family of values is one row of the four panels of Fig. 2(a)
(:data:`trajectories.PANELS_RETRAINED`): retrained accuracy, percent remaining (log), global PQI
I_{0.5,1} (tracked at (0.5, 1) whatever (p, q) pruned) and Gini. SAP's rule (docs/methods.md §3):
keep r = ⌈d (1+η_r)^{−q/(q−p)} (1 − I_{p,q})^{qp/(q−p)}⌉ and prune
c = ⌊d · clamp(γ (1 − r/d), 0, β)⌋, so larger γ or η_r prunes faster.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
from matplotlib.figure import Figure

from sparsity_lab.figures import _sap_common as common
from sparsity_lab.figures._bases import SapParams, sap_caption
from sparsity_lab.figures.params import param
from sparsity_lab.figures.registry import Drawn, Inputs
from sparsity_lab.figures.sap_trajectories import PANELS_RETRAINED, draw_panels, endpoint_table, phases_table
from sparsity_lab.figures.sap_trajectories import trajectory_frame as _trajectory_frame

__all__ = ["AblationParams", "draw_ablation", "draw_rows"]


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


@dataclass
class AblationParams(SapParams):
    """Figures 3-4: the SAP parameters with one seed and E = 5 at ``gpu`` (docs/figures.md "Profiles")."""

    epochs: int = param("E: training epochs per pruning iteration", smoke=1, quick=2, gpu=5, paper=200)
    seeds: list[int] = param("seeds (ablations: one)", default=[0], paper=[0, 1, 2, 3])


def draw_rows(inputs: Inputs, p: SapParams, variants: list[common.Variant], extra: str) -> Drawn:
    """The ablation figure, its tables and caption from the loaded records."""
    frame = _trajectory_frame(inputs.records, PANELS_RETRAINED)
    fig = draw_ablation(frame, variants)
    tables = {"Endpoints (mean over seeds)": endpoint_table(frame),
              "PQI phases (mean global PQI)": phases_table(frame),
              "Trajectories (mean ± std over seeds)": common.summarise(frame, ["family", "label", "panel",
                                                                             "iteration"])}
    return Drawn(fig, sap_caption(p, scope="global", extra=extra), tables)
