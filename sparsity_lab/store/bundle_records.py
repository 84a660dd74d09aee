"""The records of a version-2 bundle: every shipped row of every run in one parquet table.

Version 1 carried each step's ``records.parquet`` as it is in the store: 3,317 small files, each with
its own schema, footer and sha256 in bundle.json, and most of the rows were (p, q)-grid PQI that no
figure reads. Version 2 packs the rows the bundle ships (store/record_groups.py) into one table
``records.parquet`` with two leading columns ``run`` and ``step``, in store order (run id, step, row),
so import cuts it back into the very steps it came from without a row index:

- string columns (run, stage, metric, scope, group) and the few-valued ones (step, iteration, p, q)
  are dictionary-encoded; values stay float64, written plain: values are exact, never rounded;
- parquet compression is off inside a compressed archive (xz/gzip/bzip2 then see the plain bytes, which
  they compress better than zstd's output) and zstd in a plain ``.tar``;
- columns a step lacks (e.g. the histogram bins of an ASNI ``final`` step) are null there; bundle.json
  lists per run the columns of every step whose columns differ from the run's first step, so import
  gives each step back exactly its columns (with their Arrow types, so dtypes are those of the store).

bundle.json holds per run ``steps`` (rows shipped per step), ``first_columns`` (step 0's), ``columns``
and ``dropped_records`` (rows left out per record group); import checks the row counts, so a table that lost or gained rows for a run
is refused even though its checksum (of the whole member) matched.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from sparsity_lab.store import codec, manifest
from sparsity_lab.store.errors import StoreError
from sparsity_lab.store.imported import read_imported
from sparsity_lab.store.record_groups import CORE, row_groups
from sparsity_lab.store.results import ResultsStore

RECORDS_MEMBER = "records.parquet"
_KEYS = ("run", "step")
_DICTIONARY = ("run", "step", "iteration", "stage", "metric", "scope", "group", "p", "q")


def _step_table(store: ResultsStore, run_id: str, step: int, config: Any,
                groups: Iterable[str] | None) -> tuple[pa.Table, dict[str, int]]:
    """One step's records as an Arrow table (its stored schema), the rows left out counted per group."""
    table = pq.read_table(pa.BufferReader(store._verified_bytes(run_id, manifest.step_rel(step, manifest.RECORDS_FILE))),
                          use_threads=False, pre_buffer=False)
    if groups is None:
        return table, {}
    found = row_groups(table.select(["metric", "scope", "p", "q"]).to_pandas(), config)
    keep = np.isin(found, [CORE, *groups])
    dropped: dict[str, int] = {}
    for name in found[~keep]:
        dropped[name] = dropped.get(name, 0) + 1
    return (table if keep.all() else table.filter(pa.array(keep))), dropped


def pack(store: ResultsStore, run_ids: Iterable[str], keep: Mapping[str, Iterable[str]] | None,
         compressed: bool) -> tuple[bytes, dict[str, dict[str, Any]]]:
    """(parquet bytes, ``{run_id: {"steps", "columns", "dropped_records"}}``) of every verified step of
    ``run_ids``; ``keep``: run id -> record groups shipped besides ``core`` (None: every row; a run
    missing from it: ``core`` only); ``compressed``: whether the archive compresses the member."""
    from sparsity_lab.config.configs import config_from_dict

    tables, meta = [], {}
    for rid in run_ids:
        steps = store.completed_steps(rid)
        config = config_from_dict(store.run_info(rid)["config"])
        groups = None if keep is None else tuple(keep.get(rid, ()))
        rows, columns, dropped = [], {}, {}
        first: list[str] | None = None
        for step in steps:
            table, left_out = _step_table(store, rid, step, config, groups)
            for name, n in left_out.items():
                dropped[name] = dropped.get(name, 0) + n
            first = table.column_names if first is None else first
            if table.column_names != first:
                columns[str(step)] = table.column_names
            rows.append(table.num_rows)
            n = table.num_rows
            tables.append(table.add_column(0, "run", pa.array([rid] * n, pa.string()))
                          .add_column(1, "step", pa.array([step] * n, pa.int32())))
        earlier = (read_imported(store.run_dir(rid)) or {}).get("dropped_records", {})  # a re-export
        for name, n in earlier.items():
            dropped[name] = dropped.get(name, 0) + int(n)
        meta[rid] = {"steps": rows, "first_columns": first or [], "columns": columns,
                     "dropped_records": dict(sorted(dropped.items()))}
    if not tables:
        raise StoreError("no records to export")
    try:
        table = pa.concat_tables(tables, promote_options="default").replace_schema_metadata(None)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as err:
        raise StoreError(f"the runs' records have clashing column types ({err}); export them in separate bundles") from None
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="none" if compressed else "zstd",
                   use_dictionary=[c for c in _DICTIONARY if c in table.column_names], write_statistics=False)
    return buf.getvalue(), meta


def unpack(data: bytes, runs: Mapping[str, Mapping[str, Any]], bundle_name: str) -> dict[str, list[bytes]]:
    """``{run_id: [records.parquet bytes of step 0, 1, ...]}`` cut from the bundle's table, each step with
    its own columns; ``StoreError`` (one line) when the table does not hold exactly the rows bundle.json
    lists."""
    try:
        table = pq.read_table(pa.BufferReader(data), use_threads=False, pre_buffer=False)
        keys = table.select(list(_KEYS)).to_pandas()
    except (pa.ArrowException, OSError, KeyError) as err:
        raise StoreError(f"bundle {bundle_name}: {RECORDS_MEMBER} is not a readable records table "
                         f"({type(err).__name__}); nothing imported") from None
    try:
        expected = [(rid, step, int(n)) for rid, run in sorted(runs.items()) for step, n in enumerate(run["steps"])]
        if not all(isinstance(run["columns"], dict) and isinstance(run["first_columns"], list) for run in runs.values()):
            raise TypeError("columns")
    except (KeyError, TypeError, ValueError, AttributeError):
        raise StoreError(f"bundle {bundle_name}: bundle.json lacks the per-run 'steps', 'first_columns' and "
                         "'columns' of a version-2 bundle; nothing imported") from None
    found = keys.groupby(["run", "step"], sort=False).size()
    if (len(found) != len([e for e in expected if e[2]]) or int(found.sum()) != sum(e[2] for e in expected)
            or any(found.get((rid, step), 0) != n for rid, step, n in expected)):
        raise StoreError(f"bundle {bundle_name}: {RECORDS_MEMBER} does not hold the rows bundle.json lists "
                         "for each run and step; nothing imported")
    out: dict[str, list[bytes]] = {}
    offset = 0
    for rid, step, n in expected:  # store order: the table is sorted by (run, step) as pack wrote it
        if n and (keys["run"].iat[offset] != rid or keys["step"].iat[offset] != step):
            raise StoreError(f"bundle {bundle_name}: {RECORDS_MEMBER} rows are out of order at run {rid} step "
                             f"{step}; nothing imported")
        run = runs[rid]
        columns = run["columns"].get(str(step), run["first_columns"])
        part = table.slice(offset, n).select(columns)
        out.setdefault(rid, []).append(codec.table_to_bytes(part))
        offset += n
    return out
