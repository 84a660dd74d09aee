"""The claims of figure 1, ``sap_trajectories`` (docs/figures.md, "Claims every figure checks", 1.1-1.5).

Input: the figure's records as ``load_results`` returns them (global pruning, one setup). Means over
seeds; accuracy in pt; PQI is the global I_{0.5,1} of the retrained model. The phases of 1.1 are
:func:`sparsity_lab.claims.pqi_phases.find_phases`, the rule the figure's phase table and shading use.
"""

from __future__ import annotations

import pandas as pd

from sparsity_lab._format import points_gap
from sparsity_lab.claims import _curves as c
from sparsity_lab.claims import _spread
from sparsity_lab.claims.core import ClaimSet, Verdict
from sparsity_lab.claims.pqi_phases import phases_part

#: 1.2: the PQI peak lies within this many iterations of t_c.
PEAK_WINDOW = 3
#: 1.3: remaining below this fraction, and accuracy at T at most chance + CHANCE_MARGIN_PT.
COLLAPSE_REMAINING, CHANCE_MARGIN_PT = 0.01, 10.0
#: 1.4: LT's accuracy at T at most this many pt below dense.
LT_TOLERANCE_PT = 5.0
#: 1.5: at T, SAP(0.5,1)'s accuracy at most this many pt below the other method's.
COMPRESSION_ACC_PT = 1.0

STATEMENTS = {
    "1.1": "PQI decreases, rises, then drops as accuracy collapses, for SAP(1,2) and for One Shot",
    "1.2": "The PQI peak lies within 3 iterations of the collapse t_c, for SAP(1,2) and for One Shot",
    "1.3": "SAP(1,2) collapses: remaining < 1% within T and accuracy at T <= chance + 10 pt",
    "1.4": "Lottery Ticket degrades gracefully: accuracy at T within 5 pt of dense",
    "1.5": "SAP(0.5,1) compresses more than LT and than One Shot at equal iterations: at T fewer weights remain, "
           "with accuracy at most 1 pt below theirs",
}


def _phases(records: pd.DataFrame, method: c.Method) -> c.Part:
    frame = c.runs_of(records, method)
    return phases_part(c.pqi(frame), c.accuracy(frame), method.label)


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


def _compresses_more(records: pd.DataFrame, other: c.Method) -> c.Part:
    sap, oth = c.runs_of(records, c.SAP_05_1), c.runs_of(records, other)
    (t_sap, rem_sap), (t_oth, rem_oth) = c.last(c.remaining(sap), sap), c.last(c.remaining(oth), oth)
    if t_sap != t_oth:
        raise c.NoData(f"SAP(0.5,1) ran T = {t_sap}, {other.label} T = {t_oth}: no common last iteration")
    acc_sap, acc_oth = float(c.accuracy(sap).loc[t_sap]), float(c.accuracy(oth).loc[t_sap])
    fewer, close = rem_sap < rem_oth, acc_sap >= acc_oth - COMPRESSION_ACC_PT
    key = f"vs {other.label}"
    nums = {f"{key}: SAP remaining at T": rem_sap, f"{key}: {other.label} remaining at T": rem_oth,
            f"{key}: SAP acc at T": acc_sap, f"{key}: {other.label} acc at T": acc_oth, "T": t_sap}
    noise, spread = _spread.gap_note(sap, oth, acc_sap - acc_oth, at_iteration=t_sap)
    nums[f"{key}: acc seed spread at T"] = spread
    both = (f"SAP(0.5,1) keeps {c.pct(rem_sap)} at T={t_sap} vs {other.label} {c.pct(rem_oth)}, "
            f"acc {acc_sap:.1f} vs {acc_oth:.1f} pt ({noise})")
    if fewer and close:
        return c.Part("holds", both, nums)
    finding = []
    if not fewer:
        finding.append(f"SAP(0.5,1) keeps more weights than {other.label} at T={t_sap} "
                       f"({c.pct(rem_sap)} vs {c.pct(rem_oth)}, {rem_sap / rem_oth:.3g}x)")
    if not close:
        finding.append(f"SAP(0.5,1) is {acc_oth - acc_sap:.1f} pt less accurate than {other.label} at T "
                       f"({acc_sap:.1f} vs {acc_oth:.1f}; allowed {COMPRESSION_ACC_PT:g})")
    if fewer:
        finding.append(f"though it keeps fewer weights ({c.pct(rem_sap)} vs {c.pct(rem_oth)})")
    elif close:
        finding.append(f"accuracy {acc_sap:.1f} vs {acc_oth:.1f} pt ({noise})")
    return c.Part("fails", ", ".join(finding), nums)


def check(records: pd.DataFrame) -> list[Verdict]:
    """Verdicts 1.1-1.5 on figure 1's records."""
    problem = c.one_setup(records)
    if problem:
        return c.untestable_all(STATEMENTS, problem)
    methods = (c.SAP_1_2, c.ONE_SHOT)
    return [
        c.combine("1.1", STATEMENTS["1.1"], [c.evaluate(m.label, lambda m=m: _phases(records, m)) for m in methods]),
        c.combine("1.2", STATEMENTS["1.2"], [c.evaluate(m.label, lambda m=m: _peak_at_collapse(records, m))
                                         for m in methods]),
        c.single("1.3", STATEMENTS["1.3"], lambda: _collapse(records)),
        c.single("1.4", STATEMENTS["1.4"], lambda: _graceful(records)),
        c.combine("1.5", STATEMENTS["1.5"], [c.evaluate(m.label, lambda m=m: _compresses_more(records, m))
                                             for m in (c.LT, c.ONE_SHOT)]),
    ]


CLAIMS = ClaimSet(STATEMENTS, check)
