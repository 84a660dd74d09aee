"""The report: ``pipeline`` (plan, train what is missing, load, draw, check) behind every figure notebook;
``batch`` runs the notebooks with papermill and renders HTML (``python -m sparsity_lab.report``); ``explore``
is the interactive explorer of stored results."""
