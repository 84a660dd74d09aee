"""The files of one run under a results root, each checked against the run's checksummed ``manifest.json``
(the layout is in :mod:`sparsity_lab.store.results`): atomic writes of steps and artifacts, reads that never
return bytes the manifest does not vouch for, and the layout of a run's final weights and masks.

:class:`RunFiles` is the storage half of :class:`~sparsity_lab.store.results.ResultsStore`; the run's life
(config, lock, completion, status, repair) is the other half.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from sparsity_lab import _roots
from sparsity_lab.masks import split_weights_and_masks, weights_and_masks
from sparsity_lab.store import atomic, codec, imported, manifest, verify
from sparsity_lab.store.codec import RECORD_COLUMNS
from sparsity_lab.store.errors import StoreError
from sparsity_lab.store.locking import RunLocks
from sparsity_lab.store.manifest import (
    ARTIFACTS,
    COMPLETE_FILE,
    CONFIG_FILE,
    RECORDS_FILE,
    STEPS,
    TENSORS_FILE,
    step_name,
    step_rel,
)

log = logging.getLogger("sparsity_lab.store")

ENV_VAR = "SPARSITY_LAB_RESULTS"
#: The artifact holding a run's final weights and masks (what figures 9 and 10 and one-shot runs read).
FINAL = "final"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


def check_name(kind: str, name: str) -> str:
    if not isinstance(name, str) or not _NAME_RE.match(name) or ".." in name:
        raise StoreError(f"invalid {kind} {name!r}: use letters, digits, '_', '-', '.' (not starting with '.')")
    return name


class RunFiles:
    """Verified files of the runs under ``root`` (argument, else ``$SPARSITY_LAB_RESULTS``, else the checkout's
    ``results/``: ``_roots.results_root``)."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        chosen = root if root is not None else _roots.results_root()
        self.root = Path(chosen).expanduser().absolute()
        self._locks = RunLocks(self.root)
        self._verifier = manifest.Verifier()

    def __repr__(self) -> str:
        return f"ResultsStore({str(self.root)!r})"

    def run_dir(self, run_id: str) -> Path:
        return self.root / check_name("run id", run_id)

    def require_writable(self) -> None:
        """StoreError "results store <root> is not writable" unless runs can be created under the root."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise StoreError(f"results store {self.root} is not writable ({err.strerror or err})") from None
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise StoreError(f"results store {self.root} is not writable")

    def _refuse_if_imported(self, run_id: str) -> None:
        """Imported runs are read-only (store/imported.py)."""
        origin = imported.read_imported(self.run_dir(run_id))
        if origin is not None:
            raise StoreError(imported.read_only_message(self.run_dir(run_id), origin))

    # ---------------------------------------------------------------- manifest
    def _manifest(self, run_id: str) -> dict[str, dict[str, Any]]:
        return manifest.read_manifest(self.run_dir(run_id))

    def _write_manifest(self, run_id: str, files: dict[str, Any]) -> None:
        atomic.atomic_write_json(self.run_dir(run_id) / manifest.MANIFEST, {"format": 1, "files": files})

    def _update_manifest(self, run_id: str, add: Mapping[str, Any], drop_steps_from: int | None = None,
                         drop: tuple[str, ...] = ()) -> None:
        """Read-modify-write of manifest.json under a short-lived lock of its own."""
        with self._locks.manifest_lock(run_id):
            files, lost = manifest.load_manifest(self.run_dir(run_id))
            if lost is not None:  # a new manifest: with config.json if it is sound (store/verify.py)
                if lost != "missing":
                    log.warning("run %s: %s %s; starting a new one", run_id, manifest.MANIFEST, lost)
                files = verify.sound_config_entry(self.run_dir(run_id), self._verifier)
            if drop_steps_from is not None:
                files = manifest.without_steps_from(files, drop_steps_from)
            for rel in drop:
                files.pop(rel, None)
            files.update(add)
            self._write_manifest(run_id, files)

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
        self._update_manifest(run_id, {step_rel(step, n): file_entry(d) for n, d in payload.items()})
        return final

    def _discard_from(self, run_id: str, first: int) -> None:
        run_dir = self.run_dir(run_id)
        if (run_dir / STEPS).is_dir():
            for d in (run_dir / STEPS).iterdir():
                if d.name.isdigit() and int(d.name) >= first:
                    atomic.remove_tree(d)
        (run_dir / COMPLETE_FILE).unlink(missing_ok=True)
        self._update_manifest(run_id, {}, drop_steps_from=first, drop=(COMPLETE_FILE,))

    def load_step_tensors(self, run_id: str, step: int) -> dict[str, torch.Tensor]:
        """The tensors saved with ``step`` (empty if none were), verified against the manifest."""
        files = self._manifest(run_id)
        if step_rel(step, RECORDS_FILE) not in files:
            raise StoreError(f"run {run_id}: step {step} is not stored")
        if step_rel(step, TENSORS_FILE) not in files:
            # An imported run was trained elsewhere: a step without tensors means a bundle left them out,
            # whether or not its "dropped" list says so (a bundle built from a re-export may not).
            origin = imported.read_imported(self.run_dir(run_id))
            if origin is not None:
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
        rel = f"{ARTIFACTS}/{check_name('artifact name', name)}.safetensors"
        self._refuse_if_imported(run_id)
        data = codec.tensors_to_bytes(tensors)
        atomic.atomic_write_bytes(self.run_dir(run_id) / rel, data)
        stored = manifest.manifest_steps(self._manifest(run_id))
        entry = {**file_entry(data), "from_step": max(stored) + 1 if stored else 0}
        if rebuildable:
            entry["rebuildable"] = True
        self._update_manifest(run_id, {rel: entry})
        return self.run_dir(run_id) / rel

    def load_artifact(self, run_id: str, name: str) -> dict[str, torch.Tensor] | None:
        """The artifact's tensors; None if absent or if it fails verification (logged, then recomputed)."""
        rel = f"{ARTIFACTS}/{check_name('artifact name', name)}.safetensors"
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
        rel = f"{ARTIFACTS}/{check_name('artifact name', name)}.safetensors"
        path = self.run_dir(run_id) / rel
        if not path.exists() and rel not in self._manifest(run_id):
            return False
        self._update_manifest(run_id, {}, drop=(rel,))
        path.unlink(missing_ok=True)
        return True

    def save_final(self, run_id: str, weights: Mapping[str, torch.Tensor], masks: Mapping[str, torch.Tensor]) -> Path:
        """The run's final weights (a state dict) and masks, in the one layout every reader expects."""
        return self.save_artifact(run_id, FINAL, weights_and_masks(weights, masks))

    def load_final(self, run_id: str) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]] | None:
        """(weights, boolean masks) saved by :meth:`save_final`; None if absent or damaged."""
        tensors = self.load_artifact(run_id, FINAL)
        return None if tensors is None else split_weights_and_masks(tensors)


def file_entry(data: bytes) -> dict[str, Any]:
    return {"sha256": atomic.sha256_bytes(data), "size": len(data)}


def _publish_dir(tmp: Path, final: Path) -> None:
    """Rename a fully written temp directory into place (the commit point of ``save_step``)."""
    os.replace(tmp, final)
    atomic.fsync_dir(final.parent)
