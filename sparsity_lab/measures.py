"""Sparsity measures over the surviving weights of a group (METHODS.md §1).

Groups: ``global`` (all prunable weights concatenated), ``layer`` (one tensor), ``neuron`` (one output row,
the tensor reshaped to ``(out_features_or_channels, -1)``). Every measure sees only the *surviving* entries
(mask True) of its group; an empty or all-zero group gives NaN, never an exception.

Implementation: all groups are laid out row by row in one flat vector (compacted to the survivors on the CPU,
masked with zeros on accelerators so the computation has static shapes and no host synchronisation). Power
sums Σ|w|^r are computed per row in float64 with a per-row max shift (scale-free, no overflow) by segment
reductions, then combined into layer and global sums in log space; Gini sorts every row / layer / the
whole model at once with one composite-key sort each (group id in the high bits, float32 magnitude bits in
the low bits), so Gini ranks magnitudes at float32 resolution. On the CPU the pass runs in cache-sized
blocks of whole rows on the calling thread (numpy's reduceat, SIMD sort and compress where they are faster).
"""

from __future__ import annotations

import contextlib
import functools
import math
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from numbers import Real

import numpy as np
import torch
from torch import Tensor, nn

SCOPES = ("global", "layer", "neuron")
MEASURES = ("pqi", "gini", "hoyer")
PQ_GRID_P = tuple(round(0.1 * k, 1) for k in range(1, 11))
PQ_GRID_Q = tuple(round(1.0 + 0.1 * k, 1) for k in range(11))
_NEURON_REDUCERS = ("mean", None)
_MAX_CHAIN = 40  # largest integer power computed by repeated multiplication


def validate_pq(p: float, q: float) -> None:
    """Raise ValueError unless 0 < p < q are finite reals (METHODS.md §1: any real pair is allowed)."""
    ok = all(isinstance(x, Real) and not isinstance(x, bool) and math.isfinite(x) for x in (p, q))
    if not (ok and 0 < p < q):
        raise ValueError(f"PQ Index needs 0 < p < q; got p={p}, q={q}")


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
    if x.shape[0] == 0 or ln.size == 0:
        return torch.full((ln.size, *x.shape[1:]), empty, dtype=x.dtype)
    starts = np.minimum(np.cumsum(ln) - ln, x.shape[0] - 1)
    out = ufunc.reduceat(x.numpy(), starts, axis=0)
    out[ln == 0] = empty
    return torch.from_numpy(out)


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
    if lengths.numel() == 1:
        return _gini_from_sorted(_sort(v32).double(), lengths, counts)
    ids = torch.arange(lengths.numel(), device=v32.device) << 32
    key = torch.repeat_interleave(ids, lengths, output_size=v32.numel())
    key = _sort(key.bitwise_or_(v32.contiguous().view(torch.int32)))
    low = key.view(torch.int32)[0::2] if _LITTLE_ENDIAN else (key & 0xFFFFFFFF).to(torch.int32)
    return _gini_from_sorted(low.view(torch.float32).double(), lengths, counts)


# ------------------------------------------------------------------------------- group values from sums
def _pqi(ls: Tensor, d: Tensor, i_p: int, i_q: int, p: float, q: float) -> Tensor:
    """I = 1 − M_p/M_q with log M_r = (log Σ|w|^r − log d)/r."""
    logd = d.log()
    val = 1.0 - torch.exp((ls[:, i_p] - logd) / p - (ls[:, i_q] - logd) / q)
    return torch.where(d > 0, val, torch.nan)


def _pqi_many(ls: Tensor, d: Tensor, exps: Sequence[float], pairs: Sequence[tuple[float, float]]) -> Tensor:
    """(G, P) PQ Index of every group for every (p, q) pair, from the (G, R) log power sums."""
    col = {e: i for i, e in enumerate(exps)}
    logm = (ls - d.log()[:, None]) / _floats(exps, ls.device)
    i_p, i_q = _small([col[p] for p, _ in pairs], ls.device), _small([col[q] for _, q in pairs], ls.device)
    val = 1.0 - torch.exp(logm[:, i_p] - logm[:, i_q])
    return torch.where((d > 0)[:, None], val, torch.nan)


def _hoyer(ls: Tensor, d: Tensor, i1: int, i2: int) -> Tensor:
    """(√d − ‖w‖₁/‖w‖₂)/(√d − 1); NaN for d ≤ 1 or an all-zero group."""
    ratio = torch.exp(ls[:, i1] - 0.5 * ls[:, i2])
    val = (d.sqrt() - ratio) / (d.sqrt() - 1.0)
    return torch.where(d > 1, val, torch.nan)


