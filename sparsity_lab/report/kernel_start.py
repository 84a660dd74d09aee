"""How the report batch starts notebook kernels: forked from a template that has already imported the stack.

A cold ``python -m ipykernel_launcher`` spends about 4 s of CPU importing ipykernel, pandas, matplotlib,
seaborn (scipy.stats), torch and the package before a notebook's first cell does any work; in ``make figures``
that is paid once per notebook. Here a process running notebooks starts one template process (Python's
``forkserver``, preloading :data:`PRELOAD` once) and forks each kernel from it in milliseconds.

Each notebook still gets a kernel of its own: a new process, its own session (``os.setsid``, so an interrupt
or a kill reaches the kernel and what it started, as for a cold kernel), the environment and working directory
the kernel manager asks for, and a fresh ``ipykernel`` application that talks to papermill over ZeroMQ. What
it shares with the template is only what importing :data:`PRELOAD` did. The template never runs a cell,
creates no ZeroMQ context and initialises no CUDA, so it is as safe to fork as the sweep's worker server
(:mod:`sparsity_lab.sweep.fork_server`). A process has one forkserver: where the same process also starts
sweep workers (``report --jobs 1``), whichever starts first sets the preload, and the other imports the rest.

Only this interpreter's own ipykernel is forked (the kernel spec's command must be ``sys.executable -m
ipykernel_launcher``); any other kernel starts as Jupyter starts it. ``SPARSITY_LAB_KERNEL_START=cold`` starts
every kernel cold.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

#: What the template imports once: :mod:`.kernel_preload` sets the inline backend first, then the kernel's
#: stack (ipykernel, pandas, matplotlib, seaborn, the figure notebooks' helper and with it torch). Not the
#: sweep workers' preload: a kernel that trains starts its own worker server.
PRELOAD = ["sparsity_lab.report.kernel_preload"]
START_ENV = "SPARSITY_LAB_KERNEL_START"
MODES = ("fork", "cold")


def mode() -> str:
    """'fork' where the platform has a forkserver, unless ``$SPARSITY_LAB_KERNEL_START`` says 'cold'."""
    import multiprocessing

    from sparsity_lab.sweep.fork_server import env_choice

    wanted = env_choice(START_ENV, MODES, "fork")
    return wanted if "forkserver" in multiprocessing.get_all_start_methods() else "cold"


def forkable(cmd: list[str]) -> bool:
    """Whether ``cmd`` starts this interpreter's ipykernel (``<sys.executable> -m ipykernel_launcher ...``)."""
    return (len(cmd) >= 3 and cmd[1:3] == ["-m", "ipykernel_launcher"]
            and os.path.realpath(cmd[0]) == os.path.realpath(sys.executable))


def _leave_template() -> None:
    """Forget the template as this process's forkserver. A forkserver child keeps the server's "alive" pipe open
    so that it may fork from it too, which would keep the template, and so the kernel (below), alive after the
    batch is killed. A kernel that starts workers starts its own server, as a launched kernel does."""
    from multiprocessing import forkserver

    server = forkserver._forkserver
    fd = getattr(server, "_forkserver_alive_fd", None)
    if fd is not None:
        os.close(fd)
    for name in ("_forkserver_alive_fd", "_forkserver_address", "_forkserver_pid"):
        setattr(server, name, None)


def _kernel_main(argv: list[str], environ: dict[str, str], cwd: str, path: list[str]) -> None:
    """In the forked child: become a session leader, take the requested environment and directory, then run
    ipykernel as ``python -m ipykernel_launcher argv`` would. ``path``: the ``sys.path`` such a kernel has
    when its launcher starts (the interpreter's, without the launching process's own first entry: the
    launcher drops the working directory and IPython's shell puts it back as '')."""
    os.setsid()
    _leave_template()
    os.environ.clear()
    # ipykernel exits when its parent changes, as a launched kernel does when its launcher goes: the template
    # exits with the process that started it, so a kernel never outlives a killed batch. (ipykernel read
    # $JPY_PARENT_PID when the template imported it, so the parent is also given on the command line.)
    parent = str(os.getppid())
    os.environ.update(environ, JPY_PARENT_PID=parent)
    os.chdir(cwd)
    sys.path[:] = path
    sys.argv = ["ipykernel_launcher", *argv, f"--IPKernelApp.parent_handle={parent}"]
    from ipykernel import kernelapp

    kernelapp.launch_new_instance()


class ForkedKernel:
    """The subset of :class:`subprocess.Popen` that jupyter_client's local provisioner uses, over a
    :class:`multiprocessing.Process` started from the template."""

    stdin = stdout = stderr = None

    def __init__(self, process: Any) -> None:
        self._process = process
        self.pid: int = process.pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self._process.is_alive():
            return None
        self.returncode = self._process.exitcode
        return self.returncode

    def wait(self, timeout: float | None = None) -> int | None:
        self._process.join(timeout)
        return self.poll()

    def send_signal(self, signum: int) -> None:
        os.kill(self.pid, signum)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def start_forked(cmd: list[str], env: dict[str, str] | None, cwd: str | os.PathLike[str] | None) -> ForkedKernel:
    """Fork a kernel for ``cmd`` (see :func:`forkable`) from this process's template, starting the template
    (with :data:`PRELOAD`) on first use."""
    import multiprocessing

    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)  # no effect once this process's forkserver runs
    args = (cmd[3:], dict(os.environ if env is None else env), os.fspath(cwd or os.getcwd()), sys.path[1:])
    process = ctx.Process(target=_kernel_main, args=args, daemon=False, name="notebook-kernel")
    process.start()
    return ForkedKernel(process)


def forking_provisioner() -> type:
    """jupyter_client's local provisioner, forking :func:`forkable` kernels from the template."""
    from jupyter_client.provisioning import LocalProvisioner

    class ForkingProvisioner(LocalProvisioner):  # type: ignore[misc]
        async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> Any:
            if mode() != "fork" or not forkable(cmd):
                return await super().launch_kernel(cmd, **kwargs)
            self.process = start_forked(cmd, kwargs.get("env"), kwargs.get("cwd"))
            # the child makes itself a session leader at once: signal its group (until it has, killpg fails
            # and the provisioner signals the process alone), never the template's
            self.pid = self.pgid = self.process.pid
            self.cwd = kwargs.get("cwd") or os.getcwd()
            return self.connection_info

    return ForkingProvisioner
