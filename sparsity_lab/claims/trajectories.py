"""Claims 1.1-1.4 of figure 1, PQI trajectories (docs/figures.md, "Claims every figure checks").

Input: the figure's records as ``load_results`` returns them (global pruning, one setup). Means over
seeds; accuracy in pt; PQI is the global I_{0.5,1} of the retrained model.
"""

from __future__ import annotations

import pandas as pd

from sparsity_lab._format import points_gap
from sparsity_lab.claims import _curves as c
from sparsity_lab.claims.core import Verdict

#: 1.1: decrease to <= DECREASE_FACTOR * PQI(0), rise to >= RISE_FACTOR * trough, drop by >= DROP_SHARE of the rise.
DECREASE_FACTOR, RISE_FACTOR, DROP_SHARE = 0.8, 1.5, 0.5
#: 1.2: the PQI peak lies within this many iterations of t_c.
PEAK_WINDOW = 3
#: 1.3: remaining below this fraction, and accuracy at T at most chance + CHANCE_MARGIN_PT.
COLLAPSE_REMAINING, CHANCE_MARGIN_PT = 0.01, 10.0
#: 1.4: LT's accuracy at T at most this many pt below dense.
LT_TOLERANCE_PT = 5.0

CLAIMS = {
    "1.1": "PQI decreases, rises, then drops as accuracy collapses, for SAP(1,2) and for One Shot",
    "1.2": "The PQI peak lies within 3 iterations of the collapse t_c, for SAP(1,2) and for One Shot",
    "1.3": "SAP(1,2) collapses: remaining < 1% within T and accuracy at T <= chance + 10 pt",
    "1.4": "Lottery Ticket degrades gracefully: accuracy at T within 5 pt of dense",
}


def three_phases(y: pd.Series, acc: pd.Series, label: str) -> c.Part:
    """The test of 1.1 on one mean PQI curve ``y`` and accuracy curve ``acc`` (pt)."""
    ts = [int(t) for t in y.index.intersection(acc.index) if t > 0]
    if 0 not in y.index or 0 not in acc.index or len(ts) < 3:
        raise c.NoData(f"T = {max(ts, default=0)} too short for three phases")
    y0, dense = float(y.loc[0]), float(acc.loc[0])
    nums = {f"{label} PQI(0)": y0, f"{label} dense acc": dense}
    down = [t for t in ts if y[t] <= DECREASE_FACTOR * y0]
    if not down:
        t = min(ts, key=lambda k: y[k])
        return c.Part("fails", f"{label}: no decrease, min PQI {y[t]:.3f} at t={t} > {DECREASE_FACTOR} x {y0:.3f}",
                      {**nums, f"{label} min PQI": float(y[t])})
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
    if found:  # report the largest rise, then the earliest collapse after it
        a, b, d, loss = min(found, key=lambda f: (-(y[f[1]] - y[f[0]]), f[2]))
        text = (f"{label}: PQI {y0:.3f} -> min {y[a]:.3f} at t={a} -> peak {y[b]:.3f} at t={b} -> "
                f"{y[d]:.3f} at t={d}; acc {loss:.1f} pt below dense")
        return c.Part("holds", text, {**nums, f"{label} t_min": a, f"{label} t_max": b, f"{label} t_3": d,
                                      f"{label} PQI(t_min)": float(y[a]), f"{label} PQI(t_max)": float(y[b]),
                                      f"{label} PQI(t_3)": float(y[d]), f"{label} acc loss": loss})
    if not rises:
        a = min(down, key=lambda k: y[k])
        after = max((t for t in ts if t > a), key=lambda k: y[k], default=None)
        peak = f"{y[after]:.3f} at t={after}" if after is not None else "none"
        return c.Part("fails", f"{label}: PQI {y0:.3f} -> min {y[a]:.3f} at t={a}, no rise to {RISE_FACTOR}x "
                      f"(largest later {peak})", {**nums, f"{label} PQI(t_min)": float(y[a])})
    if not drops:
        a, b = max(rises, key=lambda ab: y[ab[1]])
        return c.Part("fails", f"{label}: PQI {y0:.3f} -> min {y[a]:.3f} at t={a} -> peak {y[b]:.3f} at t={b}, "
                      f"no later drop by half the rise (PQI at T {y[ts[-1]]:.3f})",
                      {**nums, f"{label} PQI(t_min)": float(y[a]), f"{label} PQI(t_max)": float(y[b])})
    assert best is not None
    a, b, d, loss = best
    return c.Part("fails", f"{label}: PQI {y0:.3f} -> {y[a]:.3f} (t={a}) -> {y[b]:.3f} (t={b}) -> {y[d]:.3f} (t={d}) "
                  f"but acc only {loss:.1f} pt below dense (collapse needs {c.COLLAPSE_PT:g})",
                  {**nums, f"{label} acc loss": loss})


