"""The command line: ``sparsity-lab`` / ``python -m sparsity_lab`` (main.py parses and dispatches; one module per
family of subcommands: commands.py run/sweep/ls/show, bundle.py, verify.py, cluster.py; checks.py and flags.py
hold what every command checks before it creates anything)."""
