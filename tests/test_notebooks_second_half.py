"""The second half of the figure notebooks at smoke (the first: tests/test_notebooks.py, which says how they are
split); a file of its own so the suite's two workers run the halves side by side."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_notebooks import NOTEBOOKS, halves, run_smoke_batch


@pytest.mark.slow
def test_second_half_of_the_notebooks_runs_at_smoke_and_is_indexed(tmp_path: Path) -> None:
    first, second = halves()
    assert first and second and not set(first) & set(second) and set(first) | set(second) == set(NOTEBOOKS)
    run_smoke_batch(tmp_path, second)
