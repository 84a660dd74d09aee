"""The cluster path (sparsity_lab/sweep/cluster/) on submitit's local executor: jobs are real subprocesses.

The same sweep file runs with ``--executor local`` (the reference) and ``--executor submitit-local``; a job
interrupted mid-run (SIGUSR2, as SLURM sends before a time limit or on preemption) checkpoints, requeues
and resumes from the store at the last completed pruning iteration; a failed run is resubmitted alone.
The real-SLURM version of these tests is test_cluster_slurm.py.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import pytest
from cluster_helpers import (
    CPU_FLAGS,
    assert_same_records,
    attempts,
    failing_runner,
    interrupt,
    kill_if_alive,
    pausing_runner,
    sweep_file,
    wait_for,
)

from sparsity_lab.cli.main import main
from sparsity_lab.config.configs import ConfigError
from sparsity_lab.config.fields import config_with
from sparsity_lab.store import ResultsStore
from sparsity_lab.sweep.cluster import ClusterOptions, load_options, submit_runs, wait
from sparsity_lab.sweep.cluster.monitor import jobs_table
from sparsity_lab.sweep.runner import load_sweep_file

CPU = ClusterOptions(gpus_per_task=0, cpus_per_task=1, mem_gb=1, time_min=10)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The tiny sweep (one seed) run by today's in-process path: the records every executor must match."""
    root = tmp_path_factory.mktemp("reference")
    path = sweep_file(root, [0])
    assert main(["--results", str(root / "results"), "sweep", str(path), "--executor", "local",
                 "--no-progress"]) == 0
    return path, ResultsStore(root / "results"), load_sweep_file(path)


# ---------------------------------------------------------------- options: defaults, file, flags
def test_options_file_then_flags_override_defaults(tmp_path, monkeypatch):
    config = tmp_path / "lab.yaml"
    config.write_text("partition: gpu\ncpus_per_task: 8\nsbatch: {account: lab}\nsetup: [module load cuda]\n")
    monkeypatch.setenv("SPARSITY_LAB_SLURM_CONFIG", str(config))
    options = load_options(cpus_per_task=2, time_min=None)
    assert (options.partition, options.cpus_per_task, options.time_min) == ("gpu", 2, 240)
    assert options.sbatch == {"account": "lab"} and options.setup == ("module load cuda",)
    monkeypatch.delenv("SPARSITY_LAB_SLURM_CONFIG")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert load_options() == ClusterOptions()
    (tmp_path / "slurm.yaml").write_text("gpus_per_task: 2\n")
    assert load_options().gpus_per_task == 2


@pytest.mark.parametrize("text, message", [("cpus_per_task: 0\n", "cpus_per_task=0: allowed an integer >= 1"),
                                           ("gpus: 1\n", "unknown option(s) ['gpus']"),
                                           ("- 1\n", "a YAML mapping")])
def test_bad_options_name_the_value(tmp_path, text, message):
    config = tmp_path / "slurm.yaml"
    config.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        load_options(config)


def test_cli_rejects_a_bad_flag_in_one_line(tmp_path, capsys):
    path = sweep_file(tmp_path, [0])
    code = main(["--results", str(tmp_path / "r"), "sweep", str(path), "--executor", "submitit-local",
                 "--time-min", "0"])
    err = capsys.readouterr().err
    assert code == 2 and err.strip().count("\n") == 0 and "time_min=0: allowed an integer >= 1" in err


# ---------------------------------------------------------------- end to end on submitit's local executor
def test_same_sweep_file_on_submitit_local_matches_local(reference, tmp_path, capsys):
    path, ref_store, configs = reference
    run_ids = [c.run_id for c in configs]
    results = tmp_path / "results"
    code = main(["--results", str(results), "sweep", str(path), "--executor", "submitit-local", *CPU_FLAGS])
    out = capsys.readouterr().out
    assert code == 0, out
    store = ResultsStore(results)
    assert_same_records(store, ref_store, configs)
    table = jobs_table(results / ".jobs", store)
    assert sorted(table["run_id"]) == sorted(run_ids)
    assert set(table["view"]) == {"done"} and set(table["job_state"]) == {"COMPLETED"}
    assert all(os.path.exists(log) for log in table["log"])
    assert main(["--results", str(results), "jobs"]) == 0
    assert "2 done" in capsys.readouterr().out


