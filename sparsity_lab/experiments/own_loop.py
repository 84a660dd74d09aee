"""SAP, Lottery Ticket and One Shot around *your* model and *your* training loop (docs/methods.md §3).

The experiment runners (``experiments/``) own data, model and training so that runs are reproducible
and stored; a researcher applying a method to their own network usually has all three already. Here
the library owns only the pruning protocol:

    for t = 0 … T:  rewind every parameter to θ₀, multiply by the mask m_t   (docs/methods.md §3 step 2)
                    train(model, masks)          ← your loop; ``masks.attach(optimizer, model)`` once
                    record evaluate(model), remaining fraction, PQI I_{p,q} and Gini   (step 3-4)
                    if t < T: m_{t+1} = rule(trained weights, m_t); record the pruned model (step 4)

``rewind=False`` keeps training the pruned weights instead (no rewinding, "fine-tuning" style).
``stop="pqi_warning"`` (or a ``WarningRule``) ends the loop early where the PQI early warning of
docs/methods.md §6 fires, computed online from the PQI recorded so far; the default ``stop=None`` runs all
T iterations. The
pruning rules are those of :data:`sparsity_lab.rules.prune.PRUNING_RULES` (SAP's p, q, η_r, γ, β; LT's
fraction; One Shot ranks the model trained at t = 0; SNIP needs ``data=`` batches). The loop itself is
``sparsity_lab.experiments.protocol.IterativeProtocol``, the one the experiment runners use.

    masks, records = iterative_pruning(model, train=my_train, evaluate=my_accuracy, rule="sap",
                                       iterations=10, p=0.5, q=1.0)
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Iterable
from typing import Any

import pandas as pd
import torch.nn.functional as F
from torch import Tensor, nn

from sparsity_lab.experiments.protocol import IterativeProtocol
from sparsity_lab.experiments.records import Records
from sparsity_lab.masks import MaskSet
from sparsity_lab.measures.early_warning import PQIMonitor, WarningRule
from sparsity_lab.measures.sparsity import measure_model
from sparsity_lab.rules.prune import PRUNING_RULES

__all__ = ["iterative_pruning"]

COLUMNS = ["iteration", "stage", "metric", "scope", "group", "p", "q", "value"]


def _allowed(rule: str) -> str:
    plain = [n for n, r in PRUNING_RULES.items() if r.iterative and not r.needs_data]
    with_data = [n for n, r in PRUNING_RULES.items() if r.iterative and r.needs_data]
    return (f"rule {rule!r} is not allowed here; allowed: {plain} and, with data=, {with_data} "
            f"(all registered rules: {sorted(PRUNING_RULES)})")


def iterative_pruning(model: nn.Module, train: Callable[[nn.Module, MaskSet], Any],
                      evaluate: Callable[[nn.Module], float] | None = None, *, rule: str = "sap",
                      iterations: int = 10, scope: str = "global", masks: MaskSet | None = None,
                      rewind: bool = True, pq: tuple[float, float] = (0.5, 1.0),
                      data: Iterable[tuple[Tensor, Tensor]] | None = None,
                      loss_fn: Callable[[Tensor, Tensor], Tensor] = F.cross_entropy,
                      stop: str | WarningRule | None = None, **hyper: Any) -> tuple[MaskSet, pd.DataFrame]:
    """Run T = ``iterations`` prunings of ``model`` with ``rule`` around ``train`` (see the module docstring).

    ``train(model, masks)`` trains in place; it should call ``masks.attach(optimizer, model)`` after making
    its optimizer so pruned weights stay zero. ``evaluate(model) -> float`` (e.g. test accuracy) is recorded
    for the retrained and the pruned model. ``masks`` defaults to ``MaskSet.for_model(model)``; ``pq`` is
    the (p, q) of the recorded PQI; ``hyper`` goes to the rule (``fraction`` for LT / One Shot / SNIP; ``p``,
    ``q``, ``eta_r``, ``gamma``, ``beta`` for SAP; SNIP's ``num_batches`` first batches of ``data``, scored
    with ``loss_fn``). Returns the final masks and tidy records with the columns of the store (iteration,
    stage, metric, scope, group, p, q, value). The model ends trained under them.

    ``stop="pqi_warning"`` (the fitted thresholds) or a ``WarningRule``: after each training, the global PQI
    at ``pq`` is fed to the early-warning rule (docs/methods.md §6; thresholds fitted for (p, q) = (0.5, 1));
    when its stop fires at iteration t_f the loop ends there, and the returned masks and the model are those of
    the recommended iteration t_f − back (its trained weights are restored). The records end at t_f and
    ``records.attrs["early_warning"]`` holds the rule's answer (also when it never fired). ``stop=None``
    (default): all T iterations, as before.
    """
    monitor = _monitor(stop)
    spec = PRUNING_RULES.get(rule)
    if spec is None or not spec.iterative:
        raise ValueError(_allowed(rule))
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 0:
        raise ValueError(f"iterations={iterations!r}: allowed an integer T >= 0")
    given = sorted(set(hyper) & set(spec.inputs), reverse=True)
    if given:
        raise ValueError(f"rule {rule!r} gets its {' and '.join(sorted(spec.inputs, reverse=True))} here "
                         f"(got {given}); pass training batches as data= and the loss as loss_fn=")
    if spec.needs_data and data is None:
        raise ValueError(f"rule {rule!r} scores weights on data: pass data=[(x, y), ...] (and loss_fn=)")
    loop = _OwnLoop(model, train, evaluate, rule, spec.make_hyper(**hyper), scope, iterations,
                    masks.clone() if masks is not None else MaskSet.for_model(model), rewind, pq, data, loss_fn)
    loop.monitor = monitor
    loop.execute()
    records = pd.DataFrame(loop.rows, columns=COLUMNS)
    if monitor is not None:
        records.attrs["early_warning"] = monitor.result
    return loop.masks, records


def _monitor(stop: str | WarningRule | None) -> PQIMonitor | None:
    if stop is None:
        return None
    if isinstance(stop, WarningRule):
        return stop.monitor()
    if stop == "pqi_warning":
        return WarningRule().monitor()
    raise ValueError(f"stop={stop!r}: allowed None (all T iterations), 'pqi_warning' or a WarningRule "
                     f"(docs/methods.md §6)")


class _OwnLoop(IterativeProtocol):
    """The §3 loop with the user's train and evaluate functions; records kept in memory."""

    def __init__(self, model: nn.Module, train: Callable, evaluate: Callable | None, rule: str, hyper: Any,
                 scope: str, iterations: int, masks: MaskSet, rewind: bool, pq: tuple[float, float],
                 data: Iterable[tuple[Tensor, Tensor]] | None, loss_fn: Callable) -> None:
        super().__init__(model, rule, hyper, scope, iterations)
        self.user_train, self.evaluate, self.masks, self.rewinds, self.pq = train, evaluate, masks, rewind, pq
        self.theta0 = copy.deepcopy(model.state_dict())
        self.rows: list[dict[str, Any]] = []
        self.data, self.loss_fn = data, loss_fn
        self.monitor: PQIMonitor | None = None
        self.trained: dict[int, tuple[MaskSet, dict[str, Tensor]]] = {}  # early warning: iterations to go back to

    def execute(self, on_step: Callable[[int, MaskSet], None] | None = None) -> int:
        """The base loop; with an early-warning monitor it ends at the iteration where the stop fires and
        restores the masks and trained weights of the recommended iteration (docs/methods.md §6)."""
        if self.monitor is None:
            return super().execute(on_step)
        start, masks = self.begin()
        for t in range(start, self.iterations + 1):
            masks = self.step(t, masks)
            if on_step is not None:
                on_step(t, masks)
            if self.monitor.stopped:
                stop = self.monitor.result.stop
                assert stop is not None
                self.masks, state = self.trained[stop]
                self.model.load_state_dict(state)
                return t + 1 - start
        return max(0, self.iterations + 1 - start)

    def begin(self) -> tuple[int, MaskSet]:
        return 0, self.masks

    def rewind(self, t: int, masks: MaskSet) -> None:
        if self.rewinds or t == 0:
            self.model.load_state_dict(self.theta0)
        masks.apply_(self.model)

    def train(self, t: int, masks: MaskSet) -> None:
        self.user_train(self.model, masks)
        masks.apply_(self.model)  # in case the loop did not attach the masks

    def measure(self, rec: Records, t: int, stage: str, masks: MaskSet, trained: None) -> None:
        """Accuracy (if ``evaluate``), remaining fraction overall and per layer, PQI and Gini at the global
        and layer scopes of the masked model (docs/methods.md §3 step 5)."""
        if self.evaluate is not None:
            was_training = self.model.training
            rec.add(t, stage, "accuracy", self.evaluate(self.model))
            self.model.train(was_training)
        rec.extend(t, stage, measure_model(self.model, masks, scopes=("global", "layer"), pq_pairs=(self.pq,),
                                           measures=("pqi", "gini")))
        if self.monitor is not None and stage == "retrained":  # the trained model, before this iteration's pruning
            self.trained[t] = (masks.clone(), copy.deepcopy(self.model.state_dict()))
            for old in [k for k in self.trained if k < t - self.monitor.rule.back]:
                del self.trained[old]

    def save(self, t: int, rec: Records, masks: MaskSet, next_masks: MaskSet) -> None:
        self.rows += rec.rows
        self.masks = next_masks
        if self.monitor is not None:
            (value,) = [r["value"] for r in rec.rows if r["metric"] == "pqi" and r["stage"] == "retrained"
                        and r["scope"] == "global"]
            self.monitor.update(value)

    def rule_init(self, t: int) -> dict[str, Tensor] | None:
        return self.theta0 if self.rewinds else None

    def data_batches(self, t: int, count: int) -> tuple[list[tuple[Tensor, Tensor]], Callable]:
        return list(itertools.islice(iter(self.data or ()), count)), self.loss_fn
