"""The numbers behind figure 9 (docs/figures.md item 9; docs/methods.md §4), without drawing.

From one ASNI-I run's stored records and ``final`` artifact and from the contrast networks (the stored
``final`` tensors of the one-shot runs): the
per-layer histograms on shared bin edges, c⁻/c⁺, θ, sparsity, survivor counts and the peak of each lobe.
All panels of one layer share the stored ASNI-I bins, extended by whole bins to cover every panel's
range (and merged k-to-1 when that would exceed ``max_bins``). ``figures.asni_concentration`` draws them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd
import torch

from sparsity_lab.masks import split_weights_and_masks

__all__ = ["ASNI_PANEL", "GLOBAL_PANEL", "LAYER_PANEL", "concentration_data", "last_threshold",
           "panel_stats", "shared_edges", "stored_histograms"]

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


def panel_stats(weights: Mapping[str, torch.Tensor], masks: Mapping[str, torch.Tensor], panel: str,
                scope: str = "layer") -> pd.DataFrame:
    """Per layer: prunable, surviving, sparsity %, c⁻ / c⁺ (means of the negative / positive survivors,
    docs/methods.md §4) and θ, the largest pruned magnitude: of the layer (``scope`` "layer") or of the whole
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
    _, masks = split_weights_and_masks(asni_final)
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
