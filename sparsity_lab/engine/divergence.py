"""Divergence detection for the trainers (README "Reliability").

Diverged training is a failed run, never a result. The step runner keeps, per unit (the model, or
each member of a batched ensemble), the count of leading steps of the epoch after which the running
loss sum was still finite (``finite_steps``: two tiny device kernels per step, no host sync; the
sum of non-negative cross-entropies stays non-finite once one step's loss is nan or inf, so the
count is the 0-based index of the first diverged step). Once per epoch, together with the epoch's
loss read-back, it also checks that every weight is finite, and that the epoch's mean training loss
stayed below ``EXPLODED_FACTOR`` · ln C (C classes; ln C is the loss of a uniform guess): a mean
cross-entropy of thousands of nats only comes from weights that have blown up (seen: lr 1e6 with Adam
gives a finite loss of 1e5..1e17 at chance accuracy for epochs before it turns nan). ``TrainingDiverged``
then names the epoch (0-based, as in the records), the step within it (0-based, exact) and the loss.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: The epoch's mean training loss above EXPLODED_FACTOR · ln(classes) counts as divergence.
EXPLODED_FACTOR = 1000.0


@dataclass(frozen=True)
class Divergence:
    """Where one unit diverged: epoch, step within the epoch (None: the loss stayed finite but a weight
    did not), the epoch's summed loss (nan or inf) and the member index (None for a single model)."""

    epoch: int
    step: int | None
    loss: float
    member: int | None = None
    limit: float | None = None  # set when the mean loss stayed finite but exceeded this bound

    def __str__(self) -> str:
        who = "" if self.member is None else f"member {self.member}: "
        if self.limit is not None:
            return (f"{who}training diverged at epoch {self.epoch}: mean loss = {self.loss:.3g} over the epoch, "
                    f"above {self.limit:.0f} = {EXPLODED_FACTOR:g} x ln(classes) (the weights blew up)")
        if self.step is None:
            return f"{who}training diverged at epoch {self.epoch}: non-finite weights after the epoch"
        return f"{who}training diverged at epoch {self.epoch}, step {self.step}: loss = {_fmt(self.loss)}"


def _fmt(value: float) -> str:
    return "nan" if math.isnan(value) else ("inf" if math.isinf(value) and value > 0 else repr(value))


class TrainingDiverged(RuntimeError):
    """Raised by ``MaskedTrainer.train_epoch`` / ``BatchedTrainer.train_epoch`` when the loss or a weight
    became non-finite; ``divergences`` holds one ``Divergence`` per diverged unit. The runners store the
    run as failed with this message (``ResultsStore.mark_failed``)."""

    def __init__(self, divergences: list[Divergence], context: str = "") -> None:
        self.divergences = list(divergences)
        self.context = context
        text = "; ".join(str(d) for d in self.divergences)
        super().__init__(f"{text}{f' ({context})' if context else ''}")

    @property
    def members(self) -> list[int]:
        """Indices of the diverged members of a batched ensemble."""
        return [d.member for d in self.divergences if d.member is not None]

    def within(self, context: str) -> TrainingDiverged:
        """The same divergence with where it happened added, e.g. "pruning iteration 2"."""
        return TrainingDiverged(self.divergences, context=context)


def divergences(epoch: int, finite_steps: list[int], losses: list[float], weights_finite: list[bool],
                steps: int, batched: bool, num_examples: int = 1, limit: float | None = None) -> list[Divergence]:
    """The diverged units of one epoch from the runner's per-unit read-backs (``losses``: summed over the
    epoch's ``num_examples``; ``limit``: bound on the mean loss, None = none)."""
    out = []
    for unit, (finite, loss, ok) in enumerate(zip(finite_steps, losses, weights_finite)):
        member = unit if batched else None
        if finite < steps or not math.isfinite(loss):
            out.append(Divergence(epoch, int(min(finite, steps - 1)), loss, member))
        elif not ok:
            out.append(Divergence(epoch, None, loss, member))
        elif limit is not None and loss / max(1, num_examples) > limit:
            out.append(Divergence(epoch, None, loss / max(1, num_examples), member, limit=limit))
    return out
