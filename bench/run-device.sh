#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# bench/run-device.sh: the simulated RDMA device's benchmarks, with their references, in one run.
#
#   bench/run-device.sh        (as root: it mounts FUSE)
#
#   devbench   WRITE bandwidth at QD 1 and 32 and 4 KiB request rate against a plain io_uring
#              write loop over the same media offsets; event latency from a truncate's call to the
#              device's handler (by signal, and polled)
# Results go to stdout and bench/results/device-<timestamp>/.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD_DIR=${BUILD_DIR:-build}
[ -f "$BUILD_DIR/build.ninja" ] || meson setup "$BUILD_DIR" >/dev/null
ninja -C "$BUILD_DIR" daxfs/daxfs tools/mkfs.daxfs bench/devbench >/dev/null

OUT=$ROOT/bench/results/device-$(date +%Y%m%d-%H%M%S)
mkdir -p "$OUT"
IMAGE=/dev/shm/daxfs-devbench-$$.img
MNT=$(mktemp -d /tmp/daxfs-devbench.XXXXXX)
cleanup() {
	set +e
	mountpoint -q "$MNT" && { umount "$MNT" || umount -l "$MNT"; }
	sleep 0.5
	rm -f "$IMAGE"
	rmdir "$MNT"
}
trap cleanup EXIT INT TERM

"$BUILD_DIR/tools/mkfs.daxfs" -q -s 1G "$IMAGE"
"$BUILD_DIR/daxfs/daxfs" "$IMAGE" "$MNT"
"$BUILD_DIR/bench/devbench" "$MNT" | tee "$OUT/raw.txt"

val() { awk -v m="$1" '$0 ~ "metric="m" " { sub(/.*value=/, ""); sub(/ .*/, ""); print }' "$OUT/raw.txt"; }
verdict() { awk -v v="$1" -v t="$2" -v op="$3" 'BEGIN { ok = op == "<" ? v < t : v >= t; print ok ? "PASS" : "MISS" }'; }
{
	printf '\n%-46s %12s %10s %10s  %s\n' "benchmark (median of 5)" "value" "spread" "target" ""
	for q in 1 32; do
		printf '%-46s %8.2f GiB/s %9.0f%%\n' "device write, 64 KiB, QD $q" "$(val write_qd${q}_device)" \
			"$(awk -v s="$(val write_qd${q}_device_spread)" 'BEGIN { print s * 100 }')"
		printf '%-46s %8.2f GiB/s %9.0f%%\n' "  io_uring write loop (reference)" "$(val write_qd${q}_loop)" \
			"$(awk -v s="$(val write_qd${q}_loop_spread)" 'BEGIN { print s * 100 }')"
		t=""; v=""
		[ "$q" = 32 ] && t=">= 0.8" && v=$(verdict "$(val write_qd32_ratio)" 0.8 ">=")
		printf '%-46s %10.2f x  %9.0f%% %10s  %s\n' "  ratio" "$(val write_qd${q}_ratio)" \
			"$(awk -v s="$(val write_qd${q}_ratio_spread)" 'BEGIN { print s * 100 }')" "$t" "$v"
	done
	printf '%-46s %8.0f req/s\n' "device, 4 KiB requests, QD 32" "$(val rps_4k_qd32_device)"
	printf '%-46s %8.0f req/s\n' "  io_uring write loop (reference)" "$(val rps_4k_qd32_loop)"
	printf '%-46s %10.2f x\n' "  ratio" "$(val rps_4k_qd32_ratio)"
	printf '%-46s %9.1f us %21s  %s\n' "event latency, truncate -> handler, signal, p99" "$(val event_latency_signal_p99)" \
		"< 1000 us" "$(verdict "$(val event_latency_signal_p99)" 1000 "<")"
	printf '%-46s %9.1f us\n' "  p50" "$(val event_latency_signal_p50)"
	printf '%-46s %9.1f us\n' "  polled every 2 ms, p99" "$(val event_latency_polled_p99)"
} | tee "$OUT/table.txt"
