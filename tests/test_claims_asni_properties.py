"""Claims 7.1 (properties), 8.x (ASNI schedule), 9.x (concentration points) and 10.x (ASNI-II)."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch
from claims_records import asni_run

from sparsity_lab.claims import asni2, concentration, properties, schedule

SIX = properties.SIX


def property_table(hoyer_cloning=False, broken=None):
    rows = []
    for measure in ("PQI (0.5, 1)", "PQI (1, 2)", "PQI (1.5, 2)", "Gini", "Hoyer"):
        for prop in SIX:
            passed = not (measure == "Hoyer" and prop == "Cloning" and not hoyer_cloning)
            passed = passed and (measure, prop) != broken and not (measure == "PQI (1.5, 2)" and prop == "Babies")
            rows.append({"measure": measure, "property": prop, "passed": passed})
    return pd.DataFrame(rows)


def test_properties_hold_fail_untestable():
    (v,) = properties.check(property_table())
    assert v.status == "holds", v.reason  # PQI (1.5, 2) has p > 1: not part of the claim
    assert properties.check(property_table(broken=("Gini", "Scaling")))[0].status == "fails"
    assert properties.check(property_table(hoyer_cloning=True))[0].status == "fails"
    v = properties.check(property_table().query("measure != 'Gini'"))[0]
    assert v.status == "untestable" and "Gini" in v.reason
    assert properties.check(pd.DataFrame())[0].status == "untestable"


def test_properties_on_the_real_property_table():
    from sparsity_lab.figures.pqi_properties import property_checks

    assert properties.check(property_checks(check_dim=16, n_trials=3))[0].status == "holds"


ACC = [80, 90, 95, 96, 97]


def asni_records(asni1=ACC, dense=ACC, offset=0, record_n=False, **variants):
    parts = [asni_run("asni1", asni1, offset=offset, record_n=record_n), asni_run("dense", dense)]
    parts += [asni_run(name, acc) for name, acc in variants.items()]
    return pd.concat(parts, ignore_index=True)


@pytest.mark.parametrize("record_n", [False, True])
def test_schedule_holds(record_n):
    v = schedule.check(asni_records(record_n=record_n))
    assert [x.status for x in v] == ["holds", "holds"], [x.reason for x in v]
    assert any(k.endswith(" n") and val == 10_000 for k, val in v[0].numbers.items())


def test_schedule_fails():
    v = schedule.check(asni_records(asni1=[80, 90, 95, 96, 95.5], offset=2, dense=[80, 90, 95, 96, 97]))
    assert [x.status for x in v] == ["fails", "fails"]
    assert "largest gap 2.00 weights" in v[0].reason and "1.50 below" in v[1].reason


def test_schedule_untestable():
    v = schedule.check(asni_records().query("variant == 'dense'"))
    assert [x.status for x in v] == ["untestable", "untestable"] and "ASNI-I not in these runs" in v[0].reason
    longer = pd.concat([asni_run("asni1", ACC), asni_run("dense", ACC + [97])])
    assert "differ in train_epochs" in schedule.check(longer)[1].reason
    no_n = asni_records()
    no_n = no_n[no_n["metric"] != "nonzero_weights"]
    assert "n unknown" in schedule.check(no_n)[0].reason


def test_asni2_hold_fail_untestable():
    hold = asni_records(asni2=[96.6] * 5, mask_random_init=[96] * 5, random_signs=[96] * 5)
    assert [x.status for x in asni2.check(hold)] == ["holds", "holds"]
    fail = asni_records(asni2=[96.4] * 5, mask_random_init=[96] * 5, random_signs=[96.1] * 5)
    v = asni2.check(fail)
    assert [x.status for x in v] == ["fails", "fails"] and "random signs 96.10 + 0.5 pt" in v[1].reason
    v = asni2.check(asni_records(asni2=[97] * 5, mask_random_init=[96] * 5))
    assert [x.status for x in v] == ["holds", "untestable"] and "random signs not in these runs" in v[1].reason


def test_concentration_table_from_weights():
    w = {"a": torch.tensor([[0.5, -0.6, 0.01], [0.7, -0.8, 0.0]]), "b": torch.tensor([0.9, 0.02])}
    m = {"a": torch.tensor([[1, 1, 0], [1, 1, 0]], dtype=torch.bool), "b": torch.tensor([True, False])}
    table = concentration.concentration_table(w, m, theta=0.02, seed=3)
    assert list(table.columns) == list(concentration.COLUMNS)
    a = table.set_index("layer").loc["a"]
    assert (a.n_pos, a.n_neg, a.seed) == (2, 2, 3)
    assert all(math.isclose(x, y, rel_tol=1e-6) for x, y in ((a.c_minus, -0.7), (a.c_plus, 0.6), (a.min_abs_survivor, 0.5)))
    assert math.isnan(table.set_index("layer").loc["b", "c_minus"])
    final = {"model.a": w["a"], "model.b": w["b"], "mask.a": m["a"].to(torch.uint8), "mask.b": m["b"].to(torch.uint8)}
    weights, masks = concentration.split_final(final)
    assert set(weights) == set(masks) == {"a", "b"} and masks["a"].dtype == torch.bool
    v = concentration.check(table)
    assert [x.status for x in v] == ["holds", "holds"], [x.reason for x in v]


def test_concentration_fails_and_untestable():
    w = {"a": torch.tensor([0.5, -0.6, 0.01, 0.03, -0.04])}
    m = {"a": torch.ones(5, dtype=torch.bool)}
    v = concentration.check(concentration.concentration_table(w, m, theta=0.2))
    assert [x.status for x in v] == ["fails", "fails"]
    one_sign = concentration.concentration_table({"a": torch.tensor([0.5, 0.6, -0.7])}, {"a": torch.ones(3, dtype=bool)},
                                                 theta=0.1)
    v = concentration.check(one_sign)
    assert [x.status for x in v] == ["holds", "untestable"] and "each sign" in v[1].reason
    assert [x.status for x in concentration.check(pd.DataFrame())] == ["untestable", "untestable"]
