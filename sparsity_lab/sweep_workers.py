"""The worker side of ``sweep.run_many``: running one job, and the pool of spawned worker processes.

A job is one config or a ``SeedGroupJob`` (configs equal but for the seed, run together by the group
runner, see ``sweep``'s module docstring). ``run_pool`` spawns one worker per slot (a device), each with
a pipe; the parent hands out the next job when a worker reports back, so a worker that dies fails only
the job it was on. Every job yields one ``(status, error, seconds)`` outcome per member config.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
import traceback
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

import torch

from sparsity_lab import worker_start
from sparsity_lab.store import ResultsStore

log = logging.getLogger("sparsity_lab.sweep")  # the sweep's logger: worker errors read as sweep errors

Runner = Callable[..., Any]
GroupRunner = Callable[..., list[Any]]
Recorder = Callable[[Any, str, str | None, float, str | None], None]
_TRACEBACK_FRAMES = 4


def _error_summary(err: BaseException) -> str:
    """``Type: message`` and the innermost frames of the traceback (only the message for a run that
    failed because its training diverged: a result of the config, not a bug)."""
    from sparsity_lab.engine.divergence import TrainingDiverged

    if isinstance(err, TrainingDiverged):
        return f"TrainingDiverged: {err}"
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
        own = getattr(err, "failures", {})  # SeedGroupFailed: each failed member's own reason
        return [("done", None, seconds) if store.is_complete(c.run_id) else
                ("failed", f"TrainingDiverged: {own[c.run_id]}" if c.run_id in own else error, seconds)
                for c in configs]


def _run_job(job: Any, runner: Runner, group_runner: GroupRunner | None, store: ResultsStore | str,
             device: str) -> list[Outcome]:
    """One outcome per member of ``job`` (a config or a ``SeedGroupJob``)."""
    if isinstance(job, SeedGroupJob):
        return _run_group(_resolve_group_runner(group_runner), job.configs, store, device)
    return [_run_one(runner, job, store, device)]


def _worker(device: str, threads: int | None, root: str, runner: Runner | None, group_runner: GroupRunner | None,
            conn: Connection, parent: dict[str, Any] | None = None) -> None:
    """Worker process: take the parent's environment (``worker_start.apply``), announce readiness, then run each
    (index, job) sent until ``None``, replying per job."""
    try:
        try:
            if parent is not None:
                worker_start.apply(parent)
            _thread_lock_for_bars()
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


def cpu_threads(slots: list[str]) -> dict[str, int]:
    """Intra-op CPU threads per worker: CPU workers split the machine's cores; a GPU worker's host-side work
    (pruning ranks, measures, store writes) gets an equal share of them too, so N GPU workers do not start N
    thread pools of every core each."""
    cores = os.cpu_count() or 1
    n_cpu = sum(d == "cpu" for d in slots)
    cpu_share = max(1, cores // n_cpu) if n_cpu else cores
    gpu_share = max(1, cores // len(slots)) if slots else cores
    return {d: cpu_share if d == "cpu" else gpu_share for d in slots}


def _thread_lock_for_bars() -> None:
    """tqdm's default lock is a multiprocessing semaphore; a worker's bars (disabled, but they take the lock)
    would leave one behind per worker ("leaked semaphore objects" at exit). A thread lock is all they need."""
    import threading

    from tqdm import tqdm

    tqdm.set_lock(threading.RLock())


class _Pool:
    """Spawned workers, one pipe each: the parent hands out the next task when a worker reports back,
    so it always knows which run a worker that dies (killed, out of memory) was on."""

    def __init__(self, pending: list[Any], slots: list[str], root: str, runner: Runner | None,
                 group_runner: GroupRunner | None, record: Recorder) -> None:
        ctx = worker_start.context()  # a fork server with the package imported (worker_start.py), else spawn
        parent_state = worker_start.snapshot()
        threads = cpu_threads(slots)
        self.pending, self.record, self.slots = pending, record, slots
        self.next_task = iter(range(len(pending)))
        self.left = set(range(len(pending)))
        self.procs, self.conns = [], []
        for i, device in enumerate(slots):
            parent, child = ctx.Pipe()
            self.conns.append(parent)
            self.procs.append(ctx.Process(target=_worker, args=(device, threads[device], str(Path(root).resolve()),
                                                                runner, group_runner, child, parent_state),
                                          name=f"sparsity_lab-sweep-{i}-{device}"))
        self.assigned: dict[int, tuple[int, float]] = {}  # worker -> (task index, start time)
        self.open = set(range(len(slots)))
        self.fatal: list[str] = []

    def finish(self, index: int, results: list[Outcome], device: str | None) -> None:
        """Record the outcomes of job ``index`` (run on ``device``), one per member."""
        if index in self.left:
            self.left.discard(index)
            for config, outcome in zip(_members(self.pending[index]), results):
                self.record(config, *outcome, device)

    def fail(self, index: int, error: str, seconds: float, device: str | None) -> None:
        self.finish(index, [("failed", error, seconds)] * len(_members(self.pending[index])), device)

    def _message(self, worker: int, message: tuple[Any, ...]) -> None:
        if message[0] == "fatal":
            self.fatal.append(message[1])
            return
        if message[0] == "end":
            self.assigned.pop(worker, None)
            self.finish(*message[1:], self.slots[worker])
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
            self.fail(index, f"worker {proc.name} died with exit code {proc.exitcode}", time.perf_counter() - started,
                      self.slots[worker])

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
            self.fail(index, reason, 0.0, None)

    def shutdown(self, graceful: bool = False) -> None:
        """Stop the workers: ``graceful`` (every job done, each told to stop) waits up to 5 s for them to exit
        on their own, so their finalizers run; then whatever is alive is terminated."""
        deadline = time.monotonic() + (5.0 if graceful else 0.0)
        for p in self.procs:
            if p.pid is not None:
                p.join(max(0.0, deadline - time.monotonic()))
        for p in self.procs:
            if p.is_alive():
                p.terminate()
        for p in self.procs:
            if p.pid is not None:
                p.join(10)
        for conn in self.conns:
            conn.close()


def run_pool(jobs: list[Any], slots: list[str], root: str, runner: Runner | None,
             group_runner: GroupRunner | None, record: Recorder) -> None:
    """Run ``jobs`` over one worker process per slot (worker_start.py), calling ``record(config, status, error, seconds, device)``
    per member as jobs finish; Ctrl-C terminates the workers."""
    pool = _Pool(jobs, slots, root, runner, group_runner, record)
    finished = False
    try:
        pool.run()
        finished = True
    except KeyboardInterrupt:
        log.warning("sweep interrupted: stopping %d workers (finished runs are kept in the store)", len(pool.procs))
        raise
    finally:
        pool.shutdown(graceful=finished)
