"""Seed spread next to a gap between methods (docs/figures.md: comparisons on the `gpu` profile use >= 3
seeds and state the seed spread next to the gap; a gap smaller than the spread is "within noise").

The spread of one method at one iteration is the sample standard deviation (ddof = 1) of its per-seed
values; the spread of a comparison is the larger of the two methods' spreads, so "within noise" means
the mean gap is smaller than one standard deviation of either method's seeds. With one seed there is no
spread (NaN) and nothing is called within noise.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from sparsity_lab.claims import _curves as c

__all__ = ["accuracy_spread_at_remaining", "comparison_spread", "gap_note", "noise_text", "per_seed"]


def per_seed(frame: pd.DataFrame, metric: str, t: int, *, scale: float = 1.0) -> pd.Series:
    """``metric`` (retrained, whole model) of every run of ``frame`` at iteration ``t``, one value per run,
    times ``scale`` (``c.PT`` for accuracy in points)."""
    rows = frame[(frame["metric"] == metric) & (frame["stage"] == "retrained") & (frame["scope"] == "model")
                 & (frame["iteration"] == t)].drop_duplicates("run_id")
    if rows.empty:
        raise c.NoData(f"no {metric!r} records at t = {t}")
    return rows.set_index("run_id")["value"].astype(float) * scale


def comparison_spread(a: pd.Series, b: pd.Series) -> float:
    """The larger sample std of the two methods' per-seed values (NaN with fewer than 2 seeds in either)."""
    stds = [float(s.std(ddof=1)) if len(s) > 1 else math.nan for s in (a, b)]
    return math.nan if any(math.isnan(s) for s in stds) else max(stds)


def noise_text(gap: float, spread: float, unit: str, n_seeds: int) -> str:
    """``"seed spread ±0.31 pt over 3 seeds"`` plus ``", within noise"`` when |gap| < spread."""
    if math.isnan(spread):
        return f"no seed spread ({n_seeds} seed{'s' if n_seeds != 1 else ''})"
    within = ", within noise" if abs(gap) < spread else ""
    return f"seed spread ±{spread:.3g} {unit} over {n_seeds} seeds{within}"


def _per_run(frame: pd.DataFrame) -> list[pd.DataFrame]:
    return [part for _, part in frame.groupby("run_id", sort=True)]


def accuracy_spread_at_remaining(frame: pd.DataFrame, at: float) -> pd.Series:
    """Each run's accuracy (pt), interpolated in log remaining at the remaining fraction ``at`` (as
    :func:`_curves.interp_log` interpolates the mean curves): one value per run, for the spread."""
    values = {}
    for run in _per_run(frame):
        rem, acc = c.remaining(run), c.accuracy(run)
        values[run["run_id"].iloc[0]] = float(c.interp_log(rem, acc, np.array([at]))[0])
    return pd.Series(values, dtype=float)


def gap_note(a: pd.DataFrame, b: pd.DataFrame, gap: float, *, at_remaining: float | None = None,
             at_iteration: int | None = None) -> tuple[str, float]:
    """(``"seed spread ±… pt over n seeds[, within noise]"``, spread) of an accuracy gap between the runs ``a``
    and ``b`` at one remaining fraction (interpolated per run) or at one iteration."""
    if at_remaining is not None:
        va, vb = accuracy_spread_at_remaining(a, at_remaining), accuracy_spread_at_remaining(b, at_remaining)
    else:
        va, vb = per_seed(a, "accuracy", int(at_iteration or 0), scale=c.PT), per_seed(b, "accuracy", int(at_iteration or 0), scale=c.PT)
    spread = comparison_spread(va, vb)
    return noise_text(gap, spread, "pt", min(len(va), len(vb))), spread
