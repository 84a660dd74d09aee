"""Test doubles shared by tests/test_store.py, test_sweep.py and test_cli.py (no tests here).

``FakeConfig`` mimics the interface of ``sparsity_lab.config.configs`` configs (``kind``, ``to_dict``,
``canonical`` with only non-default fields, ``run_id``) without depending on config.py.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pandas as pd
import torch


@dataclass(frozen=True)
class FakeTrain:
    epochs: int = 1
    lr: float = 0.1


@dataclass(frozen=True)
class FakeConfig:
    kind: ClassVar[str] = "fake"
    method: str = "sap"
    seed: int = 0
    p: float = 0.5
    scope: str = "global"
    steps: int = 3
    train: FakeTrain = field(default_factory=FakeTrain)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **dataclasses.asdict(self)}

    def canonical(self) -> str:
        default = FakeConfig().to_dict()
        diff = {k: v for k, v in self.to_dict().items() if default[k] != v}
        return self.kind + json.dumps(diff, sort_keys=True)

    def dependencies(self) -> list[FakeConfig]:
        return []

    @property
    def run_id(self) -> str:
        return f"{self.kind}_{hashlib.sha256(self.canonical().encode()).hexdigest()[:12]}"


def make_records(step: int, accuracy: float = 0.9) -> pd.DataFrame:
    """Tidy rows (README "Stored records") of one step: accuracy, remaining, a global PQI."""
    return pd.DataFrame([
        {"iteration": step, "stage": "retrained", "metric": "accuracy", "scope": "model", "group": "all",
         "p": math.nan, "q": math.nan, "value": accuracy},
        {"iteration": step, "stage": "retrained", "metric": "remaining", "scope": "model", "group": "all",
         "p": math.nan, "q": math.nan, "value": 0.8 ** step},
        {"iteration": step, "stage": "retrained", "metric": "pqi", "scope": "global", "group": "all",
         "p": 0.5, "q": 1.0, "value": 0.15 + 0.01 * step},
    ])


def make_tensors(step: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(step)
    return {"mask.fc.weight": torch.rand(4, 5, generator=g) > 0.3, "weight.fc.weight": torch.randn(4, 5, generator=g)}


def fake_run(config: FakeConfig, store: Any, accuracy: float = 0.9) -> str:
    """What a runner does with the store: prepare, lock, one step per unit, COMPLETE."""
    store.prepare(config)
    with store.lock(config.run_id):
        if store.is_complete(config.run_id):
            return "reused"
        for step in range(len(store.completed_steps(config.run_id)), config.steps):
            store.save_step(config.run_id, step, make_records(step, accuracy), make_tensors(step))
        store.mark_complete(config.run_id, {"final_accuracy": accuracy})
    return "done"
