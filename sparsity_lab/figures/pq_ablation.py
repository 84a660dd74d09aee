"""Figure 3 (SAP paper Fig. 4): SAP with q = 1 and p ∈ {0.2, 0.4, 0.5, 0.6, 0.8}, and with p = 1
and q ∈ {1.2, 1.4, 1.6, 1.8, 2.0} (η_r = 0, γ = 1, global scope); the four panels of Fig. 2(a)
per family (see :mod:`.ablations`).

The value lists are the paper's for ``quick`` and ``paper``; ``smoke`` runs two per family.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sparsity_lab.claims import pq_ablation as claims
from sparsity_lab.figures import _sap_common as common
from sparsity_lab.figures.ablations import AblationParams, draw_rows
from sparsity_lab.figures.params import param
from sparsity_lab.figures.registry import Drawn, Inputs, Run, register_figure

__all__ = ["PqAblation", "PqAblationParams", "pq_variants"]

_PAPER_P = [0.2, 0.4, 0.5, 0.6, 0.8]
_PAPER_Q = [1.2, 1.4, 1.6, 1.8, 2.0]


def pq_variants(p_values: Sequence[float], q_values: Sequence[float]) -> list[common.Variant]:
    """Family "q = 1, varying p" then family "p = 1, varying q" (SAP, η_r = 0, γ = 1)."""
    fam_p, fam_q = "q = 1, varying p", "p = 1, varying q"
    return ([common.Variant(f"p = {p:g}", {"method": "sap", "p": p, "q": 1.0}, fam_p) for p in p_values]
            + [common.Variant(f"q = {q:g}", {"method": "sap", "p": 1.0, "q": q}, fam_q) for q in q_values])


@dataclass
class PqAblationParams(AblationParams):
    p_values: list[float] = param("p values with q = 1", smoke=[0.5, 0.8], default=_PAPER_P)
    q_values: list[float] = param("q values with p = 1", smoke=[1.4, 2.0], default=_PAPER_Q)


@register_figure(number=3, name="pq_ablation", params=PqAblationParams, claims=claims.CLAIMS)
class PqAblation:
    """Figure 3 (docs/figures.md item 3)."""

    @staticmethod
    def runs(p: PqAblationParams) -> list[Run]:
        return common.build_runs(p, pq_variants(p.p_values, p.q_values))

    @staticmethod
    def draw(inputs: Inputs, p: PqAblationParams) -> Drawn:
        return draw_rows(inputs, p, pq_variants(p.p_values, p.q_values),
                         "SAP with η_r = 0, γ = 1, β = 0.9; PQI tracked at (0.5, 1)")
