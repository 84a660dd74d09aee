"""Mean ± std bands over seeds from a tidy DataFrame (docs/figures.md: "Mean ± std over seeds").

The statistic is computed per (hue, x) cell over the seeds: mean and the *sample* standard
deviation (ddof = 1, pandas' default); a cell with one seed gets std NaN and is drawn without a
band. When the x value itself differs between seeds (docs/figures.md item 2: accuracy against each
run's *own* realised remaining fraction), pass ``by="iteration"``: cells are then formed by
(hue, by) and x is averaged over the seeds like y.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

#: Line style per method where it is not solid: controls are dashed.
METHOD_LINESTYLES = {"Random ticket (LT masks)": "--", "mask + random init": "--"}


def band_stats(
    df: pd.DataFrame,
    x: str,
    y: str,
    hue: str | None = None,
    *,
    by: str | None = None,
    seed_col: str = "seed",
) -> pd.DataFrame:
    """Per-(hue, x) mean, std (ddof = 1) and count of ``y`` over seeds.

    Returns columns ``[hue?, x, "mean", "std", "n"]`` (plus ``by`` when given), sorted by hue
    then x. Raises ``ValueError`` when a seed has more than one row in a cell, which means the
    frame was not filtered to one observation per seed (averaging them silently would shrink the
    band).
    """
    for col in (x, y, hue, by):
        if col is not None and col not in df.columns:
            raise ValueError(f"column {col!r} not in DataFrame; available: {sorted(map(str, df.columns))}")
    keys = [k for k in (hue, by if by is not None else x) if k is not None]
    if seed_col in df.columns:
        dup = df.duplicated(subset=[*keys, seed_col], keep=False)
        if dup.any():
            first = df.loc[dup, [*keys, seed_col]].iloc[0].to_dict()
            raise ValueError(
                f"line_with_band: more than one row per seed in cell {first}; "
                "filter the frame to one observation per (hue, x, seed)"
            )
    grouped = df.groupby(keys, sort=True, dropna=False)
    stats = grouped[y].agg(mean="mean", std="std", n="count").reset_index()
    if by is not None:
        stats[x] = grouped[x].mean().to_numpy()
        stats = stats.sort_values([k for k in (hue, by) if k is not None], kind="stable")
    return stats.reset_index(drop=True)


def line_with_band(
    ax: Axes,
    df: pd.DataFrame,
    x: str,
    y: str = "value",
    hue: str | None = None,
    *,
    by: str | None = None,
    seed_col: str = "seed",
    hue_order: Sequence[Any] | None = None,
    palette: dict[Any, Any] | Sequence[Any] | None = None,
    logy: bool = False,
    alpha: float = 0.2,
    marker: str | None = "o",
    label_fmt: str = "{}",
    **line_kw: Any,
) -> pd.DataFrame:
    """Draw one line (mean over seeds) and a shaded mean ± std band per hue level.

    ``palette`` maps hue levels to colours (a dict) or gives colours in ``hue_order``; default:
    seaborn's current palette. With ``logy`` the y axis is logarithmic and the band's lower edge
    is clipped to half the smallest positive mean, so a wide band never reaches zero.
    Returns the statistics drawn (see :func:`band_stats`) so callers can show the numbers.
    """
    import seaborn as sns

    stats = band_stats(df, x, y, hue, by=by, seed_col=seed_col)
    levels = list(hue_order) if hue_order is not None else (
        list(pd.unique(stats[hue])) if hue is not None else [None]
    )
    if isinstance(palette, dict):
        colours = palette
    else:
        seq = list(palette) if palette is not None else sns.color_palette(n_colors=max(len(levels), 1))
        colours = {lvl: seq[i % len(seq)] for i, lvl in enumerate(levels)}
    positive = stats["mean"][stats["mean"] > 0]
    floor = 0.5 * float(positive.min()) if logy and len(positive) else None
    for rank, lvl in enumerate(levels):
        part = stats if hue is None else stats[stats[hue] == lvl]
        if part.empty:
            continue
        mean = part["mean"].to_numpy(float)
        std = np.nan_to_num(part["std"].to_numpy(float))
        xs = part[x].to_numpy(float)
        lo, hi = mean - std, mean + std
        if floor is not None:
            lo = np.maximum(lo, floor)
        colour = colours.get(lvl)
        label = label_fmt.format(lvl) if lvl is not None else None
        # the first level (the method the figure is about) on top, so a curve that coincides with a
        # later one stays visible; controls dashed
        kw = {"zorder": 3 - rank / max(len(levels), 1), "linestyle": METHOD_LINESTYLES.get(lvl, "-"), **line_kw}
        ax.plot(xs, mean, color=colour, marker=marker, markersize=3, label=label, **kw)
        ax.fill_between(xs, lo, hi, color=colour, alpha=alpha, linewidth=0, zorder=1)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    return stats
