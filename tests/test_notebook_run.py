"""One notebook of the report (report/notebook_run.py): a per-cell timeout named in one line, kernels over
IPC (no "TCP without encryption" warning in the console), each forked from a warm template
(report/kernel_start.py) yet fresh, in its own session and gone after its notebook."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import nbformat
import pytest

from sparsity_lab.report import kernel_start
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


PROBE = """
import json, os, sys
import matplotlib
from ipykernel.kernelapp import IPKernelApp

def watched():  # ipykernel's poller exits the kernel when its parent (the template) goes
    app = IPKernelApp.instance()
    return app.parent_handle == os.getppid() and app.poller is not None

def holds_template():  # the template's "alive" pipe, which would keep it (and so the kernel) after a kill
    from multiprocessing import forkserver
    return forkserver._forkserver._forkserver_alive_fd is not None

parent = open(f"/proc/{os.getppid()}/cmdline", "rb").read().replace(b"\\0", b" ").decode()
json.dump({"pid": os.getpid(), "ppid": os.getppid(), "parent": parent, "leader": os.getsid(0) == os.getpid(),
           "cwd": os.getcwd(), "probe": os.environ.get("SPARSITY_LAB_PROBE"), "backend": matplotlib.get_backend(),
           "fresh": "seen" not in globals(), "path": sys.path,
           "watched": watched(), "holds_template": holds_template()}, open(out_file, "w"))
seen = True
"""


def _probe_notebook(tmp_path: Path, name: str) -> Path:
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"}})
    params = nbformat.v4.new_code_cell("profile = 'smoke'\noutput_dir = None\nout_file = None")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell("%matplotlib inline"), nbformat.v4.new_code_cell(PROBE)]
    path = tmp_path / "nb" / f"{name}.ipynb"
    path.parent.mkdir(exist_ok=True)
    nbformat.write(nb, path)
    return path


@pytest.mark.skipif(kernel_start.mode() != "fork", reason="no forkserver on this platform")
def test_each_notebook_gets_a_fresh_kernel_forked_from_one_template_and_none_outlives_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPARSITY_LAB_PROBE", "seen by the kernel")  # set after the template may have started
    seen = []
    for name in ("97_first", "98_second"):
        probe = tmp_path / f"{name}.json"
        out = run_notebook(_probe_notebook(tmp_path, name), tmp_path / "out", "smoke", {"out_file": str(probe)})
        assert out.status == "ok", (out.error_name, out.error_message)
        seen.append(json.loads(probe.read_text()))
    first, second = seen
    assert first["pid"] != second["pid"] and first["ppid"] == second["ppid"] != os.getpid()  # one template
    assert "multiprocessing.forkserver" in first["parent"]
    for kernel in seen:  # as a cold kernel would be: its own session, the notebook's directory, today's env
        assert kernel["leader"] and kernel["fresh"] and kernel["cwd"] == str(tmp_path / "nb")
        assert kernel["watched"] and not kernel["holds_template"]  # a killed batch leaves no kernel behind
        assert kernel["probe"] == "seen by the kernel" and "inline" in kernel["backend"]
        assert "" in kernel["path"] and sys.path[0] not in kernel["path"]  # as a launched kernel: not ours
        with pytest.raises(ProcessLookupError):
            os.kill(kernel["pid"], 0)  # shut down and reaped


def test_other_kernels_and_the_cold_mode_start_as_jupyter_starts_them(monkeypatch: pytest.MonkeyPatch) -> None:
    from jupyter_client.provisioning import LocalProvisioner

    started = []

    async def cold(self, cmd, **kwargs):
        started.append(cmd)
        return {}

    monkeypatch.setattr(LocalProvisioner, "launch_kernel", cold)
    provisioner = kernel_start.forking_provisioner()(kernel_id="k")
    other_python = ["/opt/other/bin/python", "-m", "ipykernel_launcher", "-f", "c.json"]
    asyncio.run(provisioner.launch_kernel(other_python))
    assert started == [other_python] and not kernel_start.forkable(other_python)
    ours = [sys.executable, "-m", "ipykernel_launcher", "-f", "c.json"]
    assert kernel_start.forkable(ours)
    monkeypatch.setenv("SPARSITY_LAB_KERNEL_START", "cold")
    asyncio.run(provisioner.launch_kernel(ours))
    assert started == [other_python, ours]
    monkeypatch.setenv("SPARSITY_LAB_KERNEL_START", "warm")
    with pytest.raises(ValueError, match=r"SPARSITY_LAB_KERNEL_START='warm' is not allowed: choose one of fork, cold"):
        kernel_start.mode()
