"""Reading many runs at once: ``list_runs`` and ``load_results`` (what notebooks call).

Config fields become columns, nested settings flattened with ``_`` (``train.epochs`` ->
``train_epochs``). A config field whose name is also a records column (``scope``, ``p``, ``q``:
the pruning scope and SAP exponents, versus the measurement scope and PQI exponents of a row) is
renamed ``config_<name>``; filters use the plain config name (``p=0.5`` selects runs pruned with
p = 0.5). Only JSON, parquet and safetensors are read: nothing is unpickled.

Damaged runs (a file fails verification, store/verify.py; e.g. a truncated records.parquet in a run
marked complete, or a garbage config.json) are listed by ``list_runs`` with status "damaged" and the
file in ``problem``; ``load_results`` leaves them out with a warning naming the run and the file, so
it never returns a partial trajectory of a run marked complete. Failed runs (training diverged) are
left out unless ``include_failed=True``.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from sparsity_lab.store import manifest
from sparsity_lab.store.codec import RECORD_COLUMNS
from sparsity_lab.store.errors import StoreError
from sparsity_lab.store.results import ResultsStore

log = logging.getLogger("sparsity_lab.store")

CONFIG_PREFIX = "config_"
RUN_COLUMNS = ("run_id", "kind", "status", "steps", "size_bytes", "created", "problem")
_RESERVED = frozenset(RECORD_COLUMNS) | frozenset(RUN_COLUMNS)


def flatten_config(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"train": {"epochs": 3}}`` -> ``{"train_epochs": 3}``; lists become (hashable) tuples."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten_config(value, prefix=f"{name}_"))
        else:
            out[name] = _hashable(value)
    return out


def column_name(field: str) -> str:
    """The column a flattened config field gets (``config_<field>`` if it clashes with a records/run column)."""
    return f"{CONFIG_PREFIX}{field}" if field in _RESERVED and field != "kind" else field


def _hashable(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return tuple(_hashable(v) for v in value)
    return value


def _normalised(config: dict[str, Any]) -> dict[str, Any]:
    """The stored config re-read through ``config_from_dict`` so fields added since get their defaults."""
    try:
        from sparsity_lab.config.configs import config_from_dict

        return config_from_dict(config).to_dict()
    except Exception as err:  # noqa: BLE001 - any failure: fall back to the stored dict as written
        log.debug("stored config not re-read through config_from_dict (%s); using it as stored", err)
        return config


def _as_set(value: Any) -> set[Any] | None:
    if value is None:
        return None
    return {value} if isinstance(value, str) else set(value)


def _equal(have: Any, want: Any) -> bool:
    if isinstance(want, list):
        want = _hashable(want)
    if isinstance(have, float) or isinstance(want, float):
        try:
            return math.isclose(float(have), float(want), rel_tol=1e-9, abs_tol=1e-12)
        except (TypeError, ValueError):
            return False
    return bool(have == want)


def _matches(flat: dict[str, Any], key: str, want: Any) -> bool:
    if key not in flat:
        return False
    have = flat[key]
    many = isinstance(want, (list, set, frozenset)) or (isinstance(want, tuple) and not isinstance(have, tuple))
    return any(_equal(have, w) for w in (want if many else [want]))


def _filter_key(key: str) -> str:
    key = key.replace(".", "_")
    if key.startswith(CONFIG_PREFIX) and key[len(CONFIG_PREFIX):] in _RESERVED:
        key = key[len(CONFIG_PREFIX):]
    return key


def _store(store: ResultsStore | str | os.PathLike[str] | None) -> ResultsStore:
    return store if isinstance(store, ResultsStore) else ResultsStore(store)


def _dir_size(path: Path) -> int:
    total = 0
    for dirpath, _, filenames in os.walk(path):
        for name in filenames:
            try:
                total += os.stat(os.path.join(dirpath, name)).st_size
            except FileNotFoundError:  # pragma: no cover - removed while walking
                pass
    return total


def _stored_steps(store: ResultsStore, run_id: str) -> int:
    """Steps listed in the manifest whose directory exists (cheap; ``completed_steps`` verifies hashes)."""
    run_dir = store.run_dir(run_id)
    listed = manifest.manifest_steps(manifest.read_manifest(run_dir))
    n = 0
    while n in listed and (run_dir / manifest.STEPS / manifest.step_name(n)).is_dir():
        n += 1
    return n


def varying_columns(runs: pd.DataFrame, exclude: Iterable[str] = ()) -> list[str]:
    """Columns of ``runs`` (one row per run) whose value differs between rows, ``exclude`` left out
    (NaN counts as a value)."""
    skip = set(exclude)
    return [c for c in runs.columns if c not in skip and runs[c].astype(str).nunique(dropna=False) > 1]


def run_state(store: ResultsStore, run_id: str) -> tuple[str, str | None]:
    """(status, problem): the file and reason of a damaged run, the reason of a failed one, else None."""
    status = store.status(run_id)
    if status == "damaged":
        return status, str(store.check(run_id).problem)
    if status == "failed":
        return status, store.failure(run_id)
    return status, None


def list_runs(store: ResultsStore | str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """One row per stored run: run_id, kind, status, steps, size_bytes, created, problem (what is damaged,
    or why the run failed; None otherwise), then the config fields."""
    store = _store(store)
    rows = []
    for run_id in store.run_ids():
        status, problem = run_state(store, run_id)
        try:
            info = store.run_info(run_id)
        except StoreError:
            info = {}
        row: dict[str, Any] = {"run_id": run_id, "kind": info.get("kind"), "status": status,
                               "steps": _stored_steps(store, run_id), "size_bytes": _dir_size(store.run_dir(run_id)),
                               "created": info.get("created"), "problem": problem}
        for key, value in flatten_config(_normalised(info.get("config", {}))).items():
            row.setdefault(column_name(key), value)
        rows.append(row)
    return pd.DataFrame(rows, columns=None if rows else list(RUN_COLUMNS))


def load_results(*, store: ResultsStore | str | os.PathLike[str] | None = None, kind: str | Iterable[str] | None = None,
                 status: str | Iterable[str] | None = "complete", include_partial: bool = False,
                 include_failed: bool = False, **filters: Any) -> pd.DataFrame:
    """The tidy records of every run whose config matches ``filters``, with config fields as columns.

    ``filters`` map config field names (dotted ``train.epochs`` via ``**{"train.epochs": 3}`` or
    ``train_epochs=3``), or ``run_id``, to a value or a list of allowed values. ``status`` (default "complete")
    selects runs by status (None: any but damaged and failed); ``include_partial`` adds partial and running
    runs, whose verified steps are returned; ``include_failed`` (or ``status="failed"``) adds failed runs
    (training diverged: their records stop before the divergence). Damaged runs are never returned: each is skipped with a warning
    naming the run and the file (``sparsity-lab verify``; running the config again repairs it). A filter
    naming a field no stored run has is an error.
    """
    store = _store(store)
    kinds, statuses = _as_set(kind), _as_set(status)
    if include_partial and statuses is not None:
        statuses |= {"partial", "running"}
    if include_failed and statuses is not None:
        statuses |= {"failed"}
    wanted = {_filter_key(k): v for k, v in filters.items()}
    frames, configs, known = [], [], set()
    for run_id in store.run_ids():
        try:  # the config first (cheap): only runs that match are verified and read
            info: dict[str, Any] | None = store.run_info(run_id)
        except StoreError:
            info = None  # a damaged config.json: run_state names it below
        if info is not None:
            if kinds is not None and info.get("kind") not in kinds:
                continue
            flat = flatten_config(_normalised(info.get("config", {})))
            known |= flat.keys() | {"run_id"}
            if not all(_matches({**flat, "run_id": run_id}, k, v) for k, v in wanted.items()):
                continue
        state, problem = run_state(store, run_id)
        if state == "damaged" or info is None:
            log.warning("load_results: run %s left out, it is damaged (%s); run its config again to recompute "
                        "what was lost (or see `sparsity-lab verify`)", run_id, problem)
            continue
        if state == "failed" and not include_failed and (statuses is None or "failed" not in statuses):
            continue
        if statuses is not None and state not in statuses:
            continue
        frames.append(store.records(run_id))
        configs.append({"run_id": run_id, "kind": info.get("kind"),
                        **{column_name(k): v for k, v in flat.items() if k not in ("kind", "run_id")}})
    unknown = sorted(k for k in wanted if k not in known)
    if unknown and known:
        raise ValueError(f"load_results: no stored run has the config field(s) {unknown}; known fields: {sorted(known)}")
    if not frames:
        return pd.DataFrame(columns=["run_id", *RECORD_COLUMNS, "kind"])
    # config fields joined once per run (a merge on run_id), not broadcast into every run's frame
    return pd.concat(frames, ignore_index=True).merge(pd.DataFrame(configs), on="run_id", how="left", sort=False)


def load_tensors(run_id: str, name: str = "final", *,
                 store: ResultsStore | str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The named tensors (an artifact such as ``"final"``: ``model.*`` weights and ``mask.*``) of one run,
    checksum-verified; the sibling of :func:`load_results` for figures that need weights."""
    tensors = _store(store).load_artifact(run_id, name)
    if tensors is None:
        raise ValueError(f"run {run_id} has no stored tensors {name!r}")
    return tensors
