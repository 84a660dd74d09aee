"""Running many experiment configs: ``run_many`` over worker processes, ``expand_grid``, sweep files.

``run_many`` deduplicates configs by run id, skips runs the store already holds complete, and
hands the rest to worker processes (spawn context, ``workers_per_device`` per device), each
calling ``sparsity_lab.experiments.run(config, store=..., device=..., progress=False)``. The store's
per-run lock makes concurrent workers safe even when two runs share a parent run (controls,
ASNI-II variants): the second waits, then reuses. One failed run never stops the others.

Seed groups (issue #4): configs equal but for ``seed`` are handed to one worker as one job and run by
``experiments.seed_group.run_seed_group``, which trains the seeds together with the batched engine,
when ``batch_seeds`` says so: ``"auto"`` (default) follows ``seed_group.should_batch`` (CUDA devices,
no convolutions), ``True`` batches every batchable group (any device), ``False`` never batches.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import json
import logging
import multiprocessing
import os
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from sparsity_lab.store import ResultsStore

log = logging.getLogger("sparsity_lab.sweep")

Runner = Callable[..., Any]
GroupRunner = Callable[..., list[Any]]
_TRACEBACK_FRAMES = 4


@dataclasses.dataclass
class SweepOutcome:
    """What happened to one config: "done" (trained now), "reused" (already stored) or "failed"."""

    run_id: str
    config: Any
    status: str
    error: str | None
    seconds: float


def default_devices() -> list[str]:
    """Every CUDA GPU when there is one, else ``["cpu"]``."""
    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return [f"cuda:{i}" for i in range(n)] or ["cpu"]


def _parents(config: Any) -> list[Any]:
    """Runs that ``config``'s runner starts first (a control's mask source, an ASNI-II variant's ASNI-I run)."""
    if callable(getattr(config, "dependencies", None)):
        return list(config.dependencies())
    if getattr(config, "is_control", False):
        return [config.control_parent()]
    if getattr(config, "kind", None) == "asni" and getattr(config, "variant", "asni1") not in ("asni1", "dense"):
        return [config.schedule_parent()]
    return []


def _depth(config: Any) -> int:
    parents = _parents(config)
    return 1 + max(map(_depth, parents)) if parents else 0


def _error_summary(err: BaseException) -> str:
    """``Type: message`` and the innermost frames of the traceback."""
    frames = traceback.format_tb(err.__traceback__)[-_TRACEBACK_FRAMES:]
    head = "".join(traceback.format_exception_only(type(err), err)).strip()
    return head + "\n" + "".join(frames).rstrip()


def _run_one(runner: Runner, config: Any, store: ResultsStore | str, device: str) -> tuple[str, str | None, float]:
    """Run one config; any exception becomes a "failed" outcome with a traceback summary."""
    t0 = time.perf_counter()
    try:
        store = store if isinstance(store, ResultsStore) else ResultsStore(store)
        result = runner(config, store=store, device=device, progress=False)
        status = "reused" if getattr(result, "reused", False) else "done"
        return status, None, time.perf_counter() - t0
    except Exception as err:  # noqa: BLE001 - one failed run must not stop the sweep
        log.error("run %s failed on %s:\n%s", config.run_id, device, traceback.format_exc())
        return "failed", _error_summary(err), time.perf_counter() - t0


def _resolve_runner(runner: Runner | None) -> Runner:
    if runner is not None:
        return runner
    from sparsity_lab.experiments import run

    return run


@dataclasses.dataclass(frozen=True)
class SeedGroupJob:
    """Configs equal but for the seed, run as one job by the group runner (one outcome per member)."""

    configs: tuple[Any, ...]


def _members(job: Any) -> list[Any]:
    return list(job.configs) if isinstance(job, SeedGroupJob) else [job]


def _resolve_group_runner(group_runner: GroupRunner | None) -> GroupRunner:
    if group_runner is not None:
        return group_runner
    from sparsity_lab.experiments import seed_group

    return seed_group.run_seed_group


Outcome = tuple[str, str | None, float]


