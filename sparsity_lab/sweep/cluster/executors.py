"""submitit executors for ``ClusterOptions``: ``SlurmExecutor`` (sbatch arrays) or ``LocalExecutor`` (subprocesses)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import submitit
import torch

from sparsity_lab.config.configs import ConfigError
from sparsity_lab.sweep.cluster.options import EXECUTORS, ClusterOptions


def make_executor(kind: str, folder: Path, options: ClusterOptions) -> submitit.Executor:
    """A submitit executor for ``kind`` ("slurm" or "submitit-local") with ``options``' resources."""
    if kind == "slurm":
        if shutil.which("sbatch") is None:
            raise ConfigError("executor 'slurm': no SLURM here (sbatch not found); allowed on a SLURM login "
                              "node, or use --executor submitit-local / local")
        executor = submitit.SlurmExecutor(folder=folder, max_num_timeout=options.max_requeues)
        params: dict[str, Any] = {
            "job_name": "sparsity_lab", "time": options.time_min, "cpus_per_task": options.cpus_per_task,
            "mem": f"{round(options.mem_gb * 1024)}MB", "signal_delay_s": options.signal_delay_s,
            "array_parallelism": options.array_parallelism, "setup": list(options.setup),
            "additional_parameters": dict(options.sbatch)}
        if options.partition:
            params["partition"] = options.partition
        if options.gpus_per_task:
            params["gpus_per_task"] = options.gpus_per_task
        executor.update_parameters(**params)
        return executor
    if kind == "submitit-local":
        executor = submitit.LocalExecutor(folder=folder, max_num_timeout=options.max_requeues)
        gpus = min(options.gpus_per_task, torch.cuda.device_count()) if torch.cuda.is_available() else 0
        executor.update_parameters(timeout_min=options.time_min, gpus_per_node=gpus,
                                   signal_delay_s=options.signal_delay_s, setup=list(options.setup))
        return executor
    raise ConfigError(f"executor {kind!r}: allowed one of {list(EXECUTORS[1:])} here ('local' is run_many)")
