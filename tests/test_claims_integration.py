"""Every figure's claim check on real records: tiny digits runs through sparsity_lab.experiments (seconds)."""

from __future__ import annotations

import pandas as pd
import pytest

from sparsity_lab import experiments
from sparsity_lab.claims import CHECKS, CLAIMS, Verdict, check_figure
from sparsity_lab.claims.concentration import table_from_run
from sparsity_lab.config.configs import AsniConfig, IterativeConfig
from sparsity_lab.config.fields import config_with
from sparsity_lab.engine.trainer import TrainSettings
from sparsity_lab.figures.pqi_properties import property_checks
from sparsity_lab.store import ResultsStore, load_results

TINY = TrainSettings(epochs=1, batch_size=256)
ADAM = TrainSettings(optimizer="adam", lr=1e-3, nesterov=False, weight_decay=0.0, epochs=3, batch_size=256,
                     lr_schedule="constant", grad_clip=None)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    store = ResultsStore(tmp_path_factory.mktemp("claims_store"))
    base = IterativeConfig(dataset="digits", model="mlp", iterations=2, train=TINY)
    for overrides in ({"method": "sap"}, {"method": "sap", "p": 1.0, "q": 2.0}, {"method": "lt"},
                      {"method": "oneshot"}, {"method": "random_ticket"}, {"method": "sap", "scope": "layer"}):
        experiments.run(config_with(base, **overrides), store=store, progress=False)
    asni = AsniConfig(dataset="digits", s_max=90.0, kappa=1.0, train=ADAM)
    for variant in ("asni1", "asni2", "dense", "mask_random_init"):
        experiments.run(config_with(asni, variant=variant), store=store, progress=False)
    return store


def test_every_figure_returns_every_claim_on_real_records(store):
    iterative, asni = load_results(store=store, kind="iterative"), load_results(store=store, kind="asni")
    one = asni[asni["variant"] == "asni1"]
    table = table_from_run(one, store.load_artifact(str(one["run_id"].iloc[0]), "final"))
    inputs = {1: iterative, 2: iterative, 3: iterative, 4: iterative, 5: iterative, 6: iterative,
              7: property_checks(check_dim=16, n_trials=2), 8: asni, 9: table, 10: asni}
    for number in CHECKS:
        verdicts = check_figure(number, inputs[number])
        assert all(isinstance(v, Verdict) for v in verdicts)
        assert [v.claim for v in verdicts] == list(CLAIMS[number]), number
        assert all(v.reason for v in verdicts)
    # What these records can decide, they decide:
    by = {v.claim: v for n in (5, 8, 9) for v in check_figure(n, inputs[n])}
    assert by["5.1"].status == "holds"  # the measure is monotone in p and q on real weights
    assert by["8.1"].status == "holds", by["8.1"].reason  # the runner follows the schedule exactly
    assert by["9.1"].status == "holds", by["9.1"].reason
    assert {v.claim: v.status for v in check_figure(1, iterative)}["1.1"] == "untestable"  # T = 2


def test_unknown_figure_is_refused():
    with pytest.raises(ValueError, match="figure 11 has no claims"):
        check_figure(11, pd.DataFrame())
