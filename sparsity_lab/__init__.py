"""sparsity_lab: PQ Index / SAP (Diao et al., ICLR 2023) and ASNI (Damadi et al. 2022), reproducibly.

The public API is re-exported lazily from the submodules (see README "Architecture"), so that
``import sparsity_lab`` stays cheap and each name resolves to the module that owns it.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    # measures/sparsity.py: docs/methods.md §1
    "pq_index": "measures.sparsity",
    "pq_index_grid": "measures.sparsity",
    "gini": "measures.sparsity",
    "hoyer": "measures.sparsity",
    "density": "measures.sparsity",
    "measure_weights": "measures.sparsity",
    "measure_model": "measures.sparsity",
    # masks.py: docs/methods.md §2
    "MaskSet": "masks",
    "prunable_parameters": "masks",
    # rules/prune.py / rules/asni_schedule.py: docs/methods.md §3-4
    "prune": "rules.prune",
    "iterative_pruning": "experiments.own_loop",
    "PRUNING_RULES": "rules.prune",
    "register_rule": "rules.prune",
    "RuleContext": "rules.prune",
    "asni_target_sparsity": "rules.asni_schedule",
    # measures/early_warning.py: docs/methods.md §6
    "early_warning": "measures.early_warning",
    "early_warning_from_records": "measures.early_warning",
    # data, models, engine
    "load_dataset": "data",
    "create_model": "models",
    "TrainSettings": "engine.trainer",
    "MaskedTrainer": "engine.trainer",
    "BatchedTrainer": "engine.batched",
    # experiments
    "IterativeConfig": "config.configs",
    "AsniConfig": "config.configs",
    "ResultsStore": "store",
    "load_results": "store",
    "run": "experiments",
    "run_many": "sweep.runner",
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
