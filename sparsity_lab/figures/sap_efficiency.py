"""Figure 12: SAP's efficiency where the SAP paper shows it (docs/figures.md item 12).

The SAP paper's clearest evidence that SAP prunes further than Lottery Ticket at equal accuracy is its
ResNet-18 run at T = 15 (CIFAR-10: SAP(0.5, 1) about 2 % remaining against 3.5 % for LT and One Shot,
all near 94.5-95 %). The `gpu` profile runs that protocol (global scope, SGD + Nesterov, cosine over E
epochs per iteration, rewinding to θ₀) on FashionMNIST, the data this machine has; E is chosen so the
dense model is within 1 point of its converged accuracy: measured on one H100 (dense resnet18, the paper's
protocol, cosine over each E), E = 3, 6, 12 reach 92.93 %, 93.80 %, 94.20 %, so E = 6
(benchmarks/results/resnet18-fashionmnist-dense-epochs-h100.json). The `smoke` and `quick` profiles read the same runs as figure 1 (small models): there
the figure checks the code, not the paper.

Panels, x shared by (b)-(d): (a) test accuracy against percent of remaining weights (log x, each curve
against its own runs' x values, dense reference line and the band within 1 point of it); (b) percent
remaining against iteration (log y); (c) test accuracy against iteration; (d) global PQI I_{0.5,1}
against iteration. Mean ± std over seeds. The table gives, per method, the mean and seed spread at T of
the remaining fraction and the accuracy (claim 12.1's numbers) and the sparsest level within 1 point of
dense (figure 6's rule).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from sparsity_lab.claims import sap_efficiency as claims
from sparsity_lab.figures import _sap_common as common
from sparsity_lab.figures import sap_trajectories as trajectories
from sparsity_lab.figures import sap_vs_lth as comparison
from sparsity_lab.figures import style
from sparsity_lab.figures._bases import METHOD_LABELS, SapParams, sap_caption
from sparsity_lab.figures.params import param
from sparsity_lab.figures.registry import Drawn, Inputs, Run, register_figure

__all__ = ["EfficiencyParams", "SapEfficiency", "at_last_iteration"]

#: Panels (b)-(d): trajectories against the iteration, as figure 1 draws them.
ITERATION_PANELS = (
    trajectories.Panel("remaining", "remaining weights (%, log scale)", "(b) Remaining weights", logy=True),
    trajectories.Panel("accuracy", "test accuracy (%)", "(c) Retrained: test accuracy"),
    trajectories.Panel("pqi", r"global PQI $I_{0.5,1}$", "(d) Global PQI"),
)
PANELS = {"efficiency": "(a) test accuracy vs remaining weights",
          **{p.key: p.title for p in ITERATION_PANELS}}


@dataclass
class EfficiencyParams(SapParams):
    """Figure 12: the paper's ResNet-18 T = 15 protocol at `gpu` (FashionMNIST) and `paper` (CIFAR-10);
    `smoke`/`quick` read figure 1's runs."""

    model: str = param("model", smoke="mlp", quick="cnn_tiny", gpu="resnet18", paper="resnet18")
    iterations: int = param("T: pruning iterations (T + 1 trainings per run)", smoke=3, quick=20, gpu=15, paper=15)
    epochs: int = param("E: training epochs per pruning iteration (gpu: the dense model within 1 pt of converged)",
                        smoke=1, quick=2, gpu=6, paper=200)
    seeds: list[int] = param("seeds (one run per method and seed)", smoke=[0], quick=[0, 1], gpu=[0, 1, 2],
                             paper=[0, 1, 2, 3])
    methods: list[str] = param("methods compared (labels of SAP_METHODS)", default=list(METHOD_LABELS),
                               choices=METHOD_LABELS)
    tolerance: float = param("points below dense that still count as 'within' (the table)", default=1.0)


