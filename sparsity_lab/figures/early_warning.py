"""Figure 11: PQI as an early warning of the collapse (beyond the papers; docs/figures.md item 11,
docs/methods.md §6).

The rule (:mod:`sparsity_lab.measures.early_warning`) reads one run's global PQI I_{0.5,1} trajectory alone:
it flags the iteration where PQI has risen 10 % above its running minimum (the compression phase), fires
at a 30 % rise and recommends keeping the iteration one before. Its thresholds were fitted on the `quick`
profile's runs (``benchmarks/early_warning_eval.py``) and are used unchanged here; on `quick` the figure
shows the fit (in sample), on `gpu` the evaluation.

The runs are those of the SAP figures (1, 2, 3, 4, 6 and 12) that prune to collapse or near it
(:func:`sparsity_lab.claims.early_warning.collapse_prone`): One Shot, SAP other than plain SAP(0.5, 1), and the
ablations. One small panel per run: PQI against the iteration with its running minimum, the flag (orange,
dashed), the stop (green) and the collapse t_c (red, dotted), and the test accuracy on the right axis.
The table gives each run's numbers; the claims count the runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from sparsity_lab.claims import early_warning as claims
from sparsity_lab.figures import style
from sparsity_lab.figures.params import FigureParams, param, resolve
from sparsity_lab.figures.registry import Drawn, Inputs, Run, get_figure, register_figure
from sparsity_lab.measures.early_warning import WarningRule, pqi_trajectories

__all__ = ["ABLATIONS", "SOURCES", "EarlyWarningParams", "PqiEarlyWarning", "draw_run"]

#: The figures whose runs are read, and those (the ablations) read whole.
SOURCES = ("sap_trajectories", "pruning_scopes", "pq_ablation", "eta_gamma_ablation", "sap_vs_lth", "sap_efficiency")
ABLATIONS = ("pq_ablation", "eta_gamma_ablation")
COLOURS = {"pqi": "#0072B2", "accuracy": "0.55", "flag": "#E69F00", "stop": "#009E73", "collapse": "#D55E00"}


@dataclass
class EarlyWarningParams(FigureParams):
    """Figure 11: the source figures (read at this profile) and the rule's thresholds."""

    sources: list[str] = param("figures whose collapse-prone runs are read", default=list(SOURCES), choices=SOURCES)
    flag_rise: float = param("rise of PQI over its running minimum that flags the compression phase",
                             default=WarningRule().flag_rise)
    stop_rise: float = param("rise at which the stop fires", default=WarningRule().stop_rise)
    back: int = param("iterations the stop steps back from where it fired", default=WarningRule().back)
    columns: int = param("panels per row", default=6)


def _rule(p: EarlyWarningParams) -> WarningRule:
    return WarningRule(p.flag_rise, p.stop_rise, p.back)


def draw_run(ax: Any, traj: pd.DataFrame, row: pd.Series, title: str) -> Any:
    """One run: PQI and its running minimum, flag, stop and collapse; accuracy (pt) on a twin axis."""
    t = traj.index.to_numpy()
    ax.plot(t, traj["pqi"], color=COLOURS["pqi"], linewidth=1.4, label="global PQI")
    ax.plot(t, np.minimum.accumulate(traj["pqi"].to_numpy(float)), color=COLOURS["pqi"], linewidth=0.8,
            linestyle=":", label="running minimum")
    for key, style_kw, name in (("flag", {"linestyle": "--"}, "flag"), ("stop", {"linewidth": 2}, "stop"),
                                ("t_collapse", {"linestyle": ":", "linewidth": 1.6}, "collapse t_c")):
        value = row[key]
        if value is not None and not pd.isna(value):
            colour = COLOURS["collapse" if key == "t_collapse" else key]
            ax.axvline(int(value), color=colour, label=name, **{"linewidth": 1.2, **style_kw})
    twin = ax.twinx()
    twin.plot(t, traj["accuracy"], color=COLOURS["accuracy"], linewidth=1.0, label="test accuracy (%)")
    twin.set_ylim(0, 100)
    twin.tick_params(labelsize=7, colors=COLOURS["accuracy"])
    ax.tick_params(labelsize=7)
    ax.set_title(title, fontsize=8)
    return ax


@register_figure(number=11, name="early_warning", params=EarlyWarningParams, claims=claims.CLAIMS)
class PqiEarlyWarning:
    """Figure 11 (docs/figures.md item 11)."""

    @staticmethod
    def runs(p: EarlyWarningParams) -> list[Run]:
        out: dict[str, Run] = {}
        for name in p.sources:
            spec = get_figure(name)
            for run in spec.runs(resolve(spec.params, p.profile, figure=name)):
                if run.run_id not in out and claims.collapse_prone(run.config, ablation=name in ABLATIONS):
                    out[run.run_id] = Run(run.config, {"family": f"figure {spec.number}",
                                                       "label": claims.run_label(run.config)})
        return list(out.values())

    @staticmethod
    def claims_input(inputs: Inputs, p: EarlyWarningParams, drawn: Drawn) -> pd.DataFrame:
        """The labelled records, so a failing verdict names its runs in words."""
        return inputs.records

    @classmethod
    def draw(cls, inputs: Inputs, p: EarlyWarningParams) -> Drawn:
        # one Run per run id (runs()), so the records hold each observation once
        trajectories = pqi_trajectories(inputs.records)
        table = claims.evaluate_trajectories(trajectories, _rule(p))
        labels = inputs.records.drop_duplicates("run_id").set_index("run_id")[["family", "label"]]
        table = labels.join(table.set_index("run_id"), how="inner").reset_index()
        number = table["family"].str.extract(r"(\d+)$", expand=False).astype(int)
        table = table.assign(_n=number).sort_values(["_n", "label"], kind="stable", ignore_index=True).drop(columns="_n")
        n = len(table)
        cols = max(1, min(p.columns, n))
        rows = max(1, math.ceil(n / cols))
        fig = Figure(figsize=(2.9 * cols, 2.3 * rows + 0.6), layout="constrained")
        axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False).ravel())
        for ax, row in zip(axes, table.itertuples(index=False)):
            draw_run(ax, trajectories[row.run_id], pd.Series(row._asdict()), row.label)
        for ax in axes[n:]:
            ax.set_visible(False)
        if n:
            handles, names = axes[0].get_legend_handles_labels()
            fig.legend(handles, names, loc="outside upper center", ncol=len(names), fontsize=style.LEGEND_FONTSIZE)
        rule = _rule(p)
        figures = ", ".join(str(k) for k in sorted({int(f.split()[-1]) for f in table["family"]}))
        caption = (f"profile {p.profile} · {n} runs of figures {figures} that prune to "
                   f"collapse or near it · rule: flag at {rule.flag_rise:g} rise over the running minimum of global "
                   f"PQI I_0.5,1, stop fires at {rule.stop_rise:g}, keeps the iteration {rule.back} before · "
                   f"thresholds fitted on the quick profile's runs" + (" (these runs: in sample)" if p.profile == "quick"
                                                                        else ", used unchanged here"))
        shown = table.drop(columns=["run_id"])
        return Drawn(fig, caption, {"Per run: flag, stop, collapse and the labels' verdict": shown,
                                    "Claims 11.1-11.3 by run count": claims.summarise_evaluation(table)})
