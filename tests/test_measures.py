"""Sparsity measures (docs/methods.md §1): closed forms, Hurley–Rickard properties, grouped records."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from torch import nn

from sparsity_lab.measures import segments as _segments
from sparsity_lab.measures.flops import layer_macs, theoretical_speedup
from sparsity_lab.measures.sparsity import (
    PQ_GRID_P,
    PQ_GRID_Q,
    compression_ratio,
    density,
    gini,
    hoyer,
    measure_model,
    measure_weights,
    pq_index,
    pq_index_grid,
    validate_pq,
)

PROPS = settings(max_examples=150, deadline=None, derandomize=True)
# p <= 1 pairs (Robin Hood holds) plus pairs with p > 1 where the other five properties hold.
PAIRS_P_LE_1 = [(0.5, 1.0), (1.0, 2.0), (0.5, 2.0), (0.1, 1.0), (0.9, 1.0), (1.0, 1.1), (0.25, 1.5), (0.7, 0.9)]
PAIRS_ANY = PAIRS_P_LE_1 + [(1.5, 2.0), (2.0, 3.0)]
vectors = st.lists(st.one_of(st.just(0.0), st.floats(0.01, 100.0)), min_size=2, max_size=20)


def t64(xs) -> torch.Tensor:
    return torch.tensor(xs, dtype=torch.float64)


def pqi(x, p, q) -> float:
    return float(pq_index(x, p, q))


def brute_gini(x: torch.Tensor) -> float:
    """Mean-absolute-difference form: ΣΣ|x_i − x_j| / (2·N·Σx) (equal to Hurley–Rickard's sorted form)."""
    a = x.abs()
    return float((a[:, None] - a[None, :]).abs().sum() / (2 * a.numel() * a.sum()))


# ----------------------------------------------------------------------------------------- validation
@pytest.mark.parametrize("p,q", [(0.5, 1.0), (0.37, 1.93), (1, 2), (2.0, 5.0), (0.01, 0.02)])
def test_validate_pq_accepts_any_real_pair(p, q):
    validate_pq(p, q)
    assert math.isfinite(pqi(torch.randn(10), p, q))


@pytest.mark.parametrize("p,q", [(1.0, 0.5), (0.5, 0.5), (0.0, 1.0), (-1.0, 1.0), (math.nan, 1.0), (1.0, math.inf)])
def test_validate_pq_rejects(p, q):
    with pytest.raises(ValueError, match="0 < p < q"):
        validate_pq(p, q)
    with pytest.raises(ValueError, match="0 < p < q"):
        pq_index(torch.randn(5), p, q)


def test_error_message_names_values():
    with pytest.raises(ValueError, match=r"got p=1.0, q=0.5"):
        validate_pq(1.0, 0.5)


# --------------------------------------------------------------------------------------- closed forms
@pytest.mark.parametrize("d", [1, 2, 7, 1000])
@pytest.mark.parametrize("p,q", [(0.5, 1.0), (1.0, 2.0), (0.3, 1.7)])
def test_pqi_constant_vector_is_zero(d, p, q):
    assert abs(pqi(torch.full((d,), -3.7, dtype=torch.float64), p, q)) < 1e-12


@pytest.mark.parametrize("d", [2, 5, 64, 10_000])
@pytest.mark.parametrize("p,q", [(0.5, 1.0), (1.0, 2.0), (0.2, 1.4)])
def test_pqi_one_hot_is_maximum(d, p, q):
    x = torch.zeros(d, dtype=torch.float64)
    x[d // 2] = -2.5
    assert pqi(x, p, q) == pytest.approx(1 - d ** (1 / q - 1 / p), abs=1e-12)


def test_pqi_gaussian_known_values():
    x = torch.randn(1_000_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    e_sqrt = 2 ** 0.25 * math.gamma(0.75) / math.sqrt(math.pi)  # E|x|^{1/2} for x ~ N(0, 1)
    assert pqi(x, 0.5, 1.0) == pytest.approx(1 - e_sqrt ** 2 / math.sqrt(2 / math.pi), abs=0.005)
    assert pqi(x, 0.5, 1.0) == pytest.approx(0.153, abs=0.005)
    assert pqi(x, 1.0, 2.0) == pytest.approx(1 - math.sqrt(2 / math.pi), abs=0.005)


def test_pqi_matches_direct_formula():
    x = torch.randn(300, dtype=torch.float64)
    for p, q in [(0.5, 1.0), (0.37, 2.9), (1.3, 1.31)]:
        d = x.numel()
        direct = 1 - d ** (1 / q - 1 / p) * x.abs().pow(p).sum() ** (1 / p) / x.abs().pow(q).sum() ** (1 / q)
        assert pqi(x, p, q) == pytest.approx(float(direct), abs=1e-12)


@pytest.mark.parametrize("fn", [pq_index, gini, hoyer])
@pytest.mark.parametrize("x", [torch.tensor([]), torch.zeros(5), torch.zeros(3, 4)])
def test_nan_for_empty_or_all_zero(fn, x):
    assert math.isnan(float(fn(x)))


def test_grid_nan_for_all_zero_and_hoyer_single_entry():
    assert torch.isnan(pq_index_grid(torch.zeros(4))).all()
    assert math.isnan(float(hoyer(torch.tensor([3.0]))))


def test_gini_and_hoyer_closed_forms():
    for n in (2, 5, 100):
        one_hot = torch.zeros(n, dtype=torch.float64)
        one_hot[1] = 4.0
        assert float(gini(one_hot)) == pytest.approx((n - 1) / n, abs=1e-12)
        assert float(hoyer(one_hot)) == pytest.approx(1.0, abs=1e-12)
        assert float(gini(torch.full((n,), 2.0))) == pytest.approx(0.0, abs=1e-12)
        assert float(hoyer(torch.full((n,), 2.0))) == pytest.approx(0.0, abs=1e-12)
    x = torch.randn(257, dtype=torch.float64)
    assert float(gini(x)) == pytest.approx(brute_gini(x), abs=1e-12)
    d = x.numel()
    assert float(hoyer(x)) == pytest.approx((d ** 0.5 - float(x.abs().sum() / x.norm())) / (d ** 0.5 - 1), abs=1e-12)


def test_density():
    m = torch.tensor([[True, False], [True, True]])
    assert float(density(m)) == 0.75
    assert math.isnan(float(density(torch.zeros(0, dtype=torch.bool))))


# ----------------------------------------------------------------------------------------------- grid
def test_grid_constants():
    assert PQ_GRID_P == (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
    assert PQ_GRID_Q == (1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 1.7, 1.8, 1.9, 2.0)


def test_grid_equals_per_pair_function():
    x = torch.randn(1000, dtype=torch.float64) * torch.rand(1000, dtype=torch.float64)
    g = pq_index_grid(x)
    assert g.shape == (len(PQ_GRID_P), len(PQ_GRID_Q))
    for i, p in enumerate(PQ_GRID_P):
        for j, q in enumerate(PQ_GRID_Q):
            if p < q:
                assert float(g[i, j]) == pytest.approx(pqi(x, p, q), abs=1e-12)
            else:
                assert math.isnan(float(g[i, j]))


def test_grid_custom_exponents_off_the_chain():
    x = torch.rand(100, dtype=torch.float64)
    g = pq_index_grid(x, ps=(0.37, 1.21), qs=(0.5, 2.13))
    assert float(g[0, 1]) == pytest.approx(pqi(x, 0.37, 2.13), abs=1e-12)
    assert float(g[0, 0]) == pytest.approx(pqi(x, 0.37, 0.5), abs=1e-12)
    assert math.isnan(float(g[1, 0]))
    with pytest.raises(ValueError, match="exponents > 0"):
        pq_index_grid(x, ps=(0.0, 0.5))


# ------------------------------------------------------------------------ Hurley–Rickard properties
def _measure(kind: str, x: torch.Tensor, pq) -> float:
    return pqi(x, *pq) if kind == "pqi" else float(gini(x))


@PROPS
@given(w=vectors, pq=st.sampled_from(PAIRS_P_LE_1), frac=st.floats(0.05, 0.95), ij=st.tuples(st.integers(0, 99), st.integers(0, 99)), kind=st.sampled_from(["pqi", "gini"]))
def test_robin_hood(w, pq, frac, ij, kind):
    """D1: moving mass α < (w_i − w_j)/2 from a larger to a smaller entry lowers sparsity (PQI: p ≤ 1)."""
    x = t64(w)
    i, j = ij[0] % len(w), ij[1] % len(w)
    assume(x[i] - x[j] > 1e-2 * x.max())
    alpha = frac * float(x[i] - x[j]) / 2
    y = x.clone()
    y[i] -= alpha
    y[j] += alpha
    assert _measure(kind, y, pq) < _measure(kind, x, pq)


def test_robin_hood_fails_for_pqi_with_p_above_one():
    """Weak form: for p > 1 Robin Hood does not hold in general (Diao et al. assume p ≤ 1 < q)."""
    x, y = t64([1.0, 0.0, 5.5]), t64([0.75, 0.25, 5.5])  # 0.25 moved from entry 0 to entry 1
    assert pqi(y, 1.5, 2.0) > pqi(x, 1.5, 2.0)
    assert pqi(y, 0.5, 2.0) < pqi(x, 0.5, 2.0)
    assert float(gini(y)) < float(gini(x))


@PROPS
@given(w=vectors, pq=st.sampled_from(PAIRS_ANY), alpha=st.floats(1e-3, 1e3), kind=st.sampled_from(["pqi", "gini"]))
def test_scaling(w, pq, alpha, kind):
    """D2: S(α·w) = S(w)."""
    x = t64(w)
    assume(x.max() > 0)
    assert _measure(kind, alpha * x, pq) == pytest.approx(_measure(kind, x, pq), abs=1e-12)


@PROPS
@given(w=vectors, pq=st.sampled_from(PAIRS_ANY), c=st.floats(0.05, 5.0), kind=st.sampled_from(["pqi", "gini"]))
def test_rising_tide(w, pq, c, kind):
    """D3: adding a constant to every magnitude lowers sparsity (unless all entries are equal)."""
    x = t64(w)
    assume(x.max() - x.min() > 1e-3 * x.max())
    assert _measure(kind, x + c * x.max(), pq) < _measure(kind, x, pq)


@PROPS
@given(w=vectors, pq=st.sampled_from(PAIRS_ANY), kind=st.sampled_from(["pqi", "gini"]))
def test_cloning(w, pq, kind):
    """D4: S(w‖w) = S(w)."""
    x = t64(w)
    assume(x.max() > 0)
    assert _measure(kind, torch.cat([x, x, x]), pq) == pytest.approx(_measure(kind, x, pq), abs=1e-12)
    assert _measure(kind, torch.cat([x, x]), pq) == pytest.approx(_measure(kind, x, pq), abs=1e-12)


@PROPS
@given(w=vectors, pq=st.sampled_from(PAIRS_ANY), i=st.integers(0, 99), alpha=st.floats(0.1, 100.0), kind=st.sampled_from(["pqi", "gini"]))
def test_bill_gates(w, pq, i, alpha, kind):
    """P1: ∃β such that growing one entry beyond w_i + β raises sparsity. With max|w| = 1 and another
    non-zero entry, β = 2 suffices for PQI (x^{q−p} > Σ_{j≠i} w_j^q / Σ_{j≠i} w_j^p once x ≥ 1); the growth is
    not monotone from β = 0 for q > 1 (e.g. (1, 2)), the 'eventually' form of the property."""
    x = t64(w)
    i %= len(w)
    others = torch.cat([x[:i], x[i + 1:]])
    assume(others.max() > 0)
    x = x / x.max()
    beta = 2.0
    a, b = x.clone(), x.clone()
    a[i] += beta
    b[i] += beta + alpha
    assert _measure(kind, b, pq) > _measure(kind, a, pq)


@PROPS
@given(w=vectors, pq=st.sampled_from(PAIRS_ANY), zeros=st.integers(1, 10), kind=st.sampled_from(["pqi", "gini"]))
def test_babies(w, pq, zeros, kind):
    """P2: appending zeros raises sparsity."""
    x = t64(w)
    assume(x.max() > 0)
    assert _measure(kind, torch.cat([x, torch.zeros(zeros, dtype=torch.float64)]), pq) > _measure(kind, x, pq)


def test_bill_gates_is_eventual_not_monotone_for_pqi_1_2():
    x = t64([1.0, 0.9, 0.8, 0.7, 0.05])
    vals = []
    for b in np.linspace(0, 0.5, 11):
        y = x.clone()
        y[-1] += b
        vals.append(pqi(y, 1.0, 2.0))
    assert vals[1] < vals[0]  # growing the small entry first lowers PQI...
    big = [pqi(torch.cat([x[:-1], t64([x[-1] + b])]), 1.0, 2.0) for b in (2.0, 5.0, 50.0)]
    assert big[0] < big[1] < big[2]  # ...and eventually raises it


# -------------------------------------------------------------------------------- grouped records
def _toy(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    weights = {"conv.weight": torch.randn(6, 3, 3, 3, generator=g), "fc.weight": torch.randn(5, 12, generator=g)}
    masks = {n: torch.rand(w.shape, generator=g) > 0.4 for n, w in weights.items()}
    masks["fc.weight"][2] = False  # a fully pruned neuron
    masks["fc.weight"][3, 1:] = False  # a single-survivor neuron
    return weights, masks


def _value(records, scope, group, metric, p=None):
    hits = [r["value"] for r in records if r["scope"] == scope and r["group"] == group and r["metric"] == metric
            and (p is None or (r["p"], r["q"]) == p)]
    assert len(hits) == 1, (scope, group, metric, p, hits)
    return hits[0]


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or abs(a - b) < 1e-6


@pytest.mark.parametrize("block", [None, 7])
def test_records_match_standalone_functions(monkeypatch, block):
    if block is not None:  # force the blocked CPU path on tiny data
        monkeypatch.setattr(_segments, "_CPU_BLOCK", block)
    weights, masks = _toy()
    recs = measure_weights(weights, masks, pq_pairs=[(0.5, 1.0), (1.0, 2.0)], neuron_reduce=None)
    assert all(isinstance(r["value"], float) for r in recs)
    for n, w in weights.items():
        w64, m = w.double(), masks[n]
        s = w64[m]
        for fn, metric in ((gini, "gini"), (hoyer, "hoyer")):
            assert _same(_value(recs, "layer", n, metric), float(fn(s)))
        assert _same(_value(recs, "layer", n, "pqi", (1.0, 2.0)), pqi(s, 1.0, 2.0))
        assert _value(recs, "layer", n, "remaining") == pytest.approx(float(m.double().mean()))
        for i in range(w.shape[0]):  # a conv neuron is its whole flattened filter
            row, mr = w64[i].reshape(-1), m[i].reshape(-1)
            assert _same(_value(recs, "neuron", f"{n}[{i}]", "pqi", (0.5, 1.0)), pqi(row[mr], 0.5, 1.0))
            assert _same(_value(recs, "neuron", f"{n}[{i}]", "gini"), float(gini(row[mr])))
            assert _same(_value(recs, "neuron", f"{n}[{i}]", "hoyer"), float(hoyer(row[mr])))
    every = torch.cat([weights[n].double()[masks[n]] for n in weights])
    assert _same(_value(recs, "global", "all", "pqi", (0.5, 1.0)), pqi(every, 0.5, 1.0))
    assert _same(_value(recs, "global", "all", "gini"), float(gini(every)))
    assert math.isnan(_value(recs, "neuron", "fc.weight[2]", "pqi", (0.5, 1.0)))
    assert math.isnan(_value(recs, "neuron", "fc.weight[3]", "hoyer"))


def test_neuron_mean_is_nanmean_over_neurons():
    weights, masks = _toy(1)
    per = measure_weights(weights, masks, scopes=["neuron"], neuron_reduce=None)
    mean = measure_weights(weights, masks, scopes=["neuron"])
    for n, w in weights.items():
        for metric in ("pqi", "gini", "hoyer", "remaining"):
            vals = [_value(per, "neuron", f"{n}[{i}]", metric) for i in range(w.shape[0])]
            assert _value(mean, "neuron", n, metric) == pytest.approx(float(np.nanmean(vals)), abs=1e-12)


def test_grid_records_and_nan_pq_for_other_metrics():
    weights, masks = _toy(2)
    recs = measure_weights(weights, masks, grid=True)
    pairs = [(p, q) for p in PQ_GRID_P for q in PQ_GRID_Q if p < q]
    for scope, group in (("global", "all"), ("layer", "fc.weight")):
        got = {(r["p"], r["q"]): r["value"] for r in recs if (r["scope"], r["group"], r["metric"]) == (scope, group, "pqi")}
        assert set(got) == set(pairs)
    layer = weights["fc.weight"].double()[masks["fc.weight"]]
    assert _value(recs, "layer", "fc.weight", "pqi", (0.3, 1.7)) == pytest.approx(pqi(layer, 0.3, 1.7), abs=1e-9)
    assert len([r for r in recs if r["scope"] == "neuron" and r["metric"] == "pqi"]) == 2  # pq_pairs only
    assert all(math.isnan(r["p"]) and math.isnan(r["q"]) for r in recs if r["metric"] != "pqi")


def test_masks_none_equals_all_true_and_scale_invariance():
    weights, _ = _toy(3)
    ones = {n: torch.ones_like(w, dtype=torch.bool) for n, w in weights.items()}
    a = measure_weights(weights)
    b = measure_weights({n: 1e-6 * w for n, w in weights.items()}, ones)
    assert [r["value"] for r in a] == pytest.approx([r["value"] for r in b], abs=1e-9)


def test_measure_errors():
    weights, masks = _toy()
    with pytest.raises(ValueError, match="unknown scope"):
        measure_weights(weights, masks, scopes=["model"])
    with pytest.raises(ValueError, match="unknown measure"):
        measure_weights(weights, masks, measures=["l0"])
    with pytest.raises(ValueError, match="neuron_reduce"):
        measure_weights(weights, masks, neuron_reduce="max")
    with pytest.raises(ValueError, match="no mask"):
        measure_weights(weights, {"fc.weight": masks["fc.weight"]})
    with pytest.raises(ValueError, match="0 < p < q"):
        measure_weights(weights, masks, pq_pairs=[(1.0, 1.0)])


def _mlp() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 3))


def test_measure_model_and_compression_ratio():
    model = _mlp()
    masks = {"1.weight": torch.rand(8, 12) > 0.5, "3.weight": torch.ones(3, 8, dtype=torch.bool)}
    masks["3.weight"][0, :4] = False
    recs = measure_model(model, masks)
    assert {r["group"] for r in recs if r["scope"] == "layer"} == {"1.weight", "3.weight"}
    total = 12 * 8 + 8 + 8 * 3 + 3
    pruned = int((~masks["1.weight"]).sum()) + 4
    assert compression_ratio(model, masks) == pytest.approx(total / (total - pruned))
    assert {r["group"] for r in measure_model(model) if r["scope"] == "layer"} == {"1.weight", "3.weight"}


def test_layer_macs_and_theoretical_speedup_by_hand():
    model = _mlp()
    macs = layer_macs(model, torch.randn(1, 12))
    assert macs == {"1.weight": 12 * 8, "3.weight": 8 * 3}
    masks = {"1.weight": torch.zeros(8, 12, dtype=torch.bool), "3.weight": torch.ones(3, 8, dtype=torch.bool)}
    masks["1.weight"][:, :3] = True  # density 1/4
    assert theoretical_speedup(model, masks, torch.randn(1, 12)) == pytest.approx(120 / (96 / 4 + 24))
    conv = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1, groups=2), nn.Flatten(), nn.Linear(4 * 5 * 5, 1))
    assert layer_macs(conv, torch.randn(1, 2, 5, 5)) == {"0.weight": 4 * 25 * 1 * 9, "2.weight": 100}
