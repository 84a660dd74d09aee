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

All panels of one layer share the same bin edges: the stored ASNI-I bins, extended by whole bins
to cover every panel's range (and merged k-to-1 when that would exceed ``max_bins``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from sparsity_lab.figures import style
from sparsity_lab.figures._result import FigureResult
from sparsity_lab.figures.asni import asni_caption, asni_results, publish

__all__ = ["make_figure", "ASNI_PANEL", "asni_concentration", "concentration_data", "contrast_masks", "find_ticket",
           "last_threshold", "layers_to_draw", "panel_stats", "plot_concentration", "shared_edges",
           "stored_histograms"]

ASNI_PANEL, GLOBAL_PANEL, LAYER_PANEL = "ASNI-I (gradual, global)", "dense → one-shot global", "dense → one-shot layer-wise"


def last_threshold(records: pd.DataFrame) -> float:
    """θ: the threshold of the last epoch that pruned anything (the largest magnitude it removed)."""
    rows = records[(records["stage"] == "epoch") & (records["metric"] == "threshold")].sort_values("iteration")
    finite = rows["value"].astype(float)
    finite = finite[np.isfinite(finite)]
    if finite.empty:
        raise ValueError("no finite ASNI-I 'threshold' records: the run never pruned")
    return float(finite.iloc[-1])


