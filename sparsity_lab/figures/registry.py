"""The figure registry: every figure registered once, with one name (like timm's ``@register_model``).

A figure is a class decorated with :func:`register_figure` that provides

* ``runs(params) -> list[Run]``: the experiment configs it reads, each with the label columns its
  records get (a figure that trains nothing returns ``[]``);
* ``draw(inputs, params) -> Drawn``: the matplotlib figure, its caption and its tables, from the
  :class:`Inputs` the orchestrator (:mod:`sparsity_lab.report.pipeline`) loaded from the store;
* optionally ``claims_input(inputs, params, drawn)``: what the claims module checks (default: the
  records exactly as ``load_results`` returns them, config columns included, without labels);
* optionally ``records(inputs, params)`` (a figure that trains nothing computes its tidy records),
  ``PLOT_OPTIONS`` (keyword → default that ``draw`` accepts) and ``PANELS`` (name → what it shows)
  with ``draw_panel(name, ax, inputs, params, **options)``: what the figure's notebook calls
  (docs/figures.md "Notebooks").

Its claims are registered with it (``register_figure(claims=<claims module>.CLAIMS)``, a
:class:`~sparsity_lab.claims.core.ClaimSet`): the registration owns them, ``claim_statements()`` lists
exactly them and ``check_claims`` checks exactly them (docs/figures.md "Claims every figure checks").
The notebook of figure (number, name) is ``notebooks/<NN>_<name>.ipynb``. Figures are pure
readers: nothing here or in a figure module trains or reads the store.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from sparsity_lab.claims.core import ClaimSet, Verdict
from sparsity_lab.figures.params import FigureParams, ParameterError

__all__ = ["Drawn", "FigureSpec", "Inputs", "Run", "all_figures", "get_figure", "register_figure"]

#: Figure modules, imported when the registry is first asked (each registers its figures).
FIGURE_MODULES = ("sap_trajectories", "pruning_scopes", "pq_ablation", "eta_gamma_ablation", "pq_heatmaps",
                  "sap_vs_lth", "pqi_properties", "asni_schedule", "asni_concentration", "asni2", "early_warning", "sap_efficiency")


@dataclass(frozen=True)
class Run:
    """One run a figure reads: its config, the label columns added to its records, the named
    tensors (store artifacts such as ``"final"``) the figure needs besides the records, and the record
    groups it reads beyond the ``core`` ones (``store/record_groups.py``: ``"pq_grid.global"``, the
    global PQI over the (p, q) grid). The figure is handed exactly those records, and a results bundle
    exported for its profile ships exactly those."""

    config: Any
    labels: Mapping[str, Any] = field(default_factory=dict)
    tensors: tuple[str, ...] = ()
    records: tuple[str, ...] = ()

    @property
    def run_id(self) -> str:
        return str(self.config.run_id)


@dataclass
class Inputs:
    """What a figure draws from: the records (config columns included) of its runs with the label
    columns of every :class:`Run` (a run read under two labels appears twice), and the tensors."""

    records: pd.DataFrame
    runs: list[Run] = field(default_factory=list)
    tensors: dict[str, dict[str, Any]] = field(default_factory=dict)  # "<run_id>/<name>" -> tensors
    raw: pd.DataFrame | None = None  # the records exactly as load_results returned them (what claims check)

    def tensor(self, run_id: str, name: str = "final") -> dict[str, Any]:
        key = f"{run_id}/{name}"
        if key not in self.tensors:
            raise KeyError(f"tensors {name!r} of run {run_id} were not loaded (declare them in Run.tensors)")
        return self.tensors[key]

    @property
    def run_ids(self) -> list[str]:
        return list(dict.fromkeys(r.run_id for r in self.runs))


@dataclass
class Drawn:
    """A drawn figure: the matplotlib figure, its caption and the tables behind it."""

    figure: Any
    caption: str
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)


@dataclass(frozen=True)
class FigureSpec:
    """One registered figure."""

    number: int
    name: str
    params: type[FigureParams]
    impl: Any
    claims: ClaimSet | None = None  # the figure's claims (None: the figure states none)

    @property
    def stem(self) -> str:
        """``01_sap_trajectories``: the notebook's and the output files' stem."""
        return f"{self.number:02d}_{self.name}"

    @property
    def notebook(self) -> str:
        return f"{self.stem}.ipynb"

    def runs(self, params: FigureParams) -> list[Run]:
        return list(self.impl.runs(params))

    def records(self, inputs: Inputs, params: FigureParams) -> pd.DataFrame:
        """The tidy records the figure draws, labels included: what its notebook shows and hands back to
        :meth:`draw` (default: the loaded records; a figure that trains nothing computes its own)."""
        hook: Callable[..., Any] | None = getattr(self.impl, "records", None)
        return hook(inputs, params) if hook else inputs.records

    def plot_options(self) -> dict[str, Any]:
        """The figure's own plotting options and their defaults (``PLOT_OPTIONS`` of its class), which
        :meth:`draw` accepts as keywords: the editable arguments of the notebook's drawing cell."""
        return dict(getattr(self.impl, "PLOT_OPTIONS", {}))

    def draw(self, inputs: Inputs, params: FigureParams, **options: Any) -> Drawn:
        _check_names(options, self.plot_options(), "plotting option", self.stem)
        return self.impl.draw(inputs, params, **options)

    def panels(self) -> dict[str, str]:
        """Panel name → what it shows, for figures that can redraw one panel alone (``PANELS``)."""
        return dict(getattr(self.impl, "PANELS", {}))

    def draw_panel(self, name: str, ax: Any, inputs: Inputs, params: FigureParams, **options: Any) -> Any:
        """Draw panel ``name`` on ``ax`` (the figure's ``draw_panel``); an unknown name lists the panels."""
        _check_names({name: None}, self.panels(), "panel", self.stem)
        return self.impl.draw_panel(name, ax, inputs, params, **options)

    def claims_input(self, inputs: Inputs, params: FigureParams, drawn: Drawn) -> Any:
        hook: Callable[..., Any] | None = getattr(self.impl, "claims_input", None)
        if hook:
            return hook(inputs, params, drawn)
        return inputs.raw if inputs.raw is not None else inputs.records

    def claim_statements(self) -> dict[str, str]:
        """Claim id (``"1.3"``) → the one-line statement the check tests, threshold included: what the
        figure's notebook says it checks, and nothing else (the registered :class:`ClaimSet`)."""
        return dict(self.claims.statements) if self.claims is not None else {}

    def check_claims(self, inputs: Inputs, params: FigureParams, drawn: Drawn) -> list[Verdict]:
        """One verdict per registered claim, in order, on ``claims_input(inputs, params, drawn)``."""
        if self.claims is None:
            return []
        return self.claims(self.claims_input(inputs, params, drawn))


