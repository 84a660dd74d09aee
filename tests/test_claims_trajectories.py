"""Claims 1.1-1.4 (figure 1) on synthetic records built to hold, to fail and to be untestable."""

from __future__ import annotations

import pandas as pd
import pytest
from claims_records import iterative_run, iterative_seeds

from sparsity_lab.claims import trajectories

# Three phases with a collapse: trough t=2, peak t=6, drop and collapse from t=7 (t_c = 6).
PQI_3 = [0.20, 0.15, 0.12, 0.14, 0.20, 0.30, 0.40, 0.25, 0.15, 0.12, 0.10]
ACC_3 = [90, 90, 90, 89, 88, 87, 80, 50, 30, 15, 12]
FLAT_PQI = [0.20, 0.19, 0.18, 0.18, 0.17, 0.17, 0.17, 0.17, 0.17, 0.17, 0.17]
FLAT_ACC = [90] * 11
HALVING = [0.5 ** t for t in range(11)]


def records(sap12=(PQI_3, ACC_3), os=(PQI_3, ACC_3), lt_acc=(90,) * 10 + (87,), seeds=1):
    parts = []
    if sap12:
        parts.append(iterative_seeds(seeds, sap12[1], pqi=sap12[0], remaining=HALVING, method="sap", p=1.0, q=2.0))
    if os:
        parts.append(iterative_seeds(seeds, os[1], pqi=os[0], method="oneshot"))
    if lt_acc:
        parts.append(iterative_seeds(seeds, list(lt_acc), pqi=FLAT_PQI, method="lt"))
    parts.append(iterative_run(FLAT_ACC, pqi=FLAT_PQI, method="sap", p=0.5, q=1.0))  # a bystander
    return pd.concat(parts, ignore_index=True)


def verdicts(frame):
    out = {v.claim: v for v in trajectories.check(frame)}
    assert list(out) == ["1.1", "1.2", "1.3", "1.4"]
    return out


@pytest.mark.parametrize("seeds", [1, 2])
def test_all_hold_on_the_papers_shape(seeds):
    v = verdicts(records(seeds=seeds))
    assert {k: x.status for k, x in v.items()} == dict.fromkeys(v, "holds"), [x.reason for x in v.values()]
    assert "min 0.120 at t=2" in v["1.1"].reason and v["1.1"].numbers["SAP(1,2) acc loss"] >= 10
    assert v["1.2"].numbers["SAP(1,2) t_c"] == 6 and v["1.2"].numbers["SAP(1,2) t_peak"] == 6


def test_three_phases_fail_without_a_rise_or_without_a_collapse():
    v = verdicts(records(sap12=(FLAT_PQI, ACC_3)))
    assert v["1.1"].status == "fails" and "no decrease" in v["1.1"].reason
    no_rise = [0.20, 0.15, 0.12, 0.13, 0.14, 0.15, 0.16, 0.15, 0.14, 0.13, 0.12]
    assert verdicts(records(os=(no_rise, ACC_3)))["1.1"].status == "fails"
    no_drop = [0.20, 0.15, 0.12, 0.14, 0.20, 0.30, 0.40, 0.40, 0.41, 0.42, 0.43]
    assert "no later drop" in verdicts(records(os=(no_drop, ACC_3)))["1.1"].reason
    v = verdicts(records(os=(PQI_3, [90, 90, 90, 89, 88, 87, 86, 85, 84, 83, 82])))
    assert v["1.1"].status == "fails" and "only 8.0 pt below dense" in v["1.1"].reason


def test_peak_far_from_collapse_fails_and_no_collapse_is_untestable():
    early = [90, 90, 75] + [70] * 8  # t_c = 2, peak at 6
    assert verdicts(records(os=(PQI_3, early)))["1.2"].status == "fails"
    v = verdicts(records(os=(PQI_3, FLAT_ACC)))
    assert v["1.2"].status == "untestable" and "t_c is undefined" in v["1.2"].reason


def test_collapse_and_graceful_lt_fail():
    v = verdicts(records(sap12=(PQI_3, [90] * 10 + [60]), lt_acc=(90,) * 10 + (80,)))
    assert v["1.3"].status == "fails" and "60.0" in v["1.3"].reason
    assert v["1.4"].status == "fails" and v["1.4"].numbers["LT acc at T"] == 80


def test_untestable_when_methods_are_missing_or_T_is_short():
    v = verdicts(records(sap12=None, os=None, lt_acc=None))
    assert all(x.status == "untestable" for x in v.values())
    assert "SAP(1,2) not in these runs" in v["1.3"].reason and "LT not in these runs" in v["1.4"].reason
    short = pd.concat([iterative_run(ACC_3[:3], pqi=PQI_3[:3], method="sap", p=1.0, q=2.0),
                       iterative_run(ACC_3[:3], pqi=PQI_3[:3], method="oneshot")])
    assert "T = 2 too short for three phases" in verdicts(short)["1.1"].reason


def test_one_part_untestable_and_other_holding_is_untestable_not_holds():
    v = verdicts(records(os=None))
    assert v["1.1"].status == "untestable" and "SAP(1,2): PQI" in v["1.1"].reason


def test_runs_of_two_configs_are_not_averaged():
    frame = pd.concat([records(), iterative_run(ACC_3, pqi=PQI_3, method="lt", prune_fraction=0.5)])
    v = verdicts(frame)
    assert v["1.4"].status == "untestable" and "prune_fraction" in v["1.4"].reason


def test_mixed_setups_are_untestable():
    frame = pd.concat([records(), iterative_run(ACC_3, pqi=PQI_3, method="lt", model="linear")])
    assert all("mix 2 setups" in x.reason for x in verdicts(frame).values())
