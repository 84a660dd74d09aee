"""Detect and shade the three PQI phases of an iterative-pruning trajectory.

METHODS.md §3 ("The PQI hypothesis"): along iterative pruning PQI first **decreases**
(regularisation), then **increases** (compression), then **drops** when the model collapses.
FIGURES.md item 1 asks to annotate the phases where they are detected.

Rule (applied to the mean trajectory, NaN points dropped, x sorted):

* peak   b = argmax y (first occurrence);
* trough a = argmin y[:b+1] (first occurrence), the lowest point before the peak;
* *decrease* holds when max(y[:a+1]) − y[a] ≥ min_change (something before the trough is higher);
* *increase* holds when y[b] − y[a] ≥ min_change;
* *drop* holds when y[b] − min(y[b:]) ≥ min_change.

The trough is reported when decrease and increase hold, the peak when increase and drop hold.
``min_change`` is in the units of y (PQI units by default: 0.005). Nothing is ever forced: a
monotone curve or a curve whose maximum is its first point yields no breakpoints.
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
    b = int(np.argmax(ys))
    a = int(np.argmin(ys[: b + 1]))
    decrease = ys[: a + 1].max() - ys[a] >= min_change
    increase = ys[b] - ys[a] >= min_change
    drop = ys[b] - ys[b:].min() >= min_change
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
