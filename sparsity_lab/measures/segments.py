"""Segment reductions behind the sparsity measures (docs/methods.md §1): internal plumbing of ``measures``.

All groups are laid out row by row in one flat vector (compacted to the survivors on the CPU, masked with
zeros on accelerators so the computation has static shapes and no host synchronisation; see ``_layout``).
Power sums Σ|w|^r are computed per row in float64 with a per-row max shift (scale-free, no overflow) by
segment reductions, then combined into layer and global sums in log space; Gini sorts every row / layer /
the whole model at once with one composite-key sort each (group id in the high bits, float32 magnitude
bits in the low bits), so Gini ranks magnitudes at float32 resolution. On the CPU the pass runs in
cache-sized blocks of whole rows on the calling thread (numpy's reduceat, SIMD sort where they are faster).
"""

from __future__ import annotations

import contextlib
import functools
import math
import sys
from collections.abc import Iterator, Sequence
from fractions import Fraction

import numpy as np
import torch
from torch import Tensor

_MAX_CHAIN = 40  # largest integer power computed by repeated multiplication


def _small(values: Sequence[int], device: torch.device) -> Tensor:
    """A small int64 tensor on ``device`` without a stream synchronisation."""
    return torch.tensor(values, dtype=torch.int64).to(device, non_blocking=True)


def _floats(values: Sequence[float], device: torch.device) -> Tensor:
    """A small float64 tensor on ``device`` without a stream synchronisation."""
    return torch.tensor(values, dtype=torch.float64).to(device, non_blocking=True)


# ----------------------------------------------------------------------------------------- segment kernels
_UFUNCS = {"sum": (np.add, 0.0), "max": (np.maximum, -np.inf)}


def _seg(x: Tensor, lengths: Tensor, reduce: str) -> Tensor:
    """Sum or max over consecutive segments of dim 0 (empty segments give 0 / -inf).

    CPU: numpy's ufunc.reduceat (about 2.5× faster than torch.segment_reduce there); elsewhere
    torch.segment_reduce with unsafe=True (lengths are valid by construction; no host synchronisation)."""
    if x.device.type != "cpu":
        if lengths.numel() == 1 and x.shape[0] > 0:  # CUB's segmented reduce gives one thread block per segment
            return (x.sum(0) if reduce == "sum" else x.amax(0))[None]
        return torch.segment_reduce(x, reduce, lengths=lengths, unsafe=True)
    ufunc, empty = _UFUNCS[reduce]
    ln = lengths.numpy()
    filled = ln > 0
    if filled.all() and ln.size:
        return torch.from_numpy(ufunc.reduceat(x.numpy(), np.cumsum(ln) - ln, axis=0))
    # reduceat reads segment i as x[start_i : start_{i+1}] and an empty one as x[start_i]; an empty segment's
    # start may equal len(x) (out of range), so reduce over the non-empty segments only and fill the rest
    out = torch.full((ln.size, *x.shape[1:]), empty, dtype=x.dtype)
    if filled.any():
        out.numpy()[filled] = ufunc.reduceat(x.numpy(), (np.cumsum(ln) - ln)[filled], axis=0)
    return out


