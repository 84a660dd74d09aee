"""Compact results bundles (format 2, store/bundle_records.py): one records table, only the record groups the
figures declare (store/record_groups.py); exact for what they ship, explicit about what they leave out.

No training: every store here is written straight through the store API (records only)."""

from __future__ import annotations

import dataclasses
import io
import json
import math
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sparsity_lab import experiments
from sparsity_lab.cli import main as cli
from sparsity_lab.config.configs import AsniConfig, IterativeConfig
from sparsity_lab.engine.trainer import TrainSettings
from sparsity_lab.figures.registry import all_figures
from sparsity_lab.measures.sparsity import PQ_GRID_P, PQ_GRID_Q
from sparsity_lab.report import pipeline
from sparsity_lab.store import ResultsStore, StoreError, load_results
from sparsity_lab.store import manifest as mf
from sparsity_lab.store.bundle import export_bundle, import_bundle
from sparsity_lab.store.record_groups import CORE, PQ_GRID_GLOBAL, PQ_GRID_LAYER, keep_mask, row_groups

SAP = IterativeConfig(dataset="digits", model="mlp", method="sap", p=0.6, q=1.0, iterations=2,
                      train=TrainSettings(epochs=1))
PLAIN = dataclasses.replace(SAP, pq_grid=False, seed=1)
ASNI = AsniConfig(dataset="digits", s_max=90.0, kappa=1.0, train=TrainSettings(epochs=2, optimizer="adam", lr=1e-3,
                                                                                nesterov=False))
LAYERS = ("fc1.weight", "fc2.weight")
NAN = math.nan


def _row(t, stage, metric, scope, group, value, p=NAN, q=NAN) -> dict:
    return {"iteration": t, "stage": stage, "metric": metric, "scope": scope, "group": group, "p": p, "q": q,
            "value": value}


def _iterative_step(t: int, grid: bool, rng: np.random.Generator) -> pd.DataFrame:
    """Rows as ``experiments.iterative`` makes them: own pairs (0.5, 1), (0.6, 1) at every scope, the grid at
    global and layer scope, full-precision values."""
    rows = []
    for stage in ("retrained", "pruned"):
        rows.append(_row(t, stage, "accuracy", "model", "all", rng.random()))
        for scope, groups in (("global", ("all",)), ("layer", LAYERS), ("neuron", LAYERS)):
            pairs = [(0.5, 1.0), (0.6, 1.0)]
            if grid and scope != "neuron":
                pairs += [(p, q) for p in PQ_GRID_P for q in PQ_GRID_Q if p < q and (p, q) not in pairs]
            for group in groups:
                rows.append(_row(t, stage, "remaining", scope, group, rng.random()))
                rows += [_row(t, stage, "pqi", scope, group, rng.random(), p, q) for p, q in pairs]
    return pd.DataFrame(rows)


def _asni_step(epoch: int, final: bool, rng: np.random.Generator) -> pd.DataFrame:
    frame = pd.DataFrame([_row(epoch, "epoch", "accuracy", "model", "all", rng.random())])
    if final:  # a step with more columns (the histogram bins of ASNI's final step)
        hist = pd.DataFrame([{**_row(epoch, "final", "histogram", "layer", "fc1.weight", float(k)),
                              "bin_left": k / 10, "bin_right": (k + 1) / 10} for k in range(3)])
        frame = pd.concat([frame, hist], ignore_index=True)
    return frame


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> ResultsStore:
    store = ResultsStore(tmp_path_factory.mktemp("source") / "results")
    rng = np.random.default_rng(0)
    for cfg in (SAP, PLAIN):
        store.prepare(cfg)
        for t in range(cfg.iterations + 1):
            store.save_step(cfg.run_id, t, _iterative_step(t, cfg.pq_grid, rng))
        store.mark_complete(cfg.run_id, {})
    store.prepare(ASNI)
    for epoch in range(2):
        store.save_step(ASNI.run_id, epoch, _asni_step(epoch, epoch == 1, rng))
    store.mark_complete(ASNI.run_id, {})
    return store


