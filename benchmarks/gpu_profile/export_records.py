"""Pack what the figures need from a (GPU) store into one tar: every complete run's config, records,
COMPLETE marker, and the `final` artifact of ASNI runs and of MNIST LeNet tickets (figure 9); Lottery
Ticket runs keep their steps' masks too, which a random-ticket control of the same config reads.

Runs imported from a bundle (``train_issue19.py --restore``) are left out: that bundle already holds
them, and a re-export would lose the list of files it dropped.

    python benchmarks/gpu_profile/export_records.py OUT.tar.gz [--results DIR]

A stop-gap transport for the first `gpu` run; `sparsity-lab bundle export` is the product's way.
"""

from __future__ import annotations

import argparse
import json
import tarfile
from pathlib import Path

from sparsity_lab.store import ResultsStore


def keep(rel: str, config: dict) -> bool:
    """``config``: the run's config.json document (the config itself is under its "config" key)."""
    if rel in ("config.json", "COMPLETE", "manifest.json") or rel.endswith("records.parquet"):
        return True
    fields = config.get("config", {})
    if fields.get("method") == "lt" and rel.startswith("steps/") and rel.endswith("tensors.safetensors"):
        return True
    final = rel == "artifacts/final.safetensors"
    return final and (fields.get("kind") == "asni" or fields.get("model") == "lenet300_100")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("out")
    ap.add_argument("--results", default=None)
    args = ap.parse_args()
    store = ResultsStore(args.results)
    n = skipped = 0
    with tarfile.open(args.out, "w:gz") as tar:
        for run_id in store.run_ids():
            run_dir = store.run_dir(run_id)
            if not store.is_complete(run_id):
                continue
            if (run_dir / "imported.json").exists():
                skipped += 1
                continue
            config = json.loads((run_dir / "config.json").read_text())
            for path in sorted(p for p in run_dir.rglob("*") if p.is_file()):
                rel = path.relative_to(run_dir).as_posix()
                if keep(rel, config):
                    tar.add(path, arcname=f"{run_id}/{rel}")
            n += 1
    print(f"exported {n} complete runs to {args.out} ({Path(args.out).stat().st_size / 2**20:.1f} MiB); "
          f"{skipped} imported runs left out")


if __name__ == "__main__":
    main()
