#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# bench/run-pins.sh: the pin and busy-extent benchmarks, with their references, in one run.
#
#   bench/run-pins.sh        (as root: it mounts FUSE)
#
#   busybench  the busy-extent tree at 1M entries (DRAM, and with persistent records and reclaim),
#              and a mount that recovers 1M busy extents
#   pinbench   pin+unpin pairs/s against the control-ioctl round trip, truncate of 1 GiB under
#              10k pins, reclaim bandwidth against pmem_memset_persist
# Results go to stdout and bench/results/pins-<timestamp>/.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD_DIR=${BUILD_DIR:-build}
[ -f "$BUILD_DIR/build.ninja" ] || meson setup "$BUILD_DIR" >/dev/null
ninja -C "$BUILD_DIR" daxfs/daxfs tools/mkfs.daxfs bench/busybench bench/pinbench >/dev/null

OUT=$ROOT/bench/results/pins-$(date +%Y%m%d-%H%M%S)
mkdir -p "$OUT"
IMAGE=/dev/shm/daxfs-pinbench-$$.img
MNT=$(mktemp -d /tmp/daxfs-pinbench.XXXXXX)
cleanup() {
	set +e
	mountpoint -q "$MNT" && { umount "$MNT" || umount -l "$MNT"; }
	sleep 0.5
	rm -f "$IMAGE" /dev/shm/busybench-*.img /dev/shm/pinbench-ref.img
	rmdir "$MNT"
}
trap cleanup EXIT INT TERM

echo "busybench (in process)..."
"$BUILD_DIR/bench/busybench" /dev/shm | tee "$OUT/raw.txt"
echo "pinbench (through FUSE, multi-threaded daemon)..."
"$BUILD_DIR/tools/mkfs.daxfs" -q -s 4G "$IMAGE"
"$BUILD_DIR/daxfs/daxfs" "$IMAGE" "$MNT"
"$BUILD_DIR/bench/pinbench" "$MNT" /dev/shm | tee -a "$OUT/raw.txt"

val() { awk -v m="$1" '$0 ~ "metric="m" " { sub(/.*value=/, ""); sub(/ .*/, ""); print }' "$OUT/raw.txt"; }
verdict() { awk -v v="$1" -v t="$2" -v op="$3" 'BEGIN { ok = op == "<" ? v < t : v >= t; print ok ? "PASS" : "MISS" }'; }
{
	printf '\n%-44s %12s %10s  %s\n' "benchmark" "value" "target" ""
	printf '%-44s %10.3f s %10s  %s\n' "busy tree 1M insert+trim+clear (DRAM)" "$(val tree_total_1M_s)" "< 1 s" \
		"$(verdict "$(val tree_total_1M_s)" 1 "<")"
	printf '%-44s %10.3f s %10s\n' "  same, persistent records + reclaim" "$(val persistent_total_1M_s)" ""
	printf '%-44s %10.3f s %10s  %s\n' "mount recovering 1M busy extents" "$(val mount_1M_busy_s)" "< 2 s" \
		"$(verdict "$(val mount_1M_busy_s)" 2 "<")"
	printf '%-44s %10.3f s %10s\n' "  until all reclaimed" "$(val mount_1M_busy_reclaimed_s)" ""
	printf '%-44s %10.0f /s %9s  %s\n' "pin+unpin pairs, one client" "$(val pin_unpin_pairs_per_s)" ">= 35000" \
		"$(verdict "$(val pin_unpin_pairs_per_s)" 35000 ">=")"
	printf '%-44s %10.2f us %9s\n' "  empty ioctl round trip (reference)" "$(val ioctl_rtt_us)" ""
	printf '%-44s %10.2f x  %9s\n' "  pairs/s x 2 round trips" "$(val pin_unpin_vs_two_rtt)" ""
	printf '%-44s %10.2f ms %9s  %s\n' "truncate 1 GiB with 10k pinned ranges" "$(val truncate_1G_10k_pins_ms)" "< 20 ms" \
		"$(verdict "$(val truncate_1G_10k_pins_ms)" 20 "<")"
	printf '%-44s %10.1f GiB/s %6s\n' "reclaim (zeroing) bandwidth" "$(val reclaim_GiB_per_s)" ""
	printf '%-44s %10.1f GiB/s %6s\n' "  pmem_memset_persist (reference)" "$(val pmem_memset_persist_GiB_per_s)" ""
	printf '%-44s %10.2f x  %9s  %s\n' "  ratio" "$(val reclaim_vs_memset_persist)" ">= 0.6" \
		"$(verdict "$(val reclaim_vs_memset_persist)" 0.6 ">=")"
} | tee "$OUT/table.txt"
