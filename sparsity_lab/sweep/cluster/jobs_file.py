"""One small JSON file per submission: which job runs which runs, and where its logs are.

``<jobs dir>/<submission id>.json`` (jobs dir default ``<results>/.jobs``; the leading dot keeps it out of
the store's run listing) holds the executor, the store root, the ``ClusterOptions`` used and one entry per
job: ``job_id`` (SLURM ``<array id>_<index>``, or the local controller's pid; None until submitted),
``wave`` (0 = runs without parents, 1 = their controls, ...), ``runs`` (run ids), ``configs``
(``config.to_dict()``, so failed runs can be resubmitted without the sweep file), ``stdout``/``stderr``
(log paths) and ``depends_on`` (SLURM job ids the job waits for). ``sparsity-lab jobs`` reads them.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

JOBS_DIR = ".jobs"


def default_jobs_dir(store_root: str | os.PathLike[str]) -> Path:
    return Path(store_root) / JOBS_DIR


def new_submission_id() -> str:
    """Sortable by time, unique across concurrent submitters: ``20260101-120000-1a2b``."""
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)


@dataclasses.dataclass
class JobEntry:
    """One job (one run, or one seed group) of a submission."""

    runs: list[str]
    configs: list[dict[str, Any]]
    wave: int
    job_id: str | None = None
    stdout: str | None = None
    stderr: str | None = None
    depends_on: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class SubmissionRecord:
    """The content of one jobs file."""

    submission: str
    executor: str
    store: str
    folder: str
    options: dict[str, Any]
    batch_seeds: Any
    created: str
    jobs: list[JobEntry]

    def save(self, jobs_dir: str | os.PathLike[str]) -> Path:
        """Write ``<jobs_dir>/<submission>.json`` atomically (readers never see half a file)."""
        path = Path(jobs_dir) / f"{self.submission}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(dataclasses.asdict(self), indent=1), encoding="utf-8")
        os.replace(tmp, path)
        return path


def load_record(path: str | os.PathLike[str]) -> SubmissionRecord:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    data["jobs"] = [JobEntry(**job) for job in data["jobs"]]
    return SubmissionRecord(**data)


def load_records(jobs_dir: str | os.PathLike[str]) -> list[SubmissionRecord]:
    """Every submission in ``jobs_dir``, oldest first (unreadable files are skipped with a warning)."""
    records = []
    for path in sorted(Path(jobs_dir).glob("*.json")):
        try:
            records.append(load_record(path))
        except (OSError, ValueError, TypeError, KeyError) as err:
            print(f"warning: skipping jobs file {path}: {err}")
    return records


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
