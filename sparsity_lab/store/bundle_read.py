"""Reading and verifying a results bundle (store/bundle.py) of either format version, in one pass.

Version 2 (written since issue 19) holds ``bundle.json``, one ``records.parquet`` with the shipped rows
of every run (store/bundle_records.py) and ``runs/<run_id>/{config.json, COMPLETE, artifacts/...}``.
Version 1 held every step's ``runs/<run_id>/steps/NNNN/records.parquet`` as in the store; it is still
read (bundles already handed out keep importing), export writes version 2 only.

Every member must be listed in bundle.json with the sha256 and size of its bytes: a corrupt, missing or
unlisted member refuses the whole bundle with one line naming it, before anything is written.
"""

from __future__ import annotations

import json
import lzma
import re
import tarfile
import zlib
from pathlib import Path
from typing import Any

from sparsity_lab.store import atomic, bundle_records, manifest
from sparsity_lab.store.errors import StoreError
from sparsity_lab.store.run_files import check_name

BUNDLE_JSON, FORMAT = "bundle.json", "sparsity_lab-bundle"
VERSION, READABLE_VERSIONS = 2, (1, 2)
WRITE_MODES = {".tar": "w", ".tar.gz": "w:gz", ".tgz": "w:gz", ".tar.xz": "w:xz", ".tar.bz2": "w:bz2"}
_FILE_RE = r"config\.json|COMPLETE|artifacts/[A-Za-z0-9][A-Za-z0-9_.\-]*\.safetensors"
#: the run files a member may be, per version (version 1 also carried steps)
_REL_RE = {1: re.compile(rf"^({_FILE_RE}|steps/\d{{4,}}/(records\.parquet|tensors\.safetensors))$"),
           2: re.compile(rf"^({_FILE_RE}|steps/\d{{4,}}/tensors\.safetensors)$")}


def _open(path: Path) -> tarfile.TarFile:
    if not path.is_file():
        raise StoreError(f"bundle {str(path)!r} does not exist (allowed: a file written by `bundle export`)")
    try:
        return tarfile.open(path, "r:*")
    except (tarfile.TarError, OSError, EOFError):
        raise StoreError(f"bundle {path.name}: not a readable tar archive (allowed: {list(WRITE_MODES)})") from None


def bundle_doc(path: Path, member: tarfile.TarInfo | None, data: bytes) -> dict[str, Any]:
    """The bundle.json document (it must be the archive's first member, as export writes it)."""
    if member is None or member.name != BUNDLE_JSON:
        raise StoreError(f"bundle {path.name}: first member is not {BUNDLE_JSON}; not a sparsity_lab bundle")
    try:
        doc = json.loads(data)
    except ValueError:
        doc = None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise StoreError(f"bundle {path.name}: {BUNDLE_JSON} is not a {FORMAT} document")
    if doc.get("version") not in READABLE_VERSIONS:
        raise StoreError(f"bundle {path.name}: {FORMAT} version {doc.get('version')!r} is not readable by this "
                         f"code (it reads versions {list(READABLE_VERSIONS)}); update sparsity_lab, or export the "
                         "runs again with this code's `sparsity-lab bundle export`")
    if not isinstance(doc.get("runs"), dict):
        raise StoreError(f"bundle {path.name}: {BUNDLE_JSON} lists no runs")
    for rid in doc["runs"]:
        check_name("run id", rid)
    return doc


def _check_bytes(path: Path, name: str, entry: Any, data: bytes) -> None:
    if not isinstance(entry, dict) or len(data) != entry.get("size") or atomic.sha256_bytes(data) != entry.get("sha256"):
        raise StoreError(f"bundle {path.name}: member {name} is corrupted "
                         f"(size or sha256 differs from {BUNDLE_JSON}); nothing imported")


def _checked(path: Path, doc: dict[str, Any], member: tarfile.TarInfo, data: bytes) -> tuple[str, str]:
    """(run id, relative path) of a run member listed in bundle.json whose bytes match its checksum;
    ``("", records.parquet)`` for the records table of a version-2 bundle."""
    runs, version = doc["runs"], doc["version"]
    if version >= 2 and member.name == bundle_records.RECORDS_MEMBER and member.isfile():
        _check_bytes(path, member.name, doc.get("records_member"), data)
        return "", member.name
    parts = member.name.split("/", 2)
    if (not member.isfile() or len(parts) != 3 or parts[0] != "runs" or parts[1] not in runs
            or parts[2] not in runs[parts[1]].get("files", {}) or not _REL_RE[version].match(parts[2])):
        raise StoreError(f"bundle {path.name}: member {member.name} is not listed in {BUNDLE_JSON}")
    _check_bytes(path, member.name, runs[parts[1]]["files"][parts[2]], data)
    return parts[1], parts[2]


def read_bundle(path: str | Path) -> tuple[dict[str, Any], dict[str, dict[str, bytes]]]:
    """(bundle.json, ``{run_id: {relative path in the store: bytes}}``), every member verified against
    bundle.json; a version-2 bundle's records come back as the steps' ``records.parquet`` files. Held in
    memory: bundles carry records and a few tensors."""
    path = Path(path)
    doc: dict[str, Any] | None = None
    contents: dict[str, dict[str, bytes]] = {}
    table: bytes | None = None
    with _open(path) as tar:
        try:
            for member in tar:
                data = tar.extractfile(member).read() if member.isfile() else b""  # type: ignore[union-attr]
                if doc is None:
                    doc = bundle_doc(path, member, data)
                    continue
                rid, rel = _checked(path, doc, member, data)
                if rid:
                    contents.setdefault(rid, {})[rel] = data
                else:
                    table = data
        except (tarfile.TarError, EOFError, OSError, zlib.error, lzma.LZMAError) as err:
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise StoreError(f"bundle {path.name}: damaged archive ({reason}); nothing imported") from None
    doc = bundle_doc(path, None, b"") if doc is None else doc
    for rid, run in doc["runs"].items():
        missing = sorted(set(run.get("files", {})) - set(contents.get(rid, {})))
        if missing:
            raise StoreError(f"bundle {path.name}: member runs/{rid}/{missing[0]} is missing; nothing imported")
    if doc["version"] >= 2:
        if table is None:
            raise StoreError(f"bundle {path.name}: member {bundle_records.RECORDS_MEMBER} is missing; nothing imported")
        for rid, steps in bundle_records.unpack(table, doc["runs"], path.name).items():
            for step, data in enumerate(steps):
                contents.setdefault(rid, {})[manifest.step_rel(step, manifest.RECORDS_FILE)] = data
    return doc, contents
