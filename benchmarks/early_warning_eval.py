"""Fit the PQI early-warning rule on the quick profile, evaluate it unchanged on the gpu profile (docs/methods.md §6).

    python benchmarks/early_warning_eval.py --quick-results results --gpu-results /tmp/gpu-store

``--quick-results``: a store holding the quick profile's runs of notebooks 01-04 and 06 (``make figures``
builds them; default ``$SPARSITY_LAB_RESULTS``). ``--gpu-results``: a store into which the shipped bundle
``docs/gpu-results/gpu-bundle.tar.xz`` was imported (``python -m sparsity_lab bundle import ...``); without
it the bundle is imported into a temporary directory.

Only the runs that the profile's figures 1-4, 6 and 12 plan are read (figure 11's sources), so other runs in
the same store (the smoke profile's, your own) change neither the fit nor the evaluation.

Runs evaluated (the same selection on both profiles, by config): the runs that prune to collapse or near
it, i.e. every One Shot run, every SAP run other than plain SAP(0.5, 1, η_r = 0, γ = 1), and every run of
the (p, q) and η_r/γ ablations (notebooks 03, 04). The other runs (LT, random ticket, SAP(0.5, 1)) are
evaluated too, as a second table, for information.

Fit (quick only): ``flag_rise`` = the smallest value on a 0.05 grid above the largest relative rise of PQI over
its running minimum in any quick run of plain SAP(0.5, 1) at global scope (the papers' method whose PQI
keeps decreasing in quick: its wiggles are the noise the flag must ignore). ``stop_rise`` (0.05 grid from
``flag_rise`` to 3) and ``back`` (0-3): maximise the number of quick collapse-prone runs that satisfy every
claim 11.1-11.3 that applies to them, then the sum of the three rates; among ties the smallest ``back``,
then the middle of the tied ``stop_rise`` values.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from sparsity_lab.claims.early_warning import evaluate_trajectories, summarise_evaluation
from sparsity_lab.figures.early_warning import SOURCES
from sparsity_lab.measures.early_warning import WarningRule, pqi_trajectories
from sparsity_lab.report import pipeline
from sparsity_lab.store import load_results

ROOT = Path(__file__).resolve().parents[1]
BUNDLE = ROOT / "docs" / "gpu-results" / "gpu-bundle.tar.xz"
ABLATIONS = ("03_pq_ablation", "04_eta_gamma_ablation")
GRID_STEP = 0.05


def _configs(records: pd.DataFrame) -> pd.DataFrame:
    cols = ["run_id", "dataset", "model", "method", "config_scope", "config_p", "config_q", "eta_r", "gamma",
            "train_epochs", "seed", "iterations"]
    return records.drop_duplicates("run_id")[cols].set_index("run_id")


def _plain_sap(c: pd.Series) -> bool:
    return (c["method"] == "sap" and math.isclose(c["config_p"], 0.5) and math.isclose(c["config_q"], 1.0)
            and c["eta_r"] == 0 and c["gamma"] == 1)


def collapse_prone(configs: pd.DataFrame, profile: str) -> list[str]:
    """One Shot, SAP other than plain SAP(0.5,1), and the ablation runs of ``profile`` (module docstring)."""
    ablation_ids = {r.run_id for _, _, runs in pipeline.plan(ABLATIONS, profile) for r in runs}
    return [rid for rid, c in configs.iterrows()
            if c["method"] == "oneshot" or (c["method"] == "sap" and not _plain_sap(c)) or rid in ablation_ids]


def label(c: pd.Series) -> str:
    if c["method"] == "sap":
        extra = "" if (c["eta_r"] == 0 and c["gamma"] == 1) else f" eta_r={c['eta_r']:g} gamma={c['gamma']:g}"
        m = f"SAP({c['config_p']:g},{c['config_q']:g}){extra}"
    else:
        m = {"oneshot": "One Shot", "lt": "LT", "random_ticket": "random ticket"}.get(c["method"], c["method"])
    return f"{c['model']} {c['config_scope']} {m} E={c['train_epochs']} seed {c['seed']}"


def _max_rise(pqi: pd.Series) -> float:
    y = pqi.to_numpy(float)
    return float(np.max(y / np.minimum.accumulate(y)) - 1.0)


def fit(trajectories: dict[str, pd.DataFrame], configs: pd.DataFrame, fit_ids: list[str]) -> tuple[WarningRule, float]:
    """The fit of the module docstring; returns the rule and the noise floor behind ``flag_rise``."""
    noise_ids = [rid for rid, c in configs.iterrows() if _plain_sap(c) and c["config_scope"] == "global"]
    if not noise_ids:
        raise SystemExit("no quick SAP(0.5,1) global run: cannot set flag_rise")
    noise = max(_max_rise(trajectories[rid]["pqi"]) for rid in noise_ids)
    flag_rise = round((math.floor(noise / GRID_STEP + 1e-9) + 1) * GRID_STEP, 10)
    fit_traj = {rid: trajectories[rid] for rid in fit_ids}
    scored = []
    for back in range(4):
        for k in range(int(round((3.0 - flag_rise) / GRID_STEP)) + 1):
            stop_rise = round(flag_rise + k * GRID_STEP, 10)
            table = evaluate_trajectories(fit_traj, WarningRule(flag_rise, stop_rise, back))
            all_ok = (table["c11_1"].fillna(True).astype(bool) & table["c11_2"] & table["c11_3"]).sum()
            rates = summarise_evaluation(table)["rate"].fillna(0).sum()
            scored.append((int(all_ok), float(rates), back, stop_rise))
    best = max((s[0], s[1]) for s in scored)
    tied = [s for s in scored if (s[0], s[1]) == best]
    back = min(s[2] for s in tied)
    rises = sorted(s[3] for s in tied if s[2] == back)
    return WarningRule(flag_rise, rises[len(rises) // 2], back), noise


def _load(store: str | Path, profile: str) -> pd.DataFrame:
    """The iterative runs of ``store`` that figure 11's source figures plan at ``profile``; every one must be there."""
    planned = {r.run_id for _, _, runs in pipeline.plan(SOURCES, profile) for r in runs}
    records = load_results(store=str(store), kind="iterative")
    missing = planned - set(records["run_id"])
    if missing:
        raise SystemExit(f"{store}: {len(missing)} of the {profile} profile's {len(planned)} runs are missing "
                         f"(e.g. {sorted(missing)[0]}); run `make figures PROFILE={profile}` first")
    return records[records["run_id"].isin(planned)]


