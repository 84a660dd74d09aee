"""Results bundles: a portable archive of complete runs, importable into any store.

Format (version 2): a tar file (``.tar``, ``.tar.gz`` / ``.tgz``, ``.tar.xz`` or ``.tar.bz2``) holding::

    bundle.json                    {"format": "sparsity_lab-bundle", "version": 2, "created", "code_version",
                                    "tensors", "records", "note", "records_member": {"sha256", "size", "rows"},
                                    "runs": {run_id: {"kind", "canonical", "code_version",
                                    "files": {relative path: {"sha256", "size"}}, "dropped": [relative paths],
                                    "steps": [rows per step], "first_columns", "columns", "dropped_records"}}}
    records.parquet                the shipped records of every run and step in one table
                                   (store/bundle_records.py)
    runs/<run_id>/<relative path>  config.json, COMPLETE and the tensors the policy keeps
                                   (store/bundle_select.py), exactly as in the store

Records: every row (``records="all"``), or the ``core`` rows plus the record groups the figures declare
per run (``records`` a mapping; store/record_groups.py): the (p, q)-grid PQI that 93 % of the gpu
profile's rows are is shipped only where figure 5 reads it. Version-1 bundles (each step's
records.parquet as a member) still import (store/bundle_read.py).

Import verifies every member against bundle.json before writing anything (a corrupt, missing or
unlisted member refuses the whole bundle, naming it), then publishes each run directory atomically
with its steps' records.parquet, a manifest.json listing exactly the files present (so ``verify``
passes) and an ``imported.json`` (store/imported.py) naming the files and record groups left out.
Run ids are unchanged; runs already complete in the store are kept (importing twice is a no-op).
"""

from __future__ import annotations

import io
import logging
import os
import tarfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from filelock import Timeout

from sparsity_lab.store import atomic, bundle_records
from sparsity_lab.store.bundle_read import BUNDLE_JSON, FORMAT, VERSION, WRITE_MODES, read_bundle
from sparsity_lab.store.bundle_select import carried_files, dropped_files
from sparsity_lab.store.errors import StoreError
from sparsity_lab.store.imported import IMPORTED_FILE
from sparsity_lab.store.manifest import MANIFEST, STEPS
from sparsity_lab.store.meta import code_version, utc_now
from sparsity_lab.store.record_groups import check_groups
from sparsity_lab.store.results import ResultsStore
from sparsity_lab.store.run_files import file_entry

log = logging.getLogger("sparsity_lab.store")

__all__ = ["BUNDLE_JSON", "FORMAT", "VERSION", "WRITE_MODES", "ImportReport", "export_bundle", "import_bundle",
           "read_bundle", "write_mode"]


@dataclass
class ImportReport:
    """What ``import_bundle`` did with each run of the bundle."""

    imported: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # already complete in the store: left as they are
    busy: list[str] = field(default_factory=list)  # locked by a running process: not touched


def write_mode(path: Path) -> str:
    for suffix, mode in WRITE_MODES.items():
        if path.name.endswith(suffix):
            return mode
    raise StoreError(f"bundle file {path.name!r}: allowed suffixes {list(WRITE_MODES)}")


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, int(time.time())
    tar.addfile(info, io.BytesIO(data))


