"""A figure notebook's steps as calls a researcher can see and edit (docs/figures.md "Notebooks").

Each figure notebook runs, one cell each: its parameters, :meth:`FigureNotebook.plan`, :meth:`~FigureNotebook.train`,
:meth:`~FigureNotebook.records` (the labelled tidy records, shown briefly by :meth:`~FigureNotebook.glimpse`),
:meth:`~FigureNotebook.draw` (the live matplotlib figure; its keywords are the figure's plotting options),
:meth:`~FigureNotebook.draw_panel` (one panel alone, on its own axes), :meth:`~FigureNotebook.claims` (the
claims' verdicts on the same records) and, only when the batch sets ``publish`` or the reader asks,
:meth:`~FigureNotebook.publish` (the report's PNG/PDF/CSV/sidecar). Exploring writes nothing, so the report's
files always match its HTML and index. The cells themselves are generated (:mod:`.notebook_cells`).
"""

from __future__ import annotations

import ast
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from sparsity_lab.figures.params import FigureParams, describe
from sparsity_lab.figures.registry import Drawn, FigureSpec, Inputs, get_figure
from sparsity_lab.report import pipeline

__all__ = ["FIXED_PARAMETERS", "FigureNotebook", "assigned_parameters", "check_namespace", "glimpse"]

#: Parameters every figure notebook has besides the figure's own: name → (annotation, default, help).
FIXED_PARAMETERS: dict[str, tuple[str, str, str]] = {
    "profile": ("str", '"quick"', "smoke | quick | gpu | paper"),
    "output_dir": ("str", "None", "where publish writes; None: <repository>/reports/<profile>/figures"),
    "device": ("str", "None", "cuda, cuda:1, cpu; None: every GPU if there is one, else the CPU"),
    "publish": ("bool", "False", "write the report's files (the report batch sets True; or call nb.publish())"),
}
#: The first line of a generated parameters cell; papermill's injected cell starts with "# Parameters" too.
GENERATED_MARK = "# Parameters, generated from the figure registry"
#: The columns :func:`glimpse` shows (those present), after the label columns.
GLIMPSE_COLUMNS = ("run_id", "seed", "iteration", "stage", "metric", "scope", "group", "p", "q", "value")


def assigned_parameters(namespace: Mapping[str, Any]) -> list[str]:
    """Names the notebook's parameters cells assigned: the last generated cell and the cells after it that
    start with ``# Parameters`` (papermill's injected cell), read from IPython's input history ``In``.
    Without a history, a plain mapping (not a module's globals) is the parameters themselves."""
    history = namespace.get("In")
    if not isinstance(history, list):
        return [] if "__name__" in namespace else [k for k in namespace if not k.startswith("_")]
    starts = [i for i, source in enumerate(history) if str(source).lstrip().startswith(GENERATED_MARK)]
    names: list[str] = []
    for source in history[starts[-1]:] if starts else []:
        if not str(source).lstrip().startswith("# Parameters"):
            continue
        try:
            tree = ast.parse(str(source))
        except SyntaxError:
            continue
        for node in tree.body:
            targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
            names += [t.id for t in targets if isinstance(t, ast.Name)]
    return list(dict.fromkeys(names))


def check_namespace(spec: FigureSpec, namespace: Mapping[str, Any]) -> None:
    """Refuse a name set in the parameters cell (or by papermill ``-p``) that is not a parameter, with the
    same one line as ``report -p`` (:func:`pipeline.split_overrides`): a typo must not run with the default."""
    unknown = {n: None for n in assigned_parameters(namespace) if n not in FIXED_PARAMETERS}
    pipeline.split_overrides([spec], unknown)


def glimpse(records: pd.DataFrame, labels: Sequence[str] = ("family", "label")) -> pd.DataFrame:
    """A few informative rows of tidy records: for each curve (its label columns), the first seed's row of
    the headline metric (accuracy where recorded) at its last iteration; records without those columns:
    the last row per value of their first text column. The columns are the record keys and the value."""
    if records.empty:
        return records
    keys = [c for c in labels if c in records.columns and records[c].astype(str).str.len().gt(0).any()]
    if {"metric", "iteration"} <= set(records.columns):
        metric = "accuracy" if (records["metric"] == "accuracy").any() else records["metric"].iloc[0]
        part = records[records["metric"] == metric]
        if "scope" in part.columns and (part["scope"] == "model").any():
            part = part[part["scope"] == "model"]
        part = part[part["iteration"] == part.groupby(keys or ["run_id"])["iteration"].transform("max")]
        part = part.sort_values([c for c in ("seed", "stage") if c in part.columns], kind="stable")
        rows = part.drop_duplicates(keys or ["run_id"]).sort_values(keys, kind="stable") if keys else part.head(8)
        shown = [*keys, *(c for c in GLIMPSE_COLUMNS if c in rows.columns and rows[c].notna().any())]
        return rows[shown].reset_index(drop=True)
    first = next((c for c in records.columns if records[c].dtype == object), records.columns[0])
    return records.groupby(first, sort=False).tail(1).reset_index(drop=True)


