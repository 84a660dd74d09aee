"""SAP, Lottery Ticket and One Shot around *your* model and *your* training loop (METHODS.md §3).

The experiment runners (``experiments/``) own data, model and training so that runs are reproducible
and stored; a researcher applying a method to their own network usually has all three already. Here
the library owns only the pruning protocol:

    for t = 0 … T:  rewind every parameter to θ₀, multiply by the mask m_t   (METHODS.md §3 step 2)
                    train(model, masks)          ← your loop; ``masks.attach(optimizer, model)`` once
                    record evaluate(model), remaining fraction, PQI I_{p,q} and Gini   (step 3-4)
                    if t < T: m_{t+1} = rule(trained weights, m_t); record the pruned model (step 4)

``rewind=False`` keeps training the pruned weights instead (no rewinding, "fine-tuning" style). The
pruning rules are those of :data:`sparsity_lab.pruning.PRUNING_RULES` (SAP's p, q, η_r, γ, β; LT's
fraction; One Shot ranks the model trained at t = 0).

    masks, records = iterative_pruning(model, train=my_train, evaluate=my_accuracy, rule="sap",
                                       iterations=10, p=0.5, q=1.0)
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Any

import pandas as pd
from torch import nn

from sparsity_lab.masks import MaskSet
from sparsity_lab.measures import measure_model
from sparsity_lab.pruning import PRUNING_RULES, prune

__all__ = ["iterative_pruning"]

#: Rules a plain training loop can drive (the random ticket needs a finished LT run: use the runners).
RULES = ("sap", "lt", "oneshot")


def iterative_pruning(model: nn.Module, train: Callable[[nn.Module, MaskSet], Any],
                      evaluate: Callable[[nn.Module], float] | None = None, *, rule: str = "sap",
                      iterations: int = 10, scope: str = "global", masks: MaskSet | None = None,
                      rewind: bool = True, pq: tuple[float, float] = (0.5, 1.0),
                      **hyper: Any) -> tuple[MaskSet, pd.DataFrame]:
    """Run T = ``iterations`` prunings of ``model`` with ``rule`` around ``train`` (see the module docstring).

    ``train(model, masks)`` trains in place; it should call ``masks.attach(optimizer, model)`` after making
    its optimizer so pruned weights stay zero. ``evaluate(model) -> float`` (e.g. test accuracy) is recorded
    for the retrained and the pruned model. ``masks`` defaults to ``MaskSet.for_model(model)``; ``pq`` is
    the (p, q) of the recorded PQI; ``hyper`` goes to the rule (``fraction`` for LT / One Shot; ``p``, ``q``,
    ``eta_r``, ``gamma``, ``beta`` for SAP). Returns the final masks and tidy records with the columns of
    the store (iteration, stage, metric, scope, group, p, q, value). The model ends trained under them.
    """
    if rule not in RULES:
        raise ValueError(f"rule {rule!r} is not allowed here; allowed: {list(RULES)} "
                         f"(all registered rules: {sorted(PRUNING_RULES)})")
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 0:
        raise ValueError(f"iterations={iterations!r}: allowed an integer T >= 0")
    if rule == "oneshot" and ("reference" in hyper or "iteration" in hyper):
        raise ValueError("rule 'oneshot' gets its reference (the model trained at t = 0) and iteration here")
    masks = masks.clone() if masks is not None else MaskSet.for_model(model)
    theta0 = copy.deepcopy(model.state_dict())
    rows: list[dict[str, Any]] = []
    reference: dict[str, Any] | None = None
    for t in range(iterations + 1):
        began = time.perf_counter()
        if rewind or t == 0:
            model.load_state_dict(theta0)
        masks.apply_(model)
        train(model, masks)
        masks.apply_(model)  # in case the loop did not attach the masks
        _record(rows, t, "retrained", model, masks, evaluate, pq)
        if t < iterations:  # T prunings after T + 1 trainings
            weights = {n: p.detach() for n, p in masks.parameters(model).items()}
            if rule == "oneshot":
                reference = reference if reference is not None else {n: w.clone() for n, w in weights.items()}
                hyper_t = {**hyper, "reference": reference, "iteration": t + 1}
            else:
                hyper_t = hyper
            outcome = prune(rule, weights, masks, scope=scope, **hyper_t)
            rows += [{"iteration": t, "stage": "pruned", "p": float("nan"), "q": float("nan"), **r}
                     for r in outcome.records]
            masks = outcome.masks
            masks.apply_(model)
            _record(rows, t, "pruned", model, masks, evaluate, pq)
        rows.append(_row(t, "retrained", "wall_time", time.perf_counter() - began))
    return masks, pd.DataFrame(rows, columns=["iteration", "stage", "metric", "scope", "group", "p", "q", "value"])


def _row(t: int, stage: str, metric: str, value: float, scope: str = "model", group: str = "all") -> dict[str, Any]:
    return {"iteration": t, "stage": stage, "metric": metric, "scope": scope, "group": group,
            "p": float("nan"), "q": float("nan"), "value": float(value)}


def _record(rows: list[dict[str, Any]], t: int, stage: str, model: nn.Module, masks: MaskSet,
            evaluate: Callable[[nn.Module], float] | None, pq: tuple[float, float]) -> None:
    """Accuracy (if ``evaluate``), remaining fraction overall and per layer, PQI and Gini at the global and
    layer scopes of the masked model (METHODS.md §3 step 5)."""
    if evaluate is not None:
        was_training = model.training
        rows.append(_row(t, stage, "accuracy", evaluate(model)))
        model.train(was_training)
    rows += [{"iteration": t, "stage": stage, **r}  # measure_model's records include "remaining"
             for r in measure_model(model, masks, scopes=("global", "layer"), pq_pairs=(pq,), measures=("pqi", "gini"))]
