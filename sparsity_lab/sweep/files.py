"""Reading a sweep file into Python data, with one-line errors.

A missing file, a directory, an empty file, YAML or JSON that does not parse (the line and column are
named), or a top level that is neither a list nor a mapping is a ``SweepFileError`` (a ``UserError``:
the CLI prints one line and exits 2).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import yaml

from sparsity_lab.errors import UserError

SHAPE = "a list of config dicts or {kind, base, grid} blocks, or one such block"


class SweepFileError(UserError, ValueError):
    """A sweep file that cannot be read or does not describe configs; the message names the file."""


def read_sweep_data(path: str | os.PathLike[str]) -> Any:
    """The parsed contents of a YAML (or ``.json``) sweep file: a list or a mapping."""
    file = Path(path)
    if not file.exists():
        raise SweepFileError(f"sweep file {str(path)!r} does not exist: allowed a YAML or JSON file")
    if not file.is_file():
        raise SweepFileError(f"sweep file {str(path)!r} is not a file: allowed a YAML or JSON file")
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise SweepFileError(f"sweep file {str(path)!r} cannot be read ({type(err).__name__}: {err})") from None
    if not text.strip():
        raise SweepFileError(f"sweep file {str(path)!r} is empty: allowed {SHAPE}")
    try:
        data = json.loads(text) if file.suffix.lower() == ".json" else yaml.safe_load(text)
    except json.JSONDecodeError as err:
        raise SweepFileError(f"sweep file {str(path)!r} is not valid JSON at line {err.lineno}, column "
                             f"{err.colno}: {err.msg}") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise SweepFileError(f"sweep file {str(path)!r} is not valid YAML{where}: {problem}") from None
    if not isinstance(data, (list, dict)):
        raise SweepFileError(f"sweep file {str(path)!r} holds a {type(data).__name__} ({data!r:.60}) at the top "
                             f"level: allowed {SHAPE}")
    if not data:
        raise SweepFileError(f"sweep file {str(path)!r} holds no configs: allowed {SHAPE}")
    return data