def export_bundle(store: ResultsStore, out: str | os.PathLike[str], run_ids: list[str],
                  tensors: str = "figures", *, finals: list[str] | None = None,
                  records: Mapping[str, Iterable[str]] | None = None, note: str = "") -> dict[str, Any]:
    """Write the bundle of ``run_ids`` (complete runs, see ``bundle_select.select_runs``) to ``out``; return
    its bundle.json document. Every file is checked against the run's manifest while it is read.
    ``finals``: see ``bundle_select.carried_files``; ``records``: run id -> record groups shipped besides
    ``core`` (a run not in it: ``core`` only; None: every record); ``note``: where and how the runs were
    made (shown in the captions of figures drawn from the imported runs)."""
    out = Path(out)
    mode = write_mode(out)
    keep = None if records is None else {rid: check_groups(groups) for rid, groups in records.items()}
    files = {rid: {rel: e for rel, e in carried.items() if not rel.startswith(f"{STEPS}/") or
                   rel.endswith(".safetensors")} for rid, carried in carried_files(store, run_ids, tensors, finals).items()}
    table, shipped = bundle_records.pack(store, run_ids, keep, compressed=mode != "w")
    runs: dict[str, Any] = {}
    payload: list[tuple[str, bytes]] = []
    for rid in run_ids:
        info = store.run_info(rid)
        for rel, entry in sorted(files[rid].items()):
            data = (store.run_dir(rid) / rel).read_bytes() if (store.run_dir(rid) / rel).exists() else None
            if data is None or len(data) != entry["size"] or atomic.sha256_bytes(data) != entry["sha256"]:
                raise StoreError(f"run {rid}: {rel} is missing or does not match manifest.json; not exporting it")
            payload.append((f"runs/{rid}/{rel}", data))
        carried = [*files[rid], *(f"{STEPS}/{s:04d}/records.parquet" for s in range(len(shipped[rid]["steps"])))]
        runs[rid] = {"kind": info.get("kind"), "canonical": info.get("canonical"),
                     "code_version": info.get("code_version"), "files": files[rid],
                     "dropped": dropped_files(store, rid, carried), **shipped[rid]}
    doc = {"format": FORMAT, "version": VERSION, "created": utc_now(), "code_version": code_version(),
           "tensors": tensors, "records": "all" if keep is None else "figures", "note": note,
           "records_member": {**file_entry(table), "rows": sum(sum(r["steps"]) for r in shipped.values())},
           "runs": runs}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = atomic.temp_path(out.parent, out.name)
    try:
        with tarfile.open(tmp, mode) as tar:
            _add(tar, BUNDLE_JSON, atomic.json_bytes(doc))
            _add(tar, bundle_records.RECORDS_MEMBER, table)
            for name, data in payload:
                _add(tar, name, data)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return doc


def import_bundle(path: str | os.PathLike[str], store: ResultsStore) -> ImportReport:
    """Import every run of the bundle at ``path`` into ``store`` (see the module docstring)."""
    path = Path(path)
    doc, contents = read_bundle(path)
    origin = {"bundle": path.name, "bundle_sha256": atomic.file_digest(path)[0], "bundle_created": doc.get("created"),
              "bundle_code_version": doc.get("code_version"), "tensors": doc.get("tensors"),
              "records": doc.get("records", "all"), "note": doc.get("note", "")}
    report = ImportReport()
    for rid, run in sorted(doc["runs"].items()):
        run_dir = store.run_dir(rid)
        if store.is_complete(rid):
            report.kept.append(rid)
            continue
        try:
            with store.lock(rid, timeout=0):
                if store.is_complete(rid):
                    report.kept.append(rid)
                    continue
                _publish(store, run_dir, contents.get(rid, {}),
                         {**origin, "imported": utc_now(), "dropped": run.get("dropped", []),
                          "dropped_records": run.get("dropped_records", {})})
                report.imported.append(rid)
        except Timeout:
            log.warning("run %s is being computed by another process; not importing it", rid)
            report.busy.append(rid)
    return report


def _publish(store: ResultsStore, run_dir: Path, files: dict[str, bytes], origin: dict[str, Any]) -> None:
    """Write the run into a temporary directory, then rename it into place (replacing a partial run); its
    manifest lists the checksums of the bytes written (verified members, and the steps' records cut from a
    version-2 bundle's table)."""
    store.root.mkdir(parents=True, exist_ok=True)
    tmp = atomic.temp_path(store.root, f"import-{run_dir.name}")
    try:
        for rel, data in files.items():
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            atomic.write_bytes_durable(tmp / rel, data)
        origin_bytes = atomic.json_bytes(origin)
        atomic.write_bytes_durable(tmp / IMPORTED_FILE, origin_bytes)
        listed = {rel: file_entry(data) for rel, data in sorted(files.items())}
        listed[IMPORTED_FILE] = file_entry(origin_bytes)
        atomic.write_bytes_durable(tmp / MANIFEST, atomic.json_bytes({"format": 1, "files": listed}))
        if run_dir.exists():
            log.warning("run %s: replacing the partial run in the store by the imported complete one", run_dir.name)
            atomic.remove_tree(run_dir)
        os.replace(tmp, run_dir)
        atomic.fsync_dir(store.root)
    except BaseException:
        atomic.remove_tree(tmp)
        raise
