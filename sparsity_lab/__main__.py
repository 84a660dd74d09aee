"""``python -m sparsity_lab``: the command-line interface (see sparsity_lab/cli/main.py).

For a ``sweep`` that will use worker processes, the fork server that starts them is started first, so it
imports the package while this process imports the CLI (sparsity_lab/sweep/fork_server.py).
"""

import sys

if "sweep" in sys.argv[1:]:
    from sparsity_lab.sweep import fork_server as worker_start

    if worker_start.expects_workers(sys.argv[1:]):
        worker_start.warm()

from sparsity_lab.cli.main import main  # noqa: E402

raise SystemExit(main())
