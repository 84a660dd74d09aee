"""Figure 2 (SAP paper Fig. 3): pruning scopes neuron-wise, layer-wise and global.

One column per scope. Row (a): test accuracy of the retrained model against the percent of
remaining weights, for the four methods; every curve is drawn against *its own* run's realised
remaining fraction (records of the same run id and iteration; the reference plotting code
swapped the x-data of two panels, which this module does not do). Row (b): percent remaining of
the first, a middle (index ⌊L/2⌋) and the last prunable layer vs iteration for SAP(0.5, 1).
Row (c): PQI I_{0.5,1} of those three layers vs iteration (same run, same (p, q)).

Prunable layers are ordered as the records list them (the model's parameter order). Per-layer
remaining fractions are read from records with ``scope="layer"`` and metric ``remaining``
(or ``density``, whichever the measures module writes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
from matplotlib.figure import Figure

from sparsity_lab.claims import pruning_scopes as claims
from sparsity_lab.figures import _sap_common as common
from sparsity_lab.figures import style
from sparsity_lab.figures._bases import METHOD_LABELS, SapParams, sap_caption
from sparsity_lab.figures.params import param
from sparsity_lab.figures.registry import Drawn, Inputs, Run, register_figure

__all__ = ["LAYER_REMAINING_METRICS", "SCOPE_ORDER", "PruningScopes", "ScopesParams", "accuracy_vs_remaining",
           "draw_scopes", "layer_frame", "pick_layers"]

SCOPE_ORDER = ("neuron", "layer", "global")
SCOPE_TITLES = {"neuron": "neuron-wise", "layer": "layer-wise", "global": "global"}
LAYER_LABEL = "SAP (p=0.5, q=1)"
#: Metric names that may carry a layer's remaining fraction (first present wins).
LAYER_REMAINING_METRICS = ("remaining", "density")
_KEYS = ["family", "label", "seed", "iteration"]


def accuracy_vs_remaining(records: pd.DataFrame) -> pd.DataFrame:
    """``family, label, seed, iteration, run_id, remaining, accuracy`` (both in percent), joined
    per run id and iteration, so every accuracy is paired with its own run's remaining fraction."""
    keys = ["run_id", *_KEYS]
    acc = common.one_per(common.select(records, "accuracy"), keys).rename(columns={"value": "accuracy"})
    rem = common.one_per(common.select(records, "remaining"), keys).rename(columns={"value": "remaining"})
    both = acc.merge(rem, on=keys, how="inner", validate="one_to_one")
    both[["accuracy", "remaining"]] *= 100.0
    return both[[*_KEYS, "run_id", "remaining", "accuracy"]].sort_values(_KEYS, kind="stable").reset_index(drop=True)