def stored_histograms(records: pd.DataFrame) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per layer (edges, counts) rebuilt from the stage-"final" histogram rows (bin_left, bin_right, count).

    Raises when a layer's bins are not contiguous (a row missing) or its total disagrees with the
    recorded ``surviving`` count."""
    rows = records[(records["stage"] == "final") & (records["metric"] == "histogram")]
    if rows.empty:
        raise ValueError("no 'histogram' records at stage 'final' (did the ASNI-I run finish?)")
    surviving = records[(records["stage"] == "final") & (records["metric"] == "surviving")].set_index("group")["value"]
    out = {}
    for layer, part in rows.groupby("group", sort=False):
        part = part.sort_values("bin_left")
        left, right = part["bin_left"].to_numpy(float), part["bin_right"].to_numpy(float)
        if not np.allclose(left[1:], right[:-1], rtol=1e-6, atol=1e-12):
            raise ValueError(f"layer {layer!r}: histogram bins are not contiguous")
        counts = part["value"].to_numpy(float)
        if layer in surviving.index and not math.isclose(counts.sum(), float(surviving[layer])):
            raise ValueError(f"layer {layer!r}: histogram holds {counts.sum():g} weights, 'surviving' says "
                             f"{float(surviving[layer]):g}")
        out[str(layer)] = (np.append(left, right[-1]), counts)
    return out


def shared_edges(edges: np.ndarray, lo: float, hi: float, max_bins: int = 240) -> tuple[np.ndarray, int, int, int]:
    """Extend the uniform ``edges`` by whole bins of the same width until they cover [lo, hi].

    Returns (new edges, bins added on the left, on the right, merge factor k): when more than
    ``max_bins`` bins would result, k consecutive bins are merged (the right side padded with empty
    bins to a multiple of k), so histograms on the old edges map exactly onto the new ones."""
    n = len(edges) - 1
    width = (edges[-1] - edges[0]) / n
    left = max(0, math.ceil((edges[0] - lo) / width - 1e-9)) if width > 0 else 0
    right = max(0, math.ceil((hi - edges[-1]) / width - 1e-9)) if width > 0 else 0
    total = n + left + right
    k = max(1, math.ceil(total / max_bins))
    right += (-total) % k
    fine = edges[0] + width * np.arange(-left, n + right + 1)
    return fine[::k], left, right, k


def _regrid(counts: np.ndarray, left: int, right: int, k: int) -> np.ndarray:
    return np.pad(counts, (left, right)).reshape(-1, k).sum(axis=1)


def contrast_masks(weights: Mapping[str, torch.Tensor], survivors: Mapping[str, int]) -> dict[str, Any]:
    """One-shot magnitude masks of the dense ``weights`` with the ASNI-I network's overall sparsity S:
    global (keep exactly Σ survivors) and layer-wise (prune round(S·n_ℓ) of every layer)."""
    from sparsity_lab.masks import MaskSet
    from sparsity_lab.pruning import magnitude_prune

    full = MaskSet({k: torch.ones_like(w, dtype=torch.bool) for k, w in weights.items()})
    total = sum(w.numel() for w in weights.values())
    kept = sum(int(survivors[k]) for k in weights)
    fraction = 1 - kept / total
    per_layer = {k: int(round(fraction * w.numel())) for k, w in weights.items()}
    return {GLOBAL_PANEL: magnitude_prune(dict(weights), full, "global", {"all": total - kept}),
            LAYER_PANEL: magnitude_prune(dict(weights), full, "layer", per_layer)}


def panel_stats(weights: Mapping[str, torch.Tensor], masks: Mapping[str, torch.Tensor], panel: str,
                scope: str = "layer") -> pd.DataFrame:
    """Per layer: prunable, surviving, sparsity %, c⁻ / c⁺ (means of the negative / positive survivors,
    METHODS.md §4) and θ, the largest pruned magnitude: of the layer (``scope`` "layer") or of the whole
    network ("global"). θ is NaN when the pruned entries are all zero (a stored ticket: no information)."""
    removed = {k: w[~masks[k].bool()].abs() for k, w in weights.items()}
    largest = {k: r.max().item() if r.numel() else 0.0 for k, r in removed.items()}
    overall = max(largest.values(), default=0.0)
    rows = []
    for name, w in weights.items():
        keep = masks[name].bool()
        alive = w[keep].double()
        theta = overall if scope == "global" else largest[name]
        rows.append({"layer": name, "panel": panel, "prunable": w.numel(), "surviving": int(keep.sum()),
                     "sparsity %": 100.0 * (1 - keep.sum().item() / w.numel()),
                     "c⁻": alive[alive < 0].mean().item() if (alive < 0).any() else math.nan,
                     "c⁺": alive[alive > 0].mean().item() if (alive > 0).any() else math.nan,
                     "θ": theta if theta > 0 else math.nan})
    return pd.DataFrame(rows)


def _modes(hist: pd.DataFrame) -> pd.DataFrame:
    """Per (layer, panel): the bin centre of the highest bin left of 0 (mode⁻) and right of 0 (mode⁺)."""
    rows = []
    for (layer, panel), part in hist.groupby(["layer", "panel"], sort=False):
        centre = (part["bin_left"] + part["bin_right"]).to_numpy() / 2
        counts = part["count"].to_numpy()
        row = {"layer": layer, "panel": panel}
        for side, sel in (("mode⁻", centre < 0), ("mode⁺", centre > 0)):
            row[side] = centre[sel][np.argmax(counts[sel])] if counts[sel].sum() > 0 else math.nan
        rows.append(row)
    return pd.DataFrame(rows)


def concentration_data(records: pd.DataFrame, asni_final: Mapping[str, torch.Tensor],
                       others: Mapping[str, tuple[Mapping[str, torch.Tensor], Mapping[str, torch.Tensor], str]],
                       max_bins: int = 240) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(histograms, stats) of the ASNI-I panel and each ``others[panel] = (weights, masks)``.

    ``records``: one ASNI-I run (one seed); ``asni_final``: its "final" artifact (``mask.<name>``);
    ``others[panel] = (weights, masks, θ scope)``. Returns histograms (layer, panel, bin_left, bin_right,
    count on per-layer shared edges) and stats (:func:`panel_stats`, with ASNI-I's c± and θ taken from the
    records, plus ``mode⁻`` / ``mode⁺``, the bin centres of each side's peak)."""
    stored = stored_histograms(records)
    masks = {k[5:]: v.bool() for k, v in asni_final.items() if k.startswith("mask.")}
    theta = last_threshold(records)
    levels = records[(records["stage"] == "final") & records["metric"].isin(["c_minus", "c_plus"])]
    final = levels.set_index(["metric", "group"])["value"].astype(float)
    asni = pd.DataFrame([{"layer": k, "panel": ASNI_PANEL, "prunable": m.numel(), "surviving": int(m.sum()),
                          "sparsity %": 100.0 * (1 - m.sum().item() / m.numel()), "c⁻": final[("c_minus", k)],
                          "c⁺": final[("c_plus", k)], "θ": theta} for k, m in masks.items()])
    stats = [asni] + [panel_stats(w, m, panel, scope) for panel, (w, m, scope) in others.items()]
    hist_rows = []
    for layer, (edges, counts) in stored.items():
        values = {p: w[layer][m[layer].bool()].double().numpy() for p, (w, m, _) in others.items()}
        lo = min([edges[0], *(v.min() for v in values.values() if v.size)])
        hi = max([edges[-1], *(v.max() for v in values.values() if v.size)])
        new, left, right, k = shared_edges(edges, lo, hi, max_bins)
        panels = {ASNI_PANEL: _regrid(counts, left, right, k),
                  **{p: np.histogram(v, bins=new)[0].astype(float) for p, v in values.items()}}
        for panel, c in panels.items():
            hist_rows.append(pd.DataFrame({"layer": layer, "panel": panel, "bin_left": new[:-1],
                                           "bin_right": new[1:], "count": c}))
    hist = pd.concat(hist_rows, ignore_index=True)
    stats_frame = pd.concat(stats, ignore_index=True).merge(_modes(hist), on=["layer", "panel"], how="left")
    order = {name: i for i, name in enumerate(stored)}  # the model's layer order, as the run recorded it
    stats_frame = stats_frame.sort_values("layer", key=lambda c: c.map(order), kind="stable")
    return hist, stats_frame.reset_index(drop=True)


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
    height = 2.9 * len(layers) + 0.4
    fig = Figure(figsize=(4.1 * len(panels), height))
    axes = np.atleast_2d(fig.subplots(len(layers), len(panels), sharex="row", squeeze=False, gridspec_kw={
        "hspace": 0.55, "wspace": 0.18, "top": 1 - 0.85 / height}))
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
            ax.set_title(f"{panel}\n{layer}: sparsity {row['sparsity %']:.1f} %, {row['surviving']:,} left",
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
        info = store.run_info(run_id)
        cfg = info.get("config", {})
        if (info.get("kind") == "iterative" and cfg.get("method") in ("sap", "lt") and cfg.get("dataset") == dataset
                and cfg.get("model") == model and store.is_complete(run_id)):
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
