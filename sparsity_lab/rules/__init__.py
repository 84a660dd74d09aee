"""The pruning rules, one module each (docs/methods.md §3); importing the package registers them all.

Adding a rule = one module here (a hyperparameter dataclass + a function decorated with
``@register_rule``), found by name, plus one test.
"""

from __future__ import annotations

import importlib
import pkgutil

from sparsity_lab.rules.base import (
    PROTOCOL_INPUTS,
    PRUNING_RULES,
    PruneOutcome,
    PruningRule,
    RuleContext,
    register_rule,
)
from sparsity_lab.rules.select import magnitude_prune

#: The paper's rules first (their order = the order of the CLI's and configs' method choices), then every
#: other module of this package in name order.
_FIRST = ("sap", "lt", "oneshot", "random_ticket")
_OTHERS = sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name not in (*_FIRST, "base", "select"))
for _name in (*_FIRST, *_OTHERS):
    importlib.import_module(f"{__name__}.{_name}")


def iterative_rules() -> tuple[str, ...]:
    """Rules that drive the iterative protocol on their own (every rule but the random control)."""
    return tuple(name for name, rule in PRUNING_RULES.items() if rule.iterative)


__all__ = ["PROTOCOL_INPUTS", "PRUNING_RULES", "PruneOutcome", "PruningRule", "RuleContext", "iterative_rules",
           "magnitude_prune", "register_rule"]
