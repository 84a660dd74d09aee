"""Figure 3 (SAP paper Fig. 4): SAP with q = 1 and p ∈ {0.2, 0.4, 0.5, 0.6, 0.8}, and with p = 1
and q ∈ {1.2, 1.4, 1.6, 1.8, 2.0} (η_r = 0, γ = 1, global scope); the four panels of Fig. 2(a)
per family (see :mod:`.ablations`).

The value lists are the paper's for ``quick`` and ``paper``; ``smoke`` runs two per family.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sparsity_lab.figures import _sap_common as common
from sparsity_lab.figures._result import FigureResult
from sparsity_lab.figures.ablations import ablation_values, run_ablation

__all__ = ["P_VALUES", "Q_VALUES", "make_figure", "pq_ablation", "pq_variants"]

_PAPER_P = (0.2, 0.4, 0.5, 0.6, 0.8)
_PAPER_Q = (1.2, 1.4, 1.6, 1.8, 2.0)
#: profile -> the p values (q = 1) and the q values (p = 1) of FIGURES.md item 3.
P_VALUES = {"smoke": (0.5, 0.8), "quick": _PAPER_P, "paper": _PAPER_P}
Q_VALUES = {"smoke": (1.4, 2.0), "quick": _PAPER_Q, "paper": _PAPER_Q}


def pq_variants(p_values: Sequence[float], q_values: Sequence[float]) -> list[common.Variant]:
    """Family "q = 1, varying p" then family "p = 1, varying q" (SAP, η_r = 0, γ = 1)."""
    fam_p, fam_q = "q = 1, varying p", "p = 1, varying q"
    return ([common.Variant(f"p = {p:g}", {"method": "sap", "p": p, "q": 1.0}, fam_p) for p in p_values]
            + [common.Variant(f"q = {q:g}", {"method": "sap", "p": 1.0, "q": q}, fam_q) for q in q_values])


def pq_ablation(profile: str = "quick", *, store: Any = None, device: str | None = None, output_dir: Any = None,
                progress: bool = True, **overrides: Any) -> FigureResult:
    """Figure 3 (FIGURES.md item 3). ``overrides``: ``p_values``, ``q_values`` (None = the
    profile's), ``epochs`` and any ``figure_params`` field (dataset, model, iterations, seeds, ...)."""
    p_values = ablation_values(P_VALUES, profile, "p_values", overrides.pop("p_values", None))
    q_values = ablation_values(Q_VALUES, profile, "q_values", overrides.pop("q_values", None))
    params = common.resolve_params("pq_ablation", profile, overrides)
    return run_ablation("03_pq_ablation", pq_variants(p_values, q_values), params, store=store, device=device,
                        output_dir=output_dir, progress=progress,
                        extra="SAP with η_r = 0, γ = 1, β = 0.9; PQI tracked at (0.5, 1)")


make_figure = pq_ablation
