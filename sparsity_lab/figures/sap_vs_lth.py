"""Figure 6: SAP versus Lottery Ticket, compression efficiency (docs/figures.md item 6).

For every (dataset, model) of ``params["setups"]``: test accuracy of the retrained model against
the percent of remaining weights (log x) and against the theoretical speedup (dense MACs /
non-zero MACs, log x), for SAP(0.5, 1), LT(P = 0.2), OS(P = 0.2) and a random-ticket control
(random masks with LT's per-layer densities, retrained from θ₀), mean ± std over seeds, each
curve against its own runs' x values. The dense accuracy (mean over seeds and methods of
iteration 0, where no weight is pruned yet) is a dashed reference line.

The table gives, per setup and method, the *sparsest level within 1 point of dense*: the lowest
mean percent remaining among iterations whose mean accuracy is ≥ dense − 1 percentage point
(any iteration qualifies, not only those before the first drop), with its accuracy, compression
(100 / remaining %) and speedup.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from sparsity_lab.claims import sap_vs_lth as claims
from sparsity_lab.figures import _sap_common as common
from sparsity_lab.figures import style
from sparsity_lab.figures._bases import ALL_METHOD_LABELS, SapParams, sap_caption
from sparsity_lab.figures.params import param
from sparsity_lab.figures.registry import Drawn, Inputs, Run, register_figure

__all__ = ["COMPARISON_METHODS", "PANELS", "RANDOM_TICKET", "ComparisonParams", "SapVsLth", "dense_accuracy",
           "draw_comparison", "draw_efficiency_panel", "efficiency_frame", "sparsest_within"]

RANDOM_TICKET = common.Variant("Random ticket (LT masks)", {"method": "random_ticket", "control_base": "lt"})
COMPARISON_METHODS = ("SAP (p=0.5, q=1)", "LT (P=0.2)", "OS (P=0.2)")
_KEYS = ["family", "label", "seed", "iteration"]


def setup_name(dataset: str, model: str) -> str:
    return f"{dataset} / {model}"


def efficiency_frame(records: pd.DataFrame) -> pd.DataFrame:
    """``family, label, seed, iteration, accuracy (%), remaining (%), speedup`` per run and
    iteration, joined on run id so every point carries its own run's x values."""
    keys = ["run_id", *_KEYS]
    out = None
    for metric in ("accuracy", "remaining", "speedup"):
        part = common.one_per(common.select(records, metric), keys).rename(columns={"value": metric})
        out = part if out is None else out.merge(part, on=keys, how="inner", validate="one_to_one")
    assert out is not None
    out[["accuracy", "remaining"]] *= 100.0
    return out[[*_KEYS, "run_id", "accuracy", "remaining", "speedup"]].sort_values(_KEYS).reset_index(drop=True)


def dense_accuracy(frame: pd.DataFrame) -> pd.Series:
    """Per family (setup): mean accuracy (%) over every run at iteration 0 (the dense model)."""
    dense = frame[frame["iteration"] == 0]
    if dense.empty:
        raise ValueError("no iteration-0 (dense) records")
    return dense.groupby("family")["accuracy"].mean().rename("dense accuracy (%)")


def sparsest_within(frame: pd.DataFrame, tolerance: float = 1.0) -> pd.DataFrame:
    """Per (family, label): the lowest mean remaining (%) whose mean accuracy ≥ dense − ``tolerance``, by
    claim 6.1's rule (:func:`sparsity_lab.claims.sap_vs_lth.sparsest_iteration`).

    Means are over seeds per iteration. NaN where no iteration qualifies.
    """
    dense = dense_accuracy(frame)
    means = frame.groupby(["family", "label", "iteration"], sort=False)[
        ["accuracy", "remaining", "speedup"]].mean().reset_index()
    rows = []
    for (family, label), part in means.groupby(["family", "label"], sort=False):
        curves = part.set_index("iteration")
        t = claims.sparsest_iteration(curves["remaining"], curves["accuracy"], dense[family], tolerance)
        row = {"setup": family, "method": label, "dense accuracy (%)": dense[family],
               "sparsest remaining (%)": np.nan, "accuracy there (%)": np.nan, "iteration": np.nan,
               "compression (×)": np.nan, "speedup (×)": np.nan}
        if t is not None:
            best = part[part["iteration"] == t].iloc[0]
            row.update({"sparsest remaining (%)": best["remaining"], "accuracy there (%)": best["accuracy"],
                        "iteration": int(best["iteration"]), "compression (×)": 100.0 / best["remaining"],
                        "speedup (×)": best["speedup"]})
        rows.append(row)
    return pd.DataFrame(rows)


#: The two panels of a setup's row: name → (x column, x-axis label).
PANELS = {"remaining": ("remaining", "remaining weights (%, log scale)"),
          "speedup": ("speedup", "theoretical speedup (×, log scale)")}


def draw_efficiency_panel(ax: Any, frame: pd.DataFrame, setup: str, x: str, hue_order: Sequence[str],
                          **line_kw: Any) -> Any:
    """Accuracy against ``x`` (``"remaining"`` or ``"speedup"``, log scale) for one setup, each curve against
    its own runs' x values, with the dense line and the band within 1 point of it."""
    dense = dense_accuracy(frame)
    style.line_with_band(ax, frame[frame["family"] == setup], x, "accuracy", "label", by="iteration",
                         hue_order=hue_order, palette=common.method_palette(list(hue_order)),
                         **{"linewidth": 1.6, **line_kw})
    ax.axhline(dense[setup], color="0.2", linestyle="--", linewidth=1, label="dense (iteration 0)")
    ax.axhspan(dense[setup] - 1.0, dense[setup], color="0.5", alpha=0.1, linewidth=0,
               label="within 1 point of dense")
    ax.set_xscale("log")
    common.plain_log_axis(ax.xaxis)
    common.finish_axes(ax, xlabel=PANELS[x][1], ylabel="test accuracy (%)", title=setup)
    if x == "remaining":
        ax.invert_xaxis()
    return ax


