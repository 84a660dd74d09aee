"""The papers' claims as code: one module per figure family, each returning :class:`Verdict` objects
computed from the figure's own records (docs/figures.md, "Claims every figure checks")."""

from sparsity_lab.claims.core import STATUSES, Verdict, fails, holds, summary, untestable, verdict_table

__all__ = ["STATUSES", "Verdict", "fails", "holds", "summary", "untestable", "verdict_table"]
