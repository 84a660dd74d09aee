"""Claims 5.x (PQI heat-maps) and 6.x (SAP versus Lottery Ticket) on synthetic records."""

from __future__ import annotations

import math

import pandas as pd
from claims_records import iterative_run

from sparsity_lab.claims import pq_heatmaps as heatmaps
from sparsity_lab.claims import sap_vs_lth as comparison

T = 6


def power_mean_grid(t, p, q):
    """A genuine I_{p,q} of a fixed vector that gets sparser with t (monotone in p and q by construction)."""
    w = [1.0, 0.5, 0.25, 0.1 / (t + 1), 0.05 / (t + 1)]
    mean = lambda r: (sum(x ** r for x in w) / len(w)) ** (1 / r)  # noqa: E731
    return 1 - mean(p) / mean(q)


def static_grid(t, p, q):
    return power_mean_grid(0, p, q)


def heat_records(grid=power_mean_grid, sap_grid=None):
    """The grid's (0.5, 1) cell is the tracked global PQI, as in real runs."""
    return pd.concat([iterative_run([90] * (T + 1), grid=sap_grid or grid, method="sap"),
                      iterative_run([90] * (T + 1), grid=grid, method="lt")], ignore_index=True)


def test_heatmaps_hold():
    v = heatmaps.check(heat_records())
    assert [x.status for x in v] == ["holds", "holds"], [x.reason for x in v]
    assert v[0].numbers["grids"] == 2 * (T + 1)


def test_heatmaps_fail():
    broken = lambda t, p, q: power_mean_grid(t, p, q) + (0.2 if (t, p, q) == (3, 0.7, 1.5) else 0.0)  # noqa: E731
    v = heatmaps.check(heat_records(grid=broken, sap_grid=static_grid))
    assert [x.status for x in v] == ["fails", "fails"]
    assert "t=3 along q from p=0.7, q=1.5" in v[0].reason and "(+0.000)" in v[1].reason
    # only the plotted iterations count
    assert heatmaps.check(heat_records(grid=broken), iterations=[0, T])[0].status == "holds"


def test_heatmaps_untestable():
    v = heatmaps.check(iterative_run([90] * (T + 1), pqi=[0.2 + 0.01 * t for t in range(T + 1)], method="lt"))
    assert [x.status for x in v] == ["untestable", "untestable"]
    assert "pq_grid=False" in v[0].reason and "SAP(0.5,1) not in these runs" in v[1].reason


def curve(rem, slope, top=90.0):
    return [top + slope * math.log(r) for r in rem]


LT_REM = [0.8 ** t for t in range(16)]
SAP_REM = [0.6 ** t for t in range(16)]


def comparison_records(sap_slope=1.0, lt_slope=1.0, rt_slope=3.0, setups=(("digits", "mlp"),), sap_rem=SAP_REM):
    parts = []
    for dataset, model in setups:
        kw = {"dataset": dataset, "model": model}
        parts.append(iterative_run(curve(sap_rem, sap_slope), remaining=sap_rem, method="sap", **kw))
        parts.append(iterative_run(curve(LT_REM, lt_slope), remaining=LT_REM, method="lt", **kw))
        parts.append(iterative_run(curve(LT_REM, rt_slope), remaining=LT_REM, method="random_ticket", **kw))
    return pd.concat(parts, ignore_index=True)


def test_comparison_holds_in_every_setup():
    v = comparison.check(comparison_records(setups=(("digits", "mlp"), ("mnist", "lenet300_100"))))
    assert [x.status for x in v] == ["holds", "holds"], [x.reason for x in v]
    assert "digits/mlp" in v[0].reason and "mnist/lenet300_100" in v[0].reason


def test_sap_reaching_R_less_accurately_fails_and_not_reaching_R_is_a_finding():
    # LT within 1 pt down to 0.8^t with ln(0.8^t) >= -1 -> t = 4 (R = 41%); SAP steeper: 4 pt below there.
    v = comparison.check(comparison_records(sap_slope=4.0))
    assert v[0].status == "fails" and "at R = 41" in v[0].reason
    v = comparison.check(comparison_records(sap_slope=4.0, sap_rem=[1.0] + [0.9] * 15))
    assert v[0].status == "fails" and "SAP did not reach R = 41" in v[0].reason


def test_random_ticket_ahead_fails_and_no_common_level_is_untestable():
    v = comparison.check(comparison_records(rt_slope=1.0))  # equal: not >= 1 pt ahead at the sparsest
    assert v[1].status == "fails"
    short = comparison_records().query("iteration <= 5")  # LT's sparsest is 33 %
    v = comparison.check(short)
    assert v[1].status == "untestable" and "no common remaining fraction <= 20%" in v[1].reason
    v = comparison.check(comparison_records().query("method != 'random_ticket'"))
    assert v[1].status == "untestable" and "random ticket not in these runs" in v[1].reason
    assert [x.status for x in comparison.check(pd.DataFrame())] == ["untestable", "untestable"]
