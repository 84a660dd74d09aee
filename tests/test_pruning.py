"""Pruning rules (docs/methods.md §3): exact counts, SAP closed forms, scopes, ties, controls."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from sparsity_lab.masks import MaskSet
from sparsity_lab.measures.sparsity import pq_index
from sparsity_lab.rules.prune import PRUNING_RULES, magnitude_prune, prune, sap_counts


def _weights(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"conv.weight": torch.randn(8, 3, 3, 3, generator=g), "fc.weight": torch.randn(10, 40, generator=g)}


def _full(weights) -> MaskSet:
    return MaskSet({n: torch.ones_like(w, dtype=torch.bool) for n, w in weights.items()})


def _rec(outcome, group, metric) -> float:
    (v,) = [r["value"] for r in outcome.records if r["group"] == group and r["metric"] == metric]
    return v


# ------------------------------------------------------------------------------------------------ SAP
@pytest.mark.parametrize("d", [3, 10, 100, 1000, 20_000])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sap_closed_forms(d, seed):
    w = torch.randn(d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    a = w.abs()
    r, c = sap_counts(w, 0.5, 1.0)
    assert r == math.ceil(float(a.sqrt().sum() ** 2 / a.sum()))  # pruned fraction = I_{0.5,1}
    assert c == math.floor(min(d - r, round(0.9 * d, 9)))
    r, c = sap_counts(w, 1.0, 2.0)
    assert r == math.ceil(float(a.sum() ** 2 / (a ** 2).sum()))  # kept fraction = (1 − I_{1,2})²
    assert c == math.floor(min(d - r, round(0.9 * d, 9)))


def test_sap_through_prune_matches_counts_per_layer_and_global():
    weights = _weights(1)
    masks = _full(weights)
    out = prune("sap", weights, masks, scope="layer", p=0.5, q=1.0)
    for n, w in weights.items():
        r, c = sap_counts(w.reshape(-1), 0.5, 1.0)
        assert _rec(out, n, "kept") == r and _rec(out, n, "pruned_count") == c
        assert _rec(out, n, "surviving_before") == w.numel()
        assert int(out.masks[n].sum()) == w.numel() - c
    out = prune("sap", weights, masks, scope="global", p=1.0, q=2.0)
    r, c = sap_counts(torch.cat([w.reshape(-1) for w in weights.values()]), 1.0, 2.0)
    assert _rec(out, "all", "kept") == r and out.masks.num_remaining() == masks.num_total() - c


@pytest.mark.parametrize("beta", [0.9, 0.5, 0.3, 0.7])
def test_sap_large_gamma_hits_beta_cap(beta):
    w = torch.randn(1000, generator=torch.Generator().manual_seed(3))
    r, c = sap_counts(w, 0.5, 1.0, gamma=100.0, beta=beta)
    assert c == math.floor(round(beta * 1000, 9))
    out = prune("sap", {"w": w.reshape(20, 50)}, MaskSet({"w": torch.ones(20, 50, dtype=torch.bool)}),
                scope="layer", gamma=100.0, beta=beta)
    assert out.masks.num_remaining() == 1000 - c


def test_sap_eta_r_scales_kept_count():
    w = torch.randn(500, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    eta = 0.3
    r, _ = sap_counts(w, 0.5, 1.0, eta_r=eta)
    d = 500
    assert r == math.ceil(d * (1 + eta) ** (-2.0) * (1 - float(pq_index(w, 0.5, 1.0))))


def test_at_least_one_survivor_per_group():
    weights = _weights(2)
    masks = _full(weights)
    for scope in ("global", "layer", "neuron"):
        out = prune("sap", weights, masks, scope=scope, gamma=1e6, beta=1.0)
        if scope == "global":
            assert out.masks.num_remaining() == 1
        for m in out.masks.values():
            rows = m.reshape(m.shape[0], -1).sum(1)
            assert (rows == 1).all() if scope == "neuron" else (scope == "global" or int(m.sum()) == 1)
    out = magnitude_prune(weights, masks, "neuron", {"fc.weight": [100] * 10})
    assert (out["fc.weight"].sum(1) == 1).all()


# ------------------------------------------------------------------------------------------------- LT
@pytest.mark.parametrize("scope", ["global", "layer", "neuron"])
def test_lt_removes_floor_p_d_each_iteration(scope):
    weights = _weights(3)
    masks = _full(weights)
    for _ in range(10):
        weights = {n: w + 0.01 * torch.randn_like(w) for n, w in weights.items()}  # "retrained" weights
        out = prune("lt", weights, masks, scope=scope, fraction=0.2)
        if scope == "global":
            d = masks.num_remaining()
            assert out.masks.num_remaining() == d - math.floor(0.2 * d)
        for n in masks:
            before, after = masks[n].reshape(masks[n].shape[0], -1), out.masks[n].reshape(masks[n].shape[0], -1)
            assert not (after & ~before).any()  # never revives
            if scope == "layer":
                assert int(after.sum()) == int(before.sum()) - math.floor(0.2 * int(before.sum()))
            if scope == "neuron":
                d = before.sum(1)
                assert torch.equal(after.sum(1), d - torch.floor(0.2 * d.double()).long())
        masks = out.masks
    if scope == "global":  # remaining ≈ (1 − P)^t up to the floors
        assert masks.remaining_fraction() == pytest.approx(0.8 ** 10, rel=0.05)


def test_lt_layer_rates_per_layer():
    weights = _weights(4)
    out = prune("lt", weights, _full(weights), scope="global", fraction=0.2, layer_rates={"fc.*": 0.1})
    assert {r["scope"] for r in out.records} == {"layer"}
    assert int(out.masks["fc.weight"].sum()) == 400 - 40
    assert int(out.masks["conv.weight"].sum()) == 216 - math.floor(0.2 * 216)
    with pytest.raises(ValueError, match="matches no masked parameter"):
        prune("lt", weights, _full(weights), layer_rates={"head.*": 0.1})


def test_neuron_scope_on_conv_groups_by_output_channel():
    w = torch.randn(8, 3, 3, 3, generator=torch.Generator().manual_seed(5)).abs() + 1.0
    w[0] *= 1e-3  # a whole filter of tiny weights: global/layer pruning would hit only this channel
    masks = MaskSet({"conv.weight": torch.ones(8, 3, 3, 3, dtype=torch.bool)})
    out = prune("lt", {"conv.weight": w}, masks, scope="neuron", fraction=0.2)
    per_channel = out.masks["conv.weight"].reshape(8, -1).sum(1)
    assert torch.equal(per_channel, torch.full((8,), 27 - 5))
    layer = prune("lt", {"conv.weight": w}, masks, scope="layer", fraction=0.2)
    assert int(layer.masks["conv.weight"][0].sum()) == 0  # layer scope removes the tiny filter first
    assert int(layer.masks["conv.weight"].sum()) == 216 - math.floor(0.2 * 216)
    assert _rec(out, "conv.weight", "pruned_count") == 8 * 5


def test_ties_are_broken_by_flat_index_deterministically():
    w = torch.tensor([1.0, 0.5, 0.5, 0.5, 2.0, 0.5])
    masks = MaskSet({"w": torch.ones(6, dtype=torch.bool)})
    out = magnitude_prune({"w": w}, masks, "layer", {"w": 2})
    assert out["w"].tolist() == [True, False, False, True, True, True]
    const = {"w": torch.full((3, 4), -0.7)}
    m = MaskSet({"w": torch.ones(3, 4, dtype=torch.bool)})
    for scope, counts in (("global", {"all": 5}), ("layer", {"w": 5})):
        a = magnitude_prune(const, m, scope, counts)["w"].reshape(-1)
        assert a.tolist() == [False] * 5 + [True] * 7
    rows = magnitude_prune(const, m, "neuron", {"w": [1, 2, 3]})["w"]
    assert rows.tolist() == [[False, True, True, True], [False, False, True, True], [False, False, False, True]]


def test_global_scope_uses_one_threshold_and_exact_count():
    weights = _weights(6)
    weights["fc.weight"] = torch.round(weights["fc.weight"] * 4) / 4  # many ties
    masks = _full(weights)
    out = magnitude_prune(weights, masks, "global", {"all": 300})
    assert out.num_remaining() == masks.num_total() - 300
    pruned = torch.cat([weights[n][~out[n]].abs() for n in weights])
    kept = torch.cat([weights[n][out[n]].abs() for n in weights])
    assert pruned.max() <= kept.min()


# ------------------------------------------------------------------------------------ one shot, random
def test_oneshot_ranks_reference_independent_of_mask_and_nests():
    ref = _weights(7)
    dense = _full(ref)
    masks_t = []
    for t in range(1, 5):
        out = prune("oneshot", _weights(8), dense, scope="layer", fraction=0.2, iteration=t, reference=ref)
        for n, w in ref.items():
            assert int(out.masks[n].sum()) == math.ceil(round(0.8 ** t * w.numel(), 9))
            assert w.abs()[~out.masks[n]].max() <= w.abs()[out.masks[n]].min()
        masks_t.append(out.masks)
    for a, b in zip(masks_t, masks_t[1:]):
        assert all(not (b[n] & ~a[n]).any() for n in a)  # nested
    other = prune("oneshot", _weights(8), masks_t[0], scope="layer", fraction=0.2, iteration=4, reference=ref)
    assert all(torch.equal(other.masks[n], masks_t[-1][n]) for n in ref)
    glob = prune("oneshot", ref, dense, scope="global", fraction=0.5, iteration=1, reference=ref)
    assert glob.masks.num_remaining() == math.ceil(0.5 * dense.num_total())


def test_random_ticket_matches_per_layer_counts():
    weights = _weights(9)
    target = prune("sap", weights, _full(weights), scope="layer").masks
    a = prune("random", weights, _full(weights), target=target, generator=torch.Generator().manual_seed(0))
    b = prune("random", weights, _full(weights), target=target, generator=torch.Generator().manual_seed(0))
    for n in target:
        assert int(a.masks[n].sum()) == int(target[n].sum())
        assert torch.equal(a.masks[n], b.masks[n])
        assert not torch.equal(a.masks[n], target[n])
    rows = prune("random", weights, _full(weights), scope="neuron", target=target)
    for n in target:
        shape = (target[n].shape[0], -1)
        assert torch.equal(rows.masks[n].reshape(shape).sum(1), target[n].reshape(shape).sum(1))


# ----------------------------------------------------------------------------------------------- errors
def test_registry_and_errors():
    assert {"sap", "lt", "oneshot", "random"} <= set(PRUNING_RULES)
    weights, masks = _weights(), _full(_weights())
    with pytest.raises(ValueError, match=r"registered rules: \['lt', 'oneshot', 'random', 'sap'"):
        prune("imp", weights, masks)
    with pytest.raises(ValueError, match=r"choose from \('global', 'layer', 'neuron'\)"):
        prune("sap", weights, masks, scope="model")
    bad = [("sap", {"p": 1.0, "q": 1.0}, "0 < p < q"), ("sap", {"beta": 0.0}, "beta"),
           ("sap", {"beta": 1.5}, "beta"), ("sap", {"gamma": -1.0}, "gamma"), ("sap", {"eta_r": -0.1}, "eta_r"),
           ("lt", {"fraction": 1.0}, "fraction"), ("lt", {"fraction": -0.1}, "fraction"),
           ("oneshot", {"iteration": 1}, "reference"), ("sap", {"fraction": 0.2}, "unknown hyperparameter")]
    for rule, hyper, msg in bad:
        with pytest.raises(ValueError, match=msg):
            prune(rule, weights, masks, **hyper)


def test_prune_accepts_a_model():
    model = nn.Sequential(nn.Linear(20, 10), nn.ReLU(), nn.Linear(10, 2))
    masks = MaskSet.for_model(model)
    out = prune("lt", model, masks, scope="layer", fraction=0.5)
    assert out.masks.remaining_per_layer() == {"0.weight": 0.5, "2.weight": 0.5}
