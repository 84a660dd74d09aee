"""Whole-run verification and repair (README "Reliability").

``check_run`` verifies everything a run holds against its manifest.json: config.json (readable JSON
naming the run), manifest.json itself, every step (sha256, size and file structure,
``manifest.Verifier``), every artifact, and the ``COMPLETE`` marker (checksum and step count). The
first problem found names the file; ``find_problems`` lists them all, and the store's repair
(``ResultsStore.repair``, with the run's lock held: when a runner opens the run, and ``sparsity-lab verify
--repair``) removes what cannot be trusted so the runner recomputes exactly that:

- a damaged step k: steps >= k are discarded (the verified prefix 0..k-1 is kept);
- a damaged artifact: it is dropped; unless it was saved as ``rebuildable`` (the runner derives it
  again from the config, e.g. θ₀ from the seed), steps from its ``from_step`` on (the first step
  computed after it was saved) are discarded too;
- an unreadable or missing manifest.json: nothing can be verified, every step and artifact is
  discarded and the manifest is rebuilt around config.json;
- any problem withdraws the ``COMPLETE`` marker; a damaged config.json is rewritten by
  ``ResultsStore.prepare`` when the config is run again (only the config itself can restore it).

An interrupted write (a step directory or artifact published but not yet in the manifest, or a
``.tmp-`` leftover of a kill) is not damage: it is what a kill leaves and is cleaned silently.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sparsity_lab.store import atomic, manifest
from sparsity_lab.store.manifest import ARTIFACTS, COMPLETE_FILE, CONFIG_FILE

log = logging.getLogger("sparsity_lab.store")

_UNRECORDED = "not recorded in manifest.json"


@dataclass(frozen=True)
class RunProblem:
    """Why (part of) a run cannot be trusted: the file (relative to the run directory) and the reason.

    ``discard_from``: the first step to recompute (None: no step is affected); ``drop``: an artifact to remove.
    """

    file: str
    reason: str
    discard_from: int | None = None
    drop: str | None = None
    benign: bool = False  # what a kill leaves (an interrupted write): cleaned without calling the run damaged

    def __str__(self) -> str:
        return f"{self.file}: {self.reason}"


def config_problem(run_dir: Path, files: dict[str, Any], verifier: manifest.Verifier) -> RunProblem | None:
    """config.json must be UTF-8 JSON naming this run and match its manifest entry (when there is one)."""
    path = run_dir / CONFIG_FILE
    try:
        doc = json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        return RunProblem(CONFIG_FILE, "missing")
    except (ValueError, UnicodeDecodeError) as err:
        return RunProblem(CONFIG_FILE, f"not valid JSON ({type(err).__name__}: {str(err)[:80]})")
    if not isinstance(doc, dict) or doc.get("run_id") != run_dir.name or not isinstance(doc.get("config"), dict):
        return RunProblem(CONFIG_FILE, f"does not describe run {run_dir.name} (no matching run_id and config)")
    if CONFIG_FILE in files and (reason := verifier.problem(path, files[CONFIG_FILE])) is not None:
        return RunProblem(CONFIG_FILE, reason)
    return None


def artifact_problems(run_dir: Path, files: dict[str, Any], verifier: manifest.Verifier) -> list[RunProblem]:
    """Every recorded artifact that fails verification, and every unrecorded artifact file (benign)."""
    problems = []
    listed = {rel: e for rel, e in files.items() if rel.startswith(f"{ARTIFACTS}/")}
    for rel, entry in sorted(listed.items()):
        reason = verifier.problem(run_dir / rel, entry)
        if reason is not None:
            first = None if entry.get("rebuildable") else int(entry.get("from_step", 0))
            problems.append(RunProblem(rel, reason, discard_from=first, drop=rel))
    directory = run_dir / ARTIFACTS
    if directory.is_dir():
        for path in sorted(directory.iterdir()):
            rel = f"{ARTIFACTS}/{path.name}"
            if rel not in listed and not path.name.startswith(atomic.TMP_PREFIX):
                problems.append(RunProblem(rel, f"{_UNRECORDED} (interrupted write)", drop=rel, benign=True))
    return problems


def complete_problem(run_dir: Path, files: dict[str, Any], verifier: manifest.Verifier,
                     steps: int) -> RunProblem | None:
    """The COMPLETE marker must match its manifest entry and count the verified steps."""
    path = run_dir / COMPLETE_FILE
    reason = verifier.problem(path, files.get(COMPLETE_FILE))
    if reason is None:
        try:
            stored = json.loads(path.read_bytes().decode("utf-8")).get("steps")
        except (ValueError, UnicodeDecodeError, AttributeError) as err:
            stored = f"unreadable ({type(err).__name__})"
        if stored != steps:
            reason = f"says {stored} steps, {steps} verify"
    return None if reason is None else RunProblem(COMPLETE_FILE, reason)


def find_problems(run_dir: Path, verifier: manifest.Verifier) -> list[RunProblem]:
    """Every problem of the run, most severe first (config, manifest, steps, artifacts, COMPLETE)."""
    files, manifest_reason = manifest.load_manifest(run_dir)
    problems = []
    if (p := config_problem(run_dir, files, verifier)) is not None:
        problems.append(p)
    if manifest_reason is not None:
        has_data = (run_dir / manifest.STEPS).is_dir() or (run_dir / ARTIFACTS).is_dir()
        marked = (run_dir / COMPLETE_FILE).exists()
        benign = manifest_reason == "missing" and not has_data and not marked  # killed right after config.json
        problems.append(RunProblem(manifest.MANIFEST, manifest_reason, discard_from=0, benign=benign))
        return problems
    valid, step = verifier.scan_steps(run_dir, files)
    if step is not None:
        last = step.step == max([step.step, *manifest.manifest_steps(files)])
        benign = step.reason.startswith(_UNRECORDED) and last
        problems.append(RunProblem(step.file, step.reason, discard_from=step.step, benign=benign))
    problems += artifact_problems(run_dir, files, verifier)
    if (run_dir / COMPLETE_FILE).exists() and (p := complete_problem(run_dir, files, verifier, len(valid))):
        problems.append(p)
    return problems


@dataclass(frozen=True)
class RunCheck:
    """``status``: "ok" or "damaged"; ``problem``: the first non-benign problem (None when ok)."""

    status: str
    problem: RunProblem | None


def check_run(run_dir: Path, verifier: manifest.Verifier) -> RunCheck:
    """Verify the whole run; "damaged" if anything but an interrupted write is wrong (in a run marked
    complete, an unrecorded step is damage too)."""
    problems = find_problems(run_dir, verifier)
    marked = (run_dir / COMPLETE_FILE).exists()
    # a kill's leftover step in a run marked complete cannot happen: there it is damage; an unrecorded
    # artifact file (drop_artifact killed between manifest and unlink) never is
    serious = [p for p in problems if not p.benign or (marked and p.discard_from is not None)]
    return RunCheck("damaged" if serious else "ok", serious[0] if serious else None)


def action(p: RunProblem) -> str:
    """What the store's repair does about ``p`` (logged with it)."""
    if p.file == CONFIG_FILE:
        return "run the config again to rewrite it"
    if p.file == manifest.MANIFEST:
        return "nothing can be verified: discarding every step and artifact so they are recomputed"
    if p.discard_from is not None:
        return f"discarding step {p.discard_from} and later steps so they are recomputed"
    return "removing it so it is recomputed" if p.drop else "withdrawing COMPLETE"


def sound_config_entry(run_dir: Path, verifier: manifest.Verifier) -> dict[str, Any]:
    """``{"config.json": entry}`` when config.json is sound (what a rebuilt manifest starts from), else ``{}``."""
    if config_problem(run_dir, {}, verifier) is not None:
        return {}
    data = (run_dir / CONFIG_FILE).read_bytes()
    return {CONFIG_FILE: {"sha256": atomic.sha256_bytes(data), "size": len(data)}}