def _phases(records: pd.DataFrame, method: c.Method) -> c.Part:
    frame = c.runs_of(records, method)
    return three_phases(c.pqi(frame), c.accuracy(frame), method.label)


def _peak_at_collapse(records: pd.DataFrame, method: c.Method) -> c.Part:
    frame = c.runs_of(records, method)
    y, acc = c.pqi(frame), c.accuracy(frame)
    later = y[y.index >= 1]
    if later.empty:
        raise c.NoData("T = 0: no iteration after the dense one")
    peak = int(later.idxmax())
    t_c = c.t_collapse(acc)
    if t_c is None:
        raise c.NoData(f"accuracy never {c.COLLAPSE_PT:g} pt below dense within T = {int(acc.index.max())}, "
                       f"so t_c is undefined (min {acc.min():.1f} vs dense {acc.loc[0]:.1f})")
    ok = abs(peak - t_c) <= PEAK_WINDOW
    nums = {f"{method.label} t_peak": peak, f"{method.label} t_c": t_c, f"{method.label} peak PQI": float(y[peak])}
    return c.Part("holds" if ok else "fails", f"{method.label}: PQI peak {y[peak]:.3f} at t={peak}, t_c = {t_c} "
                  f"({abs(peak - t_c)} apart)", nums)


def _collapse(records: pd.DataFrame) -> c.Part:
    frame = c.runs_of(records, c.SAP_1_2)
    rem, acc = c.remaining(frame), c.accuracy(frame)
    T, acc_T = c.last(acc, frame)
    t_low = int(rem.idxmin())
    chance = c.chance_pt(frame)
    ok = rem.min() < COLLAPSE_REMAINING and acc_T <= chance + CHANCE_MARGIN_PT
    text = (f"SAP(1,2): min remaining {c.pct(rem.min())} at t={t_low}; acc at T={T} {acc_T:.1f} pt "
            f"vs chance {chance:.1f} + {CHANCE_MARGIN_PT:g}")
    return c.Part("holds" if ok else "fails", text, {"min remaining": float(rem.min()), "t of min": t_low, "T": T,
                                                      "acc at T": acc_T, "chance": chance})


def _graceful(records: pd.DataFrame) -> c.Part:
    frame = c.runs_of(records, c.LT)
    acc = c.accuracy(frame)
    T, acc_T = c.last(acc, frame)
    dense = float(acc.loc[0])
    ok = acc_T >= dense - LT_TOLERANCE_PT
    return c.Part("holds" if ok else "fails", f"LT: acc {acc_T:.1f} at T={T} vs dense {dense:.1f} "
                  f"({points_gap(acc_T, dense)})", {"LT acc at T": acc_T, "LT dense acc": dense, "T": T,
                                                        "seeds": c.seeds(frame)})


def check(records: pd.DataFrame) -> list[Verdict]:
    """Verdicts 1.1-1.4 on figure 1's records."""
    problem = c.one_setup(records)
    if problem:
        return c.untestable_all(CLAIMS, problem)
    methods = (c.SAP_1_2, c.ONE_SHOT)
    return [
        c.combine("1.1", CLAIMS["1.1"], [c.evaluate(m.label, lambda m=m: _phases(records, m)) for m in methods]),
        c.combine("1.2", CLAIMS["1.2"], [c.evaluate(m.label, lambda m=m: _peak_at_collapse(records, m))
                                         for m in methods]),
        c.single("1.3", CLAIMS["1.3"], lambda: _collapse(records)),
        c.single("1.4", CLAIMS["1.4"], lambda: _graceful(records)),
    ]
