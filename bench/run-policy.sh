#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# bench/run-policy.sh: what the policy interface and the event trace cost, in one run.
#
#   bench/run-policy.sh [BEFORE_REVISION]      (as root: it mounts FUSE)
#
# Runs pinbench's pin+unpin pairs and its truncate of 1 GiB under 10k pinned ranges against
#   before   the daemon of BEFORE_REVISION (default e70b3e3: the last daxfs before the policy
#            interface, with policy if-chains), built here in a scratch worktree
#   after    this tree's daemon, policy=busy through the ops table
#   traced   this tree's daemon with -o trace=FILE
# in rounds (before, after, traced, before, ...), so that the noise of this VM hits all three alike,
# and prints each median with after/before and traced/after ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD_DIR=${BUILD_DIR:-build}
BEFORE=${1:-e70b3e3}
ROUNDS=${ROUNDS:-3}
[ -f "$BUILD_DIR/build.ninja" ] || meson setup "$BUILD_DIR" >/dev/null
ninja -C "$BUILD_DIR" daxfs/daxfs tools/mkfs.daxfs bench/pinbench >/dev/null

OUT=$ROOT/bench/results/policy-$(date +%Y%m%d-%H%M%S)
mkdir -p "$OUT"
OLD=$(mktemp -d /tmp/daxfs-before.XXXXXX)
IMAGE=/dev/shm/daxfs-policybench-$$.img
MNT=$(mktemp -d /tmp/daxfs-policybench.XXXXXX)
TRACE=/dev/shm/daxfs-policybench-$$.trace
cleanup() {
	set +e
	mountpoint -q "$MNT" && { umount "$MNT" || umount -l "$MNT"; }
	rm -f "$IMAGE" "$TRACE"
	rmdir "$MNT"
	git -C "$ROOT" worktree remove --force "$OLD/src" >/dev/null 2>&1
	rm -rf "$OLD"
}
trap cleanup EXIT INT TERM

echo "building the daemon of $BEFORE..."
git -C "$ROOT" worktree add --detach "$OLD/src" "$BEFORE" >/dev/null 2>&1
meson setup "$OLD/build" "$OLD/src" -Dtests=false -Dbench=false >/dev/null
ninja -C "$OLD/build" daxfs/daxfs tools/mkfs.daxfs >/dev/null

run() {	# name daemon mkfs extra-options
	local name=$1 daemon=$2 mkfs=$3 opts=$4
	"$mkfs" -q -f -s 4G "$IMAGE"
	"$daemon" ${opts:+-o "$opts"} "$IMAGE" "$MNT"
	"$BUILD_DIR/bench/pinbench" "$MNT" /dev/shm pinpair,truncate | sed "s/^/$name /" | tee -a "$OUT/raw.txt"
	umount "$MNT"
	# umount returns before the daemon lets go of the image: wait for it (mkfs refuses a held image).
	for _ in $(seq 100); do fuser -s "$IMAGE" 2>/dev/null || break; sleep 0.1; done
	rm -f "$TRACE"
}
for r in $(seq "$ROUNDS"); do
	echo "round $r of $ROUNDS"
	run before "$OLD/build/daxfs/daxfs" "$OLD/build/tools/mkfs.daxfs" ""
	run after "$BUILD_DIR/daxfs/daxfs" "$BUILD_DIR/tools/mkfs.daxfs" ""
	run traced "$BUILD_DIR/daxfs/daxfs" "$BUILD_DIR/tools/mkfs.daxfs" "trace=$TRACE"
done

median() {	# variant metric
	awk -v n="$1" -v m="$2" '$1 == n && $0 ~ "metric="m" " { sub(/.*value=/, ""); sub(/ .*/, ""); print }' \
		"$OUT/raw.txt" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
{
	printf '\n%-34s %12s %12s %12s %10s %10s\n' "benchmark ($ROUNDS rounds, medians)" before after traced \
		after/before traced/after
	for m in pin_unpin_pairs_per_s truncate_1G_10k_pins_ms; do
		b=$(median before $m) a=$(median after $m) t=$(median traced $m)
		printf '%-34s %12.1f %12.1f %12.1f %10.3f %10.3f\n' "$m" "$b" "$a" "$t" \
			"$(awk -v x="$a" -v y="$b" 'BEGIN { print x / y }')" "$(awk -v x="$t" -v y="$a" 'BEGIN { print x / y }')"
	done
} | tee "$OUT/table.txt"
