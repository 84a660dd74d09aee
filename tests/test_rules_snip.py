"""SNIP (Lee et al. 2019, §4.1): saliency |g ⊙ w| at initialisation, a rule that needs data, end to end."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from sparsity_lab.config.configs import ConfigError, IterativeConfig
from sparsity_lab.config.fields import config_with
from sparsity_lab.data.device_data import epoch_generator
from sparsity_lab.experiments import run
from sparsity_lab.experiments.common import masks_from_tensors, seeded_model
from sparsity_lab.experiments.iterative import RULE_BATCHES_OFFSET, load_run_data
from sparsity_lab.experiments.own_loop import iterative_pruning
from sparsity_lab.masks import MaskSet
from sparsity_lab.rules.prune import PRUNING_RULES, prune
from sparsity_lab.rules.snip import snip_scores
from sparsity_lab.store import ResultsStore
from sparsity_lab.sweep.runner import run_many


def _sq(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return ((out - y) ** 2).sum()


def _tiny() -> tuple[nn.Module, MaskSet, list[tuple[torch.Tensor, torch.Tensor]]]:
    g = torch.Generator().manual_seed(0)
    model = nn.Linear(4, 3, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.randn(3, 4, generator=g))
    masks = MaskSet({"weight": torch.rand(3, 4, generator=g) > 0.3})
    batches = [(torch.randn(5, 4, generator=g), torch.randn(5, 3, generator=g)) for _ in range(2)]
    return model, masks, batches


def test_scores_equal_grad_times_weight_computed_by_hand():
    model, masks, batches = _tiny()
    before = model.weight.detach().clone()
    w = before * masks["weight"]  # SNIP scores the masked model
    # L = Σ (x Wᵀ − y)², so ∂L/∂W = 2 (x Wᵀ − y)ᵀ x; g = mean over the batches
    g = sum(2 * (x @ w.T - y).T @ x for x, y in batches) / len(batches)
    scores = snip_scores(model, masks, batches, _sq)
    torch.testing.assert_close(scores["weight"], (g * w).abs())
    assert torch.equal(model.weight.detach(), before)  # the model itself is untouched
    init = {"weight": torch.ones(3, 4)}  # scored at a given initialisation instead of the model as it is
    w0 = init["weight"] * masks["weight"]
    g0 = sum(2 * (x @ w0.T - y).T @ x for x, y in batches) / len(batches)
    torch.testing.assert_close(snip_scores(model, masks, batches, _sq, init=init)["weight"], (g0 * w0).abs())


def test_prune_keeps_the_top_scores_and_exact_counts():
    model, masks, batches = _tiny()
    scores = snip_scores(model, masks, batches, _sq)["weight"]
    out = prune("snip", model, masks, scope="global", fraction=0.5, batches=batches, loss_fn=_sq)
    d = int(masks["weight"].sum())
    assert out.masks.num_remaining() == d - math.floor(0.5 * d)
    kept, dropped = out.masks["weight"], masks["weight"] & ~out.masks["weight"]
    assert scores[dropped].max() <= scores[kept].min()
    assert not (kept & ~masks["weight"]).any()
    assert PRUNING_RULES["snip"].needs_data and PRUNING_RULES["snip"].hyperparameters == ("fraction", "num_batches")


@pytest.mark.parametrize(("call", "needle"), [
    (lambda m, k, b: prune("snip", m, k, loss_fn=_sq), "batches"),
    (lambda m, k, b: prune("snip", dict(m.named_parameters()), k, batches=b), "model"),
    (lambda m, k, b: prune("snip", m, k, batches=b, fraction=1.0), "fraction"),
    (lambda m, k, b: prune("snip", m, k, batches=b, num_batches=0), "num_batches"),
])
def test_bad_input_names_the_value(call, needle):
    model, masks, batches = _tiny()
    with pytest.raises(ValueError, match=needle):
        call(model, masks, batches)


def _config(**kw) -> IterativeConfig:
    base = IterativeConfig(**{"dataset": "digits", "model": "mlp", "method": "snip", "iterations": 2,
                              "pq_grid": False, **kw})
    return config_with(base, **{"train.epochs": 1})


def test_iterative_snip_on_digits_keeps_the_expected_counts_and_scores_at_theta0(tmp_path):
    cfg = _config(prune_fraction=0.3)
    store = ResultsStore(tmp_path)
    records = run(cfg, store=store, device="cpu", progress=False).records
    remaining = records[(records.metric == "remaining") & (records.stage == "retrained")
                        & (records.scope == "model")].set_index("iteration")["value"]
    data = load_run_data(cfg, torch.device("cpu"))
    model = seeded_model(cfg.model, data.info, cfg.seed, torch.device("cpu"))  # θ₀ (a complete run drops "init")
    total = round(remaining[0] * sum(m.numel() for m in masks_from_tensors(
        store.load_step_tensors(cfg.run_id, 0), torch.device("cpu"), model).values()))
    n = total
    for t in range(3):  # n_{t+1} = n_t − ⌊0.3 n_t⌋ at the global scope
        assert round(remaining[t] * total) == n
        n -= math.floor(0.3 * n)
    # m_1 is SNIP of θ₀ on the run's first shuffled batch (the rule's "init" input), not of the trained w_0
    batch = next(data.batches("train", cfg.train.batch_size, shuffle=True,
                              generator=epoch_generator(cfg.seed, RULE_BATCHES_OFFSET)))
    expected = prune("snip", model, MaskSet.for_model(model), fraction=0.3, batches=[batch]).masks
    stored = masks_from_tensors(store.load_step_tensors(cfg.run_id, 0), torch.device("cpu"), model)
    assert all(torch.equal(stored[k], expected[k]) for k in expected)


def test_snip_configs_run_through_a_sweep_and_validate(tmp_path):
    out = run_many([_config(), _config(snip_batches=2, scope="layer")], devices=["cpu"], store=tmp_path,
                   progress=False)
    assert [o.status for o in out] == ["done", "done"]
    with pytest.raises(ConfigError, match="snip_batches=0"):
        _config(snip_batches=0).validate()


def test_snip_around_an_own_training_loop():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(20, 16), nn.ReLU(), nn.Linear(16, 2))
    x = torch.randn(64, 20, generator=torch.Generator().manual_seed(1))
    y = (x[:, 0] > 0).long()
    total = sum(p.numel() for n, p in model.named_parameters() if n.endswith("weight"))
    masks, records = iterative_pruning(model, lambda m, k: None, rule="snip", iterations=2, fraction=0.5,
                                       data=[(x, y)])
    assert masks.num_remaining() == total - math.floor(0.5 * total) - math.floor(0.5 * (total - math.floor(0.5 * total)))
    with pytest.raises(ValueError, match="pass data="):
        iterative_pruning(model, lambda m, k: None, rule="snip", iterations=1)


def test_seed_group_trains_snip_members_together_with_the_masks_of_separate_runs(tmp_path):
    from sparsity_lab.experiments.seed_group import run_seed_group

    configs = [_config(seed=s, iterations=1) for s in (0, 1)]
    together, alone = ResultsStore(tmp_path / "group"), ResultsStore(tmp_path / "alone")
    run_seed_group(configs, store=together, device="cpu", progress=False)
    for c in configs:  # SNIP's masks depend on θ₀, m_t and the batches only: exactly equal
        run(c, store=alone, device="cpu", progress=False)
        for t in (0, 1):
            a, b = (dict(s.load_step_tensors(c.run_id, t)) for s in (together, alone))
            assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
