"""Grouped layout of the weights for the sparsity measures (docs/methods.md §1): internal plumbing of ``measures``.

Every weight tensor is read as rows (row i is output neuron i); the rows of all tensors form one flat vector
of magnitudes, and per-scope statistics (neuron rows → layers → global) come from the segment kernels of
``_segments``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from sparsity_lab.measures.segments import _combine_log_sums, _int_segment_sum, _seg, _segment_stats, _small


class _Layout:
    """The rows of all weight tensors in one flat vector of magnitudes: survivors only on the CPU, pruned
    entries zeroed elsewhere (static shapes, no host synchronisation). Row i of a tensor is output neuron i."""

    def __init__(self, weights: Mapping[str, Tensor], masks: Mapping[str, Tensor] | None) -> None:
        if not weights:
            raise ValueError("sparsity measures need at least one weight tensor; got an empty mapping")
        self.names = list(weights)
        ws = [weights[n].detach() for n in self.names]
        dev = self.device = ws[0].device
        self.rows = [int(w.shape[0]) if w.dim() else 1 for w in ws]
        self.sizes = [w.numel() for w in ws]
        cols = [s // max(r, 1) for s, r in zip(self.sizes, self.rows)]
        self.layer_rows = _small(self.rows, dev)
        self.row_size = torch.repeat_interleave(_small(cols, dev), self.layer_rows, output_size=sum(self.rows))
        if masks is None:
            self.row_count, lengths = self.row_size, self.row_size
            v = torch.cat([w.reshape(-1) for w in ws]).abs()
        else:
            ms = [_mask_for(masks, n, w) for n, w in zip(self.names, ws)]
            alive = torch.cat([m.reshape(-1) for m in ms])
            # float32 sums of 0/1 are exact for rows shorter than 2^24
            self.row_count = _seg(alive.to(torch.float32), self.row_size, "sum").to(torch.int64)
            if dev.type == "cpu":
                v = torch.cat([_compress(w, m) for w, m in zip(ws, ms)]).abs_()
                lengths = self.row_count
            else:
                v = torch.cat([w.reshape(-1) for w in ws]).abs_().masked_fill_(~alive, 0)
                lengths = self.row_size
        self.v, self.row_len = v, lengths
        self.layer_len = _int_segment_sum(lengths, self.layer_rows)
        self.layer_count = _int_segment_sum(self.row_count, self.layer_rows)

    def row_labels(self) -> list[str]:
        return [f"{n}[{i}]" for n, r in zip(self.names, self.rows) for i in range(r)]


def _compress(w: Tensor, m: Tensor) -> Tensor:
    """The entries of ``w`` where ``m`` is True, flattened (np.compress is ~7× faster than torch indexing)."""
    if w.dtype in (torch.float32, torch.float64, torch.float16):
        return torch.from_numpy(np.compress(m.reshape(-1).numpy(), w.reshape(-1).numpy()))
    return w.reshape(-1)[m.reshape(-1)]


def _mask_for(masks: Mapping[str, Tensor], name: str, w: Tensor) -> Tensor:
    if name not in masks:
        raise ValueError(f"no mask for weight {name!r}; masks cover {sorted(masks)}")
    m = masks[name]
    if tuple(m.shape) != tuple(w.shape):
        raise ValueError(f"mask {name!r} has shape {tuple(m.shape)} but the weight has {tuple(w.shape)}")
    return m.to(device=w.device, dtype=torch.bool)


class _ScopeStats:
    """Per-group survivor counts, sizes, log power sums and Gini of one scope."""

    def __init__(self, labels, count, size, log_sums, gini_values, rows_per_layer=None):
        self.labels, self.count, self.size = labels, count.to(torch.float64), size.to(torch.float64)
        self.log_sums, self.gini, self.rows_per_layer = log_sums, gini_values, rows_per_layer


def _scope_stats(lay: _Layout, scopes: Sequence[str], exps: Sequence[float], want_gini: bool) -> dict:
    """Statistics of every requested scope; power sums come from one row-level pass (rows → layers → all)."""
    row_gini = want_gini and "neuron" in scopes
    ls_row, g_row = _segment_stats(lay.v, lay.row_len, lay.row_count, exps, row_gini)
    ls_layer = _combine_log_sums(ls_row, lay.layer_rows) if exps else None
    out, dev = {}, lay.device
    if "neuron" in scopes:
        out["neuron"] = _ScopeStats(lay.names, lay.row_count, lay.row_size, ls_row, g_row, lay.layer_rows)
    if "layer" in scopes:
        _, g = _segment_stats(lay.v, lay.layer_len, lay.layer_count, (), want_gini)
        out["layer"] = _ScopeStats(lay.names, lay.layer_count, _small(lay.sizes, dev), ls_layer, g)
    if "global" in scopes:
        count, length = lay.layer_count.sum()[None], _small([lay.v.numel()], dev)
        _, g = _segment_stats(lay.v, length, count, (), want_gini)
        ls = torch.logsumexp(ls_layer, 0, keepdim=True) if exps else None
        out["global"] = _ScopeStats(["all"], count, _small([sum(lay.sizes)], dev), ls, g)
    return out
