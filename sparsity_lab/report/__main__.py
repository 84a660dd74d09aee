"""``python -m sparsity_lab.report``: the report batch (sparsity_lab/report/batch.py)."""

from sparsity_lab.report.batch import main

raise SystemExit(main())
