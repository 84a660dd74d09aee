"""The per-run ``manifest.json``: sha256 and size of every file the store wrote, and step verification.

A step ``steps/<NNNN>/`` counts as completed only if its ``records.parquet`` is listed in the
manifest and every file of the step exists with the listed size and sha256 (README "Stored
records"). Verification results are cached per (path, size, mtime, inode) so a process
hashes each file once.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sparsity_lab.store.atomic import TMP_PREFIX, file_digest, read_json
from sparsity_lab.store.formats import content_problem

log = logging.getLogger("sparsity_lab.store")

MANIFEST = "manifest.json"
STEPS = "steps"
RECORDS_FILE = "records.parquet"
TENSORS_FILE = "tensors.safetensors"
#: The other files of a run directory (the layout: sparsity_lab/store/results.py).
CONFIG_FILE, COMPLETE_FILE, FAILED_FILE, ARTIFACTS = "config.json", "COMPLETE", "FAILED", "artifacts"
_STEP_RE = re.compile(r"^steps/(\d+)/([^/]+)$")


def step_name(step: int) -> str:
    return f"{step:04d}"


def step_rel(step: int, filename: str) -> str:
    return f"{STEPS}/{step_name(step)}/{filename}"


@dataclass(frozen=True)
class StepProblem:
    """Why step ``step`` (and so every later step) cannot be trusted."""

    step: int
    file: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}: {self.reason}"


def load_manifest(run_dir: Path) -> tuple[dict[str, dict[str, Any]], str | None]:
    """``({relative path: {"sha256", "size", ...}}, None)``, or ``({}, reason)`` when manifest.json is
    missing or unreadable (then no file of the run can be verified)."""
    path = run_dir / MANIFEST
    if not path.exists():
        return {}, "missing"
    try:
        files = read_json(path)["files"]
        if not isinstance(files, dict) or not all(isinstance(e, dict) for e in files.values()):
            raise TypeError("'files' is not a mapping of file entries")
        return files, None
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as err:
        return {}, f"unreadable ({type(err).__name__}: {str(err)[:80]})"


def read_manifest(run_dir: Path) -> dict[str, dict[str, Any]]:
    """``{relative path: {"sha256", "size"}}``; an unreadable manifest counts as empty (and is logged)."""
    files, problem = load_manifest(run_dir)
    if problem is not None and problem != "missing":
        log.warning("run %s: %s %s; treating every step as unverified", run_dir.name, run_dir / MANIFEST, problem)
    return files


def manifest_steps(files: dict[str, Any]) -> dict[int, dict[str, dict[str, Any]]]:
    """Manifest entries grouped by step number: ``{step: {filename: entry}}``."""
    out: dict[int, dict[str, dict[str, Any]]] = {}
    for rel, entry in files.items():
        m = _STEP_RE.match(rel)
        if m:
            out.setdefault(int(m.group(1)), {})[m.group(2)] = entry
    return out


class Verifier:
    """Checks files against manifest entries, hashing each unchanged file at most once per process."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[tuple[int, int, int], str, str | None]] = {}

    def problem(self, path: Path, entry: dict[str, Any] | None) -> str | None:
        """None if ``path`` matches ``entry``; otherwise the reason it does not."""
        if entry is None:
            return "not recorded in manifest.json (interrupted write)"
        try:
            st = path.stat()
        except FileNotFoundError:
            return "missing"
        if st.st_size != entry.get("size"):
            return f"size {st.st_size} bytes, manifest says {entry.get('size')} (truncated or overwritten)"
        key = (st.st_size, st.st_mtime_ns, st.st_ino)
        cached = self._cache.get(str(path))
        if cached is not None and cached[0] == key:
            digest, content = cached[1], cached[2]
        else:
            digest, content = file_digest(path)[0], content_problem(path)
            self._cache[str(path)] = (key, digest, content)
        if digest != entry.get("sha256"):
            return "sha256 differs from manifest.json (corrupted)"
        return content

    def scan_steps(self, run_dir: Path, files: dict[str, Any]) -> tuple[list[int], StepProblem | None]:
        """The verified contiguous prefix 0..k of steps and the first problem after it (if any)."""
        listed = manifest_steps(files)
        steps_dir = run_dir / STEPS
        present = {}
        if steps_dir.is_dir():
            present = {int(d.name): d for d in steps_dir.iterdir()
                       if d.is_dir() and d.name.isdigit() and not d.name.startswith(TMP_PREFIX)}
        valid: list[int] = []
        step = 0
        while step in present or step in listed:
            problem = self._step_problem(run_dir, step, present.get(step), listed.get(step, {}))
            if problem is not None:
                return valid, problem
            valid.append(step)
            step += 1
        later = sorted(s for s in set(present) | set(listed) if s > step)
        if later:
            return valid, StepProblem(step, step_rel(step, ""), f"missing, but later steps {later} exist")
        return valid, None

    def _step_problem(self, run_dir: Path, step: int, directory: Path | None,
                      entries: dict[str, dict[str, Any]]) -> StepProblem | None:
        if directory is None:
            return StepProblem(step, step_rel(step, ""), "directory missing")
        if RECORDS_FILE not in entries:
            return StepProblem(step, step_rel(step, RECORDS_FILE), "not recorded in manifest.json (interrupted write)")
        names = set(entries) | {p.name for p in directory.iterdir()}
        for name in sorted(names):
            reason = self.problem(directory / name, entries.get(name))
            if reason is not None:
                return StepProblem(step, step_rel(step, name), reason)
        return None

    def forget(self, path: Path) -> None:
        self._cache.pop(str(path), None)


def without_steps_from(files: dict[str, Any], first: int) -> dict[str, Any]:
    """The manifest minus the entries of steps >= ``first``."""
    return {rel: e for rel, e in files.items() if not ((m := _STEP_RE.match(rel)) and int(m.group(1)) >= first)}

