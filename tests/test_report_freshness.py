"""report.freshness: the key of a figure notebook's inputs, and when the batch keeps its previous output."""

from __future__ import annotations

from pathlib import Path

import pytest

from sparsity_lab.report import freshness


class FakeStore:
    """Runs by id: complete ones have a manifest under root/<id>/manifest.json."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.complete: set[str] = set()

    def add(self, run_id: str, manifest: str) -> None:
        (self.root / run_id).mkdir(parents=True, exist_ok=True)
        (self.root / run_id / "manifest.json").write_text(manifest)
        self.complete.add(run_id)

    def is_complete(self, run_id: str) -> bool:
        return run_id in self.complete

    def status(self, run_id: str) -> str:
        return "complete" if run_id in self.complete else "missing"

    def run_dir(self, run_id: str) -> Path:
        return self.root / run_id


@pytest.fixture()
def setup(tmp_path: Path) -> tuple[Path, FakeStore]:
    nb = tmp_path / "07_pqi_properties.ipynb"
    nb.write_text('{"cells": []}')
    store = FakeStore(tmp_path / "store")
    store.add("run-a", '{"files": {"x": "1"}}')
    return nb, store


def test_the_key_changes_with_each_input_and_only_then(setup: tuple[Path, FakeStore]) -> None:
    nb, store = setup
    key = freshness.inputs_key(nb, "quick", {"n": 1}, ["run-a", "run-b"], store)
    assert freshness.inputs_key(nb, "quick", {"n": 1}, ["run-b", "run-a"], store) == key  # order of ids
    assert freshness.inputs_key(nb, "smoke", {"n": 1}, ["run-a", "run-b"], store) != key
    assert freshness.inputs_key(nb, "quick", {"n": 2}, ["run-a", "run-b"], store) != key
    assert freshness.inputs_key(nb, "quick", {"n": 1}, ["run-a"], store) != key
    store.add("run-b", '{"files": {}}')  # a run the notebook reads is stored now
    with_b = freshness.inputs_key(nb, "quick", {"n": 1}, ["run-a", "run-b"], store)
    assert with_b != key
    store.add("run-a", '{"files": {"x": "2"}}')  # recomputed: another manifest
    assert freshness.inputs_key(nb, "quick", {"n": 1}, ["run-a", "run-b"], store) != with_b
    before = freshness.inputs_key(nb, "quick", {"n": 1}, ["run-a", "run-b"], store)
    nb.write_text('{"cells": [1]}')  # the notebook edited
    assert freshness.inputs_key(nb, "quick", {"n": 1}, ["run-a", "run-b"], store) != before


def test_the_key_covers_the_package_source_and_the_drawing_libraries(setup: tuple[Path, FakeStore],
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    nb, store = setup
    key = freshness.inputs_key(nb, "quick", {}, [], store)
    sources = freshness._package_sources()
    assert Path(freshness.__file__).resolve() in sources and len(sources) > 50
    monkeypatch.setattr(freshness, "_package_sources", lambda: sources[:-1])
    assert freshness.inputs_key(nb, "quick", {}, [], store) != key
    monkeypatch.undo()
    versions = freshness._versions()
    assert {"matplotlib", "seaborn", "pandas", "python"} <= set(versions)
    monkeypatch.setattr(freshness, "_versions", lambda: {**versions, "matplotlib": "0.0"})
    assert freshness.inputs_key(nb, "quick", {}, [], store) != key


def _entry(profile_dir: Path, key: str, status: str = "ok") -> dict:
    for name in ("07.ipynb", "07.html", "figures/07.png"):
        (profile_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (profile_dir / name).write_text("x")
    entry = {"name": "07", "inputs": key, "status": status, "ipynb": "07.ipynb", "html": "07.html",
             "figures": ["figures/07.png"]}
    return {**entry, "outputs": freshness.outputs_digest(profile_dir, freshness.output_files(entry))}


def test_kept_only_with_the_same_key_a_good_status_and_every_file_present(tmp_path: Path) -> None:
    entry = _entry(tmp_path, "k")
    assert freshness.is_up_to_date(entry, "k", tmp_path)
    assert freshness.is_up_to_date({**entry, "status": "claims failed"}, "k", tmp_path)
    assert not freshness.is_up_to_date(entry, "other", tmp_path)
    assert not freshness.is_up_to_date(None, "k", tmp_path)
    assert not freshness.is_up_to_date({**entry, "inputs": None}, None, tmp_path)  # never ran through the batch
    for status in ("failed", "runs missing"):
        assert not freshness.is_up_to_date({**entry, "status": status}, "k", tmp_path)
    (tmp_path / "07.ipynb").write_text("half written by a run that was interrupted")
    assert not freshness.is_up_to_date(entry, "k", tmp_path)
    (tmp_path / "07.ipynb").write_text("x")
    assert freshness.is_up_to_date(entry, "k", tmp_path)
    (tmp_path / "figures" / "07.png").unlink()
    assert not freshness.is_up_to_date(entry, "k", tmp_path)


def test_force_executes_notebooks_that_are_up_to_date(setup: tuple[Path, FakeStore], tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    nb, store = setup
    profile_dir = tmp_path / "reports" / "quick"
    key = freshness.inputs_key(nb, "quick", {}, [], store)
    entry = {**_entry(profile_dir, key), "name": nb.stem, "ipynb": "07.ipynb"}
    (profile_dir / "index.json").write_text(json.dumps({"notebooks": [entry]}))
    monkeypatch.setattr("sparsity_lab.report.index_page.first_png_thumbnail", lambda path: None)
    to_run, kept, keys = freshness.split_up_to_date([nb], [], profile_dir, "quick", {}, store)
    assert to_run == [] and [c.name for c in kept] == [nb.stem] and kept[0].reused and keys == {nb.stem: key}
    to_run, kept, _ = freshness.split_up_to_date([nb], [], profile_dir, "quick", {}, store, force=True)
    assert to_run == [nb] and kept == []
