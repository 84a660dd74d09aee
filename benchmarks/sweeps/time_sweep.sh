#!/usr/bin/env bash
# Time the FashionMNIST mlp SAP-vs-LT sweep (issue #4) in three modes on one machine, each in a fresh store:
#   A  default: seeds batched on CUDA (one worker)       -> then re-run A: must train nothing
#   B  --batch-seeds off, one worker (runs one after another)
#   C  --batch-seeds off, --workers-per-device 4 (four runs at once on one device)
# Usage (repository root; data root must hold FashionMNIST/raw):
#   SPARSITY_LAB_DATA=$PWD/.devdata bash benchmarks/sweeps/time_sweep.sh OUTDIR
# Writes OUTDIR/sweep-times.txt, one log per mode and OUTDIR/store-A.tar.gz (mode A's store).
set -euo pipefail
out=${1:?usage: time_sweep.sh OUTDIR}
sweep=benchmarks/sweeps/fmnist_mlp_sap_vs_lt.yaml
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
work=$(mktemp -d)
timed() {  # timed NAME STORE ARGS...: run the sweep, append "NAME seconds" to sweep-times.txt
  local name=$1 store=$2; shift 2
  local t0 t1
  t0=$(date +%s.%N)
  python3 -m sparsity_lab --results "$store" sweep "$sweep" --no-progress "$@" >"$out/sweep-$name.log" 2>&1
  t1=$(date +%s.%N)
  python3 -c "print('$name', round($t1 - $t0, 1), 's')" | tee -a "$out/sweep-times.txt"
}
timed A "$work/A"
timed A-again "$work/A"
timed B "$work/B" --batch-seeds off
timed C "$work/C" --batch-seeds off --workers-per-device 4
python3 -m sparsity_lab --results "$work/A" ls >"$out/ls-A.txt" 2>&1
tar -C "$work" -czf "$out/store-A.tar.gz" A
