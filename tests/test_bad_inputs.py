"""Every bad input: one line naming the value and what is allowed, exit 2, nothing written (issue 9 §5).

Each row of ``CLI_CASES`` is argv + environment + files -> exit status 2, a message substring, a
single stderr line without a traceback, and no results store or data root created.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import urllib.error
from pathlib import Path

import pytest
import torch

from sparsity_lab.cli import main as cli
from sparsity_lab.config.configs import ConfigError, IterativeConfig, config_from_dict
from sparsity_lab.errors import UserError
from sparsity_lab.report import batch as report

GOOD = "- {kind: iterative, dataset: digits, iterations: 1, train: {epochs: 1}}\n"

#: (id, argv, env, files {name: text, or None for a directory}, expected substring of the one line)
CLI_CASES = [
    # sweep files
    ("sweep-missing", ["sweep", "{tmp}/nope.yaml"], {}, {}, "does not exist"),
    ("sweep-directory", ["sweep", "{tmp}/d"], {}, {"d": None}, "is not a file"),
    ("sweep-empty", ["sweep", "{tmp}/e.yaml"], {}, {"e.yaml": "\n"}, "is empty"),
    ("sweep-bad-yaml", ["sweep", "{tmp}/b.yaml"], {}, {"b.yaml": "- {kind: iterative\n- x: [1\n"}, "not valid YAML at line"),
    ("sweep-bad-json", ["sweep", "{tmp}/b.json"], {}, {"b.json": '[{"kind": "iterative",}]'},
     "not valid JSON at line 1, column"),
    ("sweep-top-scalar", ["sweep", "{tmp}/s.yaml"], {}, {"s.yaml": "5\n"}, "holds a int"),
    ("sweep-top-string", ["sweep", "{tmp}/s.yaml"], {}, {"s.yaml": "iterative\n"}, "holds a str"),
    ("sweep-string-entry", ["sweep", "{tmp}/s.yaml"], {}, {"s.yaml": "- iterative\n"}, "sweep entry 0 is a str"),
    ("sweep-empty-list", ["sweep", "{tmp}/s.yaml"], {}, {"s.yaml": "[]\n"}, "holds no configs"),
    ("sweep-block-keys", ["sweep", "{tmp}/s.yaml"], {}, {"s.yaml": "- {kind: iterative, grid: {seed: [0]}, extra: 1}\n"},
     "unknown keys ['extra']"),
    ("sweep-grid-scalar", ["sweep", "{tmp}/s.yaml"], {}, {"s.yaml": "- {kind: iterative, grid: {seed: 0}}\n"},
     "grid['seed'] = 0"),
    ("sweep-grid-empty", ["sweep", "{tmp}/s.yaml"], {}, {"s.yaml": "- {kind: iterative, grid: {seed: []}}\n"},
     "non-empty list"),
    ("sweep-grid-not-mapping", ["sweep", "{tmp}/s.yaml"], {}, {"s.yaml": "- {kind: iterative, grid: [1, 2]}\n"},
     "grid is a list"),
    ("sweep-string-number", ["sweep", "{tmp}/s.yaml"], {}, {"s.yaml": "- {kind: iterative, p: '0.5'}\n"}, "p='0.5'"),
    ("sweep-unknown-field", ["sweep", "{tmp}/s.yaml"], {}, {"s.yaml": "- {kind: iterative, bogus: 1}\n"}, "'bogus'"),
    ("sweep-train-scalar", ["sweep", "{tmp}/s.yaml"], {}, {"s.yaml": "- {kind: iterative, train: 5}\n"}, "train=5"),
    ("sweep-bool-iterations", ["sweep", "{tmp}/s.yaml"], {}, {"s.yaml": "- {kind: iterative, iterations: true}\n"},
     "iterations=True"),
    ("sweep-bool-seed", ["sweep", "{tmp}/s.yaml"], {}, {"s.yaml": "- {kind: iterative, seed: true}\n"}, "seed=True"),
    ("sweep-inf-kappa", ["sweep", "{tmp}/s.yaml"], {}, {"s.yaml": "- {kind: asni, kappa: .inf}\n"}, "kappa=inf"),
    ("sweep-nan-rate", ["sweep", "{tmp}/s.yaml"], {}, {"s.yaml": "- {kind: iterative, layer_rates: [[fc1.*, .nan]]}\n"},
     "layer_rates="),
    ("sweep-nan-beta", ["sweep", "{tmp}/s.yaml"], {}, {"s.yaml": "- {kind: iterative, train: {betas: [0.9, .nan]}}\n"},
     "train.betas="),
    # CLI flags
    ("workers-per-device-0", ["sweep", "{tmp}/g.yaml", "--workers-per-device", "0"], {}, {"g.yaml": GOOD},
     "--workers-per-device: '0' is not allowed"),
    ("run-unknown-device", ["run", "--dataset", "digits", "--device", "cuda:7"], {}, {}, "device 'cuda:7'"),
    ("run-garbage-device", ["run", "--dataset", "digits", "--device", "banana"], {}, {}, "device 'banana'"),
    ("sweep-unknown-device", ["sweep", "{tmp}/g.yaml", "--devices", "cpu,cuda:9"], {}, {"g.yaml": GOOD},
     "device 'cuda:9'"),
    ("train-subset-too-large", ["run", "--train_subset", "70000"], {}, {}, "train_subset=70000"),
    ("val-size-too-large", ["run", "--val_size", "60000", "--rank_weights", "best_val"], {}, {}, "val_size=60000"),
    ("q-inf", ["run", "--q", "inf"], {}, {}, "q=inf"),
    ("p-nan", ["run", "--p", "nan"], {}, {}, "p=nan"),
    ("lr-inf", ["run", "--train.lr", "inf"], {}, {}, "train.lr=inf"),
    ("weight-decay-inf", ["run", "--train.weight_decay", "inf"], {}, {}, "train.weight_decay=inf"),
    ("grad-clip-inf", ["run", "--train.grad_clip", "inf"], {}, {}, "train.grad_clip=inf"),
    ("eta-r-inf", ["run", "--eta_r", "inf"], {}, {}, "eta_r=inf"),
    ("s-max-inf", ["run", "--kind", "asni", "--s_max", "inf"], {}, {}, "s_max=inf"),
    ("epochs-huge", ["run", "--train.epochs", "1000000000000"], {}, {}, "train.epochs=1000000000000"),
    ("iterations-huge", ["run", "--iterations", "1000000000"], {}, {}, "iterations=1000000000"),
    ("seed-huge", ["run", "--seed", "99999999999999999999999"], {}, {}, "seed=99999999999999999999999"),
    ("histogram-bins-huge", ["run", "--kind", "asni", "--histogram_bins", "100000000"], {}, {}, "histogram_bins="),
    ("show-rows-negative", ["show", "x", "--rows", "-5"], {}, {}, "--rows: '-5' is not allowed"),
    ("results-is-a-file-ls", ["--results", "{tmp}/f", "ls"], {}, {"f": "x"}, "is not a directory"),
    ("results-is-a-file-run", ["--results", "{tmp}/f", "run", "--dataset", "digits"], {}, {"f": "x"},
     "is not a directory"),
    ("ls-unknown-kind", ["ls", "--kind", "bogus"], {}, {}, "--kind: invalid choice: 'bogus'"),
    ("synthetic-size-huge", ["run", "--dataset", "synthetic:cifar10:40960000"], {}, {}, "synthetic train size"),
    ("unknown-dataset", ["run", "--dataset", "imagenet"], {}, {}, "dataset='imagenet'"),
    ("env-data-file", ["run", "--dataset", "mnist", "--device", "cpu"], {"SPARSITY_LAB_DATA": "{tmp}/f"},
     {"f": "x"}, "is not a directory"),
    # environment
    ("env-results-file", ["ls"], {"SPARSITY_LAB_RESULTS": "{tmp}/f"}, {"f": "x"}, "SPARSITY_LAB_RESULTS"),
    ("env-cpu-threads-abc", ["run", "--dataset", "digits", "--device", "cpu"], {"SPARSITY_LAB_CPU_THREADS": "abc"}, {},
     "SPARSITY_LAB_CPU_THREADS='abc'"),
    ("env-cpu-threads-0", ["run", "--dataset", "digits", "--device", "cpu"], {"SPARSITY_LAB_CPU_THREADS": "0"}, {},
     "SPARSITY_LAB_CPU_THREADS='0'"),
    ("env-cpu-threads-sweep", ["sweep", "{tmp}/g.yaml", "--devices", "cpu"], {"SPARSITY_LAB_CPU_THREADS": "-1"},
     {"g.yaml": GOOD}, "SPARSITY_LAB_CPU_THREADS='-1'"),
]


def _fill(text: str, tmp: Path) -> str:
    return text.replace("{tmp}", str(tmp))


@pytest.mark.parametrize("argv, env, files, expected", [c[1:] for c in CLI_CASES], ids=[c[0] for c in CLI_CASES])
def test_bad_cli_input_is_one_line_exit_2_and_writes_nothing(tmp_path, monkeypatch, capsys, argv, env, files, expected):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SPARSITY_LAB_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("SPARSITY_LAB_DATA", str(tmp_path / "data"))
    monkeypatch.delenv("SPARSITY_LAB_DEBUG", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, _fill(value, tmp_path))
    for name, text in files.items():
        (tmp_path / name).mkdir() if text is None else (tmp_path / name).write_text(text)
    trained = []
    monkeypatch.setattr("sparsity_lab.experiments.run", lambda config, **kw: trained.append(config))
    try:
        code = cli.main([_fill(a, tmp_path) for a in argv])
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1 and "Traceback" not in err, err
    assert expected in lines[0], lines[0]
    assert not trained
    assert not (tmp_path / "results").exists() and not (tmp_path / "data").exists()


def test_debug_flag_and_env_show_the_traceback(tmp_path, monkeypatch):
    (tmp_path / "f").write_text("x")
    with pytest.raises(UserError, match="is not a directory"):
        cli.main(["--debug", "--results", str(tmp_path / "f"), "ls"])
    monkeypatch.setenv("SPARSITY_LAB_DEBUG", "1")
    with pytest.raises(ConfigError, match="q=inf"):
        cli.main(["run", "--q", "inf"])


def test_entry_point_prints_one_line_without_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "sparsity_lab", "--results", str(tmp_path / "r"), "run",
                           "--train.lr", "inf"], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "train.lr=inf" in proc.stderr and not (tmp_path / "r").exists()


# ---------------------------------------------------------------- configs: run ids
#: Run ids computed on main before number normalisation; configs given with floats must keep them.
PINNED_IDS = [
    ({"kind": "iterative"}, "iterative_7e9fcbe08553"),
    ({"kind": "asni"}, "asni_9290b21007dc"),
    ({"kind": "iterative", "p": 0.3, "q": 2.0, "seed": 3}, "iterative_ef612f987f47"),
    ({"kind": "iterative", "method": "lt", "layer_rates": [["fc3.*", 0.1]]}, "iterative_219350c77ab5"),
    ({"kind": "iterative", "dataset": "digits", "iterations": 2, "train": {"epochs": 3, "lr": 0.01}},
     "iterative_2cda4183970b"),
    ({"kind": "asni", "variant": "asni2", "s_max": 90.0, "train": {"betas": [0.8, 0.99]}}, "asni_1edb03d17c9c"),
    ({"kind": "iterative", "p": 1.0, "q": 2.0}, "iterative_b1998b80889b"),
    ({"kind": "iterative", "eta_r": 0.5, "gamma": 2.0}, "iterative_d56a3e794868"),
]


@pytest.mark.parametrize("data, run_id", PINNED_IDS)
def test_existing_run_ids_stay_stable(data, run_id):
    assert config_from_dict(data).run_id == run_id


def test_integers_of_float_fields_give_the_same_run_id():
    assert config_from_dict({"kind": "iterative", "p": 1, "q": 2}).run_id == "iterative_b1998b80889b"
    assert IterativeConfig(p=1, q=2) == IterativeConfig(p=1.0, q=2.0)
    assert config_from_dict({"kind": "asni", "s_max": 90, "train": {"lr": 1}}).run_id == \
        config_from_dict({"kind": "asni", "s_max": 90.0, "train": {"lr": 1.0}}).run_id


# ---------------------------------------------------------------- report parameters
@pytest.mark.parametrize("pair, expected", [
    (["seeds", "abc"], "seeds='abc'"),
    (["itertions", "3"], "unknown parameter 'itertions'"),
    (["epochs", "true"], "epochs=True"),
    (["seeds", "[0, 1"], "not a YAML value"),
    (["--profile", "papr"], "unknown profile 'papr'"),
])
def test_report_refuses_bad_parameters_up_front(tmp_path, capsys, pair, expected):
    args = pair if pair[0].startswith("--") else ["-p", *pair]
    code = report.main(["--notebooks", "01", "--out", str(tmp_path / "reports"), *args])
    err = capsys.readouterr().err
    assert code == 2 and expected in err and err.count("\n") == 1, err
    assert "iterations" in err or "Traceback" not in err
    assert not (tmp_path / "reports").exists()


# ---------------------------------------------------------------- data root and files
def _fail_download(root: Path):
    from sparsity_lab.data.info import DatasetUnavailableError

    try:
        raise urllib.error.URLError("no network")
    except urllib.error.URLError as exc:
        raise DatasetUnavailableError(f"dataset 'mnist' could not be downloaded ({exc})") from exc


def test_missing_data_root_is_reported_and_not_created(tmp_path, monkeypatch):
    import dataclasses

    from sparsity_lab.data import DATASETS, DatasetUnavailableError, ensure_available

    monkeypatch.setitem(DATASETS, "mnist", dataclasses.replace(DATASETS["mnist"], load=_fail_download))
    with pytest.raises(DatasetUnavailableError, match="does not exist") as info:
        ensure_available("mnist", root=tmp_path / "nodata")
    assert "To fix" in str(info.value) and not (tmp_path / "nodata").exists()


def test_unreadable_or_file_data_root_is_one_line(tmp_path, monkeypatch):
    from sparsity_lab.data import DatasetUnavailableError, ensure_available, preflight

    (tmp_path / "f").write_text("x")
    with pytest.raises(DatasetUnavailableError, match="is not a directory"):
        ensure_available("mnist", root=tmp_path / "f")
    monkeypatch.setattr(preflight.os, "access", lambda path, mode: False)  # tests run as root: chmod is ignored
    with pytest.raises(DatasetUnavailableError, match="is not readable"):
        ensure_available("mnist", root=tmp_path)


@pytest.mark.parametrize("name, content", [
    ("train-labels-idx1-ubyte.gz", b"\x1f\x8b truncated"),
    ("train-labels-idx1-ubyte", bytes(60008)),  # zero-filled extracted file
])
def test_corrupt_local_files_are_named_with_the_fix(tmp_path, name, content):
    from sparsity_lab.data import DatasetUnavailableError, ensure_available

    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    (raw / name).write_bytes(content)
    with pytest.raises(DatasetUnavailableError, match="corrupt or truncated") as info:
        ensure_available("mnist", root=tmp_path)
    assert str(raw / name) in str(info.value) and "delete it" in str(info.value)


def test_shifted_labels_are_refused():
    from sparsity_lab.data.integrity import CLASS_COUNTS, LABEL_MD5, check_labels

    train_counts, test_counts = CLASS_COUNTS["mnist"]
    sorted_y = torch.repeat_interleave(torch.arange(10), torch.tensor(train_counts))
    test_y = torch.repeat_interleave(torch.arange(10), torch.tensor(test_counts))
    assert "class counts" in check_labels("mnist", (sorted_y + 1) % 10, test_y)  # every label shifted by one class
    assert "checksum" in check_labels("mnist", sorted_y, test_y)  # right counts, wrong order
    assert hashlib.md5(sorted_y.to(torch.uint8).numpy().tobytes()).hexdigest() != LABEL_MD5["mnist"][0]


def test_library_run_with_a_bad_device_or_env_creates_no_run_directory(tmp_path, monkeypatch):
    from sparsity_lab.errors import EnvVarError
    from sparsity_lab.experiments import run
    from sparsity_lab.store import ResultsStore

    store = ResultsStore(tmp_path / "r")
    config = IterativeConfig(dataset="digits", iterations=1)
    with pytest.raises(UserError, match="cuda:5"):
        run(config, store=store, device="cuda:5")
    monkeypatch.setenv("SPARSITY_LAB_CPU_THREADS", "abc")
    with pytest.raises(EnvVarError):
        run(config, store=store, device="cpu")
    assert not store.run_dir(config.run_id).exists()
