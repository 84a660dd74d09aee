"""Random-ticket control (docs/methods.md §3; Frankle & Carbin 2019, §2 "randomly sampled sparse networks").

A uniformly random mask with exactly ``target``'s survivors per layer (per row for the neuron scope; the
global scope also matches per-layer counts). ``target`` defaults to the current masks.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sparsity_lab.masks import MaskSet
from sparsity_lab.rules.base import PruneOutcome, RuleContext, register_rule
from sparsity_lab.rules.select import prune_records, rows


@dataclass(frozen=True)
class RandomHyper:
    """No hyperparameters: the counts come from ``target`` (a context input)."""


@register_rule("random", RandomHyper, inputs=("target", "generator"), citation="Frankle & Carbin 2019, §2")
def random_ticket(ctx: RuleContext) -> PruneOutcome:
    """Draw the random mask from ``generator`` (CPU by default)."""
    masks, generator = ctx.masks, ctx.generator
    target = masks if ctx.target is None else ctx.target
    dev = generator.device if generator is not None else torch.device("cpu")
    new = MaskSet()
    row_scope = "neuron" if ctx.scope == "neuron" else "layer"
    for n, m in masks.items():
        t = rows(target[n].to(dev), row_scope)
        order = torch.argsort(torch.rand(t.shape, generator=generator, device=dev), dim=1)
        rank = torch.empty_like(order).scatter_(1, order, torch.arange(t.shape[1], device=dev).expand_as(order))
        new[n] = (rank < t.sum(1, keepdim=True)).reshape(m.shape).to(m.device)
    return PruneOutcome(new, prune_records(row_scope, masks, new))
