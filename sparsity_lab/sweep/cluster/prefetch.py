"""``report --executor slurm``: train every run the chosen notebooks need as cluster jobs, then render.

The figure registry's planner (``pipeline.plan``, via the report) says which configs the notebooks need;
they go through ``submit_runs`` with the lab's cluster options (config file, see ``options``) and this
process waits for them, so the notebooks that execute afterwards only read the store.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sparsity_lab.sweep.cluster.options import load_options
from sparsity_lab.sweep.cluster.submit import submit_runs, wait


def prefetch_on_cluster(configs: Sequence[Any], *, executor: str, notebooks: int = 0) -> list[Any]:
    """Submit ``configs`` (what the chosen notebooks need: ``pipeline.plan``) as cluster jobs and wait for
    them; returns the failed outcomes."""
    handle = submit_runs(list(configs), executor=executor, options=load_options())
    print(f"prefetch: {len({c.run_id for c in configs})} runs for {notebooks} notebooks, "
          f"{len(handle.units)} job(s) on {executor}; jobs file {handle.path}", flush=True)
    failed = list({o.run_id: o for o in wait(handle) if o.status == "failed"}.values())
    for o in failed:
        print(f"prefetch: run {o.run_id} failed: {(o.error or '').strip().splitlines()[-1:]}", flush=True)
    return failed
