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
