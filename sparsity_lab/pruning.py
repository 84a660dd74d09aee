"""Pruning rules: SAP, Lottery Ticket, One Shot and the random-ticket control (METHODS.md §3).

Every rule works per *group* of the chosen scope (``global``: all prunable weights, ``layer``: one tensor,
``neuron``: one output row) and removes an exact number of weights. Counts are computed in float64 and
snapped to the nearest integer when within 1e-9 (relative) of it, so binary rounding of e.g. 0.9·10 never
moves a floor/ceil by one. Ties in magnitude are broken by flat index (the lower index is pruned first),
and at least one weight per group survives magnitude pruning.
"""

from __future__ import annotations

import fnmatch
import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

from sparsity_lab.masks import MaskSet
from sparsity_lab.measures import SCOPES, pq_index, pq_index_by_group, validate_pq


@dataclass
class PruneOutcome:
    """New masks and per-group records {scope, group, metric ∈ kept|pruned_count|surviving_before, value}."""

    masks: MaskSet
    records: list[dict] = field(default_factory=list)


@dataclass(frozen=True)
class PruningRule:
    name: str
    fn: Callable[..., PruneOutcome]
    hyperparameters: tuple[str, ...]


PRUNING_RULES: dict[str, PruningRule] = {}


def register_rule(name: str) -> Callable:
    """Register ``fn(weights, masks, scope, **hyper) -> PruneOutcome`` under ``name``."""

    def deco(fn: Callable[..., PruneOutcome]) -> Callable[..., PruneOutcome]:
        kw = tuple(p.name for p in inspect.signature(fn).parameters.values() if p.kind is p.KEYWORD_ONLY)
        PRUNING_RULES[name] = PruningRule(name, fn, kw)
        return fn

    return deco


def prune(rule: str, model_or_weights: nn.Module | Mapping[str, Tensor], masks: MaskSet, *,
          scope: str = "global", **hyper) -> PruneOutcome:
    """Apply pruning rule ``rule`` (a key of PRUNING_RULES) to the surviving weights; returns new masks."""
    if rule not in PRUNING_RULES:
        raise ValueError(f"unknown pruning rule {rule!r}; registered rules: {sorted(PRUNING_RULES)}")
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}; choose from {SCOPES}")
    spec = PRUNING_RULES[rule]
    unknown = sorted(set(hyper) - set(spec.hyperparameters))
    if unknown:
        raise ValueError(f"rule {rule!r} got unknown hyperparameter(s) {unknown}; it accepts {spec.hyperparameters}")
    if isinstance(model_or_weights, nn.Module):
        weights = {n: p.detach() for n, p in MaskSet.parameters(masks, model_or_weights).items()}
    else:
        missing = [n for n in masks if n not in model_or_weights]
        if missing:
            raise ValueError(f"no weights for masks {missing}")
        weights = {n: model_or_weights[n].detach() for n in masks}
    return spec.fn(weights, masks, scope, **hyper)


# ------------------------------------------------------------------------------ exact-count selection
def _snap(x: Tensor) -> Tensor:
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


def _rows(x: Tensor, scope: str) -> Tensor:
    return x.reshape(x.shape[0] if x.dim() else 1, -1) if scope == "neuron" else x.reshape(1, -1)


