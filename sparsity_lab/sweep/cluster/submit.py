"""``submit_runs(configs, executor=..., options=...)`` and ``wait(submission)``: runs as submitit jobs.

The configs are deduplicated by run id, runs the store holds complete are "reused", and the rest become
jobs: one per run, or one per seed group of a fully connected config when the seeds are batched
(``sweep``'s policy, the job's device being CUDA when ``gpus_per_task > 0``). Jobs are ordered in waves by
parent depth (wave 0: runs without parents; wave 1: controls such as a random ticket, whose LT run is in
wave 0; ASNI-II variants after their ASNI-I run). On SLURM every wave is one job array submitted at once,
wave k depending on wave k-1's arrays (``--dependency=afterany:<ids>``: a control still starts if its
parent failed, and then retries the parent itself under the store's run lock). With ``submitit-local``
(jobs as subprocesses of this machine) a wave starts when the previous one has finished, at most
``array_parallelism`` jobs at a time, topped up by ``wait``. Every submission writes a jobs file
(``jobs_file``) that ``sparsity-lab jobs`` reads.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import submitit
from submitit.core.utils import FailedJobError, FailedSubmissionError

from sparsity_lab.config.configs import ConfigError
from sparsity_lab.store import ResultsStore
from sparsity_lab.sweep.cluster import states
from sparsity_lab.sweep.cluster.executors import make_executor
from sparsity_lab.sweep.cluster.jobs_file import (
    JobEntry,
    SubmissionRecord,
    default_jobs_dir,
    new_submission_id,
    now,
)
from sparsity_lab.sweep.cluster.options import EXECUTORS, ClusterOptions
from sparsity_lab.sweep.cluster.task import RunTask
from sparsity_lab.sweep.job import GroupRunner, Runner, _members
from sparsity_lab.sweep.runner import SweepOutcome, _depth, _group_seeds


class Submission:
    """The jobs of one ``submit_runs`` call: submitted (SLURM: all; local: as slots free up) and tracked."""

    def __init__(self, record: SubmissionRecord, jobs_dir: Path, executor: submitit.Executor,
                 units: list[tuple[JobEntry, list[Any]]], task: RunTask, configs: list[Any],
                 reused: set[str]) -> None:
        self.record, self.jobs_dir, self.executor, self.task = record, jobs_dir, executor, task
        self.units, self.configs, self.reused = units, configs, reused
        self.jobs: dict[int, submitit.Job] = {}
        self.finished: dict[int, states.JobResult] = {}
        self.stopped = False
        self.tracker = states.Tracker(local=record.executor == "submitit-local")
        self.path = record.save(jobs_dir)

    @property
    def is_local(self) -> bool:
        return self.record.executor == "submitit-local"

    def _submit_wave(self, indices: list[int], depends_on: list[str]) -> None:
        if depends_on and not self.is_local:
            self.executor.update_parameters(dependency="afterany:" + ":".join(depends_on))
        with self.executor.batch():
            jobs = [self.executor.submit(self.task, self.units[i][1], self.record.store, None) for i in indices]
        for i, job in zip(indices, jobs):
            entry = self.units[i][0]
            entry.job_id, entry.depends_on = str(job.job_id), depends_on
            entry.stdout, entry.stderr = str(job.paths.stdout), str(job.paths.stderr)
            self.jobs[i] = job
        self.record.save(self.jobs_dir)

    def pump(self) -> None:
        """Submit every job that may go now."""
        waiting = [i for i in range(len(self.units)) if i not in self.jobs]
        if not waiting or self.stopped:
            return
        if not self.is_local:
            for wave in sorted({self.units[i][0].wave for i in waiting}):
                before = {str(j.job_id).split("_")[0] for i, j in self.jobs.items() if self.units[i][0].wave < wave}
                self._submit_wave([i for i in waiting if self.units[i][0].wave == wave], sorted(before))
            return
        wave = min(self.units[i][0].wave for i in waiting)
        if any(self.units[i][0].wave < wave and i not in self.finished for i in self.jobs):
            return
        free = self.record.options["array_parallelism"] - (len(self.jobs) - len(self.finished))
        ready = [i for i in waiting if self.units[i][0].wave == wave][:max(0, free)]
        if ready:
            self._submit_wave(ready, [])

    def poll(self) -> bool:
        """Collect finished jobs, submit what may go; True when every job has finished."""
        open_ = {i: j for i, j in self.jobs.items() if i not in self.finished}
        for i, result in self.tracker.finished(open_).items():
            self.finished[i] = result
        self.pump()
        return len(self.finished) == (len(self.jobs) if self.stopped else len(self.units))

    def cancel(self) -> None:
        """Cancel every submitted job that has not finished (scancel / SIGINT), and submit no more."""
        for i, job in self.jobs.items():
            if i not in self.finished:
                job.cancel(check=False)
        self.stopped = True

    def outcomes(self, store: ResultsStore) -> list[SweepOutcome]:
        """One outcome per input config, in input order (after ``wait``)."""
        by_run: dict[str, SweepOutcome] = {}
        for i, (entry, members) in enumerate(self.units):
            result = self.finished.get(i)
            for config in members:
                by_run[config.run_id] = states.run_outcome(config, result, entry, store)
        for config in self.configs:
            if config.run_id in self.reused:
                by_run.setdefault(config.run_id, SweepOutcome(config.run_id, config, "reused", None, 0.0))
        return [SweepOutcome(by_run[c.run_id].run_id, c, *_fields(by_run[c.run_id])) for c in self.configs]


def _fields(o: SweepOutcome) -> tuple[str, str | None, float]:
    return o.status, o.error, o.seconds


def submit_runs(configs: Iterable[Any], *, executor: str = "slurm", options: ClusterOptions | None = None,
                store: ResultsStore | str | None = None, jobs_dir: str | Path | None = None,
                batch_seeds: bool | str = "auto", runner: Runner | None = None,
                group_runner: GroupRunner | None = None) -> Submission:
    """Submit the runs ``configs`` need that the store lacks; returns the handle ``wait`` takes."""
    options = (options or ClusterOptions()).validate()
    if executor not in EXECUTORS[1:]:
        raise ConfigError(f"executor {executor!r}: allowed one of {list(EXECUTORS[1:])}")
    store = store if isinstance(store, ResultsStore) else ResultsStore(store)
    root = str(Path(store.root).resolve())
    configs = list(configs)
    unique: dict[str, Any] = {}
    for config in configs:
        unique.setdefault(config.run_id, config)
    reused = {rid for rid in unique if store.is_complete(rid)}
    pending = sorted((c for rid, c in unique.items() if rid not in reused), key=_depth)
    device = "cuda" if options.gpus_per_task > 0 else "cpu"
    units = [(JobEntry(runs=[c.run_id for c in _members(job)], configs=[c.to_dict() for c in _members(job)],
                       wave=_depth(_members(job)[0])), _members(job))
             for job in _group_seeds(pending, [device], batch_seeds)]
    submission_id = new_submission_id()
    jobs_dir = Path(jobs_dir) if jobs_dir is not None else default_jobs_dir(root)
    folder = Path(options.log_dir) / submission_id if options.log_dir else jobs_dir / submission_id
    record = SubmissionRecord(submission=submission_id, executor=executor, store=root, folder=str(folder.resolve()),
                              options=options.to_dict(), batch_seeds=batch_seeds, created=now(),
                              jobs=[u[0] for u in units])
    sub = Submission(record, jobs_dir, make_executor(executor, folder, options), units,
                     RunTask(runner, group_runner), configs, reused)
    try:
        sub.pump()
    except (FailedJobError, FailedSubmissionError) as err:  # sbatch said no: bad partition, account, ...
        reason = "; ".join(line.strip() for line in str(err).splitlines() if line.strip())
        if "partition" in reason.lower() and shutil.which("sinfo"):
            names = subprocess.run(["sinfo", "-h", "-o", "%R"], capture_output=True, text=True).stdout.split()
            reason += f" (partitions here: {', '.join(sorted(set(names))) or 'none'})"
        raise ConfigError(f"executor {executor!r}: submission failed: {reason}") from None
    return sub


def wait(submissions: Submission | Sequence[Submission], *, poll_s: float = 1.0,
         timeout_s: float | None = None) -> list[SweepOutcome]:
    """Block until every job has finished (a requeued job has not); the outcomes of all submissions.

    ``timeout_s`` bounds the wait (``TimeoutError``; the jobs keep running, ``sparsity-lab jobs`` follows them).
    """
    subs = [submissions] if isinstance(submissions, Submission) else list(submissions)
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while not all([s.poll() for s in subs]):
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"jobs not finished after {timeout_s} s: " + ", ".join(str(s.path) for s in subs))
        time.sleep(poll_s)
    return [o for s in subs for o in s.outcomes(ResultsStore(s.record.store))]
