"""The order the report batch starts its notebooks in: longest first, so that the last notebook to finish is a
short one and no core idles at the end (longest-processing-time-first scheduling). The expected time of a
notebook is its wall time in the previous index of the same profile; notebooks never run before go first
(unknown counts as long), and ties keep figure order."""

from __future__ import annotations

import json
import math
from pathlib import Path

__all__ = ["longest_first", "previous_entries"]


def previous_entries(profile_dir: Path) -> list[dict]:
    """The notebook entries of the previous ``profile_dir/index.json`` (empty when there is none or it is damaged)."""
    try:
        entries = json.loads((profile_dir / "index.json").read_text()).get("notebooks", [])
    except (OSError, ValueError, AttributeError):
        return []
    return [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []


def previous_wall_times(profile_dir: Path) -> dict[str, float]:
    """Notebook stem → wall seconds from the previous index (empty if any entry's time is not a number)."""
    try:
        return {e["name"]: float(e["wall_s"]) for e in previous_entries(profile_dir) if e.get("wall_s") is not None}
    except (TypeError, ValueError, KeyError):
        return {}


def longest_first(notebooks: list[Path], profile_dir: Path) -> list[Path]:
    """``notebooks`` sorted by their previous wall time, longest (or unknown) first; stable for ties."""
    wall = previous_wall_times(profile_dir)
    return sorted(notebooks, key=lambda nb: -wall.get(nb.stem, math.inf))
