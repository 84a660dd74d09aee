"""Prunable parameters and MaskSet (docs/methods.md §2): exact zeros through optimizers, persistence, torch prune."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from sparsity_lab.masks import MaskSet, prunable_parameters


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny convs and optimizer steps: OpenMP's per-op barrier only slows them (10× on a busy 2-core box)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
        nn.Conv2d(4, 6, 1, bias=False), nn.ReLU(), nn.Flatten(), nn.Linear(6 * 5 * 5, 3),
    )


def _random_masks(model: nn.Module, seed: int = 0, keep: float = 0.5) -> MaskSet:
    g = torch.Generator().manual_seed(seed)
    return MaskSet({n: torch.rand(m.shape, generator=g) < keep for n, m in MaskSet.for_model(model).items()})


def test_prunable_parameters_selection_and_order():
    model = _net()
    assert list(prunable_parameters(model)) == ["0.weight", "3.weight", "6.weight"]  # BN weight is 1-D
    assert list(prunable_parameters(model, include=["0.*", "6.*"])) == ["0.weight", "6.weight"]
    assert list(prunable_parameters(model, exclude=["6.weight"])) == ["0.weight", "3.weight"]
    with pytest.raises(ValueError, match=r"'classifier\.\*'.*available: \['0.weight', '3.weight', '6.weight'\]"):
        prunable_parameters(model, include=["classifier.*"])
    with pytest.raises(ValueError, match="exclude pattern 'nope'"):
        prunable_parameters(model, exclude=["nope"])
    bare = nn.Linear(3, 2)
    assert list(prunable_parameters(bare)) == ["weight"]


def test_maskset_counts_clone_and_apply():
    model = _net()
    masks = MaskSet.for_model(model)
    total = 4 * 9 + 6 * 4 + 3 * 150
    assert masks.num_total() == total and masks.num_remaining() == total and masks.remaining_fraction() == 1.0
    masks["6.weight"][:, :75] = False
    assert masks.num_remaining() == total - 225
    assert masks.remaining_per_layer() == {"0.weight": 1.0, "3.weight": 1.0, "6.weight": 0.5}
    copy = masks.clone()
    copy["0.weight"][:] = False
    assert masks["0.weight"].all()
    assert masks.to("cpu")["6.weight"].dtype == torch.bool
    masks.apply_(model)
    assert (model[6].weight[:, :75] == 0).all() and (model[6].weight[:, 75:] != 0).all()
    with pytest.raises(ValueError, match="no parameter"):
        MaskSet({"x.weight": torch.ones(2, 2, dtype=torch.bool)}).parameters(model)


OPTIMIZERS = {
    "sgd_momentum": lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9),
    "sgd_nesterov": lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True),
    "sgd_weight_decay": lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, weight_decay=5e-4),
    "adam": lambda ps: torch.optim.Adam(ps, lr=1e-2),
    "adam_amsgrad": lambda ps: torch.optim.Adam(ps, lr=1e-2, amsgrad=True, weight_decay=1e-4),
    "adamw": lambda ps: torch.optim.AdamW(ps, lr=1e-2, weight_decay=0.05),
}


def _step(model, opt, x, y):
    opt.zero_grad()
    nn.functional.cross_entropy(model(x), y).backward()


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_pruned_weights_stay_exactly_zero_through_optimizer(name):
    model = _net()
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(16, 1, 5, 5, generator=g), torch.randint(0, 3, (16,), generator=g)
    opt = OPTIMIZERS[name](model.parameters())
    for _ in range(5):  # dense training first: non-zero optimizer state on every entry
        _step(model, opt, x, y)
        opt.step()
    params = MaskSet.for_model(model).parameters(model)
    assert all(any(torch.is_tensor(v) and v.shape == p.shape and (v != 0).double().mean() > 0.9
                   for v in opt.state[p].values()) for p in params.values())
    masks = _random_masks(model)
    masks.apply_(model)
    masks.zero_optimizer_state_(opt, model)
    before = {n: p.detach().clone() for n, p in params.items()}
    for _ in range(100):  # the protocol: forward/backward, step, apply_, zero_optimizer_state_
        _step(model, opt, x, y)
        opt.step()
        masks.apply_(model)
        masks.zero_optimizer_state_(opt, model)
        for n, p in params.items():
            assert (p[~masks[n]] == 0).all()
            for v in opt.state[p].values():
                if torch.is_tensor(v) and v.shape == p.shape:
                    assert (v[~masks[n]] == 0).all()
    assert all(not torch.equal(p[masks[n]], before[n][masks[n]]) for n, p in params.items())  # it trained


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_zeroed_state_and_masked_gradients_keep_weights_zero_inside_the_step(name):
    """With masked gradients and zeroed state, even the raw optimizer step leaves pruned weights at 0;
    keeping the stale (non-zero) state instead revives them: the state zeroing is necessary."""
    for zero_state in (True, False):
        model = _net()
        x, y = torch.randn(16, 1, 5, 5), torch.randint(0, 3, (16,))
        opt = OPTIMIZERS[name](model.parameters())
        for _ in range(5):
            _step(model, opt, x, y)
            opt.step()
        masks = _random_masks(model, seed=3)
        masks.apply_(model)
        if zero_state:
            masks.zero_optimizer_state_(opt, model)
        _step(model, opt, x, y)
        masks.mask_gradients_(model)
        opt.step()
        zero = all((p[~masks[n]] == 0).all() for n, p in masks.parameters(model).items())
        assert zero == zero_state


def test_save_load_round_trip_and_corruption(tmp_path):
    model = _net()
    masks = _random_masks(model)
    path = tmp_path / "masks.safetensors"
    masks.save(path)
    loaded = MaskSet.load(path, model)
    assert list(loaded) == list(masks)
    assert all(loaded[n].dtype == torch.bool and torch.equal(loaded[n], masks[n]) for n in masks)
    raw = path.read_bytes()
    for cut in (len(raw) // 2, len(raw) - 3, 5):
        bad = tmp_path / f"cut{cut}.safetensors"
        bad.write_bytes(raw[:cut])
        with pytest.raises(ValueError, match="corrupted or truncated"):
            MaskSet.load(bad)
    foreign = tmp_path / "foreign.safetensors"
    save_file({"0.weight": torch.ones(4, 1, 3, 3)}, str(foreign))
    with pytest.raises(ValueError, match="not a MaskSet file"):
        MaskSet.load(foreign)
    with pytest.raises(ValueError, match="shape"):
        MaskSet.load(path, nn.Sequential(nn.Conv2d(1, 5, 3), nn.BatchNorm2d(5), nn.ReLU(), nn.Conv2d(5, 6, 1),
                                         nn.ReLU(), nn.Flatten(), nn.Linear(150, 3)))


def test_torch_prune_round_trip():
    model = _net()
    masks = _random_masks(model, seed=4)
    masks.to_torch_prune(model)
    assert hasattr(model[6], "weight_mask") and hasattr(model[6], "weight_orig")
    assert (model[6].weight[~masks["6.weight"]] == 0).all()  # torch prune applies the mask in forward
    back = MaskSet.from_torch_prune(model)
    assert list(back) == list(masks)
    assert all(torch.equal(back[n], masks[n]) for n in masks)
    assert set(masks.parameters(model)) == set(masks)  # resolves <name>_orig after export


def test_for_model_handles_weights_pruned_with_torch_nn_utils_prune():
    """A weight pruned with torch.nn.utils.prune (weight_orig + weight_mask) is not skipped: it is masked
    under its plain name, starting from torch's mask, and apply_ keeps its pruned entries at zero."""
    import torch
    from torch import nn
    from torch.nn.utils import prune as torch_prune

    from sparsity_lab.masks import MaskSet

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 3))
    torch_prune.l1_unstructured(model[0], "weight", amount=0.5)
    masks = MaskSet.for_model(model)
    assert list(masks) == ["0.weight", "2.weight"]
    assert int(masks["0.weight"].sum()) == 24 and bool(masks["2.weight"].all())
    assert torch.equal(masks["0.weight"], model[0].weight_mask.bool())
    masks["0.weight"][0, :] = False
    masks.apply_(model)
    assert float(model[0].weight_orig[0].abs().sum()) == 0.0  # the weight torch recomputes from it


def test_an_empty_mask_set_leaves_the_model_alone_and_stored_tensors_without_masks_are_refused():
    from sparsity_lab.experiments.common import masks_from_tensors
    from sparsity_lab.store import StoreError

    model = nn.Linear(3, 2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    MaskSet().apply_(model)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    with pytest.raises(StoreError, match="hold no masks"):
        masks_from_tensors({"weight": torch.ones(2, 3)}, torch.device("cpu"), model)
