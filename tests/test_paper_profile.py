"""A dress rehearsal of the paper profile on the CPU: its configs, at a toy budget on CIFAR-shaped data.

The paper profile (CIFAR-10 cnn and resnet18, ASNI ResNet-18) is a GPU job nobody runs in CI, so a
bug on its code paths (conv models, crop+flip, BatchNorm in ASNI-II, conv neuron scope, the random
ticket's parent) would otherwise surface hours into a user's GPU run. Representatives of every kind
of run the paper-profile figures plan (pipeline.plan) are run here with every protocol setting kept
but the data (synthetic CIFAR-shaped, 16 training and 16 test images: one batch), T and E shrunk.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sparsity_lab import experiments
from sparsity_lab.config.fields import config_with
from sparsity_lab.figures.registry import all_figures
from sparsity_lab.report import pipeline
from sparsity_lab.store import ResultsStore, load_results

ROOT = Path(__file__).resolve().parents[1]
#: (kind, model, method or variant, scope) of the runs rehearsed; the others differ only in values.
REHEARSED = [("iterative", "cnn", "sap", "global"), ("iterative", "cnn", "lt", "layer"),
             ("iterative", "cnn", "oneshot", "neuron"), ("iterative", "resnet18", "random_ticket", "global"),
             ("asni", "resnet18", "asni2", None)]


def _paper_configs() -> dict[tuple, object]:
    found: dict[tuple, object] = {}
    for _, _, runs in pipeline.plan([s.name for s in all_figures()], "paper"):
        for c in (r.config for r in runs):
            key = (c.kind, c.model, getattr(c, "method", None) or getattr(c, "variant", None),
                   getattr(c, "scope", None))
            found.setdefault(key, c)
    return found


#: 16 training and 16 test images: the runs' cost is mostly ResNet-18's 11M weights (measures, pruning, stored
#: tensors), not the images; more images only make the suite slower.
TOY_DATA = "synthetic:cifar10:16:16"


def _toy(config):
    if config.kind == "iterative":
        return config_with(config, dataset=TOY_DATA, iterations=1, **{"train.epochs": 1, "train.batch_size": 16})
    return config_with(config, dataset=TOY_DATA, kappa=0.2, **{"train.epochs": 2, "train.batch_size": 16})


@pytest.mark.slow
def test_paper_profile_runs_of_every_kind_complete_at_a_toy_budget_and_figure_9_draws_them(tmp_path: Path) -> None:
    planned = _paper_configs()
    assert set(REHEARSED) <= set(planned), sorted(set(REHEARSED) - set(planned), key=str)
    store = ResultsStore(tmp_path)
    for key in REHEARSED:
        paper = planned[key]
        assert paper.dataset == "cifar10" and paper.train.epochs in (160, 200)  # the real protocol's budget
        toy = _toy(paper)
        result = experiments.run(toy, store=store, device="cpu", progress=False)
        assert store.is_complete(result.run_id), key
        records = load_results(store=store, run_id=result.run_id)
        if toy.kind == "iterative":
            remaining = records[(records.metric == "remaining") & (records.scope == "global")
                                & (records.stage == "retrained")].set_index("iteration")["value"]
            assert remaining[0] == 1.0 and remaining[1] < 1.0, key  # one pruning step happened
            speedup = records[(records.metric == "speedup") & (records.stage == "retrained")]["value"]
            assert speedup.iloc[-1] > 1.0, key  # fewer MACs after pruning convolutions
        else:
            accuracy = records[(records.metric == "accuracy") & (records.stage == "epoch")]
            assert len(accuracy) == 2 and accuracy["value"].between(0, 1).all()
            assert records[records.metric == "c_plus"]["value"].notna().all()
    assert len(store.run_ids()) == len(REHEARSED) + 2  # + the random ticket's LT parent, ASNI-II's ASNI-I parent

    # figure 9 at the paper profile on those runs: ResNet-18's 21 prunable layers, a few drawn, all tabulated
    # (its ASNI-I run is ASNI-II's parent above, reused; it trains the dense run and its one-shot contrasts)
    result = pipeline.make_figure("asni_concentration", "paper", store=store, progress=False, device="cpu",
                                  dataset=TOY_DATA, epochs=2, kappa=0.2, batch_size=16, seeds=[0], max_layers=3)
    assert len(store.run_ids()) == len(REHEARSED) + 2 + 3
    stats = result.tables["ASNI-I levels per layer"]
    assert len(stats) == 21
    drawn = {ax.get_title().split("\n")[1] for ax in result.figure.axes if ax.get_title()}
    assert len(drawn) == 3 and stats["layer"].iloc[0] in drawn and stats["layer"].iloc[-1] in drawn
    assert "drawn: 3 of 21 layers" in result.caption