def _single_group(w: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Flattened float64 |w|, its logs and the one-segment lengths tensor."""
    v = w.detach().reshape(-1).abs().double()
    return v, v.log(), torch.tensor([v.numel()], device=v.device)


def pq_index(w: Tensor, p: float = 0.5, q: float = 1.0) -> Tensor:
    """PQ Index I_{p,q}(w) = 1 − M_p(w)/M_q(w) over the flattened entries (0-dim float64; NaN if undefined)."""
    validate_pq(p, q)
    v, logv, lengths = _single_group(w)
    ls = _segment_log_power_sums(logv, lengths, [p, q], v.numel())
    return _pqi(ls, lengths.double(), 0, 1, p, q)[0]


def pq_index_grid(w: Tensor, ps: Sequence[float] = PQ_GRID_P, qs: Sequence[float] = PQ_GRID_Q) -> Tensor:
    """PQ Index for every (p, q) of ``ps × qs`` in one pass ([len(ps), len(qs)], NaN where p ≥ q)."""
    for x in (*ps, *qs):
        if not (isinstance(x, Real) and math.isfinite(x) and x > 0):
            raise ValueError(f"PQ Index grid needs finite exponents > 0; got {x!r}")
    exps = sorted({float(x) for x in (*ps, *qs)})
    v, logv, lengths = _single_group(w)
    logm = (_segment_log_power_sums(logv, lengths, exps, v.numel())[0] - lengths.double().log())
    logm = logm / torch.tensor(exps, dtype=torch.float64, device=v.device)
    idx = {e: i for i, e in enumerate(exps)}
    lp = logm[[idx[float(p)] for p in ps]]
    lq = logm[[idx[float(q)] for q in qs]]
    out = 1.0 - torch.exp(lp[:, None] - lq[None, :])
    valid = torch.tensor([[p < q for q in qs] for p in ps], device=v.device)
    return torch.where(valid & (lengths > 0), out, torch.nan)


def gini(w: Tensor) -> Tensor:
    """Hurley–Rickard Gini index G = Σ_k (2k − N − 1)·x_(k) / (N·Σx) over sorted magnitudes (NaN if undefined)."""
    v, _, lengths = _single_group(w)
    return _gini_from_sorted(_sort(v), lengths, lengths)[0]


def hoyer(w: Tensor) -> Tensor:
    """Hoyer sparseness (√d − ‖w‖₁/‖w‖₂)/(√d − 1) (NaN for d ≤ 1 or all-zero)."""
    v, logv, lengths = _single_group(w)
    return _hoyer(_segment_log_power_sums(logv, lengths, [1.0, 2.0], v.numel()), lengths.double(), 0, 1)[0]


def density(mask: Tensor) -> Tensor:
    """Fraction of True entries of a mask (0-dim float64; NaN for an empty mask)."""
    return mask.detach().to(torch.float64).mean()


# --------------------------------------------------------------------------------------- grouped layout
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


def pq_index_by_group(weights: Mapping[str, Tensor], masks: Mapping[str, Tensor] | None, scope: str,
                      p: float = 0.5, q: float = 1.0) -> dict[str, tuple[Tensor, Tensor]]:
    """Survivor count d and I_{p,q} per group: {"all": …} (global), {layer: …} (layer) or {layer: per-row
    tensors} (neuron). Used by SAP (METHODS.md §3)."""
    validate_pq(p, q)
    _check_scopes([scope])
    with _calling_thread_only(next(iter(weights.values())).device if weights else torch.device("cpu")):
        lay = _Layout(weights, masks)
        st = _scope_stats(lay, [scope], [p, q], want_gini=False)[scope]
        vals = _pqi(st.log_sums, st.count, 0, 1, p, q)
    if scope == "neuron":
        return {n: (c, v) for n, c, v in zip(lay.names, st.count.split(lay.rows), vals.split(lay.rows))}
    return {lab: (st.count[i], vals[i]) for i, lab in enumerate(st.labels)}


# --------------------------------------------------------------------------------------- tidy records
def _check_scopes(scopes: Sequence[str]) -> None:
    bad = [s for s in scopes if s not in SCOPES]
    if bad:
        raise ValueError(f"unknown scope(s) {bad}; choose from {SCOPES}")


def _segment_nanmean(x: Tensor, lengths: Tensor) -> Tensor:
    ok = ~torch.isnan(x)
    return _seg(torch.where(ok, x, 0.0), lengths, "sum") / _seg(ok.double(), lengths, "sum")


@dataclass(frozen=True)
class _Request:
    """What measure_weights computes, validated."""

    scopes: tuple[str, ...]
    pairs: tuple[tuple[float, float], ...]
    grid_pairs: tuple[tuple[float, float], ...]
    measures: tuple[str, ...]
    neuron_reduce: str | None

    @property
    def exps(self) -> list[float]:
        base = {e for pq in self.pairs + self.grid_pairs for e in pq}
        return sorted(base | ({1.0, 2.0} if "hoyer" in self.measures else set()))


def _request(scopes, pq_pairs, grid, measures, neuron_reduce) -> _Request:
    _check_scopes(scopes)
    bad = [m for m in measures if m not in MEASURES]
    if bad:
        raise ValueError(f"unknown measure(s) {bad}; choose from {MEASURES}")
    if neuron_reduce not in _NEURON_REDUCERS:
        raise ValueError(f"neuron_reduce must be one of {_NEURON_REDUCERS}; got {neuron_reduce!r}")
    pairs = tuple(dict.fromkeys((float(p), float(q)) for p, q in pq_pairs)) if "pqi" in measures else ()
    for p, q in pairs:
        validate_pq(p, q)
    grid_pairs = tuple((p, q) for p in PQ_GRID_P for q in PQ_GRID_Q if p < q and (p, q) not in pairs) if grid else ()
    return _Request(tuple(scopes), pairs, grid_pairs, tuple(measures), neuron_reduce)


def measure_weights(weights: Mapping[str, Tensor], masks: Mapping[str, Tensor] | None = None, *,
                    scopes: Sequence[str] = SCOPES, pq_pairs: Sequence[tuple[float, float]] = ((0.5, 1.0),),
                    grid: bool = False, measures: Sequence[str] = MEASURES,
                    neuron_reduce: str | None = "mean") -> list[dict]:
    """Tidy records {scope, group, metric, p, q, value} of PQI / Gini / Hoyer / remaining (METHODS.md §1).

    Groups: "all" (global), the parameter name (layer), and for the neuron scope the layer name with the
    NaN-mean over its neurons (``neuron_reduce="mean"``) or ``f"{layer}[{i}]"`` per neuron (``None``).
    ``grid=True`` adds PQI rows for every (p, q) of PQ_GRID_P × PQ_GRID_Q with p < q at the global and
    layer scopes (the neuron scope gets ``pq_pairs`` only). p and q are NaN for non-PQI metrics. All values
    are computed on the weights' device and transferred to the host once, at the end.
    """
    req = _request(scopes, pq_pairs, grid, measures, neuron_reduce)
    device = next(iter(weights.values())).device if weights else torch.device("cpu")
    with _calling_thread_only(device):
        blocks = _value_blocks(weights, masks, req)
        values = torch.cat([b[-1].T.reshape(-1).to(torch.float64) for b in blocks]).tolist()
    records, k = [], 0
    for scope, labels, rows, _ in blocks:
        for metric, p, q in rows:
            for lab in labels:
                records.append({"scope": scope, "group": lab, "metric": metric, "p": p, "q": q, "value": values[k]})
                k += 1
    return records


_Block = tuple[str, list[str], list[tuple[str, float, float]], Tensor]


def _value_blocks(weights, masks, req: _Request) -> list[_Block]:
    """Per scope: (scope, group labels, [(metric, p, q)…], values (groups × metrics) on the device)."""
    lay = _Layout(weights, masks)
    exps = req.exps
    col = {e: i for i, e in enumerate(exps)}
    stats = _scope_stats(lay, req.scopes, exps, "gini" in req.measures)
    nan = math.nan
    blocks = []
    for scope in req.scopes:
        st = stats[scope]
        pairs = req.pairs + (req.grid_pairs if scope != "neuron" else ())
        rows, cols = [("remaining", nan, nan)], [(st.count / st.size)[:, None]]
        if pairs:
            rows += [("pqi", p, q) for p, q in pairs]
            cols.append(_pqi_many(st.log_sums, st.count, exps, pairs))
        if "gini" in req.measures:
            rows.append(("gini", nan, nan))
            cols.append(st.gini[:, None])
        if "hoyer" in req.measures:
            rows.append(("hoyer", nan, nan))
            cols.append(_hoyer(st.log_sums, st.count, col[1.0], col[2.0])[:, None])
        values, labels = torch.cat(cols, dim=1), st.labels
        if scope == "neuron" and req.neuron_reduce == "mean":
            values = _segment_nanmean(values, st.rows_per_layer)
        elif scope == "neuron":
            labels = lay.row_labels()
        blocks.append((scope, labels, rows, values))
    return blocks


def measure_model(model: nn.Module, masks: Mapping[str, Tensor] | None = None, **kw) -> list[dict]:
    """measure_weights over the model's prunable parameters (those of ``masks`` when given; METHODS.md §2)."""
    from sparsity_lab.masks import MaskSet, prunable_parameters

    params = MaskSet.parameters(masks, model) if masks is not None else prunable_parameters(model)
    return measure_weights({n: p.detach() for n, p in params.items()}, masks, **kw)


def compression_ratio(model: nn.Module, masks: Mapping[str, Tensor]) -> float:
    """All parameters / non-zero parameters, the prunable weights counted by their masks (ShrinkBench)."""
    total = sum(p.numel() for p in model.parameters())
    pruned = sum(int(m.numel() - m.sum()) for m in masks.values())
    return total / (total - pruned) if total > pruned else math.inf
