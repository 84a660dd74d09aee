"""Claims 11.1-11.3 of the PQI early warning (docs/figures.md item 11, docs/methods.md §6): what the labels,
never seen by the rule, say about the stop it recommends."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from sparsity_lab.measures.early_warning import WarningRule, early_warning, pqi_trajectories

#: The claims 11.1-11.3 (docs/methods.md §6): collapse = accuracy this many pt below dense (as t_c of figure 1),
#: "within 1 pt of dense", and the factor on the sparsest within-1-pt remaining fraction.
COLLAPSE_PT, TOLERANCE_PT, WEIGHT_FACTOR = 10.0, 1.0, 2.0

__all__ = ["COLLAPSE_PT", "TOLERANCE_PT", "WEIGHT_FACTOR", "evaluate_early_warning", "evaluate_trajectories",
           "summarise_evaluation"]


def evaluate_early_warning(records: pd.DataFrame, rule: WarningRule | None = None, *,
                           pq: tuple[float, float] = (0.5, 1.0)) -> pd.DataFrame:
    """Per run: the rule's flag and stop, and what the labels (never seen by the rule) say about the stop.

    The evaluated stop ``stop_eval`` is the rule's stop, or T when it never fires (pruning went on).
    Dense = the run's accuracy at t = 0; ``t_collapse`` = first t with accuracy <= dense − 10 pt (NA if none);
    ``sparsest_ok`` = the iteration with the smallest remaining fraction whose accuracy is >= dense − 1 pt.
    Booleans: ``c11_1`` stop_eval < t_collapse (NA for runs that do not collapse); ``c11_2`` accuracy at
    stop_eval >= dense − 1 pt; ``c11_3`` remaining at stop_eval <= 2 × remaining at ``sparsest_ok``."""
    return evaluate_trajectories(pqi_trajectories(records, pq), rule)


def evaluate_trajectories(trajectories: dict[Any, pd.DataFrame], rule: WarningRule | None = None) -> pd.DataFrame:
    """:func:`evaluate_early_warning` on the output of :func:`pqi_trajectories` (to try many rules quickly)."""
    rule = rule if rule is not None else WarningRule()
    rows = []
    for run_id, traj in trajectories.items():
        if "accuracy" not in traj.columns or traj["accuracy"].isna().any() or traj["remaining"].isna().any():
            raise ValueError(f"run {run_id}: accuracy and remaining must be recorded at every iteration to evaluate")
        if list(traj.index) != list(range(len(traj))):
            raise ValueError(f"run {run_id}: PQI recorded at iterations {list(traj.index)}, need 0, 1, … without gaps")
        w = early_warning(traj["pqi"].to_list(), flag_rise=rule.flag_rise, stop_rise=rule.stop_rise, back=rule.back)
        T = int(traj.index.max())
        at = w.stop if w.stop is not None else T
        acc, rem = traj["accuracy"], traj["remaining"]
        dense = float(acc.loc[0])
        hit = acc.index[acc <= dense - COLLAPSE_PT]
        t_c = int(hit[0]) if len(hit) else None
        ok = rem[acc >= dense - TOLERANCE_PT]
        sparsest = int(ok.idxmin())
        rows.append({
            "run_id": run_id, "T": T, "trough": w.trough, "flag": w.flag, "stop": w.stop, "stop_eval": at,
            "remaining_at_stop": float(rem.loc[at]), "acc_at_stop": float(acc.loc[at]), "dense_acc": dense,
            "t_collapse": t_c, "sparsest_ok": sparsest, "remaining_sparsest_ok": float(rem.loc[sparsest]),
            "c11_1": (at < t_c) if t_c is not None else pd.NA,
            "c11_2": bool(acc.loc[at] >= dense - TOLERANCE_PT),
            "c11_3": bool(rem.loc[at] <= WEIGHT_FACTOR * rem.loc[sparsest] * (1 + 1e-12)),
        })
    frame = pd.DataFrame(rows)
    if not frame.empty:
        for col in ("flag", "stop", "t_collapse"):
            frame[col] = frame[col].astype("Int64")
        frame["c11_1"] = frame["c11_1"].astype("boolean")
    return frame


def summarise_evaluation(table: pd.DataFrame) -> pd.DataFrame:
    """Claims 11.1-11.3 on an :func:`evaluate_early_warning` table: per claim, the runs it applies to (n),
    how many satisfy it, the rate, the target (11.1, 11.2: >= 90 % of runs; 11.3: every run) and the verdict."""
    rows = []
    for claim, col, target in (("11.1", "c11_1", 0.9), ("11.2", "c11_2", 0.9), ("11.3", "c11_3", 1.0)):
        values = table[col].dropna() if col in table.columns else pd.Series(dtype=bool)
        n, k = int(len(values)), int(values.astype(bool).sum())
        rate = k / n if n else math.nan
        verdict = "untestable" if not n else "holds" if rate >= target else "fails"
        failing = ", ".join(str(r) for r in table.loc[values.index[~values.astype(bool)], "run_id"]) if n else ""
        rows.append({"claim": claim, "n": n, "satisfied": k, "rate": rate, "target": target, "verdict": verdict,
                     "failing_runs": failing})
    return pd.DataFrame(rows)
