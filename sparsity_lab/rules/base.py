"""What a pruning rule receives and how it is registered (docs/methods.md §3).

A rule is one function ``fn(ctx: RuleContext) -> PruneOutcome`` plus a small frozen dataclass of its own
hyperparameters, registered with :func:`register_rule`. The context carries the surviving weights, the
masks, the scope, the hyperparameters, and the *inputs* the rule declares: values a run supplies rather
than a user tunes (One Shot's reference model and iteration, SNIP's batches of data, ...). The iterative
protocol (``sparsity_lab.experiments.protocol``) fills every input in :data:`PROTOCOL_INPUTS` for any rule that asks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from sparsity_lab.masks import MaskSet

#: Inputs the iterative protocol can supply (see :class:`RuleContext` for their meaning).
PROTOCOL_INPUTS = ("iteration", "reference", "init", "batches", "loss_fn")


@dataclass
class PruneOutcome:
    """New masks and per-group records {scope, group, metric ∈ kept|pruned_count|surviving_before, value}."""

    masks: MaskSet
    records: list[dict] = field(default_factory=list)


@dataclass
class RuleContext:
    """Everything a rule may read. ``weights`` are the detached surviving-weight tensors (name → tensor of the
    mask's shape); ``model`` is the module they belong to (None when ``prune`` got a weight dict).

    Inputs (each filled only when the rule declares it):
      iteration  the index t+1 of the mask being produced (One Shot's ⌈(1−P)^{t+1}·n⌉)
      reference  name → tensor of the dense model trained at t = 0 (One Shot ranks it)
      init       the state dict the next training starts from (θ₀ or the late-rewind point); None: the
                 model as it is (data-dependent rules that score "at initialisation" use it)
      batches    a few (x, y) training batches; loss_fn(logits, y) -> scalar loss
      target, generator  the random-ticket control's per-layer counts and its generator
    """

    weights: Mapping[str, Tensor]
    masks: MaskSet
    scope: str
    hyper: Any
    model: nn.Module | None = None
    iteration: int = 1
    reference: Mapping[str, Tensor] | None = None
    init: Mapping[str, Tensor] | None = None
    batches: Sequence[tuple[Tensor, Tensor]] | None = None
    loss_fn: Callable[[Tensor, Tensor], Tensor] | None = None
    target: Mapping[str, Tensor] | None = None
    generator: torch.Generator | None = None


#: Every input a rule may declare (the optional fields of RuleContext after ``model``).
INPUTS = ("iteration", "reference", "init", "batches", "loss_fn", "target", "generator")


@dataclass(frozen=True)
class PruningRule:
    """A registered rule. ``hyper`` is its hyperparameter dataclass (defaults = the rule's defaults; an
    optional ``validate()`` method raises ValueError naming a bad value; an optional class attribute
    ``config_fields`` maps hyperparameter → IterativeConfig field; a data rule's ``num_batches`` says how
    many batches the protocol draws). ``inputs`` are the context inputs it reads."""

    name: str
    fn: Callable[[RuleContext], PruneOutcome]
    hyper: type
    inputs: tuple[str, ...] = ()
    citation: str = ""

    @property
    def iterative(self) -> bool:
        """Whether the §3 loop can drive it alone: every input it reads is one the protocol supplies (not so
        the random control, whose target counts come from another run)."""
        return set(self.inputs) <= set(PROTOCOL_INPUTS)

    @property
    def hyperparameters(self) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(self.hyper))

    @property
    def needs_data(self) -> bool:
        return "batches" in self.inputs

    def make_hyper(self, **values: Any) -> Any:
        """The rule's hyperparameter dataclass from keyword values (defaults for the rest), validated."""
        unknown = sorted(set(values) - set(self.hyperparameters))
        if unknown:
            raise ValueError(f"rule {self.name!r} got unknown hyperparameter(s) {unknown}; "
                             f"it accepts {self.hyperparameters + self.inputs}")
        hyper = self.hyper(**values)
        if hasattr(hyper, "validate"):
            hyper.validate()
        return hyper

    def hyper_from_config(self, config: Any) -> Any:
        """The hyperparameters an experiment config sets (``hyper.config_fields``: hyper name → config field)."""
        mapping: Mapping[str, str] = getattr(self.hyper, "config_fields", {})
        return self.make_hyper(**{h: getattr(config, c) for h, c in mapping.items()})


PRUNING_RULES: dict[str, PruningRule] = {}


def register_rule(name: str, hyper: type, *, inputs: Sequence[str] = (), citation: str = "") -> Callable:
    """Register ``fn(ctx: RuleContext) -> PruneOutcome`` under ``name`` (like timm's ``@register_model``)."""
    bad = [i for i in inputs if i not in INPUTS]
    if bad:
        raise ValueError(f"rule {name!r}: unknown input(s) {bad}; allowed {INPUTS}")

    def deco(fn: Callable[[RuleContext], PruneOutcome]) -> Callable[[RuleContext], PruneOutcome]:
        PRUNING_RULES[name] = PruningRule(name, fn, hyper, tuple(inputs), citation)
        return fn

    return deco


class HyperparameterError(ValueError):
    """A rule's hyperparameter out of its bounds: its name, its value and what is allowed (one line)."""

    def __init__(self, name: str, value: Any, allowed: str) -> None:
        super().__init__(f"hyperparameter {name}={value!r} is invalid; it must be {allowed}")
        self.name, self.value, self.allowed = name, value, allowed


def check(name: str, ok: bool, value: Any, allowed: str) -> None:
    """Where a rule states a bound of its hyperparameters: the one place that bound is checked (configs,
    the command line and ``prune`` all ask the rule)."""
    if not ok:
        raise HyperparameterError(name, value, allowed)


def config_field_methods() -> dict[str, tuple[str, ...]]:
    """Config field → the registered rules that read it (from each rule's ``config_fields``)."""
    owners: dict[str, list[str]] = {}
    for rule in PRUNING_RULES.values():
        for config_field in getattr(rule.hyper, "config_fields", {}).values():
            owners.setdefault(config_field, []).append(rule.name)
    return {f: tuple(names) for f, names in owners.items()}


def rule_default(config_field: str) -> Any:
    """The default of the hyperparameter that ``config_field`` sets, stated once, in the rule(s) that read it:
    an experiment config takes its field's default from here, so a config and a rule cannot disagree on it.
    Several rules reading one field (LT, One Shot, SNIP all read ``prune_fraction``) must share the default."""
    found: dict[str, Any] = {}
    for rule in PRUNING_RULES.values():
        by_name = {f.name: f for f in dataclasses.fields(rule.hyper)}
        for hyper_name, field_name in getattr(rule.hyper, "config_fields", {}).items():
            if field_name == config_field:
                found[rule.name] = by_name[hyper_name].default
    if not found:
        raise KeyError(f"no registered rule reads the config field {config_field!r}")
    if len(set(map(repr, found.values()))) > 1:
        raise ValueError(f"the rules reading {config_field!r} disagree on its default: {found}")
    return next(iter(found.values()))
