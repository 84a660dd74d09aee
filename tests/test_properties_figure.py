"""Figure 7: the Hurley–Rickard property checks and the random-vector sparsity sweep."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sparsity_lab.figures import pqi_properties as P
from sparsity_lab.report import pipeline

PROPS = ["Robin Hood", "Scaling", "Rising tide", "Cloning", "Bill Gates", "Babies"]


@pytest.fixture(scope="module")
def checks():
    pytest.importorskip("sparsity_lab.measures.sparsity")
    return P.property_checks(check_dim=48, n_trials=9, seed=3)


def test_table_has_six_properties_for_each_of_four_measures(checks) -> None:
    assert len(checks) == 24
    assert list(checks.columns) == ["measure", "property", "expected", "before", "after", "delta",
                                    "trials_passed", "passed"]
    for _, part in checks.groupby("measure"):
        assert list(part["property"]) == PROPS
    assert set(checks["measure"]) == {"PQI (0.5, 1)", "PQI (1, 2)", "Gini", "Hoyer"}
    np.testing.assert_allclose(checks["delta"], checks["after"] - checks["before"])


def test_pqi_passes_all_six_properties_as_methods_claims(checks) -> None:
    pqi = checks[checks["measure"].str.startswith("PQI")]
    failed = pqi.loc[~pqi["passed"], ["measure", "property", "trials_passed"]]
    assert failed.empty, failed.to_string()
    assert (pqi["trials_passed"] == "9/9").all()


def test_gini_passes_all_and_hoyer_fails_only_cloning(checks) -> None:
    table = checks.set_index(["measure", "property"])["passed"]
    assert all(table[("Gini", p)] for p in PROPS)
    # Hoyer = I_{1,2} * sqrt(d) / (sqrt(d) - 1): the factor changes with d, so cloning changes it
    assert [p for p in PROPS if not table[("Hoyer", p)]] == ["Cloning"]


def test_directions_of_measured_changes_for_pqi(checks) -> None:
    pqi = checks[checks["measure"] == "PQI (0.5, 1)"].set_index("property")
    assert pqi.loc["Robin Hood", "delta"] < 0 and pqi.loc["Rising tide", "delta"] < 0
    assert pqi.loc["Bill Gates", "delta"] > 0 and pqi.loc["Babies", "delta"] > 0
    assert abs(pqi.loc["Scaling", "delta"]) < 1e-12 and abs(pqi.loc["Cloning", "delta"]) < 1e-12
    # babies with d appended zeros: 1 - I doubles-down by 2^{-(1/p - 1/q)} = 1/2 for (0.5, 1)
    assert 1 - pqi.loc["Babies", "after"] == pytest.approx((1 - pqi.loc["Babies", "before"]) / 2)


def test_check_logic_with_measures_of_known_behaviour() -> None:
    measures = {
        "constant": lambda v: 0.5,  # equalities hold, strict changes do not
        "minus max share": lambda v: -float(np.max(v) / np.sum(v)),  # anti-sparsity: every direction flips
        "nan": lambda v: float("nan"),
    }
    t = P.property_checks(measures, check_dim=16, n_trials=3).set_index(["measure", "property"])
    assert [p for p in PROPS if t.loc[("constant", p), "passed"]] == ["Scaling", "Cloning"]
    assert t.loc[("constant", "Robin Hood"), "trials_passed"] == "0/3"
    assert [p for p in PROPS if t.loc[("minus max share", p), "passed"]] == ["Scaling"]
    assert not t.xs("nan", level="measure")["passed"].any()


def test_sweep_zeroes_exactly_the_requested_count() -> None:
    zero_share = {"zeros": lambda v: float(np.mean(v == 0))}
    sweep = P.sparsity_sweep(zero_share, dim=300, n_seeds=2, n_fractions=7, seed=1)
    assert len(sweep) == 2 * 7
    np.testing.assert_allclose(sweep["value"], sweep["fraction_zero"])
    expected = np.round(np.linspace(0, 0.99, 7) * 300) / 300
    np.testing.assert_allclose(sorted(set(sweep["fraction_zero"])), expected)


def test_sweep_pqi_increases_with_sparsity_and_matches_closed_form() -> None:
    pytest.importorskip("sparsity_lab.measures.sparsity")
    dim = 2000
    sweep = P.sparsity_sweep(dim=dim, n_seeds=4, n_fractions=12, seed=0)
    means = sweep.groupby(["measure", "fraction_zero"])["value"].mean()
    for m in ("PQI (0.5, 1)", "PQI (1, 2)", "Gini", "Hoyer"):
        curve = means[m]
        assert np.all(np.diff(curve.to_numpy()) > 0), f"{m} not increasing: {curve.to_numpy()}"
        theory = P.theory_curve(m, curve.index.to_numpy(), dim)
        np.testing.assert_allclose(curve.to_numpy(), theory, atol=0.02, err_msg=m)
    # known Gaussian values at f = 0 (docs/methods.md §1)
    assert means[("PQI (0.5, 1)", 0.0)] == pytest.approx(0.153, abs=0.01)
    assert means[("PQI (1, 2)", 0.0)] == pytest.approx(1 - math.sqrt(2 / math.pi), abs=0.01)


def test_theory_curve_closed_forms() -> None:
    f = np.array([0.0, 0.5])
    np.testing.assert_allclose(P.theory_curve("PQI (1, 2)", f, 100), 1 - np.sqrt(1 - f) * math.sqrt(2 / math.pi))
    assert P.theory_curve("PQI (0.5, 1)", f, 100)[0] == pytest.approx(0.1528, abs=1e-4)
    assert P.theory_curve("Gini", f, 100)[0] == pytest.approx(math.sqrt(2) - 1)
    assert P.theory_curve("something else", f, 100) is None


def test_make_figure_smoke_and_parameter_errors() -> None:
    pytest.importorskip("sparsity_lab.measures.sparsity")
    result = pipeline.make_figure("pqi_properties", "smoke", n_trials=2, n_fractions=4, dim=64)
    assert len(result.figure.axes) == 2 and result.run_ids == []
    assert set(result.tables) == {"Property checks", "Sparsity sweep"}
    assert "profile smoke" in result.caption and result.params["dim"] == 64
    assert len(result.tables["Sparsity sweep"]) == 4 * 4
    with pytest.raises(ValueError, match="unknown parameter 'dimension'"):
        pipeline.resolve("pqi_properties", "smoke", dimension=3)
    with pytest.raises(ValueError, match="unknown profile 'huge'"):
        pipeline.resolve("pqi_properties", "huge")
