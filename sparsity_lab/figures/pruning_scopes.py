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
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from sparsity_lab.claims import pruning_scopes as claims
from sparsity_lab.figures import _sap_common as common
from sparsity_lab.figures import style
from sparsity_lab.figures._bases import METHOD_LABELS, SapParams, sap_caption
from sparsity_lab.figures.params import param
from sparsity_lab.figures.registry import Drawn, Inputs, Run, register_figure

__all__ = ["LAYER_REMAINING_METRICS", "PANELS", "SCOPE_ORDER", "PruningScopes", "ScopesParams",
           "accuracy_vs_remaining", "draw_accuracy_panel", "draw_layer_panel", "draw_scopes", "layer_frame", "pick_layers"]

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


#: The rows of the figure, one panel per scope each: name → what it shows.
PANELS = {"accuracy": "(a) test accuracy vs own remaining weights, the methods",
          "layer_remaining": f"(b) remaining weights of the first, middle and last layer, {LAYER_LABEL}",
          "layer_pqi": f"(c) PQI of the first, middle and last layer, {LAYER_LABEL}"}


def draw_accuracy_panel(ax: Any, acc: pd.DataFrame, scope: str, hue_order: Sequence[str], **line_kw: Any) -> Any:
    """Row (a) for one scope: accuracy against the run's own remaining weights (log x, inverted)."""
    style.line_with_band(ax, acc[acc["family"] == scope], "remaining", "accuracy", "label", by="iteration",
                         hue_order=hue_order, palette=common.method_palette(list(hue_order)),
                         **{"linewidth": 1.6, **line_kw})
    ax.set_xscale("log")
    common.plain_log_axis(ax.xaxis)
    ax.invert_xaxis()
    common.finish_axes(ax, xlabel="remaining weights (%, log scale, own run)", ylabel="test accuracy (%)",
                       title=f"(a) {SCOPE_TITLES[scope]} pruning")
    return ax


def draw_layer_panel(ax: Any, layers: pd.DataFrame, scope: str, panel: str, **line_kw: Any) -> Any:
    """Row (b) (``panel="remaining"``) or (c) (``"pqi"``) for one scope: the three layers vs iteration."""
    names = list(dict.fromkeys(layers["layer"]))
    part = layers[(layers["family"] == scope) & (layers["panel"] == panel)]
    style.line_with_band(ax, part, "iteration", "value", "layer", hue_order=names,
                         palette=common.palette(names, ordered=True), logy=panel == "remaining",
                         **{"linewidth": 1.6, **line_kw})
    ylabel = "layer remaining weights (%, log scale)" if panel == "remaining" else r"layer PQI $I_{0.5,1}$"
    common.finish_axes(ax, xlabel="pruning iteration t", ylabel=ylabel,
                       title=f"({'b' if panel == 'remaining' else 'c'}) {SCOPE_TITLES[scope]}, {LAYER_LABEL}")
    common.integer_ticks(ax)
    if panel == "remaining":
        common.plain_log_axis(ax.yaxis)
    return ax


def draw_scopes(acc: pd.DataFrame, layers: pd.DataFrame, hue_order: Sequence[str],
                scopes: Sequence[str] = SCOPE_ORDER) -> Figure:
    """3 rows (a, b, c) × one column per scope."""
    fig = Figure(figsize=(5.2 * len(scopes), 12), layout="constrained")
    axes = fig.subplots(3, len(scopes), squeeze=False)
    for col, scope in enumerate(scopes):
        draw_accuracy_panel(axes[0][col], acc, scope, hue_order)
        draw_layer_panel(axes[1][col], layers, scope, "remaining")
        draw_layer_panel(axes[2][col], layers, scope, "pqi")
    axes[0][0].legend(loc="best", fontsize=style.LEGEND_FONTSIZE)
    axes[1][0].legend(loc="best", fontsize=style.LEGEND_FONTSIZE)
    return fig


@dataclass
class ScopesParams(SapParams):
    """Figure 2: the SAP parameters, the scopes compared and the methods drawn; three seeds at ``gpu``."""

    seeds: list[int] = param("seeds (one run per method, scope and seed)", smoke=[0], quick=[0], gpu=[0, 1, 2],
                             paper=[0, 1, 2, 3])
    scopes: list[str] = param("pruning scopes compared", default=list(SCOPE_ORDER), choices=SCOPE_ORDER)
    methods: list[str] = param("methods drawn (SAP (p=0.5, q=1) is always run: rows b-c)",
                               default=list(METHOD_LABELS), choices=METHOD_LABELS)


@register_figure(number=2, name="pruning_scopes", params=ScopesParams, claims=claims.CLAIMS)
class PruningScopes:
    """Figure 2 (docs/figures.md item 2)."""

    PANELS = PANELS

    @staticmethod
    def _methods(p: ScopesParams) -> list[str]:
        return list(p.methods) if LAYER_LABEL in p.methods else [LAYER_LABEL, *p.methods]

    @classmethod
    def runs(cls, p: ScopesParams) -> list[Run]:
        methods = cls._methods(p)
        return [r for scope in p.scopes
                for r in common.build_runs(p, common.method_variants(methods, family=scope, extra={"scope": scope}))]

    PLOT_OPTIONS: dict[str, Any] = {"methods": None, "scopes": None}

    @classmethod
    def draw_panel(cls, name: str, ax: Any, inputs: Inputs, p: ScopesParams, scope: str = "global",
                   methods: Sequence[str] | None = None, **line_kw: Any) -> Any:
        """Panel ``name`` (``PANELS``) of the column ``scope``, alone on ``ax``, with its legend."""
        if name == "accuracy":
            draw_accuracy_panel(ax, accuracy_vs_remaining(inputs.records), scope, list(methods or cls._methods(p)),
                                **line_kw)
        else:
            draw_layer_panel(ax, layer_frame(inputs.records), scope, name.removeprefix("layer_"), **line_kw)
        ax.legend(fontsize=style.LEGEND_FONTSIZE)
        return ax

    @classmethod
    def draw(cls, inputs: Inputs, p: ScopesParams, methods: Sequence[str] | None = None,
             scopes: Sequence[str] | None = None) -> Drawn:
        """``methods``: the curves of row (a), in legend order; ``scopes``: the columns (None: the parameters)."""
        hue_order = list(methods or cls._methods(p))
        acc = accuracy_vs_remaining(inputs.records)
        layers = layer_frame(inputs.records)
        fig = draw_scopes(acc, layers, hue_order, list(scopes or p.scopes))
        acc_table = acc.groupby(["family", "label", "iteration"], sort=False)[["remaining", "accuracy"]].agg(
            ["mean", "std"])
        acc_table.columns = [f"{a} {b}" for a, b in acc_table.columns]
        tables = {"Accuracy vs own remaining (mean, std over seeds)": acc_table.reset_index(),
                  "Layers of SAP(0.5, 1) (mean over seeds)": common.summarise(
                      layers, ["family", "layer", "panel", "iteration"])}
        caption = sap_caption(p, scope=", ".join(p.scopes),
                              extra="layers: first, middle, last prunable; layer PQI at (0.5, 1)")
        return Drawn(fig, caption, tables)
