"""Which runs a results bundle holds and which of their files it carries (store/bundle.py).

Runs: the complete runs named by id (or unique prefix) or matching config filters (``dataset``,
``model``, ``kind``, ``method``, ``variant``), plus the parents their figures and runners read (the
asni1 run of an ASNI variant, the parent of a random_ticket / random_reinit control).

Files: always ``config.json``, ``COMPLETE`` and every step's ``records.parquet``; tensors by policy:

- ``figures`` (default): the ``final`` artifact where a figure reads it: every ASNI run (figures 9
  and 10) and the SAP / LT iterative runs on an exported ASNI run's dataset and model (figure 9's
  ticket panel);
- ``final``: the ``final`` artifact of every run that has one;
- ``none``: records only;
- ``all``: every file of the run (the runs can then be resumed or extended like local ones).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from sparsity_lab.store import manifest
from sparsity_lab.store.errors import StoreError
from sparsity_lab.store.imported import IMPORTED_FILE, read_imported
from sparsity_lab.store.results import ResultsStore

log = logging.getLogger("sparsity_lab.store")

TENSOR_POLICIES = ("figures", "final", "none", "all")
FILTER_FIELDS = ("dataset", "model", "kind", "method", "variant")
FINAL = "artifacts/final.safetensors"


def _resolve(store: ResultsStore, wanted: str, ids: list[str]) -> str:
    if wanted in ids:
        return wanted
    matches = [rid for rid in ids if rid.startswith(wanted)]
    if len(matches) != 1:
        raise StoreError(f"run id {wanted!r}: {len(matches)} runs in {store.root} match (allowed: a stored run id "
                         "or a prefix matching exactly one)")
    return matches[0]


def _parents(info: Mapping[str, Any]) -> list[str]:
    """Run ids a run's runner reads besides its own (``ExperimentConfig.dependencies``)."""
    from sparsity_lab.config.configs import config_from_dict

    try:
        cfg = config_from_dict(info["config"])
    except Exception as err:  # noqa: BLE001 - an unreadable config has no known parents
        log.debug("no parents for %s (%s)", info.get("run_id"), err)
        return []
    return [parent.run_id for parent in cfg.dependencies()]


def select_runs(store: ResultsStore, run_ids: Iterable[str] = (), everything: bool = False,
                **filters: Iterable[str] | None) -> list[str]:
    """Complete run ids to export (sorted), parents included; ``StoreError`` when none matches."""
    unknown = sorted(set(filters) - set(FILTER_FIELDS))
    if unknown:
        raise StoreError(f"unknown filter(s) {unknown}; allowed: {list(FILTER_FIELDS)}")
    ids = store.run_ids()
    named = [_resolve(store, r, ids) for r in run_ids]
    for rid in named:
        if not store.is_complete(rid):
            raise StoreError(f"run {rid} is {store.status(rid)}; only complete runs can be exported")
    wanted = {k: set(v) for k, v in filters.items() if v}
    chosen = set(named)
    if everything or wanted:
        for rid in ids:
            info = store.run_info(rid)
            fields = {**info.get("config", {}), "kind": info.get("kind")}
            if store.is_complete(rid) and all(str(fields.get(k)) in v for k, v in wanted.items()):
                chosen.add(rid)
    if not chosen:
        shown = ", ".join(f"{k}={sorted(v)}" for k, v in wanted.items()) or "(none)"
        raise StoreError(f"no complete run in {store.root} matches the runs/filters given: {shown}")
    for rid in sorted(chosen):
        for parent in _parents(store.run_info(rid)):
            if parent in ids and store.is_complete(parent):
                chosen.add(parent)
            else:
                log.warning("run %s: its parent run %s is not complete in %s; exporting it without", rid, parent,
                            store.root)
    return sorted(chosen)


def _ticket_keys(infos: Mapping[str, Mapping[str, Any]]) -> set[tuple[Any, Any]]:
    return {(i["config"].get("dataset"), i["config"].get("model")) for i in infos.values() if i.get("kind") == "asni"}


def carried_files(store: ResultsStore, run_ids: list[str], policy: str, finals: Iterable[str] | None = None
                  ) -> dict[str, dict[str, dict[str, Any]]]:
    """``{run_id: {relative path: manifest entry}}`` of the files the bundle carries under ``policy``;
    ``finals`` (policy ``figures`` only): exactly the runs whose ``final`` the figures read, as the figure
    registry declares them (``bundle export --profile``), instead of the rule of thumb above."""
    if policy not in TENSOR_POLICIES:
        raise StoreError(f"tensors {policy!r}: allowed {list(TENSOR_POLICIES)}")
    infos = {rid: store.run_info(rid) for rid in run_ids}
    tickets = _ticket_keys(infos)
    declared = None if finals is None else set(finals)
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for rid, info in infos.items():
        files = {rel: e for rel, e in manifest.read_manifest(store.run_dir(rid)).items() if rel != IMPORTED_FILE}
        cfg = info.get("config", {})
        wants_final = (policy == "final" or (policy == "figures" and (
            rid in declared if declared is not None else
            info.get("kind") == "asni" or (cfg.get("method") in ("sap", "lt")
                                           and (cfg.get("dataset"), cfg.get("model")) in tickets))))
        out[rid] = {rel: e for rel, e in files.items()
                    if policy == "all" or not rel.endswith(".safetensors") or (rel == FINAL and wants_final)}
    return out


def dropped_files(store: ResultsStore, run_id: str, carried: Iterable[str]) -> list[str]:
    """The run's files (including those an earlier import already lacked) that the bundle leaves out."""
    files = set(manifest.read_manifest(store.run_dir(run_id))) - {IMPORTED_FILE}
    earlier = set((read_imported(store.run_dir(run_id)) or {}).get("dropped", ()))
    return sorted((files | earlier) - set(carried))
