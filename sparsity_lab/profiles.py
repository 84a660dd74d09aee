"""The four budgets every figure runs under (docs/figures.md "Profiles").

- ``smoke``: seconds per notebook on 2 CPU cores; scikit-learn's bundled digits; used by the tests.
- ``quick``: the default of ``make figures``; real FashionMNIST / MNIST with reduced budgets for a 2-core CPU.
- ``gpu``: one GPU host: FashionMNIST ``cnn`` (T = 30, E = 10; ablations E = 5) for figures 1-6, MNIST
  LeNet-300-100 at the ASNI authors' full budget for 8-10.
- ``paper``: the papers' protocols (docs/methods.md §3-4).

The values themselves live in ONE place, the typed parameter dataclass of each figure
(:mod:`sparsity_lab.figures.params`, ``param(..., smoke=, quick=, gpu=, paper=)``);
:func:`profile_table` lists them.
"""

from __future__ import annotations

import pandas as pd

from sparsity_lab.figures.params import PROFILES

__all__ = ["PROFILES", "profile_table"]


def profile_table() -> pd.DataFrame:
    """One row per (figure, parameter): its help and its value at every profile."""
    from sparsity_lab.figures.params import _fields, profile_value
    from sparsity_lab.figures.registry import all_figures

    rows = []
    for spec in all_figures():
        for f in _fields(spec.params):
            rows.append({"figure": spec.stem, "parameter": f.name, "help": f.metadata.get("help", ""),
                         **{p: profile_value(f, p) for p in PROFILES}})
    return pd.DataFrame(rows)
