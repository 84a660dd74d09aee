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
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from sparsity_lab.store import atomic, imported, manifest, verify
from sparsity_lab.store.errors import StoreError
from sparsity_lab.store.manifest import ARTIFACTS, COMPLETE_FILE, CONFIG_FILE, FAILED_FILE, STEPS
from sparsity_lab.store.meta import code_version, json_safe, run_environment, utc_now
from sparsity_lab.store.run_files import ENV_VAR, RunFiles, check_name, file_entry

log = logging.getLogger("sparsity_lab.store")

__all__ = ["ARTIFACTS", "COMPLETE_FILE", "CONFIG_FILE", "ENV_VAR", "FAILED_FILE", "ResultsStore"]


class ResultsStore(RunFiles):
    """One directory per run id with atomic, verified checkpoints. See the module docstring for the layout."""

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
        self._repair_lost_manifest(run_id)
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
        self._update_manifest(run_id, {CONFIG_FILE: file_entry(data)})
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

    @contextmanager
    def lock(self, run_id: str, timeout: float | None = None) -> Iterator[Path]:
        """Hold the run's inter-process lock (re-entrant within this store); yields the run directory.

        A second process blocks, logging "waiting for run <id> held by another process", until the
        first releases; ``timeout`` (seconds) bounds the wait and raises ``filelock.Timeout``.
        """
        self.require_writable()
        with self._locks.hold(check_name("run id", run_id), timeout):
            yield self.run_dir(run_id)

    # ---------------------------------------------------------------- verification and repair
    def completed_steps(self, run_id: str) -> list[int]:
        """The verified contiguous prefix 0..k of stored steps.

        The first step with a missing, truncated, corrupted or unrecorded file, and every later
        step, are removed (with a warning naming the file) so the runner recomputes them; while
        another process holds the run's lock nothing is removed, only the prefix returned.
        """
        run_dir = self.run_dir(run_id)
        with self._locks.exclusive(run_id) as may_repair:
            if may_repair:
                self._repair(run_id)
            valid, problem = self._verifier.scan_steps(run_dir, self._manifest(run_id))
            if problem is not None:
                log.warning("run %s: %s; not reading step %d or later (run locked by another process)",
                            run_id, problem, problem.step)
        return valid

    def check(self, run_id: str) -> verify.RunCheck:
        """Verify everything the run holds (store/verify.py): status "ok" or "damaged" and the first problem."""
        return verify.check_run(self.run_dir(run_id), self._verifier)

    def repair(self, run_id: str) -> list[verify.RunProblem]:
        """Discard what fails verification so the next run of the config recomputes it (needs the lock)."""
        with self._locks.exclusive(run_id) as may_repair:
            if not may_repair:
                raise StoreError(f"run {run_id} is locked by another process; not repairing it now")
            return self._repair(run_id)

    def _repair(self, run_id: str) -> list[verify.RunProblem]:
        """Remove what cannot be trusted (store/verify.py names it); the caller holds the run's lock. Returns the
        problems acted upon (a damaged config.json is reported, not repaired)."""
        run_dir = self.run_dir(run_id)
        for leftover in [*atomic.remove_temporaries(run_dir), *atomic.remove_temporaries(run_dir / STEPS),
                         *atomic.remove_temporaries(run_dir / ARTIFACTS)]:
            log.info("run %s: removed leftover of an interrupted write %s", run_id, leftover.name)
        problems = verify.find_problems(run_dir, self._verifier)
        for p in problems:
            level = logging.INFO if p.benign and p.discard_from is None else logging.WARNING  # work is lost: warn
            log.log(level, "run %s: %s; %s", run_id, p, verify.action(p))
        if any(p.file == manifest.MANIFEST for p in problems):  # nothing verifies: start again from config.json
            (run_dir / COMPLETE_FILE).unlink(missing_ok=True)
            atomic.remove_tree(run_dir / STEPS)
            atomic.remove_tree(run_dir / ARTIFACTS)
            with self._locks.manifest_lock(run_id):
                self._write_manifest(run_id, verify.sound_config_entry(run_dir, self._verifier))
            return problems
        if not problems:
            return []
        for p in problems:
            if p.drop is not None:
                self._update_manifest(run_id, {}, drop=(p.drop,))
                (run_dir / p.drop).unlink(missing_ok=True)
        first = min((p.discard_from for p in problems if p.discard_from is not None), default=None)
        if first is not None:
            self._discard_from(run_id, first)
        (run_dir / COMPLETE_FILE).unlink(missing_ok=True)
        self._update_manifest(run_id, {}, drop=(COMPLETE_FILE,))
        return problems

    def _repair_lost_manifest(self, run_id: str) -> None:
        """Before a run is run again: a manifest.json missing or unreadable while the run holds steps, artifacts
        or COMPLETE is repaired now (the lost manifest logged as the reason, the manifest rebuilt around a sound
        config.json), before the runner writes: a write would otherwise start a manifest without config.json.
        Nothing is done while another process holds the run."""
        run_dir = self.run_dir(run_id)
        if manifest.load_manifest(run_dir)[1] is None:
            return
        holds = (run_dir / COMPLETE_FILE).exists() or any(
            (run_dir / name).is_dir() and any((run_dir / name).iterdir()) for name in (STEPS, ARTIFACTS))
        if holds:
            with self._locks.exclusive(run_id) as may_repair:
                if may_repair:
                    self._repair(run_id)

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
        self._update_manifest(run_id, {COMPLETE_FILE: file_entry(data)})
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

    def reusable_records(self, run_id: str) -> pd.DataFrame:
        """The records of a complete run, returned by ``experiments.run`` as a reused result: ``StoreError``
        for a run imported without some of its records (store/imported.py), which must not pass for a
        complete run of its config."""
        origin = imported.read_imported(self.run_dir(run_id))
        problem = None if origin is None else imported.partial_records_message(self.run_dir(run_id), origin)
        if problem is not None:
            raise StoreError(problem)
        return self.records(run_id)

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
