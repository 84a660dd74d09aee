"""The claims of figure 8, ``asni_schedule``, ASNI's sigmoid schedule (docs/figures.md, "Claims every figure checks").

Input: the figure's records (``load_results``) of ASNI configs (config column ``variant``): the
``asni1`` runs (stage ``epoch``: metrics ``target_sparsity`` = s(t) and ``sparsity`` scope ``global``,
both in percent; ``accuracy`` as a fraction) and the ``dense`` runs trained with the same budget.

8.1 needs n, the number of prunable weights: the metric ``prunable_weights`` (stage ``final``) when the
run recorded it, else n = nonzero_weights / (1 - final global sparsity), both recorded by every ASNI-I
run (exact after rounding while at least one weight survives).
"""

from __future__ import annotations

import pandas as pd

from sparsity_lab._format import points_gap
from sparsity_lab.claims import _curves as c
from sparsity_lab.claims.core import ClaimSet, Verdict

#: 8.1: realised zero count within this many weights of round(s(t) * n).
WEIGHT_TOLERANCE = 1.0
#: 8.2: ASNI-I's final accuracy at most this many pt below dense.
DENSE_TOLERANCE_PT = 1.0

ASNI1 = c.Method("ASNI-I", {"variant": "asni1"})
DENSE = c.Method("dense", {"variant": "dense"})

STATEMENTS = {
    "8.1": "Realised global sparsity equals round(s(t) n) / n within one weight at every epoch",
    "8.2": "ASNI-I's final accuracy is within 1 pt of the dense network trained with the same budget",
}


def _final_value(run: pd.DataFrame, metric: str) -> float | None:
    rows = run[(run["metric"] == metric) & (run["stage"] == "final") & (run["scope"] == "model")]
    return float(rows["value"].iloc[0]) if len(rows) else None


def prunable_weights(run: pd.DataFrame) -> int:
    """n of one ASNI-I run (see the module docstring)."""
    recorded = _final_value(run, "prunable_weights")
    if recorded is not None:
        return int(round(recorded))
    nonzero = _final_value(run, "nonzero_weights")
    sparsity = run[(run["metric"] == "sparsity") & (run["stage"] == "epoch") & (run["scope"] == "global")]
    if nonzero is None or sparsity.empty:
        raise c.NoData("n unknown: neither 'prunable_weights' nor 'nonzero_weights' + global 'sparsity' recorded")
    final = float(sparsity.sort_values("iteration")["value"].iloc[-1]) / 100.0
    if final >= 1.0:
        raise c.NoData("n unknown: no weight survives")
    return int(round(nonzero / (1.0 - final)))


def schedule_error(run: pd.DataFrame) -> tuple[float, int, int]:
    """(largest |realised - round(s(t) n)| in weights, the epoch where it occurs, n) of one ASNI-I run."""
    n = prunable_weights(run)
    epoch = run[run["stage"] == "epoch"]
    target = epoch[epoch["metric"] == "target_sparsity"].set_index("iteration")["value"]
    real = epoch[(epoch["metric"] == "sparsity") & (epoch["scope"] == "global")].set_index("iteration")["value"]
    both = pd.DataFrame({"target": target, "real": real}).dropna()
    if both.empty:
        raise c.NoData("no epoch with both 'target_sparsity' and global 'sparsity'")
    want = (both["target"] / 100.0 * n).round()
    error = (both["real"] / 100.0 * n - want).abs()
    return float(error.max()), int(error.idxmax()), n


def _follows(records: pd.DataFrame) -> c.Part:
    runs = c.runs_of(records, ASNI1)
    worst, where = -1.0, ""
    numbers: dict[str, float] = {}
    for run_id, run in runs.groupby("run_id", sort=True):
        error, epoch, n = schedule_error(run)
        numbers[f"{run_id} n"], numbers[f"{run_id} max error (weights)"] = n, error
        if error > worst:
            worst, where = error, f"epoch {epoch} of {run_id} (n = {n})"
    ok = worst <= WEIGHT_TOLERANCE + 1e-6
    return c.Part("holds" if ok else "fails", f"largest gap {worst:.2f} weights at {where}", numbers)


def final_accuracy(frame: pd.DataFrame) -> float:
    """Test accuracy (pt) after the last epoch, mean over seeds."""
    acc = c.curve(frame, "accuracy", stage="epoch")
    return float(acc.iloc[-1] * c.PT)


def same_budget(a: pd.DataFrame, b: pd.DataFrame, label_a: str, label_b: str) -> None:
    """NoData unless both trained the same number of epochs on the same data."""
    for col in ("train_epochs", "train_subset", "dataset", "model"):
        if col in a.columns and col in b.columns and str(a[col].iloc[0]) != str(b[col].iloc[0]):
            raise c.NoData(f"{label_a} and {label_b} differ in {col} ({a[col].iloc[0]} vs {b[col].iloc[0]})")


def close_to(records: pd.DataFrame, method: c.Method, tolerance: float) -> c.Part:
    """``method``'s final accuracy at most ``tolerance`` pt below the dense variant's."""
    runs, dense = c.runs_of(records, method), c.runs_of(records, DENSE)
    same_budget(runs, dense, method.label, DENSE.label)
    acc, ref = final_accuracy(runs), final_accuracy(dense)
    ok = acc >= ref - tolerance
    return c.Part("holds" if ok else "fails",
                  f"{method.label} {acc:.2f} % vs dense {ref:.2f} % ({points_gap(acc, ref, digits=2)})",
                  {f"{method.label} final acc": acc, "dense final acc": ref})


def check(records: pd.DataFrame) -> list[Verdict]:
    """Verdicts 8.1-8.2 on figure 8's records."""
    problem = c.one_setup(records)
    if problem:
        return c.untestable_all(STATEMENTS, problem)
    return [c.single("8.1", STATEMENTS["8.1"], lambda: _follows(records)),
            c.single("8.2", STATEMENTS["8.2"], lambda: close_to(records, ASNI1, DENSE_TOLERANCE_PT))]


CLAIMS = ClaimSet(STATEMENTS, check)
