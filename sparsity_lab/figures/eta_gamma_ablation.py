"""Figure 4 (SAP paper Fig. 5): SAP with γ = 1 and η_r ∈ {0, 0.001, 0.01, 0.1, 1}, and with
η_r = 0 and γ ∈ {1, 3, 5, 7, 9} ((p, q) = (0.5, 1) unless ``pq`` says otherwise, global scope);
the four panels of Fig. 2(a) per family (see :mod:`.ablations`). The run η_r = 0, γ = 1 belongs
to both families and is trained once.

The value lists are the paper's for ``quick`` and ``paper``; ``smoke`` runs two per family.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sparsity_lab.claims import eta_gamma_ablation as claims
from sparsity_lab.figures import _sap_common as common
from sparsity_lab.figures.ablations import AblationParams, draw_rows
from sparsity_lab.figures.params import param
from sparsity_lab.figures.registry import Drawn, Inputs, Run, register_figure

__all__ = ["EtaGammaAblation", "EtaGammaParams", "eta_gamma_variants"]

_PAPER_ETA = [0.0, 0.001, 0.01, 0.1, 1.0]
_PAPER_GAMMA = [1.0, 3.0, 5.0, 7.0, 9.0]


def eta_gamma_variants(eta_values: Sequence[float], gamma_values: Sequence[float],
                       pq: tuple[float, float] = (0.5, 1.0)) -> list[common.Variant]:
    """Family "γ = 1, varying η_r" then family "η_r = 0, varying γ"; SAP at ``pq``."""
    p, q = pq
    fam_eta, fam_gamma = "γ = 1, varying η_r", "η_r = 0, varying γ"
    base = {"method": "sap", "p": p, "q": q}
    return ([common.Variant(f"η_r = {e:g}", {**base, "eta_r": e, "gamma": 1.0}, fam_eta) for e in eta_values]
            + [common.Variant(f"γ = {g:g}", {**base, "eta_r": 0.0, "gamma": g}, fam_gamma) for g in gamma_values])


@dataclass
class EtaGammaParams(AblationParams):
    eta_values: list[float] = param("η_r values with γ = 1", smoke=[0.0, 0.1], default=_PAPER_ETA)
    gamma_values: list[float] = param("γ values with η_r = 0", smoke=[1.0, 5.0], default=_PAPER_GAMMA)
    pq: list[float] = param("SAP's (p, q)", default=[0.5, 1.0])


@register_figure(number=4, name="eta_gamma_ablation", params=EtaGammaParams, claims=claims.CLAIMS)
class EtaGammaAblation:
    """Figure 4 (docs/figures.md item 4)."""

    @staticmethod
    def _variants(p: EtaGammaParams) -> list[common.Variant]:
        if len(p.pq) != 2:
            raise ValueError(f"parameter pq={p.pq!r}: expected a pair [p, q]")
        return eta_gamma_variants(p.eta_values, p.gamma_values, (p.pq[0], p.pq[1]))

    @classmethod
    def runs(cls, p: EtaGammaParams) -> list[Run]:
        return common.build_runs(p, cls._variants(p))

    @classmethod
    def draw(cls, inputs: Inputs, p: EtaGammaParams) -> Drawn:
        return draw_rows(inputs, p, cls._variants(p),
                         f"SAP (p, q) = ({p.pq[0]:g}, {p.pq[1]:g}), β = 0.9; PQI tracked at (0.5, 1)")