@pytest.fixture(scope="module")
def compact(source, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bundle") / "compact.tar.xz"
    export_bundle(source, out, source.run_ids(), records={SAP.run_id: [PQ_GRID_GLOBAL]})
    return out


def test_record_groups_tell_the_grid_from_the_runs_own_pairs(source):
    groups = pd.Series(row_groups(source.records(SAP.run_id), SAP)).value_counts().to_dict()
    n_grid = sum(p < q for p in PQ_GRID_P for q in PQ_GRID_Q) - 2  # less the two own pairs
    assert groups[PQ_GRID_GLOBAL] == 3 * 2 * n_grid and groups[PQ_GRID_LAYER] == 3 * 2 * 2 * n_grid
    assert set(row_groups(source.records(PLAIN.run_id), PLAIN)) == set(row_groups(source.records(ASNI.run_id), ASNI)) \
        == {CORE}


def test_import_is_exact_for_the_shipped_records_and_verifies(source, compact, tmp_path):
    target = ResultsStore(tmp_path / "store")
    assert sorted(import_bundle(compact, target).imported) == source.run_ids()
    for rid, cfg, groups in ((SAP.run_id, SAP, [PQ_GRID_GLOBAL]), (PLAIN.run_id, PLAIN, []), (ASNI.run_id, ASNI, [])):
        original = source.records(rid)
        expected = original[keep_mask(original, cfg, groups)].reset_index(drop=True)
        pd.testing.assert_frame_equal(target.records(rid), expected, check_exact=True)  # values, dtypes, order
        assert target.status(rid) == "complete" and target.check(rid).problem is None
        assert target.completed_steps(rid) == source.completed_steps(rid)
    steps = [mf.step_rel(s, mf.RECORDS_FILE) for s in (0, 1)]
    hist = [pd.read_parquet(target.run_dir(ASNI.run_id) / rel).columns.tolist() for rel in steps]
    assert "bin_left" not in hist[0] and hist[1][-2:] == ["bin_left", "bin_right"]  # each step keeps its columns
    dropped = target.run_info(SAP.run_id)["imported_from"]["dropped_records"]
    assert dropped == {PQ_GRID_LAYER: 3 * 2 * 2 * (sum(p < q for p in PQ_GRID_P for q in PQ_GRID_Q) - 2)}
    assert target.run_info(PLAIN.run_id)["imported_from"]["dropped_records"] == {}
    assert cli.main(["--results", str(target.root), "verify"]) == 0


def test_records_all_ships_every_row_in_one_table(source, tmp_path):
    doc = export_bundle(source, tmp_path / "all.tar", source.run_ids())
    with tarfile.open(tmp_path / "all.tar") as tar:
        assert [m.name for m in tar][:2] == ["bundle.json", "records.parquet"]
        assert not any("/steps/" in m.name for m in tar)
    assert doc["version"] == 2 and doc["records"] == "all"
    target = ResultsStore(tmp_path / "store")
    import_bundle(tmp_path / "all.tar", target)
    pd.testing.assert_frame_equal(load_results(store=target), load_results(store=source), check_exact=True)
    assert experiments.run(SAP, store=target, progress=False).reused  # nothing left out: reusable as it is


def test_a_run_lacking_records_is_not_passed_off_as_complete(compact, tmp_path, trainings):
    target = ResultsStore(tmp_path / "store")
    import_bundle(compact, target)
    with pytest.raises(StoreError, match=r"with only the records the figures read \(left out: 1284 pq_grid.layer rows"):
        experiments.run(SAP, store=target, progress=False)
    assert experiments.run(PLAIN, store=target, progress=False).reused  # nothing was left out of this one
    assert trainings() == 0
    assert target.is_complete(SAP.run_id)  # figures and load_results read what it holds; sweeps skip it


# ---------------------------------------------------------------- every gpu figure, from a compact bundle
@pytest.fixture(scope="module")
def gpu_stores(tmp_path_factory) -> tuple[ResultsStore, ResultsStore]:
    import explore_store

    full = ResultsStore(tmp_path_factory.mktemp("full"))
    explore_store.build(full, profiles=("gpu",), max_steps=2)  # every gpu run, a (p, q) grid at 2 scopes
    out = tmp_path_factory.mktemp("gpu") / "gpu.tar.gz"
    assert cli.main(["--results", str(full.root), "bundle", "export", str(out), "--profile", "gpu"]) == 0
    compact = ResultsStore(tmp_path_factory.mktemp("compact"))
    import_bundle(out, compact)
    return full, compact


def test_every_gpu_figure_is_handed_the_same_records_from_the_compact_bundle(gpu_stores):
    full, compact = gpu_stores
    assert len(load_results(store=compact)) < len(load_results(store=full)) / 2  # the layer grid stays home
    for spec, _, runs in pipeline.plan(all_figures(), "gpu"):
        runs = [dataclasses.replace(r, tensors=()) for r in runs]  # synthetic runs have records only
        if not runs:
            continue
        a, b = pipeline.load(runs, store=full), pipeline.load(runs, store=compact)
        pd.testing.assert_frame_equal(a.records, b.records, check_exact=True, obj=spec.stem)
        pd.testing.assert_frame_equal(a.raw, b.raw, check_exact=True, obj=spec.stem)


def test_a_figure_is_handed_only_the_record_groups_it_declares(gpu_stores):
    from sparsity_lab.claims.pq_heatmaps import grid_rows

    full, _ = gpu_stores
    [(_, _, runs)] = pipeline.plan([5], "gpu")
    assert {g for r in runs for g in r.records} == {PQ_GRID_GLOBAL}
    declared = pipeline.load(runs, store=full).raw
    assert grid_rows(declared)["p"].nunique() > 1  # the global grid, and nothing of the layer grid
    assert all(PQ_GRID_LAYER not in row_groups(declared[declared["run_id"] == r.run_id], r.config) for r in runs)
    undeclared = pipeline.load([dataclasses.replace(r, records=()) for r in runs], store=full).raw
    with pytest.raises(Exception, match="no \\(p, q\\) grid"):  # a figure reading what it did not declare fails
        grid_rows(undeclared)


# ---------------------------------------------------------------- bad bundles: one line, nothing imported
def _rewrite(bundle: Path, out: Path, change) -> Path:
    with tarfile.open(bundle) as src, tarfile.open(out, "w") as dst:
        for member in src:
            data, name = change(member.name, src.extractfile(member).read())
            if name is not None:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                dst.addfile(info, io.BytesIO(data))
    return out


def _doc(change):
    return lambda name, data: ((json.dumps(change(json.loads(data))).encode() if name == "bundle.json" else data), name)


def _recount(doc: dict) -> dict:
    rid = sorted(doc["runs"])[0]
    doc["runs"][rid]["steps"] = [n + 1 for n in doc["runs"][rid]["steps"]]
    return doc


@pytest.mark.parametrize("change, message", [
    (lambda n, d: (d[:-9] + bytes([d[-9] ^ 1]) + d[-8:] if n == "records.parquet" else d, n),
     "member records.parquet is corrupted"),
    (lambda n, d: (d, None if n == "records.parquet" else n), "member records.parquet is missing"),
    (_doc(_recount), "records.parquet does not hold the rows bundle.json lists"),
    (_doc(lambda doc: {**doc, "version": 3}), "version 3 is not readable by this code"),
    (_doc(lambda doc: {**doc, "runs": {k: {**v, "steps": None} for k, v in doc["runs"].items()}}),
     "lacks the per-run 'steps'"),
])
def test_a_bad_compact_bundle_is_refused_in_one_line(compact, tmp_path, capsys, change, message):
    bad = _rewrite(compact, tmp_path / "bad.tar", change)
    code = cli.main(["bundle", "import", str(bad), "--results", str(tmp_path / "store")])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1
    assert ResultsStore(tmp_path / "store").run_ids() == []


def test_a_version_1_bundle_still_imports(source, tmp_path):
    """Version 1: each step's records.parquet as a member, as the store holds it."""
    runs, members = {}, []
    for rid in source.run_ids():
        files = {rel: e for rel, e in mf.read_manifest(source.run_dir(rid)).items()}
        runs[rid] = {"kind": source.run_info(rid)["kind"], "files": files, "dropped": []}
        members += [(f"runs/{rid}/{rel}", (source.run_dir(rid) / rel).read_bytes()) for rel in files]
    doc = {"format": "sparsity_lab-bundle", "version": 1, "tensors": "figures", "runs": runs}
    with tarfile.open(tmp_path / "v1.tar.gz", "w:gz") as tar:
        for name, data in [("bundle.json", json.dumps(doc).encode()), *members]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    target = ResultsStore(tmp_path / "store")
    assert sorted(import_bundle(tmp_path / "v1.tar.gz", target).imported) == source.run_ids()
    pd.testing.assert_frame_equal(load_results(store=target), load_results(store=source), check_exact=True)
