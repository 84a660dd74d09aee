"""The accelerator path of measures / masks / pruning agrees with the CPU path (skipped without CUDA)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

from sparsity_lab.masks import MaskSet
from sparsity_lab.measures import sparsity as measures
from sparsity_lab.measures.sparsity import (
    SCOPES,
    gini,
    hoyer,
    measure_weights,
    pq_index,
    pq_index_by_group,
    pq_index_grid,
)
from sparsity_lab.rules.prune import prune

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _weights_and_masks(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    weights = {"conv.weight": torch.randn(16, 3, 3, 3, generator=g), "fc.weight": torch.randn(10, 64, generator=g),
               "conv2.weight": torch.randn(32, 16, 1, 1, generator=g)}
    masks = {n: torch.rand(w.shape, generator=g) < 0.6 for n, w in weights.items()}
    masks["fc.weight"][3] = False
    return weights, masks


def _cuda(d):
    return {n: t.cuda() for n, t in d.items()}


def _close(a: list[dict], b: list[dict], tol: float = 1e-9) -> None:
    assert [(r["scope"], r["group"], r["metric"]) for r in a] == [(r["scope"], r["group"], r["metric"]) for r in b]
    for x, y in zip(a, b):
        assert (math.isnan(x["value"]) and math.isnan(y["value"])) or abs(x["value"] - y["value"]) < tol, (x, y)


@pytest.mark.parametrize("reduce", ["mean", None])
def test_measure_weights_cuda_matches_cpu(reduce):
    weights, masks = _weights_and_masks()
    kw = dict(scopes=SCOPES, grid=True, pq_pairs=[(0.5, 1.0), (1.0, 2.0)], neuron_reduce=reduce)
    _close(measure_weights(_cuda(weights), _cuda(masks), **kw), measure_weights(weights, masks, **kw))


def test_resnet18_cuda_matches_cpu():
    masks = MaskSet.for_model(torchvision.models.resnet18())
    g = torch.Generator().manual_seed(1)
    weights = {n: torch.randn(m.shape, generator=g) for n, m in masks.items()}
    masks = MaskSet({n: torch.rand(m.shape, generator=g) < 0.5 for n, m in masks.items()})
    kw = dict(scopes=SCOPES, grid=True)
    _close(measure_weights(_cuda(weights), _cuda(masks), **kw), measure_weights(weights, masks, **kw), 1e-7)


def test_no_host_synchronisation_inside_the_measurement():
    weights, masks = _weights_and_masks(2)
    weights, masks = _cuda(weights), _cuda(masks)
    req = measures._request(SCOPES, [(0.5, 1.0)], True, measures.MEASURES, "mean")
    measures._value_blocks(weights, masks, req)  # warm-up (allocator, kernels)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        blocks = measures._value_blocks(weights, masks, req)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert all(b[-1].is_cuda for b in blocks)


def test_single_vector_functions_cuda():
    x = torch.randn(10_000, dtype=torch.float64) * torch.rand(10_000, dtype=torch.float64)
    for fn in (pq_index, gini, hoyer):
        assert float(fn(x.cuda())) == pytest.approx(float(fn(x)), abs=1e-12)
    assert torch.allclose(pq_index_grid(x.cuda()).cpu(), pq_index_grid(x), atol=1e-12, equal_nan=True)


@pytest.mark.parametrize("scope", SCOPES)
def test_prune_rules_cuda_match_cpu(scope):
    weights, masks = _weights_and_masks(3)
    masks = MaskSet(masks)
    for rule, hyper in (("sap", {}), ("lt", {"fraction": 0.3}),
                        ("oneshot", {"fraction": 0.2, "iteration": 2, "reference": weights})):
        hyper_cuda = {**hyper, "reference": _cuda(weights)} if "reference" in hyper else hyper
        a = prune(rule, weights, masks, scope=scope, **hyper)
        b = prune(rule, _cuda(weights), masks.to("cuda"), scope=scope, **hyper_cuda)
        assert all(torch.equal(a.masks[n], b.masks[n].cpu()) for n in masks)
        assert a.records == b.records
    r = prune("random", _cuda(weights), masks.to("cuda"), scope=scope,
              generator=torch.Generator(device="cuda").manual_seed(0))
    assert r.masks.remaining_per_layer() == masks.remaining_per_layer()


def test_masks_stay_zero_on_cuda_with_adam():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(20, 30), nn.ReLU(), nn.Linear(30, 4)).cuda()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    x, y = torch.randn(64, 20, device="cuda"), torch.randint(0, 4, (64,), device="cuda")
    for _ in range(3):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    masks = MaskSet({n: torch.rand(m.shape, device="cuda") < 0.5 for n, m in MaskSet.for_model(model).items()})
    masks.apply_(model)
    masks.zero_optimizer_state_(opt, model)
    for _ in range(50):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        masks.apply_(model)
        masks.zero_optimizer_state_(opt, model)
    for n, p in masks.parameters(model).items():
        assert (p[~masks[n]] == 0).all()
        assert (opt.state[p]["exp_avg_sq"][~masks[n]] == 0).all()


# ------------------------------------------------- empty groups: CUDA equals the direct formulas (issue 9 §1)
def _direct(s: np.ndarray) -> dict[str, float]:
    """PQI (0.5, 1) / (1, 2), Hurley–Rickard Gini and Hoyer of the survivors ``s`` (NaN where undefined)."""
    a = np.sort(np.abs(s))
    d = a.size
    if d == 0 or not a.any():
        return {"pqi05": math.nan, "pqi12": math.nan, "gini": math.nan, "hoyer": math.nan}
    m = {r: np.mean(a ** r) ** (1 / r) for r in (0.5, 1.0, 2.0)}
    k = np.arange(1, d + 1)
    hoy = (math.sqrt(d) - a.sum() / np.sqrt(np.sum(a * a))) / (math.sqrt(d) - 1) if d > 1 else math.nan
    return {"pqi05": 1 - m[0.5] / m[1.0], "pqi12": 1 - m[1.0] / m[2.0],
            "gini": float(np.sum((2 * k - d - 1) * a) / (d * a.sum())), "hoyer": float(hoy)}


def _empty_patterns():
    """Masks with leading, inner and trailing empty rows, whole empty layers, and no survivor at all."""
    g = torch.Generator().manual_seed(7)
    weights = {"a.weight": torch.randn(5, 7, generator=g), "b.weight": torch.randn(4, 2, 3, 3, generator=g),
               "c.weight": torch.randn(6, 5, generator=g)}
    base = {n: torch.rand(w.shape, generator=g) < 0.6 for n, w in weights.items()}
    cases = []
    for rows in ({"a.weight": [0]}, {"a.weight": [2]}, {"c.weight": [4, 5]}, {"c.weight": [0, 2, 5]},
                 {"b.weight": [0, 1, 2, 3]}, {"c.weight": list(range(6))}, {"a.weight": [4], "c.weight": [5]},
                 {n: list(range(w.shape[0])) for n, w in weights.items()}):
        masks = {n: m.clone() for n, m in base.items()}
        for n, idx in rows.items():
            masks[n][idx] = False
        cases.append(masks)
    return weights, cases


def _direct_records(weights, masks) -> dict[tuple[str, str, str, tuple], float]:
    groups = {("global", "all"): np.concatenate([weights[n].double().numpy()[masks[n].numpy()] for n in weights])}
    for n, w in weights.items():
        groups[("layer", n)] = w.double().numpy()[masks[n].numpy()]
        for i in range(w.shape[0]):
            groups[("neuron", f"{n}[{i}]")] = w[i].double().reshape(-1).numpy()[masks[n][i].reshape(-1).numpy()]
    out = {}
    for (scope, group), s in groups.items():
        v = _direct(s)
        out.update({(scope, group, "pqi", (0.5, 1.0)): v["pqi05"], (scope, group, "pqi", (1.0, 2.0)): v["pqi12"],
                    (scope, group, "gini", None): v["gini"], (scope, group, "hoyer", None): v["hoyer"]})
    return out


def test_empty_groups_cuda_equal_direct_formulas_in_any_order():
    weights, cases = _empty_patterns()
    kw = dict(scopes=SCOPES, pq_pairs=[(0.5, 1.0), (1.0, 2.0)], neuron_reduce=None)
    for masks in cases:
        want = _direct_records(weights, masks)
        for order in (list(weights), list(reversed(weights))):
            ws = {n: weights[n] for n in order}
            for recs in (measure_weights(_cuda(ws), _cuda(masks), **kw), measure_weights(ws, masks, **kw)):
                got = {(r["scope"], r["group"], r["metric"], (r["p"], r["q"]) if r["metric"] == "pqi" else None):
                       r["value"] for r in recs if r["metric"] != "remaining"}
                assert set(got) == set(want)
                for key, value in want.items():  # Gini ranks magnitudes at float32 resolution
                    assert (math.isnan(got[key]) and math.isnan(value)) or abs(got[key] - value) < 1e-6, (key, got[key], value)
        for scope in SCOPES:
            a, b = pq_index_by_group(_cuda(weights), _cuda(masks), scope), pq_index_by_group(weights, masks, scope)
            for group in a:
                assert torch.equal(a[group][0].cpu(), b[group][0])
                assert torch.allclose(a[group][1].cpu(), b[group][1], atol=1e-9, equal_nan=True)
