"""``prune``: apply a registered pruning rule once (docs/methods.md §3).

The rules live in :mod:`sparsity_lab.rules` (SAP, Lottery Ticket, One Shot, the random-ticket control,
SNIP), one module each. Every rule works per *group* of the chosen scope (``global``: all prunable weights,
``layer``: one tensor, ``neuron``: one output row) and removes an exact number of weights (counts in
float64, snapped to integers within 1e-9; ties broken by flat index; at least one survivor per group).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor, nn

from sparsity_lab.masks import MaskSet
from sparsity_lab.measures.sparsity import SCOPES
from sparsity_lab.rules import PRUNING_RULES, PruneOutcome, PruningRule, RuleContext, register_rule
from sparsity_lab.rules.sap import sap_counts
from sparsity_lab.rules.select import magnitude_prune

__all__ = ["PRUNING_RULES", "PruneOutcome", "PruningRule", "RuleContext", "get_rule", "magnitude_prune", "prune",
           "prune_with", "register_rule", "sap_counts"]


def get_rule(name: str) -> PruningRule:
    """The registered rule ``name``; ValueError listing the registered rules otherwise."""
    if name not in PRUNING_RULES:
        raise ValueError(f"unknown pruning rule {name!r}; registered rules: {sorted(PRUNING_RULES)}")
    return PRUNING_RULES[name]


def _weights(model_or_weights: nn.Module | Mapping[str, Tensor], masks: MaskSet) -> dict[str, Tensor]:
    if isinstance(model_or_weights, nn.Module):
        return {n: p.detach() for n, p in MaskSet.parameters(masks, model_or_weights).items()}
    missing = [n for n in masks if n not in model_or_weights]
    if missing:
        raise ValueError(f"no weights for masks {missing}")
    return {n: model_or_weights[n].detach() for n in masks}


def prune_with(rule: str, model_or_weights: nn.Module | Mapping[str, Tensor], masks: MaskSet, scope: str,
               hyper: Any, **inputs: Any) -> PruneOutcome:
    """Apply ``rule`` with a ready hyperparameter dataclass and context inputs (what the protocol calls)."""
    spec = get_rule(rule)
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}; choose from {SCOPES}")
    model = model_or_weights if isinstance(model_or_weights, nn.Module) else None
    given = {k: v for k, v in inputs.items() if k in spec.inputs}
    ctx = RuleContext(_weights(model_or_weights, masks), masks, scope, hyper, model, **given)
    return spec.fn(ctx)


def prune(rule: str, model_or_weights: nn.Module | Mapping[str, Tensor], masks: MaskSet, *,
          scope: str = "global", **hyper: Any) -> PruneOutcome:
    """Apply pruning rule ``rule`` (a key of PRUNING_RULES) to the surviving weights; returns new masks.

    ``hyper`` holds the rule's hyperparameters (its dataclass fields, e.g. SAP's ``p``) and the context
    inputs it declares (e.g. One Shot's ``reference`` and ``iteration``, SNIP's ``batches`` and ``loss_fn``).
    """
    spec = get_rule(rule)
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}; choose from {SCOPES}")
    inputs = {k: hyper.pop(k) for k in list(hyper) if k in spec.inputs}
    return prune_with(rule, model_or_weights, masks, scope, spec.make_hyper(**hyper), **inputs)
