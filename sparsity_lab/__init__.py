"""sparsity_lab: PQ Index / SAP (Diao et al., ICLR 2023) and ASNI (Damadi et al. 2022), reproducibly.

The public API is re-exported lazily from the submodules (see README "Architecture"), so that
``import sparsity_lab`` stays cheap and each name resolves to the module that owns it.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    # measures.py: docs/methods.md §1
    "pq_index": "measures",
    "pq_index_grid": "measures",
    "gini": "measures",
    "hoyer": "measures",
    "density": "measures",
    "measure_weights": "measures",
    "measure_model": "measures",
    # masks.py: docs/methods.md §2
    "MaskSet": "masks",
    "prunable_parameters": "masks",
    # pruning.py / schedules.py: docs/methods.md §3-4
    "prune": "pruning",
    "iterative_pruning": "own_loop",
    "PRUNING_RULES": "pruning",
    "register_rule": "pruning",
    "RuleContext": "pruning",
    "asni_target_sparsity": "schedules",
    # data, models, engine
    "load_dataset": "data",
    "create_model": "models",
    "TrainSettings": "train",
    "MaskedTrainer": "train",
    "BatchedTrainer": "batched",
    # experiments
    "IterativeConfig": "config",
    "AsniConfig": "config",
    "ResultsStore": "store",
    "load_results": "store",
    "run": "experiments",
    "run_many": "sweep",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'sparsity_lab' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"sparsity_lab.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
