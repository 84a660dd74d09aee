"""Turn the device's raw export (export_records.py: run directories holding config.json, COMPLETE,
manifest.json, every step's records and some `final` artifacts) into a results bundle that
`sparsity-lab bundle import` verifies and imports like any other.

    python benchmarks/gpu_profile/raw_to_bundle.py RAW.tar.gz OUT.tar.xz [--code-version SHA]

Each file that came back is listed with the sha256 and size its run's manifest.json recorded on the
device (a file that does not match is refused); files the raw export left out (step masks, `init`,
most `final`s) are listed as dropped, exactly as `bundle export --tensors figures` would.

It writes the version-1 layout (each step's records.parquet a member), which `bundle import` still reads;
to ship the compact version 2 (only the records the figures read), import OUT into an empty store and
`sparsity-lab bundle export NEW.tar.xz --profile gpu --note ...` from it (docs/gpu-results/README.md).
"""

from __future__ import annotations

import argparse
import io
import json
import tarfile
from collections import defaultdict
from pathlib import Path

from sparsity_lab.store import atomic
from sparsity_lab.store.bundle import BUNDLE_JSON, FORMAT, write_mode
from sparsity_lab.store.meta import utc_now


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("raw")
    ap.add_argument("out")
    ap.add_argument("--code-version", default=None, help="git sha of the code that trained the runs")
    args = ap.parse_args()
    members: dict[str, dict[str, bytes]] = defaultdict(dict)
    with tarfile.open(args.raw, "r:*") as tar:
        for m in tar:
            if m.isfile():
                rid, rel = m.name.split("/", 1)
                members[rid][rel] = tar.extractfile(m).read()  # type: ignore[union-attr]
    runs, payload = {}, []
    for rid, files in sorted(members.items()):
        listed = json.loads(files.pop("manifest.json"))["files"]
        config = json.loads(files["config.json"])
        carried = {}
        for rel, data in sorted(files.items()):
            entry = listed.get(rel)
            if entry is None or entry["size"] != len(data) or entry["sha256"] != atomic.sha256_bytes(data):
                raise SystemExit(f"{rid}/{rel} does not match the run's manifest.json: refusing it")
            carried[rel] = {"sha256": entry["sha256"], "size": entry["size"]}
            payload.append((f"runs/{rid}/{rel}", data))
        runs[rid] = {"kind": config["config"]["kind"], "canonical": config.get("canonical"),
                     "code_version": config.get("code_version"), "files": carried,
                     "dropped": sorted(set(listed) - set(carried))}
    code = args.code_version or next(iter(runs.values()))["code_version"]
    doc = {"format": FORMAT, "version": 1, "created": utc_now(), "code_version": code,
           "tensors": "figures (device export)", "runs": runs}
    out = Path(args.out)
    with tarfile.open(out, write_mode(out)) as tar:
        for name, data in [(BUNDLE_JSON, atomic.json_bytes(doc)), *payload]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    print(f"{out}: {len(runs)} runs, {out.stat().st_size / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
