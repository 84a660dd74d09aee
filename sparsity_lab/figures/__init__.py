"""The paper figures: one module per figure, registered once (:mod:`.registry`), pure readers.

* :mod:`.registry`: ``@register_figure(number=, name=, params=)``, ``get_figure``, ``all_figures``;
  :mod:`.params`: typed parameters with profile defaults (``resolve``).
* :mod:`.style`: theme, fixed colour per method, mean ± std bands, PQI phases, captions, saving.
* :class:`FigureResult`: what ``sparsity_lab.pipeline.make_figure`` returns.

Submodules are imported on demand so that importing the package does not import matplotlib.
"""

from __future__ import annotations

from typing import Any

__all__ = ["FigureResult"]


def __getattr__(name: str) -> Any:
    if name == "FigureResult":
        from sparsity_lab.figures._result import FigureResult

        return FigureResult
    raise AttributeError(f"module 'sparsity_lab.figures' has no attribute {name!r}")
