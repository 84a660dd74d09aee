"""Every figure's registered claims on real records (tiny digits runs through sparsity_lab.experiments, seconds),
and the registration itself: one owner per claim, the docs' list equal to the checked one."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sparsity_lab import experiments
from sparsity_lab.claims import ClaimSet, Verdict
from sparsity_lab.claims.asni_concentration import table_from_run
from sparsity_lab.config.configs import AsniConfig, IterativeConfig
from sparsity_lab.config.fields import config_with
from sparsity_lab.engine.trainer import TrainSettings
from sparsity_lab.figures.pqi_properties import _sweep_table, property_checks, sparsity_sweep
from sparsity_lab.figures.registry import all_figures, get_figure
from sparsity_lab.store import ResultsStore, load_results

TINY = TrainSettings(epochs=1, batch_size=256)
ADAM = TrainSettings(optimizer="adam", lr=1e-3, nesterov=False, weight_decay=0.0, epochs=3, batch_size=256,
                     lr_schedule="constant", grad_clip=None)
DOCS = Path(__file__).resolve().parents[1] / "docs" / "figures.md"


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


def test_every_figure_returns_every_registered_claim_on_real_records(store):
    iterative, asni = load_results(store=store, kind="iterative"), load_results(store=store, kind="asni")
    one = asni[asni["variant"] == "asni1"]
    table = table_from_run(one, store.load_artifact(str(one["run_id"].iloc[0]), "final"))
    inputs = {1: iterative, 2: iterative, 3: iterative, 4: iterative, 5: iterative, 6: iterative,
              7: {"Property checks": property_checks(check_dim=16, n_trials=2),
                 "Sparsity sweep": _sweep_table(sparsity_sweep(dim=256, n_seeds=2, n_fractions=5), 256)}, 8: asni, 9: table, 10: asni, 11: iterative, 12: iterative}
    by = {}
    for spec in all_figures():
        verdicts = spec.claims(inputs[spec.number])
        assert all(isinstance(v, Verdict) for v in verdicts)
        assert {v.claim: v.statement for v in verdicts} == spec.claim_statements(), spec.stem
        assert all(v.reason for v in verdicts)
        by.update({v.claim: v for v in verdicts})
    # What these records can decide, they decide:
    assert by["5.1"].status == "holds"  # the measure is monotone in p and q on real weights
    assert by["8.1"].status == "holds", by["8.1"].reason  # the runner follows the schedule exactly
    assert by["9.1"].status == "holds", by["9.1"].reason
    assert by["1.1"].status == "untestable"  # T = 2
    assert by["7.2"].status == by["7.3"].status == "holds", (by["7.2"].reason, by["7.3"].reason)


def test_each_figure_owns_its_claims_under_its_one_name():
    """The registered set is the ``CLAIMS`` of ``sparsity_lab.claims.<figure name>``, ids numbered by the figure."""
    import importlib

    for spec in all_figures():
        module = importlib.import_module(f"sparsity_lab.claims.{spec.name}")
        assert spec.claims is module.CLAIMS and isinstance(spec.claims, ClaimSet), spec.stem
        assert spec.claim_statements() == dict(module.STATEMENTS)
        assert all(re.fullmatch(rf"{spec.number}\.\d+", k) for k in spec.claim_statements()), spec.stem


def test_the_docs_list_exactly_the_checked_claims():
    """docs/figures.md "Claims every figure checks" states a claim ("- N.M ...") only where a check tests it."""
    text = DOCS.read_text()
    section = text[text.index("## Claims every figure checks"):]
    section = section[:section.index("### Where the claims live")]
    stated = re.findall(r"^- (\d+\.\d+) ", section, flags=re.M)
    checked = [c for spec in all_figures() for c in spec.claim_statements()]
    assert stated == checked


def test_a_check_that_strays_from_its_registration_is_refused():
    statements = {"1.1": "one", "1.2": "two"}
    good = ClaimSet(statements, lambda _: [Verdict("1.1", "one", "holds", "r"), Verdict("1.2", "two", "fails", "r")])
    assert [v.status for v in good(None)] == ["holds", "fails"]
    for verdicts in ([Verdict("1.1", "one", "holds", "r")],  # a registered claim not checked
                     [Verdict("1.1", "one", "holds", "r"), Verdict("1.2", "two", "holds", "r"),
                      Verdict("1.3", "three", "holds", "r")],  # a claim checked but not registered
                     [Verdict("1.1", "one", "holds", "r"), Verdict("1.2", "2", "holds", "r")]):  # another statement
        with pytest.raises(ValueError, match="registered"):
            ClaimSet(statements, lambda _, v=verdicts: v)(None)
    assert [v.status for v in good.untestable("no records")] == ["untestable", "untestable"]


def test_unknown_figure_is_refused():
    with pytest.raises(ValueError, match="unknown figure 99"):
        get_figure(99)
