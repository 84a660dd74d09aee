"""The content-addressed results store (README "Architecture" and "Stored records").

``ResultsStore`` keeps one directory per run id with atomic, checksummed checkpoints per pruning
iteration / epoch; ``load_results`` gathers the tidy records of many runs for the notebooks.
"""

from sparsity_lab.store.codec import RECORD_COLUMNS
from sparsity_lab.store.compare import TIMING_METRICS, comparable
from sparsity_lab.store.errors import StoreError
from sparsity_lab.store.query import flatten_config, list_runs, load_results, load_tensors, varying_columns
from sparsity_lab.store.results import ENV_VAR, ResultsStore

__all__ = ["ENV_VAR", "RECORD_COLUMNS", "ResultsStore", "StoreError", "TIMING_METRICS", "comparable",
           "flatten_config", "list_runs", "load_results", "load_tensors", "varying_columns"]
