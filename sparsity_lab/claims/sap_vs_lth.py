"""The claims of figure 6, ``sap_vs_lth``, SAP versus Lottery Ticket (docs/figures.md, "Claims every figure checks").

Input: the figure's records (``load_results``) over one or more setups (dataset x model). Per setup,
"dense" is the mean accuracy over every run at t = 0 (as the figure draws it); means over seeds per
iteration; accuracy in pt; remaining as fractions. A claim holds when it holds in every setup.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sparsity_lab.claims import _curves as c
from sparsity_lab.claims import _spread
from sparsity_lab.claims.core import ClaimSet, Verdict

#: 6.1: "within 1 pt of dense"; SAP at R may be at most 0.5 pt below LT.
WITHIN_DENSE_PT, SAP_MARGIN_PT = 1.0, 0.5
#: 6.2: compare at common remaining fractions <= 20 %; LT ahead by >= 1 pt at the sparsest one.
TICKET_RANGE, TICKET_MARGIN_PT = 0.20, 1.0

STATEMENTS = {
    "6.1": "SAP(0.5,1) reaches LT's sparsest within-1-pt-of-dense level R at least as accurately (-0.5 pt), "
           "or stays within 1 pt of dense beyond R",
    "6.2": "The winning ticket beats the random ticket at every common remaining <= 20%, by >= 1 pt at the sparsest",
}


def setups(records: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The records split by (dataset, model), named ``"dataset/model"``."""
    if records is None or len(records) == 0:
        raise c.NoData("no records")
    return {f"{d}/{m}": part for (d, m), part in records.groupby(["dataset", "model"], sort=True)}


def dense_pt(frame: pd.DataFrame) -> float:
    """Mean accuracy (pt) over every run of the setup at t = 0."""
    rows = frame[(frame["metric"] == "accuracy") & (frame["stage"] == "retrained") & (frame["iteration"] == 0)]
    if rows.empty:
        raise c.NoData("no dense (t = 0) accuracy")
    return float(rows.drop_duplicates("run_id")["value"].mean() * c.PT)


def sparsest_iteration(rem: pd.Series, acc: pd.Series, dense: float, tolerance: float = WITHIN_DENSE_PT
                       ) -> int | None:
    """The iteration of the lowest mean remaining whose mean accuracy is >= dense - ``tolerance`` pt (None if
    none): the one rule for "the sparsest level within 1 pt of dense", used by claim 6.1 and figure 6's table."""
    ok = acc.index[acc >= dense - tolerance]
    return int(rem.loc[ok].idxmin()) if len(ok) else None


def sparsest_within(rem: pd.Series, acc: pd.Series, dense: float) -> float | None:
    """Lowest mean remaining fraction whose mean accuracy is >= dense - 1 pt (None if none)."""
    t = sparsest_iteration(rem, acc, dense)
    return None if t is None else float(rem.loc[t])


def _reaches(name: str, frame: pd.DataFrame) -> c.Part:
    dense = dense_pt(frame)
    lt, sap = c.runs_of(frame, c.LT), c.runs_of(frame, c.SAP_05_1)
    lt_rem, lt_acc, sap_rem, sap_acc = c.remaining(lt), c.accuracy(lt), c.remaining(sap), c.accuracy(sap)
    R = sparsest_within(lt_rem, lt_acc, dense)
    if R is None:
        raise c.NoData(f"LT is never within {WITHIN_DENSE_PT:g} pt of dense {dense:.1f}")
    lt_at_R = float(lt_acc.loc[lt_rem.index[np.isclose(lt_rem, R)]].max())
    nums = {f"{name} dense": dense, f"{name} R": R, f"{name} LT acc at R": lt_at_R}
    own = sparsest_within(sap_rem, sap_acc, dense)
    if own is not None and own < R:
        return c.Part("holds", f"{name}: SAP within 1 pt of dense {dense:.1f} down to {c.pct(own)} < R = {c.pct(R)}",
                      {**nums, f"{name} SAP sparsest within 1 pt": own})
    if sap_rem.min() > R * (1 + 1e-9):
        return c.Part("fails", f"{name}: SAP did not reach R = {c.pct(R)} within T (sparsest {c.pct(sap_rem.min())})",
                      {**nums, f"{name} SAP sparsest": float(sap_rem.min())})
    sap_at_R = float(c.interp_log(sap_rem, sap_acc, np.array([R]))[0])
    ok = sap_at_R >= lt_at_R - SAP_MARGIN_PT
    noise, spread = _spread.gap_note(sap, lt, sap_at_R - lt_at_R, at_remaining=R)
    return c.Part("holds" if ok else "fails", f"{name}: at R = {c.pct(R)} SAP {sap_at_R:.1f} vs LT {lt_at_R:.1f} pt "
                  f"(dense {dense:.1f}; {noise})", {**nums, f"{name} SAP acc at R": sap_at_R,
                                                    f"{name} seed spread at R": spread})


def _beats_random(name: str, frame: pd.DataFrame) -> c.Part:
    lt, rt = c.runs_of(frame, c.LT), c.runs_of(frame, c.RANDOM_TICKET)
    both = pd.DataFrame({"lt_rem": c.remaining(lt), "lt_acc": c.accuracy(lt),
                         "rt_rem": c.remaining(rt), "rt_acc": c.accuracy(rt)}).dropna()
    common = both[np.isclose(both["lt_rem"], both["rt_rem"], rtol=1e-6, atol=1e-9)
                  & (both["lt_rem"] <= TICKET_RANGE + 1e-12)]
    if common.empty:
        lowest = both["lt_rem"].min() if len(both) else float("nan")
        raise c.NoData(f"no common remaining fraction <= {c.pct(TICKET_RANGE)} (LT's sparsest {c.pct(lowest)})")
    gaps = common["lt_acc"] - common["rt_acc"]
    sparsest = common["lt_rem"].idxmin()
    worst = gaps.idxmin()
    ok = bool((gaps >= 0).all()) and gaps.loc[sparsest] >= TICKET_MARGIN_PT
    noise, spread = _spread.gap_note(lt, rt, float(gaps.loc[sparsest]), at_iteration=int(sparsest))
    text = (f"{name}: LT - random at {c.pct(common.loc[sparsest, 'lt_rem'])} {gaps.loc[sparsest]:+.1f} pt ({noise}), "
            f"worst {gaps.loc[worst]:+.1f} pt at {c.pct(common.loc[worst, 'lt_rem'])} ({len(common)} common levels)")
    return c.Part("holds" if ok else "fails", text, {f"{name} gap at sparsest": float(gaps.loc[sparsest]),
                                                      f"{name} sparsest common": float(common.loc[sparsest, "lt_rem"]),
                                                      f"{name} worst gap": float(gaps.loc[worst]),
                                                      f"{name} seed spread at sparsest": spread})


def check(records: pd.DataFrame) -> list[Verdict]:
    """Verdicts 6.1-6.2 on figure 6's records (every setup)."""
    try:
        parts = setups(records)
    except c.NoData as err:
        return c.untestable_all(STATEMENTS, str(err))
    return [c.combine("6.1", STATEMENTS["6.1"], [c.evaluate(n, lambda n=n, f=f: _reaches(n, f)) for n, f in parts.items()]),
            c.combine("6.2", STATEMENTS["6.2"], [c.evaluate(n, lambda n=n, f=f: _beats_random(n, f))
                                             for n, f in parts.items()])]


CLAIMS = ClaimSet(STATEMENTS, check)
