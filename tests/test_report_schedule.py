"""The report batch starts its notebooks longest first (by the previous index of the profile)."""

from __future__ import annotations

import json
from pathlib import Path

from sparsity_lab.report.schedule import longest_first


def _index(profile_dir: Path, walls: dict[str, float]) -> None:
    profile_dir.mkdir(parents=True, exist_ok=True)
    notebooks = [{"name": name, "wall_s": wall} for name, wall in walls.items()]
    (profile_dir / "index.json").write_text(json.dumps({"notebooks": notebooks}))


def test_longest_first_with_unknown_notebooks_first_and_ties_in_figure_order(tmp_path: Path) -> None:
    names = [Path(f"{n}.ipynb") for n in ("01_a", "02_b", "03_c", "04_d", "05_e")]
    _index(tmp_path, {"01_a": 5.0, "02_b": 20.0, "03_c": 5.0, "05_e": 9.5})
    assert [p.stem for p in longest_first(names, tmp_path)] == ["04_d", "02_b", "05_e", "01_a", "03_c"]


def test_no_or_damaged_index_keeps_figure_order(tmp_path: Path) -> None:
    names = [Path(f"{n}.ipynb") for n in ("01_a", "02_b")]
    assert longest_first(names, tmp_path) == names
    (tmp_path / "index.json").write_text("{not json")
    assert longest_first(names, tmp_path) == names
    _index(tmp_path, {"01_a": None, "02_b": "fast"})  # wrong types: ignored, not a crash
    assert longest_first(names, tmp_path) == names
