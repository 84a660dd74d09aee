"""Lottery Ticket / iterative magnitude pruning (docs/methods.md §3; Frankle & Carbin 2019, §2).

Per group of d survivors prune c = ⌊P·d⌋ of the smallest |w|; optional per-layer rates (fnmatch patterns,
first match wins, e.g. the authors' 10 % for the output layer) make the grouping per layer.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

from sparsity_lab.rules.base import PruneOutcome, RuleContext, check, register_rule
from sparsity_lab.rules.select import fraction_counts, magnitude_prune, prune_records


@dataclass(frozen=True)
class LtHyper:
    """fraction P ∈ [0, 1) of the survivors pruned per iteration; layer_rates {pattern: rate} (or pairs)."""

    fraction: float = 0.2
    layer_rates: Mapping[str, float] | Sequence[tuple[str, float]] | None = None
    config_fields: ClassVar[dict[str, str]] = {"fraction": "prune_fraction", "layer_rates": "layer_rates"}

    def validate(self) -> None:
        check("fraction", 0 <= self.fraction < 1, self.fraction, "in [0, 1)")
        pairs = self.layer_rates.items() if isinstance(self.layer_rates, Mapping) else (self.layer_rates or ())
        for pattern, rate in pairs:
            check("layer_rates", 0 <= rate < 1, (pattern, rate), "rates in [0, 1)")


def layer_rates(names: Sequence[str], fraction: float, rates: Mapping[str, float]) -> dict[str, float]:
    """Rate per layer: the first matching fnmatch pattern's rate, else ``fraction``."""
    for pat, rate in rates.items():
        check(f"layer_rates[{pat!r}]", 0 <= rate < 1, rate, "in [0, 1)")
        if not fnmatch.filter(names, pat):
            raise ValueError(f"layer_rates pattern {pat!r} matches no masked parameter; available: {list(names)}")
    return {n: next((r for pat, r in rates.items() if fnmatch.fnmatch(n, pat)), fraction) for n in names}


@register_rule("lt", LtHyper, citation="Frankle & Carbin 2019, §2")
def lt(ctx: RuleContext) -> PruneOutcome:
    """Prune ⌊P·d⌋ smallest survivors per group. With ``layer_rates`` every layer uses its own rate, so a
    global scope becomes per-layer grouping (recorded as scope "layer")."""
    h: LtHyper = ctx.hyper
    given = dict(h.layer_rates or {})
    scope = "layer" if given and ctx.scope == "global" else ctx.scope
    rates = layer_rates(list(ctx.masks), h.fraction, given)
    new = magnitude_prune(ctx.weights, ctx.masks, scope, fraction_counts(ctx.masks, scope, h.fraction, rates))
    return PruneOutcome(new, prune_records(scope, ctx.masks, new))
