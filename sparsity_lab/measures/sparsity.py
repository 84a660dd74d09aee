"""Sparsity measures over the surviving weights of a group (docs/methods.md §1).

Groups: ``global`` (all prunable weights concatenated), ``layer`` (one tensor), ``neuron`` (one output row,
the tensor reshaped to ``(out_features_or_channels, -1)``). Every measure sees only the *surviving* entries
(mask True) of its group; an empty or all-zero group gives NaN, never an exception.

Implementation: the grouped layout lives in ``_layout`` and the segment reductions (per-group power sums,
blocked CPU pass, composite-key Gini sort) in ``_segments``; this module holds the public measures and
the formulas that turn per-group power sums into PQI and Hoyer values.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from numbers import Real

import torch
from torch import Tensor, nn

from sparsity_lab.measures.layout import _Layout, _scope_stats
from sparsity_lab.measures.segments import (
    _calling_thread_only,
    _floats,
    _gini_from_sorted,
    _segment_log_power_sums,
    _segment_nanmean,
    _small,
    _sort,
)

SCOPES = ("global", "layer", "neuron")
MEASURES = ("pqi", "gini", "hoyer")
PQ_GRID_P = tuple(round(0.1 * k, 1) for k in range(1, 11))
PQ_GRID_Q = tuple(round(1.0 + 0.1 * k, 1) for k in range(11))
_NEURON_REDUCERS = ("mean", None)


def validate_pq(p: float, q: float) -> None:
    """Raise ValueError unless 0 < p < q are finite reals (docs/methods.md §1: any real pair is allowed)."""
    ok = all(isinstance(x, Real) and not isinstance(x, bool) and math.isfinite(x) for x in (p, q))
    if not (ok and 0 < p < q):
        raise ValueError(f"PQ Index needs 0 < p < q; got p={p}, q={q}")


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


def pq_index_by_group(weights: Mapping[str, Tensor], masks: Mapping[str, Tensor] | None, scope: str,
                      p: float = 0.5, q: float = 1.0) -> dict[str, tuple[Tensor, Tensor]]:
    """Survivor count d and I_{p,q} per group: {"all": …} (global), {layer: …} (layer) or {layer: per-row
    tensors} (neuron). Used by SAP (docs/methods.md §3)."""
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
    """Tidy records {scope, group, metric, p, q, value} of PQI / Gini / Hoyer / remaining (docs/methods.md §1).

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
    """measure_weights over the model's prunable parameters (those of ``masks`` when given; docs/methods.md §2)."""
    from sparsity_lab.masks import MaskSet, prunable_parameters

    params = MaskSet.parameters(masks, model) if masks is not None else prunable_parameters(model)
    return measure_weights({n: p.detach() for n, p in params.items()}, masks, **kw)


def compression_ratio(model: nn.Module, masks: Mapping[str, Tensor]) -> float:
    """All parameters / non-zero parameters, the prunable weights counted by their masks (ShrinkBench)."""
    total = sum(p.numel() for p in model.parameters())
    pruned = sum(int(m.numel() - m.sum()) for m in masks.values())
    return total / (total - pruned) if total > pruned else math.inf
