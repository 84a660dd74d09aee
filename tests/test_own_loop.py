"""iterative_pruning around a user's own model and hand-written training loop (docs/methods.md §3)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from sparsity_lab.experiments.own_loop import iterative_pruning
from sparsity_lab.masks import MaskSet

X = torch.randn(256, 20, generator=torch.Generator().manual_seed(0))
Y = (X[:, :5].sum(1) > 0).long()


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 2))


class OwnLoop:
    """A plain SGD loop (momentum + weight decay, which would revive pruned weights if not masked)."""

    def __init__(self) -> None:
        self.entry: list[dict[str, torch.Tensor]] = []
        self.pruned_nonzero: list[int] = []

    def __call__(self, model: nn.Module, masks: MaskSet) -> None:
        self.entry.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-3)
        masks.attach(opt, model)
        for _ in range(20):
            opt.zero_grad()
            nn.functional.cross_entropy(model(X), Y).backward()
            opt.step()
        params = masks.parameters(model)
        self.pruned_nonzero.append(sum(int((params[n].detach()[~m] != 0).sum()) for n, m in masks.items()))


def accuracy(model: nn.Module) -> float:
    model.eval()
    with torch.no_grad():
        return float((model(X).argmax(1) == Y).float().mean())


def _series(records, metric, stage="retrained", scope="global"):
    rows = records[(records.metric == metric) & (records.stage == stage) & (records.scope == scope)]
    return rows.set_index("iteration")["value"]


def test_sap_keeps_what_its_recorded_pqi_predicts_and_rewinds_to_theta0() -> None:
    model, loop = _model(), OwnLoop()
    theta0 = {k: v.clone() for k, v in model.state_dict().items()}
    masks, records = iterative_pruning(model, loop, accuracy, rule="sap", iterations=3, p=0.5, q=1.0)
    total = masks.num_total()
    remaining = _series(records, "remaining")
    pqi = records[(records.metric == "pqi") & (records.stage == "retrained") & (records.scope == "global")]
    pqi = pqi.set_index("iteration")["value"]
    for t in range(3):  # docs/methods.md §3 closed form: SAP(0.5, 1) keeps ⌈d (1 − I_{0.5,1})⌉
        d = round(remaining[t] * total)
        assert round(remaining[t + 1] * total) == math.ceil(d * (1 - pqi[t]) - 1e-9)
    assert loop.pruned_nonzero == [0, 0, 0, 0]  # attach() kept every pruned weight at zero under momentum + wd
    for entry in loop.entry:  # each training starts from θ0 ⊙ m_t: biases rewound, survivors = θ0
        for name, value in theta0.items():
            if name.endswith("bias"):
                assert torch.equal(entry[name], value), name
            else:
                alive = entry[name] != 0
                assert torch.equal(entry[name][alive], value[alive]), name
    assert (loop.entry[3]["0.weight"] == 0).any()  # and the masks did prune
    assert set(_series(records, "accuracy", scope="model").index) == {0, 1, 2, 3}
    assert set(_series(records, "accuracy", stage="pruned", scope="model").index) == {0, 1, 2}


def test_lt_and_oneshot_follow_their_exact_counts() -> None:
    total = sum(p.numel() for n, p in _model().named_parameters() if n.endswith("weight"))
    _, lt = iterative_pruning(_model(), OwnLoop(), rule="lt", iterations=4, fraction=0.2)
    n = total
    for value in _series(lt, "remaining"):  # LT: n_{t+1} = n_t − ⌊0.2 n_t⌋ (global scope)
        assert round(value * total) == n
        n -= math.floor(0.2 * n)
    masks, oneshot = iterative_pruning(_model(), OwnLoop(), rule="oneshot", iterations=3, fraction=0.2)
    for t, value in _series(oneshot, "remaining").items():  # One Shot: ⌈(1 − P)^t · n⌉ of the t = 0 model
        assert round(value * total) == math.ceil(0.8**t * total - 1e-9)


def test_without_rewinding_training_continues_from_the_pruned_weights() -> None:
    loop = OwnLoop()
    iterative_pruning(_model(), loop, rule="lt", iterations=1, rewind=False, fraction=0.5)
    before = loop.entry[1]["0.weight"]
    assert (before == 0).float().mean() >= 0.5 - 1e-6  # the second training starts from the pruned weights
    assert not torch.equal(before[before != 0], _model().state_dict()["0.weight"][before != 0])


@pytest.mark.parametrize(("kwargs", "needle"), [({"rule": "random"}, "allowed: ['sap', 'lt', 'oneshot']"),
                                                ({"iterations": -1}, "iterations=-1"),
                                                ({"rule": "lt", "p": 0.5}, "unknown hyperparameter"),
                                                ({"rule": "oneshot", "iteration": 2}, "gets its reference")])
def test_bad_arguments_name_the_value_and_what_is_allowed(kwargs: dict, needle: str) -> None:
    with pytest.raises(ValueError, match=needle.replace("[", r"\[").replace("]", r"\]")):
        iterative_pruning(_model(), OwnLoop(), **kwargs)


def test_records_plot_with_the_explorer_helpers() -> None:
    from sparsity_lab.report.explore import plot_metric

    _, records = iterative_pruning(_model(), OwnLoop(), accuracy, rule="lt", iterations=2, fraction=0.3)
    fig = plot_metric(records, "pqi", stage="retrained", scope="global")
    (line,) = fig.axes[0].get_lines()
    expected = _series(records, "pqi")
    assert list(line.get_ydata()) == pytest.approx(list(expected))
