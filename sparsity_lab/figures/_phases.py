"""Detect and shade the three PQI phases of an iterative-pruning trajectory.

docs/methods.md §3 ("The PQI hypothesis"): along iterative pruning PQI first **decreases**
(regularisation), then **increases** (compression), then **drops** when the model collapses.
docs/figures.md item 1 asks to annotate the phases where they are detected.

Rule (applied to the mean trajectory, NaN points dropped, x sorted):

* the largest rise anywhere along the curve (:func:`largest_rise`): indices a ≤ b maximising
  y[b] − y[a]; a is the trough, b the peak. (Not the global maximum: at small budgets PQI starts at
  its highest value, and the compression phase climbs back only part of the way.)
* *decrease* holds when max(y[:a+1]) − y[a] ≥ min_change (something before the trough is higher);
* *increase* holds when y[b] − y[a] ≥ min_change;
* *drop* holds when y[b] − min(y[b:]) ≥ min_change.

The trough is reported when decrease and increase hold, the peak when increase and drop hold.
``min_change`` is in the units of y (PQI units by default: 0.005). Nothing is ever forced: a
monotone curve, or wiggles smaller than ``min_change``, yield no breakpoints.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from matplotlib.axes import Axes
from matplotlib.transforms import blended_transform_factory

PHASE_COLOURS = {"decrease": "#4c72b0", "increase": "#dd8452", "drop": "#c44e52"}
PHASE_NUMBERS = {"decrease": 1, "increase": 2, "drop": 3}


@dataclass(frozen=True)
class Phases:
    """Detected breakpoints (x values); ``None`` where a breakpoint was not detected."""

    trough: float | None
    peak: float | None

    @property
    def complete(self) -> bool:
        """True when all three phases (decrease → increase → drop) were detected."""
        return self.trough is not None and self.peak is not None


def largest_rise(y: np.ndarray) -> tuple[int, int, float, float, float]:
    """The largest increase of ``y`` along the curve: indices (i, j), i ≤ j, maximising y[j] − y[i];
    returns (i, j, fall before i = max(y[:i+1]) − y[i], rise = y[j] − y[i], drop after j = y[j] − min(y[j:])).
    A non-increasing curve gives i = j and rise 0."""
    y = np.asarray(y, dtype=float)
    if y.ndim != 1 or len(y) == 0:
        raise ValueError(f"need a non-empty 1-D curve, got shape {y.shape}")
    gains = y - np.minimum.accumulate(y)
    j = int(np.argmax(gains))
    i = int(np.argmin(y[: j + 1]))
    return i, j, float(y[: i + 1].max() - y[i]), float(gains[j]), float(y[j] - y[j:].min())


def detect_phases(x: np.ndarray, y: np.ndarray, min_change: float = 0.005) -> Phases | None:
    """Apply the module's rule; return ``None`` when neither breakpoint is detected."""
    if min_change <= 0:
        raise ValueError(f"min_change must be > 0, got {min_change}")
    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if xs.shape != ys.shape or xs.ndim != 1:
        raise ValueError(f"x and y must be 1-D of equal length, got shapes {xs.shape} and {ys.shape}")
    keep = ~(np.isnan(xs) | np.isnan(ys))
    order = np.argsort(xs[keep], kind="stable")
    xs, ys = xs[keep][order], ys[keep][order]
    if len(ys) < 3:
        return None
    a, b, fall, rise, drop_after = largest_rise(ys)
    decrease, increase, drop = fall >= min_change, rise >= min_change, drop_after >= min_change
    trough = float(xs[a]) if decrease and increase else None
    peak = float(xs[b]) if increase and drop else None
    if trough is None and peak is None:
        return None
    return Phases(trough=trough, peak=peak)


def annotate_phases(
    ax: Axes, x: np.ndarray, y: np.ndarray, *, min_change: float = 0.005, alpha: float = 0.08
) -> Phases | None:
    """Shade the detected phases on ``ax`` (vertical bands + labels at the top); return them.

    Segments: [x_min, trough] decrease, [trough or x_min, peak or x_max] increase,
    [peak, x_max] drop; only segments bounded by a detected breakpoint are drawn.
    """
    phases = detect_phases(x, y, min_change=min_change)
    if phases is None:
        return None
    xs = np.asarray(x, dtype=float)
    lo, hi = float(np.nanmin(xs)), float(np.nanmax(xs))
    segments: list[tuple[str, float, float]] = []
    if phases.trough is not None:
        segments.append(("decrease", lo, phases.trough))
    segments.append(("increase", phases.trough if phases.trough is not None else lo,
                     phases.peak if phases.peak is not None else hi))
    if phases.peak is not None:
        segments.append(("drop", phases.peak, hi))
    trans = blended_transform_factory(ax.transData, ax.transAxes)
    for name, start, end in segments:
        ax.axvspan(start, end, color=PHASE_COLOURS[name], alpha=alpha, linewidth=0, zorder=0)
        ax.text((start + end) / 2, 0.98, f"{PHASE_NUMBERS[name]}: {name}", transform=trans, ha="center", va="top",
                fontsize="x-small", color=PHASE_COLOURS[name])
    for bp in (phases.trough, phases.peak):
        if bp is not None:
            ax.axvline(bp, color="0.4", linestyle=":", linewidth=1, zorder=0)
    return phases