def magnitude_prune(weights: Mapping[str, Tensor], masks: MaskSet, scope: str,
                    counts: Mapping[str, int | Sequence[int] | Tensor]) -> MaskSet:
    """Remove exactly ``counts[group]`` smallest-|w| surviving weights per group (METHODS.md §3).

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
        mag, alive = _rows(w.abs(), scope), _rows(m.to(w.device), scope)
        c = torch.as_tensor(counts.get(n, 0), dtype=torch.int64).reshape(-1).expand(mag.shape[0])
        out[n] = _drop_smallest(mag, alive, c).reshape(m.shape).to(m.device)
    return out


# ----------------------------------------------------------------------------------------- records
def _group_counts(masks: Mapping[str, Tensor], scope: str) -> dict[str, Tensor]:
    """Surviving count per group: {"all": 1-elem} (global) or {name: per-row (neuron) / 1-elem (layer)}."""
    if scope == "global":
        return {"all": sum(m.sum() for m in masks.values()).reshape(1)}
    return {n: _rows(m, scope).sum(1) for n, m in masks.items()}


def _records(scope: str, old: Mapping[str, Tensor], new: Mapping[str, Tensor],
             kept: Mapping[str, Tensor] | None = None) -> list[dict]:
    """Per-group kept (r_t; default: survivors after), pruned_count (c_t = survivors removed) and
    surviving_before (d); neuron-scope values are summed over the rows of a layer."""
    before = _group_counts(old, scope)
    removed = _group_counts({n: old[n] & ~new[n].to(old[n].device) for n in old}, scope)
    kept = kept if kept is not None else _group_counts(new, scope)
    out = []
    for g in before:
        for metric, val in (("kept", kept[g]), ("pruned_count", removed[g]), ("surviving_before", before[g])):
            out.append({"scope": scope, "group": g, "metric": metric, "value": float(val.sum())})
    return out


def _check(name: str, ok: bool, value, allowed: str) -> None:
    if not ok:
        raise ValueError(f"hyperparameter {name}={value!r} is invalid; it must be {allowed}")


# ------------------------------------------------------------------------------------------- rules
def _sap_rc(d: Tensor, pqi: Tensor, p: float, q: float, eta_r: float, gamma: float,
            beta: float) -> tuple[Tensor, Tensor]:
    """r = ⌈d·(1+η_r)^{−q/(q−p)}·(1−I)^{qp/(q−p)}⌉, c = ⌊d·clamp(γ(1 − r/d), 0, β)⌋ (float64).
    A group whose PQI is undefined (empty or all-zero) keeps everything."""
    d = d.to(torch.float64)
    pqi = pqi.to(torch.float64)
    x = d * (1.0 + eta_r) ** (-q / (q - p)) * (1.0 - pqi) ** (q * p / (q - p))
    r = torch.where(torch.isnan(pqi), d, torch.ceil(_snap(x)))
    c = torch.floor(_snap(torch.minimum((gamma * (d - r)).clamp(min=0.0), beta * d)))
    return r.to(torch.int64), c.to(torch.int64)


def _check_sap(p: float, q: float, eta_r: float, gamma: float, beta: float) -> None:
    validate_pq(p, q)
    _check("eta_r", eta_r >= 0, eta_r, ">= 0")
    _check("gamma", gamma >= 0, gamma, ">= 0")
    _check("beta", 0 < beta <= 1, beta, "in (0, 1]")


def sap_counts(w: Tensor, p: float, q: float, eta_r: float = 0.0, gamma: float = 1.0,
               beta: float = 0.9) -> tuple[int, int]:
    """SAP's (r, c) for one group whose surviving weights are the entries of ``w``."""
    _check_sap(p, q, eta_r, gamma, beta)
    d = torch.tensor([w.numel()])
    r, c = _sap_rc(d, pq_index(w, p, q).reshape(1).cpu(), p, q, eta_r, gamma, beta)
    return int(r[0]), int(c[0])


@register_rule("sap")
def _sap(weights, masks, scope, *, p: float = 0.5, q: float = 1.0, eta_r: float = 0.0,
         gamma: float = 1.0, beta: float = 0.9) -> PruneOutcome:
    """Sparsity-informed adaptive pruning: per group keep r, prune c smallest survivors."""
    _check_sap(p, q, eta_r, gamma, beta)
    stats = pq_index_by_group(weights, masks, scope, p, q)
    kept, counts = {}, {}
    for g, (d, pqi) in stats.items():
        kept[g], counts[g] = _sap_rc(d.reshape(-1), pqi.reshape(-1), p, q, eta_r, gamma, beta)
    new = magnitude_prune(weights, masks, scope, counts)
    return PruneOutcome(new, _records(scope, masks, new, kept))


