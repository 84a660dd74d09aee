"""The second half of the figure notebooks at smoke (the first: tests/test_notebooks.py); a file of its own so
the suite's two workers run the halves side by side."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_notebooks import FIRST_HALF, NOTEBOOKS, run_smoke_batch


@pytest.mark.slow
def test_second_half_of_the_notebooks_runs_at_smoke_and_is_indexed(tmp_path: Path) -> None:
    second = [n for n in NOTEBOOKS if n not in FIRST_HALF]
    assert second and set(FIRST_HALF) | set(second) == set(NOTEBOOKS)
    run_smoke_batch(tmp_path, second)
