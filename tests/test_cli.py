"""Tests of the command line: generated flags and help, one-line config errors (exit 2), run/sweep/ls/show."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from types import SimpleNamespace

import pandas as pd
import pytest
from test_store_fakes import FakeConfig, fake_run

from sparsity_lab.cli import main as cli
from sparsity_lab.cli.flags import config_from_flags
from sparsity_lab.config.configs import CONFIG_TYPES, AsniConfig, IterativeConfig
from sparsity_lab.config.fields import config_with, flat_fields
from sparsity_lab.store import ResultsStore


def _help_text(capsys) -> str:
    with pytest.raises(SystemExit) as exc:
        cli.main(["run", "--help"])
    assert exc.value.code == 0
    return " ".join(capsys.readouterr().out.split())


def test_help_documents_every_field_with_its_defaults(capsys):
    text = _help_text(capsys)
    options = text[text.index("config fields of every kind"):]
    for kind, cls in CONFIG_TYPES.items():
        for doc in flat_fields(cls):
            start = re.search(rf"--{re.escape(doc.name)} [A-Z]", options)
            assert start, f"--{doc.name} missing from run --help"
            nxt = re.search(r" --[a-z]", options[start.end():])
            segment = options[start.start(): start.end() + (nxt.start() if nxt else len(options))]
            assert " ".join(doc.help.split())[:30] in segment, doc.name
            assert repr(doc.default) in segment, f"default of {kind}.{doc.name} not in {segment!r}"
    assert "config fields of --kind asni only" in text and "--variant STR" in text
    assert "(default: iterative 'fashionmnist', asni 'mnist')" in text


def test_flags_build_the_same_config_as_config_with():
    args = cli.build_parser().parse_args(["run", "--method", "lt", "--train.epochs", "3", "--layer_rates",
                                          "[[fc3.*, 0.1]]", "--train.grad_clip", "none", "--pq_grid", "false"])
    config = config_from_flags(args.kind, args)
    expected = config_with(IterativeConfig(), method="lt", layer_rates=(("fc3.*", 0.1),), pq_grid=False,
                           **{"train.epochs": 3, "train.grad_clip": None})
    assert config == expected and config.run_id == expected.run_id
    args = cli.build_parser().parse_args(["run", "--kind", "asni", "--s_max", "90", "--train.betas", "[0.8, 0.9]"])
    assert config_from_flags("asni", args) == config_with(AsniConfig(), s_max=90.0, **{"train.betas": (0.8, 0.9)})


@pytest.mark.parametrize("argv, field", [
    (["run", "--train.epochs", "abc"], "train.epochs"),
    (["run", "--pq_grid", "maybe"], "pq_grid"),
    (["run", "--kind", "asni", "--method", "sap"], "--method does not exist for --kind asni"),
    (["run", "--kind", "asni", "--s_max", "150"], "s_max=150.0"),
])
def test_bad_values_print_one_line_naming_the_field_and_exit_2(capsys, monkeypatch, argv, field):
    monkeypatch.setattr("sparsity_lab.experiments.run", lambda *a, **k: pytest.fail("must not run"))
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert field in err and err.count("\n") == 1 and "Traceback" not in err


def test_unknown_kind_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["run", "--kind", "bogus"])
    assert exc.value.code == 2 and "invalid choice: 'bogus'" in capsys.readouterr().err


def test_run_passes_the_config_store_and_device(tmp_path, capsys, monkeypatch):
    seen = {}

    def fake(config, *, store, device, progress):
        seen.update(config=config, root=store.root, device=device, progress=progress)
        return SimpleNamespace(run_id=config.run_id, reused=False, records=pd.DataFrame(
            [{"iteration": 0, "stage": "epoch", "metric": "accuracy", "scope": "model", "group": "all",
              "p": None, "q": None, "value": 0.97}]))

    monkeypatch.setattr("sparsity_lab.experiments.run", fake)
    argv = ["--results", str(tmp_path), "run", "--kind", "asni", "--train.epochs", "4", "--device", "cpu",
            "--no-progress"]
    assert cli.main(argv) == 0
    assert seen == {"config": config_with(AsniConfig(), **{"train.epochs": 4}), "root": tmp_path.absolute(),
                    "device": "cpu", "progress": False}
    out = capsys.readouterr().out
    assert seen["config"].run_id in out and "0.97" in out


@pytest.fixture
def store(tmp_path) -> ResultsStore:
    store = ResultsStore(tmp_path / "results")
    fake_run(FakeConfig(method="sap", seed=0), store, accuracy=0.91)
    fake_run(FakeConfig(method="lt", seed=1), store, accuracy=0.88)
    store.prepare(FakeConfig(method="lt", seed=2))
    return store


def test_ls_lists_runs_with_status_and_key_fields(store, capsys):
    assert cli.main(["--results", str(store.root), "ls"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    header = lines[0].split()
    assert header[:6] == ["run_id", "kind", "status", "steps", "size", "created"]
    assert {"method", "seed"} <= set(header) and "train_epochs" not in header  # same in every run: hidden
    assert len(lines) == 4
    rows = {line.split()[0]: line for line in lines[1:]}
    assert "complete" in rows[FakeConfig(method="sap", seed=0).run_id]
    assert " partial " in rows[FakeConfig(method="lt", seed=2).run_id]
    assert cli.main(["--results", str(store.root), "ls", "--status", "partial"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 2
    assert cli.main(["--results", str(store.root / "empty"), "ls"]) == 0
    assert "no runs in" in capsys.readouterr().out


def test_show_prints_config_summary_and_last_records(store, capsys):
    run_id = FakeConfig(method="lt", seed=1).run_id
    assert cli.main(["--results", str(store.root), "show", run_id[:10]]) == 0
    out = capsys.readouterr().out
    assert f"run {run_id}" in out and "status complete" in out
    config_json = out[out.index("config:\n") + 8: out.index("summary:")]
    assert json.loads(config_json) == FakeConfig(method="lt", seed=1).to_dict()
    assert '"final_accuracy": 0.88' in out and "last records (iteration 2" in out
    assert cli.main(["--results", str(store.root), "show", "nope"]) == 2
    assert "none matches" in capsys.readouterr().err
    assert cli.main(["--results", str(store.root), "show", "fake_"]) == 2
    assert "3 runs match" in capsys.readouterr().err


SWEEP_YAML = """\
- kind: asni
  base: {dataset: digits, train.epochs: 2}
  grid: {variant: [asni1, asni2], seed: [0, 1]}
