"""Test-session settings: one intra-op thread, so tests that start subprocesses (kill/resume, two
processes on one run, notebook kernels) never oversubscribe the 2-core CI machine."""

import os

import pytest
import torch

torch.set_num_threads(1)
os.environ.setdefault("SPARSITY_LAB_CPU_THREADS", "1")


@pytest.fixture
def trainings(monkeypatch):
    """Counts the trainings that runs completed in this process, from what each run stores as it completes
    (``trained_now`` in its ``COMPLETE`` summary): call it for the count so far."""
    from sparsity_lab.store.results import ResultsStore

    count = {"n": 0}
    original = ResultsStore.mark_complete

    def counting(self, run_id, summary):
        count["n"] += int(summary.get("trained_now", 0))
        return original(self, run_id, summary)

    monkeypatch.setattr(ResultsStore, "mark_complete", counting)
    return lambda: count["n"]


#: The suite's slowest files, slowest first (``pytest --durations=0`` on the 2-core machine, summed per
#: file). ``make test`` hands files to its two workers in collection order (``--no-loadscope-reorder``),
#: so these start first and the run does not end with one worker busy on a long file while the other idles
#: (longest-processing-time-first). Order only: nothing is skipped; a file not listed keeps its place after.
SLOWEST_FIRST = (
    "test_notebooks.py", "test_paper_profile.py", "test_cluster_slurm.py",
    "test_cluster.py", "test_report.py", "test_explore.py", "test_sweep_errors.py", "test_figure_notebook.py",
    "test_bench_sweep_scaling.py", "test_resume_soak.py", "test_roots.py", "test_sweep.py", "test_seed_group.py",
    "test_store_determinism.py", "test_bundle_compact.py", "test_pipeline.py", "test_figures_sap.py",
    "test_notebook_run.py", "test_claims_scopes_ablations.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest keep their order
