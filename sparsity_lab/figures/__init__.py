"""Figure functions, one module per paper figure (FIGURES.md), and their shared helpers.

* :mod:`sparsity_lab.figures.style`: theme, mean ± std bands, PQI phase shading, captions,
  saving figures/tables and the report sidecar (``write_meta``).
* :class:`FigureResult`: what each figure's ``make_figure(profile, **overrides)`` returns.
* :mod:`sparsity_lab.figures.properties`: Figure 7, the sparsity properties of PQI, Gini, Hoyer.

Submodules are imported on demand (``from sparsity_lab.figures import properties``) so that
importing the package does not import matplotlib.
"""

from __future__ import annotations

from typing import Any

__all__ = ["FigureResult"]


def __getattr__(name: str) -> Any:
    if name == "FigureResult":
        from sparsity_lab.figures._result import FigureResult

        return FigureResult
    raise AttributeError(f"module 'sparsity_lab.figures' has no attribute {name!r}")