@functools.lru_cache(maxsize=64)
def _chain_plan(exps: tuple[float, ...]) -> tuple[float, list[int]] | None:
    """Write every exponent as k·δ with small integers k (so |w|^r = (|w|^δ)^k by multiplication), or None."""
    fracs = [Fraction(e).limit_denominator(1000) for e in exps]
    if any(abs(float(f) - e) > 1e-12 * e for f, e in zip(fracs, exps)):
        return None
    den = math.lcm(*(f.denominator for f in fracs))
    nums = [int(f * den) for f in fracs]
    g = math.gcd(*nums)
    ks = [n // g for n in nums]
    return (g / den, ks) if max(ks) <= _MAX_CHAIN else None


def _segment_log_power_sums(logv: Tensor, lengths: Tensor, exps: Sequence[float], n: int) -> Tensor:
    """(S, R) matrix of log Σ_{i∈segment} |v_i|^r for each exponent r, in float64.

    ``logv`` is log|v| (float64, -inf for zero or pruned entries); each segment is shifted by its max log so
    its largest term is exactly 1. Exponents on a common grid (e.g. 0.1…2.0) are evaluated as powers of one
    exponential by repeated multiplication (relative error ≤ k·2^-53), others by one exp each.
    """
    shift = torch.nan_to_num(_seg(logv, lengths, "max"), nan=0.0, neginf=0.0, posinf=0.0)
    z = logv - torch.repeat_interleave(shift, lengths, output_size=n)
    plan = _chain_plan(tuple(exps))
    if plan is None:
        sums = [_seg(torch.exp(z * r), lengths, "sum") for r in exps]
    else:
        delta, ks = plan
        base = torch.exp(z.mul_(delta))
        power, by_k = base, {}
        for k in range(1, max(ks) + 1):
            if k == 2:
                power = power * base
            elif k > 2:
                power.mul_(base)
            if k in ks:
                by_k[k] = _seg(power, lengths, "sum")
        sums = [by_k[k] for k in ks]
    return torch.stack(sums, dim=1).log_() + shift[:, None] * _floats(exps, logv.device)


def _combine_log_sums(ls: Tensor, lengths: Tensor) -> Tensor:
    """Segment log-sum-exp over consecutive rows of ``ls`` (rows → layers)."""
    m = torch.nan_to_num(_seg(ls, lengths, "max"), nan=0.0, neginf=0.0, posinf=0.0)
    e = torch.exp(ls - torch.repeat_interleave(m, lengths, dim=0, output_size=ls.shape[0]))
    return _seg(e, lengths, "sum").log() + m


def _sort(x: Tensor) -> Tensor:
    """Ascending sort of a 1-D tensor (numpy's SIMD sort on the CPU, torch.sort elsewhere)."""
    if x.device.type == "cpu":
        return torch.from_numpy(np.sort(x.numpy()))
    return torch.sort(x).values


def _gini_from_sorted(y: Tensor, lengths: Tensor, counts: Tensor) -> Tensor:
    """Hurley–Rickard Gini per segment of ascending magnitudes ``y`` (float64).

    With d survivors among n entries of a segment (pruned entries are zeros sorted first) and 1-based local
    rank k: G = Σ_k (2k − 2n + d − 1)·y_(k) / (d·Σy), which equals Σ_k (2k − d − 1)·x_(k) / (d·Σx) over the
    survivors (zeros contribute nothing). Σ_k k·y_(k) = (n + 1)·S − Σ_k C_k with C the running sum.
    """
    run = torch.cumsum(y, 0)
    ends = torch.cumsum(lengths, 0)
    padded = torch.cat([run.new_zeros(1), run])
    before = padded[ends - lengths]
    total = padded[ends] - before
    n, d = lengths.to(torch.float64), counts.to(torch.float64)
    ranked = (n + 1.0) * total - (_seg(run, lengths, "sum") - n * before)
    g = (2.0 * ranked - (2.0 * n - d + 1.0) * total) / (d * total)
    return torch.where((d > 0) & (total > 0), g, torch.nan)


_LITTLE_ENDIAN = sys.byteorder == "little"


def _segment_gini(v32: Tensor, lengths: Tensor, counts: Tensor) -> Tensor:
    """Gini per contiguous segment of non-negative float32 magnitudes, via one composite-key sort
    (segment id in the high 32 bits, the magnitude's IEEE bits, monotone for x ≥ 0, in the low 32)."""
    if v32.numel() == 0:  # no survivor anywhere (CPU layout): every segment is empty
        return torch.full((lengths.numel(),), torch.nan, dtype=torch.float64)
    if lengths.numel() == 1:
        return _gini_from_sorted(_sort(v32).double(), lengths, counts)
    ids = torch.arange(lengths.numel(), device=v32.device) << 32
    key = torch.repeat_interleave(ids, lengths, output_size=v32.numel())
    key = _sort(key.bitwise_or_(v32.contiguous().view(torch.int32)))
    low = key.view(torch.int32)[0::2] if _LITTLE_ENDIAN else (key & 0xFFFFFFFF).to(torch.int32)
    return _gini_from_sorted(low.view(torch.float32).double(), lengths, counts)


_CPU_BLOCK = 1 << 17  # elements per cache-resident block on the CPU; one block on accelerators


@contextlib.contextmanager
def _calling_thread_only(device: torch.device) -> Iterator[None]:
    """On the CPU, run torch ops on the calling thread only (restored afterwards). The blocked pass is
    thousands of small cache-resident ops, for which an OpenMP barrier per op costs more than it gains,
    by orders of magnitude on a busy machine (measured: 0.5 s single-threaded vs 5–18 s with 2 threads
    on a shared 2-core VM)."""
    if device.type != "cpu":
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _int_segment_sum(x: Tensor, lengths: Tensor) -> Tensor:
    """Exact integer segment sums (empty segments give 0) via one cumulative sum."""
    c = torch.cat([x.new_zeros(1), torch.cumsum(x, 0)])
    ends = torch.cumsum(lengths, 0)
    return c[ends] - c[ends - lengths]


def _blocks(lengths: Tensor, n: int) -> list[tuple[int, int, int, int]]:
    """Runs of whole segments (s0, s1, e0, e1) of at most _CPU_BLOCK elements each (or one segment, if
    longer); a single run off the CPU."""
    count = lengths.numel()
    if lengths.device.type != "cpu" or n <= _CPU_BLOCK:
        return [(0, count, 0, n)]
    ends = np.cumsum(lengths.numpy())
    runs, s0, e0 = [], 0, 0
    while s0 < count:
        s1 = min(max(int(np.searchsorted(ends, e0 + _CPU_BLOCK, side="right")), s0 + 1), count)
        runs.append((s0, s1, e0, int(ends[s1 - 1])))
        s0, e0 = s1, int(ends[s1 - 1])
    return runs


def _segment_stats(v: Tensor, lengths: Tensor, counts: Tensor, exps: Sequence[float],
                   want_gini: bool) -> tuple[Tensor | None, Tensor | None]:
    """Log power sums (S, R) and Gini (S,) of consecutive segments of the flat magnitudes ``v``.

    On the CPU the work runs block by block so every intermediate stays in cache."""
    ls, gs = [], []
    for s0, s1, e0, e1 in _blocks(lengths, v.numel()):
        vb, lb = v[e0:e1], lengths[s0:s1]
        if exps:
            ls.append(_segment_log_power_sums(vb.double().log(), lb, exps, e1 - e0))
        if want_gini:
            gs.append(_segment_gini(vb.float(), lb, counts[s0:s1]))
    return (torch.cat(ls) if exps else None), (torch.cat(gs) if want_gini else None)


def _segment_nanmean(x: Tensor, lengths: Tensor) -> Tensor:
    ok = ~torch.isnan(x)
    return _seg(torch.where(ok, x, 0.0), lengths, "sum") / _seg(ok.double(), lengths, "sum")
