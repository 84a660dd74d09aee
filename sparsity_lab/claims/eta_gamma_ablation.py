"""The claims of figure 4, ``eta_gamma_ablation`` (docs/figures.md, "Claims every figure checks", 4.1-4.2).

Input: the figure's records (``load_results``): global SAP(0.5, 1) runs with γ = 1 and varying η_r, and
with η_r = 0 and varying γ.
"""

from __future__ import annotations

import pandas as pd

from sparsity_lab.claims import _ablation as a
from sparsity_lab.claims import _curves as c
from sparsity_lab.claims.core import ClaimSet, Verdict

STATEMENTS = {
    "4.1": "Remaining at T decreases with eta_r (non-increasing, strictly from smallest to largest)",
    "4.2": "Remaining at T decreases with gamma (non-increasing, strictly from smallest to largest)",
}
#: The two panels of figure 4: (varying column, its name, fixed config columns).
ETA_GAMMA_PANELS = (("eta_r", "eta_r", {"gamma": 1.0}), ("gamma", "gamma", {"eta_r": 0.0}))


def check(records: pd.DataFrame) -> list[Verdict]:
    """Verdicts 4.1-4.2 on figure 4's records."""
    problem = c.one_setup(records)
    if problem:
        return c.untestable_all(STATEMENTS, problem)
    return [a.monotone(claim, STATEMENTS[claim], records, panel, a.remaining_at_T, "remaining at T", False)
            for claim, panel in zip(("4.1", "4.2"), ETA_GAMMA_PANELS)]


CLAIMS = ClaimSet(STATEMENTS, check)
