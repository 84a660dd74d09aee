"""Results bundles: a portable archive of complete runs, importable into any store.

Format: a tar file (``.tar``, ``.tar.gz`` / ``.tgz``, ``.tar.xz`` or ``.tar.bz2``) holding::

    bundle.json                    {"format": "sparsity_lab-bundle", "version": 1, "created", "code_version",
                                    "tensors", "runs": {run_id: {"kind", "canonical", "code_version",
                                    "files": {relative path: {"sha256", "size"}}, "dropped": [relative paths]}}}
    runs/<run_id>/<relative path>  exactly the files listed, as in the store (config.json, COMPLETE,
                                   steps/NNNN/records.parquet, the tensors the policy keeps: store/bundle_select.py)

Import verifies every member against bundle.json before writing anything (a corrupt, missing or
unlisted member refuses the whole bundle, naming it), then publishes each run directory atomically
with a manifest.json listing exactly the files present and an ``imported.json`` (store/imported.py).
Run ids are unchanged; runs already complete in the store are kept (importing twice is a no-op).
"""

from __future__ import annotations

import io
import json
import logging
import lzma
import os
import re
import tarfile
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from filelock import Timeout

from sparsity_lab.store import atomic
from sparsity_lab.store.bundle_select import carried_files, dropped_files
from sparsity_lab.store.errors import StoreError
from sparsity_lab.store.imported import IMPORTED_FILE
from sparsity_lab.store.manifest import MANIFEST
from sparsity_lab.store.meta import code_version, utc_now
from sparsity_lab.store.results import ResultsStore
from sparsity_lab.store.run_files import check_name

log = logging.getLogger("sparsity_lab.store")

BUNDLE_JSON, FORMAT, VERSION = "bundle.json", "sparsity_lab-bundle", 1
WRITE_MODES = {".tar": "w", ".tar.gz": "w:gz", ".tgz": "w:gz", ".tar.xz": "w:xz", ".tar.bz2": "w:bz2"}
_REL_RE = re.compile(r"^(config\.json|COMPLETE|steps/\d{4,}/(records\.parquet|tensors\.safetensors)"
                     r"|artifacts/[A-Za-z0-9][A-Za-z0-9_.\-]*\.safetensors)$")


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
                  tensors: str = "figures", *, finals: list[str] | None = None, note: str = "") -> dict[str, Any]:
    """Write the bundle of ``run_ids`` (complete runs, see ``bundle_select.select_runs``) to ``out``; return
    its bundle.json document. Every file is checked against the run's manifest while it is read.
    ``finals``: see ``bundle_select.carried_files``; ``note``: where and how the runs were made (shown in
    the captions of figures drawn from the imported runs)."""
    out = Path(out)
    mode = write_mode(out)
    files = carried_files(store, run_ids, tensors, finals)
    runs: dict[str, Any] = {}
    payload: list[tuple[str, bytes]] = []
    for rid in run_ids:
        info = store.run_info(rid)
        for rel, entry in sorted(files[rid].items()):
            data = (store.run_dir(rid) / rel).read_bytes() if (store.run_dir(rid) / rel).exists() else None
            if data is None or len(data) != entry["size"] or atomic.sha256_bytes(data) != entry["sha256"]:
                raise StoreError(f"run {rid}: {rel} is missing or does not match manifest.json; not exporting it")
            payload.append((f"runs/{rid}/{rel}", data))
        runs[rid] = {"kind": info.get("kind"), "canonical": info.get("canonical"),
                     "code_version": info.get("code_version"), "files": files[rid],
                     "dropped": dropped_files(store, rid, files[rid])}
    doc = {"format": FORMAT, "version": VERSION, "created": utc_now(), "code_version": code_version(),
           "tensors": tensors, "note": note, "runs": runs}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = atomic.temp_path(out.parent, out.name)
    try:
        with tarfile.open(tmp, mode) as tar:
            _add(tar, BUNDLE_JSON, atomic.json_bytes(doc))
            for name, data in payload:
                _add(tar, name, data)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return doc


def _open(path: Path) -> tarfile.TarFile:
    if not path.is_file():
        raise StoreError(f"bundle {str(path)!r} does not exist (allowed: a file written by `bundle export`)")
    try:
        return tarfile.open(path, "r:*")
    except (tarfile.TarError, OSError, EOFError):
        raise StoreError(f"bundle {path.name}: not a readable tar archive (allowed: {list(WRITE_MODES)})") from None


