"""Longer kill-and-resume soak than tests/test_resume_soak.py (issue 9 §2): many SIGKILLs at random points.

Runs each config once uninterrupted and once SIGKILLed ``--kills`` times (half of the kills a random delay
after a random number of stored steps, half a random time after the child starts, so kills land in start-up,
training, step writes and artifact writes), then
checks that both stores hold equal records, row order included (``store.comparable`` drops wall time).

    PYTHONPATH=$PWD .venv/bin/python benchmarks/resume_soak.py --kills 20 --seed 1

Exit status 0 when every config matched; one line per config either way.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_resume_soak import soak  # noqa: E402  (the soak driver lives with its test)

from sparsity_lab import experiments  # noqa: E402
from sparsity_lab.config.configs import AsniConfig, IterativeConfig  # noqa: E402
from sparsity_lab.engine.trainer import TrainSettings  # noqa: E402
from sparsity_lab.store import ResultsStore, comparable  # noqa: E402

ADAM = TrainSettings(optimizer="adam", lr=1e-3, nesterov=False, weight_decay=0.0, epochs=12, batch_size=128,
                     lr_schedule="constant", grad_clip=None)
CONFIGS = {
    "sap-global": (IterativeConfig(dataset="digits", model="mlp", method="sap", iterations=8, pq_grid=False,
                                   train=TrainSettings(epochs=2, batch_size=128)), 9),
    "lt-neuron-rewind": (IterativeConfig(dataset="digits", model="mlp", method="lt", scope="neuron", iterations=6,
                                         rewind_epoch=1, train=TrainSettings(epochs=2, batch_size=128)), 7),
    "oneshot-layer": (IterativeConfig(dataset="digits", model="mlp", method="oneshot", scope="layer",
                                      iterations=6, pq_grid=False, train=TrainSettings(epochs=2, batch_size=128)), 7),
    "asni1": (AsniConfig(dataset="digits", model="mlp", s_max=90.0, kappa=1.0, variant="asni1", train=ADAM), 13),
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=10, help="kills per config (default 10)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the random kill points")
    ap.add_argument("--configs", nargs="*", default=list(CONFIGS), choices=list(CONFIGS))
    args = ap.parse_args()
    rnd, failed = random.Random(args.seed), 0
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.configs:
            cfg, steps = CONFIGS[name]
            began = time.perf_counter()
            clean = comparable(experiments.run(cfg, store=ResultsStore(Path(tmp, name, "clean")), device="cpu",
                                               progress=False).records)
            after_steps = sorted((rnd.randrange(steps), rnd.uniform(0, 0.5)) for _ in range(args.kills // 2))
            after_start = [(-1, rnd.uniform(0.5, 8.0)) for _ in range(args.kills - len(after_steps))]
            points = [p for pair in zip(after_start, after_steps) for p in pair] + after_start[len(after_steps):]
            kills = soak(cfg, Path(tmp, name, "killed"), points, timeout=3600)
            killed = comparable(ResultsStore(Path(tmp, name, "killed")).records(cfg.run_id))
            try:
                pd.testing.assert_frame_equal(killed, clean)
                verdict = "equal"
            except AssertionError as err:
                failed += 1
                verdict = f"DIFFERENT: {str(err).splitlines()[0]}"
            print(f"{name}: {kills} kills landed, {len(clean)} rows, {verdict} ({time.perf_counter() - began:.0f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
