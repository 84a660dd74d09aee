"""Run ids are content addresses of a config's non-default fields: a refactor or a new field with a no-op
default (e.g. SNIP's snip_batches) must not change them. The ids below were computed on main before the
rules package existed (commit 808c18c)."""

from __future__ import annotations

import pytest

from sparsity_lab.config.configs import AsniConfig, IterativeConfig
from sparsity_lab.config.fields import config_with

PINNED = [
    (IterativeConfig(), "iterative_7e9fcbe08553"),
    (IterativeConfig(method="lt", scope="layer", iterations=5, seed=2), "iterative_2cd97b2a29c0"),
    (IterativeConfig(method="oneshot", prune_fraction=0.5, dataset="digits"), "iterative_3cefdc7995b3"),
    (IterativeConfig(method="random_ticket", control_base="sap", p=1.0, q=2.0), "iterative_f8930204762f"),
    (IterativeConfig(method="lt", layer_rates=(("fc3.*", 0.1),)), "iterative_219350c77ab5"),
    (config_with(IterativeConfig(dataset="digits", iterations=3), **{"train.epochs": 2}), "iterative_75914db6460d"),
    (AsniConfig(), "asni_9290b21007dc"),
]


@pytest.mark.parametrize(("config", "run_id"), PINNED, ids=[rid for _, rid in PINNED])
def test_existing_run_ids_are_unchanged(config, run_id):
    assert config.run_id == run_id


def test_a_new_rules_fields_enter_the_id_only_when_set():
    snip = IterativeConfig(method="snip")
    assert "snip_batches" not in snip.canonical()
    assert IterativeConfig(method="snip", snip_batches=2).run_id != snip.run_id
