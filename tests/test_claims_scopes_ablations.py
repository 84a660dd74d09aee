"""Claims 2.x (scopes), 3.x ((p, q) ablation) and 4.x (eta_r, gamma ablation) on synthetic records."""

from __future__ import annotations

import pandas as pd
from claims_records import iterative_run

from sparsity_lab.claims import _ablation as ablation
from sparsity_lab.claims import eta_gamma_ablation, pq_ablation
from sparsity_lab.claims import pruning_scopes as scopes

T = 10
SAP_REM = [0.7 ** t for t in range(T + 1)]
LT_REM = [0.8 ** t for t in range(T + 1)]


def _acc(rem, slope):
    """Accuracy (pt) falling linearly in log remaining: 90 + slope * ln(rem)."""
    import math
    return [90 + slope * math.log(r) for r in rem]


def scope_records(sap_slope=1.0, other_slope=3.0, layers=(0.05, 0.2), scopes_run=("neuron", "layer", "global")):
    parts = []
    for scope in scopes_run:
        sap_layers = {"fc1.weight": [1.0] * T + [layers[0]], "fc2.weight": [1.0] * T + [layers[1]]}
        parts.append(iterative_run(_acc(SAP_REM, sap_slope), remaining=SAP_REM, layers=sap_layers, method="sap",
                                   scope=scope))
        for method in ("lt", "oneshot"):
            parts.append(iterative_run(_acc(LT_REM, other_slope), remaining=LT_REM, method=method, scope=scope))
    return pd.concat(parts, ignore_index=True)


def test_scopes_hold_fail_untestable():
    v = {x.claim: x for x in scopes.check(scope_records())}
    assert [v["2.1"].status, v["2.2"].status] == ["holds", "holds"], v
    v = {x.claim: x for x in scopes.check(scope_records(sap_slope=3.0, other_slope=1.0, layers=(0.1, 0.15)))}
    assert [v["2.1"].status, v["2.2"].status] == ["fails", "fails"]
    assert "neuron: SAP - LT min" in v["2.1"].reason and "1.50x" in v["2.2"].reason
    v = {x.claim: x for x in scopes.check(scope_records(scopes_run=("global",)))}
    assert v["2.1"].status == "untestable" and "SAP(0.5,1) not in these runs" in v["2.1"].reason
    assert v["2.2"].status == "untestable"


def test_scope_gap_is_interpolated_in_log_remaining():
    # SAP a constant 0.45 pt below LT holds (threshold -0.5 pt); 0.6 below fails.
    for shift, status in ((-0.45, "holds"), (-0.6, "fails")):
        parts = [iterative_run([a + shift for a in _acc(SAP_REM, 2.0)], remaining=SAP_REM, method="sap", scope=s,
                               layers={"a": [1.0] * (T + 1), "b": [0.1] * (T + 1)}) for s in ("neuron", "layer")]
        parts += [iterative_run(_acc(LT_REM, 2.0), remaining=LT_REM, method=m, scope=s)
                  for s in ("neuron", "layer") for m in ("lt", "oneshot")]
        verdict = scopes.check(pd.concat(parts))[0]
        assert verdict.status == status, verdict.reason


def ablation_records(p_pruned, q_pruned, phases_pqi=None, acc=None):
    parts = []
    for p, first in p_pruned.items():
        rem = [1.0] + [(1 - first) * 0.9 ** t for t in range(T)]
        parts.append(iterative_run(acc or [90] * (T + 1), remaining=rem, pqi=phases_pqi, method="sap", p=p, q=1.0))
    for q, first in q_pruned.items():
        rem = [1.0] + [(1 - first) * 0.9 ** t for t in range(T)]
        parts.append(iterative_run(acc or [90] * (T + 1), remaining=rem, pqi=phases_pqi, method="sap", p=1.0, q=q))
    return pd.concat(parts, ignore_index=True)


PHASES = [0.20, 0.15, 0.12, 0.14, 0.20, 0.30, 0.40, 0.25, 0.15, 0.12, 0.10]
COLLAPSE = [90, 90, 90, 89, 88, 87, 80, 50, 30, 15, 12]


