"""Test-session settings: one intra-op thread, so tests that start subprocesses (kill/resume, two
processes on one run, notebook kernels) never oversubscribe the 2-core CI machine."""

import os

import torch

torch.set_num_threads(1)
os.environ.setdefault("SPARSITY_LAB_CPU_THREADS", "1")
