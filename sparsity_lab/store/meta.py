"""Small metadata helpers for stored runs: code version, timestamps, JSON-safe summaries."""

from __future__ import annotations

import datetime as _dt
import functools
import math
import subprocess
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any


@functools.lru_cache(maxsize=1)
def code_version() -> dict[str, str | None]:
    """The installed package version and, when run from a git checkout, the commit (``git`` None otherwise)."""
    try:
        version = metadata.version("sparsity_lab")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare source tree
        version = "unknown"
    commit = None
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
                             capture_output=True, text=True, timeout=5, check=False)
        if out.returncode == 0:
            commit = out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):  # pragma: no cover - no git on this machine
        pass
    return {"sparsity_lab": version, "git": commit}


def utc_now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def json_safe(value: Any) -> Any:
    """Convert numpy / torch scalars and arrays, tuples and non-finite floats into plain JSON values."""
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return json_safe(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)
