"""The callable a cluster job runs: one run (or one seed group) into the shared results store.

``RunTask`` is a submitit ``Checkpointable``: when SLURM preempts the job or its time limit nears (SIGUSR2,
``ClusterOptions.signal_delay_s`` before the end), submitit calls ``checkpoint`` and requeues the job with
the returned submission, i.e. the same task with the same arguments. Nothing else needs saving: the
runners resume from the store at the last completed pruning iteration (ASNI: epoch), so the requeued
job retrains only the iteration that was interrupted. The store's per-run lock is released when the
killed process exits (``flock``/``fcntl`` locks die with their process).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import submitit

from sparsity_lab.store import ResultsStore
from sparsity_lab.sweep.job import GroupRunner, Runner, SeedGroupJob, _resolve_runner, _run_job


class RunsFailed(RuntimeError):
    """Raised at the end of a task whose runs failed, so SLURM/submitit record the job as FAILED."""


class RunTask(submitit.helpers.Checkpointable):
    """Run ``configs`` (one config, or the members of one seed group) on this job's device.

    ``runner`` / ``group_runner`` default to ``experiments.run`` / ``seed_group.run_seed_group``; tests
    substitute importable functions (they are pickled by reference into the job).
    """

    def __init__(self, runner: Runner | None = None, group_runner: GroupRunner | None = None) -> None:
        self.runner = runner
        self.group_runner = group_runner

    def __call__(self, configs: Sequence[Any], store_root: str, device: str | None = None) -> list[dict[str, Any]]:
        store = ResultsStore(store_root)
        job = configs[0] if len(configs) == 1 else SeedGroupJob(tuple(configs))
        outcomes = _run_job(job, _resolve_runner(self.runner), self.group_runner, store, device)
        rows = [{"run_id": c.run_id, "status": status, "error": error, "seconds": seconds}
                for c, (status, error, seconds) in zip(configs, outcomes)]
        failed = [r for r in rows if r["status"] == "failed"]
        if failed:
            raise RunsFailed("; ".join(f"run {r['run_id']} failed: {str(r['error']).splitlines()[0]}" for r in failed))
        return rows

    # checkpoint(): submitit.helpers.Checkpointable's, i.e. requeue this task with the same arguments.
