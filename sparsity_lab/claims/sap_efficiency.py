"""The claim of figure 12, ``sap_efficiency``: SAP's efficiency where the SAP paper shows it (docs/figures.md
item 12: resnet18, FashionMNIST, global scope, T = 15, 3 seeds planned at the `gpu` profile, seed 0 trained so far).

Input: the figure's records (``load_results``), one setup. At the runs' last iteration T, the mean over
seeds of the remaining fraction and of the retrained test accuracy (pt) of SAP(0.5, 1) and LT(0.2), each
gap stated with its seed spread (:mod:`._spread`).
"""

from __future__ import annotations

from sparsity_lab.claims import _curves as c
from sparsity_lab.claims import _spread as s
from sparsity_lab.claims.core import ClaimSet, Verdict

#: 12.1: SAP(0.5,1)'s accuracy at T at most this many pt below LT's.
ACCURACY_PT = 1.0
#: 12.1: "no more weights than LT" allows this relative excess (float noise of equal counts only).
REMAINING_RTOL = 1e-9

STATEMENTS = {
    "12.1": "At T, SAP(0.5,1) keeps no more weights than LT, and its accuracy is within 1 pt of LT's "
            "(means over seeds, each gap with its seed spread)",
}


def _efficiency(records) -> c.Part:
    sap, lt = c.runs_of(records, c.SAP_05_1), c.runs_of(records, c.LT)
    (t, rem_sap), (t_lt, rem_lt) = c.last(c.remaining(sap), sap), c.last(c.remaining(lt), lt)
    if t != t_lt:
        raise c.NoData(f"SAP(0.5,1) ran T = {t}, LT T = {t_lt}: no common last iteration")
    acc_sap, acc_lt = float(c.accuracy(sap).loc[t]), float(c.accuracy(lt).loc[t])
    seeds_acc = s.per_seed(sap, "accuracy", t, scale=c.PT), s.per_seed(lt, "accuracy", t, scale=c.PT)
    seeds_rem = s.per_seed(sap, "remaining", t, scale=c.PT), s.per_seed(lt, "remaining", t, scale=c.PT)
    n = min(len(seeds_acc[0]), len(seeds_acc[1]))
    acc_gap, rem_gap = acc_sap - acc_lt, c.PT * (rem_sap - rem_lt)
    acc_spread, rem_spread = s.comparison_spread(*seeds_acc), s.comparison_spread(*seeds_rem)
    fewer = rem_sap <= rem_lt * (1 + REMAINING_RTOL)
    close = acc_gap >= -ACCURACY_PT
    text = (f"at T={t} SAP(0.5,1) keeps {c.pct(rem_sap)} vs LT {c.pct(rem_lt)} "
            f"({s.noise_text(rem_gap, rem_spread, 'pt of weights', n)}), accuracy {acc_sap:.2f} vs {acc_lt:.2f} pt "
            f"(gap {acc_gap:+.2f} pt, {s.noise_text(acc_gap, acc_spread, 'pt', n)})")
    if not fewer:
        text = f"SAP(0.5,1) keeps {rem_sap / rem_lt:.3g}x LT's weights: " + text
    if not close:
        text = f"SAP(0.5,1) is {-acc_gap:.2f} pt below LT (allowed {ACCURACY_PT:g}): " + text
    nums = {"T": t, "seeds": n, "SAP remaining at T": rem_sap, "LT remaining at T": rem_lt,
            "SAP acc at T": acc_sap, "LT acc at T": acc_lt, "acc gap (pt)": acc_gap, "acc seed spread (pt)": acc_spread,
            "remaining gap (pt)": rem_gap, "remaining seed spread (pt)": rem_spread}
    return c.Part("holds" if fewer and close else "fails", text, nums)


def check(records) -> list[Verdict]:
    """Verdict 12.1 on figure 12's records."""
    problem = c.one_setup(records)
    if problem:
        return c.untestable_all(STATEMENTS, problem)
    return [c.single("12.1", STATEMENTS["12.1"], lambda: _efficiency(records))]


CLAIMS = ClaimSet(STATEMENTS, check)