def test_job_interrupted_mid_run_requeues_and_resumes(reference, tmp_path):
    _, ref_store, _ = reference
    lt = [c for c in load_sweep_file(reference[0]) if c.method == "lt"]
    markers = tmp_path / "markers"
    markers.mkdir()
    store = ResultsStore(tmp_path / "results")
    runner = functools.partial(pausing_runner, marker_dir=str(markers))
    sub = submit_runs(lt, executor="submitit-local", options=CPU, store=store, runner=runner)
    try:
        wait_for(markers / "paused", 60)
        pid = int((markers / "paused").read_text())
        interrupt(pid)  # submitit's handler: RunTask.checkpoint(), then the job requeues (exit 144, restarted)
        outcomes = wait(sub, poll_s=0.3, timeout_s=90)
    finally:
        sub.cancel()
        kill_if_alive(pid)
    assert [o.status for o in outcomes] == ["done"], outcomes
    assert attempts(markers) == [[], [0]]  # the requeued job found iteration 0 stored and trained only 1
    assert "Requeued job" in open(sub.units[0][0].stdout).read()
    assert_same_records(store, ref_store, lt)


def test_failed_runs_are_reported_then_resubmitted_alone(reference, tmp_path, capsys):
    """Seed 0's job raises, seed 1's is SIGKILLed (no result written): both are failed runs with a reason;
    ``jobs --resubmit-failed`` runs just those two again (with the real runner) and they complete."""
    _, ref_store, _ = reference
    lt0 = [c for c in load_sweep_file(reference[0]) if c.method == "lt"]
    lt = lt0 + [config_with(lt0[0], seed=1)]
    results = tmp_path / "results"
    store = ResultsStore(results)
    sub = submit_runs(lt, executor="submitit-local", options=CPU, store=store, runner=failing_runner)
    outcomes = wait(sub, poll_s=0.3, timeout_s=60)
    assert [o.status for o in outcomes] == ["failed", "failed"]
    assert "injected failure" in outcomes[0].error and "without a result" in outcomes[1].error
    table = jobs_table(results / ".jobs", store).set_index("run_id")
    assert list(table["view"]) == ["failed", "failed"]
    assert "injected failure" in table.loc[lt[0].run_id, "reason"]
    assert "without completing the run" in table.loc[lt[1].run_id, "reason"]
    assert main(["--results", str(results), "jobs", "--resubmit-failed"]) == 0
    out = capsys.readouterr().out
    assert "2 failed" in out and "submitted 2 job(s)" in out
    assert list(jobs_table(results / ".jobs", store)["view"]) == ["done", "done"]
    assert_same_records(store, ref_store, lt0)


# ---------------------------------------------------------------- report --executor forwards to the cluster path
def test_report_executor_submits_what_the_notebooks_need(tmp_path, monkeypatch, capsys):
    """``report --executor slurm`` hands the planned configs of the chosen notebooks to ``submit_runs`` (faked
    here: the real submission is tested above) and then executes the notebooks."""
    import sparsity_lab.report.batch as report
    import sparsity_lab.sweep.cluster.prefetch as prefetch
    from sparsity_lab.report.pipeline import plan

    calls = {}

    class Handle:
        units, path = [], "jobs.json"

    def fake_submit(configs, *, executor, options):
        calls.update(configs=configs, executor=executor, options=options)
        return Handle()

    monkeypatch.setenv("SPARSITY_LAB_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("SPARSITY_LAB_SLURM_CONFIG", str(tmp_path / "slurm.yaml"))
    (tmp_path / "slurm.yaml").write_text("partition: gpu\n")
    monkeypatch.setattr(prefetch, "submit_runs", fake_submit)
    monkeypatch.setattr(prefetch, "wait", lambda handle: [])
    monkeypatch.setattr(report, "_run_all", lambda chosen, *a: calls.setdefault("executed", chosen) and [])
    notebooks = Path(__file__).resolve().parents[1] / "notebooks"
    assert report.main(["--profile", "smoke", "--notebooks", "08", "--executor", "slurm", "--out",
                        str(tmp_path / "reports"), "--notebooks-dir", str(notebooks)]) == 0
    (nb,) = calls["executed"]
    assert calls["executor"] == "slurm" and calls["options"].partition == "gpu"
    planned = [run.config.run_id for _, _, runs in plan([nb.stem], "smoke") for run in runs]
    assert [c.run_id for c in calls["configs"]] == planned
    assert "prefetch: " in capsys.readouterr().out
