"""``sparsity-lab jobs``: every submitted run's job state next to the store's view; resubmitting failed runs.

A run's view joins the store (complete = "done" whatever the job says; a held run lock = "running") with
its latest job (the newest jobs file naming the run): PENDING / not yet submitted = "pending", RUNNING =
"running", finished without the run complete = "failed" with the job's error (the last traceback line)
and its log path. ``resubmit_failed`` submits the failed runs alone, with the executor and options of the
submission they failed in.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd

from sparsity_lab.config.configs import config_from_dict
from sparsity_lab.store import ResultsStore
from sparsity_lab.sweep.cluster import states
from sparsity_lab.sweep.cluster.jobs_file import JobEntry, SubmissionRecord, load_records
from sparsity_lab.sweep.cluster.options import ClusterOptions

COLUMNS = ["run_id", "view", "job_state", "store", "job_id", "submission", "reason", "log"]


def latest_entries(jobs_dir: str | os.PathLike[str]) -> dict[str, tuple[SubmissionRecord, JobEntry]]:
    """``{run id: (submission, job entry)}`` of the newest submission naming each run."""
    out: dict[str, tuple[SubmissionRecord, JobEntry]] = {}
    for record in load_records(jobs_dir):
        for entry in record.jobs:
            for run_id in entry.runs:
                out[run_id] = (record, entry)
    return out


def _job_state(record: SubmissionRecord, entry: JobEntry, slurm: dict[str, str]) -> tuple[str, Any]:
    if entry.job_id is None:
        return "NOT_SUBMITTED", None
    result = states.result_of(record.folder, entry.job_id)
    if result is not None:
        return result.state, result
    if record.executor == "submitit-local":
        return states.local_state(entry.job_id), None
    return slurm.get(entry.job_id, "UNKNOWN"), None


def _view(store_status: str, job_state: str, result: Any) -> str:
    if store_status == "complete":
        return "done"
    if store_status == "running" or job_state in ("RUNNING", "COMPLETING"):
        return "running"
    if result is not None or job_state in states.TERMINAL or job_state == "ENDED":
        return "failed"
    return "pending" if job_state in ("NOT_SUBMITTED", "PENDING", "REQUEUED", "PREEMPTED", "CONFIGURING") \
        else "unknown"


def jobs_table(jobs_dir: str | os.PathLike[str], store: ResultsStore) -> pd.DataFrame:
    """One row per run ever submitted from ``jobs_dir`` (see the module docstring for the columns' meaning)."""
    entries = latest_entries(jobs_dir)
    slurm_ids = [e.job_id for r, e in entries.values() if r.executor == "slurm" and e.job_id]
    slurm = states.slurm_states(slurm_ids) if slurm_ids else {}
    rows = []
    for run_id, (record, entry) in entries.items():
        job_state, result = _job_state(record, entry, slurm)
        store_status = store.status(run_id)
        view = _view(store_status, job_state, result)
        reason = ""
        if view == "failed":
            reason = states._reason(result.value) if result is not None and result.kind != "success" else \
                f"job ended ({job_state}) without completing the run"
        rows.append({"run_id": run_id, "view": view, "job_state": job_state, "store": store_status,
                     "job_id": entry.job_id or "", "submission": record.submission, "reason": reason,
                     "log": entry.stderr or ""})
    return pd.DataFrame(rows, columns=COLUMNS)


def resubmit_failed(jobs_dir: str | os.PathLike[str], store: ResultsStore, table: pd.DataFrame | None = None,
                    options: ClusterOptions | None = None) -> list[Any]:
    """Submit the runs whose view is "failed", grouped by the executor they failed on; returns the handles.

    ``options`` (default: the failed submission's own) sets the resources of the new jobs."""
    from sparsity_lab.sweep.cluster.submit import submit_runs

    table = jobs_table(jobs_dir, store) if table is None else table
    failed = set(table.loc[table["view"] == "failed", "run_id"])
    entries = latest_entries(jobs_dir)
    by_submission: dict[str, tuple[SubmissionRecord, list[Any]]] = {}
    for run_id in sorted(failed):
        record, entry = entries[run_id]
        config = config_from_dict(entry.configs[entry.runs.index(run_id)])
        by_submission.setdefault(record.submission, (record, []))[1].append(config)
    handles = []
    for record, configs in by_submission.values():
        opts = options or ClusterOptions(**{**record.options, "setup": tuple(record.options.get("setup", ()))})
        handles.append(submit_runs(configs, executor=record.executor, options=opts, store=store,
                                   jobs_dir=Path(jobs_dir), batch_seeds=record.batch_seeds))
    return handles