def _run_group(group_runner: GroupRunner, configs: Sequence[Any], store: ResultsStore | str,
               device: str) -> list[Outcome]:
    """Run one seed group; every member gets the group's wall time. If the group runner raises, members it
    completed before the error are "done", the others "failed" with the error."""
    t0 = time.perf_counter()
    store = store if isinstance(store, ResultsStore) else ResultsStore(store)
    try:
        results = group_runner(list(configs), store=store, device=device, progress=False)
        seconds = time.perf_counter() - t0
        return [("reused" if getattr(r, "reused", False) else "done", None, seconds) for r in results]
    except Exception as err:  # noqa: BLE001 - one failed group must not stop the sweep
        log.error("seed group %s failed on %s:\n%s", [c.run_id for c in configs], device, traceback.format_exc())
        error, seconds = _error_summary(err), time.perf_counter() - t0
        return [("done", None, seconds) if store.is_complete(c.run_id) else ("failed", error, seconds)
                for c in configs]


def _run_job(job: Any, runner: Runner, group_runner: GroupRunner | None, store: ResultsStore | str,
             device: str) -> list[Outcome]:
    """One outcome per member of ``job`` (a config or a ``SeedGroupJob``)."""
    if isinstance(job, SeedGroupJob):
        return _run_group(_resolve_group_runner(group_runner), job.configs, store, device)
    return [_run_one(runner, job, store, device)]


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


def _worker(device: str, threads: int | None, root: str, runner: Runner | None, group_runner: GroupRunner | None,
            conn: Connection) -> None:
    """Worker process: announce readiness, then run each (index, job) sent until ``None``, replying per job."""
    try:
        try:
            if threads:
                torch.set_num_threads(threads)
            if device.startswith("cuda"):
                torch.cuda.set_device(device)
            run = _resolve_runner(runner)
        except Exception as err:  # noqa: BLE001 - reported to the parent, which fails the runs left
            conn.send(("fatal", f"worker on {device}: {_error_summary(err)}"))
            return
        conn.send(("ready",))
        while (task := conn.recv()) is not None:
            index, job = task
            conn.send(("end", index, _run_job(job, run, group_runner, root, device)))
    except (KeyboardInterrupt, EOFError, BrokenPipeError):
        pass


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
    pending.sort(key=_depth)  # parents first, so workers do not queue behind each other's parent runs
    jobs = _group_seeds(pending, devices, batch_seeds)
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
            bar: Any) -> None:
    outcomes[config.run_id] = SweepOutcome(config.run_id, config, status, error, seconds)
    bar.update(1)
    counts = {s: sum(o.status == s for o in outcomes.values()) for s in ("done", "reused", "failed")}
    bar.set_postfix(counts, refresh=False)


def _in_process(jobs: list[Any], device: str, store: ResultsStore, runner: Runner, group_runner: GroupRunner | None,
                outcomes: dict[str, SweepOutcome], bar: Any) -> None:
    for job in jobs:
        for config, outcome in zip(_members(job), _run_job(job, runner, group_runner, store, device)):
            _record(outcomes, config, *outcome, bar)


