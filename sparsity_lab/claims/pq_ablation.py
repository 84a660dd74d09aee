"""The claims of figure 3, ``pq_ablation`` (docs/figures.md, "Claims every figure checks", 3.1-3.3).

Input: the figure's records (``load_results``): global SAP runs with q = 1 and varying p, and with p = 1
and varying q (η_r = 0, γ = 1). The phases of 3.3 are :func:`sparsity_lab.claims.pqi_phases.find_phases`.
"""

from __future__ import annotations

import pandas as pd

from sparsity_lab.claims import _ablation as a
from sparsity_lab.claims import _curves as c
from sparsity_lab.claims.core import ClaimSet, Verdict
from sparsity_lab.claims.pqi_phases import phases_part

STATEMENTS = {
    "3.1": "With q = 1, the fraction pruned at t = 1 increases strictly with p",
    "3.2": "With p = 1, the fraction pruned at t = 1 increases strictly with q",
    "3.3": "The most aggressive setting of each panel (largest p; largest q) shows the three phases of 1.1",
}
#: The two panels of figure 3: (varying column, its name, fixed config columns).
PQ_PANELS = (("config_p", "p", {"config_q": 1.0}), ("config_q", "q", {"config_p": 1.0}))


def _aggressive(records: pd.DataFrame, panel: tuple) -> c.Part:
    vary, name, fixed = panel
    runs = a.settings(records, vary, name, fixed)
    top = max(runs)
    frame = runs[top]
    return phases_part(c.pqi(frame), c.accuracy(frame), f"{name} = {top:g}")


def check(records: pd.DataFrame) -> list[Verdict]:
    """Verdicts 3.1-3.3 on figure 3's records."""
    problem = c.one_setup(records)
    if problem:
        return c.untestable_all(STATEMENTS, problem)
    pruned = a.fraction_pruned_first
    return [
        a.monotone("3.1", STATEMENTS["3.1"], records, PQ_PANELS[0], pruned, "pruned at t=1", True),
        a.monotone("3.2", STATEMENTS["3.2"], records, PQ_PANELS[1], pruned, "pruned at t=1", True),
        c.combine("3.3", STATEMENTS["3.3"], [c.evaluate(a.fixed_text(p[2]), lambda p=p: _aggressive(records, p))
                                             for p in PQ_PANELS]),
    ]


CLAIMS = ClaimSet(STATEMENTS, check)
