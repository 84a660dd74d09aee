"""The claims of figure 5, ``pq_heatmaps``, PQI over the (p, q) grid (docs/figures.md, "Claims every figure checks").

Input: the figure's records (``load_results``): one SAP(0.5,1) and one LT run (any seeds) recorded with
``pq_grid=True``, i.e. global PQI rows (metric ``pqi``, scope ``global``, stage ``retrained``) over
p = 0.1..1.0 and q = 1.0..2.0. 5.1 checks every run and every plotted iteration (all recorded ones
unless ``iterations`` names them); 5.2 uses means over seeds.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from sparsity_lab.claims import _curves as c
from sparsity_lab.claims.core import ClaimSet, Verdict

#: 5.1: a step of the grid that moves I_{p,q} the wrong way by more than this fails.
MONOTONE_TOL = 1e-9
#: 5.2: |PQI(T) - PQI(0)| of each run must be at least this.
MIN_CHANGE = 0.02

STATEMENTS = {
    "5.1": "At every plotted iteration, I_{p,q} decreases in p and increases in q over the grid",
    "5.2": "Global PQI at T differs from t = 0 by >= 0.02 for the SAP and the LT run",
}


def grid_rows(records: pd.DataFrame, iterations: Sequence[int] | None = None) -> pd.DataFrame:
    """run_id, iteration, p, q, value of the global PQI grid of the retrained models."""
    rows = records[(records["metric"] == "pqi") & (records["scope"] == "global") & (records["stage"] == "retrained")]
    if iterations is not None:
        rows = rows[rows["iteration"].isin(list(iterations))]
    rows = rows.assign(p=rows["p"].astype(float).round(6), q=rows["q"].astype(float).round(6))
    rows = rows.drop_duplicates(["run_id", "iteration", "p", "q"])
    if rows["p"].nunique() < 2 or rows["q"].nunique() < 2:
        raise c.NoData("no (p, q) grid of global PQI in these records (runs made with pq_grid=False?)")
    return rows[["run_id", "iteration", "p", "q", "value"]]


def worst_violation(table: pd.DataFrame) -> tuple[float, str]:
    """Largest wrong-way step of one p x q table (index p, columns q): PQI rising with p or falling with q."""
    values = table.to_numpy(float)
    up_in_p = np.diff(values, axis=0)       # must be <= 0
    down_in_q = -np.diff(values, axis=1)    # must be <= 0
    worst, where = -np.inf, ""
    for steps, axis_name in ((up_in_p, "p"), (down_in_q, "q")):
        if np.isfinite(steps).any():
            k = np.nanargmax(steps)
            if steps.flat[k] > worst:
                i, j = np.unravel_index(k, steps.shape)
                worst = float(steps.flat[k])
                where = f"along {axis_name} from p={table.index[i]:g}, q={table.columns[j]:g}"
    return worst, where


def _monotone(records: pd.DataFrame, iterations: Sequence[int] | None) -> c.Part:
    rows = grid_rows(records, iterations)
    worst, where, n = -np.inf, "", 0
    for (run, t), part in rows.groupby(["run_id", "iteration"]):
        table = part.pivot(index="p", columns="q", values="value").sort_index().sort_index(axis=1)
        value, at = worst_violation(table)
        n += 1
        if value > worst:
            worst, where = value, f"{run} t={t} {at}"
    if not np.isfinite(worst):
        raise c.NoData("no two neighbouring grid cells with p < q")
    ok = worst <= MONOTONE_TOL
    text = (f"{n} grids (runs x iterations) monotone; largest wrong-way step {worst:.2g}" if ok else
            f"wrong-way step {worst:.3g} > {MONOTONE_TOL:g} ({where})")
    return c.Part("holds" if ok else "fails", text, {"grids": n, "largest wrong-way step": worst})


def _tracks(records: pd.DataFrame, method: c.Method) -> c.Part:
    frame = c.runs_of(records, method)
    y = c.pqi(frame)
    T, y_T = c.last(y, frame)
    if T == 0:
        raise c.NoData("T = 0")
    change = y_T - float(y.loc[0])
    return c.Part("holds" if abs(change) >= MIN_CHANGE else "fails",
                  f"{method.label}: PQI {y.loc[0]:.3f} at t=0 -> {y_T:.3f} at T={T} ({change:+.3f})",
                  {f"{method.label} PQI(0)": float(y.loc[0]), f"{method.label} PQI(T)": y_T})


def check(records: pd.DataFrame, iterations: Sequence[int] | None = None) -> list[Verdict]:
    """Verdicts 5.1-5.2 on figure 5's records; ``iterations``: the plotted ones (default: all recorded)."""
    problem = c.one_setup(records)
    if problem:
        return c.untestable_all(STATEMENTS, problem)
    return [c.single("5.1", STATEMENTS["5.1"], lambda: _monotone(records, iterations)),
            c.combine("5.2", STATEMENTS["5.2"], [c.evaluate(m.label, lambda m=m: _tracks(records, m))
                                             for m in (c.SAP_05_1, c.LT)])]


CLAIMS = ClaimSet(STATEMENTS, check)
