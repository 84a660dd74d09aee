"""Imported once by the kernel template (:mod:`sparsity_lab.report.kernel_start`): what every figure
notebook's kernel imports before its first cell, so each forked kernel finds it loaded.

matplotlib reads ``MPLBACKEND`` when it is imported; ipykernel sets it to the inline backend before a cold
kernel imports matplotlib, so the template does the same first. Importing starts no thread that matters to
fork and creates no ZeroMQ context (ipykernel creates its own when the forked kernel starts).
"""

import os

os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")

import ipykernel.ipkernel  # noqa: E402,F401
import ipykernel.kernelapp  # noqa: E402,F401
import matplotlib.pyplot  # noqa: E402,F401
import matplotlib_inline.backend_inline  # noqa: E402,F401
import pandas  # noqa: E402,F401
import seaborn  # noqa: E402,F401

import sparsity_lab.report.notebook  # noqa: E402,F401
