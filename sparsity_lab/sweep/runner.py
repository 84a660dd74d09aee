"""Running many experiment configs: ``run_many`` over worker processes, ``expand_grid``, sweep files.

``run_many`` deduplicates configs by run id, skips runs the store already holds complete, and
hands the rest to worker processes (``workers_per_device`` per device, forked from a server that has
the package imported: ``worker_start``), each
calling ``sparsity_lab.experiments.run(config, store=..., device=..., progress=False)``. The store's
per-run lock makes concurrent workers safe even when two runs share a parent run (controls,
ASNI-II variants): the second waits, then reuses. One failed run never stops the others.
Jobs are dispatched parents first, then longest first by ``costs.estimate_job_seconds`` (so no GPU idles at
the tail behind one long run), each to the next worker that reports back; a worker keeps the datasets it
loaded (``data.memo``), so only its first run on a dataset reads and copies it.

Seed groups: configs equal but for ``seed`` are handed to one worker as one job and run by
``experiments.seed_group.run_seed_group``, which trains the seeds together with the batched engine,
when ``batch_seeds`` says so: ``"auto"`` (default) follows ``seed_group.should_batch`` (CUDA devices,
no convolutions), ``True`` batches every batchable group (any device), ``False`` never batches.

Running one job lives in ``sweep_workers``, the pool of worker processes in ``sweep_pool``.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
from tqdm.auto import tqdm

from sparsity_lab.store import ResultsStore
from sparsity_lab.sweep.costs import estimate_job_seconds
from sparsity_lab.sweep.job import (
    GroupRunner,
    Runner,
    SeedGroupJob,
    _members,
    _resolve_runner,
    _run_job,
)
from sparsity_lab.sweep.pool import run_pool

log = logging.getLogger("sparsity_lab.sweep.runner")


@dataclasses.dataclass
class SweepOutcome:
    """What happened to one config: "done" (trained now), "reused" (already stored) or "failed"."""

    run_id: str
    config: Any
    status: str
    error: str | None
    seconds: float
    device: str | None = None  # where it ran (None: reused, or never started)


def default_devices() -> list[str]:
    """Every CUDA GPU when there is one, else ``["cpu"]``."""
    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return [f"cuda:{i}" for i in range(n)] or ["cpu"]


def _parents(config: Any) -> list[Any]:
    """Runs that ``config``'s runner starts from (``ExperimentConfig.dependencies``)."""
    return list(config.dependencies())


def _depth(config: Any) -> int:
    parents = _parents(config)
    return 1 + max(map(_depth, parents)) if parents else 0


def _longest_first(jobs: list[Any]) -> list[Any]:
    """``jobs`` parents first (by dependency depth), then, within each depth, by estimated cost, longest first
    (``costs.estimate_job_seconds``; a stable sort, so equal estimates keep their order). Dispatching the long
    jobs first keeps GPUs from idling at the tail of a sweep behind one late long run."""
    return sorted(jobs, key=lambda job: (_depth(_members(job)[0]), -estimate_job_seconds(_members(job))))


def _group_seeds(pending: list[Any], devices: Sequence[str], batch_seeds: bool | str) -> list[Any]:
    """``pending`` with each seed group the policy batches replaced by one ``SeedGroupJob`` (at its first
    member's position); other configs stay single jobs."""
    if batch_seeds is False:
        return pending
    from sparsity_lab.experiments.seed_group import forms_seed_group, seed_free_key, should_batch

    groups: dict[str, list[Any]] = {}
    for config in pending:
        key = seed_free_key(config)
        if key is not None:
            groups.setdefault(key, []).append(config)
    batched = {key for key, members in groups.items()
               if (forms_seed_group(members) if batch_seeds is True
                   else all(should_batch(members, d) for d in devices))}
    jobs: list[Any] = []
    for config in pending:
        key = seed_free_key(config)
        if key not in batched:
            jobs.append(config)
        elif groups[key][0] is config:
            jobs.append(SeedGroupJob(tuple(groups[key])))
    return jobs



def run_many(configs: Iterable[Any], *, devices: Sequence[str] | None = None, workers_per_device: int = 1,
             store: ResultsStore | str | os.PathLike[str] | None = None, progress: bool = True,
             runner: Runner | None = None, batch_seeds: bool | str = "auto",
             group_runner: GroupRunner | None = None) -> list[SweepOutcome]:
    """Run every config (deduplicated by run id) and return one outcome per input config, in input order.

    ``devices`` defaults to every CUDA GPU, else ``["cpu"]``. With one worker in all, runs happen in
    this process; otherwise ``len(devices) * workers_per_device`` spawned workers share the work
    (CPU workers split the machine's cores with ``torch.set_num_threads``). ``runner`` (default
    ``sparsity_lab.experiments.run``; must be importable by name for workers) is injectable for tests.
    ``batch_seeds`` (True, False or "auto", see the module docstring) decides which seed groups run as
    one job through ``group_runner`` (default ``experiments.seed_group.run_seed_group``, same rules as
    ``runner``); their members still get one outcome each (a group's members share its wall time).
    Ctrl-C terminates the workers; runs they finished are already safe in the store.
    """
    configs = list(configs)
    if workers_per_device < 1:
        raise ValueError(f"workers_per_device={workers_per_device!r}: allowed an integer >= 1")
    if not (batch_seeds is True or batch_seeds is False or batch_seeds == "auto"):
        raise ValueError(f"batch_seeds={batch_seeds!r}: allowed True, False or 'auto'")
    devices = list(devices) if devices else default_devices()
    store = store if isinstance(store, ResultsStore) else ResultsStore(store)
    unique: dict[str, Any] = {}
    for config in configs:
        unique.setdefault(config.run_id, config)
    outcomes: dict[str, SweepOutcome] = {}
    pending = []
    for run_id, config in unique.items():
        if store.is_complete(run_id):
            outcomes[run_id] = SweepOutcome(run_id, config, "reused", None, 0.0)
        else:
            pending.append(config)
    # parents first, so workers do not queue behind each other's parent runs; then longest first
    jobs = _longest_first(_group_seeds(pending, devices, batch_seeds))
    slots = [d for d in devices for _ in range(workers_per_device)][: max(1, len(jobs))]
    bar = tqdm(total=len(unique), desc="sweep", unit="run", disable=not progress, initial=len(outcomes))
    try:
        if len(slots) == 1:
            _in_process(jobs, slots[0], store, _resolve_runner(runner), group_runner, outcomes, bar)
        else:
            _in_workers(jobs, slots, str(store.root), runner, group_runner, outcomes, bar)
    finally:
        bar.close()
    failed = [o for o in outcomes.values() if o.status == "failed"]
    for o in failed:
        log.error("run %s failed: %s", o.run_id, o.error)
    if failed:
        log.warning("sweep: %d of %d runs failed", len(failed), len(unique))
    return [dataclasses.replace(outcomes[c.run_id], config=c) for c in configs]