def _gpu_store(given: str | None) -> Path:
    if given:
        return Path(given)
    scratch = Path(tempfile.mkdtemp(prefix="early-warning-gpu-"))
    from sparsity_lab.store import ResultsStore
    from sparsity_lab.store.bundle import import_bundle

    import_bundle(BUNDLE, ResultsStore(scratch))
    return scratch


def _show(title: str, table: pd.DataFrame, configs: pd.DataFrame) -> None:
    shown = table.copy()
    shown.insert(1, "run", [label(configs.loc[r]) for r in shown["run_id"]])
    for col in ("remaining_at_stop", "remaining_sparsest_ok"):
        shown[col] = shown[col].map(lambda v: f"{100 * v:.3g}%")
    for col in ("acc_at_stop", "dense_acc"):
        shown[col] = shown[col].map(lambda v: f"{v:.1f}")
    print(f"\n## {title} ({len(shown)} runs)\n")
    print(shown.drop(columns=["run_id"]).to_string(index=False))


def _summary(title: str, table: pd.DataFrame, configs: pd.DataFrame) -> None:
    summary = summarise_evaluation(table)
    summary["failing_runs"] = summary["failing_runs"].map(
        lambda ids: "; ".join(label(configs.loc[r]) for r in ids.split(", ")) if ids else "")
    summary["rate"] = summary["rate"].map(lambda v: f"{100 * v:.0f}%" if v == v else "n/a")
    print(f"\n{title}:\n" + summary.to_string(index=False))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick-results", default=os.environ.get("SPARSITY_LAB_RESULTS", str(ROOT / "results")))
    parser.add_argument("--gpu-results", default=None)
    args = parser.parse_args(argv)
    pd.set_option("display.width", 250)
    pd.set_option("display.max_colwidth", 200)

    quick = _load(args.quick_results, "quick")
    q_cfg, q_traj = _configs(quick), pqi_trajectories(quick)
    fit_ids = collapse_prone(q_cfg, "quick")
    rule, noise = fit(q_traj, q_cfg, fit_ids)
    print(f"# PQI early warning (docs/methods.md §6)\n\nquick store {args.quick_results}: {len(q_cfg)} iterative runs, "
          f"{len(fit_ids)} collapse-prone used for the fit")
    print(f"noise floor (largest rise of PQI over its running minimum, quick SAP(0.5,1) global): {noise:.3f}")
    print(f"fitted rule: flag_rise={rule.flag_rise:g}, stop_rise={rule.stop_rise:g}, back={rule.back}")
    fit_table = evaluate_trajectories({r: q_traj[r] for r in fit_ids}, rule)
    _show("quick, collapse-prone runs (fit)", fit_table, q_cfg)
    _summary("quick fit", fit_table, q_cfg)

    gpu = _load(_gpu_store(args.gpu_results), "gpu")
    g_cfg, g_traj = _configs(gpu), pqi_trajectories(gpu)
    eval_ids = collapse_prone(g_cfg, "gpu")
    gpu_table = evaluate_trajectories({r: g_traj[r] for r in eval_ids}, rule)
    _show("gpu, collapse-prone runs (evaluation, rule unchanged)", gpu_table, g_cfg)
    _summary("gpu evaluation (claims 11.1-11.3)", gpu_table, g_cfg)
    rest = [r for r in g_cfg.index if r not in eval_ids]
    rest_table = evaluate_trajectories({r: g_traj[r] for r in rest}, rule)
    _show("gpu, other runs (LT, random ticket, SAP(0.5,1); for information)", rest_table, g_cfg)
    _summary("gpu other runs", rest_table, g_cfg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