def _check_names(given: Mapping[str, Any], allowed: Mapping[str, Any], what: str, figure: str) -> None:
    """Refuse, in one line, a name that is not in ``allowed`` (with the nearest one, if any)."""
    import difflib

    for name in given:
        if name not in allowed:
            near = difflib.get_close_matches(name, list(allowed), n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise ParameterError(f"unknown {what} {name!r} of {figure}{hint}: allowed {', '.join(allowed) or 'none'}")


_REGISTRY: dict[str, FigureSpec] = {}


def register_figure(*, number: int, name: str, params: type[FigureParams], claims: ClaimSet | None = None
                    ) -> Callable[[Any], Any]:
    """Class decorator: register the figure ``number`` / ``name`` (one name, used everywhere) with its
    ``claims`` (the ``CLAIMS`` of ``sparsity_lab.claims.<name>``; None for a figure that states none)."""
    def wrap(impl: Any) -> Any:
        for other in _REGISTRY.values():
            if (other.number == number or other.name == name) and other.impl is not impl:
                raise ValueError(f"figure {number:02d}_{name} clashes with {other.stem}")
        _REGISTRY[name] = FigureSpec(number, name, params, impl, claims)
        return impl
    return wrap


def _load_all() -> None:
    for module in FIGURE_MODULES:
        importlib.import_module(f"sparsity_lab.figures.{module}")


def all_figures() -> list[FigureSpec]:
    """Every registered figure, by number."""
    _load_all()
    return sorted(_REGISTRY.values(), key=lambda s: s.number)


def get_figure(key: str | int | FigureSpec) -> FigureSpec:
    """A figure by number (``1``, ``"01"``), name (``"sap_trajectories"``) or stem
    (``"01_sap_trajectories"``, ``.ipynb`` allowed); an unknown key lists the allowed ones."""
    if isinstance(key, FigureSpec):
        return key
    text = str(key).removesuffix(".ipynb")
    for spec in all_figures():
        if text in (spec.name, spec.stem) or (text.isdigit() and int(text) == spec.number):
            return spec
    allowed = ", ".join(s.stem for s in all_figures())
    raise ParameterError(f"unknown figure {key!r}: allowed {allowed} (number, name or both)")
