"""The ``run``, ``sweep``, ``ls`` and ``show`` commands (parsed by ``cli.main``)."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from collections.abc import Iterator
from typing import Any

import pandas as pd

from sparsity_lab._format import human_bytes
from sparsity_lab.cli.checks import (
    preflight_data,
    preflight_devices,
)
from sparsity_lab.cli.cluster import sweep_on_cluster
from sparsity_lab.cli.flags import BATCH_SEEDS, config_from_flags
from sparsity_lab.engine.divergence import TrainingDiverged
from sparsity_lab.errors import debug_enabled
from sparsity_lab.rules.base import config_field_methods
from sparsity_lab.store import ResultsStore, StoreError, list_runs, varying_columns
from sparsity_lab.store.query import column_name, run_state

#: Config columns ``ls`` always shows when present; any other column that differs between runs is shown too.
KEY_FIELDS = ("dataset", "model", "method", "variant", "config_scope", "config_p", "config_q", "seed")
_RUN_META = ("run_id", "kind", "status", "steps", "size_bytes", "created", "problem")


def cmd_run(args: argparse.Namespace, store: ResultsStore) -> int:
    config = config_from_flags(args.kind, args)
    config.validate()
    preflight_devices([args.device] if args.device else None)
    preflight_data([config.dataset])
    print(f"run {config.run_id} ({config.kind}): {config.canonical()}")
    from sparsity_lab import experiments  # looked up at call time: tests substitute experiments.run

    try:
        result = experiments.run(config, store=store, device=args.device, progress=not args.no_progress)
    except TrainingDiverged as err:  # stored as failed by the runner: one line, exit 1
        print(f"sparsity-lab run: run {config.run_id} failed: {err}; stored as failed (running it again retries it)",
              file=sys.stderr)
        return 1
    print(f"run {result.run_id}: {'reused from' if result.reused else 'stored in'} {store.run_dir(result.run_id)}")
    _print_last_records(result.records, rows=20)
    return 0


def cmd_sweep(args: argparse.Namespace, store: ResultsStore) -> int:
    from sparsity_lab.sweep.runner import load_sweep_file, run_many

    configs = load_sweep_file(args.file)
    unique = {c.run_id: c for c in configs}
    table = pd.DataFrame([{"run_id": rid, "kind": c.kind, "status": store.status(rid), "config": c.canonical()}
                          for rid, c in unique.items()])
    if args.dry_run:
        print(f"{len(configs)} configs, {len(unique)} distinct runs in {args.file} (store: {store.root})")
        if not table.empty:
            width = table["config"].str.len().max()
            print(table.to_string(index=False, formatters={"config": lambda text: f"{text:<{width}}"}))
        return 0
    if args.executor != "local":
        return sweep_on_cluster(configs, args, store)
    devices = [d.strip() for d in args.devices.split(",") if d.strip()] if args.devices else None
    preflight_devices(devices)
    preflight_data([c.dataset for c in configs])
    if any(not store.is_complete(rid) for rid in unique):
        store.require_writable()  # as `run`: a read-only store that must train is one line, exit 2
    with _failures_reported_here(args.debug or debug_enabled()):
        outcomes = run_many(configs, devices=devices, workers_per_device=args.workers_per_device, store=store,
                            progress=not args.no_progress, batch_seeds=BATCH_SEEDS[args.batch_seeds])
    done = pd.DataFrame([{"run_id": o.run_id, "status": o.status, "seconds": round(o.seconds, 1),
                          "error": (o.error or "").split("\n")[0]} for o in outcomes]).drop_duplicates("run_id")
    print(done.to_string(index=False))
    failed = {o.run_id: o for o in outcomes if o.status == "failed"}
    for o in failed.values():
        print(_failure_report(o), file=sys.stderr)
    return 1 if failed else 0


_DIVERGED = "TrainingDiverged: "


def _failure_report(outcome: Any) -> str:
    """One line for a run that failed without a bug (diverged training, a bad input or store: the same line as
    `run` prints); a bug's error keeps its traceback summary."""
    error = outcome.error or ""
    if "\n" in error:
        return f"\n{outcome.run_id} failed:\n{error}"
    if error.startswith(_DIVERGED):
        return (f"sparsity-lab sweep: run {outcome.run_id} failed: {error[len(_DIVERGED):]}; stored as failed "
                "(running it again retries it)")
    return f"sparsity-lab sweep: run {outcome.run_id} failed: {error}"


