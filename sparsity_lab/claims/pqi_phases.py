"""The three PQI phases of one pruning trajectory: the one rule, used by claims 1.1 and 3.3 and by the
phase table and shading of figures 1, 3 and 4 (docs/figures.md claim 1.1; docs/methods.md §3).

Along iterative pruning PQI first **decreases**, then **increases** (compression), then **drops** as the
model collapses. On a mean PQI curve y and mean accuracy curve acc (pt) over iterations 0…T, the phases
are found when some 0 < t_min < t_max < t_3 ≤ T have

* y(t_min) ≤ :data:`DECREASE_FACTOR` · y(0) (decrease),
* y(t_max) ≥ :data:`RISE_FACTOR` · y(t_min) (increase),
* y(t_3) ≤ y(t_max) − :data:`DROP_SHARE` · (y(t_max) − y(t_min)) (drop),
* acc(t_3) at least ``COLLAPSE_PT`` (10) pt below acc(0) (collapse).

Among the quadruples found, the largest rise is reported, then the earliest collapse after it. Short of
that, :class:`Phases` says how far the curve got (``reached``) with the breakpoints it has.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from sparsity_lab.claims import _curves as c

#: Decrease to <= DECREASE_FACTOR * PQI(0), rise to >= RISE_FACTOR * trough, drop by >= DROP_SHARE of the rise.
DECREASE_FACTOR, RISE_FACTOR, DROP_SHARE = 0.8, 1.5, 0.5
#: ``Phases.reached``, in order: how far along decrease → increase → drop → collapse the curve got.
STAGES = ("no decrease", "no rise", "no drop", "no collapse", "three phases")

__all__ = ["DECREASE_FACTOR", "DROP_SHARE", "RISE_FACTOR", "STAGES", "Phases", "find_phases"]


@dataclass(frozen=True)
class Phases:
    """What :func:`find_phases` found on one curve: ``reached`` (one of :data:`STAGES`), the breakpoints
    t_min (trough), t_max (peak), t_3 (drop) where found (else None), the accuracy loss at t_3 (pt), a
    one-line ``text`` with the numbers, and ``numbers`` (name -> value) for a verdict."""

    reached: str
    t_min: int | None = None
    t_max: int | None = None
    t_3: int | None = None
    acc_loss: float | None = None
    text: str = ""
    numbers: dict[str, Any] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """All three phases, collapse included (what claim 1.1 asks)."""
        return self.reached == STAGES[-1]


def find_phases(y: pd.Series, acc: pd.Series, label: str = "") -> Phases:
    """The rule of the module docstring on a mean PQI curve ``y`` and accuracy curve ``acc`` (pt), both
    indexed by iteration; ``c.NoData`` when they share fewer than three iterations after t = 0."""
    ts = [int(t) for t in y.index.intersection(acc.index) if t > 0]
    if 0 not in y.index or 0 not in acc.index or len(ts) < 3:
        raise c.NoData(f"T = {max(ts, default=0)} too short for three phases")
    name = f"{label}: " if label else ""
    key = f"{label} " if label else ""
    y0, dense = float(y.loc[0]), float(acc.loc[0])
    nums: dict[str, Any] = {f"{key}PQI(0)": y0, f"{key}dense acc": dense}
    down = [t for t in ts if y[t] <= DECREASE_FACTOR * y0]
    if not down:
        t = min(ts, key=lambda k: y[k])
        return Phases("no decrease", text=f"{name}no decrease, min PQI {y[t]:.3f} at t={t} > {DECREASE_FACTOR} x "
                      f"{y0:.3f}", numbers={**nums, f"{key}min PQI": float(y[t])})
    rises, drops, found, best = [], [], [], None
    for a in down:
        for b in (t for t in ts if t > a and y[t] >= RISE_FACTOR * y[a]):
            rises.append((a, b))
            for d in (t for t in ts if t > b and y[t] <= y[b] - DROP_SHARE * (y[b] - y[a])):
                drops.append((a, b, d))
                loss = float(dense - acc[d])
                if loss >= c.COLLAPSE_PT:
                    found.append((a, b, d, loss))
                if best is None or loss > best[3]:
                    best = (a, b, d, loss)
    if found:  # the largest rise, then the earliest collapse after it
        a, b, d, loss = min(found, key=lambda f: (-(y[f[1]] - y[f[0]]), f[2]))
        return Phases("three phases", a, b, d, loss,
                      f"{name}PQI {y0:.3f} -> min {y[a]:.3f} at t={a} -> peak {y[b]:.3f} at t={b} -> "
                      f"{y[d]:.3f} at t={d}; acc {loss:.1f} pt below dense",
                      {**nums, f"{key}t_min": a, f"{key}t_max": b, f"{key}t_3": d, f"{key}PQI(t_min)": float(y[a]),
                       f"{key}PQI(t_max)": float(y[b]), f"{key}PQI(t_3)": float(y[d]), f"{key}acc loss": loss})
    if not rises:
        a = min(down, key=lambda k: y[k])
        after = max((t for t in ts if t > a), key=lambda k: y[k], default=None)
        peak = f"{y[after]:.3f} at t={after}" if after is not None else "none"
        return Phases("no rise", a, text=f"{name}PQI {y0:.3f} -> min {y[a]:.3f} at t={a}, no rise to {RISE_FACTOR}x "
                      f"(largest later {peak})", numbers={**nums, f"{key}PQI(t_min)": float(y[a])})
    if not drops:
        a, b = max(rises, key=lambda ab: y[ab[1]])
        return Phases("no drop", a, b, text=f"{name}PQI {y0:.3f} -> min {y[a]:.3f} at t={a} -> peak {y[b]:.3f} at "
                      f"t={b}, no later drop by half the rise (PQI at T {y[ts[-1]]:.3f})",
                      numbers={**nums, f"{key}PQI(t_min)": float(y[a]), f"{key}PQI(t_max)": float(y[b])})
    assert best is not None
    a, b, d, loss = best
    return Phases("no collapse", a, b, d, loss,
                  f"{name}PQI {y0:.3f} -> {y[a]:.3f} (t={a}) -> {y[b]:.3f} (t={b}) -> {y[d]:.3f} (t={d}) but acc only "
                  f"{loss:.1f} pt below dense (collapse needs {c.COLLAPSE_PT:g})", {**nums, f"{key}acc loss": loss})


def phases_part(y: pd.Series, acc: pd.Series, label: str) -> c.Part:
    """Claim 1.1's test on one curve: holds when the three phases are complete, fails otherwise."""
    found = find_phases(y, acc, label)
    return c.Part("holds" if found.complete else "fails", found.text, found.numbers)
