"""Record groups: which stored records a figure reads, so that bundles ship exactly those.

An iterative run made with ``pq_grid=True`` records, besides its own PQ Index pairs, the PQI at every
(p, q) of the grid p = 0.1..1.0 × q = 1.0..2.0 at the global and layer scopes: about 93 % of its rows,
read by one figure (5, the global heat-maps) and by nothing at the layer scope. So records fall into

- ``core``: every row that is not a grid-only PQI row; every figure reads from these;
- ``pq_grid.global``: PQI rows at a (p, q) other than the run's own pairs, scope ``global``;
- ``pq_grid.layer``: the same at scope ``layer`` (no registered figure reads them).

A figure declares the groups it reads beyond ``core`` per run (``figures.registry.Run.records``, like
the tensors it reads). ``report.pipeline.load`` hands a figure only the groups its runs declare, in
every store, so a figure that reads an undeclared group fails (or differs) everywhere, in its own tests
included, not only on an imported bundle; ``bundle export --profile`` ships the union of what the
figures declare (store/bundle.py), so what a figure reads and what the bundle ships are one set.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from sparsity_lab.store.errors import StoreError

CORE = "core"
PQ_GRID_GLOBAL = "pq_grid.global"
PQ_GRID_LAYER = "pq_grid.layer"
#: group name -> what it holds (the CLI and bundle.json name them)
GROUPS = {
    CORE: "every record except grid-only PQI rows",
    PQ_GRID_GLOBAL: "global PQI at the (p, q)-grid pairs other than the run's own",
    PQ_GRID_LAYER: "layer PQI at the (p, q)-grid pairs other than the run's own",
}
_SCOPE_GROUP = {"global": PQ_GRID_GLOBAL, "layer": PQ_GRID_LAYER}


def own_pq_pairs(p: float, q: float) -> tuple[tuple[float, float], ...]:
    """The PQ Index pairs an iterative run records at every scope: (0.5, 1) and its own (p, q).
    ``experiments.iterative`` records exactly these, so this is the one definition of "own"."""
    return tuple(dict.fromkeys([(0.5, 1.0), (float(p), float(q))]))


def check_groups(groups: Iterable[str]) -> tuple[str, ...]:
    """``groups`` validated against :data:`GROUPS` (``StoreError`` naming the allowed ones)."""
    out = tuple(dict.fromkeys(groups))
    unknown = [g for g in out if g not in GROUPS]
    if unknown:
        raise StoreError(f"record group(s) {unknown}: allowed {list(GROUPS)}")
    return out


def _field(config: Any, name: str, default: Any = None) -> Any:
    return config.get(name, default) if isinstance(config, dict) else getattr(config, name, default)


def row_groups(records: pd.DataFrame, config: Any) -> np.ndarray:
    """The group of every row of one run's ``records`` (numpy array of group names, row order kept);
    ``config``: the run's config object or its ``to_dict()``. Runs made without ``pq_grid`` hold
    ``core`` rows only."""
    out = np.full(len(records), CORE, dtype=object)
    if not _field(config, "pq_grid", False) or records.empty:
        return out
    own = own_pq_pairs(_field(config, "p"), _field(config, "q"))
    p, q = records["p"].to_numpy(float), records["q"].to_numpy(float)
    is_own = np.zeros(len(records), dtype=bool)
    for op, oq in own:
        is_own |= np.isclose(p, op, rtol=0, atol=1e-9) & np.isclose(q, oq, rtol=0, atol=1e-9)
    pqi = (records["metric"] == "pqi").to_numpy() & ~is_own
    scope = records["scope"].to_numpy(object)
    for name, group in _SCOPE_GROUP.items():
        out[pqi & (scope == name)] = group
    return out


def keep_mask(records: pd.DataFrame, config: Any, groups: Iterable[str]) -> np.ndarray:
    """Boolean mask of the rows of one run in ``core`` or in ``groups``."""
    wanted = {CORE, *check_groups(groups)}
    return np.isin(row_groups(records, config), list(wanted))


def select(records: pd.DataFrame, declared: dict[str, tuple[Any, Iterable[str]]]) -> pd.DataFrame:
    """The rows of ``records`` (a ``load_results`` frame of several runs) in ``core`` or in the groups
    declared for their run: ``declared`` maps run id -> (config, groups). Row order is kept; a frame
    that loses no row is returned as it is (same object)."""
    if records.empty or "run_id" not in records.columns:
        return records
    keep = np.ones(len(records), dtype=bool)
    for run_id, index in records.groupby("run_id", sort=False).indices.items():
        if run_id in declared:
            config, groups = declared[run_id]
            keep[index] = keep_mask(records.iloc[index], config, groups)
    return records if keep.all() else records[keep].reset_index(drop=True)
