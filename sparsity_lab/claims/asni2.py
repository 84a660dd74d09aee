"""The claims of figure 10, ``asni2`` (docs/figures.md, "Claims every figure checks", 10.1-10.3).

Input: the figure's records (``load_results``) of ASNI configs; variants by config column ``variant``:
``asni2`` (learned two-level init), ``dense``, and the controls ``mask_init`` (mask + original init),
``mask_random_init``, ``random_signs`` (2L levels with random signs) and ``std_levels`` (c± = ±std of θ₀).
Final accuracy = test accuracy after the last epoch, mean over seeds, in pt.
"""

from __future__ import annotations

import pandas as pd

from sparsity_lab.claims import _curves as c
from sparsity_lab.claims.asni_schedule import close_to, final_accuracy
from sparsity_lab.claims.core import ClaimSet, Verdict

#: 10.1: ASNI-II at most this many pt below dense.
DENSE_TOLERANCE_PT = 0.5
#: 10.2: ASNI-II ahead of the random-sign levels by at least this many pt.
SIGNS_MARGIN_PT = 0.5
#: 10.3: ASNI-II at least as accurate as every control (margin in pt).
CONTROL_MARGIN_PT = 0.0

ASNI2 = c.Method("ASNI-II", {"variant": "asni2"})
RANDOM_INIT = c.Method("mask + random init", {"variant": "mask_random_init"})
RANDOM_SIGNS = c.Method("random signs", {"variant": "random_signs"})
MASK_INIT = c.Method("mask + original init", {"variant": "mask_init"})
STD_LEVELS = c.Method("±std(θ₀) levels", {"variant": "std_levels"})
CONTROLS = (MASK_INIT, RANDOM_INIT, RANDOM_SIGNS, STD_LEVELS)

STATEMENTS = {
    "10.1": "ASNI-II's final accuracy is within 0.5 pt of dense",
    "10.2": "ASNI-II >= mask + random init, and >= 2L levels with random signs + 0.5 pt",
    "10.3": "ASNI-II >= every control (mask + original init, mask + random init, random signs, ±std(θ₀) levels) "
            "by >= 0 pt in final accuracy",
}


def _beats(records: pd.DataFrame, other: c.Method, margin: float) -> c.Part:
    mine, theirs = final_accuracy(c.runs_of(records, ASNI2)), final_accuracy(c.runs_of(records, other))
    ok = mine >= theirs + margin
    need = f" + {margin:g}" if margin else ""
    nums = {"ASNI-II final acc": mine, f"{other.label} final acc": theirs, f"ASNI-II - {other.label} (pt)": mine - theirs}
    if not ok and mine < theirs:
        return c.Part("fails", f"{other.label} is {theirs - mine:.2f} pt more accurate than ASNI-II ({theirs:.2f} vs "
                      f"{mine:.2f}{', ' + need.strip() + ' pt needed' if margin else ''})", nums)
    return c.Part("holds" if ok else "fails", f"ASNI-II {mine:.2f} vs {other.label} {theirs:.2f}{need} pt "
                  f"({mine - theirs:+.2f})", nums)


def check(records: pd.DataFrame) -> list[Verdict]:
    """Verdicts 10.1-10.3 on figure 10's records."""
    problem = c.one_setup(records)
    if problem:
        return c.untestable_all(STATEMENTS, problem)
    return [c.single("10.1", STATEMENTS["10.1"], lambda: close_to(records, ASNI2, DENSE_TOLERANCE_PT)),
            c.combine("10.2", STATEMENTS["10.2"], [
                c.evaluate(RANDOM_INIT.label, lambda: _beats(records, RANDOM_INIT, 0.0)),
                c.evaluate(RANDOM_SIGNS.label, lambda: _beats(records, RANDOM_SIGNS, SIGNS_MARGIN_PT))]),
            c.combine("10.3", STATEMENTS["10.3"], [c.evaluate(m.label, lambda m=m: _beats(records, m, CONTROL_MARGIN_PT))
                                                   for m in CONTROLS])]


CLAIMS = ClaimSet(STATEMENTS, check)
