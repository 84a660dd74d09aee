"""Shade the three PQI phases of an iterative-pruning trajectory (docs/figures.md item 1; docs/methods.md §3).

The phases are found by the one rule claims 1.1 and 3.3 test, :func:`sparsity_lab.claims.pqi_phases.find_phases`
(decrease to ≤ 0.8·PQI(0), rise to ≥ 1.5·trough, drop by half the rise, accuracy 10 pt below dense): this
module only draws what that rule found, and the figures' phase tables (:func:`phases_row`) report it, so
the table, the shading and the verdict cannot disagree.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.transforms import blended_transform_factory

from sparsity_lab.claims._curves import NoData
from sparsity_lab.claims.pqi_phases import Phases, find_phases

__all__ = ["PHASE_COLOURS", "PHASE_COLUMNS", "Phases", "annotate_phases", "find_phases", "phases_row"]

PHASE_COLOURS = {"decrease": "#4c72b0", "increase": "#dd8452", "drop": "#c44e52"}
PHASE_NUMBERS = {"decrease": 1, "increase": 2, "drop": 3}
#: Columns of :func:`phases_row` (after the figure's own key columns).
PHASE_COLUMNS = ("trough_iteration", "peak_iteration", "drop_iteration", "three_phases", "reached", "finding")


def phases_row(pqi: pd.Series, accuracy: pd.Series) -> dict[str, Any]:
    """The phase table's row of one mean PQI curve and mean accuracy curve (pt), both by iteration:
    the breakpoints t_min, t_max, t_3 (NaN where not found), whether all three phases with the collapse
    were found, how far the rule got and its one-line finding."""
    try:
        found = find_phases(pqi, accuracy)
    except NoData as err:
        return {"trough_iteration": math.nan, "peak_iteration": math.nan, "drop_iteration": math.nan,
                "three_phases": False, "reached": "untestable", "finding": str(err)}
    return {"trough_iteration": _nan(found.t_min), "peak_iteration": _nan(found.t_max),
            "drop_iteration": _nan(found.t_3), "three_phases": found.complete, "reached": found.reached,
            "finding": found.text}


def _nan(value: int | None) -> float:
    return math.nan if value is None else float(value)


def annotate_phases(ax: Axes, pqi: pd.Series, accuracy: pd.Series, *, alpha: float = 0.08) -> Phases | None:
    """Shade on ``ax`` the phases :func:`find_phases` finds on the mean curves (vertical bands + labels at
    the top) and return them; None (nothing drawn) when the curve is too short or has no decrease.

    Segments: [0, t_min] decrease, [t_min, t_max] increase, [t_max, T] drop; a segment is drawn only when
    the breakpoint that ends it was found (an increase without a later drop runs to T)."""
    try:
        found = find_phases(pqi, accuracy)
    except NoData:
        return None
    if found.t_min is None:
        return None
    lo, hi = float(min(pqi.index)), float(max(pqi.index))
    segments: list[tuple[str, float, float]] = [("decrease", lo, found.t_min)]
    if found.t_max is not None:
        segments.append(("increase", found.t_min, found.t_max))
        if found.t_3 is not None:
            segments.append(("drop", found.t_max, hi))
    trans = blended_transform_factory(ax.transData, ax.transAxes)
    for name, start, end in segments:
        ax.axvspan(start, end, color=PHASE_COLOURS[name], alpha=alpha, linewidth=0, zorder=0)
        ax.text((start + end) / 2, 0.98, f"{PHASE_NUMBERS[name]}: {name}", transform=trans, ha="center", va="top",
                fontsize="x-small", color=PHASE_COLOURS[name])
    for bp in (found.t_min, found.t_max):
        if bp is not None:
            ax.axvline(bp, color="0.4", linestyle=":", linewidth=1, zorder=0)
    return found
