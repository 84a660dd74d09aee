"""``ResultsStore``: the content-addressed results store (README "Architecture").

Layout under the root (argument, else ``$SPARSITY_LAB_RESULTS``, else the checkout's ``results/``: ``_roots``)::

    <run_id>/config.json                 {"run_id", "kind", "canonical", "config": to_dict(), "code_version",
                                          "environment" (device, torch, cuda, host), "created"}
    <run_id>/steps/<NNNN>/records.parquet  tidy rows of one pruning iteration (iterative) or epoch (ASNI)
    <run_id>/steps/<NNNN>/tensors.safetensors  masks, optionally weights / optimizer state
    <run_id>/artifacts/<name>.safetensors  e.g. theta_0
    <run_id>/manifest.json               sha256 and size of every file above
    <run_id>/COMPLETE                    {"run_id", "finished", "steps", "summary"}
    <run_id>/imported.json               only in runs imported from a bundle (store/imported.py, store/bundle.py)
    <run_id>/FAILED                      {"run_id", "failed", "reason"}: the run stopped (e.g. training diverged)
    .locks/<run_id>.lock                 the run's inter-process lock (store/locking.py)

Every write is atomic (temp name + fsync + rename); a step whose files do not verify against the
manifest is never read: it and every later step are discarded so the runner recomputes them.
A run marked complete counts as complete only while everything it holds verifies (store/verify.py);
otherwise its status is "damaged" and running its config again repairs it.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from sparsity_lab import _roots
from sparsity_lab.store import atomic, codec, imported, manifest, verify
from sparsity_lab.store.codec import RECORD_COLUMNS
from sparsity_lab.store.errors import StoreError
from sparsity_lab.store.locking import RunLocks
from sparsity_lab.store.manifest import RECORDS_FILE, STEPS, TENSORS_FILE, step_name, step_rel
from sparsity_lab.store.meta import code_version, json_safe, run_environment, utc_now

log = logging.getLogger("sparsity_lab.store")

ENV_VAR = "SPARSITY_LAB_RESULTS"
CONFIG_FILE, COMPLETE_FILE, FAILED_FILE, ARTIFACTS = "config.json", "COMPLETE", "FAILED", "artifacts"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


def _check_name(kind: str, name: str) -> str:
    if not isinstance(name, str) or not _NAME_RE.match(name) or ".." in name:
        raise StoreError(f"invalid {kind} {name!r}: use letters, digits, '_', '-', '.' (not starting with '.')")
    return name


class ResultsStore:
    """One directory per run id with atomic, verified checkpoints. See the module docstring for the layout."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        chosen = root if root is not None else _roots.results_root()
        self.root = Path(chosen).expanduser().absolute()
        self._locks = RunLocks(self.root)
        self._verifier = manifest.Verifier()

    def __repr__(self) -> str:
        return f"ResultsStore({str(self.root)!r})"

    def run_dir(self, run_id: str) -> Path:
        return self.root / _check_name("run id", run_id)

    def require_writable(self) -> None:
        """StoreError "results store <root> is not writable" unless runs can be created under the root."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise StoreError(f"results store {self.root} is not writable ({err.strerror or err})") from None
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise StoreError(f"results store {self.root} is not writable")

    # ---------------------------------------------------------------- config and locking
    def prepare(self, config: Any, device: Any = None) -> Path:
        """Create the run directory and write ``config.json`` (with ``environment``: the ``device`` it trains
        on, torch/CUDA, host; ``meta.run_environment``); an existing one must describe the same config."""
        run_id = config.run_id
        run_dir = self.run_dir(run_id)
        doc = {"run_id": run_id, "kind": config.kind, "canonical": config.canonical(),
               "config": config.to_dict(), "code_version": code_version(), "environment": run_environment(device),
               "created": utc_now()}
        path = run_dir / CONFIG_FILE
        self.require_writable()
        if path.exists() and (damage := verify.config_problem(run_dir, self._manifest(run_id), self._verifier)):
            log.warning("run %s: %s; rewriting it from the config being run", run_id, damage)
            path.unlink()
        if path.exists():
            existing = atomic.read_json(path)
            if existing.get("run_id") != run_id or existing.get("canonical") != doc["canonical"]:
                raise StoreError(f"{path} holds a different config (canonical {existing.get('canonical')!r}); "
                                 f"refusing to store {doc['canonical']!r} there")
            return run_dir
        data = atomic.json_bytes(doc)
        atomic.atomic_write_bytes(path, data)
        self._update_manifest(run_id, {CONFIG_FILE: _entry(data)})
        return run_dir

    def config(self, run_id: str) -> dict[str, Any]:
        """The stored ``config.to_dict()`` (feed it to ``config_from_dict``)."""
        return self.run_info(run_id)["config"]

    def run_info(self, run_id: str) -> dict[str, Any]:
        """The whole ``config.json`` document (config, canonical text, code version, creation time), plus
        ``imported_from`` (the run's ``imported.json``) for a run imported from a bundle."""
        path = self.run_dir(run_id) / CONFIG_FILE
        if not path.exists():
            raise StoreError(f"no run {run_id!r} in {self.root} (no {CONFIG_FILE})")
        try:
            doc = atomic.read_json(path)
        except (ValueError, UnicodeDecodeError) as err:
            raise StoreError(f"run {run_id}: {CONFIG_FILE} is not valid JSON ({type(err).__name__}); "
                             "run its config again to rewrite it") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("config"), dict):
            raise StoreError(f"run {run_id}: {CONFIG_FILE} holds no config; run its config again to rewrite it")
        origin = imported.read_imported(self.run_dir(run_id))
        return doc if origin is None else {**doc, "imported_from": origin}

    def _refuse_if_imported(self, run_id: str) -> None:
        """Imported runs are read-only (store/imported.py)."""
        origin = imported.read_imported(self.run_dir(run_id))
        if origin is not None:
            raise StoreError(imported.read_only_message(self.run_dir(run_id), origin))

    @contextmanager
    def lock(self, run_id: str, timeout: float | None = None) -> Iterator[Path]:
        """Hold the run's inter-process lock (re-entrant within this store); yields the run directory.

        A second process blocks, logging "waiting for run <id> held by another process", until the
        first releases; ``timeout`` (seconds) bounds the wait and raises ``filelock.Timeout``.
        """
        self.require_writable()
        with self._locks.hold(_check_name("run id", run_id), timeout):
            yield self.run_dir(run_id)

    # ---------------------------------------------------------------- manifest
    def _manifest(self, run_id: str) -> dict[str, dict[str, Any]]:
        return manifest.read_manifest(self.run_dir(run_id))

    def _write_manifest(self, run_id: str, files: dict[str, Any]) -> None:
        atomic.atomic_write_json(self.run_dir(run_id) / manifest.MANIFEST, {"format": 1, "files": files})

    def _update_manifest(self, run_id: str, add: Mapping[str, Any], drop_steps_from: int | None = None,
                         drop: tuple[str, ...] = ()) -> None:
        """Read-modify-write of manifest.json under a short-lived lock of its own."""
        with self._locks.manifest_lock(run_id):
            files = self._manifest(run_id)
            if drop_steps_from is not None:
                files = manifest.without_steps_from(files, drop_steps_from)
            for rel in drop:
                files.pop(rel, None)
            files.update(add)
            self._write_manifest(run_id, files)

    # ---------------------------------------------------------------- steps
    def save_step(self, run_id: str, step: int, records: pd.DataFrame,
                  tensors: Mapping[str, torch.Tensor] | None = None) -> Path:
        """Atomically publish ``steps/<NNNN>/`` (records, optional tensors) and record their checksums.

        ``step`` must extend the stored steps (0, 1, 2, ...); re-saving step k discards steps >= k.
        """
        if not isinstance(step, int) or step < 0:
            raise StoreError(f"invalid step {step!r}: an integer >= 0")
        codec.check_records(records)
        run_dir = self.run_dir(run_id)
        self._refuse_if_imported(run_id)
        if not (run_dir / CONFIG_FILE).exists():
            raise StoreError(f"run {run_id} is not prepared: call store.prepare(config) first")
        stored = manifest.manifest_steps(self._manifest(run_id))
        next_step = max(stored) + 1 if stored else 0
        if step > next_step:
            raise StoreError(f"run {run_id}: saving step {step} would leave a gap (stored steps end at {next_step - 1})")
        payload = {RECORDS_FILE: codec.records_to_bytes(records)}
        if tensors:
            payload[TENSORS_FILE] = codec.tensors_to_bytes(tensors)
        tmp = atomic.temp_path(run_dir, f"step-{step_name(step)}")
        tmp.mkdir()
        try:
            for name, data in payload.items():
                atomic.write_bytes_durable(tmp / name, data)
            atomic.fsync_dir(tmp)
            if step < next_step:
                log.warning("run %s: re-saving step %d discards stored steps %d..%d", run_id, step, step, next_step - 1)
                self._discard_from(run_id, step)
            (run_dir / STEPS).mkdir(exist_ok=True)
            final = run_dir / STEPS / step_name(step)
            _publish_dir(tmp, final)
        except BaseException:
            atomic.remove_tree(tmp)
            raise
        self._update_manifest(run_id, {step_rel(step, n): _entry(d) for n, d in payload.items()})
        return final

    def completed_steps(self, run_id: str) -> list[int]:
        """The verified contiguous prefix 0..k of stored steps.

        The first step with a missing, truncated, corrupted or unrecorded file, and every later
        step, are removed (with a warning naming the file) so the runner recomputes them; while
        another process holds the run's lock nothing is removed, only the prefix returned.
        """
        run_dir = self.run_dir(run_id)
        with self._locks.exclusive(run_id) as may_repair:
            if may_repair:
                verify.repair_run(self, run_id)
            valid, problem = self._verifier.scan_steps(run_dir, self._manifest(run_id))
            if problem is not None:
                log.warning("run %s: %s; not reading step %d or later (run locked by another process)",
                            run_id, problem, problem.step)
        return valid

    def check(self, run_id: str) -> verify.RunCheck:
        """Verify everything the run holds (store/verify.py): status "ok" or "damaged" and the first problem."""
        return verify.check_run(self, run_id)

    def repair(self, run_id: str) -> list[verify.RunProblem]:
        """Discard what fails verification so the next run of the config recomputes it (needs the lock)."""
        with self._locks.exclusive(run_id) as may_repair:
            if not may_repair:
                raise StoreError(f"run {run_id} is locked by another process; not repairing it now")
            return verify.repair_run(self, run_id)

    def _discard_from(self, run_id: str, first: int) -> None:
        run_dir = self.run_dir(run_id)
        if (run_dir / STEPS).is_dir():
            for d in (run_dir / STEPS).iterdir():
                if d.name.isdigit() and int(d.name) >= first:
                    atomic.remove_tree(d)
        (run_dir / COMPLETE_FILE).unlink(missing_ok=True)
        self._update_manifest(run_id, {}, drop_steps_from=first, drop=(COMPLETE_FILE,))

    def _verified_bytes(self, run_id: str, rel: str) -> bytes:
        """The bytes of ``rel`` if they match manifest.json, else ``StoreError`` (never read silently)."""
        entry = self._manifest(run_id).get(rel)
        path = self.run_dir(run_id) / rel
        if entry is None:
            raise StoreError(f"run {run_id}: {rel} is not recorded in manifest.json")
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise StoreError(f"run {run_id}: {rel} is missing") from None
        if len(data) != entry["size"] or atomic.sha256_bytes(data) != entry["sha256"]:
            raise StoreError(f"run {run_id}: {rel} does not match manifest.json (corrupted or truncated)")
        return data

    def _verified_tensors(self, run_id: str, rel: str) -> dict[str, torch.Tensor]:
        try:
            return codec.tensors_from_bytes(self._verified_bytes(run_id, rel))
        except StoreError:
            raise
        except Exception as err:  # noqa: BLE001 - safetensors raises SafetensorError and others on bad bytes
            raise StoreError(f"run {run_id}: {rel} is not a readable safetensors file ({err})") from None

    def load_step_tensors(self, run_id: str, step: int) -> dict[str, torch.Tensor]:
        """The tensors saved with ``step`` (empty if none were), verified against the manifest."""
        files = self._manifest(run_id)
        if step_rel(step, RECORDS_FILE) not in files:
            raise StoreError(f"run {run_id}: step {step} is not stored")
        if step_rel(step, TENSORS_FILE) not in files:
            origin = imported.read_imported(self.run_dir(run_id))
            if origin is not None and step_rel(step, TENSORS_FILE) in origin.get("dropped", ()):
                raise StoreError(imported.dropped_message(self.run_dir(run_id), origin, step_rel(step, TENSORS_FILE)))
            return {}
        return self._verified_tensors(run_id, step_rel(step, TENSORS_FILE))

    def records(self, run_id: str) -> pd.DataFrame:
        """All verified steps' records concatenated, with a leading ``run_id`` column."""
        valid, problem = self._verifier.scan_steps(self.run_dir(run_id), self._manifest(run_id))
        if problem is not None:
            log.warning("run %s: %s; records of step %d and later are not read", run_id, problem, problem.step)
        frames = [codec.records_from_bytes(self._verified_bytes(run_id, step_rel(s, RECORDS_FILE)))
                  for s in valid]
        frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(RECORD_COLUMNS))
        frame.insert(0, "run_id", run_id)
        return frame

    # ---------------------------------------------------------------- artifacts
    def save_artifact(self, run_id: str, name: str, tensors: Mapping[str, torch.Tensor], *,
                      rebuildable: bool = False) -> Path:
        """Atomically write ``artifacts/<name>.safetensors`` (e.g. theta_0) and record its checksum.

        The manifest entry also records ``from_step`` (the steps stored so far): if the artifact is later
        damaged, steps from there on are discarded with it, since they were computed from it, unless the
        runner derives it again from the config alone (``rebuildable``, e.g. θ₀ from the seed).
        """
        rel = f"{ARTIFACTS}/{_check_name('artifact name', name)}.safetensors"
        self._refuse_if_imported(run_id)
        data = codec.tensors_to_bytes(tensors)
        atomic.atomic_write_bytes(self.run_dir(run_id) / rel, data)
        stored = manifest.manifest_steps(self._manifest(run_id))
        entry = {**_entry(data), "from_step": max(stored) + 1 if stored else 0}
        if rebuildable:
            entry["rebuildable"] = True
        self._update_manifest(run_id, {rel: entry})
        return self.run_dir(run_id) / rel

    def load_artifact(self, run_id: str, name: str) -> dict[str, torch.Tensor] | None:
        """The artifact's tensors; None if absent or if it fails verification (logged, then recomputed)."""
        rel = f"{ARTIFACTS}/{_check_name('artifact name', name)}.safetensors"
        if not (self.run_dir(run_id) / rel).exists():
            origin = imported.read_imported(self.run_dir(run_id))
            if origin is not None and rel in origin.get("dropped", ()):
                log.warning("%s", imported.dropped_message(self.run_dir(run_id), origin, rel))
            return None
        try:
            return self._verified_tensors(run_id, rel)
        except StoreError as err:
            log.warning("%s; ignoring the artifact so it is recomputed", err)
            return None

    def drop_artifact(self, run_id: str, name: str) -> bool:
        """Remove ``artifacts/<name>.safetensors`` and its manifest entry (manifest first, so a crash in
        between leaves only an unlisted file); False if there was none."""
        rel = f"{ARTIFACTS}/{_check_name('artifact name', name)}.safetensors"
        path = self.run_dir(run_id) / rel
        if not path.exists() and rel not in self._manifest(run_id):
            return False
        self._update_manifest(run_id, {}, drop=(rel,))
        path.unlink(missing_ok=True)
        return True

    # ---------------------------------------------------------------- completion and status
    def mark_complete(self, run_id: str, summary: Mapping[str, Any]) -> None:
        """Write the ``COMPLETE`` marker with a small JSON summary once every step verifies."""
        valid, problem = self._verifier.scan_steps(self.run_dir(run_id), self._manifest(run_id))
        if problem is not None:
            raise StoreError(f"run {run_id}: cannot mark complete, {problem}")
        data = atomic.json_bytes({"run_id": run_id, "finished": utc_now(), "steps": len(valid),
                                  "summary": json_safe(dict(summary))})
        run_dir = self.run_dir(run_id)
        for leftover in [*atomic.remove_temporaries(run_dir), *atomic.remove_temporaries(run_dir / ARTIFACTS)]:
            log.info("run %s: removed leftover of an interrupted write %s", run_id, leftover.name)
        # manifest first: a reader never sees a COMPLETE marker that the manifest does not list yet
        self._update_manifest(run_id, {COMPLETE_FILE: _entry(data)})
        atomic.atomic_write_bytes(run_dir / COMPLETE_FILE, data)
        (run_dir / FAILED_FILE).unlink(missing_ok=True)

    def mark_failed(self, run_id: str, reason: str) -> None:
        """Write the ``FAILED`` marker (e.g. "training diverged at epoch 0, step 3: loss = nan"); the run's
        status becomes "failed" until its config is run again (``clear_failed``) and completes."""
        data = atomic.json_bytes({"run_id": run_id, "failed": utc_now(), "reason": str(reason)})
        atomic.atomic_write_bytes(self.run_dir(run_id) / FAILED_FILE, data)

    def clear_failed(self, run_id: str) -> None:
        (self.run_dir(run_id) / FAILED_FILE).unlink(missing_ok=True)

    def failure(self, run_id: str) -> str | None:
        """The reason in the ``FAILED`` marker, or None if the run is not marked failed."""
        path = self.run_dir(run_id) / FAILED_FILE
        if not path.exists():
            return None
        try:
            return str(atomic.read_json(path).get("reason"))
        except (ValueError, UnicodeDecodeError, AttributeError):
            return "unknown (FAILED marker unreadable)"

    def is_complete(self, run_id: str) -> bool:
        """True if the run is marked complete and everything it holds verifies (hashes cached per process)."""
        return (self.run_dir(run_id) / COMPLETE_FILE).exists() and self.check(run_id).status == "ok"

    def summary(self, run_id: str) -> dict[str, Any] | None:
        """The ``COMPLETE`` document (``steps``, ``finished``, ``summary``), or None if not complete."""
        path = self.run_dir(run_id) / COMPLETE_FILE
        return atomic.read_json(path) if path.exists() else None

    def status(self, run_id: str) -> str:
        """"complete" (marked and verified), "damaged" (a file fails verification: ``check`` names it),
        "running" (lock held now), "failed" (``FAILED`` marker), "partial" (prepared, not complete) or "missing"."""
        run_dir = self.run_dir(run_id)
        if (run_dir / COMPLETE_FILE).exists():
            return "complete" if self.check(run_id).status == "ok" else "damaged"
        if self._locks.held_here(run_id) or self._locks.held_elsewhere(run_id):
            return "running"
        if not (run_dir / CONFIG_FILE).exists() and not (run_dir / manifest.MANIFEST).exists():
            return "missing"
        if self.check(run_id).status == "damaged":
            return "damaged"
        return "failed" if (run_dir / FAILED_FILE).exists() else "partial"

    def run_ids(self) -> list[str]:
        """Ids of every prepared run under the root (a config.json or, if that was lost, a manifest.json), sorted."""
        if not self.root.is_dir():
            return []
        return sorted(d.name for d in self.root.iterdir() if d.is_dir() and not d.name.startswith(".")
                      and ((d / CONFIG_FILE).exists() or (d / manifest.MANIFEST).exists()))

    def list_runs(self) -> pd.DataFrame:
        """One row per run: run_id, kind, status, steps, size_bytes, created and the flattened config fields."""
        from sparsity_lab.store.query import list_runs

        return list_runs(self)


def _entry(data: bytes) -> dict[str, Any]:
    return {"sha256": atomic.sha256_bytes(data), "size": len(data)}


def _publish_dir(tmp: Path, final: Path) -> None:
    """Rename a fully written temp directory into place (the commit point of ``save_step``)."""
    os.replace(tmp, final)
    atomic.fsync_dir(final.parent)