def _bundle_doc(path: Path, member: tarfile.TarInfo | None, data: bytes) -> dict[str, Any]:
    """The bundle.json document (it must be the archive's first member, as ``export_bundle`` writes it)."""
    if member is None or member.name != BUNDLE_JSON:
        raise StoreError(f"bundle {path.name}: first member is not {BUNDLE_JSON}; not a sparsity_lab bundle")
    try:
        doc = json.loads(data)
    except ValueError:
        doc = None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or doc.get("version") != VERSION:
        raise StoreError(f"bundle {path.name}: {BUNDLE_JSON} is not {FORMAT} version {VERSION}")
    for rid in doc.get("runs") or {}:
        check_name("run id", rid)
    return doc


def _checked(path: Path, runs: dict[str, Any], member: tarfile.TarInfo, data: bytes) -> tuple[str, str]:
    """(run id, relative path) of a member listed in bundle.json whose bytes match its checksum."""
    parts = member.name.split("/", 2)
    if (not member.isfile() or len(parts) != 3 or parts[0] != "runs" or parts[1] not in runs
            or parts[2] not in runs[parts[1]]["files"] or not _REL_RE.match(parts[2])):
        raise StoreError(f"bundle {path.name}: member {member.name} is not listed in {BUNDLE_JSON}")
    entry = runs[parts[1]]["files"][parts[2]]
    if len(data) != entry.get("size") or atomic.sha256_bytes(data) != entry.get("sha256"):
        raise StoreError(f"bundle {path.name}: member {member.name} is corrupted "
                         f"(size or sha256 differs from {BUNDLE_JSON}); nothing imported")
    return parts[1], parts[2]


def read_bundle(path: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, dict[str, bytes]]]:
    """(bundle.json, ``{run_id: {relative path: bytes}}``), every member verified against bundle.json in one
    pass over the archive (held in memory: bundles carry records and a few tensors)."""
    path = Path(path)
    doc: dict[str, Any] | None = None
    contents: dict[str, dict[str, bytes]] = {}
    with _open(path) as tar:
        try:
            for member in tar:
                data = tar.extractfile(member).read() if member.isfile() else b""  # type: ignore[union-attr]
                if doc is None:
                    doc = _bundle_doc(path, member, data)
                    continue
                rid, rel = _checked(path, doc.get("runs") or {}, member, data)
                contents.setdefault(rid, {})[rel] = data
        except (tarfile.TarError, EOFError, OSError, zlib.error, lzma.LZMAError) as err:
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise StoreError(f"bundle {path.name}: damaged archive ({reason}); nothing imported") from None
    doc = _bundle_doc(path, None, b"") if doc is None else doc
    for rid, run in (doc.get("runs") or {}).items():
        missing = sorted(set(run["files"]) - set(contents.get(rid, {})))
        if missing:
            raise StoreError(f"bundle {path.name}: member runs/{rid}/{missing[0]} is missing; nothing imported")
    return doc, contents


def import_bundle(path: str | os.PathLike[str], store: ResultsStore) -> ImportReport:
    """Import every run of the bundle at ``path`` into ``store`` (see the module docstring)."""
    path = Path(path)
    doc, contents = read_bundle(path)
    origin = {"bundle": path.name, "bundle_sha256": atomic.file_digest(path)[0], "bundle_created": doc.get("created"),
              "bundle_code_version": doc.get("code_version"), "tensors": doc.get("tensors"),
              "note": doc.get("note", "")}
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
                _publish(store, run_dir, contents.get(rid, {}), run,
                         {**origin, "imported": utc_now(), "dropped": run.get("dropped", [])})
                report.imported.append(rid)
        except Timeout:
            log.warning("run %s is being computed by another process; not importing it", rid)
            report.busy.append(rid)
    return report


def _publish(store: ResultsStore, run_dir: Path, files: dict[str, bytes], run: dict[str, Any],
             origin: dict[str, Any]) -> None:
    """Write the run into a temporary directory, then rename it into place (replacing a partial run)."""
    store.root.mkdir(parents=True, exist_ok=True)
    tmp = atomic.temp_path(store.root, f"import-{run_dir.name}")
    try:
        for rel, data in files.items():
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            atomic.write_bytes_durable(tmp / rel, data)
        origin_bytes = atomic.json_bytes(origin)
        atomic.write_bytes_durable(tmp / IMPORTED_FILE, origin_bytes)
        listed = {**run["files"], IMPORTED_FILE: {"sha256": atomic.sha256_bytes(origin_bytes),
                                                   "size": len(origin_bytes)}}
        atomic.write_bytes_durable(tmp / MANIFEST, atomic.json_bytes({"format": 1, "files": listed}))
        if run_dir.exists():
            log.warning("run %s: replacing the partial run in the store by the imported complete one", run_dir.name)
            atomic.remove_tree(run_dir)
        os.replace(tmp, run_dir)
        atomic.fsync_dir(store.root)
    except BaseException:
        atomic.remove_tree(tmp)
        raise
