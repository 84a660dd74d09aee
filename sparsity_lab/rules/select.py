"""Exact-count selection shared by the rules (docs/methods.md §3).

Counts are computed in float64 and snapped to the nearest integer when within 1e-9 (relative) of it, so
binary rounding of e.g. 0.9·10 never moves a floor/ceil by one. Ties in score are broken by flat index (the
lower index is pruned first), and at least one weight per group survives.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from sparsity_lab.masks import MaskSet
from sparsity_lab.measures.sparsity import SCOPES


# ------------------------------------------------------------------------------ exact-count selection
def snap(x: Tensor) -> Tensor:
    """Round values within 1e-9 (relative) of an integer to it, so floor/ceil ignore binary rounding."""
    r = torch.round(x)
    return torch.where((x - r).abs() <= 1e-9 * x.abs().clamp(min=1.0), r, x)


def _kth_smallest(x: Tensor, k: int) -> Tensor:
    if x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64):
        return torch.as_tensor(np.partition(x.numpy(), k - 1)[k - 1])
    return torch.kthvalue(x, k).values


def _drop_smallest(mag: Tensor, alive: Tensor, c: Tensor) -> Tensor:
    """Remove exactly c[g] smallest surviving entries of each row g of ``mag`` (ties: lower index first),
    keeping at least one survivor per row (c is clamped to [0, d − 1])."""
    d = alive.sum(1)
    c = torch.minimum(c.to(d.device).clamp(min=0), (d - 1).clamp(min=0))
    key = mag.masked_fill(~alive, math.inf)
    if key.shape[0] == 1:
        tau = _kth_smallest(key[0], max(int(c[0]), 1)).to(key.device).reshape(1, 1)
    else:
        srt = torch.sort(key, dim=1).values
        tau = srt.gather(1, (c - 1).clamp(min=0)[:, None])
    below = alive & (key < tau)
    ties = alive & (key == tau)
    need = c[:, None] - below.sum(1, keepdim=True)
    drop = (below | (ties & (ties.cumsum(1) <= need))) & (c[:, None] > 0)
    return alive & ~drop


def rows(x: Tensor, scope: str) -> Tensor:
    """``x`` as [groups, entries]: one row per output row (neuron scope), else one row."""
    return x.reshape(x.shape[0] if x.dim() else 1, -1) if scope == "neuron" else x.reshape(1, -1)


def magnitude_prune(weights: Mapping[str, Tensor], masks: MaskSet, scope: str,
                    counts: Mapping[str, int | Sequence[int] | Tensor]) -> MaskSet:
    """Remove exactly ``counts[group]`` smallest-|w| surviving weights per group (docs/methods.md §3).

    Groups: ``"all"`` (global: one threshold over the concatenation), the parameter name (layer), or the
    parameter name with one count per output row (neuron). Missing groups prune nothing. Ties are broken by
    flat index; at least one weight of every group survives.
    """
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}; choose from {SCOPES}")
    for n, m in masks.items():
        if not bool((torch.isfinite(weights[n]) | ~m.to(weights[n].device)).all()):
            raise ValueError(f"weight {n!r} has non-finite surviving entries; magnitudes must be finite")
    out = MaskSet()
    if scope == "global":
        names = list(masks)
        mag = torch.cat([weights[n].detach().abs().reshape(-1) for n in names])[None]
        alive = torch.cat([masks[n].to(mag.device).reshape(-1) for n in names])[None]
        kept = _drop_smallest(mag, alive, torch.tensor([int(counts.get("all", 0))]))[0]
        for n, piece in zip(names, kept.split([masks[n].numel() for n in names])):
            out[n] = piece.reshape(masks[n].shape).to(masks[n].device)
        return out
    for n, m in masks.items():
        w = weights[n].detach()
        mag, alive = rows(w.abs(), scope), rows(m.to(w.device), scope)
        c = torch.as_tensor(counts.get(n, 0), dtype=torch.int64).reshape(-1).expand(mag.shape[0])
        out[n] = _drop_smallest(mag, alive, c).reshape(m.shape).to(m.device)
    return out


def fraction_counts(masks: Mapping[str, Tensor], scope: str, fraction: float,
                    rates: Mapping[str, float] | None = None) -> dict[str, Tensor]:
    """c = ⌊P·d⌋ per group of d survivors (float64, snapped); ``rates`` overrides P per layer group."""
    rates = rates or {}
    return {g: torch.floor(snap(rates.get(g, fraction) * n.to(torch.float64))).to(torch.int64)
            for g, n in group_counts(masks, scope).items()}


# ----------------------------------------------------------------------------------------- records
def group_counts(masks: Mapping[str, Tensor], scope: str) -> dict[str, Tensor]:
    """Surviving count per group: {"all": 1-elem} (global) or {name: per-row (neuron) / 1-elem (layer)}."""
    if scope == "global":
        return {"all": sum(m.sum() for m in masks.values()).reshape(1)}
    return {n: rows(m, scope).sum(1) for n, m in masks.items()}


def prune_records(scope: str, old: Mapping[str, Tensor], new: Mapping[str, Tensor],
                  kept: Mapping[str, Tensor] | None = None) -> list[dict]:
    """Per-group kept (r_t; default: survivors after), pruned_count (c_t = survivors removed) and
    surviving_before (d); neuron-scope values are summed over the rows of a layer."""
    before = group_counts(old, scope)
    removed = group_counts({n: old[n] & ~new[n].to(old[n].device) for n in old}, scope)
    kept = kept if kept is not None else group_counts(new, scope)
    out = []
    for g in before:
        for metric, val in (("kept", kept[g]), ("pruned_count", removed[g]), ("surviving_before", before[g])):
            out.append({"scope": scope, "group": g, "metric": metric, "value": float(val.sum())})
    return out