def _record(outcomes: dict[str, SweepOutcome], config: Any, status: str, error: str | None, seconds: float,
            device: str | None, bar: Any) -> None:
    outcomes[config.run_id] = SweepOutcome(config.run_id, config, status, error, seconds, device)
    bar.update(1)
    counts = {s: sum(o.status == s for o in outcomes.values()) for s in ("done", "reused", "failed")}
    bar.set_postfix(counts, refresh=False)


def _in_process(jobs: list[Any], device: str, store: ResultsStore, runner: Runner, group_runner: GroupRunner | None,
                outcomes: dict[str, SweepOutcome], bar: Any) -> None:
    for job in jobs:
        for config, outcome in zip(_members(job), _run_job(job, runner, group_runner, store, device)):
            _record(outcomes, config, *outcome, device, bar)


def _in_workers(jobs: list[Any], slots: list[str], root: str, runner: Runner | None,
                group_runner: GroupRunner | None, outcomes: dict[str, SweepOutcome], bar: Any) -> None:
    run_pool(jobs, slots, root, runner, group_runner,
             lambda config, *outcome: _record(outcomes, config, *outcome, bar))


def expand_grid(base: Mapping[str, Any], grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """The cartesian product of ``grid`` over ``base`` (last grid key varies fastest).

    Dotted keys (``train.epochs``) are merged into nested dicts, so ``{"train": {"lr": 0.1}}`` with
    grid ``{"train.epochs": [1, 2]}`` gives ``{"train": {"lr": 0.1, "epochs": 1}}``, ... .
    """
    for key, values in grid.items():
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
            raise ValueError(f"grid[{key!r}] = {values!r}: allowed a non-empty list of values")
    out = []
    for combo in itertools.product(*grid.values()):
        config = _nested(dict(base))
        for key, value in zip(grid, combo):
            _set_dotted(config, key, value)
        out.append(config)
    return out


def _nested(flat: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in flat.items():
        _set_dotted(out, key, copy.deepcopy(value))
    return out


def _set_dotted(target: dict[str, Any], key: str, value: Any) -> None:
    *outer, last = key.split(".")
    for part in outer:
        target = target.setdefault(part, {})
        if not isinstance(target, dict):
            raise ValueError(f"grid key {key!r}: {part!r} is not a nested group of settings")
    target[last] = value


def sweep_entries(data: Any) -> list[dict[str, Any]]:
    """Config dicts from a parsed sweep file: a list of dicts / blocks, or one ``{"base", "grid", "kind"}`` block."""
    items = data if isinstance(data, list) else [data]
    entries: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise ValueError(f"sweep entry {i} is a {type(item).__name__}: allowed a config dict or "
                             "a {'base': {...}, 'grid': {...}, 'kind': ...} block")
        if "grid" in item or "base" in item:
            unknown = set(item) - {"base", "grid", "kind"}
            if unknown:
                raise ValueError(f"sweep block {i} has unknown keys {sorted(unknown)}: allowed base, grid, kind")
            for part in ("base", "grid"):
                if not isinstance(item.get(part) or {}, dict):
                    raise ValueError(f"sweep block {i}: {part} is a {type(item[part]).__name__} ({item[part]!r}): "
                                     "allowed a mapping of field names to values")
            base = dict(item.get("base") or {})
            if "kind" in item:
                base["kind"] = item["kind"]
            entries.extend(expand_grid(base, item.get("grid") or {}))
        else:
            entries.append(dict(item))
    return entries


def load_sweep_file(path: str | os.PathLike[str], *, validate: bool = True) -> list[Any]:
    """Configs from a YAML or JSON sweep file (see ``sweep_entries``); each is validated unless ``validate=False``.
    Any problem is a one-line ``UserError`` naming the file (and the config, for a bad value)."""
    from sparsity_lab.config.configs import ConfigError, config_from_dict
    from sparsity_lab.sweep.files import SweepFileError, read_sweep_data

    try:
        entries = sweep_entries(read_sweep_data(path))
    except SweepFileError:
        raise
    except (ValueError, TypeError) as err:
        raise SweepFileError(f"sweep file {str(path)!r}: {err}") from None
    configs = []
    for i, entry in enumerate(entries):
        try:
            config = config_from_dict(entry)
            if validate:
                config.validate()
            configs.append(config)
        except ConfigError as err:
            raise ConfigError(f"{path}: config {i} ({entry}): {err}") from None
    return configs