def test_pq_ablation_hold_fail_untestable():
    good = ablation_records({0.2: 0.1, 0.5: 0.3, 0.8: 0.5}, {1.2: 0.2, 2.0: 0.6}, PHASES, COLLAPSE)
    v = {x.claim: x for x in pq_ablation.check(good)}
    assert [x.status for x in v.values()] == ["holds"] * 3, [x.reason for x in v.values()]
    assert "0.5: 30%" in v["3.1"].reason
    bad = ablation_records({0.2: 0.1, 0.5: 0.3, 0.8: 0.3}, {1.2: 0.6, 2.0: 0.2}, [0.2] * (T + 1))
    v = {x.claim: x for x in pq_ablation.check(bad)}
    assert [x.status for x in v.values()] == ["fails"] * 3
    one = ablation_records({0.5: 0.3}, {}, PHASES[:3], [90, 90, 90])
    v = {x.claim: x for x in pq_ablation.check(one)}
    assert [x.status for x in v.values()] == ["untestable"] * 3
    assert "only p = 0.5 with q = 1" in v["3.1"].reason and "no SAP runs with p = 1" in v["3.2"].reason


def test_fraction_pruned_falls_back_to_retrained_remaining():
    frame = iterative_run([90, 90], remaining=[1.0, 0.6], pruned=False, method="sap")
    assert abs(ablation.fraction_pruned_first(frame) - 0.4) < 1e-12


def eta_gamma_records(eta_rem, gamma_rem):
    parts = [iterative_run([90] * (T + 1), remaining=[1.0] * T + [r], method="sap", eta_r=e, gamma=1.0)
             for e, r in eta_rem.items()]
    parts += [iterative_run([90] * (T + 1), remaining=[1.0] * T + [r], method="sap", eta_r=0.0, gamma=g)
              for g, r in gamma_rem.items() if g != 1.0]
    return pd.concat(parts, ignore_index=True)


def test_eta_gamma_hold_fail_untestable():
    v = eta_gamma_ablation.check(eta_gamma_records({0.0: 0.3, 0.1: 0.3, 1.0: 0.1}, {3.0: 0.2, 9.0: 0.05}))
    assert [x.status for x in v] == ["holds", "holds"], [x.reason for x in v]
    v = eta_gamma_ablation.check(eta_gamma_records({0.0: 0.3, 0.1: 0.2, 1.0: 0.25}, {3.0: 0.3, 9.0: 0.3}))
    assert [x.status for x in v] == ["fails", "fails"]  # a rise; equal ends (not strictly smaller)
    v = eta_gamma_ablation.check(eta_gamma_records({0.0: 0.3}, {}))
    assert [x.status for x in v] == ["untestable", "untestable"] and "only eta_r = 0" in v[0].reason


FOUR = ({"method": "sap", "p": 0.5, "q": 1.0}, {"method": "sap", "p": 1.0, "q": 2.0}, {"method": "lt"},
        {"method": "oneshot"})


def global_records(global_acc=None, global_rem=None):
    """The four methods at the three scopes, every scope the same curve unless the global one is given."""
    parts = []
    for fields in FOUR:
        for scope in ("neuron", "layer", "global"):
            acc, rem = _acc(LT_REM, 1.0), LT_REM
            if scope == "global" and fields == FOUR[1]:
                acc, rem = global_acc or acc, global_rem or rem
            parts.append(iterative_run(acc, remaining=rem, scope=scope, **fields))
    return pd.concat(parts, ignore_index=True)


def test_global_scope_best_holds_fails_untestable():
    v = {x.claim: x for x in scopes.check(global_records())}["2.3"]
    assert v.status == "holds" and v.numbers["LT global-layer min acc gap"] == 0.0, v.reason
    # SAP(1,2) global collapses at t = 8 (the gpu profile's finding): fails, the reason says where and by how much
    collapse = _acc(LT_REM, 1.0)[:8] + [10.0] * 3
    v = {x.claim: x for x in scopes.check(global_records(global_acc=collapse))}["2.3"]
    assert v.status == "fails"
    assert v.reason.startswith("SAP(1,2), global vs neuron: global is 78.2 pt less accurate at t=8 (10.0 vs 88.2")
    # 0.4 pt below at equal remaining holds (threshold 0.5 pt); keeping 2x the weights fails
    v = {x.claim: x for x in scopes.check(global_records(global_acc=[a - 0.4 for a in _acc(LT_REM, 1.0)]))}["2.3"]
    assert v.status == "holds", v.reason
    v = {x.claim: x for x in scopes.check(global_records(global_rem=[1.0] + [2 * r for r in LT_REM[1:]]))}["2.3"]
    assert v.status == "fails" and "global keeps 2x the weights" in v.reason
    no_neuron = global_records()
    v = {x.claim: x for x in scopes.check(no_neuron[no_neuron["config_scope"] != "neuron"])}["2.3"]
    assert v.status == "untestable" and "not in these runs" in v.reason
