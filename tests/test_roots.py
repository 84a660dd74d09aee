"""Every entry point uses the checkout's results/ and data/ from any working directory inside it, and the
environment variables when set (sparsity_lab/_roots.py, README "Set-up")."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPARSITY_LAB_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return {**env, **extra}


@pytest.mark.parametrize("where", ["notebooks", "sparsity_lab/store"])
def test_plain_import_and_the_cli_use_the_repository_roots_from_a_subdirectory(where: str) -> None:
    # a plain import, then the CLI's `ls` in the same fresh process (the entry point itself: test_cli.py)
    code = ("import sys, sparsity_lab; from sparsity_lab.store import ResultsStore; from sparsity_lab.data import "
            "data_root; sparsity_lab.load_results(run_id='no-such-run'); print(ResultsStore().root); "
            "print(data_root().resolve()); from sparsity_lab.cli.main import main; sys.exit(main(['ls']))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT / where, env=_clean_env(), capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results, data, *ls = proc.stdout.splitlines()
    assert [Path(results).resolve(), Path(data).resolve()] == [(ROOT / "results").resolve(), (ROOT / "data").resolve()]
    assert not (ROOT / where / "results").exists()
    assert str(ROOT / where / "results") not in "\n".join(ls) + proc.stderr, proc.stdout + proc.stderr


def test_environment_variables_win(tmp_path: Path) -> None:
    code = "from sparsity_lab.store import ResultsStore; from sparsity_lab.data import data_root; " \
           "print(ResultsStore().root); print(data_root())"
    env = _clean_env(SPARSITY_LAB_RESULTS=str(tmp_path / "r"), SPARSITY_LAB_DATA=str(tmp_path / "d"))
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT / "notebooks", env=env, capture_output=True,
                         text=True, timeout=120, check=True).stdout.split()
    assert out == [str(tmp_path / "r"), str(tmp_path / "d")]


def test_outside_a_checkout_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sparsity_lab import _roots

    monkeypatch.delenv("SPARSITY_LAB_RESULTS", raising=False)
    monkeypatch.delenv("SPARSITY_LAB_DATA", raising=False)
    monkeypatch.setattr(_roots, "__file__", str(tmp_path / "site" / "sparsity_lab" / "_roots.py"))
    monkeypatch.chdir(tmp_path)
    assert _roots.repository_root() is None and _roots.results_root() == Path("results")
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "sparsity_lab"\n')
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")  # the package installed elsewhere, run inside a checkout
    assert _roots.results_root() == tmp_path / "results" and _roots.data_root() == tmp_path / "data"
