"""The papers' claims as code: one module per figure family, each returning :class:`Verdict` objects
computed from the figure's own records (docs/figures.md, "Claims every figure checks").

:data:`CHECKS` maps a figure's number to its check function. Figures 1-6, 8 and 10 take the records
``load_results`` returns; figure 7 the table of ``figures.pqi_properties.property_checks``; figure 9 the
per-layer table of :func:`concentration.concentration_table`.
"""

from collections.abc import Callable
from typing import Any

from sparsity_lab.claims import (
    ablations,
    asni2,
    comparison,
    concentration,
    heatmaps,
    properties,
    schedule,
    scopes,
    trajectories,
)
from sparsity_lab.claims.core import STATUSES, Verdict, fails, holds, summary, untestable, verdict_table

CHECKS: dict[int, Callable[..., list[Verdict]]] = {
    1: trajectories.check,
    2: scopes.check,
    3: ablations.check_pq,
    4: ablations.check_eta_gamma,
    5: heatmaps.check,
    6: comparison.check,
    7: properties.check,
    8: schedule.check,
    9: concentration.check,
    10: asni2.check,
}

#: Claim number -> statement, per figure (every claim a check returns).
CLAIMS: dict[int, dict[str, str]] = {
    1: trajectories.CLAIMS, 2: scopes.CLAIMS, 3: ablations.CLAIMS_PQ, 4: ablations.CLAIMS_ETA_GAMMA,
    5: heatmaps.CLAIMS, 6: comparison.CLAIMS, 7: properties.CLAIMS, 8: schedule.CLAIMS, 9: concentration.CLAIMS,
    10: asni2.CLAIMS,
}


def check_figure(number: int, inputs: Any, **kw: Any) -> list[Verdict]:
    """The verdicts of figure ``number`` on its inputs."""
    if number not in CHECKS:
        raise ValueError(f"figure {number!r} has no claims: allowed {sorted(CHECKS)}")
    return CHECKS[number](inputs, **kw)


__all__ = ["CHECKS", "CLAIMS", "STATUSES", "Verdict", "check_figure", "fails", "holds", "summary", "untestable",
           "verdict_table"]
