"""The paper figures: one module per figure, registered once (:mod:`.registry`), pure readers.

* :mod:`.registry`: ``@register_figure(number=, name=, params=)``, ``get_figure``, ``all_figures``;
  :mod:`.params`: typed parameters with profile defaults (``resolve``).
* :mod:`.style`: theme, fixed colour per method, mean ± std bands, PQI phases, captions.

A figure draws what it is given and writes nothing; ``sparsity_lab.report`` loads its inputs, checks its claims
and publishes its files. Submodules are imported on demand so that importing the package does not import
matplotlib.
"""
