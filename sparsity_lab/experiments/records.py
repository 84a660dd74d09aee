"""The tidy rows every experiment step emits (README "Stored records"): one row per metric, scope and group."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from sparsity_lab.store import RECORD_COLUMNS


class Records:
    """Accumulates tidy rows (README "Stored records") for one step."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def add(self, iteration: int, stage: str, metric: str, value: float, *, scope: str = "model",
            group: str = "all", p: float = math.nan, q: float = math.nan, **extra: Any) -> None:
        self.rows.append({"iteration": iteration, "stage": stage, "metric": metric, "scope": scope,
                          "group": group, "p": p, "q": q, "value": float(value), **extra})

    def extend(self, iteration: int, stage: str, records: Iterable[Mapping[str, Any]]) -> None:
        for rec in records:
            self.add(iteration, stage, rec["metric"], rec["value"], scope=rec.get("scope", "model"),
                     group=rec.get("group", "all"), p=rec.get("p", math.nan), q=rec.get("q", math.nan))

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=None if self.rows else list(RECORD_COLUMNS))
