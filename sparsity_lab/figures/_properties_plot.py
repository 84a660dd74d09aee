"""Drawing of Figure 7 (see :mod:`sparsity_lab.figures.pqi_properties` for the numbers)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

from sparsity_lab.figures import style

_ARROWS = {"decrease": "↓", "equal": "=", "increase": "↑"}
_PASS_FAIL_CMAP = ListedColormap(["#f4c7c3", "#c8e6c9"])  # light red = failed, light green = passed


def _draw_table(ax, checks: pd.DataFrame) -> None:
    measures = list(pd.unique(checks["measure"]))
    props = list(pd.unique(checks["property"]))
    table = checks.set_index(["measure", "property"])
    grid = np.array([[float(table.loc[(m, p), "passed"]) for p in props] for m in measures])
    ax.imshow(grid, cmap=_PASS_FAIL_CMAP, vmin=0, vmax=1, aspect="auto")
    for r, m in enumerate(measures):
        for c, p in enumerate(props):
            row = table.loc[(m, p)]
            verdict = "pass" if row["passed"] else "FAIL"
            lines = [verdict, f"Δ={row['delta']:+.2g}"]
            if not row["passed"]:
                lines.append(f"({row['trials_passed']} trials)")
            ax.text(c, r, "\n".join(lines), ha="center", va="center", fontsize="small",
                    fontweight="bold" if not row["passed"] else "normal")
    expected = checks.drop_duplicates("property").set_index("property")["expected"]
    ax.set_xticks(range(len(props)), [f"{p}\n{_ARROWS[expected[p]]} {expected[p]}" for p in props],
                  fontsize="medium")
    ax.set_yticks(range(len(measures)), measures, fontsize="medium")
    ax.tick_params(length=0)
    ax.xaxis.tick_top()
    ax.set_xticks(np.arange(len(props) + 1) - 0.5, minor=True)
    ax.set_yticks(np.arange(len(measures) + 1) - 0.5, minor=True)
    ax.grid(False)
    ax.grid(which="minor", color="white", linewidth=2)
    ax.set_title("Hurley–Rickard properties: measured change Δ = after − before", pad=38)


def _abs_moment(r: float) -> float:
    """E|x|^r for x ~ N(0, 1)."""
    return 2 ** (r / 2) * math.gamma((r + 1) / 2) / math.sqrt(math.pi)


def theory_curve(measure: str, f: np.ndarray, dim: int) -> np.ndarray | None:
    """Large-d expectation of ``measure`` ("PQI (p, q)", "Gini", "Hoyer") at zero fraction f;
    None for a measure without a closed form here."""
    f = np.asarray(f, dtype=float)
    if measure.startswith("PQI (") and measure.endswith(")"):
        p, q = (float(t) for t in measure[5:-1].split(","))
        ratio = _abs_moment(p) ** (1 / p) / _abs_moment(q) ** (1 / q)
        return 1 - (1 - f) ** (1 / p - 1 / q) * ratio
    if measure == "Gini":
        return f + (1 - f) * (math.sqrt(2) - 1)
    if measure == "Hoyer":
        return (math.sqrt(dim) - np.sqrt(dim * (1 - f)) * math.sqrt(2 / math.pi)) / (math.sqrt(dim) - 1)
    return None


def plot_properties(
    checks: pd.DataFrame, sweep: pd.DataFrame, *, caption: str | None = None, dim: int | None = None
) -> Figure:
    """Left: pass/fail grid (measures × properties, Δ in each cell, expected direction under each
    property). Right: each measure of random N(0,1) vectors vs the fraction of zeroed entries,
    mean ± std over seeds, with the large-d expectation dashed (when ``dim`` is given)."""
    fig = Figure(figsize=(14, 5.2))
    left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.25, 1], "wspace": 0.25})
    _draw_table(left, checks)
    import seaborn as sns

    order = list(pd.unique(sweep["measure"]))
    # colour-blind palette minus its vermillion, which is hard to tell from its orange
    colours = [c for i, c in enumerate(sns.color_palette("colorblind", n_colors=10)) if i != 3]
    palette = dict(zip(order, colours))
    style.line_with_band(right, sweep, "fraction_zero", "value", "measure", hue_order=order,
                         palette=palette, marker=None, linewidth=1.8)
    if dim is not None:
        f = np.linspace(0, float(sweep["fraction_zero"].max()), 200)
        for m in order:
            curve = theory_curve(str(m), f, dim)
            if curve is not None:
                right.plot(f, curve, color="0.1", linestyle=(0, (3, 3)), linewidth=0.9, zorder=5)
        right.plot([], [], color="0.1", linestyle=(0, (3, 3)), linewidth=0.9, label="large-d expectation")
    right.set_xlabel("fraction of entries set to zero")
    right.set_ylabel("sparsity measure (larger = sparser)")
    right.set_xlim(0, 1)
    right.set_ylim(0, 1.02)
    right.legend(loc="upper left")
    if {"Hoyer", "PQI (1, 2)"} <= set(order):
        right.text(0.98, 0.03, "Hoyer = I$_{1,2}$·√d/(√d − 1) exactly:\nthe two curves almost coincide",
                   transform=right.transAxes, ha="right", va="bottom", fontsize="small", color="0.3")
    right.set_title("Random N(0,1) vectors, entries zeroed (mean ± std over seeds)")
    if caption:
        style.add_caption(fig, caption)
    return fig