def pick_layers(groups: Sequence[str]) -> dict[str, str]:
    """First, middle (index ⌊L/2⌋) and last of the prunable layers, in their given order,
    as ``{group: "first: <name>"}``; fewer entries when the model has fewer than three layers."""
    groups = list(dict.fromkeys(groups))
    if not groups:
        raise ValueError("no prunable layers in the records")
    chosen = {"first": groups[0], "middle": groups[len(groups) // 2], "last": groups[-1]}
    out: dict[str, str] = {}
    for role, name in chosen.items():
        out.setdefault(name, f"{role}: {name}")
    return out


def layer_frame(records: pd.DataFrame, label: str = LAYER_LABEL) -> pd.DataFrame:
    """``family, label, seed, iteration, layer, panel, value`` for the runs of ``label``: panel
    ``remaining`` (percent of the layer's weights) and ``pqi`` (layer PQI I_{0.5,1})."""
    part = records[records["label"] == label]
    if part.empty:
        raise ValueError(f"no records labelled {label!r}; labels present: {sorted(records['label'].unique())}")
    keys = [*_KEYS, "group"]
    metric = next((m for m in LAYER_REMAINING_METRICS
                   if ((part["metric"] == m) & (part["scope"] == "layer")).any()), LAYER_REMAINING_METRICS[0])
    rem = common.one_per(common.select(part, metric, scope="layer", group=None), keys)
    pqi = common.one_per(common.select(part, "pqi", scope="layer", group=None, p=0.5, q=1.0), keys)
    layers = pick_layers(list(pqi["group"]))
    frames = [rem.assign(panel="remaining", value=100.0 * rem["value"]), pqi.assign(panel="pqi")]
    out = pd.concat(frames, ignore_index=True)
    out = out[out["group"].isin(layers)].assign(layer=lambda f: f["group"].map(layers))
    return out[[*_KEYS, "layer", "panel", "value"]].reset_index(drop=True)


def draw_scopes(acc: pd.DataFrame, layers: pd.DataFrame, hue_order: Sequence[str],
                scopes: Sequence[str] = SCOPE_ORDER) -> Figure:
    """3 rows (a, b, c) × one column per scope."""
    fig = Figure(figsize=(5.2 * len(scopes), 12), layout="constrained")
    axes = fig.subplots(3, len(scopes), squeeze=False)
    colours = common.method_palette(list(hue_order))
    layer_names = list(dict.fromkeys(layers["layer"]))
    layer_colours = common.palette(layer_names, ordered=True)
    for col, scope in enumerate(scopes):
        ax = axes[0][col]
        style.line_with_band(ax, acc[acc["family"] == scope], "remaining", "accuracy", "label", by="iteration",
                             hue_order=hue_order, palette=colours, linewidth=1.6)
        ax.set_xscale("log")
        common.plain_log_axis(ax.xaxis)
        ax.invert_xaxis()
        common.finish_axes(ax, xlabel="remaining weights (%, log scale, own run)", ylabel="test accuracy (%)",
                           title=f"(a) {SCOPE_TITLES[scope]} pruning")
        for row, panel, ylabel in ((1, "remaining", "layer remaining weights (%, log scale)"),
                                   (2, "pqi", r"layer PQI $I_{0.5,1}$")):
            ax = axes[row][col]
            part = layers[(layers["family"] == scope) & (layers["panel"] == panel)]
            style.line_with_band(ax, part, "iteration", "value", "layer", hue_order=layer_names,
                                 palette=layer_colours, logy=panel == "remaining", linewidth=1.6)
            common.finish_axes(ax, xlabel="pruning iteration t", ylabel=ylabel,
                               title=f"({'bc'[row - 1]}) {SCOPE_TITLES[scope]}, {LAYER_LABEL}")
            common.integer_ticks(ax)
            if panel == "remaining":
                common.plain_log_axis(ax.yaxis)
    axes[0][0].legend(loc="best", fontsize="x-small")
    axes[1][0].legend(loc="best", fontsize="x-small")
    return fig


@dataclass
class ScopesParams(SapParams):
    """Figure 2: the SAP parameters, the scopes compared and the methods drawn."""

    seeds: list[int] = param("seeds (one run per method, scope and seed)", smoke=[0], quick=[0], gpu=[0, 1],
                             paper=[0, 1, 2, 3])
    scopes: list[str] = param("pruning scopes compared", default=list(SCOPE_ORDER), choices=SCOPE_ORDER)
    methods: list[str] = param("methods drawn (SAP (p=0.5, q=1) is always run: rows b-c)",
                               default=list(METHOD_LABELS), choices=METHOD_LABELS)


@register_figure(number=2, name="pruning_scopes", params=ScopesParams, claims=claims.CLAIMS)
class PruningScopes:
    """Figure 2 (docs/figures.md item 2)."""

    @staticmethod
    def _methods(p: ScopesParams) -> list[str]:
        return list(p.methods) if LAYER_LABEL in p.methods else [LAYER_LABEL, *p.methods]

    @classmethod
    def runs(cls, p: ScopesParams) -> list[Run]:
        methods = cls._methods(p)
        return [r for scope in p.scopes
                for r in common.build_runs(p, common.method_variants(methods, family=scope, extra={"scope": scope}))]

    @classmethod
    def draw(cls, inputs: Inputs, p: ScopesParams) -> Drawn:
        hue_order = cls._methods(p)
        acc = accuracy_vs_remaining(inputs.records)
        layers = layer_frame(inputs.records)
        fig = draw_scopes(acc, layers, hue_order, p.scopes)
        acc_table = acc.groupby(["family", "label", "iteration"], sort=False)[["remaining", "accuracy"]].agg(
            ["mean", "std"])
        acc_table.columns = [f"{a} {b}" for a, b in acc_table.columns]
        tables = {"Accuracy vs own remaining (mean, std over seeds)": acc_table.reset_index(),
                  "Layers of SAP(0.5, 1) (mean over seeds)": common.summarise(
                      layers, ["family", "layer", "panel", "iteration"])}
        caption = sap_caption(p, scope=", ".join(p.scopes),
                              extra="layers: first, middle, last prunable; layer PQI at (0.5, 1)")
        return Drawn(fig, caption, tables)