def draw_comparison(frame: pd.DataFrame, setups: Sequence[str], hue_order: Sequence[str]) -> Figure:
    """One row per setup: accuracy vs remaining (%) and vs speedup, with the dense line."""
    fig = Figure(figsize=(13, 4.6 * len(setups)), layout="constrained")
    axes = fig.subplots(len(setups), 2, squeeze=False)
    for row, setup in zip(axes, setups):
        for ax, x in zip(row, PANELS):
            draw_efficiency_panel(ax, frame, setup, x, hue_order)
    axes[0][0].legend(loc="lower left", fontsize=style.LEGEND_FONTSIZE)
    return fig


@dataclass
class ComparisonParams(SapParams):
    """Figure 6: every (dataset, model) setup of the profile, SAP vs LT vs OS vs a random ticket; three seeds
    at ``gpu``."""

    seeds: list[int] = param("seeds (one run per method, setup and seed)", smoke=[0], quick=[0, 1], gpu=[0, 1, 2],
                             paper=[0, 1, 2, 3])

    setups: list[list[str]] = param("[dataset, model] pairs compared", smoke=[["digits", "mlp"]],
                                    quick=[["fashionmnist", "cnn_tiny"], ["mnist", "lenet300_100"]],
                                    gpu=[["fashionmnist", "cnn"], ["fashionmnist", "mlp"], ["fashionmnist", "linear"]],
                                    paper=[["cifar10", "resnet18"]])
    iterations: int = param("T: pruning iterations (T + 1 trainings per run)", smoke=3, quick=20, gpu=30, paper=15)
    methods: list[str] = param("methods compared (labels of SAP_METHODS, or SNIP (P=0.2))",
                               default=list(COMPARISON_METHODS), choices=ALL_METHOD_LABELS)
    random_ticket: bool = param("add the random-ticket control (LT's per-layer densities)", default=True)
    tolerance: float = param("points below dense that still count as 'within' (the table)", default=1.0)


def _setups(p: ComparisonParams) -> list[tuple[str, str]]:
    bad = [s for s in p.setups if len(s) != 2]
    if bad:
        raise ValueError(f"parameter setups: {bad[0]!r} is not a [dataset, model] pair")
    return [(str(d), str(m)) for d, m in p.setups]


@register_figure(number=6, name="sap_vs_lth", params=ComparisonParams, claims=claims.CLAIMS)
class SapVsLth:
    """Figure 6 (docs/figures.md item 6)."""

    @staticmethod
    def _variants(p: ComparisonParams, family: str) -> list[common.Variant]:
        variants = common.method_variants(p.methods) + ([RANDOM_TICKET] if p.random_ticket else [])
        return [common.Variant(v.label, v.overrides, family) for v in variants]

    @classmethod
    def runs(cls, p: ComparisonParams) -> list[Run]:
        return [r for d, m in _setups(p)
                for r in common.build_runs(p, cls._variants(p, setup_name(d, m)), dataset=d, model=m)]

    PLOT_OPTIONS: dict[str, Any] = {"methods": None}
    PANELS = {k: f"test accuracy vs {label}, one setup" for k, (_, label) in PANELS.items()}

    @classmethod
    def draw_panel(cls, name: str, ax: Any, inputs: Inputs, p: ComparisonParams, setup: str | None = None,
                   methods: Sequence[str] | None = None, **line_kw: Any) -> Any:
        """Panel ``name`` of the row ``setup`` (``"<dataset> / <model>"``; None: the first setup) on ``ax``."""
        setup = setup or setup_name(*_setups(p)[0])
        hue_order = list(methods or [v.label for v in cls._variants(p, "")])
        draw_efficiency_panel(ax, efficiency_frame(inputs.records), setup, name, hue_order, **line_kw)
        ax.legend(loc="lower left", fontsize=style.LEGEND_FONTSIZE)
        return ax

    @classmethod
    def draw(cls, inputs: Inputs, p: ComparisonParams, methods: Sequence[str] | None = None) -> Drawn:
        """``methods``: the curves drawn, in legend order (None: the parameters' methods and the control)."""
        setups = _setups(p)
        frame = efficiency_frame(inputs.records)
        names = [setup_name(d, m) for d, m in setups]
        hue_order = list(methods or [v.label for v in cls._variants(p, "")])
        fig = draw_comparison(frame, names, hue_order)
        stats = frame.groupby(["family", "label", "iteration"], sort=False)[["remaining", "speedup", "accuracy"]].agg(
            ["mean", "std"])
        stats.columns = [f"{a} {b}" for a, b in stats.columns]
        tables = {f"Sparsest level within {p.tolerance:g} point of dense (mean over seeds)":
                  sparsest_within(frame, p.tolerance),
                  "Accuracy vs remaining and speedup (mean, std over seeds)": stats.reset_index()}
        caption = sap_caption(p, dataset=", ".join(sorted({d for d, _ in setups})),
                              model=", ".join(sorted({m for _, m in setups})),
                              extra=f"setups: {'; '.join(names)}; random ticket copies LT's per-layer densities")
        return Drawn(fig, caption, tables)
