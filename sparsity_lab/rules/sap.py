"""SAP, sparsity-informed adaptive pruning (docs/methods.md §3; Diao et al. 2023, "Pruning deep neural
networks from a sparsity perspective", Algorithm 1).

Per group of d survivors with PQ Index I = I_{p,q}: keep r = ⌈d·(1+η_r)^{−q/(q−p)}·(1−I)^{qp/(q−p)}⌉ and
prune c = ⌊d·clamp(γ(1 − r/d), 0, β)⌋ of the smallest-|w| survivors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from sparsity_lab.measures.sparsity import pq_index, pq_index_by_group, validate_pq
from sparsity_lab.rules.base import PruneOutcome, RuleContext, check, register_rule
from sparsity_lab.rules.select import magnitude_prune, prune_records, snap


@dataclass(frozen=True)
class SapHyper:
    """p < q: the PQ Index exponents; η_r >= 0 scales the kept count; γ >= 0 the pruned fraction;
    β ∈ (0, 1] caps the fraction pruned per iteration."""

    p: float = 0.5
    q: float = 1.0
    eta_r: float = 0.0
    gamma: float = 1.0
    beta: float = 0.9
    config_fields: ClassVar[dict[str, str]] = {"p": "p", "q": "q", "eta_r": "eta_r", "gamma": "gamma", "beta": "beta"}

    def validate(self) -> None:
        check("p", self.p > 0, self.p, "0 < p < q")
        check("q", self.q > self.p, self.q, f"greater than p={self.p} (0 < p < q)")
        validate_pq(self.p, self.q)
        check("eta_r", self.eta_r >= 0, self.eta_r, ">= 0")
        check("gamma", self.gamma >= 0, self.gamma, ">= 0")
        check("beta", 0 < self.beta <= 1, self.beta, "in (0, 1]")


def _sap_rc(d: Tensor, pqi: Tensor, h: SapHyper) -> tuple[Tensor, Tensor]:
    """(r, c) in float64 from the closed forms above. A group whose PQI is undefined (empty or all-zero)
    keeps everything."""
    p, q = h.p, h.q
    d = d.to(torch.float64)
    pqi = pqi.to(torch.float64)
    x = d * (1.0 + h.eta_r) ** (-q / (q - p)) * (1.0 - pqi) ** (q * p / (q - p))
    r = torch.where(torch.isnan(pqi), d, torch.ceil(snap(x)))
    c = torch.floor(snap(torch.minimum((h.gamma * (d - r)).clamp(min=0.0), h.beta * d)))
    return r.to(torch.int64), c.to(torch.int64)


def sap_counts(w: Tensor, p: float, q: float, eta_r: float = 0.0, gamma: float = 1.0,
               beta: float = 0.9) -> tuple[int, int]:
    """SAP's (r, c) for one group whose surviving weights are the entries of ``w``."""
    h = SapHyper(p, q, eta_r, gamma, beta)
    h.validate()
    r, c = _sap_rc(torch.tensor([w.numel()]), pq_index(w, p, q).reshape(1).cpu(), h)
    return int(r[0]), int(c[0])


@register_rule("sap", SapHyper, citation="Diao et al. 2023, Algorithm 1")
def sap(ctx: RuleContext) -> PruneOutcome:
    """Per group keep r, prune c smallest survivors (records r as ``kept``)."""
    h: SapHyper = ctx.hyper
    stats = pq_index_by_group(ctx.weights, ctx.masks, ctx.scope, h.p, h.q)
    kept, counts = {}, {}
    for g, (d, pqi) in stats.items():
        kept[g], counts[g] = _sap_rc(d.reshape(-1), pqi.reshape(-1), h)
    new = magnitude_prune(ctx.weights, ctx.masks, ctx.scope, counts)
    return PruneOutcome(new, prune_records(ctx.scope, ctx.masks, new, kept))