def _layer_rates(names: Sequence[str], fraction: float, layer_rates: Mapping[str, float]) -> dict[str, float]:
    """Rate per layer: the first matching fnmatch pattern's rate, else ``fraction``."""
    for pat, rate in layer_rates.items():
        _check(f"layer_rates[{pat!r}]", 0 <= rate < 1, rate, "in [0, 1)")
        if not fnmatch.filter(names, pat):
            raise ValueError(f"layer_rates pattern {pat!r} matches no masked parameter; available: {list(names)}")
    return {n: next((r for pat, r in layer_rates.items() if fnmatch.fnmatch(n, pat)), fraction) for n in names}


@register_rule("lt")
def _lt(weights, masks, scope, *, fraction: float = 0.2,
        layer_rates: Mapping[str, float] | None = None) -> PruneOutcome:
    """Lottery Ticket / IMP: prune c = ⌊P·d⌋ smallest survivors per group. With ``layer_rates`` every layer
    uses its own rate, so a global scope becomes per-layer grouping (recorded as scope "layer")."""
    _check("fraction", 0 <= fraction < 1, fraction, "in [0, 1)")
    if layer_rates and scope == "global":
        scope = "layer"
    rates = _layer_rates(list(masks), fraction, layer_rates or {})
    d = _group_counts(masks, scope)
    counts = {g: torch.floor(_snap(rates.get(g, fraction) * n.to(torch.float64))).to(torch.int64)
              for g, n in d.items()}
    new = magnitude_prune(weights, masks, scope, counts)
    return PruneOutcome(new, _records(scope, masks, new))


@register_rule("oneshot")
def _oneshot(weights, masks, scope, *, fraction: float = 0.2, iteration: int = 1,
             reference: Mapping[str, Tensor] | None = None) -> PruneOutcome:
    """One Shot: mask m_t = the top-k = ⌈(1−P)^t · n⌉ entries by |reference| in each group of n entries
    (reference = the dense model trained at iteration 0), independent of the current mask. Pass
    ``iteration=t+1`` to produce m_{t+1} after training iteration t."""
    _check("fraction", 0 <= fraction < 1, fraction, "in [0, 1)")
    _check("iteration", isinstance(iteration, int) and iteration >= 0, iteration, "an int >= 0")
    missing = list(masks) if reference is None else [n for n in masks if n not in reference]
    _check("reference", not missing, f"<missing {missing}>", "a mapping with a tensor for every masked parameter")
    dense = MaskSet({n: torch.ones_like(m) for n, m in masks.items()})
    keep = (1.0 - fraction) ** iteration
    counts = {g: n - torch.ceil(_snap(keep * n.to(torch.float64))).to(torch.int64).clamp(min=1)
              for g, n in _group_counts(dense, scope).items()}
    new = magnitude_prune({n: reference[n] for n in masks}, dense, scope, counts)
    new = MaskSet({n: t.to(masks[n].device) for n, t in new.items()})
    return PruneOutcome(new, _records(scope, masks, new))


@register_rule("random")
def _random(weights, masks, scope, *, target: Mapping[str, Tensor] | None = None,
            generator: torch.Generator | None = None) -> PruneOutcome:
    """Random ticket: a uniformly random mask with exactly ``target``'s survivors per layer (per row for the
    neuron scope; the global scope also matches per-layer counts). ``target`` defaults to ``masks``."""
    target = masks if target is None else target
    dev = generator.device if generator is not None else torch.device("cpu")
    new = MaskSet()
    row_scope = "neuron" if scope == "neuron" else "layer"
    for n, m in masks.items():
        t = _rows(target[n].to(dev), row_scope)
        order = torch.argsort(torch.rand(t.shape, generator=generator, device=dev), dim=1)
        rank = torch.empty_like(order).scatter_(1, order, torch.arange(t.shape[1], device=dev).expand_as(order))
        new[n] = (rank < t.sum(1, keepdim=True)).reshape(m.shape).to(m.device)
    return PruneOutcome(new, _records(row_scope, masks, new))
