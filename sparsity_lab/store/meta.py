"""Small metadata helpers for stored runs: code version, the machine a run trained on, timestamps, JSON-safe
summaries (README "Stored records": a run's ``config.json``)."""

from __future__ import annotations

import datetime as _dt
import functools
import math
import os
import platform
import socket
import subprocess
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any


@functools.lru_cache(maxsize=1)
def code_version() -> dict[str, Any]:
    """The code that made a result: the installed package version, the git commit when run from a checkout
    (None otherwise) and whether tracked files differed from it (``dirty``; None without git). Stored in every
    run's ``config.json`` and bundle; :func:`code_version_text` is its one-line form for captions."""
    try:
        version = metadata.version("sparsity_lab")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare source tree
        version = "unknown"
    commit, dirty = None, None
    src = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=src, capture_output=True, text=True, timeout=5,
                             check=False)
        if out.returncode == 0 and out.stdout.strip():
            commit = out.stdout.strip()
            status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=src,
                                    capture_output=True, text=True, timeout=10, check=False)
            dirty = bool(status.stdout.strip()) if status.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):  # pragma: no cover - no git on this machine
        pass
    return {"sparsity_lab": version, "git": commit, "dirty": dirty}


def code_version_text(version: Mapping[str, Any] | None = None) -> str:
    """``"<version>+<short sha>"`` with ``.dirty`` when tracked files had changed, ``"<version>+nogit"``
    outside a checkout; of ``version`` (a stored :func:`code_version`) or of the running code."""
    version = code_version() if version is None else version
    sha = version.get("git")
    if not sha:
        return f"{version.get('sparsity_lab')}+nogit"
    return f"{version.get('sparsity_lab')}+{sha[:7]}{'.dirty' if version.get('dirty') else ''}"


def run_environment(device: Any = None) -> dict[str, Any]:
    """Where a run trains: ``device`` (the GPU's name, or ``"CPU (<n> cores)"``), ``device_type``, the
    ``torch`` and ``cuda`` versions (cuda None on a CPU-only build) and the ``host`` name. Stored in the run's
    ``config.json`` beside :func:`code_version` (not part of the canonical text: run ids do not change);
    :func:`environment_text` is its short form for captions."""
    import torch

    dev = torch.device(device if device is not None else "cpu")
    if dev.type == "cuda" and torch.cuda.is_available():
        name = torch.cuda.get_device_name(dev)
    else:
        name = f"{dev.type.upper() if dev.type == 'cpu' else dev.type} ({os.cpu_count()} cores)"
    return {"device": name, "device_type": dev.type, "torch": torch.__version__, "cuda": torch.version.cuda,
            "host": socket.gethostname(), "platform": platform.platform(terse=True)}


def environment_text(environment: Mapping[str, Any] | None) -> str:
    """``"NVIDIA H100 80GB HBM3, torch 2.5.1, CUDA 12.4"`` / ``"CPU (2 cores), torch 2.5.1"``; "" if unknown."""
    if not environment or not environment.get("device"):
        return ""
    cuda = f", CUDA {environment['cuda']}" if environment.get("device_type") == "cuda" and environment.get("cuda") else ""
    return f"{environment['device']}, torch {environment.get('torch')}{cuda}"


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
