"""Figure 4 (SAP paper Fig. 5): SAP with γ = 1 and η_r ∈ {0, 0.001, 0.01, 0.1, 1}, and with
η_r = 0 and γ ∈ {1, 3, 5, 7, 9} ((p, q) = (0.5, 1) unless ``pq`` says otherwise, global scope);
the four panels of Fig. 2(a) per family (see :mod:`.ablations`). The run η_r = 0, γ = 1 belongs
to both families and is trained once.

The value lists are the paper's for ``quick`` and ``paper``; ``smoke`` runs two per family.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sparsity_lab.figures import _sap_common as common
from sparsity_lab.figures._result import FigureResult
from sparsity_lab.figures.ablations import ablation_values, run_ablation

__all__ = ["ETA_VALUES", "GAMMA_VALUES", "eta_gamma_ablation", "eta_gamma_variants", "make_figure"]

_PAPER_ETA = (0.0, 0.001, 0.01, 0.1, 1.0)
_PAPER_GAMMA = (1.0, 3.0, 5.0, 7.0, 9.0)
#: profile -> the η_r values (γ = 1) and the γ values (η_r = 0) of FIGURES.md item 4.
ETA_VALUES = {"smoke": (0.0, 0.1), "quick": _PAPER_ETA, "paper": _PAPER_ETA}
GAMMA_VALUES = {"smoke": (1.0, 5.0), "quick": _PAPER_GAMMA, "paper": _PAPER_GAMMA}


def eta_gamma_variants(eta_values: Sequence[float], gamma_values: Sequence[float],
                       pq: tuple[float, float] = (0.5, 1.0)) -> list[common.Variant]:
    """Family "γ = 1, varying η_r" then family "η_r = 0, varying γ"; SAP at ``pq``."""
    p, q = pq
    fam_eta, fam_gamma = "γ = 1, varying η_r", "η_r = 0, varying γ"
    base = {"method": "sap", "p": p, "q": q}
    return ([common.Variant(f"η_r = {e:g}", {**base, "eta_r": e, "gamma": 1.0}, fam_eta) for e in eta_values]
            + [common.Variant(f"γ = {g:g}", {**base, "eta_r": 0.0, "gamma": g}, fam_gamma) for g in gamma_values])


def eta_gamma_ablation(profile: str = "quick", *, store: Any = None, device: str | None = None,
                       output_dir: Any = None, progress: bool = True, **overrides: Any) -> FigureResult:
    """Figure 4 (FIGURES.md item 4). ``overrides``: ``eta_values``, ``gamma_values`` (None = the
    profile's), ``pq`` (SAP's (p, q), default (0.5, 1)), ``epochs`` and any ``figure_params`` field."""
    eta_values = ablation_values(ETA_VALUES, profile, "eta_values", overrides.pop("eta_values", None))
    gamma_values = ablation_values(GAMMA_VALUES, profile, "gamma_values", overrides.pop("gamma_values", None))
    pq = tuple(float(v) for v in (overrides.pop("pq", None) or (0.5, 1.0)))
    if len(pq) != 2:
        raise ValueError(f"pq must be a pair (p, q), got {pq}")
    params = common.resolve_params("eta_gamma_ablation", profile, overrides)
    return run_ablation("04_eta_gamma_ablation", eta_gamma_variants(eta_values, gamma_values, (pq[0], pq[1])),
                        params, store=store, device=device, output_dir=output_dir, progress=progress,
                        extra=f"SAP (p, q) = ({pq[0]:g}, {pq[1]:g}), β = 0.9; PQI tracked at (0.5, 1)")


make_figure = eta_gamma_ablation
