"""The order the report batch starts its notebooks in: longest first, so that the last notebook to finish is a
short one and no core idles at the end (longest-processing-time-first scheduling). The expected time of a
notebook is its wall time in the previous index of the same profile; notebooks never run before go first
(unknown counts as long), and ties keep figure order."""

from __future__ import annotations

import json
import math
from pathlib import Path

__all__ = ["longest_first"]


def previous_wall_times(profile_dir: Path) -> dict[str, float]:
    """Notebook stem → wall seconds from ``profile_dir/index.json`` (empty when there is none or it is damaged)."""
    try:
        entries = json.loads((profile_dir / "index.json").read_text()).get("notebooks", [])
        return {e["name"]: float(e["wall_s"]) for e in entries if isinstance(e, dict) and e.get("wall_s") is not None}
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return {}


def longest_first(notebooks: list[Path], profile_dir: Path) -> list[Path]:
    """``notebooks`` sorted by their previous wall time, longest (or unknown) first; stable for ties."""
    wall = previous_wall_times(profile_dir)
    return sorted(notebooks, key=lambda nb: -wall.get(nb.stem, math.inf))
