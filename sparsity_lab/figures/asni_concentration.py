"""Figure 9: concentration points of the ASNI-I network (docs/figures.md item 9; docs/methods.md §4).

Per prunable layer ℓ, the histogram of the surviving weights of the final ASNI-I network (from the
run's stored histogram records) with c⁻_ℓ, c⁺_ℓ (means of the negative / positive survivors) and
±θ (the last global pruning threshold) marked. Contrasts are runs of their own (variants
``oneshot_global`` / ``oneshot_layer``, :mod:`sparsity_lab.experiments.asni_oneshot`): the dense
run's final weights pruned once, without training, to the ASNI-I network's overall sparsity S,
globally (same survivor count) or every layer to S. This module only reads them.

Deep models (ResNet-18: 21 prunable layers) would give a figure metres tall, so at most ``max_layers``
rows are drawn (evenly spaced in model order, first and last included; the caption says which); the
tables always cover every layer.

The histogram and level computations live in :mod:`sparsity_lab.claims.concentration_data` (re-exported
here); the per-layer table the claims check is the claims' own :func:`~sparsity_lab.claims.asni_concentration.table_from_run`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from sparsity_lab.claims import asni_concentration as claims
from sparsity_lab.claims.asni_concentration import table_from_run
from sparsity_lab.claims.concentration_data import (
    ASNI_PANEL,
    GLOBAL_PANEL,
    LAYER_PANEL,
    concentration_data,
    last_threshold,
    panel_stats,
    shared_edges,
    stored_histograms,
)
from sparsity_lab.config.configs import IterativeConfig
from sparsity_lab.engine.trainer import TrainSettings
from sparsity_lab.figures import style
from sparsity_lab.figures._bases import AsniParams, asni_caption
from sparsity_lab.figures.asni import asni_runs
from sparsity_lab.figures.params import param
from sparsity_lab.figures.registry import Drawn, Inputs, Run, register_figure
from sparsity_lab.masks import split_weights_and_masks

__all__ = ["ASNI_PANEL", "AsniConcentration", "ConcentrationParams", "concentration_data", "last_threshold",
           "layer_claims_frame", "layers_to_draw", "panel_stats", "plot_concentration", "shared_edges",
           "stored_histograms"]



def layers_to_draw(layers: list[str], max_layers: int) -> list[str]:
    """At most ``max_layers`` of ``layers`` (model order), evenly spaced, always the first and the last."""
    if max_layers < 1:
        raise ValueError(f"max_layers={max_layers!r}: allowed an integer >= 1")
    if len(layers) <= max_layers:
        return list(layers)
    if max_layers == 1:
        return [layers[0]]
    picks = sorted({round(i * (len(layers) - 1) / (max_layers - 1)) for i in range(max_layers)})
    return [layers[i] for i in picks]


def plot_concentration(hist: pd.DataFrame, stats: pd.DataFrame) -> Figure:
    """Rows = layers, columns = panels; bars = surviving-weight counts, solid lines c⁻ / c⁺, dashed ±θ."""

    style.set_style()
    layers, panels = list(pd.unique(hist["layer"])), list(pd.unique(hist["panel"]))
    height = 3.2 * len(layers) + 0.4
    fig = Figure(figsize=(4.1 * len(panels), height))
    axes = np.atleast_2d(fig.subplots(len(layers), len(panels), sharex="row", squeeze=False, gridspec_kw={
        "hspace": 0.75, "wspace": 0.18, "top": 1 - 0.85 / height}))
    colours = [style.OKABE_ITO["sky"], None, None, style.OKABE_ITO["vermillion"]]
    for r, layer in enumerate(layers):
        for c, panel in enumerate(panels):
            ax = axes[r, c]
            part = hist[(hist["layer"] == layer) & (hist["panel"] == panel)]
            edges = np.append(part["bin_left"].to_numpy(), part["bin_right"].to_numpy()[-1])
            ax.stairs(part["count"].to_numpy(), edges, fill=True, color=colours[0], alpha=0.75)
            row = stats[(stats["layer"] == layer) & (stats["panel"] == panel)].iloc[0]
            for value, colour, label in ((row["c⁻"], colours[3], "c⁻ / c⁺ (mean of − / + survivors)"),
                                         (row["c⁺"], colours[3], None)):
                if np.isfinite(value):
                    ax.axvline(value, color=colour, linewidth=1.6, label=label)
            if np.isfinite(row["θ"]):
                for s in (-1, 1):
                    ax.axvline(s * row["θ"], color="0.25", linestyle="--", linewidth=1,
                               label="±θ (last pruning threshold)" if s < 0 else None)
            # three short lines: deep models' layer names (layers.1.0.shortcut.weight) would overrun the panel
            ax.set_title(f"{panel}\n{layer}\nsparsity {row['sparsity %']:.1f} %, {row['surviving']:,} left",
                         fontsize="small")
            ax.set_xlabel("weight value" if r == len(layers) - 1 else "")
            ax.set_ylabel("count" if c == 0 else "")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 1.0), ncol=len(labels), fontsize=style.LEGEND_FONTSIZE)
    return fig


@dataclass
class ConcentrationParams(AsniParams):
    """Figure 9: the ASNI parameters, the seed whose histograms are drawn, the layers drawn."""

    seeds: list[int] = param("seeds (histograms of the first; claims over all)", smoke=[0], quick=[0],
                             gpu=[0, 1, 2, 3], paper=[0, 1, 2, 3])
    max_layers: int = param("at most this many layers drawn (the tables list all)", default=4)
    ticket_iterations: int = param("T of the LT(P=0.2) ticket panel, on the same data and model (0: no panel)",
                                   default=0, gpu=20)
    ticket_epochs: int = param("E of the LT ticket's runs (SGD, the SAP figures' settings)", default=2, gpu=5)


TICKET_PANEL = "LT ticket (iterative, global)"


def ticket_run(p: ConcentrationParams) -> Run | None:
    """The Lottery Ticket run of the contrast panel (its final ticket w_T ⊙ m_T), or None."""
    if p.ticket_iterations <= 0:
        return None
    config = IterativeConfig(dataset=p.dataset, model=p.model, method="lt", prune_fraction=0.2,
                             iterations=p.ticket_iterations, seed=p.seeds[0], train_subset=p.train_subset,
                             train=TrainSettings(epochs=p.ticket_epochs))
    return Run(config, {"label": TICKET_PANEL}, ("final",))


def _split(final: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    weights, masks = split_weights_and_masks(final)
    return {k: weights[k].float() for k in masks}, masks


def _asni1(inputs: Inputs, seed: int) -> Run:
    return next(r for r in inputs.runs if getattr(r.config, "variant", "") == "asni1" and r.config.seed == seed)


def layer_claims_frame(inputs: Inputs) -> pd.DataFrame:
    """Per (layer, seed) of the ASNI-I networks, what claims 9.1-9.2 test: the claims' own table
    (:func:`sparsity_lab.claims.asni_concentration.table_from_run`) of every ASNI-I run."""
    tables = [table_from_run(inputs.records[inputs.records["run_id"] == run.run_id], inputs.tensor(run.run_id, "final"),
                             seed=run.config.seed)
              for run in inputs.runs if getattr(run.config, "variant", "") == "asni1"]
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=list(claims.COLUMNS))


@register_figure(number=9, name="asni_concentration", params=ConcentrationParams, claims=claims.CLAIMS)
class AsniConcentration:
    """Figure 9 (docs/figures.md item 9). Pure reader: the contrasts are runs (``oneshot_global``,
    ``oneshot_layer``: the dense run's final weights pruned once to ASNI-I's sparsity)."""

    @staticmethod
    def runs(p: ConcentrationParams) -> list[Run]:
        layers_to_draw([], p.max_layers)
        runs = asni_runs(p, ["asni1", "dense", "oneshot_global", "oneshot_layer"],
                         tensors={"asni1*": ("final",), "oneshot_global": ("final",), "oneshot_layer": ("final",)})
        ticket = ticket_run(p)
        return runs + ([ticket] if ticket else [])

    @staticmethod
    def draw(inputs: Inputs, p: ConcentrationParams) -> Drawn:
        seed = p.seeds[0]
        asni = _asni1(inputs, seed)
        others = {}
        for variant, panel, scope in (("oneshot_global", GLOBAL_PANEL, "global"), ("oneshot_layer", LAYER_PANEL, "layer")):
            run = next(r for r in inputs.runs if getattr(r.config, "variant", "") == variant and r.config.seed == seed)
            others[panel] = (*_split(inputs.tensor(run.run_id, "final")), scope)
        ticket = ticket_run(p)
        if ticket is not None:  # θ of a stored ticket is unknown (its pruned weights are zero): NaN
            others[TICKET_PANEL] = (*_split(inputs.tensor(ticket.run_id, "final")), "global")
        records = inputs.records[inputs.records["run_id"] == asni.run_id]
        hist, stats = concentration_data(records, inputs.tensor(asni.run_id, "final"), others)
        all_layers = list(pd.unique(stats["layer"]))
        drawn = layers_to_draw(all_layers, p.max_layers)
        fig = plot_concentration(hist[hist["layer"].isin(drawn)], stats[stats["layer"].isin(drawn)])
        shown = "" if len(drawn) == len(all_layers) else (
            f"; drawn: {len(drawn)} of {len(all_layers)} layers ({', '.join(drawn)}), the tables list all")
        lt = (f"; LT ticket: LT(P=0.2), T={p.ticket_iterations}, E={p.ticket_epochs}, SGD" if ticket
              else "; no LT ticket panel (ticket_iterations=0)")
        caption = asni_caption(p, f"histograms of seed {seed}; contrasts: the dense run pruned once to the "
                                  f"ASNI-I sparsity (runs oneshot_global, oneshot_layer){lt}{shown}")
        tables = {"ASNI-I levels per layer": stats[stats["panel"] == ASNI_PANEL].drop(columns="panel"),
                  "All panels per layer": stats, "Histograms": hist}
        return Drawn(fig, caption, tables)

    @staticmethod
    def claims_input(inputs: Inputs, p: ConcentrationParams, drawn: Drawn) -> pd.DataFrame:
        return layer_claims_frame(inputs)
