#!/usr/bin/env bash
# The daxfs demo: the policy comparison of the 2017 "dax: fix dma vs truncate" thread, on emulated
# pmem.  Installs what is missing, builds, then runs every scenario under every policy (the built-in
# ones and the example policy object) with the simulated RDMA device, and prints the results table
# and where the CSV, JSON, event traces and plots are.  Each run formats its own image in /dev/shm
# and removes it.  Usage: scripts/demo.sh [OUTPUT_DIR] (default daxfs-lab-results).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
# Its own build directory, without tests and benchmarks: the demo needs only the programs.
BIN=build-demo
[ -f $BIN/build.ninja ] || meson setup $BIN -Dtests=false -Dbench=false >/dev/null
ninja -C $BIN >/dev/null

OUT=${1:-daxfs-lab-results}
# One round per DMA scenario and two seconds of churn keep the whole comparison under two minutes
# here; daxfs-lab --help lists every knob, and churn-soak is the long variant.
exec $BIN/tools/lab/daxfs-lab compare --out "$OUT" --rounds 1 --duration 2000 \
	--load "$PWD/$BIN/examples/policy-quota.so:per_holder=2M"
