"""One notebook of the report batch: execute it with papermill, render it to HTML, collect its outcome.

:func:`run_notebook` executes ``notebooks/<name>.ipynb`` into ``<out>/<profile>/<name>.ipynb`` and renders
it; :func:`collect_executed` (``report --render-only``) takes a notebook executed earlier, reads its status,
error and duration from papermill's metadata and renders it. Both read the notebook's sidecar
``figures/<name>.meta.json`` (run ids, caption, figure files) into a :class:`NotebookOutcome`, the card
of the report's index. :mod:`sparsity_lab.report.batch` runs the batch and writes the index.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sparsity_lab.report.index_page import first_png_thumbnail

__all__ = ["NotebookOutcome", "collect_executed", "install_mathjax", "render_html", "run_notebook"]


@dataclass
class NotebookOutcome:
    """What happened to one notebook (one card of the index, one entry of index.json)."""

    name: str
    status: str = "failed"  # "ok" | "claims failed" (ran, a claim fails) | "failed" (did not run) | "runs missing"
    wall_s: float = 0.0
    error_name: str | None = None
    error_message: str | None = None
    ipynb: str | None = None  # paths relative to <out>/<profile>
    html: str | None = None
    run_ids: list[str] = field(default_factory=list)
    caption: str | None = None
    figures: list[str] = field(default_factory=list)
    thumbnail: str | None = None  # data URI, index.html only
    claims: list[dict[str, Any]] = field(default_factory=list)  # Verdict.to_dict() per claim
    claims_summary: str | None = None  # "claims 3/4 hold (1 fail)"
    inputs: str | None = None  # report.freshness.inputs_key of what it was made from (None: not reusable)
    outputs: str | None = None  # report.freshness.outputs_digest of the files it wrote
    reused: bool = False  # True: up to date, kept from the previous batch instead of executed again

    @classmethod
    def from_entry(cls, entry: dict[str, Any], profile_dir: Path) -> NotebookOutcome:
        """The card of a previous ``index.json`` entry (unknown keys ignored), thumbnail from its executed notebook."""
        from dataclasses import fields

        names = {f.name for f in fields(cls)}
        card = cls(**{k: v for k, v in entry.items() if k in names})
        executed = profile_dir / f"{card.name}.ipynb"
        card.thumbnail = first_png_thumbnail(executed) if executed.is_file() else None
        return card


#: Where the reports' MathJax lives, relative to ``<out>/<profile>``: math renders offline, and the folder can move.
MATHJAX_DIR = "_static/mathjax"
#: MathJax 2's combined configuration (TeX input, HTML-CSS output) and its Safe mode, as nbconvert's default URL
#: has, then :data:`MATHJAX_LOCAL_CONFIG`.
MATHJAX_CONFIG = "TeX-AMS-MML_HTMLorMML-full,Safe,local/sparsity_lab"
#: ``config/local/sparsity_lab.js``: the package ships MathJax's STIX-Web fonts only (not the TeX ones MathJax
#: looks for first, without which it falls back to the browser's upright system fonts), so use those.
MATHJAX_LOCAL_CONFIG = """MathJax.Hub.Config({
  "HTML-CSS": {availableFonts: [], preferredFont: null, webFont: "STIX-Web", imageFont: null},
  SVG: {font: "STIX-Web"}
});
MathJax.Ajax.loadComplete("[MathJax]/config/local/sparsity_lab.js");
"""


def install_mathjax(profile_dir: Path) -> str:
    """Copy MathJax 2 from the installed ``jupyter-server-mathjax`` package (a dependency, installed by ``make
    setup``) into ``<profile_dir>/_static/mathjax`` unless that version is there; return its relative URL for
    nbconvert's ``mathjax_url`` (README "Reading the reports")."""
    from importlib.metadata import version

    try:
        import jupyter_server_mathjax as package

        installed = version("jupyter-server-mathjax")
    except ImportError:
        raise RuntimeError("jupyter-server-mathjax is not installed (it ships the reports' MathJax): run make setup "
                           "or pip install jupyter-server-mathjax") from None
    dest = profile_dir / MATHJAX_DIR
    stamp = dest / ".package-version"
    url = f"{MATHJAX_DIR}/MathJax.js?config={MATHJAX_CONFIG}"
    local = dest / "config" / "local" / "sparsity_lab.js"
    if stamp.is_file() and stamp.read_text() == installed and local.is_file() and local.read_text() == MATHJAX_LOCAL_CONFIG:
        return url
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".mathjax-", dir=dest.parent))
    shutil.copytree(Path(package.__file__).parent / "static", tmp, dirs_exist_ok=True, copy_function=_link_or_copy)
    (tmp / "config" / "local").mkdir(parents=True, exist_ok=True)
    (tmp / "config" / "local" / "sparsity_lab.js").write_text(MATHJAX_LOCAL_CONFIG)
    (tmp / ".package-version").write_text(installed)
    shutil.rmtree(dest, ignore_errors=True)  # another version (or a partial copy)
    try:
        os.rename(tmp, dest)  # atomic: a notebook rendered at the same time sees all of it or none
    except OSError:  # another process installed it first
        shutil.rmtree(tmp, ignore_errors=True)
    return url


