"""The pool of worker processes behind ``sweep.run_many``: one worker per slot (a device), each with a pipe.

The parent hands out the next job when a worker reports back, so a worker that dies fails only the job it
was on. Workers are forked from a server that has the package imported (``worker_start``), take the
parent's environment and working directory, share the CPU cores (``cpu_threads``) and stay alive for the
whole sweep, so each loads its datasets once (``data/memo.py``).
"""

from __future__ import annotations

import logging
import os
import time
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

import torch

from sparsity_lab.sweep import fork_server as worker_start
from sparsity_lab.sweep.job import (
    GroupRunner,
    Outcome,
    Recorder,
    Runner,
    _error_summary,
    _members,
    _resolve_runner,
    _run_job,
)

log = logging.getLogger("sparsity_lab.sweep.runner")


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
