"""Results bundles (store/bundle.py): export real digits runs, import anywhere, same ids and records, nothing retrained."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import tarfile
from pathlib import Path

import pandas as pd
import pytest
import torch

from sparsity_lab import experiments
from sparsity_lab.cli import main as cli
from sparsity_lab.config.configs import AsniConfig, IterativeConfig
from sparsity_lab.config.fields import config_with
from sparsity_lab.engine.trainer import TrainSettings
from sparsity_lab.store import ResultsStore, StoreError, load_results
from sparsity_lab.store.bundle import export_bundle, import_bundle
from sparsity_lab.store.bundle_select import select_runs

TINY = TrainSettings(epochs=1, batch_size=128)
LT = IterativeConfig(dataset="digits", model="mlp", method="lt", iterations=2, train=TINY, pq_grid=False)
ASNI = AsniConfig(dataset="digits", s_max=90.0, kappa=1.0, histogram_bins=10,
                  train=TrainSettings(optimizer="adam", lr=1e-3, nesterov=False, weight_decay=0.0, epochs=2,
                                      batch_size=128, lr_schedule="constant", grad_clip=None))


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> ResultsStore:
    store = ResultsStore(tmp_path_factory.mktemp("source") / "results")
    for cfg in (LT, ASNI):
        experiments.run(cfg, store=store, device="cpu", progress=False)
    return store


@pytest.fixture(scope="module")
def bundle(source, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bundle") / "runs.tar.gz"
    export_bundle(source, out, select_runs(source, everything=True))
    return out


def _files(store: ResultsStore, run_id: str) -> dict[str, bytes]:
    root = store.run_dir(run_id)
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_imported_runs_have_the_same_ids_records_and_final_tensors(source, bundle, tmp_path):
    target = ResultsStore(tmp_path / "empty")
    report = import_bundle(bundle, target)
    assert sorted(report.imported) == sorted([LT.run_id, ASNI.run_id]) == target.run_ids()
    for rid in target.run_ids():
        assert target.is_complete(rid) and target.status(rid) == "complete"
        assert target.completed_steps(rid) == source.completed_steps(rid)
        assert target.run_info(rid)["imported_from"]["bundle"] == "runs.tar.gz"
    pd.testing.assert_frame_equal(load_results(store=target), load_results(store=source))
    final, original = target.load_artifact(ASNI.run_id, "final"), source.load_artifact(ASNI.run_id, "final")
    assert final.keys() == original.keys() and all(torch.equal(final[k], original[k]) for k in final)
    # iterative masks per step and the ASNI init are not carried by the default ("figures") policy
    assert not (target.run_dir(LT.run_id) / "steps/0000/tensors.safetensors").exists()
    assert not (target.run_dir(ASNI.run_id) / "artifacts/init.safetensors").exists()


def test_same_configs_again_train_nothing(trainings, bundle, tmp_path):
    target = ResultsStore(tmp_path / "empty")
    import_bundle(bundle, target)
    before = trainings()
    for cfg in (LT, ASNI):
        assert experiments.run(cfg, store=target, device="cpu", progress=False).reused
    assert trainings() == before


def test_importing_twice_is_a_no_op_and_complete_runs_are_not_overwritten(source, bundle, tmp_path):
    target = ResultsStore(tmp_path / "empty")
    import_bundle(bundle, target)
    first = {rid: _files(target, rid) for rid in target.run_ids()}
    again = import_bundle(bundle, target)
    assert again.imported == [] and sorted(again.kept) == sorted(first)
    assert {rid: _files(target, rid) for rid in target.run_ids()} == first
    kept = {rid: _files(source, rid) for rid in source.run_ids()}
    assert import_bundle(bundle, source).imported == []  # into the store it came from: nothing changes
    assert {rid: _files(source, rid) for rid in source.run_ids()} == kept


def test_a_partial_run_is_replaced_by_the_imported_complete_one(bundle, tmp_path):
    target = ResultsStore(tmp_path / "store")
    target.prepare(LT)
    report = import_bundle(bundle, target)
    assert LT.run_id in report.imported and target.is_complete(LT.run_id)


def _rewrite(bundle: Path, out: Path, change) -> Path:
    with tarfile.open(bundle) as src, tarfile.open(out, "w") as dst:
        for member in src:
            data = src.extractfile(member).read()
            data, name = change(member.name, data)
            info = tarfile.TarInfo(name)
            info.size = len(data)
            dst.addfile(info, io.BytesIO(data))
    return out


def test_a_corrupted_member_refuses_the_whole_bundle(bundle, tmp_path):
    member = f"runs/{ASNI.run_id}/artifacts/final.safetensors"
    bad = _rewrite(bundle, tmp_path / "bad.tar",
                   lambda name, data: (data[:-1] + bytes([data[-1] ^ 1]) if name == member else data, name))
    target = ResultsStore(tmp_path / "empty")
    with pytest.raises(StoreError, match=f"member {member} is corrupted"):
        import_bundle(bad, target)
    assert target.run_ids() == []


def test_an_unlisted_or_missing_member_is_refused(bundle, tmp_path):
    extra = _rewrite(bundle, tmp_path / "extra.tar",
                     lambda name, data: (data, name.replace("COMPLETE", "artifacts/evil.safetensors")))
    with pytest.raises(StoreError, match="evil.safetensors is not listed"):
        import_bundle(extra, ResultsStore(tmp_path / "a"))
    doc = lambda data: json.loads(data)  # noqa: E731
    listed = _rewrite(bundle, tmp_path / "listed.tar", lambda name, data: (
        json.dumps({**doc(data), "runs": {k: {**v, "files": {**v["files"], "steps/0009/records.parquet":
                                                               {"sha256": "0", "size": 1}}}
                                          for k, v in doc(data)["runs"].items()}}).encode()
        if name == "bundle.json" else data, name))
    with pytest.raises(StoreError, match="records.parquet is missing"):
        import_bundle(listed, ResultsStore(tmp_path / "b"))


def test_imported_runs_are_read_only_and_say_which_tensors_they_lack(bundle, tmp_path, caplog):
    target = ResultsStore(tmp_path / "empty")
    import_bundle(bundle, target)
    with pytest.raises(StoreError, match="read-only"):
        target.save_artifact(LT.run_id, "final", {"x": torch.ones(1)})
    with pytest.raises(StoreError, match=r"imported from bundle 'runs.tar.gz' without steps/0001/tensors"):
        target.load_step_tensors(LT.run_id, 1)
    control = config_with(LT, method="random_ticket")  # reads its parent's masks m_t
    with pytest.raises(StoreError, match="without steps/0000/tensors.safetensors"):
        experiments.run(control, store=target, device="cpu", progress=False)
    with caplog.at_level(logging.WARNING, logger="sparsity_lab.store"), pytest.raises(RuntimeError):
        experiments.run(config_with(ASNI, variant="mask_init"), store=target, device="cpu", progress=False)
    assert "without artifacts/init.safetensors" in caplog.text


def test_tensors_all_keeps_every_file_and_none_keeps_records_only(source, tmp_path):
    everything = export_bundle(source, tmp_path / "all.tar", [LT.run_id], tensors="all")
    assert everything["runs"][LT.run_id]["dropped"] == []
    target = ResultsStore(tmp_path / "all")
    import_bundle(tmp_path / "all.tar", target)
    masks, original = target.load_step_tensors(LT.run_id, 1), source.load_step_tensors(LT.run_id, 1)
    assert masks and masks.keys() == original.keys() and all(torch.equal(masks[k], original[k]) for k in masks)
    records = export_bundle(source, tmp_path / "none.tar.xz", [ASNI.run_id], tensors="none")
    assert not any(rel.endswith(".safetensors") for rel in records["runs"][ASNI.run_id]["files"])


def test_selection_by_filters_and_parents(source):
    assert select_runs(source, kind=["asni"]) == [ASNI.run_id]
    assert select_runs(source, [LT.run_id[:12]]) == [LT.run_id]  # a unique prefix
    with pytest.raises(StoreError, match="no complete run .* matches"):
        select_runs(source, dataset=["mnist"])


def test_selection_carries_every_run_a_one_shot_run_starts_from(tmp_path):
    store = ResultsStore(tmp_path / "results")
    oneshot = dataclasses.replace(ASNI, variant="oneshot_global")
    experiments.run(oneshot, store=store, device="cpu", progress=False)
    dense = dataclasses.replace(ASNI, variant="dense")
    assert select_runs(store, [oneshot.run_id]) == sorted([oneshot.run_id, ASNI.run_id, dense.run_id])


# ---------------------------------------------------------------- command line
def test_cli_export_then_import(source, tmp_path, capsys):
    out = tmp_path / "b.tgz"
    assert cli.main(["--results", str(source.root), "bundle", "export", str(out), "--dataset", "digits"]) == 0
    assert "2 runs" in capsys.readouterr().out
    assert cli.main(["bundle", "import", str(out), "--results", str(tmp_path / "new")]) == 0
    assert "2 runs imported" in capsys.readouterr().out
    assert ResultsStore(tmp_path / "new").run_ids() == source.run_ids()


@pytest.mark.parametrize("argv, message", [
    (["bundle", "import", "{tmp}/nope.tar"], "nope.tar' does not exist"),
    (["bundle", "import", "{tmp}/garbage.tar"], "not a readable tar archive"),
    (["bundle", "export", "{tmp}/x.tar", "--model", "resnet18"], "no complete run"),
    (["bundle", "export", "{tmp}/x.tar"], "choose the runs"),
    (["bundle", "export", "{tmp}/x.zip", "--all"], "allowed suffixes"),
    (["bundle", "export", "{tmp}/x.tar", "--runs", "zzz"], "run id 'zzz': 0 runs"),
])
def test_cli_errors_are_one_line_and_exit_2(source, tmp_path, capsys, argv, message):
    (tmp_path / "garbage.tar").write_bytes(b"not a tar at all" * 100)
    code = cli.main(["--results", str(source.root), *[a.format(tmp=tmp_path) for a in argv]])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1 and err.startswith("sparsity-lab bundle: error:")


def test_a_truncated_bundle_is_refused(bundle, tmp_path):
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(bundle.read_bytes()[: bundle.stat().st_size // 2])
    target = ResultsStore(tmp_path / "empty")
    with pytest.raises(StoreError, match="cut.tar.gz: (damaged archive|member .* is missing)"):
        import_bundle(cut, target)
    assert target.run_ids() == []


def test_show_says_where_an_imported_run_came_from(bundle, tmp_path, capsys):
    target = ResultsStore(tmp_path / "store")
    import_bundle(bundle, target)
    assert cli.main(["--results", str(target.root), "show", LT.run_id]) == 0
    assert "imported from bundle runs.tar.gz" in capsys.readouterr().out


def test_a_re_exported_run_without_its_dropped_list_still_refuses_missing_tensors(bundle, tmp_path):
    """A bundle built from a raw re-export lists no dropped files: a control must still get the clear
    error, not an empty mask set (which broke a device run with "Tensor list must have at least one tensor")."""
    target = ResultsStore(tmp_path / "store")
    import_bundle(bundle, target)
    origin = target.run_dir(LT.run_id) / "imported.json"
    origin.write_text(json.dumps({**json.loads(origin.read_text()), "dropped": []}))
    with pytest.raises(StoreError, match="without steps/0001/tensors"):
        target.load_step_tensors(LT.run_id, 1)
    with pytest.raises(StoreError, match="without steps/0000/tensors.safetensors"):
        experiments.run(config_with(LT, method="random_ticket"), store=target, device="cpu", progress=False)
