"""``python -m sparsity_lab``: the command-line interface (see sparsity_lab/cli.py).

For a ``sweep`` that will use worker processes, the fork server that starts them is started first, so it
imports the package while this process imports the CLI (sparsity_lab/worker_start.py).
"""

import sys

if "sweep" in sys.argv[1:]:
    from sparsity_lab import worker_start

    if worker_start.expects_workers(sys.argv[1:]):
        worker_start.warm()

from sparsity_lab.cli import main  # noqa: E402

raise SystemExit(main())
