"""What the claims of the two ablation figures share (docs/figures.md, "Claims every figure checks", 3 and 4):
:mod:`.pq_ablation` (figure 3) and :mod:`.eta_gamma_ablation` (figure 4).

Input: the figure's records (``load_results``): global SAP runs that differ in one hyperparameter.
Settings are told apart by config columns (``config_p``, ``config_q``, ``eta_r``, ``gamma``); each
setting's value is the mean over its seeds.
"""

from __future__ import annotations

import pandas as pd

from sparsity_lab.claims import _curves as c
from sparsity_lab.claims.core import Verdict

_SAP_DEFAULTS = {"eta_r": 0.0, "gamma": 1.0}


def settings(records: pd.DataFrame, vary: str, name: str, fixed: dict) -> dict[float, pd.DataFrame]:
    """SAP runs with ``fixed`` config values (eta_r = 0, gamma = 1 unless fixed or varied), by value of
    ``vary`` (each value one configuration)."""
    fixed = {**fixed, **{k: v for k, v in _SAP_DEFAULTS.items() if k != vary and k not in fixed}}
    frame = c.where(records, method="sap", **fixed)
    if frame.empty or vary not in frame.columns:
        raise c.NoData(f"no SAP runs with {fixed_text(fixed)}")
    out = {float(v): c.one_config(part, f"{name} = {v:g}")
           for v, part in frame.groupby(pd.to_numeric(frame[vary]), sort=True)}
    if len(out) < 2:
        raise c.NoData(f"only {name} = {next(iter(out)):g} with {fixed_text(fixed)}")
    return out


def fixed_text(fixed: dict) -> str:
    """``"q = 1, eta_r = 0"``: fixed config values as the reasons name them."""
    return ", ".join(f"{k.removeprefix('config_')} = {v:g}" for k, v in fixed.items())


def fraction_pruned_first(frame: pd.DataFrame) -> float:
    """Fraction of the prunable weights removed by the first pruning (the mask trained at t = 1)."""
    try:
        return 1.0 - float(c.curve(frame, "remaining", stage="pruned").loc[0])
    except (c.NoData, KeyError):
        rem = c.remaining(frame)
        if 1 not in rem.index:
            raise c.NoData("T = 0: nothing was pruned") from None
        return 1.0 - float(rem.loc[1] / rem.loc[0])


def remaining_at_T(frame: pd.DataFrame) -> float:
    return c.last(c.remaining(frame), frame)[1]


def monotone(claim: str, statement: str, records: pd.DataFrame, panel: tuple, measure, what: str,
              increasing: bool) -> Verdict:
    vary, name, fixed = panel

    def run() -> c.Part:
        values = {v: measure(f) for v, f in settings(records, vary, name, fixed).items()}
        ys = list(values.values())
        steps = [b - a for a, b in zip(ys, ys[1:])]
        if increasing:
            ok = all(s > 0 for s in steps)
        else:
            ok = all(s <= 0 for s in steps) and ys[-1] < ys[0]
        text = f"{what} by {name}: " + ", ".join(f"{x:g}: {c.pct(y)}" for x, y in values.items())
        return c.Part("holds" if ok else "fails", text, {f"{what} at {name}={x:g}": y for x, y in values.items()})

    return c.single(claim, statement, run)
