"""``python -m sparsity_lab``: the command-line interface (see sparsity_lab/cli.py).

For ``sweep``, the fork server that starts the sweep's workers is started first, so it imports the package
while this process imports the CLI (sparsity_lab/worker_start.py).
"""

import sys

if "sweep" in sys.argv[1:]:
    from sparsity_lab import worker_start

    worker_start.warm()

from sparsity_lab.cli import main  # noqa: E402

raise SystemExit(main())
