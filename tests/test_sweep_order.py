"""run_many's dispatch order: parents first, then longest (estimated) jobs first; outcomes name their device."""

from __future__ import annotations

import dataclasses
import os
from types import SimpleNamespace
from typing import ClassVar

from test_store_fakes import FakeConfig, FakeTrain, fake_run

from sparsity_lab.store import ResultsStore
from sparsity_lab.sweep import costs
from sparsity_lab.sweep import runner as sweep
from sparsity_lab.sweep.job import SeedGroupJob
from sparsity_lab.sweep.runner import run_many


@dataclasses.dataclass(frozen=True)
class Child(FakeConfig):
    """A run whose runner starts a 2-epoch parent first (like a control and its mask source)."""

    kind: ClassVar[str] = "child"

    def dependencies(self) -> list[FakeConfig]:
        return [FakeConfig(seed=self.seed, train=FakeTrain(epochs=2))]


def _fake(epochs: int, seed: int = 0) -> FakeConfig:
    return FakeConfig(seed=seed, train=FakeTrain(epochs=epochs))


def test_jobs_run_parents_first_then_longest_first(tmp_path) -> None:
    short, long_, mid, also_mid = _fake(1, seed=1), _fake(9, seed=2), _fake(4, seed=3), _fake(4, seed=4)
    parent = _fake(2, seed=5)
    child_long = Child(seed=5, train=FakeTrain(epochs=50))  # longest of all, but a dependant
    child_short = Child(seed=5, method="lt", train=FakeTrain(epochs=3))
    order: list[str] = []

    def runner(config, *, store, device, progress):
        order.append(config.run_id)
        return SimpleNamespace(reused=fake_run(config, store) == "reused")

    configs = [child_short, short, mid, child_long, long_, also_mid, parent]
    out = run_many(configs, devices=["cpu"], store=ResultsStore(tmp_path), progress=False, runner=runner)
    assert [o.status for o in out] == ["done"] * len(configs)
    # depth 0 by estimated cost (equal estimates keep their input order), then depth 1 by cost
    expected = [long_, mid, also_mid, parent, short, child_long, child_short]
    assert order == [c.run_id for c in expected]
    assert costs.estimate_seconds(long_) > costs.estimate_seconds(mid) > costs.estimate_seconds(parent)
    assert {o.device for o in out} == {"cpu"}
    again = run_many([short], devices=["cpu"], store=ResultsStore(tmp_path), progress=False, runner=runner)
    assert again[0].status == "reused" and again[0].device is None


def test_a_seed_group_costs_the_sum_of_its_members() -> None:
    a, b, c = _fake(3, seed=0), _fake(3, seed=1), _fake(5, seed=2)
    group = SeedGroupJob((a, b))
    assert sweep._longest_first([c, group]) == [group, c]  # 2 x 3 epochs > 5 epochs
    assert sweep._longest_first([group, _fake(7, seed=3)])[0].train.epochs == 7


def test_workers_share_the_cores():
    from sparsity_lab.sweep.pool import cpu_threads

    cores = os.cpu_count() or 1
    assert cpu_threads(["cuda:0", "cuda:1"]) == {"cuda:0": max(1, cores // 2), "cuda:1": max(1, cores // 2)}
    assert cpu_threads(["cpu"] * 4) == {"cpu": max(1, cores // 4)}
