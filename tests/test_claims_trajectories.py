"""Claims 1.1-1.5 (figure 1) on synthetic records built to hold, to fail and to be untestable."""

from __future__ import annotations

import pandas as pd
import pytest
from claims_records import iterative_run, iterative_seeds

from sparsity_lab.claims import sap_trajectories as trajectories

# Three phases with a collapse: trough t=2, peak t=6, drop and collapse from t=7 (t_c = 6).
PQI_3 = [0.20, 0.15, 0.12, 0.14, 0.20, 0.30, 0.40, 0.25, 0.15, 0.12, 0.10]
ACC_3 = [90, 90, 90, 89, 88, 87, 80, 50, 30, 15, 12]
FLAT_PQI = [0.20, 0.19, 0.18, 0.18, 0.17, 0.17, 0.17, 0.17, 0.17, 0.17, 0.17]
FLAT_ACC = [90] * 11
HALVING = [0.5 ** t for t in range(11)]


FASTER = [0.7 ** t for t in range(11)]  # SAP(0.5,1) pruning faster than LT / One Shot's 0.8^t


def records(sap12=(PQI_3, ACC_3), os=(PQI_3, ACC_3), lt_acc=(90,) * 10 + (87,), seeds=1, sap05=(FLAT_ACC, FASTER)):
    parts = []
    if sap12:
        parts.append(iterative_seeds(seeds, sap12[1], pqi=sap12[0], remaining=HALVING, method="sap", p=1.0, q=2.0))
    if os:
        parts.append(iterative_seeds(seeds, os[1], pqi=os[0], method="oneshot"))
    if lt_acc:
        parts.append(iterative_seeds(seeds, list(lt_acc), pqi=FLAT_PQI, method="lt"))
    if sap05:
        parts.append(iterative_run(list(sap05[0]), remaining=list(sap05[1]), pqi=FLAT_PQI, method="sap", p=0.5, q=1.0))
    return pd.concat(parts, ignore_index=True)


def verdicts(frame):
    out = {v.claim: v for v in trajectories.check(frame)}
    assert list(out) == ["1.1", "1.2", "1.3", "1.4", "1.5"]
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


def test_sap_compresses_more_holds_fails_and_says_why():
    v = verdicts(records())["1.5"]  # SAP(0.5,1): 0.7^10 = 2.8% vs 0.8^10 = 10.7% at T, acc 90 vs LT 87, OS 12
    assert v.status == "holds" and "SAP(0.5,1) keeps 2.82% at T=10 vs LT 10.7%" in v.reason
    slower = verdicts(records(sap05=(FLAT_ACC, [0.9 ** t for t in range(11)])))["1.5"]  # the gpu profile's finding
    assert slower.status == "fails"
    assert slower.reason.startswith("SAP(0.5,1) keeps more weights than LT at T=10 (34.9% vs 10.7%, 3.25x)")
    assert slower.numbers["vs LT: SAP remaining at T"] > slower.numbers["vs LT: LT remaining at T"]
    worse = verdicts(records(sap05=([90] * 10 + [85.5], FASTER)))["1.5"]  # 1.5 pt below LT's 87 at T
    assert worse.status == "fails" and "SAP(0.5,1) is 1.5 pt less accurate than LT at T" in worse.reason
    assert "One Shot" in worse.reason  # the part against One Shot (acc 12 at T) holds and is reported too
    assert verdicts(records(sap05=None))["1.5"].status == "untestable"


def test_runs_that_differ_only_in_lr_are_not_averaged():
    """Any config column but the seed tells runs apart (no hand-kept list): lr, batch size, val_size, ..."""
    lr = pd.concat([records(), iterative_run(ACC_3, pqi=PQI_3, method="lt", seed=1, **{"train.lr": 0.5})])
    v = verdicts(lr)
    assert v["1.4"].status == "untestable" and "train_lr" in v["1.4"].reason
    assert v["1.3"].status == "holds"  # SAP(1,2) is one configuration still
    seeds = pd.concat([records(), iterative_run(list(ACC_3), pqi=PQI_3, method="lt", seed=1)])
    assert verdicts(seeds)["1.4"].status != "untestable"  # a second seed of the same config is averaged


def test_the_claims_know_the_stores_record_columns():
    from sparsity_lab.claims import _curves
    from sparsity_lab.store.codec import RECORD_COLUMNS

    assert set(_curves.RECORD_COLUMNS) == set(RECORD_COLUMNS)
    frame = records()
    cols = _curves.config_columns(frame)
    assert "seed" not in cols and "run_id" not in cols and not set(cols) & set(RECORD_COLUMNS)
    assert {"train_lr", "train_batch_size", "val_size", "test_subset", "snip_batches", "prune_fraction"} <= set(cols)
