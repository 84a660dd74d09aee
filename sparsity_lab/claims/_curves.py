"""Pieces every claim module shares (docs/figures.md, "Claims every figure checks").

* :class:`NoData` is raised by a helper when the records cannot test a claim; :func:`evaluate` turns
  it into an *untestable* part with the reason.
* :func:`runs_of` picks a method's runs by **config** columns (never by display labels) and refuses
  records where several configurations would be averaged together: runs count as one configuration
  only when every config column but the seed agrees (:func:`config_columns`).
* :func:`curve` is a mean-over-seeds curve per iteration (one run = one seed); records store accuracy
  and remaining weights as fractions, claims speak in percentage points (:data:`PT`).
* :func:`t_collapse`, :func:`interp_log` and :func:`overlap_gap` implement t_c and the comparison of two
  accuracy curves at equal remaining fraction (linear interpolation in log remaining).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from sparsity_lab.claims.core import Status, Verdict

#: Records hold accuracy as a fraction (correct / n); claims are stated in percentage points.
PT = 100.0
#: t_c(X): first iteration whose accuracy is at least this many pt below the dense (t = 0) accuracy.
COLLAPSE_PT = 10.0

#: The record format's own columns (``store.codec.RECORD_COLUMNS``, which a test holds equal). In the frame
#: ``load_results`` returns, every other column but ``run_id`` is a config column, one value per run.
RECORD_COLUMNS = ("iteration", "stage", "metric", "scope", "group", "p", "q", "value")
#: The config column that tells the seeds of one configuration apart (the runs a mean is taken over).
SEED_COLUMN = "seed"


class NoData(Exception):
    """The records cannot test a claim; the message says why (one line)."""


@dataclass(frozen=True)
class Method:
    """A method as the claims name it, identified by config-column values (floats compared with isclose)."""

    label: str
    filters: Mapping[str, Any]


SAP_05_1 = Method("SAP(0.5,1)", {"method": "sap", "config_p": 0.5, "config_q": 1.0, "eta_r": 0.0, "gamma": 1.0})
SAP_1_2 = Method("SAP(1,2)", {"method": "sap", "config_p": 1.0, "config_q": 2.0, "eta_r": 0.0, "gamma": 1.0})
LT = Method("LT", {"method": "lt"})
ONE_SHOT = Method("One Shot", {"method": "oneshot"})
RANDOM_TICKET = Method("random ticket", {"method": "random_ticket", "control_base": "lt"})


@dataclass(frozen=True)
class Part:
    """One method's (or one setup's) share of a claim."""

    status: Status
    text: str
    numbers: Mapping[str, Any] = field(default_factory=dict)


def _match(column: pd.Series, want: Any) -> pd.Series:
    if isinstance(want, float) or (isinstance(want, int) and not isinstance(want, bool)):
        values = pd.to_numeric(column, errors="coerce").to_numpy(float)
        return pd.Series(np.isclose(values, float(want), rtol=1e-9, atol=1e-12), index=column.index)
    return column == want


def where(records: pd.DataFrame, **filters: Any) -> pd.DataFrame:
    """Rows whose config columns equal ``filters`` (an absent column matches nothing). Config columns are
    constant per run, so the filters are evaluated on one row per run and the rows selected once."""
    if any(col not in records.columns for col in filters):
        return records.iloc[0:0]
    if "run_id" not in records.columns or not filters:
        frame = records
        for col, want in filters.items():
            frame = frame[_match(frame[col], want)]
        return frame
    runs = records.drop_duplicates("run_id")[["run_id", *filters]]
    for col, want in filters.items():
        runs = runs[_match(runs[col], want)]
    return records[records["run_id"].isin(runs["run_id"])]


def config_columns(frame: pd.DataFrame) -> list[str]:
    """The config columns of ``frame`` that identify a configuration: every column but ``run_id``, the
    record format's (:data:`RECORD_COLUMNS`) and the seed. Taken from the frame, not from a list of
    fields, so a config field added later (an optimiser setting, a rule's hyperparameter) counts too."""
    skip = {"run_id", SEED_COLUMN, *RECORD_COLUMNS}
    return [col for col in frame.columns if col not in skip]


def one_config(frame: pd.DataFrame, label: str) -> pd.DataFrame:
    """``frame`` if its runs are one configuration (seeds aside): no config column (:func:`config_columns`)
    differs between them; NoData naming the differing columns otherwise (runs that differ in, say, the
    learning rate are never averaged together)."""
    if frame.empty:
        raise NoData(f"{label} not in these runs")
    runs = frame.drop_duplicates("run_id") if "run_id" in frame.columns else frame  # config columns: one per run
    differ = [col for col in config_columns(runs) if runs[col].astype(str).nunique(dropna=False) > 1]
    if differ:
        raise NoData(f"{label}: the runs differ in {differ}, so no single mean curve")
    return frame


def runs_of(records: pd.DataFrame, method: Method, **extra: Any) -> pd.DataFrame:
    """The rows of ``method``'s runs (plus ``extra`` config filters), one configuration."""
    return one_config(where(records, **{**method.filters, **extra}), method.label)


def curve(frame: pd.DataFrame, metric: str, *, stage: str = "retrained", scope: str = "model",
          group: str | None = "all", p: float | None = None, q: float | None = None) -> pd.Series:
    """Mean over runs (seeds) of one observable per iteration, at the iterations every run recorded."""
    mask = (frame["metric"] == metric) & (frame["stage"] == stage) & (frame["scope"] == scope)
    if group is not None:
        mask &= frame["group"] == group
    for col, want in (("p", p), ("q", q)):
        if want is not None:
            mask &= np.isclose(pd.to_numeric(frame[col], errors="coerce").to_numpy(float), want)
    part = frame[mask].drop_duplicates(["run_id", "iteration"])
    if part.empty:
        raise NoData(f"no {metric!r} records (stage {stage}, scope {scope})")
    grouped = part.groupby("iteration")["value"]
    mean = grouped.mean()[grouped.count() == part["run_id"].nunique()].astype(float)
    mean.index = mean.index.astype(int)
    return mean.sort_index()


def accuracy(frame: pd.DataFrame) -> pd.Series:
    """Retrained test accuracy in pt, mean over seeds."""
    return curve(frame, "accuracy") * PT


def remaining(frame: pd.DataFrame) -> pd.Series:
    """Remaining fraction of prunable weights (in [0, 1]) of the retrained model, mean over seeds."""
    return curve(frame, "remaining")


def pqi(frame: pd.DataFrame) -> pd.Series:
    """Global I_{0.5,1} of the retrained model, mean over seeds."""
    return curve(frame, "pqi", scope="global", p=0.5, q=1.0)


def seeds(frame: pd.DataFrame) -> int:
    return int(frame["run_id"].nunique())


def last(series: pd.Series, frame: pd.DataFrame | None = None) -> tuple[int, float]:
    """(T, value at T); NoData when the runs stopped before their configured T."""
    t = int(series.index.max())
    if frame is not None and "iterations" in frame.columns:
        planned = int(pd.to_numeric(frame["iterations"]).max())
        if t < planned:
            raise NoData(f"runs reach t = {t} of T = {planned}")
    return t, float(series.loc[t])


def t_collapse(acc: pd.Series, drop: float = COLLAPSE_PT) -> int | None:
    """t_c: first iteration with accuracy <= dense (t = 0) - ``drop`` pt; None if there is none."""
    hit = acc.index[acc <= acc.loc[0] - drop]
    return int(hit[0]) if len(hit) else None


def interp_log(rem: pd.Series, values: pd.Series, at: np.ndarray) -> np.ndarray:
    """``values`` as a function of log(remaining), linearly interpolated at ``at`` (duplicates averaged)."""
    both = pd.DataFrame({"x": np.log(np.clip(rem.to_numpy(float), 1e-300, None)), "y": values.to_numpy(float)})
    both = both.dropna().groupby("x", sort=True)["y"].mean()
    return np.interp(np.log(np.clip(at, 1e-300, None)), both.index.to_numpy(), both.to_numpy())


def overlap_gap(rem_a: pd.Series, acc_a: pd.Series, rem_b: pd.Series, acc_b: pd.Series) -> tuple[float, float, float, float]:
    """min over the remaining fractions both curves cover of (a - b), interpolated in log remaining.

    Returns (min gap, remaining where it occurs, overlap low, overlap high); NoData when the curves
    share only one remaining fraction (e.g. only the dense point)."""
    lo = max(rem_a.min(), rem_b.min())
    hi = min(rem_a.max(), rem_b.max())
    if not lo < hi * (1 - 1e-9):
        raise NoData(f"the curves share no range of remaining fractions (overlap {100 * lo:.3g}%-{100 * hi:.3g}%)")
    xs = np.unique(np.concatenate([rem_a.to_numpy(float), rem_b.to_numpy(float)]))
    xs = xs[(xs >= lo) & (xs <= hi)]
    gap = interp_log(rem_a, acc_a, xs) - interp_log(rem_b, acc_b, xs)
    k = int(np.argmin(gap))
    return float(gap[k]), float(xs[k]), float(lo), float(hi)


def evaluate(label: str, fn: Callable[[], Part]) -> Part:
    """``fn()``, or an untestable part ``"<label>: <reason>"`` when it raises NoData."""
    try:
        return fn()
    except NoData as err:
        text = str(err)
        return Part("untestable", text if not label or text.startswith(label) else f"{label}: {text}")


def combine(claim: str, statement: str, parts: Sequence[Part]) -> Verdict:
    """One verdict from its parts: fails if any part fails, else untestable if any is, else holds. The reason
    names the parts that decided the status first (the failing ones of a failing claim), then the rest."""
    statuses = [p.status for p in parts]
    status: Status = "fails" if "fails" in statuses else "untestable" if "untestable" in statuses else "holds"
    numbers: dict[str, Any] = {}
    for p in parts:
        numbers.update(p.numbers)
    ordered = [p for p in parts if p.status == status] + [p for p in parts if p.status != status]
    return Verdict(claim, statement, status, "; ".join(p.text for p in ordered), numbers)


def single(claim: str, statement: str, fn: Callable[[], Part]) -> Verdict:
    """A claim with one part, evaluated with :func:`evaluate`."""
    return combine(claim, statement, [evaluate("", fn)])


def untestable_all(claims: Mapping[str, str], reason: str) -> list[Verdict]:
    """Every claim of a figure untestable for one reason (e.g. no records at all)."""
    return [Verdict(c, s, "untestable", reason, {}) for c, s in claims.items()]


def one_setup(records: pd.DataFrame) -> str | None:
    """None when the records are one (dataset, model); else the reason they cannot be averaged."""
    if records is None or len(records) == 0:
        return "no records"
    cols = [c for c in ("dataset", "model") if c in records.columns]
    setups = records[cols].drop_duplicates()
    if len(setups) > 1:
        return f"records mix {len(setups)} setups ({', '.join('/'.join(map(str, r)) for r in setups.itertuples(index=False))})"
    return None


def chance_pt(frame: pd.DataFrame) -> float:
    """100 / number of classes of the runs' dataset."""
    from sparsity_lab.data import dataset_info

    name = str(frame["dataset"].iloc[0])
    try:
        return PT / dataset_info(name).num_classes
    except ValueError as err:
        raise NoData(f"class count of dataset {name!r} unknown ({err})") from None


def pct(fraction: float) -> str:
    """A remaining fraction as percent text, e.g. 0.0123 -> '1.23%'."""
    return f"{PT * fraction:.3g}%" if math.isfinite(fraction) else "nan"
