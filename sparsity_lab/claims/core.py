"""Verdicts on a paper's claims, computed from the records a figure draws (docs/figures.md, "Claims").

A claim function takes the figure's own inputs and returns one :class:`Verdict` per claim: whether
it **holds**, **fails**, or is **untestable** (a method not run, a budget too small), always with a
one-line reason and the numbers behind it. Thresholds are the spec's, written as named constants in
the figure's claims module; they are never tuned to make a claim hold.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd

Status = Literal["holds", "fails", "untestable"]
STATUSES: tuple[Status, ...] = ("holds", "fails", "untestable")

__all__ = ["STATUSES", "ClaimSet", "Status", "Verdict", "fails", "holds", "summary", "untestable", "verdict_table"]


@dataclass(frozen=True)
class Verdict:
    """One claim's verdict: ``claim`` is its number in docs/figures.md (e.g. ``"1.3"``), ``statement``
    what it asserts (one line), ``reason`` why it holds / fails / cannot be tested (one line, with the
    decisive numbers), ``numbers`` every number the verdict used (name -> value)."""

    claim: str
    statement: str
    status: Status
    reason: str
    numbers: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"verdict status {self.status!r}: allowed {STATUSES}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``index.json``): numbers as plain floats/strings."""
        return {"claim": self.claim, "statement": self.statement, "status": self.status,
                "reason": self.reason, "numbers": {k: _plain(v) for k, v in self.numbers.items()}}


@dataclass(frozen=True)
class ClaimSet:
    """The claims of one figure, registered with the figure (``register_figure(claims=...)``, docs/figures.md
    "Claims every figure checks"): ``statements`` maps each claim id (``"1.3"``) to its one-line statement,
    threshold included; ``check(inputs)`` returns one verdict per statement, in that order.

    Calling the set runs the check and refuses a verdict list that does not match the statements one to
    one (an unregistered claim, a missing one, or a statement that differs from the registered one): what
    a notebook says it checks is exactly what is checked."""

    statements: Mapping[str, str]
    check: Callable[..., list[Verdict]]

    def __call__(self, inputs: Any, **kw: Any) -> list[Verdict]:
        verdicts = list(self.check(inputs, **kw))
        got = [(v.claim, v.statement) for v in verdicts]
        if got != list(self.statements.items()):
            raise ValueError(f"claim check {getattr(self.check, '__module__', '?')} returned {got}, "
                             f"registered {list(self.statements.items())}")
        return verdicts

    def untestable(self, reason: str) -> list[Verdict]:
        """Every claim of the set untestable for one reason (e.g. no records at all)."""
        return [Verdict(c, s, "untestable", reason, {}) for c, s in self.statements.items()]


def holds(claim: str, statement: str, reason: str, **numbers: Any) -> Verdict:
    return Verdict(claim, statement, "holds", reason, numbers)


def fails(claim: str, statement: str, reason: str, **numbers: Any) -> Verdict:
    return Verdict(claim, statement, "fails", reason, numbers)


def untestable(claim: str, statement: str, reason: str, **numbers: Any) -> Verdict:
    return Verdict(claim, statement, "untestable", reason, numbers)


def verdict_table(verdicts: Iterable[Verdict]) -> pd.DataFrame:
    """The short table shown under a figure: claim, status, statement, reason."""
    rows = [{"claim": v.claim, "verdict": v.status, "statement": v.statement, "reason": v.reason}
            for v in verdicts]
    return pd.DataFrame(rows, columns=["claim", "verdict", "statement", "reason"])


def summary(verdicts: Iterable[Verdict]) -> str:
    """``"claims 3/4 hold"`` (plus ``", 1 untestable"`` / ``", 1 fails"`` where there are any)."""
    vs = list(verdicts)
    if not vs:
        return "no claims"
    count = {s: sum(v.status == s for v in vs) for s in STATUSES}
    text = f"claims {count['holds']}/{len(vs)} hold"
    extra = [f"{count[s]} {s if s != 'fails' else 'fail'}" for s in ("fails", "untestable") if count[s]]
    return text + (f" ({', '.join(extra)})" if extra else "")


def _plain(value: Any) -> Any:
    if isinstance(value, (str, bool, int)) or value is None:
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)
