"""``report --executor slurm``: train every run the chosen notebooks need as cluster jobs, then render.

The figure layer's planner (``figures.plan.notebook_configs``) says which configs each notebook needs;
they go through ``submit_runs`` with the lab's cluster options (config file, see ``options``) and this
process waits for them, so the notebooks that execute afterwards only read the store.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sparsity_lab.cluster.options import load_options
from sparsity_lab.cluster.submit import submit_runs, wait


def prefetch_on_cluster(notebooks: Sequence[Path], profile: str, overrides: dict[str, Any], *,
                        executor: str) -> list[Any]:
    """Submit the runs ``notebooks`` need at ``profile`` and wait for them; returns the failed outcomes."""
    from sparsity_lab.figures.plan import notebook_configs

    configs: list[Any] = []
    for nb in notebooks:
        try:
            configs += notebook_configs(nb, profile, overrides)
        except Exception as exc:  # noqa: BLE001 - reported again, with its traceback, when the notebook runs
            print(f"prefetch: {Path(nb).stem} not planned ({type(exc).__name__}: {exc})", flush=True)
    handle = submit_runs(configs, executor=executor, options=load_options())
    print(f"prefetch: {len({c.run_id for c in configs})} runs for {len(notebooks)} notebooks, "
          f"{len(handle.units)} job(s) on {executor}; jobs file {handle.path}", flush=True)
    failed = list({o.run_id: o for o in wait(handle) if o.status == "failed"}.values())
    for o in failed:
        print(f"prefetch: run {o.run_id} failed: {(o.error or '').strip().splitlines()[-1:]}", flush=True)
    return failed