def describe_records(records: pd.DataFrame, labels: Sequence[str]) -> str:
    """One line: how many records, which columns, and the metrics, stages and scopes they hold."""
    keys = [c for c in records.columns if c in GLIMPSE_COLUMNS or c in labels]
    config = [c for c in records.columns if c not in keys]
    text = f"**{len(records):,} records × {len(records.columns)} columns**: {', '.join(keys)}"
    text += f", and {len(config)} config columns ({', '.join(config[:6])}, …)" if len(config) > 6 else (
        f", {', '.join(config)}" if config else "")
    for col in ("metric", "stage", "scope"):
        if col in records.columns:
            text += f"; {col}s: {', '.join(map(str, pd.unique(records[col])))}"
    return text + "."


def _display(*objects: Any) -> None:
    from IPython.display import Markdown, display

    display(*(Markdown(o) if isinstance(o, str) else o for o in objects))


class FigureNotebook:
    """One figure's notebook: the parameters read and checked from ``namespace`` (the notebook's ``globals()``),
    then one method per cell. ``store``: a results store (default: ``SPARSITY_LAB_RESULTS``)."""

    def __init__(self, figure: str | int | FigureSpec, namespace: Mapping[str, Any], *, store: Any = None) -> None:
        from sparsity_lab.figures import style

        self.spec = get_figure(figure)
        check_namespace(self.spec, namespace)
        self.profile = str(namespace.get("profile") or "quick")
        self.output_dir = namespace.get("output_dir")
        self.device = namespace.get("device")
        self.publish_requested = bool(namespace.get("publish", False))
        names = [n for n, _, _ in describe(self.spec.params)]
        self.params: FigureParams = pipeline.resolve(self.spec, self.profile, **{n: namespace.get(n) for n in names})
        self.runs = self.spec.runs(self.params)
        for run in self.runs:
            run.config.validate()
        self.store = store
        self.drawn: Drawn | None = None  # the last figure drawn, with its tables
        self._drawn_from: pd.DataFrame | None = None
        self._drawn_as_report = False
        self._report_verdicts: list[Any] | None = None  # the claims checked on the report's drawing
        self._inputs: Inputs | None = None
        self._records: pd.DataFrame | None = None
        style.set_style()

    @property
    def label_columns(self) -> list[str]:
        return sorted({k for r in self.runs for k in r.labels})

    def _store(self) -> Any:
        from sparsity_lab.store import ResultsStore

        return self.store if self.store is not None else ResultsStore()

    def plan(self, *, detail: bool = False) -> pd.DataFrame:
        """Per curve (per run with ``detail``): runs, stored, runs and epochs to train, estimated GPU-hours
        (one GPU; ``sweep.costs``). Nothing runs."""
        from sparsity_lab.sweep.costs import describe_source, estimate_seconds, training_epochs

        if not self.runs:
            _display(f"Figure {self.spec.number} trains nothing: its records are computed from the parameters.")
            return pd.DataFrame()
        store = self._store()
        stored = {r.run_id: store.is_complete(r.run_id) for r in self.runs}
        rows = [{**run.labels, "seed": getattr(run.config, "seed", None), "run_id": run.run_id, "runs": 1,
                 "stored": int(stored[run.run_id]), "to train": int(not stored[run.run_id]),
                 "epochs to train": 0 if stored[run.run_id] else training_epochs(run.config),
                 "GPU-hours (est.)": 0.0 if stored[run.run_id] else estimate_seconds(run.config) / 3600}
                for run in self.runs]
        table = pd.DataFrame(rows)
        numbers = ["runs", "stored", "to train", "epochs to train", "GPU-hours (est.)"]
        total = table.drop_duplicates("run_id")[numbers].sum()  # a run drawn under two labels trains once
        _display(f"**{int(total['runs'])} runs, {int(total['stored'])} stored; to train: {int(total['to train'])} "
                 f"runs, {int(total['epochs to train'])} epochs, ≈ {total['GPU-hours (est.)']:.2f} GPU-hours** "
                 f"(one GPU; speeds from {describe_source()}).")
        if detail:
            return table.drop(columns=["runs", "to train"]).round(3)
        keys = [c for c in self.label_columns if table[c].astype(str).str.len().gt(0).any()] or ["run_id"]
        return table.groupby(keys, sort=False)[numbers].sum().round(3).reset_index()

    def train(self) -> None:
        """Train the runs the store lacks (every GPU, parents first, a progress bar); raise naming failures."""
        if not self.runs:
            _display("Nothing to train.")
            return
        store = self._store()
        missing = {r.run_id for r in self.runs if not store.is_complete(r.run_id)}
        if not missing:
            _display(f"All {len({r.run_id for r in self.runs})} runs are stored: nothing to train.")
            return
        failed = pipeline.prefetch([r.config for r in self.runs], store=self.store,
                                   devices=[self.device] if self.device else None)
        if failed:
            raise RuntimeError("runs failed: " + "; ".join(f"{o.run_id}: {o.error}" for o in failed))
        self._inputs = None

    def _loaded(self) -> Inputs:
        if self._inputs is None:
            self._inputs = pipeline.load(self.runs, store=self.store)
            self._records = self.spec.records(self._inputs, self.params)
        return self._inputs

    def records(self) -> pd.DataFrame:
        """The labelled tidy records the figure draws (one row per observation; label columns such as
        ``label`` and ``family`` name the curve): filter them and pass them to :meth:`draw` or :meth:`claims`."""
        self._loaded()
        assert self._records is not None
        return self._records

    def glimpse(self, records: pd.DataFrame | None = None) -> pd.DataFrame:
        """What the records hold (one line) and a few informative rows (:func:`glimpse`)."""
        records = self.records() if records is None else records
        _display(describe_records(records, self.label_columns))
        return glimpse(records, self.label_columns or ("label",))

    def _inputs_for(self, records: pd.DataFrame | None) -> Inputs:
        return pipeline.inputs_with(self._loaded(), self.records() if records is None else records)

    def draw(self, records: pd.DataFrame | None = None, *, figsize: tuple[float, float] | None = None,
             caption: bool = True, **options: Any) -> Any:
        """The figure drawn from ``records`` (default: :meth:`records`), as a live matplotlib Figure;
        ``options``: the figure's plotting options (``FigureSpec.plot_options``); ``figsize`` in inches."""
        from sparsity_lab.figures import style

        inputs = self._inputs_for(records)
        drawn = self.spec.draw(inputs, self.params, **options)
        if figsize is not None:
            drawn.figure.set_size_inches(*figsize)
        if caption:
            style.add_caption(drawn.figure, pipeline.caption_text(drawn, inputs.run_ids, store=self.store))
        self.drawn, self._drawn_from = drawn, inputs.records
        # in the batch (publish set), a drawing of all records with the default options is the report's figure:
        # publish reuses it rather than drawing it again (interactively it always draws afresh)
        defaults = self.spec.plot_options()
        same_records = records is None or records is self._records
        default_options = all(k in defaults and v == defaults[k] for k, v in options.items())
        self._drawn_as_report = bool(self.publish_requested and figsize is None and caption and same_records
                                     and default_options)
        self._report_verdicts = None
        return drawn.figure

    def draw_panel(self, name: str, records: pd.DataFrame | None = None, *, ax: Any = None, **options: Any) -> Any:
        """Panel ``name`` (``FigureSpec.panels``) alone on ``ax`` (default: new axes), to redraw or restyle."""
        if ax is None:
            import matplotlib.pyplot as plt

            _, ax = plt.subplots(figsize=(6.4, 4.4), layout="constrained")
        return self.spec.draw_panel(name, ax, self._inputs_for(records), self.params, **options)

    def tables(self, rows: int = 8) -> None:
        """The tables behind the last drawn figure, rounded and short (all rows: ``nb.drawn.tables``)."""
        from sparsity_lab.report.result import FLOAT_FORMAT

        if self.drawn is None:
            self.draw()
        assert self.drawn is not None
        for title, table in self.drawn.tables.items():
            more = f" (first {rows} of {len(table)} rows)" if len(table) > rows else ""
            with pd.option_context("display.float_format", FLOAT_FORMAT, "display.max_columns", 30):
                _display(f"**{title}**{more}", table.head(rows))

    def claims(self, records: pd.DataFrame | None = None) -> pd.DataFrame:
        """The claims' verdicts on ``records`` (default: :meth:`records`): a summary line, then the table."""
        from sparsity_lab.claims.core import summary, verdict_table
        from sparsity_lab.report.result import budget_note

        inputs = self._inputs_for(records)
        same = self.drawn is not None and self._drawn_from is inputs.records
        drawn = self.drawn if same and self.drawn is not None else self.spec.draw(inputs, self.params)
        verdicts = self.spec.check_claims(inputs, self.params, drawn)
        if self._drawn_as_report and drawn is self.drawn and (records is None or records is self._records):
            self._report_verdicts = verdicts  # publish reports these rather than checking them again
        _display(*filter(None, [f"**{summary(verdicts)}**", budget_note(self.profile, verdicts)]))
        return verdict_table(verdicts)

    def publish(self, output_dir: str | Path | None = None) -> list[Path]:
        """Write the report's files: the figure as the report draws it (all records, default options) as PNG and
        PDF, its tables as CSV and the index's sidecar, under ``output_dir`` (default: the parameter, else
        ``<repository>/reports/<profile>/figures``)."""
        from sparsity_lab.report.files import resolve_output_dir

        target = resolve_output_dir(output_dir or self.output_dir, self.profile)
        reuse = self.drawn if self._drawn_as_report else None  # the figure as the report draws it: not twice
        result = pipeline.figure_result(self.spec, self.params, self._loaded(), store=self.store,
                                        records=self.records(), drawn=reuse,  # records derived once per notebook
                                        verdicts=self._report_verdicts if reuse is not None else None)
        paths = result.save(target)
        _display(f"Published {len(paths)} files and `{self.spec.stem}.meta.json` to `{target}`.")
        return paths
