"""One Shot pruning (docs/methods.md §3; Frankle & Carbin 2019, §2 "one-shot" baseline).

Mask m_t = the top-k, k = ⌈(1−P)^t · n⌉, entries by |reference| in each group of n entries, where the
reference is the dense model trained at iteration 0; independent of the current mask.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from sparsity_lab.masks import MaskSet
from sparsity_lab.rules.base import PruneOutcome, RuleContext, check, register_rule
from sparsity_lab.rules.select import group_counts, magnitude_prune, prune_records, snap


@dataclass(frozen=True)
class OneShotHyper:
    """fraction P ∈ [0, 1): the mask at iteration t keeps (1−P)^t of every group."""

    fraction: float = 0.2
    config_fields: ClassVar[dict[str, str]] = {"fraction": "prune_fraction"}

    def validate(self) -> None:
        check("fraction", 0 <= self.fraction < 1, self.fraction, "in [0, 1)")


@register_rule("oneshot", OneShotHyper, inputs=("iteration", "reference"), citation="Frankle & Carbin 2019, §2")
def oneshot(ctx: RuleContext) -> PruneOutcome:
    """m_{iteration} from ``reference`` (pass ``iteration=t+1`` to produce m_{t+1} after training iteration t)."""
    h: OneShotHyper = ctx.hyper
    masks, reference, iteration = ctx.masks, ctx.reference, ctx.iteration
    check("iteration", isinstance(iteration, int) and iteration >= 0, iteration, "an int >= 0")
    missing = list(masks) if reference is None else [n for n in masks if n not in reference]
    check("reference", not missing, f"<missing {missing}>", "a mapping with a tensor for every masked parameter")
    dense = MaskSet({n: torch.ones_like(m) for n, m in masks.items()})
    keep = (1.0 - h.fraction) ** iteration
    counts = {g: n - torch.ceil(snap(keep * n.to(torch.float64))).to(torch.int64).clamp(min=1)
              for g, n in group_counts(dense, ctx.scope).items()}
    new = magnitude_prune({n: reference[n] for n in masks}, dense, ctx.scope, counts)  # type: ignore[index]
    new = MaskSet({n: t.to(masks[n].device) for n, t in new.items()})
    return PruneOutcome(new, prune_records(ctx.scope, masks, new))
