"""One notebook of the report (report/notebook_run.py): a per-cell timeout named in one line, kernels over
IPC (no "TCP without encryption" warning in the console)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from sparsity_lab.report.notebook_run import ipc_kernel_manager, run_notebook


def test_each_ipc_kernel_has_its_own_sockets() -> None:
    """Two kernels started at once from one directory (report --jobs 2) must not share socket files."""
    manager = ipc_kernel_manager()
    first, second = manager(kernel_name="python3"), manager(kernel_name="python3")
    assert first.transport == "ipc" and first.ip != second.ip and Path(first.ip).is_absolute()


@pytest.mark.slow
def test_a_cell_past_the_timeout_fails_naming_the_notebook_and_cell(tmp_path: Path, capfd) -> None:
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"}})
    params = nbformat.v4.new_code_cell("profile = 'smoke'\noutput_dir = None")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# t"), params, nbformat.v4.new_code_cell("x = 1"),
                nbformat.v4.new_code_cell("import time\ntime.sleep(60)")]
    path = tmp_path / "nb" / "99_sleepy.ipynb"
    path.parent.mkdir()
    nbformat.write(nb, path)
    out = run_notebook(path, tmp_path / "out", "smoke", {}, timeout=4)
    assert out.status == "failed" and out.error_name == "CellTimeoutError" and out.wall_s < 40
    assert out.error_message.startswith("99_sleepy.ipynb: cell 4 (`import time`) ran past the per-cell timeout of 4 s"), out.error_message
    assert "without encryption" not in capfd.readouterr().err