def _link_or_copy(src: str, dst: str) -> None:
    """A hard link to the installed file where the file system allows one (MathJax is 600 read-only files,
    12 MB: linking takes milliseconds, copying over a second per report folder), else a copy."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def render_html(executed: Path, banner: str) -> Path:
    """Render ``executed`` to HTML next to it, with a markdown ``banner`` on top: images embedded, math by the
    MathJax copied beside it (:func:`install_mathjax`), so the report's folder opens offline and can move."""
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(executed, as_version=4)
    nb.cells.insert(0, nbformat.v4.new_markdown_cell(banner))
    exporter = HTMLExporter(template_name="lab", embed_images=True, mathjax_url=install_mathjax(executed.parent))
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": executed.stem}})
    html = executed.with_suffix(".html")
    html.write_text(body, encoding="utf-8")
    return html


def _clip(text: str, limit: int = 500) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _read_meta(path: Path) -> dict[str, Any]:
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


#: Per-cell execution timeout (seconds) by profile when ``report --timeout`` is not given: generous (a
#: figure's cell trains its missing runs), but a lost kernel reply can no longer hang ``make figures``.
CELL_TIMEOUT_S = {"smoke": 900, "quick": 4 * 3600, "gpu": 4 * 3600, "paper": 72 * 3600}


def ipc_kernel_manager(*, fork: bool = True) -> type:
    """A kernel manager whose kernel talks over local IPC sockets, not TCP: nothing listens on a port, and
    ipykernel has no reason to warn that the connection is unencrypted (it does so for every TCP kernel).
    With ``fork``, its kernel is forked from a warm template (:mod:`sparsity_lab.report.kernel_start`)."""
    import uuid

    from jupyter_client.manager import AsyncKernelManager
    from traitlets import CaselessStrEnum, default

    from sparsity_lab.report.kernel_start import forking_provisioner

    provisioner = forking_provisioner()

    class IpcKernelManager(AsyncKernelManager):
        transport = CaselessStrEnum(["tcp", "ipc"], default_value="ipc", config=True)

        async def _async_pre_start_kernel(self, **kw: Any) -> Any:
            if fork and self.provisioner is None:  # set on a restart
                self.kernel_id = self.kernel_id or kw.pop("kernel_id", None) or str(uuid.uuid4())
                self.provisioner = provisioner(kernel_id=self.kernel_id, kernel_spec=self.kernel_spec, parent=self)
            return await super()._async_pre_start_kernel(**kw)

        @default("ip")
        def _unique_socket_prefix(self) -> str:
            # jupyter_client's default, kernel-ipc-1 … in the working directory, is taken by two kernels started at
            # once from notebooks/ (report --jobs 2): each then reads the other's messages ("Invalid Signature")
            return os.path.join(tempfile.gettempdir(), f"sparsity-lab-kernel-{uuid.uuid4().hex[:16]}")

    return IpcKernelManager


def _timed_out_cell(executed: Path) -> str:
    """``cell N (`first line`)``: the last cell papermill started in ``executed``, numbered from 1 among the
    notebook's own cells (papermill's injected parameters cell not counted); ``cell ?`` if unreadable."""
    try:
        cells = json.loads(executed.read_text()).get("cells", [])
    except (OSError, ValueError):
        return "cell ?"
    own = [c for c in cells if "injected-parameters" not in c.get("metadata", {}).get("tags", [])]
    started = [i for i, c in enumerate(own) if c.get("metadata", {}).get("papermill", {}).get("start_time")]
    if not started:
        return "cell ?"
    source = "".join(own[started[-1]].get("source", "")).strip().splitlines()
    return f"cell {started[-1] + 1}" + (f" (`{_clip(source[0], 60)}`)" if source else "")


