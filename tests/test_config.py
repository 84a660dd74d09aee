"""Configs: canonical text, pinned run ids, validation before training."""

from __future__ import annotations

import dataclasses

import pytest

from sparsity_lab.config.configs import AsniConfig, ConfigError, IterativeConfig, config_from_dict
from sparsity_lab.config.fields import config_with, flat_fields


def test_default_config_has_empty_canonical_text_and_pinned_id():
    cfg = IterativeConfig()
    assert cfg.canonical() == "iterative{}"
    # Pinned: changing the hashing scheme or a default silently would orphan every stored run.
    assert cfg.run_id == "iterative_7e9fcbe08553"


def test_ids_are_pinned_for_a_few_configs():
    a = IterativeConfig(method="lt", seed=1)
    b = config_with(IterativeConfig(), **{"train.epochs": 3, "p": 1.0, "q": 2.0})
    c = AsniConfig(variant="asni2")
    assert a.canonical() == 'iterative{"method":"lt","seed":1}'
    assert b.canonical() == 'iterative{"p":1.0,"q":2.0,"train.epochs":3}'
    assert (a.run_id, b.run_id, c.run_id) == PINNED


PINNED = ("iterative_fd062539a555", "iterative_ac96fa7cf1a5", "asni_138dfe1b267d")


def test_a_new_field_at_its_default_does_not_change_ids():
    @dataclasses.dataclass(frozen=True)
    class Extended(IterativeConfig):
        new_option: int = 7

    assert Extended(method="lt", seed=1).run_id == IterativeConfig(method="lt", seed=1).run_id


def test_round_trip_through_dict():
    cfg = config_with(IterativeConfig(), method="lt", layer_rates=[["fc3.*", 0.1]], **{"train.lr": 0.05})
    again = config_from_dict(cfg.to_dict())
    assert again == cfg and again.run_id == cfg.run_id


def test_flat_fields_document_every_field_with_help():
    docs = flat_fields(IterativeConfig)
    names = {d.name for d in docs}
    assert {"method", "p", "q", "train.lr", "train.epochs"} <= names
    assert all(d.help for d in docs)


BAD = [
    ({"dataset": "imagenet"}, "dataset"),
    ({"model": "transformer"}, "model"),
    ({"method": "magic"}, "method"),
    ({"scope": "channel"}, "scope"),
    ({"p": 0.0}, "p"),
    ({"p": 1.0, "q": 1.0}, "q"),
    ({"p": 2.0, "q": 1.0}, "q"),
    ({"beta": 0.0}, "beta"),
    ({"beta": 1.5}, "beta"),
    ({"iterations": -1}, "iterations"),
    ({"train.epochs": 0}, "epochs"),
    ({"prune_fraction": 1.0}, "prune_fraction"),
    ({"rank_weights": "best_val"}, "val_size"),
    ({"dataset": "digits", "model": "vgg16"}, "model"),
]


@pytest.mark.parametrize(("overrides", "field_name"), BAD)
def test_invalid_configs_name_the_field_and_value(overrides, field_name):
    cfg = config_with(IterativeConfig(), **overrides)
    with pytest.raises(ConfigError) as info:
        cfg.validate()
    assert field_name in str(info.value)


def test_unknown_field_is_a_clear_error():
    with pytest.raises(ConfigError, match="unknown config field 'lr'"):
        config_with(IterativeConfig(), lr=0.1)


def test_asni_validation():
    with pytest.raises(ConfigError, match="s_max"):
        AsniConfig(s_max=100.0).validate()
    with pytest.raises(ConfigError, match="variant"):
        AsniConfig(variant="asni3").validate()


def test_nested_lists_from_json_become_tuples_so_configs_stay_hashable():
    cfg = config_from_dict({"kind": "iterative", "train": {"lr_schedule": "step", "step_milestones": [2, 4]}})
    assert cfg.train.step_milestones == (2, 4)
    assert hash(cfg) == hash(config_from_dict(cfg.to_dict()))


def _accepted(make) -> bool:
    try:
        make()
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("field, hyper, rule, values", [
    ("prune_fraction", "fraction", "lt", (-0.1, 0.0, 0.5, 0.999, 1.0)),
    ("prune_fraction", "fraction", "oneshot", (-0.1, 0.0, 0.5, 1.0)),
    ("beta", "beta", "sap", (0.0, 0.5, 1.0, 1.5)),
    ("eta_r", "eta_r", "sap", (-0.1, 0.0, 2.0)),
    ("snip_batches", "num_batches", "snip", (0, 1, 4)),
])
def test_a_rule_field_is_bounded_once_by_its_rule(field, hyper, rule, values):
    """The config accepts exactly what the rule that reads the field accepts, and names its own field."""
    from sparsity_lab.rules import PRUNING_RULES

    for value in values:
        by_rule = _accepted(lambda v=value: PRUNING_RULES[rule].make_hyper(**{hyper: v}))
        by_config = _accepted(lambda v=value: IterativeConfig(**{field: v}).validate())
        assert by_rule == by_config, (field, value)
        if not by_config:
            with pytest.raises(ConfigError, match=f"invalid config field {field}="):
                IterativeConfig(**{field: value}).validate()


def test_a_rule_field_has_one_default_stated_by_its_rule():
    """The config takes each rule field's default from the rule(s) reading it (rules/base.rule_default)."""
    from sparsity_lab.rules.base import PRUNING_RULES, rule_default
    from sparsity_lab.rules.lt import LtHyper
    from sparsity_lab.rules.oneshot import OneShotHyper
    from sparsity_lab.rules.sap import SapHyper
    from sparsity_lab.rules.snip import SnipHyper

    config = IterativeConfig()
    sap = SapHyper()
    assert (config.p, config.q, config.eta_r, config.gamma, config.beta) == (sap.p, sap.q, sap.eta_r, sap.gamma, sap.beta)
    assert config.prune_fraction == LtHyper().fraction == OneShotHyper().fraction == SnipHyper().fraction
    assert config.snip_batches == SnipHyper().num_batches
    with pytest.raises(KeyError, match="no registered rule reads the config field 'lr'"):
        rule_default("lr")
    rule = PRUNING_RULES["oneshot"]

    @dataclasses.dataclass(frozen=True)
    class Disagreeing:
        fraction: float = 0.5
        config_fields = {"fraction": "prune_fraction"}

    PRUNING_RULES["oneshot"] = dataclasses.replace(rule, hyper=Disagreeing)
    try:
        with pytest.raises(ValueError, match="disagree on its default"):
            rule_default("prune_fraction")
    finally:
        PRUNING_RULES["oneshot"] = rule
