"""Figure 9: concentration points of the ASNI-I network (FIGURES.md item 9; METHODS.md §4).

Per prunable layer ℓ, the histogram of the surviving weights of the final ASNI-I network (from the
run's stored histogram records) with c⁻_ℓ, c⁺_ℓ (means of the negative / positive survivors) and
±θ (the last global pruning threshold) marked. Contrasts, computed here from the dense run's
stored final weights with the library's exact-count magnitude pruning (no training):

* one-shot **global** pruning to the ASNI-I network's overall sparsity S (same survivor count);
* one-shot **layer-wise** pruning, every layer to S;
* an LT / SAP ticket, when a finished iterative run of this dataset and model stored its trained
  ticket weights (a ``final`` artifact with ``model.*`` and ``mask.*``); otherwise skipped with a note.

Deep models (ResNet-18: 21 prunable layers) would give a figure metres tall, so at most ``max_layers``
rows are drawn (evenly spaced in model order, first and last included; the caption says which); the
tables always cover every layer.

The histogram and level computations live in :mod:`._concentration_data` (re-exported here).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from sparsity_lab.figures import style
from sparsity_lab.figures._concentration_data import (
    ASNI_PANEL,
    GLOBAL_PANEL,
    LAYER_PANEL,
    concentration_data,
    contrast_masks,
    last_threshold,
    panel_stats,
    shared_edges,
    stored_histograms,
)
from sparsity_lab.figures._result import FigureResult
from sparsity_lab.figures.asni import asni_caption, asni_results, publish

__all__ = ["make_figure", "ASNI_PANEL", "asni_concentration", "concentration_data", "contrast_masks", "find_ticket",
           "last_threshold", "layers_to_draw", "panel_stats", "plot_concentration", "shared_edges",
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
    import seaborn as sns

    style.set_style()
    layers, panels = list(pd.unique(hist["layer"])), list(pd.unique(hist["panel"]))
    height = 3.2 * len(layers) + 0.4
    fig = Figure(figsize=(4.1 * len(panels), height))
    axes = np.atleast_2d(fig.subplots(len(layers), len(panels), sharex="row", squeeze=False, gridspec_kw={
        "hspace": 0.75, "wspace": 0.18, "top": 1 - 0.85 / height}))
    colours = sns.color_palette("colorblind", n_colors=4)
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
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 1.0), ncol=len(labels), fontsize="small")
    return fig


def find_ticket(store: Any, dataset: str, model: str) -> tuple[str, dict[str, torch.Tensor], str] | str:
    """(label, "final" artifact, run id) of a finished SAP / LT run of ``dataset``/``model`` that stored
    its trained ticket weights, else a note saying why the ticket panel is skipped."""
    for run_id in store.run_ids():
        if not store.is_complete(run_id):  # first: a damaged run's config.json may be unreadable
            continue
        info = store.run_info(run_id)
        cfg = info.get("config", {})
        if (info.get("kind") == "iterative" and cfg.get("method") in ("sap", "lt") and cfg.get("dataset") == dataset
                and cfg.get("model") == model):
            final = store.load_artifact(run_id, "final")
            if final is not None and any(k.startswith("mask.") for k in final):
                return f"{cfg['method'].upper()} ticket (iterative, {cfg.get('scope', 'global')})", final, run_id
    return (f"ticket panel skipped: no finished SAP/LT run of {dataset}/{model} in the store with trained "
            "ticket weights (a 'final' artifact with model.* and mask.*)")


def _split(final: Mapping[str, torch.Tensor], names: list[str]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    weights = {k: final[f"model.{k}"].float() for k in names}
    masks = {k: final[f"mask.{k}"].bool() if f"mask.{k}" in final else torch.ones_like(weights[k], dtype=torch.bool)
             for k in names}
    return weights, masks


def asni_concentration(profile: str = "quick", *, store: Any = None, device: str | None = None,
                       output_dir: Any = None, progress: bool = True, ticket: bool = True, max_layers: int | None = 4,
                       **overrides: Any) -> FigureResult:
    """Figure 9 for the first seed of ``profile``: runs (or reuses) ASNI-I and the dense run, then draws
    the histograms and contrasts. ``ticket=False`` skips the search for an LT / SAP ticket; at most
    ``max_layers`` layers are drawn (None: 4), every layer is in the tables."""
    max_layers = 4 if max_layers is None else int(max_layers)
    layers_to_draw([], max_layers)  # a bad value fails before any training
    from sparsity_lab.store import ResultsStore

    store = store if store is not None else ResultsStore()
    overrides["seeds"] = [int((overrides.get("seeds") or _profile_seeds(profile))[0])]
    params, configs, records = asni_results("asni_concentration", profile, ["asni1", "dense"], store=store,
                                            device=device, progress=progress, **overrides)
    by_variant = {c.variant: c for c in configs}
    asni_final = store.load_artifact(by_variant["asni1"].run_id, "final")
    dense_final = store.load_artifact(by_variant["dense"].run_id, "final")
    if asni_final is None or dense_final is None:
        raise RuntimeError("the ASNI-I or dense run has no 'final' artifact; rerun it")
    names = [k[5:] for k in asni_final if k.startswith("mask.")]
    dense_w, _ = _split(dense_final, names)
    _, asni_masks = _split(asni_final, names)
    contrasts = contrast_masks(dense_w, {k: int(m.sum()) for k, m in asni_masks.items()})
    others = {GLOBAL_PANEL: (dense_w, contrasts[GLOBAL_PANEL], "global"),
              LAYER_PANEL: (dense_w, contrasts[LAYER_PANEL], "layer")}
    run_ids = [c.run_id for c in configs]
    found = find_ticket(store, params["dataset"], params["model"]) if ticket else "ticket panel not requested"
    note = found if isinstance(found, str) else f"ticket from run {found[2]}"
    if not isinstance(found, str):
        others[found[0]] = (*_split(found[1], names), "global")
        run_ids.append(found[2])
    hist, stats = concentration_data(records[records["variant"] == "asni1"], asni_final, others)
    all_layers = list(pd.unique(stats["layer"]))
    drawn = layers_to_draw(all_layers, max_layers)
    fig = plot_concentration(hist[hist["layer"].isin(drawn)], stats[stats["layer"].isin(drawn)])
    shown = "" if len(drawn) == len(all_layers) else (
        f"; drawn: {len(drawn)} of {len(all_layers)} layers ({', '.join(drawn)}), the tables list all")
    text = asni_caption(params, f"contrasts pruned to the ASNI-I sparsity from the dense run; {note}{shown}")
    asni_table = stats[stats["panel"] == ASNI_PANEL].drop(columns="panel")
    tables = {"ASNI-I levels per layer": asni_table, "All panels per layer": stats, "Histograms": hist}
    return publish(fig, "09_asni_concentration", text, tables, run_ids, params, output_dir)


def _profile_seeds(profile: str) -> list[int]:
    from sparsity_lab.profiles import figure_params

    return list(figure_params("asni_concentration", profile)["seeds"])


#: The name every figure module exposes for the notebooks (tools/make_notebook.py).
make_figure = asni_concentration
