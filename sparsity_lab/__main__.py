"""``python -m sparsity_lab``: the command-line interface (see sparsity_lab/cli.py)."""

from sparsity_lab.cli import main

raise SystemExit(main())
