"""Claims 10.1-10.2 of figure 10, ASNI-II (docs/figures.md, "Claims every figure checks").

Input: the figure's records (``load_results``) of ASNI configs; variants by config column ``variant``:
``asni2`` (learned two-level init), ``dense``, ``mask_random_init`` and ``random_signs`` (2L levels with
random signs). Final accuracy = test accuracy after the last epoch, mean over seeds, in pt.
"""

from __future__ import annotations

import pandas as pd

from sparsity_lab.claims import _curves as c
from sparsity_lab.claims.core import Verdict
from sparsity_lab.claims.schedule import close_to, final_accuracy

#: 10.1: ASNI-II at most this many pt below dense.
DENSE_TOLERANCE_PT = 0.5
#: 10.2: ASNI-II ahead of the random-sign levels by at least this many pt.
SIGNS_MARGIN_PT = 0.5

ASNI2 = c.Method("ASNI-II", {"variant": "asni2"})
RANDOM_INIT = c.Method("mask + random init", {"variant": "mask_random_init"})
RANDOM_SIGNS = c.Method("random signs", {"variant": "random_signs"})

CLAIMS = {
    "10.1": "ASNI-II's final accuracy is within 0.5 pt of dense",
    "10.2": "ASNI-II >= mask + random init, and >= 2L levels with random signs + 0.5 pt",
}


def _beats(records: pd.DataFrame, other: c.Method, margin: float) -> c.Part:
    mine, theirs = final_accuracy(c.runs_of(records, ASNI2)), final_accuracy(c.runs_of(records, other))
    ok = mine >= theirs + margin
    need = f" + {margin:g}" if margin else ""
    return c.Part("holds" if ok else "fails", f"ASNI-II {mine:.2f} vs {other.label} {theirs:.2f}{need} pt",
                  {"ASNI-II final acc": mine, f"{other.label} final acc": theirs})


def check(records: pd.DataFrame) -> list[Verdict]:
    """Verdicts 10.1-10.2 on figure 10's records."""
    problem = c.one_setup(records)
    if problem:
        return c.untestable_all(CLAIMS, problem)
    return [c.single("10.1", CLAIMS["10.1"], lambda: close_to(records, ASNI2, DENSE_TOLERANCE_PT)),
            c.combine("10.2", CLAIMS["10.2"], [
                c.evaluate(RANDOM_INIT.label, lambda: _beats(records, RANDOM_INIT, 0.0)),
                c.evaluate(RANDOM_SIGNS.label, lambda: _beats(records, RANDOM_SIGNS, SIGNS_MARGIN_PT))])]
