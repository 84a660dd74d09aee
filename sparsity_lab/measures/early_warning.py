"""PQI as an early warning: when to stop iterative pruning, from the PQI trajectory alone (docs/methods.md §6).

The SAP paper's thesis (docs/methods.md §3, "The hypothesis the figures test"): along iterative pruning
the global PQI first decreases, then rises while the network compresses towards its limit, and peaks
and drops at the collapse. This module turns the rise into a stopping rule that needs no labels and no
validation data, only the PQI of the retrained model at each iteration t = 0, 1, …:

* m(t) = min(PQI(0), …, PQI(t)), the running minimum (the trough so far);
* **flag** = the first t with PQI(t) > m(t) and PQI(t) ≥ (1 + ``flag_rise``) · m(t): the network has
  entered the compression phase;
* **fired** = the first t with PQI(t) > m(t) and PQI(t) ≥ (1 + ``stop_rise``) · m(t);
* **stop** = max(fired − ``back``, 0): the recommended iteration to keep (its mask and trained weights).

Every quantity at t depends only on PQI(0..t), so the rule runs online (:class:`PQIMonitor`, used by
``iterative_pruning(..., stop="pqi_warning")``) and gives the same flag and stop as the offline
:func:`early_warning` on the same trajectory. A trajectory that never rises by ``stop_rise`` gets
``stop = None``: the rule never recommends stopping (prune to the planned T; an evaluation takes T).

The default thresholds were fitted on the ``quick`` profile's runs only and evaluated unchanged on the
``gpu`` profile (``benchmarks/early_warning_eval.py``; numbers in docs/methods.md §6); the evaluation against
the labels is :mod:`sparsity_lab.claims.early_warning`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["BACK", "FLAG_RISE", "STOP_RISE", "EarlyWarning", "PQIMonitor", "WarningRule", "early_warning",
           "early_warning_from_records", "pqi_trajectories"]

#: Fitted on the quick profile (docs/methods.md §6): relative rise of PQI above its running minimum that flags
#: the compression phase, the rise at which the stop fires, and how many iterations the stop steps back.
FLAG_RISE, STOP_RISE, BACK = 0.10, 0.30, 1


@dataclass(frozen=True)
class EarlyWarning:
    """The rule's answer on one PQI trajectory (iterations are 0-based indices into it).

    ``flag``: first iteration of the compression phase (None: never entered); ``fired``: the iteration at
    which the stop rule fired (online: the last iteration trained); ``stop``: the recommended iteration to
    keep, ``fired - back`` (None: never); ``trough``: the running minimum's iteration when the rule last
    looked (at ``fired`` if it fired); ``reason``: the same in words."""

    flag: int | None
    stop: int | None
    fired: int | None
    trough: int
    reason: str


def _check_fraction(name: str, value: Any, *, low: float = 0.0, low_open: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name}={value!r}: must be a finite number > {low:g}")
    v = float(value)
    if not math.isfinite(v) or (v <= low if low_open else v < low):
        raise ValueError(f"{name}={value!r}: must be a finite number {'>' if low_open else '>='} {low:g}")
    return v


@dataclass(frozen=True)
class WarningRule:
    """The thresholds of the rule (module docstring): ``0 < flag_rise <= stop_rise``, ``back >= 0``."""

    flag_rise: float = FLAG_RISE
    stop_rise: float = STOP_RISE
    back: int = BACK

    def __post_init__(self) -> None:
        flag = _check_fraction("flag_rise", self.flag_rise)
        stop = _check_fraction("stop_rise", self.stop_rise)
        if stop < flag:
            raise ValueError(f"stop_rise={self.stop_rise!r} < flag_rise={self.flag_rise!r}: the stop cannot fire "
                             f"before the flag; allowed 0 < flag_rise <= stop_rise")
        if isinstance(self.back, bool) or not isinstance(self.back, (int, np.integer)) or self.back < 0:
            raise ValueError(f"back={self.back!r}: must be an integer >= 0 (iterations the stop steps back)")

    def monitor(self) -> PQIMonitor:
        """A fresh online monitor of this rule."""
        return PQIMonitor(self)


class PQIMonitor:
    """The rule online: feed PQI(0), PQI(1), … with :meth:`update`; :attr:`stopped` turns True at the
    iteration where the stop fires, and :attr:`result` is then the same :class:`EarlyWarning` as
    :func:`early_warning` gives on the whole trajectory. Values after the stop fired are ignored."""

    def __init__(self, rule: WarningRule | None = None) -> None:
        self.rule = rule if rule is not None else WarningRule()
        self.t = -1
        self.minimum, self.trough = math.inf, 0
        self.flag: int | None = None
        self.fired: int | None = None

    @property
    def stopped(self) -> bool:
        return self.fired is not None

    def update(self, value: float) -> EarlyWarning:
        """Take PQI at the next iteration; return the answer so far."""
        v = _check_value("pqi", self.t + 1, value, upper=1.0)
        if self.stopped:
            return self.result
        self.t += 1
        if v < self.minimum:
            self.minimum, self.trough = v, self.t
        m = self.minimum
        if v > m:
            if self.flag is None and v >= (1.0 + self.rule.flag_rise) * m:
                self.flag = self.t
            if v >= (1.0 + self.rule.stop_rise) * m:
                self.fired = self.t
        return self.result

    @property
    def result(self) -> EarlyWarning:
        r = self.rule
        stop = None if self.fired is None else max(self.fired - r.back, 0)
        if self.t < 0:
            text = "no PQI seen yet"
        elif self.flag is None:
            text = (f"no rise of PQI by {r.flag_rise:.0%} above its running minimum (t={self.trough}) within "
                    f"t=0..{self.t}: no compression phase, no stop")
        elif self.fired is None:
            text = (f"PQI rose {r.flag_rise:.0%} above its minimum (t={self.trough}) at t={self.flag}: compression "
                    f"phase; not yet {r.stop_rise:.0%} within t=0..{self.t}: no stop")
        else:
            text = (f"PQI rose {r.flag_rise:.0%} above its minimum (t={self.trough}) at t={self.flag}: compression "
                    f"phase; {r.stop_rise:.0%} at t={self.fired}: stop at t={stop} ({r.back} back)")
        return EarlyWarning(flag=self.flag, stop=stop, fired=self.fired, trough=self.trough, reason=text)


def _check_value(name: str, index: int, value: Any, *, upper: float) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}[{index}]={value!r}: not a number") from None
    if not math.isfinite(v) or not 0.0 <= v <= upper:
        raise ValueError(f"{name}[{index}]={value!r}: must be finite and in [0, {upper:g}]")
    return v


def _trajectory(name: str, values: Sequence[float]) -> list[float]:
    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
        raise ValueError(f"{name} must be a sequence of numbers, got {type(values).__name__}")
    out = [_check_value(name, i, v, upper=1.0) for i, v in enumerate(np.asarray(values, dtype=object).ravel())]
    if len(out) < 2:
        raise ValueError(f"{name} has {len(out)} value(s): need at least 2 (t = 0 and one pruned iteration)")
    return out


def early_warning(pqi: Sequence[float], remaining: Sequence[float] | None = None, *, flag_rise: float = FLAG_RISE,
                  stop_rise: float = STOP_RISE, back: int = BACK) -> EarlyWarning:
    """The rule of the module docstring on one PQI trajectory ``pqi[t]``, t = 0 … T (docs/methods.md §6).

    ``pqi``: global I_{0.5,1} of the retrained model per iteration (the thresholds were fitted on it), at
    least 2 finite values in [0, 1]. ``remaining`` (optional, same length, in [0, 1]): the remaining
    fraction per iteration, only checked and quoted in the reason. Raises ValueError naming a bad input."""
    rule = WarningRule(flag_rise=flag_rise, stop_rise=stop_rise, back=back)
    values = _trajectory("pqi", pqi)
    rem = None
    if remaining is not None:
        rem = _trajectory("remaining", remaining)
        if len(rem) != len(values):
            raise ValueError(f"remaining has {len(rem)} values but pqi has {len(values)}: one per iteration each")
    monitor = rule.monitor()
    for v in values:
        monitor.update(v)
        if monitor.stopped:
            break
    out = monitor.result
    if rem is not None and out.stop is not None:
        out = EarlyWarning(out.flag, out.stop, out.fired, out.trough,
                           f"{out.reason}, keeping {rem[out.stop]:.3%} of the weights")
    return out


# ---------------------------------------------------------------------------------------------------------
# tidy records (README "Stored records")


def _select(records: pd.DataFrame, metric: str, scope: str, pq: tuple[float, float] | None = None) -> pd.DataFrame:
    mask = (records["metric"] == metric) & (records["scope"] == scope)
    if "stage" in records.columns:
        mask &= records["stage"] == "retrained"
    if pq is not None:
        mask &= np.isclose(pd.to_numeric(records["p"], errors="coerce").to_numpy(float), pq[0])
        mask &= np.isclose(pd.to_numeric(records["q"], errors="coerce").to_numpy(float), pq[1])
    return records[mask]


def _series(part: pd.DataFrame) -> pd.Series:
    one = part.drop_duplicates("iteration").set_index("iteration")["value"].astype(float).sort_index()
    one.index = one.index.astype(int)
    return one


def _runs(records: pd.DataFrame) -> list[tuple[Any, pd.DataFrame]]:
    missing = [c for c in ("iteration", "metric", "scope", "value") if c not in records.columns]
    if missing:
        raise ValueError(f"records lack the column(s) {missing}: pass tidy records (load_results / iterative_pruning)")
    if "run_id" not in records.columns:
        return [(None, records)]
    return list(records.groupby("run_id", sort=True))


def pqi_trajectories(records: pd.DataFrame, pq: tuple[float, float] = (0.5, 1.0)) -> dict[Any, pd.DataFrame]:
    """Per run (``run_id``; None for records of one run without that column): a frame indexed by iteration
    with the global PQI at ``pq`` of the retrained model, the remaining fraction (scope ``model``, else
    ``global``) and the retrained accuracy in pt where recorded. Runs without PQI records are left out."""
    out: dict[Any, pd.DataFrame] = {}
    for run_id, frame in _runs(records):
        pqi = _series(_select(frame, "pqi", "global", pq))
        if pqi.empty:
            continue
        rem = _select(frame, "remaining", "model")
        rem = rem if not rem.empty else _select(frame, "remaining", "global")
        cols = {"pqi": pqi, "remaining": _series(rem)}
        acc = _select(frame, "accuracy", "model")
        if not acc.empty:
            cols["accuracy"] = _series(acc) * 100.0
        out[run_id] = pd.DataFrame(cols).loc[pqi.index]
    return out


def early_warning_from_records(records: pd.DataFrame, rule: WarningRule | None = None, *,
                               pq: tuple[float, float] = (0.5, 1.0)) -> pd.DataFrame:
    """One row per run of tidy ``records``: run_id, T (last iteration), trough, flag, fired, stop,
    remaining at the stop and the reason, from the run's global PQI trajectory at ``pq`` (stage retrained)
    with :func:`early_warning` (``rule``: default thresholds). Labels are never read."""
    rule = rule if rule is not None else WarningRule()
    rows = []
    for run_id, traj in pqi_trajectories(records, pq).items():
        if list(traj.index) != list(range(len(traj))):
            raise ValueError(f"run {run_id}: PQI recorded at iterations {list(traj.index)}, need 0, 1, … without gaps")
        w = early_warning(traj["pqi"].to_list(), flag_rise=rule.flag_rise, stop_rise=rule.stop_rise, back=rule.back)
        rem = traj["remaining"].get(w.stop, math.nan) if w.stop is not None else math.nan
        rows.append({"run_id": run_id, "T": int(traj.index.max()), "trough": w.trough, "flag": w.flag,
                     "fired": w.fired, "stop": w.stop, "remaining_at_stop": float(rem), "reason": w.reason})
    frame = pd.DataFrame(rows, columns=["run_id", "T", "trough", "flag", "fired", "stop", "remaining_at_stop",
                                        "reason"])
    for col in ("flag", "fired", "stop"):
        frame[col] = frame[col].astype("Int64")
    return frame
