"""The iterative pruning protocol with rewinding, written once (docs/methods.md §3).

    for t = start … T:  m_t = the carried mask (a control draws its own)
                        rewind every parameter to θ₀ (or the late-rewind point), times m_t      (step 2)
                        train E epochs under m_t → w_t                                          (step 3)
                        measure w_t ⊙ m_t; if t < T: m_{t+1} = rule(w_t, m_t, its inputs),
                        measure the pruned, not-retrained w_t ⊙ m_{t+1}                         (steps 4-5)
                        hand the iteration's records and m_{t+1} to ``save``

:class:`IterativeProtocol` owns that order, the rule call (hyperparameters and the inputs the rule declares:
One Shot's reference, SNIP's batches, ...) and the wall-time record. Its users say *how to train* and
*where records go* by overriding a few hooks: the store-backed runner (``experiments/iterative.py``), the
batched seed groups (``experiments/seed_group.py``, which trains a cohort of runs through
:func:`step_together`) and ``own_loop.iterative_pruning`` (a user's train function, records in memory).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from sparsity_lab.experiments.records import Records
from sparsity_lab.masks import MaskSet
from sparsity_lab.rules.prune import get_rule, prune_with

#: train_together(t, runs, masks) -> one "trained" handle per run (what ``measure`` gets, e.g. an evaluate)
TrainTogether = Callable[[int, Sequence["IterativeProtocol"], Sequence[MaskSet]], Sequence[Any]]


class IterativeProtocol(ABC):
    """One run of the §3 loop. Subclasses implement ``rewind``, ``train``, ``measure`` and ``save``; they
    may override ``begin`` (resume point), ``iteration_masks`` (controls), ``keep_reference`` (persist One
    Shot's reference), ``rule_init`` and ``data_batches`` (inputs of data-dependent rules)."""

    def __init__(self, model: nn.Module, rule: str, hyper: Any, scope: str, iterations: int,
                 prunes: bool = True) -> None:
        self.model, self.rule, self.hyper, self.scope = model, get_rule(rule), hyper, scope
        self.iterations, self.prunes = iterations, prunes
        self.reference: Mapping[str, torch.Tensor] | None = None  # One Shot: the dense model trained at t = 0

    # -- hooks -------------------------------------------------------------------------------------
    def begin(self) -> tuple[int, MaskSet]:
        """The first iteration to run and its incoming mask (default: t = 0, everything kept)."""
        return 0, MaskSet.for_model(self.model)

    def iteration_masks(self, t: int, masks: MaskSet) -> MaskSet:
        """m_t: the mask carried from the previous iteration (a control draws its own)."""
        return masks

    @abstractmethod
    def rewind(self, t: int, masks: MaskSet) -> None:
        """Step 2: parameters back to the rewind point, times m_t."""
        raise NotImplementedError

    @abstractmethod
    def train(self, t: int, masks: MaskSet) -> Any:
        """Step 3 on its own; returns the handle ``measure`` evaluates with."""
        raise NotImplementedError

    @abstractmethod
    def measure(self, rec: Records, t: int, stage: str, masks: MaskSet, trained: Any) -> None:
        """Record the model as it is now under ``masks`` (stage "retrained" or "pruned")."""
        raise NotImplementedError

    @abstractmethod
    def save(self, t: int, rec: Records, masks: MaskSet, next_masks: MaskSet) -> None:
        """Where iteration t's records and m_{t+1} go."""
        raise NotImplementedError

    def keep_reference(self) -> Mapping[str, torch.Tensor]:
        """One Shot's reference, taken once from the model trained at t = 0 (override to persist it)."""
        return {n: p.detach().clone() for n, p in self.model.named_parameters()}

    def rule_init(self, t: int) -> Mapping[str, torch.Tensor] | None:
        """The state iteration t + 1 starts from (None: the model as it is)."""
        return None

    def data_batches(self, t: int, count: int) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], Callable]:
        """``count`` training batches and the loss for a data-dependent rule at iteration t."""
        raise ValueError(f"rule {self.rule.name!r} needs data; this loop was given none")

    # -- the loop ------------------------------------------------------------------------------------
    def rule_inputs(self, t: int) -> dict[str, Any]:
        """The context inputs the rule declares, for the pruning after training iteration t."""
        wanted, out = self.rule.inputs, {}
        if "iteration" in wanted:
            out["iteration"] = t + 1
        if "reference" in wanted:
            self.reference = self.reference if self.reference is not None else self.keep_reference()
            out["reference"] = self.reference
        if "init" in wanted:
            out["init"] = self.rule_init(t)
        if "batches" in wanted:
            out["batches"], out["loss_fn"] = self.data_batches(t, getattr(self.hyper, "num_batches", 1))
        return out

    def finish_iteration(self, t: int, masks: MaskSet, trained: Any, began: float) -> MaskSet:
        """Steps 4-5 on the trained model w_t: measure w_t ⊙ m_t, compute m_{t+1} by the rule, measure
        w_t ⊙ m_{t+1}, save the iteration (``began``: its ``time.perf_counter()`` start); return m_{t+1}."""
        rec = Records()
        self.measure(rec, t, "retrained", masks, trained)
        next_masks = masks
        if t < self.iterations and self.prunes:
            outcome = prune_with(self.rule.name, self.model, masks, self.scope, self.hyper, **self.rule_inputs(t))
            next_masks = outcome.masks
            rec.extend(t, "pruned", outcome.records)
            next_masks.apply_(self.model)
            self.measure(rec, t, "pruned", next_masks, trained)
        rec.add(t, "retrained", "wall_time", time.perf_counter() - began)
        self.save(t, rec, masks, next_masks)
        return next_masks

    def step(self, t: int, masks: MaskSet) -> MaskSet:
        """One whole iteration t trained on its own; returns m_{t+1}."""
        return step_together([self], t, [masks], _train_each)[0]

    def execute(self, on_step: Callable[[int, MaskSet], None] | None = None) -> int:
        """Run the missing iterations; return how many were trained now."""
        start, masks = self.begin()
        for t in range(start, self.iterations + 1):
            masks = self.step(t, masks)
            if on_step is not None:
                on_step(t, masks)
        return max(0, self.iterations + 1 - start)


def _train_each(t: int, runs: Sequence[IterativeProtocol], masks: Sequence[MaskSet]) -> list[Any]:
    return [r.train(t, m) for r, m in zip(runs, masks)]


def step_together(runs: Sequence[IterativeProtocol], t: int, masks: Sequence[MaskSet],
                  train_together: TrainTogether = _train_each) -> list[MaskSet]:
    """Iteration t of several runs at once: masks, rewind, one shared training, then each run's
    ``finish_iteration``. Each run's wall time is its 1/N share of the training plus its own finishing."""
    began = time.perf_counter()
    masks = [r.iteration_masks(t, m) for r, m in zip(runs, masks)]
    for r, m in zip(runs, masks):
        r.rewind(t, m)
    trained = train_together(t, runs, masks)
    share = (time.perf_counter() - began) / len(runs)
    return [r.finish_iteration(t, m, h, time.perf_counter() - share) for r, m, h in zip(runs, masks, trained)]