def at_last_iteration(frame: pd.DataFrame) -> pd.DataFrame:
    """Per method at its last iteration T: mean and seed spread (sample std) of remaining (%) and accuracy
    (%), from :func:`sap_vs_lth.efficiency_frame`'s per-seed rows."""
    last = frame[frame["iteration"] == frame.groupby("label")["iteration"].transform("max")]
    stats = last.groupby("label", sort=False).agg(
        T=("iteration", "max"), seeds=("seed", "nunique"), remaining_mean=("remaining", "mean"),
        remaining_std=("remaining", "std"), accuracy_mean=("accuracy", "mean"), accuracy_std=("accuracy", "std"))
    return stats.reset_index().rename(columns={
        "label": "method", "remaining_mean": "remaining at T (%)", "remaining_std": "remaining spread (pt)",
        "accuracy_mean": "accuracy at T (%)", "accuracy_std": "accuracy spread (pt)"})


@register_figure(number=12, name="sap_efficiency", params=EfficiencyParams, claims=claims.CLAIMS)
class SapEfficiency:
    """Figure 12 (docs/figures.md item 12)."""

    PLOT_OPTIONS: dict[str, Any] = {"methods": None}
    PANELS = PANELS

    @staticmethod
    def runs(p: EfficiencyParams) -> list[Run]:
        family = comparison.setup_name(p.dataset, p.model)
        return common.build_runs(p, common.method_variants(p.methods, family=family))

    @staticmethod
    def draw_panel(name: str, ax: Any, inputs: Inputs, p: EfficiencyParams, methods: Sequence[str] | None = None,
                   **line_kw: Any) -> Any:
        """Panel ``name`` alone on ``ax``: ``"efficiency"`` or one of the iteration panels."""
        hue_order = list(methods or p.methods)
        if name == "efficiency":
            comparison.draw_efficiency_panel(ax, comparison.efficiency_frame(inputs.records),
                                             comparison.setup_name(p.dataset, p.model), "remaining", hue_order,
                                             **line_kw)
        else:
            panel = next(q for q in ITERATION_PANELS if q.key == name)
            trajectories.draw_panels([ax], trajectories.trajectory_frame(inputs.records, [panel]), [panel],
                                     hue_order, common.method_palette(hue_order), **line_kw)
        ax.legend(fontsize=style.LEGEND_FONTSIZE)
        return ax

    @classmethod
    def draw(cls, inputs: Inputs, p: EfficiencyParams, methods: Sequence[str] | None = None) -> Drawn:
        """``methods``: the curves drawn, in legend order (None: the parameter ``methods``)."""
        hue_order = list(methods or p.methods)
        fig = Figure(figsize=(19, 4.8), layout="constrained")
        axes = fig.subplots(1, 4)
        setup = comparison.setup_name(p.dataset, p.model)
        efficiency = comparison.efficiency_frame(inputs.records)
        comparison.draw_efficiency_panel(axes[0], efficiency, setup, "remaining", hue_order)
        axes[0].set_title(f"(a) {setup}: accuracy vs remaining")
        frame = trajectories.trajectory_frame(inputs.records, ITERATION_PANELS)
        trajectories.draw_panels(axes[1:], frame, ITERATION_PANELS, hue_order, common.method_palette(hue_order))
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside upper center", ncol=len(labels))
        tables = {"At T: mean and seed spread (sample std) over seeds": at_last_iteration(efficiency),
                  f"Sparsest level within {p.tolerance:g} point of dense (mean over seeds)":
                  comparison.sparsest_within(efficiency, p.tolerance).drop(columns="setup")}
        extra = ("the SAP paper's ResNet-18 protocol: global, SGD + Nesterov, cosine over E, rewinding to θ₀"
                 if p.model == "resnet18" else
                 "figure 1's runs stand in for the paper's ResNet-18 T = 15 setting: a check of the code, not of the paper")
        return Drawn(fig, sap_caption(p, extra=extra), tables)
