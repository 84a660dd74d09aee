"""Where and how cluster jobs run: ``ClusterOptions`` from defaults, a lab's config file and flags.

Precedence (later wins): the defaults below, the first config file found among ``$SPARSITY_LAB_SLURM_CONFIG``,
``./slurm.yaml`` and ``~/.config/sparsity_lab/slurm.yaml`` (``$XDG_CONFIG_HOME`` honoured), then command-line
flags. A config file is a YAML mapping of the field names below, e.g.::

    partition: gpu
    gpus_per_task: 1
    cpus_per_task: 8
    mem_gb: 32
    time_min: 240
    array_parallelism: 32
    log_dir: /scratch/$USER/sparsity_lab_logs
    sbatch: {account: mylab, qos: normal}      # any other sbatch option, passed through
    setup: ["module load cuda/12.1"]            # shell lines run before the job's python
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from sparsity_lab.config.configs import ConfigError

#: Executors ``sweep --executor`` accepts: today's worker pool, submitit's local executor (subprocess jobs on
#: this machine, same code path as SLURM) and SLURM through submitit.
EXECUTORS = ("local", "submitit-local", "slurm")
CONFIG_ENV = "SPARSITY_LAB_SLURM_CONFIG"


@dataclasses.dataclass(frozen=True)
class ClusterOptions:
    """SLURM resources per task (one task = one run, or one seed group of a fully connected config)."""

    partition: str | None = None        # None: the cluster's default partition
    gpus_per_task: int = 1
    cpus_per_task: int = 4
    mem_gb: float = 32.0
    time_min: int = 240                 # a run that needs longer requeues itself and resumes (checkpoint)
    array_parallelism: int = 64         # tasks of one array running at once (submitit-local: processes)
    log_dir: str | None = None          # None: <results>/.jobs/<submission>/
    signal_delay_s: int = 120           # USR2 this long before the time limit: checkpoint and requeue
    max_requeues: int = 10              # time-outs a run may requeue after before it fails
    sbatch: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    setup: tuple[str, ...] = ()

    def validate(self) -> ClusterOptions:
        """Raise ``ConfigError`` naming the first bad value and what is allowed; return self."""
        for name in ("cpus_per_task", "time_min", "array_parallelism"):
            _check(isinstance(getattr(self, name), int) and getattr(self, name) >= 1, name, "an integer >= 1",
                   getattr(self, name))
        for name in ("gpus_per_task", "signal_delay_s", "max_requeues"):
            _check(isinstance(getattr(self, name), int) and getattr(self, name) >= 0, name, "an integer >= 0",
                   getattr(self, name))
        _check(isinstance(self.mem_gb, (int, float)) and self.mem_gb > 0, "mem_gb", "a number > 0", self.mem_gb)
        _check(self.partition is None or (isinstance(self.partition, str) and self.partition), "partition",
               "a partition name", self.partition)
        _check(isinstance(self.sbatch, Mapping), "sbatch", "a mapping of sbatch options", self.sbatch)
        _check(all(isinstance(s, str) for s in self.setup), "setup", "a list of shell lines", self.setup)
        return self

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "sbatch": dict(self.sbatch), "setup": list(self.setup)}


def _check(ok: bool, name: str, allowed: str, value: Any) -> None:
    if not ok:
        raise ConfigError(f"cluster option {name}={value!r}: allowed {allowed}")


FIELDS = {f.name: f for f in dataclasses.fields(ClusterOptions)}


def config_file() -> Path | None:
    """The lab's cluster config file in use (see the module docstring), or None."""
    explicit = os.environ.get(CONFIG_ENV)
    if explicit:
        if not Path(explicit).is_file():
            raise ConfigError(f"{CONFIG_ENV}={explicit!r}: no such file")
        return Path(explicit)
    xdg = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    for candidate in (Path("slurm.yaml"), xdg / "sparsity_lab" / "slurm.yaml"):
        if candidate.is_file():
            return candidate
    return None


def load_options(path: str | os.PathLike[str] | None = None, **overrides: Any) -> ClusterOptions:
    """Defaults, then the config file (``path`` or ``config_file()``), then ``overrides`` that are not None."""
    values: dict[str, Any] = {}
    path = Path(path) if path is not None else config_file()
    if path is not None:
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as err:
            raise ConfigError(f"cluster config {path}: {err}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"cluster config {path}: a YAML mapping of {sorted(FIELDS)} expected")
        values.update(data)
    values.update({k: v for k, v in overrides.items() if v is not None})
    unknown = sorted(set(values) - set(FIELDS))
    if unknown:
        where = f"cluster config {path}" if path is not None else "cluster options"
        raise ConfigError(f"{where}: unknown option(s) {unknown}: allowed {sorted(FIELDS)}")
    if "setup" in values:
        values["setup"] = tuple(values["setup"] or ())
    if isinstance(values.get("log_dir"), str):
        values["log_dir"] = os.path.expandvars(os.path.expanduser(values["log_dir"]))
    return ClusterOptions(**values).validate()
