"""Claims 3.1-3.3 (figure 3, (p, q) ablation) and 4.1-4.2 (figure 4, eta_r and gamma ablation) of
docs/figures.md, "Claims every figure checks".

Input: the figure's records (``load_results``): global SAP runs that differ in one hyperparameter.
Settings are told apart by config columns (``config_p``, ``config_q``, ``eta_r``, ``gamma``); each
setting's value is the mean over its seeds. Figure 3 calls :func:`check_pq`, figure 4 :func:`check_eta_gamma`.
"""

from __future__ import annotations

import pandas as pd

from sparsity_lab.claims import _curves as c
from sparsity_lab.claims.core import Verdict
from sparsity_lab.claims.trajectories import three_phases

CLAIMS_PQ = {
    "3.1": "With q = 1, the fraction pruned at t = 1 increases strictly with p",
    "3.2": "With p = 1, the fraction pruned at t = 1 increases strictly with q",
    "3.3": "The most aggressive setting of each panel (largest p; largest q) shows the three phases of 1.1",
}
CLAIMS_ETA_GAMMA = {
    "4.1": "Remaining at T decreases with eta_r (non-increasing, strictly from smallest to largest)",
    "4.2": "Remaining at T decreases with gamma (non-increasing, strictly from smallest to largest)",
}
#: The two panels of figure 3: (varying column, its name, fixed config columns).
PQ_PANELS = (("config_p", "p", {"config_q": 1.0}), ("config_q", "q", {"config_p": 1.0}))
#: The two panels of figure 4.
ETA_GAMMA_PANELS = (("eta_r", "eta_r", {"gamma": 1.0}), ("gamma", "gamma", {"eta_r": 0.0}))
_SAP_DEFAULTS = {"eta_r": 0.0, "gamma": 1.0}


def settings(records: pd.DataFrame, vary: str, name: str, fixed: dict) -> dict[float, pd.DataFrame]:
    """SAP runs with ``fixed`` config values (eta_r = 0, gamma = 1 unless fixed or varied), by value of
    ``vary`` (each value one configuration)."""
    fixed = {**fixed, **{k: v for k, v in _SAP_DEFAULTS.items() if k != vary and k not in fixed}}
    frame = c.where(records, method="sap", **fixed)
    if frame.empty or vary not in frame.columns:
        raise c.NoData(f"no SAP runs with {_text(fixed)}")
    out = {float(v): c.one_config(part, f"{name} = {v:g}")
           for v, part in frame.groupby(pd.to_numeric(frame[vary]), sort=True)}
    if len(out) < 2:
        raise c.NoData(f"only {name} = {next(iter(out)):g} with {_text(fixed)}")
    return out


def _text(fixed: dict) -> str:
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


def _monotone(claim: str, statement: str, records: pd.DataFrame, panel: tuple, measure, what: str,
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


def _aggressive(records: pd.DataFrame, panel: tuple) -> c.Part:
    vary, name, fixed = panel
    runs = settings(records, vary, name, fixed)
    top = max(runs)
    frame = runs[top]
    return three_phases(c.pqi(frame), c.accuracy(frame), f"{name} = {top:g}")


def check_pq(records: pd.DataFrame) -> list[Verdict]:
    """Verdicts 3.1-3.3 on figure 3's records."""
    problem = c.one_setup(records)
    if problem:
        return c.untestable_all(CLAIMS_PQ, problem)
    return [
        _monotone("3.1", CLAIMS_PQ["3.1"], records, PQ_PANELS[0], fraction_pruned_first, "pruned at t=1", True),
        _monotone("3.2", CLAIMS_PQ["3.2"], records, PQ_PANELS[1], fraction_pruned_first, "pruned at t=1", True),
        c.combine("3.3", CLAIMS_PQ["3.3"], [c.evaluate(_text(p[2]), lambda p=p: _aggressive(records, p))
                                            for p in PQ_PANELS]),
    ]


def check_eta_gamma(records: pd.DataFrame) -> list[Verdict]:
    """Verdicts 4.1-4.2 on figure 4's records."""
    problem = c.one_setup(records)
    if problem:
        return c.untestable_all(CLAIMS_ETA_GAMMA, problem)
    return [
        _monotone("4.1", CLAIMS_ETA_GAMMA["4.1"], records, ETA_GAMMA_PANELS[0], remaining_at_T, "remaining at T", False),
        _monotone("4.2", CLAIMS_ETA_GAMMA["4.2"], records, ETA_GAMMA_PANELS[1], remaining_at_T, "remaining at T", False),
    ]

