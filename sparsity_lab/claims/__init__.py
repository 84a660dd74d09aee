"""The papers' claims as code: one module per figure, named as the figure is registered, each returning
:class:`Verdict` objects computed from the figure's own records (docs/figures.md, "Claims every figure checks").

Every figure module of :mod:`sparsity_lab.claims` holds ``STATEMENTS`` (claim id -> one-line statement
with its threshold), ``check(inputs)`` and ``CLAIMS = ClaimSet(STATEMENTS, check)``; the figure registers
that set (``register_figure(claims=...)``), so a figure's claims have one owner and one name:
``get_figure(n).claims(inputs)`` checks them, ``get_figure(n).claim_statements()`` lists them. Figures
1-6, 8 and 10 take the records ``load_results`` returns; figure 7 the table of
``figures.pqi_properties.property_checks``; figure 9 the per-layer table of
:func:`asni_concentration.table_from_run`. Rules that a figure's tables share with its claims live here
too: the PQI phases (:mod:`.pqi_phases`) and figure 9's numbers (:mod:`.concentration_data`).
"""

from sparsity_lab.claims.core import (
    STATUSES,
    ClaimSet,
    Verdict,
    fails,
    holds,
    summary,
    untestable,
    verdict_table,
)

__all__ = ["STATUSES", "ClaimSet", "Verdict", "fails", "holds", "summary", "untestable", "verdict_table"]
