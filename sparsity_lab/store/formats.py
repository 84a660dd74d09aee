"""Cheap structural checks of the files the store writes (README "Reliability").

A checksum proves that a file is the one recorded in manifest.json, not that it can be read: a file
replaced together with its manifest entry (or written by a buggy tool) may match and still not be
safetensors, parquet or JSON. ``content_problem`` reads only a file's header and footer (no tensor
data, no pickle: nothing is executed), so verifying a whole store stays I/O-bound on the hashing.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

#: safetensors' own limit on the JSON header (safetensors refuses larger headers: "header too large").
_MAX_SAFETENSORS_HEADER = 100_000_000
_PARQUET_MAGIC = b"PAR1"


def safetensors_problem(path: Path) -> str | None:
    """Why ``path`` is not a well-formed safetensors file (header length, JSON header, data offsets), or None."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            return "not a safetensors file (shorter than its 8-byte header length)"
        (n,) = struct.unpack("<Q", head)
        if n > min(size - 8, _MAX_SAFETENSORS_HEADER):
            return f"not a safetensors file (header length {n} exceeds the file of {size} bytes)"
        raw = fh.read(n)
    try:
        header = json.loads(raw.decode("utf-8"))
        if not isinstance(header, dict):
            raise ValueError("header is not a JSON object")
        ends = [0]
        for name, spec in header.items():
            if name == "__metadata__":
                continue
            begin, end = spec["data_offsets"]
            if not 0 <= begin <= end:
                raise ValueError(f"tensor {name!r} has data offsets {begin}..{end}")
            ends.append(int(end))
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as err:
        return f"not a safetensors file (bad header: {str(err)[:80]})"
    if max(ends) != size - 8 - n:
        return f"not a safetensors file (tensor data ends at {max(ends)}, the file holds {size - 8 - n} bytes)"
    return None


def parquet_problem(path: Path) -> str | None:
    """Why ``path`` is not a readable parquet file (magic bytes, footer metadata), or None."""
    import pyarrow.parquet as pq

    with open(path, "rb") as fh:
        start = fh.read(4)
        fh.seek(max(0, path.stat().st_size - 4))
        end = fh.read(4)
    if start != _PARQUET_MAGIC or end != _PARQUET_MAGIC:
        return "not a parquet file (no PAR1 magic bytes)"
    try:
        pq.read_metadata(path)
    except Exception as err:  # noqa: BLE001 - pyarrow raises several types for broken footers
        return f"not a parquet file ({type(err).__name__}: {str(err)[:80]})"
    return None


def json_problem(path: Path) -> str | None:
    """Why ``path`` is not UTF-8 JSON, or None."""
    try:
        json.loads(path.read_bytes().decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        return f"not valid JSON ({type(err).__name__}: {str(err)[:80]})"
    return None


_CHECKS = {".safetensors": safetensors_problem, ".parquet": parquet_problem, ".json": json_problem}


def content_problem(path: Path) -> str | None:
    """The structural problem of a store file judged by its suffix (None: fine, or a kind not checked)."""
    check = _CHECKS.get(path.suffix)
    return None if check is None else check(path)
