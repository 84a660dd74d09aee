"""The cluster path against a real SLURM (tools/slurm/start_local_slurm.sh starts a single-node one as root).

The tiny sweep of test_cluster.py with two seeds (two waves of two runs: LT, then its random tickets, one
job array each, the second depending on the first) runs through ``sweep --executor slurm``; then one job is
signalled mid-run like a preempted job (``scancel --signal=USR2``), requeues itself through submitit's
checkpointing and resumes from the store. Without a reachable SLURM every test here is skipped, saying why.
"""

from __future__ import annotations

import functools
import shutil
import subprocess

import pytest
from cluster_helpers import (
    CPU_FLAGS,
    assert_same_records,
    attempts,
    kill_if_alive,
    pausing_runner,
    sweep_file,
    wait_for,
)

from sparsity_lab.cli.main import main
from sparsity_lab.store import ResultsStore
from sparsity_lab.sweep.cluster import ClusterOptions, submit_runs, wait
from sparsity_lab.sweep.cluster.jobs_file import load_records
from sparsity_lab.sweep.cluster.monitor import jobs_table
from sparsity_lab.sweep.runner import load_sweep_file

pytestmark = pytest.mark.slurm
CPU = ClusterOptions(gpus_per_task=0, cpus_per_task=1, mem_gb=1, time_min=10)


def _sh(*cmd: str) -> str:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.strip()


def slurm_unavailable() -> str | None:
    """Why SLURM cannot run jobs here, or None."""
    if shutil.which("sbatch") is None or shutil.which("scontrol") is None:
        return "SLURM not installed (no sbatch/scontrol); as root run tools/slurm/start_local_slurm.sh"
    try:
        ping = _sh("scontrol", "ping")
        if "UP" not in ping:  # asked first: sinfo waits ~30 s for a controller that is down
            first = ping.splitlines()[0] if ping else "no answer"
            return f"slurmctld not reachable (scontrol ping: {first}); run tools/slurm/start_local_slurm.sh"
        states = set(_sh("sinfo", "-h", "-o", "%T").split())
    except (OSError, subprocess.SubprocessError) as err:
        return f"SLURM not answering: {err}"
    if not states & {"idle", "mixed", "allocated"}:
        return f"no SLURM node can run jobs (sinfo states: {sorted(states) or 'none'})"
    return None


@pytest.fixture(scope="module")
def slurm_reference(tmp_path_factory):
    reason = slurm_unavailable()
    if reason:
        pytest.skip(reason)
    print(f"\n{_sh('sinfo', '--version')}; {_sh('sinfo')}")
    root = tmp_path_factory.mktemp("slurm_reference")
    path = sweep_file(root, [0, 1])
    assert main(["--results", str(root / "results"), "sweep", str(path), "--no-progress"]) == 0
    return path, ResultsStore(root / "results"), load_sweep_file(path)


def test_sweep_file_through_slurm_arrays(slurm_reference, tmp_path, capsys):
    path, reference, configs = slurm_reference
    results = tmp_path / "results"
    code = main(["--results", str(results), "sweep", str(path), "--executor", "slurm", *CPU_FLAGS])
    out = capsys.readouterr().out
    assert code == 0, out
    store = ResultsStore(results)
    assert_same_records(store, reference, configs)
    (record,) = load_records(results / ".jobs")
    waves = {w: [j for j in record.jobs if j.wave == w] for w in (0, 1)}
    assert [len(w) for w in waves.values()] == [2, 2]
    arrays = [{j.job_id.split("_")[0] for j in w} for w in waves.values()]
    assert all(len(a) == 1 for a in arrays), arrays  # one job array per wave
    assert sorted(j.job_id.split("_")[1] for j in waves[0]) == ["0", "1"]
    assert all(j.depends_on == sorted(arrays[0]) for j in waves[1])  # controls wait for their parents' array
    table = jobs_table(results / ".jobs", store)
    assert set(table["view"]) == {"done"} and set(table["job_state"]) == {"COMPLETED"}, table
    with capsys.disabled():
        print(f"\nslurm sweep: arrays {arrays}\n{table[['run_id', 'job_id', 'job_state', 'view']].to_string()}")


def test_slurm_job_signalled_mid_run_requeues_and_resumes(slurm_reference, tmp_path, capsys):
    _, reference, configs = slurm_reference
    lt = [c for c in configs if c.method == "lt" and c.seed == 0]
    markers = tmp_path / "markers"
    markers.mkdir()
    store = ResultsStore(tmp_path / "results")
    runner = functools.partial(pausing_runner, marker_dir=str(markers))
    sub = submit_runs(lt, executor="slurm", options=CPU, store=store, runner=runner)
    job_id = sub.units[0][0].job_id
    pid = None
    try:
        wait_for(markers / "paused", 90)
        pid = int((markers / "paused").read_text())
        # What SLURM does before a time limit / on preemption (submitit asks for --signal=USR2@...).
        subprocess.run(["scancel", "--signal=USR2", job_id], check=True, timeout=30)
        outcomes = wait(sub, poll_s=1.0, timeout_s=150)
    finally:
        sub.cancel()
        if pid is not None:
            kill_if_alive(pid)
    assert [o.status for o in outcomes] == ["done"], outcomes
    assert attempts(markers) == [[], [0]]  # the requeued job found iteration 0 stored and trained only 1
    assert "Requeued job" in open(sub.units[0][0].stdout).read()
    restarts = _sh("scontrol", "show", "job", job_id)
    assert "Restarts=1" in restarts, restarts
    assert_same_records(store, reference, lt)
    with capsys.disabled():
        print(f"\nslurm requeue: job {job_id} " + " ".join(w for w in restarts.split() if w.startswith(
            ("JobState=", "Restarts=", "RunTime="))))


def test_a_refused_submission_is_one_line(slurm_reference, tmp_path, capsys):
    path, _, _ = slurm_reference
    code = main(["--results", str(tmp_path / "r"), "sweep", str(path), "--executor", "slurm", *CPU_FLAGS,
                 "--partition", "no_such_partition"])
    err = capsys.readouterr().err.strip()  # sbatch's own lines, then ours
    last = err.splitlines()[-1]
    assert code == 2 and "Traceback" not in err and last.startswith("sparsity-lab sweep: error:"), err
    assert "no_such_partition" in last and "partitions here: lab" in last, last