def run_notebook(nb_path: Path, profile_dir: Path, profile: str, overrides: dict[str, Any],
                 *, kernel: str = "python3", timeout: float | None = None, fork: bool = True) -> NotebookOutcome:
    """Execute, render and collect one notebook; never raises for a notebook's own failure. ``timeout``:
    seconds per cell (None: :data:`CELL_TIMEOUT_S` of the profile); a cell past it fails the notebook
    with one line naming the notebook and the cell. ``fork``: fork the kernel from this process's template
    (:mod:`sparsity_lab.report.kernel_start`; worth it from the second notebook a process runs)."""
    import papermill as pm
    from nbclient.exceptions import CellTimeoutError

    name = nb_path.stem
    out = NotebookOutcome(name=name)
    figures_dir = profile_dir / "figures"
    figures_dir.mkdir(parents=True, exist_ok=True)
    meta_file = figures_dir / f"{name}.meta.json"
    meta_file.unlink(missing_ok=True)  # never report a previous run's sidecar
    executed = profile_dir / f"{name}.ipynb"
    executed.unlink(missing_ok=True)
    params = {"profile": profile, "output_dir": str(figures_dir.resolve()), **overrides}
    timeout = timeout if timeout is not None else CELL_TIMEOUT_S.get(profile, max(CELL_TIMEOUT_S.values()))
    start = time.perf_counter()
    try:
        pm.execute_notebook(str(nb_path), str(executed), parameters=params, kernel_name=kernel,
                            cwd=str(nb_path.parent), progress_bar=False, log_output=False,
                            execution_timeout=timeout, kernel_manager_class=ipc_kernel_manager(fork=fork))
        out.status = "ok"
    except CellTimeoutError:
        out.error_name = "CellTimeoutError"
        out.error_message = (f"{name}.ipynb: {_timed_out_cell(executed)} ran past the per-cell timeout of "
                             f"{timeout:g} s (report --timeout S)")
    except Exception as exc:  # the notebook's failure is reported, not raised
        # papermill's PapermillExecutionError carries the cell's exception class and message
        out.error_name = getattr(exc, "ename", None) or type(exc).__name__
        out.error_message = _clip(str(getattr(exc, "evalue", None) or exc))
    out.wall_s = round(time.perf_counter() - start, 2)
    return _collect(out, profile_dir, profile, datetime.now())


def collect_executed(nb_path: Path, profile_dir: Path, profile: str) -> NotebookOutcome:
    """``--render-only``: the outcome of ``<profile_dir>/<name>.ipynb`` executed earlier (elsewhere, say
    on a GPU host without nbconvert's templates), read from papermill's metadata, then rendered."""
    import nbformat

    name = nb_path.stem
    out = NotebookOutcome(name=name, error_name="NotExecuted")
    executed = profile_dir / f"{name}.ipynb"
    if not executed.is_file():
        out.error_message = f"no executed notebook {executed}; run the report without --render-only first"
        return out
    nb = nbformat.read(executed, as_version=4)
    pm_meta = nb.metadata.get("papermill", {})
    ran_profile = pm_meta.get("parameters", {}).get("profile")
    if ran_profile != profile:
        out.error_name = "ProfileMismatch"
        out.error_message = f"{executed} was executed with profile {ran_profile!r}, not {profile!r}"
        return out
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    failed = bool(pm_meta.get("exception")) or bool(errors)
    out.status = "failed" if failed else "ok"
    out.error_name = (errors[0].get("ename") if errors else "Failed") if failed else None
    out.error_message = _clip(str(errors[0].get("evalue", ""))) if errors else None
    out.wall_s = round(float(pm_meta.get("duration") or 0.0), 2)
    end = pm_meta.get("end_time")
    when = datetime.fromisoformat(end) if isinstance(end, str) else datetime.fromtimestamp(executed.stat().st_mtime)
    return _collect(out, profile_dir, profile, when)


def _collect(out: NotebookOutcome, profile_dir: Path, profile: str, executed_at: datetime) -> NotebookOutcome:
    """Add the sidecar's run ids/caption/figures, render the HTML and take the thumbnail."""
    meta = _read_meta(profile_dir / "figures" / f"{out.name}.meta.json")
    out.run_ids = [str(r) for r in meta.get("run_ids", [])]
    out.caption = meta.get("caption")
    out.figures = [f"figures/{f}" for f in meta.get("figures", [])]
    out.claims = list(meta.get("claims", []))
    out.claims_summary = meta.get("claims_summary")
    if out.status == "ok" and meta.get("claims_status") == "fails":
        out.status = "claims failed"
    executed = profile_dir / f"{out.name}.ipynb"
    if executed.exists():
        out.ipynb = executed.name
        status = (f"**failed**: `{out.error_name}: {out.error_message}`" if out.status == "failed"
                  else f"{out.status} ({out.claims_summary or 'no claims'})")
        banner = (f"[← report index](index.html) · profile `{profile}` · status {status} · "
                  f"{out.wall_s:.1f} s · executed {executed_at.strftime('%Y-%m-%d %H:%M')}")
        try:
            out.html = render_html(executed, banner).name
            out.thumbnail = first_png_thumbnail(executed)
        except Exception as exc:  # rendering trouble must not hide the other notebooks
            out.status = "failed"
            out.error_name = out.error_name or f"HTML render: {type(exc).__name__}"
            out.error_message = out.error_message or str(exc)
    return out
