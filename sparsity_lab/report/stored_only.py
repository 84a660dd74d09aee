"""``--stored-only``: a batch that trains nothing. Notebooks whose runs are all in the results store run;
the others get a "runs missing" card that says how many runs are absent and how to make them.

For a profile whose runs are made elsewhere and shipped (the `gpu` bundle, docs/gpu-results): rendering it
on a CPU must never start hours of training because one figure's runs have not been shipped yet.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sparsity_lab.report.notebook_run import NotebookOutcome

__all__ = ["RUNS_MISSING", "split_stored"]

RUNS_MISSING = "runs missing"


def split_stored(chosen: list[Path], planned: list[Any], store: Any, profile: str
                 ) -> tuple[list[Path], list[NotebookOutcome]]:
    """(the notebooks whose runs are all stored, one "runs missing" outcome per other notebook), from
    ``pipeline.plan``'s (spec, params, runs) of the ``chosen`` notebooks, in order."""
    missing_by = {}
    for spec, _, runs in planned:
        ids = list(dict.fromkeys(r.run_id for r in runs))
        absent = [rid for rid in ids if not store.is_complete(rid)]
        if absent:
            missing_by[Path(spec.notebook).stem] = (len(absent), len(ids))
    runnable = [nb for nb in chosen if nb.stem not in missing_by]
    skipped = [NotebookOutcome(
        name=nb.stem, status=RUNS_MISSING, error_name="runs missing",
        error_message=(f"{k} of {n} runs are not in the results store {store.root} and --stored-only trains "
                       f"nothing: train them (python -m sparsity_lab.report --profile {profile} --notebooks "
                       f"{nb.stem}, on a GPU for this profile) or import a bundle that holds them"))
        for nb in chosen if nb.stem in missing_by for k, n in [missing_by[nb.stem]]]
    return runnable, skipped
