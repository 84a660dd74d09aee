"""What the report batch checks before it runs anything: which notebooks (registered figures only),
the ``-p`` overrides (YAML values, then names, types and choices against the figure registry) and
the profile. Every problem is a :class:`UsageError` (one line, exit code 2)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from sparsity_lab.errors import UserError

__all__ = ["UsageError", "discover", "select"]


class UsageError(UserError, ValueError):
    """Bad command-line selection (exit code 2)."""


def discover(notebooks_dir: Path) -> list[Path]:
    """The notebooks of the registered figures found in ``notebooks_dir``, by number. Other ``NN_*.ipynb``
    files (a JupyterLab "Duplicate" such as ``01_sap_trajectories-Copy1.ipynb``) are ignored with a note."""
    from sparsity_lab.figures.registry import all_figures

    specs = all_figures()
    known = {spec.notebook for spec in specs}
    for extra in sorted(p.name for p in notebooks_dir.glob("[0-9][0-9]_*.ipynb") if p.name not in known):
        print(f"note: {notebooks_dir / extra} is not a registered figure's notebook: ignored", flush=True)
    found = [notebooks_dir / spec.notebook for spec in specs if (notebooks_dir / spec.notebook).is_file()]
    if not found:
        raise UsageError(f"no notebook of a registered figure in {notebooks_dir}")
    return found


def select(available: list[Path], wanted: list[str] | None) -> list[Path]:
    """Notebooks named by figure number (``7``, ``07``), name (``pqi_properties``) or stem."""
    if not wanted:
        return available
    chosen: list[Path] = []
    for token in wanted:
        token = token.removesuffix(".ipynb")
        hits = [p for p in available if p.stem == token or p.stem.startswith(f"{token}_") or p.stem[3:] == token
                or (token.isdigit() and int(token) == int(p.stem[:2]))]
        if len(hits) != 1:
            problem = "matches several notebooks" if hits else "is not a notebook"
            raise UsageError(f"{token!r} {problem}; available: {', '.join(p.stem for p in available) or 'none'}")
        if hits[0] not in chosen:
            chosen.append(hits[0])
    return sorted(chosen)


def _parse_overrides(pairs: list[list[str]] | None) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    for key, raw in pairs or []:
        if not key.isidentifier():
            raise UsageError(f"parameter name {key!r} is not a Python identifier")
        if key in ("profile", "output_dir"):
            raise UsageError(f"set {key!r} with --{'profile' if key == 'profile' else 'out'}, not -p")
        if key == "publish":
            raise UsageError("'publish' is set by the report (it always publishes), not -p")
        try:
            overrides[key] = yaml.safe_load(raw)
        except yaml.YAMLError as err:
            raise UsageError(f"parameter {key}={raw!r} is not a YAML value ({str(err).splitlines()[0]}): "
                             "allowed e.g. 3, 0.5, true, cifar10, [0, 1]") from None
    return overrides


def _check_parameters(chosen: list[Path], profile: str, overrides: dict[str, Any]) -> list[Any]:
    """Every chosen figure's parameters resolved (names, types, choices, configs) before anything runs;
    returns ``pipeline.plan``'s (spec, params, runs) per figure."""
    from sparsity_lab.figures.params import ParameterError, check_profile
    from sparsity_lab.report import pipeline

    try:
        check_profile(profile)
        return pipeline.plan([p.stem for p in chosen], profile, {k: v for k, v in overrides.items() if k != "device"})
    except (ParameterError, ValueError) as exc:
        raise UsageError(str(exc)) from None
