"""Job states from submitit and SLURM, and what they mean for each run.

A job has finished when submitit's result pickle exists (the job wrote "success" with its rows, or "error"
with a traceback), or when the scheduler says it ended without writing one ("lost": killed by the OOM
killer, a node failure, ``scancel``, a local process killed with SIGKILL). SLURM states come from
``squeue`` (jobs the controller still remembers, ``MinJobAge``) and, where accounting is enabled, ``sacct``;
a requeued job (PENDING / REQUEUED / PREEMPTED) has not finished.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from submitit.core.utils import JobPaths, pickle_load

from sparsity_lab.store import ResultsStore
from sparsity_lab.sweep.runner import SweepOutcome

#: SLURM states after which a job runs no more (a job requeued by submitit goes back to PENDING instead).
TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL",
            "DEADLINE", "SPECIAL_EXIT", "REVOKED"}
LOST_GRACE_S = 10.0  # a terminal job gets this long for its result pickle to appear on a shared file system


@dataclasses.dataclass(frozen=True)
class JobResult:
    """How a job ended: kind "success" (value = rows), "error" (value = traceback text) or "lost"."""

    kind: str
    value: Any
    state: str


def result_of(folder: str | os.PathLike[str], job_id: str) -> JobResult | None:
    """The job's result pickle, if written."""
    path = JobPaths(Path(folder), job_id=job_id, task_id=0).result_pickle
    if not path.exists():
        return None
    try:
        kind, value = pickle_load(path)
    except Exception as err:  # noqa: BLE001 - a damaged pickle is reported, not raised
        return JobResult("error", f"unreadable result {path}: {err}", "FAILED")
    return JobResult("success" if kind == "success" else "error", value,
                     "COMPLETED" if kind == "success" else "FAILED")


def slurm_states(job_ids: Iterable[str]) -> dict[str, str]:
    """``{job id: state}`` from squeue (array tasks as ``<array id>_<index>``), completed by sacct if enabled."""
    mains = sorted({str(j).split("_")[0] for j in job_ids if j})
    if not mains:
        return {}
    out: dict[str, str] = {}
    for cmd in (["sacct", "-n", "-P", "-X", "-o", "JobID,State", "-j", ",".join(mains)],
                ["squeue", "-h", "-r", "-t", "all", "-o", "%i|%T", "-j", ",".join(mains)]):
        try:
            text = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True).stdout
        except (OSError, subprocess.SubprocessError):
            continue  # no accounting (sacct), or the jobs aged out of the controller (squeue)
        for line in text.splitlines():
            job, _, state = line.partition("|")
            if job and state and "[" not in job:
                out[job.strip()] = state.split()[0].strip()  # "CANCELLED by 0" -> "CANCELLED"
    return out


def local_state(job_id: str) -> str:
    """A submitit-local job seen from another process: its controller pid alive or not."""
    try:
        os.kill(int(job_id), 0)
    except (ProcessLookupError, ValueError):
        return "ENDED"
    except PermissionError:
        pass
    return "RUNNING"


class Tracker:
    """Decides when the jobs of one submission have finished (see the module docstring)."""

    QUERY_EVERY_S = 15.0  # squeue/sacct at most this often (result files are checked at every poll)

    def __init__(self, local: bool) -> None:
        self.local = local
        self.suspect: dict[str, float] = {}  # job id -> when first seen ended without a result
        self.slurm: dict[str, str] = {}
        self.queried = float("-inf")

    def _slurm(self, jobs: Mapping[int, Any]) -> dict[str, str]:
        if time.monotonic() - self.queried >= self.QUERY_EVERY_S:
            self.slurm, self.queried = slurm_states(str(j.job_id) for j in jobs.values()), time.monotonic()
        return self.slurm

    def finished(self, jobs: Mapping[int, Any]) -> dict[int, JobResult]:
        done: dict[int, JobResult] = {}
        if not jobs:
            return done
        slurm = {} if self.local else self._slurm(jobs)
        for i, job in jobs.items():
            job_id = str(job.job_id)
            result = result_of(job.paths.folder, job_id)
            if result is not None:
                done[i] = result
                continue
            state = ("ENDED" if job.done() else "RUNNING") if self.local else slurm.get(job_id, "UNKNOWN")
            ended = state == "ENDED" or state in TERMINAL or (state == "UNKNOWN" and job_id in self.suspect)
            if not ended:
                self.suspect.pop(job_id, None)
                continue
            first = self.suspect.setdefault(job_id, time.monotonic())
            if self.local or time.monotonic() - first >= LOST_GRACE_S:  # a local exit is final
                done[i] = JobResult("lost", f"job {job_id} ended ({state}) without a result", state)
        return done


def _reason(text: str) -> str:
    """The last non-empty line of a traceback: the error itself."""
    lines = [ln.strip() for ln in str(text).strip().splitlines() if ln.strip()]
    return lines[-1] if lines else str(text)


def run_outcome(config: Any, result: JobResult | None, entry: Any, store: ResultsStore) -> SweepOutcome:
    """What ``result`` means for one run of the job; the store has the last word on completion."""
    if result is not None and result.kind == "success":
        row = next((r for r in result.value if r["run_id"] == config.run_id), None)
        if row is not None:
            return SweepOutcome(config.run_id, config, row["status"], row["error"], row["seconds"])
    if store.is_complete(config.run_id):
        return SweepOutcome(config.run_id, config, "done", None, 0.0)
    why = "job not finished" if result is None else _reason(result.value)
    return SweepOutcome(config.run_id, config, "failed", f"{why} (job {entry.job_id}, log {entry.stderr})", 0.0)
