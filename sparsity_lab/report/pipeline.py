"""The orchestrator between the store and the figures: plan, train what is missing, load, draw, check.

config → run → store → ``load_results`` / ``load_tensors`` → figure → notebook → report. Figures
(:mod:`sparsity_lab.figures.registry`) only say which runs they read and draw what they are given;
this module is the only one that calls the sweep layer for them:

* :func:`resolve` — a figure's typed parameters at a profile (bad names, types, profiles refused);
* :func:`plan` — the runs of a set of figures; :func:`plan_table` — runs, epochs and an estimate of
  device hours per figure (``report --plan``; speeds and the estimate in :mod:`sparsity_lab.sweep.costs`);
* :func:`prefetch` — train every missing run with ``sweep.run_many`` across all visible GPUs;
* :func:`load` — records (with the runs' label columns) and named tensors from the store;
* :func:`make_figure` — all of it for one figure, then the claims, the caption under the figure
  and, with ``output_dir``, the files (PNG, PDF, CSV, ``<stem>.meta.json`` for the report's index).

A figure notebook calls the same steps one cell at a time (:class:`sparsity_lab.report.notebook.FigureNotebook`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from sparsity_lab import _roots
from sparsity_lab.figures.params import FigureParams, ParameterError
from sparsity_lab.figures.params import resolve as _resolve
from sparsity_lab.figures.registry import Drawn, FigureSpec, Inputs, Run, get_figure
from sparsity_lab.store.meta import code_version_text
from sparsity_lab.sweep.costs import estimate_seconds, training_epochs

__all__ = ["figure_result", "inputs_with", "load", "make_figure", "plan", "plan_table", "prefetch", "provenance", "resolve",
           "split_overrides", "training_epochs", "with_labels"]

_roots.use_repository_roots()


def resolve(figure: str | int | FigureSpec, profile: str = "quick", **overrides: Any) -> FigureParams:
    """The typed parameters of ``figure`` at ``profile`` with ``overrides`` (None = the profile's value)."""
    spec = get_figure(figure)
    return _resolve(spec.params, profile, overrides, figure=spec.stem)


def split_overrides(specs: Sequence[FigureSpec], overrides: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Per figure stem, the ``overrides`` it has a parameter for; a name no chosen figure has is refused
    (listing the names they allow) before anything runs."""
    from sparsity_lab.figures.params import describe

    names = {spec.stem: {n for n, _, _ in describe(spec.params)} for spec in specs}
    allowed = sorted(set().union(*names.values())) if names else []
    unknown = [k for k in overrides if k not in allowed]
    if unknown:
        import difflib

        near = difflib.get_close_matches(unknown[0], allowed, n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        raise ParameterError(f"unknown parameter {unknown[0]!r}{hint} for {', '.join(s.stem for s in specs)}: "
                             f"allowed {', '.join(allowed) or 'none'}")
    return {stem: {k: v for k, v in overrides.items() if k in have} for stem, have in names.items()}


def plan(figures: Iterable[str | int | FigureSpec], profile: str, overrides: Mapping[str, Any] | None = None
         ) -> list[tuple[FigureSpec, FigureParams, list[Run]]]:
    """(spec, params, runs) per figure; every parameter and config is validated, nothing runs."""
    specs = [get_figure(f) for f in figures]
    per = split_overrides(specs, overrides or {})
    out = []
    for spec in specs:
        params = resolve(spec, profile, **per[spec.stem])
        runs = spec.runs(params)
        for run in runs:
            run.config.validate()
        out.append((spec, params, runs))
    return out


def plan_table(figures: Iterable[str | int | FigureSpec], profile: str, overrides: Mapping[str, Any] | None = None,
               store: Any = None) -> pd.DataFrame:
    """Per figure: runs, stored, epochs to train and estimated GPU-hours (one GPU; divide by the GPUs);
    a run shared by two figures counts in both rows and once in the total."""
    from sparsity_lab.store import ResultsStore

    store = store if store is not None else ResultsStore()
    rows, needed, missing = [], {}, {}
    for spec, _, runs in plan(figures, profile, overrides):
        configs = {r.run_id: r.config for r in runs}
        absent = {k: c for k, c in configs.items() if not store.is_complete(k)}
        needed.update(configs)
        missing.update(absent)
        rows.append(_plan_row(spec.stem, configs, absent))
    rows.append(_plan_row("total (distinct runs)", needed, missing))
    return pd.DataFrame(rows)


def _plan_row(name: str, configs: Mapping[str, Any], absent: Mapping[str, Any]) -> dict[str, Any]:
    return {"figure": name, "runs": len(configs), "stored": len(configs) - len(absent),
            "epochs to train": sum(training_epochs(c) for c in absent.values()),
            "GPU-hours (est.)": round(sum(estimate_seconds(c) for c in absent.values()) / 3600, 2)}


def prefetch(configs: Sequence[Any], *, workers_per_device: int = 1, devices: Sequence[str] | None = None,
             store: Any = None, progress: bool = True) -> list[Any]:
    """Train every config the store lacks (``sweep.run_many``: every CUDA GPU by default, parents first,
    a progress bar with ETA); return the failed outcomes."""
    from sparsity_lab.sweep.runner import run_many

    outcomes = run_many(list(configs), devices=devices, workers_per_device=workers_per_device, store=store,
                        progress=progress)
    return list({o.run_id: o for o in outcomes if o.status == "failed"}.values())


def load(runs: Sequence[Run], *, store: Any = None) -> Inputs:
    """The records of ``runs`` (``load_results``, config columns included) with each run's label columns,
    and the tensors the runs declare (``load_tensors``). A run without records is an error.

    Only the record groups the runs declare (``Run.records``; ``core`` always) are handed over, whatever
    the store holds: a figure then reads the same rows from a full local run as from one imported from a
    bundle, which ships exactly the declared groups (store/record_groups.py)."""
    from sparsity_lab.store import load_results, load_tensors
    from sparsity_lab.store.record_groups import select

    if not runs:
        return Inputs(records=pd.DataFrame(), runs=[])
    ids = list(dict.fromkeys(r.run_id for r in runs))
    declared: dict[str, tuple[Any, tuple[str, ...]]] = {}
    for r in runs:  # a run read under two labels: the union of what they declare
        declared[r.run_id] = (r.config, (*declared.get(r.run_id, (None, ()))[1], *r.records))
    records = select(load_results(store=store, run_id=ids), declared)
    missing = sorted(set(ids) - set(records.get("run_id", pd.Series(dtype=str))))
    if missing:
        raise RuntimeError(f"no stored records for run(s) {missing}: train them first (nb.train() in a figure "
                           "notebook, make_figure(..., train=True) or report --prefetch-workers N)")
    tensors = {f"{r.run_id}/{name}": load_tensors(r.run_id, name, store=store) for r in runs for name in r.tensors}
    return Inputs(records=with_labels(records, runs), runs=list(runs), tensors=tensors, raw=records)


def with_labels(records: pd.DataFrame, runs: Sequence[Run]) -> pd.DataFrame:
    """``records`` with each run's label columns (a run listed under two labels appears twice)."""
    label_cols = sorted({k for r in runs for k in r.labels})
    if not label_cols:
        return records
    labels = pd.DataFrame([{"run_id": r.run_id, **{k: r.labels.get(k) for k in label_cols}} for r in runs])
    return records.drop(columns=[c for c in label_cols if c in records.columns]).merge(labels, on="run_id")


#: The columns that identify one stored observation (docs/figures.md "Stored records").
RECORD_KEYS = ("run_id", "iteration", "stage", "metric", "scope", "group", "p", "q", "bin_left", "bin_right")


def inputs_with(inputs: Inputs, records: pd.DataFrame) -> Inputs:
    """``inputs`` drawing ``records`` (say, a filtered copy of its own): the claims then read the unlabelled
    records of the same observations, so a notebook's figure and claims always see the same rows."""
    from dataclasses import replace

    if records is inputs.records or inputs.raw is None:
        return replace(inputs, records=records)
    keys = [c for c in RECORD_KEYS if c in inputs.raw.columns and c in records.columns]
    kept = records[keys].drop_duplicates()
    return replace(inputs, records=records, raw=inputs.raw.merge(kept, on=keys, how="inner"))


def make_figure(figure: str | int | FigureSpec, profile: str = "quick", *, store: Any = None,
                output_dir: str | Path | None = None, device: str | None = None, train: bool = True,
                progress: bool = True, **overrides: Any) -> Any:
    """Plan, train what is missing (``train=False``: refuse instead), load, draw, check the claims and,
    with ``output_dir``, write the files and the report sidecar. Returns a :class:`FigureResult`."""
    spec = get_figure(figure)
    params = resolve(spec, profile, **overrides)
    runs = spec.runs(params)
    for run in runs:
        run.config.validate()
    if runs and train:
        failed = prefetch([r.config for r in runs], devices=[device] if device else None, store=store,
                          progress=progress)
        if failed:
            raise RuntimeError("runs failed: " + "; ".join(f"{o.run_id}: {o.error}" for o in failed))
    result = figure_result(spec, params, load(runs, store=store), store=store)
    if output_dir is not None:
        result.save(output_dir)
    return result


def caption_text(drawn: Drawn, run_ids: Sequence[str], *, store: Any = None) -> str:
    """A drawn figure's full caption: the figure's own, the runs' provenance and the drawing code's version."""
    return " · ".join(filter(None, [drawn.caption, provenance(run_ids, store=store),
                                   f"drawn with code {code_version_text()}"]))


def figure_result(spec: FigureSpec, params: FigureParams, inputs: Inputs, *, store: Any = None,
                  records: pd.DataFrame | None = None, drawn: Drawn | None = None, verdicts: list[Any] | None = None,
                  **options: Any) -> Any:
    """Draw ``spec`` from ``inputs`` (its tidy records: :meth:`FigureSpec.records`, or ``records`` when the
    caller holds them already) with plotting ``options``, check the claims on the same records, caption it
    with the runs' provenance (:func:`caption_text`): a :class:`FigureResult`. ``drawn``: that drawing, made
    already from the same records with the same options and captioned (a notebook's; not drawn twice);
    ``verdicts``: the claims already checked on those records and ``drawn`` (not checked twice)."""
    from sparsity_lab.figures import style
    from sparsity_lab.report.result import FigureResult

    inputs = inputs_with(inputs, spec.records(inputs, params) if records is None else records)
    text = caption_text(drawn, inputs.run_ids, store=store) if drawn is not None else ""
    if drawn is None:
        drawn = spec.draw(inputs, params, **options)
        text = caption_text(drawn, inputs.run_ids, store=store)
        style.add_caption(drawn.figure, text)
    if verdicts is None or drawn is None:
        verdicts = spec.check_claims(inputs, params, drawn)
    return FigureResult(figure=drawn.figure, caption=text, tables=dict(drawn.tables), run_ids=inputs.run_ids,
                        params=params.as_dict(), verdicts=verdicts, name=spec.stem)


def provenance(run_ids: Sequence[str], *, store: Any = None) -> str:
    """Where the runs a figure read were made: the code version(s) that trained them, grouped by the device,
    torch and CUDA each run recorded (``store.meta.run_environment``), and, for runs imported from a results
    bundle, the bundle, with its note only for runs that recorded no environment (older bundles); "" for no
    runs. E.g. "runs trained with code fe46527; with code 06463a0 on NVIDIA H100 …, imported from B (note)"."""
    from sparsity_lab.store import ResultsStore
    from sparsity_lab.store.meta import environment_text

    store = store if store is not None else ResultsStore()
    by_machine: dict[str, dict[str, None]] = {}  # environment text ("": none recorded) -> code versions
    bundles: dict[str, dict[str, None]] = {}  # bundle -> notes of its runs that recorded no environment
    for rid in run_ids:
        info = store.run_info(rid)
        sha = ((info.get("code_version") or {}).get("git") or "unknown")[:7]
        machine = environment_text(info.get("environment"))
        by_machine.setdefault(machine, {})[sha] = None
        origin = info.get("imported_from")
        if origin:
            notes = bundles.setdefault(str(origin.get("bundle")), {})
            if origin.get("note") and not machine:
                notes[origin["note"]] = None
    if not by_machine:
        return ""
    # one group per environment, so a device is never credited with runs made elsewhere
    groups = [f"code {', '.join(shas)}" + (f" on {machine}" if machine else "") for machine, shas in by_machine.items()]
    text = "runs trained with " + "; with ".join(groups)
    sources = [f"{name} ({'; '.join(notes)})" if notes else name for name, notes in bundles.items()]
    return text + (f", imported from {'; '.join(sources)}" if sources else "")
