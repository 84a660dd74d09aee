"""Which experiment runs a batch of figures needs, without training or drawing anything.

Every figure function asks for all of its runs in one call to :func:`runs.ensure_results` before it
draws. Under :func:`planning` that call records the configs and stops the figure (:class:`PlannedStop`),
so :func:`figure_configs` learns exactly the runs the figure would make with the same parameters: no
second list of configs to keep in sync with the figure code. ``report --prefetch-workers N`` uses it to
train every run of the chosen notebooks first, in parallel (``sweep.run_many``, N workers per device),
then executes the notebooks, which only load stored results.
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import json
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from pathlib import Path
from typing import Any

__all__ = ["PlannedStop", "figure_configs", "notebook_configs", "notebook_figure", "plan_table", "planning", "prefetch",
           "record_or_continue", "training_epochs"]

_PLANNED: ContextVar[list[Any] | None] = ContextVar("sparsity_lab_planned_configs", default=None)
_IMPORT_PREFIX = "from sparsity_lab.figures import "


class PlannedStop(Exception):
    """Raised by ``ensure_results`` while planning: the figure's configs are recorded, nothing runs."""


@contextlib.contextmanager
def planning() -> Iterator[list[Any]]:
    """Within this block ``ensure_results`` appends its configs to the yielded list and raises PlannedStop."""
    planned: list[Any] = []
    token = _PLANNED.set(planned)
    try:
        yield planned
    finally:
        _PLANNED.reset(token)


def record_or_continue(configs: Sequence[Any]) -> None:
    """Called by ``ensure_results`` first: outside :func:`planning` it does nothing."""
    planned = _PLANNED.get()
    if planned is not None:
        planned.extend(configs)
        raise PlannedStop(f"planned {len(configs)} runs")


def figure_configs(module: str, profile: str, **params: Any) -> list[Any]:
    """The configs ``sparsity_lab.figures.<module>.make_figure(profile, **params)`` would run.

    A module that declares ``STORE_RUNS = False`` (it trains nothing) needs none and is not called.
    """
    mod = importlib.import_module(f"sparsity_lab.figures.{module}")
    if not getattr(mod, "STORE_RUNS", True):
        return []
    with planning() as planned:
        try:
            mod.make_figure(profile, progress=False, **params)
        except PlannedStop:
            return list(planned)
    raise RuntimeError(f"figure module {module!r} finished without asking for its runs; "
                       "declare STORE_RUNS = False if it trains nothing")


def notebook_figure(nb_path: Path) -> tuple[str, list[str]]:
    """(figure module, parameter names) of a generated figure notebook: the module from its
    ``from sparsity_lab.figures import <module> as figure`` line, the names from its ``parameters`` cell."""
    code = [c for c in json.loads(Path(nb_path).read_text())["cells"] if c["cell_type"] == "code"]
    sources = ["".join(c["source"]) if isinstance(c["source"], list) else c["source"] for c in code]
    params_cell = next((src for c, src in zip(code, sources)
                        if "parameters" in c.get("metadata", {}).get("tags", [])), "")
    names = [t.id for node in ast.parse(params_cell).body if isinstance(node, ast.Assign)
             for t in node.targets if isinstance(t, ast.Name)]
    for line in "\n".join(sources).splitlines():
        if line.startswith(_IMPORT_PREFIX) and line.endswith(" as figure"):
            return line[len(_IMPORT_PREFIX):-len(" as figure")].strip(), names
    raise ValueError(f"{nb_path} has no '{_IMPORT_PREFIX}<module> as figure' line")


def notebook_configs(nb_path: Path, profile: str, overrides: dict[str, Any]) -> list[Any]:
    """The configs notebook ``nb_path`` would run at ``profile`` with the report's ``-p`` ``overrides``
    (only those it has a parameter for, as papermill would pass them to its ``make_figure`` call)."""
    module, names = notebook_figure(nb_path)
    params = {k: v for k, v in overrides.items() if k in names and k not in ("profile", "output_dir")}
    return figure_configs(module, profile, **params)


def prefetch(notebooks: Sequence[Path], profile: str, overrides: dict[str, Any], *, workers_per_device: int,
             progress: bool = True) -> list[Any]:
    """Run every experiment the ``notebooks`` need at ``profile`` (with the report's ``-p`` overrides that
    each notebook takes) through ``sweep.run_many``; return the failed outcomes.

    A notebook whose planning fails (a bad parameter, say) is skipped here with a printed reason: executing
    it later reports the same error in its own HTML. Runs already stored are reused, not retrained.
    """
    from sparsity_lab.sweep import run_many

    configs: list[Any] = []
    for nb in notebooks:
        try:
            configs += notebook_configs(nb, profile, overrides)
        except Exception as exc:  # reported again, with its traceback, when the notebook runs
            print(f"prefetch: {Path(nb).stem} not planned ({type(exc).__name__}: {exc})", flush=True)
    distinct = len({c.run_id for c in configs})
    print(f"prefetch: {distinct} runs for {len(notebooks)} notebooks, {workers_per_device} worker(s) per device",
          flush=True)
    devices = [str(overrides["device"])] if overrides.get("device") else None
    outcomes = run_many(configs, devices=devices, workers_per_device=workers_per_device, progress=progress)
    failed = list({o.run_id: o for o in outcomes if o.status == "failed"}.values())
    for o in failed:
        print(f"prefetch: run {o.run_id} failed: {(o.error or '').strip().splitlines()[-1:]}", flush=True)
    return failed


def training_epochs(config: Any) -> int:
    """Epochs of training one run costs: (T + 1) · E for an iterative run (METHODS.md §3: T + 1
    trainings of E epochs), the schedule's T epochs for an ASNI run (METHODS.md §4)."""
    epochs = int(config.train.epochs)
    return (int(config.iterations) + 1) * epochs if config.kind == "iterative" else epochs


def plan_table(notebooks: Sequence[Path], profile: str, overrides: dict[str, Any], store: Any = None) -> Any:
    """Per notebook: runs needed, how many are stored complete, and the training epochs still to do
    (a run shared by two notebooks is counted in both rows, once in the total row)."""
    import pandas as pd

    from sparsity_lab.store import ResultsStore

    store = store if store is not None else ResultsStore()
    rows, needed, missing = [], {}, {}
    for nb in notebooks:
        configs = {c.run_id: c for c in notebook_configs(nb, profile, overrides)}
        absent = {rid: c for rid, c in configs.items() if not store.is_complete(rid)}
        needed.update(configs)
        missing.update(absent)
        rows.append(_plan_row(Path(nb).stem, configs, absent))
    rows.append(_plan_row("total (distinct runs)", needed, missing))
    return pd.DataFrame(rows, columns=["notebook", "runs", "stored", "epochs to train"])


def _plan_row(name: str, configs: dict[str, Any], absent: dict[str, Any]) -> dict[str, Any]:
    return {"notebook": name, "runs": len(configs), "stored": len(configs) - len(absent),
            "epochs to train": sum(training_epochs(c) for c in absent.values())}
