"""The two environment descriptions stay in sync, and the README's commands are the real ones."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;]", requirement.strip(), maxsplit=1)[0].lower()


def test_environment_yml_names_the_same_runtime_deps_as_pyproject():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    runtime = {_name(r) for r in pyproject["project"]["dependencies"]}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    conda_pip = {_name(r) for r in pip_section if not r.startswith("-e")}
    assert conda_pip == runtime
    assert any(r.startswith("-e .") for r in pip_section), "environment.yml must install the package itself"
    assert "python=3.11" in env["dependencies"]


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme and "make figures" in readme
    assert re.search(r"^make test$", ci, flags=re.M)


def test_gitignore_keeps_data_results_reports_and_venv_out():
    ignored = (ROOT / ".gitignore").read_text().split()
    for entry in ("/data/", "/results/", "/reports/", ".venv/"):
        assert entry in ignored


def test_importing_nbformat_builds_no_iri_parsers():
    """The reason for pyproject's jsonschema bound: every process that reads or writes a notebook imports
    nbformat, and through it jsonschema's format checkers; with jsonschema 4.25+ that builds rfc3987-syntax's
    Earley parsers (about 0.9 s a process here) for a format no notebook schema uses."""
    import subprocess
    import sys

    code = "import sys, nbformat; print(sorted(m for m in sys.modules if m.startswith(('rfc3987_syntax', 'lark'))))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out