- {kind: asni, dataset: digits, variant: asni1, seed: 0, train: {epochs: 2}}
"""


def test_sweep_dry_run_expands_the_grid(tmp_path, capsys):
    path = tmp_path / "sweep.yaml"
    path.write_text(SWEEP_YAML)
    assert cli.main(["--results", str(tmp_path / "r"), "sweep", str(path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "5 configs, 4 distinct runs" in out
    for variant in ("asni1", "asni2"):
        for seed in (0, 1):
            config = config_with(AsniConfig(), dataset="digits", variant=variant, seed=seed, **{"train.epochs": 2})
            assert re.search(rf"{config.run_id}\s+asni\s+missing", out)
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())


def test_sweep_runs_reports_failures_and_exits_1(tmp_path, capsys, monkeypatch):
    def fake(config, *, store, device, progress):
        if config.variant == "asni2":
            raise RuntimeError("no parent")
        store.prepare(config)
        store.mark_complete(config.run_id, {})
        return SimpleNamespace(run_id=config.run_id, reused=False)

    monkeypatch.setattr("sparsity_lab.experiments.run", fake)
    path = tmp_path / "sweep.yaml"
    path.write_text(SWEEP_YAML)
    assert cli.main(["--results", str(tmp_path / "r"), "sweep", str(path), "--devices", "cpu", "--no-progress"]) == 1
    captured = capsys.readouterr()
    assert len(re.findall(r"\sdone\s", captured.out)) == 2 and len(re.findall(r"\sfailed\s", captured.out)) == 2
    assert captured.err.count("RuntimeError: no parent") == 2


def test_python_dash_m_entry_point(tmp_path):
    out = subprocess.run([sys.executable, "-m", "sparsity_lab", "--results", str(tmp_path), "ls"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "no runs in" in out.stdout


@pytest.mark.parametrize(("flag", "expected"), [([], "auto"), (["--batch-seeds", "on"], True),
                                               (["--batch-seeds", "off"], False)])
def test_sweep_batch_seeds_flag_reaches_run_many(tmp_path, monkeypatch, flag, expected):
    seen = {}

    def fake_run_many(configs, **kwargs):
        seen.update(kwargs)
        return []

    monkeypatch.setattr("sparsity_lab.sweep.runner.run_many", fake_run_many)
    path = tmp_path / "sweep.yaml"
    path.write_text(SWEEP_YAML)
    assert cli.main(["--results", str(tmp_path / "r"), "sweep", str(path), "--no-progress", *flag]) == 0
    assert seen["batch_seeds"] is expected if isinstance(expected, bool) else seen["batch_seeds"] == expected


def test_sweep_rejects_an_unknown_batch_seeds_value(tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli.main(["--results", str(tmp_path), "sweep", "x.yaml", "--batch-seeds", "sometimes"])
    assert "invalid choice: 'sometimes'" in capsys.readouterr().err


def test_ls_leaves_sap_p_q_blank_on_lt_runs(tmp_path, capsys):
    from sparsity_lab.config.configs import IterativeConfig
    from sparsity_lab.store import ResultsStore

    store = ResultsStore(tmp_path)
    sap = IterativeConfig(dataset="digits", model="mlp", method="sap", p=0.8, q=1.5, iterations=1)
    lt = IterativeConfig(dataset="digits", model="mlp", method="lt", prune_fraction=0.3, iterations=1)
    for config in (sap, lt):
        store.prepare(config)
    assert cli.main(["--results", str(tmp_path), "ls"]) == 0
    lines = capsys.readouterr().out.rstrip().splitlines()
    header = lines[0]
    rows = {line.split()[0]: line for line in lines[1:]}

    def cell(run_id: str, column: str) -> str:  # the text under the column's header (right-aligned)
        start = header.index(f" {column}")
        return rows[run_id][len(header[:start].rstrip()): start + 1 + len(column)].strip()

    assert (cell(sap.run_id, "config_p"), cell(sap.run_id, "config_q")) == ("0.8", "1.5")
    assert (cell(lt.run_id, "config_p"), cell(lt.run_id, "config_q")) == ("", "")  # LT never used SAP's p, q
    assert (cell(lt.run_id, "prune_fraction"), cell(sap.run_id, "prune_fraction")) == ("0.3", "")


def test_ctrl_c_is_one_line_and_says_how_to_resume(monkeypatch, capsys, tmp_path):
    def interrupted(args, store):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "cmd_ls", interrupted)
    assert cli.main(["--results", str(tmp_path), "ls"]) == 130
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "interrupted" in err and "run the same command again to resume" in err