@contextlib.contextmanager
def _failures_reported_here(debug: bool) -> Iterator[None]:
    """Leave out ``run_many``'s own log lines about failed runs (unless ``debug``): ``cmd_sweep`` reports each
    failure itself, in one line where `run` would."""
    def keep(record: logging.LogRecord) -> bool:
        return debug or record.funcName != "run_many"

    logger = logging.getLogger("sparsity_lab.sweep.runner")
    logger.addFilter(keep)
    try:
        yield
    finally:
        logger.removeFilter(keep)


def key_columns(runs: pd.DataFrame) -> list[str]:
    """``KEY_FIELDS`` present, then every other config column whose value differs between runs."""
    config_cols = [c for c in runs.columns if c not in _RUN_META]
    varying = varying_columns(runs, exclude=_RUN_META)
    return [c for c in KEY_FIELDS if c in config_cols] + [c for c in varying if c not in KEY_FIELDS]


def cmd_ls(args: argparse.Namespace, store: ResultsStore) -> int:
    runs = list_runs(store)
    if args.kind:
        runs = runs[runs["kind"] == args.kind]
    if args.status:
        runs = runs[runs["status"] == args.status]
    if runs.empty:
        print(f"no runs in {store.root}")
        return 0
    table = runs[["run_id", "kind", "status", "steps"]].copy()
    table["size"] = runs["size_bytes"].map(human_bytes)
    table["created"] = runs["created"]
    # a rule's field means nothing on another method's run (an LT run's SAP p/q are defaults it never used)
    method_only = {column_name(f): methods for f, methods in config_field_methods().items()}
    for col in key_columns(runs):
        table[col] = runs[col]
        if col in method_only and "method" in runs.columns:
            table[col] = table[col].where(runs["method"].isin(method_only[col]))
    if runs["problem"].notna().any():  # damaged: the file and what is wrong; failed: the reason
        table["problem"] = runs["problem"]
    print(table.astype(object).fillna("").to_string(index=False))
    return 0


def _resolve_id(store: ResultsStore, prefix: str) -> str:
    ids = store.run_ids()
    if prefix in ids:
        return prefix
    matches = [rid for rid in ids if rid.startswith(prefix)]
    if len(matches) != 1:
        found = f"{len(matches)} runs match: {matches[:5]}" if matches else "none matches"
        raise StoreError(f"run id {prefix!r}: {found} (see `sparsity-lab ls`)")
    return matches[0]


def _print_last_records(records: pd.DataFrame, rows: int) -> None:
    if records.empty:
        print("no records stored yet")
        return
    last = records[records["iteration"] == records["iteration"].max()]
    model = last[last["scope"] == "model"] if (last["scope"] == "model").any() else last
    print(f"last records (iteration {records['iteration'].max()}, {len(last)} rows; showing {min(rows, len(model))}):")
    print(model.drop(columns=["run_id"], errors="ignore").head(rows).to_string(index=False))


def cmd_show(args: argparse.Namespace, store: ResultsStore) -> int:
    run_id = _resolve_id(store, args.run_id)
    status, problem = run_state(store, run_id)
    try:
        info = store.run_info(run_id)
    except StoreError as err:
        print(f"run {run_id}  status {status}  problem {problem or err}")
        return 1
    print(f"run {run_id}  kind {info.get('kind')}  status {status}  created {info.get('created')}")
    if problem:
        print(f"problem {problem}")
    print(f"directory {store.run_dir(run_id)}")
    print(f"canonical {info.get('canonical')}")
    code = info.get("code_version") or {}
    print(f"code sparsity_lab {code.get('sparsity_lab')}, git {code.get('git') or 'unknown'}")
    if info.get("imported_from"):
        origin = info["imported_from"]
        print(f"imported from bundle {origin.get('bundle')} on {origin.get('imported')} (read-only; tensors "
              f"{origin.get('tensors')}, {len(origin.get('dropped', []))} files left out)")
    print("config:")
    print(json.dumps(info.get("config"), indent=2, sort_keys=True))
    summary = store.summary(run_id)
    print("summary:" if summary else "summary: (not complete)")
    if summary:
        print(json.dumps(summary, indent=2, sort_keys=True))
    _print_last_records(store.records(run_id), rows=args.rows)
    return 0
