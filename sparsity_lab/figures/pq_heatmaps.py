"""Figure 5: global PQI over the (p, q) grid (docs/figures.md item 5; docs/methods.md §1).

For one SAP(0.5, 1) run and one LT run (the first seed of the profile), annotated heat-maps of
the global PQ Index I_{p,q}(w_t ⊙ m_t) over p ∈ {0.1, …, 1.0} (rows) × q ∈ {1.0, …, 2.0}
(columns) at a few iterations (default 0, ⌊T/2⌋ and T). I_{p,q} is defined only for p < q: cells
with p ≥ q are NaN and left blank. All panels share one colour scale, so a panel that is
brighter overall is sparser at every (p, q).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from sparsity_lab.claims import pq_heatmaps as claims
from sparsity_lab.figures import _sap_common as common
from sparsity_lab.figures._bases import METHOD_LABELS, SapParams, sap_caption
from sparsity_lab.figures.params import param
from sparsity_lab.figures.registry import Drawn, Inputs, Run, register_figure

__all__ = ["HEATMAP_METHODS", "HeatmapParams", "P_GRID", "PqHeatmaps", "Q_GRID", "default_iterations", "draw_heatmaps",
           "pq_grid_frame", "pq_pivot"]

P_GRID = tuple(round(0.1 * k, 1) for k in range(1, 11))
Q_GRID = tuple(round(1.0 + 0.1 * k, 1) for k in range(11))
HEATMAP_METHODS = ("SAP (p=0.5, q=1)", "LT (P=0.2)")
#: The record group of the global PQI over the grid (store/record_groups.py; named, not imported: figures
#: do not import the store, and ``pipeline.load`` refuses a name it does not know).
GRID_RECORDS = "pq_grid.global"


def default_iterations(T: int) -> tuple[int, ...]:
    """0, ⌊T/2⌋ and T without repeats."""
    return tuple(dict.fromkeys([0, T // 2, T]))


def pq_grid_frame(records: pd.DataFrame, iterations: Sequence[int], stage: str = "retrained") -> pd.DataFrame:
    """``label, iteration, p, q, value`` of the global PQI over the grid at ``iterations``; p and q
    rounded to one decimal so they match :data:`P_GRID` / :data:`Q_GRID` exactly."""
    part = common.select(records, "pqi", stage=stage, scope="global")
    part = part[part["iteration"].isin(list(iterations))]
    missing = sorted(set(iterations) - set(part["iteration"]))
    if missing:
        raise ValueError(f"no global PQI records at iteration(s) {missing}; have {sorted(part['iteration'].unique())}")
    part = part.assign(p=part["p"].round(1), q=part["q"].round(1))
    return common.one_per(part, ["label", "iteration", "p", "q"])


def pq_pivot(frame: pd.DataFrame, label: str, iteration: int, p_values: Sequence[float] = P_GRID,
             q_values: Sequence[float] = Q_GRID) -> pd.DataFrame:
    """p × q table (index p, columns q) of one run at one iteration, on the full grid, NaN where
    p ≥ q (PQI undefined) or where nothing was recorded."""
    part = frame[(frame["label"] == label) & (frame["iteration"] == iteration)]
    if part.empty:
        raise ValueError(f"no grid PQI for label={label!r} at iteration {iteration}")
    table = part.pivot(index="p", columns="q", values="value").reindex(index=list(p_values), columns=list(q_values))
    undefined = np.asarray(p_values, float)[:, None] >= np.asarray(q_values, float)[None, :] - 1e-12
    return table.mask(undefined).astype(float)


def draw_heatmaps(frame: pd.DataFrame, labels: Sequence[str], iterations: Sequence[int]) -> Figure:
    """Rows = runs, columns = iterations; one shared colour bar; each defined cell annotated."""
    import seaborn as sns

    fig = Figure(figsize=(6.4 * len(iterations) + 1.2, 5.6 * len(labels)), layout="constrained")
    axes = fig.subplots(len(labels), len(iterations), squeeze=False)
    finite = frame["value"][np.isfinite(frame["value"])]
    vmin, vmax = float(finite.min()), float(finite.max())
    for r, label in enumerate(labels):
        for c, t in enumerate(iterations):
            ax = axes[r][c]
            table = pq_pivot(frame, label, t)
            sns.heatmap(table, ax=ax, vmin=vmin, vmax=vmax, cmap="viridis", annot=True, fmt=".2f",
                        annot_kws={"fontsize": 9}, cbar=False, square=False, linewidths=0.3, linecolor="white",
                        xticklabels=[f"{q:.1f}" for q in table.columns],
                        yticklabels=[f"{p:.1f}" for p in table.index])
            ax.set_facecolor("0.93")
            ax.set_title(f"{label}, iteration t = {t}")
            ax.set_xlabel("q")
            ax.set_ylabel("p")
            ax.tick_params(labelsize="small", rotation=0)
    mappable = axes[0][0].collections[0]
    fig.colorbar(mappable, ax=axes, shrink=0.6, label=r"global PQI $I_{p,q}$ (blank: p ≥ q, undefined)")
    return fig


@dataclass
class HeatmapParams(SapParams):
    """Figure 5: one seed of figure 1's runs (same configs, so they are reused), the iterations drawn."""

    seeds: list[int] = param("seed of the runs drawn (one)", default=[0])
    heatmap_iterations: list[int] = param("iterations drawn ([] = 0, T/2 and T)", default=[])
    methods: list[str] = param("runs drawn (labels of SAP_METHODS)", default=list(HEATMAP_METHODS),
                               choices=METHOD_LABELS)


def chosen_iterations(p: HeatmapParams) -> tuple[int, ...]:
    iterations = tuple(p.heatmap_iterations) or default_iterations(p.iterations)
    bad = [t for t in iterations if not 0 <= t <= p.iterations]
    if bad:
        raise ValueError(f"parameter heatmap_iterations={bad}: allowed 0..T={p.iterations}")
    return iterations


@register_figure(number=5, name="pq_heatmaps", params=HeatmapParams, claims=claims.CLAIMS)
class PqHeatmaps:
    """Figure 5 (docs/figures.md item 5)."""

    @staticmethod
    def runs(p: HeatmapParams) -> list[Run]:
        chosen_iterations(p)
        # the global grid PQI (claim 5.1 reads every recorded iteration, not only the drawn ones)
        return [replace(run, records=(GRID_RECORDS,))
                for run in common.build_runs(p, common.method_variants(p.methods))]

    @staticmethod
    def draw(inputs: Inputs, p: HeatmapParams) -> Drawn:
        iterations = chosen_iterations(p)
        frame = pq_grid_frame(inputs.records, iterations)
        fig = draw_heatmaps(frame, p.methods, iterations)
        tables = {f"{label}, t = {t}": pq_pivot(frame, label, t).reset_index()
                  for label in p.methods for t in iterations}
        caption = sap_caption(p, extra=f"grid PQI of the retrained model; iterations {list(iterations)}")
        return Drawn(fig, caption, tables)