class _Pool:
    """Spawned workers, one pipe each: the parent hands out the next task when a worker reports back,
    so it always knows which run a worker that dies (killed, out of memory) was on."""

    def __init__(self, pending: list[Any], slots: list[str], root: str, runner: Runner | None,
                 group_runner: GroupRunner | None, outcomes: dict[str, SweepOutcome], bar: Any) -> None:
        ctx = multiprocessing.get_context("spawn")
        n_cpu = sum(d == "cpu" for d in slots)
        threads = max(1, (os.cpu_count() or 1) // n_cpu) if n_cpu else None
        self.pending, self.outcomes, self.bar = pending, outcomes, bar
        self.next_task = iter(range(len(pending)))
        self.left = set(range(len(pending)))
        self.procs, self.conns = [], []
        for i, device in enumerate(slots):
            parent, child = ctx.Pipe()
            self.conns.append(parent)
            self.procs.append(ctx.Process(target=_worker, args=(device, threads if device == "cpu" else None, root,
                                                                runner, group_runner, child),
                                          name=f"sparsity_lab-sweep-{i}-{device}"))
        self.assigned: dict[int, tuple[int, float]] = {}  # worker -> (task index, start time)
        self.open = set(range(len(slots)))
        self.fatal: list[str] = []

    def finish(self, index: int, results: list[Outcome]) -> None:
        """Record the outcomes of job ``index``, one per member."""
        if index in self.left:
            self.left.discard(index)
            for config, outcome in zip(_members(self.pending[index]), results):
                _record(self.outcomes, config, *outcome, self.bar)

    def fail(self, index: int, error: str, seconds: float) -> None:
        self.finish(index, [("failed", error, seconds)] * len(_members(self.pending[index])))

    def _message(self, worker: int, message: tuple[Any, ...]) -> None:
        if message[0] == "fatal":
            self.fatal.append(message[1])
            return
        if message[0] == "end":
            self.assigned.pop(worker, None)
            self.finish(*message[1:])
        index = next(self.next_task, None)
        if index is not None:
            self.assigned[worker] = (index, time.perf_counter())
        self.conns[worker].send(None if index is None else (index, self.pending[index]))

    def _close(self, worker: int) -> None:
        """A worker exited: read what it sent last, then fail the run it was on (if any)."""
        conn = self.conns[worker]
        try:
            while conn.poll():
                self._message(worker, conn.recv())
        except (EOFError, OSError):
            pass
        self.open.discard(worker)
        if worker in self.assigned:
            index, started = self.assigned.pop(worker)
            proc = self.procs[worker]
            proc.join(5)
            self.fail(index, f"worker {proc.name} died with exit code {proc.exitcode}", time.perf_counter() - started)

    def run(self) -> None:
        for p in self.procs:
            p.start()
        while self.left and self.open:
            waitables = {self.conns[w]: w for w in self.open} | {self.procs[w].sentinel: w for w in self.open}
            for ready in wait(list(waitables), timeout=1.0):
                worker = waitables[ready]
                if worker not in self.open:
                    continue
                if ready is self.conns[worker]:
                    try:
                        self._message(worker, ready.recv())
                    except (EOFError, OSError):
                        self._close(worker)
                else:
                    self._close(worker)
        reason = "not run: every worker process exited" + "".join(f"; {f}" for f in self.fatal)
        for index in sorted(self.left):
            self.fail(index, reason, 0.0)

    def shutdown(self) -> None:
        for p in self.procs:
            if p.is_alive():
                p.terminate()
        for p in self.procs:
            if p.pid is not None:
                p.join(10)
        for conn in self.conns:
            conn.close()


def _in_workers(jobs: list[Any], slots: list[str], root: str, runner: Runner | None,
                group_runner: GroupRunner | None, outcomes: dict[str, SweepOutcome], bar: Any) -> None:
    pool = _Pool(jobs, slots, root, runner, group_runner, outcomes, bar)
    try:
        pool.run()
    except KeyboardInterrupt:
        log.warning("sweep interrupted: stopping %d workers (finished runs are kept in the store)", len(pool.procs))
        raise
    finally:
        pool.shutdown()


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
            base = dict(item.get("base") or {})
            if "kind" in item:
                base["kind"] = item["kind"]
            entries.extend(expand_grid(base, item.get("grid") or {}))
        else:
            entries.append(dict(item))
    return entries


def load_sweep_file(path: str | os.PathLike[str], *, validate: bool = True) -> list[Any]:
    """Configs from a YAML or JSON sweep file (see ``sweep_entries``); each is validated unless ``validate=False``."""
    import yaml

    from sparsity_lab.config import ConfigError, config_from_dict

    text = Path(path).read_text(encoding="utf-8")
    data = json.loads(text) if str(path).endswith(".json") else yaml.safe_load(text)
    configs = []
    for i, entry in enumerate(sweep_entries(data)):
        try:
            config = config_from_dict(entry)
            if validate:
                config.validate()
            configs.append(config)
        except ConfigError as err:
            raise ConfigError(f"{path}: config {i} ({entry}): {err}") from None
    return configs
