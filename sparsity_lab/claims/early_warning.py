"""The claims of figure 11, ``early_warning`` (docs/figures.md item 11, docs/methods.md §6): what the labels,
never seen by the rule, say about the stop the PQI early warning recommends.

Input: the records of the runs the figure reads (``load_results``), which are the runs that prune to
collapse or near it (:func:`collapse_prone`). Per run: dense = accuracy at t = 0, collapse t_c = first t
at least 10 pt below dense, and the rule's stop (T when it never fires); the claims count runs.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from sparsity_lab.claims.core import ClaimSet, Verdict
from sparsity_lab.measures.early_warning import WarningRule, early_warning, pqi_trajectories

#: The claims 11.1-11.3 (docs/methods.md §6): collapse = accuracy this many pt below dense (as t_c of figure 1),
#: "within 1 pt of dense", and the factor on the sparsest within-1-pt remaining fraction.
COLLAPSE_PT, TOLERANCE_PT, WEIGHT_FACTOR = 10.0, 1.0, 2.0

#: Claim id -> (column of :func:`evaluate_trajectories`, share of applicable runs that must satisfy it).
TARGETS = {"11.1": ("c11_1", 0.9), "11.2": ("c11_2", 0.9), "11.3": ("c11_3", 1.0)}
STATEMENTS = {
    "11.1": "In >= 90 % of the runs that collapse (accuracy >= 10 pt below dense), the recommended stop comes "
            "before the collapse t_c",
    "11.2": "In >= 90 % of the runs, accuracy at the recommended stop is within 1 pt of dense",
    "11.3": "In every run, the stop keeps at most 2x the weights of the run's sparsest iteration within 1 pt of dense",
}

__all__ = ["CLAIMS", "COLLAPSE_PT", "STATEMENTS", "TOLERANCE_PT", "WEIGHT_FACTOR", "collapse_prone",
           "evaluate_early_warning", "evaluate_trajectories", "run_label", "summarise_evaluation"]


def _plain_sap(config: Any) -> bool:
    return (config.method == "sap" and math.isclose(config.p, 0.5) and math.isclose(config.q, 1.0)
            and config.eta_r == 0 and config.gamma == 1)


def collapse_prone(config: Any, *, ablation: bool = False) -> bool:
    """The runs the rule is judged on (docs/methods.md §6), by config: every One Shot run, every SAP run other
    than plain SAP(0.5, 1, η_r = 0, γ = 1), and (``ablation``) every run of the (p, q) and η_r/γ ablations."""
    return config.method == "oneshot" or (config.method == "sap" and not _plain_sap(config)) or ablation


def run_label(config: Any) -> str:
    """A run in a few words: ``"cnn global SAP(1,2) E=10 seed 0"``."""
    if config.method == "sap":
        extra = "" if (config.eta_r == 0 and config.gamma == 1) else f" η_r={config.eta_r:g} γ={config.gamma:g}"
        method = f"SAP({config.p:g},{config.q:g}){extra}"
    else:
        method = {"oneshot": "One Shot", "lt": "LT", "random_ticket": "random ticket"}.get(config.method, config.method)
    return f"{config.model} {config.scope} {method} E={config.train.epochs} seed {config.seed}"


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
    for claim, (col, target) in TARGETS.items():
        values = table[col].dropna() if col in table.columns else pd.Series(dtype=bool)
        n, k = int(len(values)), int(values.astype(bool).sum())
        rate = k / n if n else math.nan
        verdict = "untestable" if not n else "holds" if rate >= target else "fails"
        failing = ", ".join(str(r) for r in table.loc[values.index[~values.astype(bool)], "run_id"]) if n else ""
        rows.append({"claim": claim, "n": n, "satisfied": k, "rate": rate, "target": target, "verdict": verdict,
                     "failing_runs": failing})
    return pd.DataFrame(rows)


def check(records: pd.DataFrame) -> list[Verdict]:
    """Verdicts 11.1-11.3 on the records of the runs figure 11 reads; a ``label`` column, where present, names
    the runs a failing verdict lists (else their run ids)."""
    if records is None or len(records) == 0:
        return CLAIMS.untestable("no records")
    labels = (records.drop_duplicates("run_id").set_index("run_id")["label"].astype(str).to_dict()
              if "label" in records.columns else {})
    if "label" in records.columns:
        records = records.drop_duplicates(["run_id", "iteration", "stage", "metric", "scope", "group", "p", "q"])
    try:
        table = evaluate_early_warning(records)
    except ValueError as err:
        return CLAIMS.untestable(str(err))
    if table.empty:
        return CLAIMS.untestable("no run with a global PQI trajectory")
    verdicts = []
    for row in summarise_evaluation(table).itertuples(index=False):
        if not row.n:
            verdicts.append(Verdict(row.claim, STATEMENTS[row.claim], "untestable",
                                    "no run collapses (accuracy never >= 10 pt below dense)", {"runs": len(table)}))
            continue
        failing = [labels.get(r, r) for r in row.failing_runs.split(", ")] if row.failing_runs else []
        reason = (f"{row.satisfied}/{row.n} runs = {100 * row.rate:.0f} % (needs >= {100 * row.target:.0f} %)"
                  + (f"; not met by {'; '.join(failing)}" if failing else ""))
        verdicts.append(Verdict(row.claim, STATEMENTS[row.claim], row.verdict, reason,
                                {"runs": row.n, "satisfied": row.satisfied, "rate": row.rate, "target": row.target}))
    return verdicts


CLAIMS = ClaimSet(STATEMENTS, check)
