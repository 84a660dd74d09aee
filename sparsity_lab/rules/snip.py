"""SNIP: single-shot network pruning by connection sensitivity (Lee et al. 2019, ICLR, §4.1, eq. 6).

The saliency of a surviving weight is s_j = |g_j · w_j|, g = ∂L/∂w of the masked model at initialisation,
averaged over a few training batches (the paper's normalisation s_j / Σ_k s_k does not change the ranking).
Each pruning removes c = ⌊P·d⌋ of the lowest-saliency survivors per group (global scope: the paper's top-k
over the whole network). In the iterative protocol (docs/methods.md §3) the saliency is measured at the
weights the next training starts from (θ₀ ⊙ m_t, the ``init`` input), so T iterations with P give
iterative SNIP with rewinding; T = 1 with P = target sparsity is the paper's single shot.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sparsity_lab.masks import MaskSet
from sparsity_lab.rules.base import PruneOutcome, RuleContext, check, register_rule
from sparsity_lab.rules.select import fraction_counts, magnitude_prune, prune_records


@dataclass(frozen=True)
class SnipHyper:
    """fraction P ∈ [0, 1) of the survivors pruned per iteration; num_batches >= 1 training batches the
    saliency is averaged over (the runners draw them; with ``prune`` you pass ``batches`` yourself)."""

    fraction: float = 0.2
    num_batches: int = 1
    config_fields: ClassVar[dict[str, str]] = {"fraction": "prune_fraction", "num_batches": "snip_batches"}

    def validate(self) -> None:
        check("fraction", 0 <= self.fraction < 1, self.fraction, "in [0, 1)")
        check("num_batches", isinstance(self.num_batches, int) and self.num_batches >= 1, self.num_batches,
              "an integer >= 1")


def snip_scores(model: nn.Module, masks: MaskSet, batches: Sequence[tuple[Tensor, Tensor]],
                loss_fn: Callable[[Tensor, Tensor], Tensor] = F.cross_entropy,
                init: Mapping[str, Tensor] | None = None) -> dict[str, Tensor]:
    """|g ⊙ w| per masked parameter of a copy of ``model`` (loaded from ``init`` if given) times the masks,
    with g the mean over ``batches`` of ∇ loss_fn(model(x), y). ``model`` itself is left untouched."""
    work = copy.deepcopy(model)
    if init is not None:
        device = next(work.parameters()).device
        work.load_state_dict({k: v.to(device) for k, v in init.items()})
    masks.apply_(work)
    work.train()
    params = masks.parameters(work)
    grads = {n: torch.zeros_like(p) for n, p in params.items()}
    device = next(work.parameters()).device
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), torch.enable_grad():
        for x, y in batches:
            work.zero_grad(set_to_none=True)
            loss_fn(work(x), y).backward()
            for n, p in params.items():
                grads[n] += p.grad
    return {n: (grads[n] / len(batches) * p.detach()).abs() for n, p in params.items()}


@register_rule("snip", SnipHyper, inputs=("init", "batches", "loss_fn"), citation="Lee et al. 2019, §4.1")
def snip(ctx: RuleContext) -> PruneOutcome:
    """Prune ⌊P·d⌋ lowest-saliency survivors per group; needs the model and at least one batch."""
    h: SnipHyper = ctx.hyper
    check("model", ctx.model is not None, None, "an nn.Module (SNIP differentiates the loss; pass the model)")
    check("batches", bool(ctx.batches), ctx.batches, "a non-empty sequence of (x, y) training batches")
    scores = snip_scores(ctx.model, ctx.masks, ctx.batches, ctx.loss_fn or F.cross_entropy,  # type: ignore[arg-type]
                         ctx.init)
    new = magnitude_prune(scores, ctx.masks, ctx.scope, fraction_counts(ctx.masks, ctx.scope, h.fraction))
    return PruneOutcome(new, prune_records(ctx.scope, ctx.masks, new))
