#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# bench/run-transport.sh: /dev/fuse against FUSE over io_uring (-o transport=dev|uring), side by
# side in one run (bench/transportbench.c says what is measured and how).
#
#   bench/run-transport.sh [ROUNDS]      (as root: it mounts FUSE and may set enable_uring)
#
# Other benchmarks on this machine share its 2 CPUs: the run holds /tmp/daxfs-bench.lock, and waits
# (up to WAIT_S seconds, default 600) until the load average, less the tasks in uninterruptible
# sleep (counted by Linux, but using no CPU), is under LOAD_MAX (default 1.5).
# /sys/module/fuse/parameters/enable_uring is turned on for the run and restored after.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
ROUNDS=${1:-7}
LOAD_MAX=${LOAD_MAX:-1.5}
WAIT_S=${WAIT_S:-600}

ninja -C "$BUILD_DIR" daxfs/daxfs tools/mkfs.daxfs bench/transportbench >/dev/null

exec 9>/tmp/daxfs-bench.lock
flock 9

busy_load() {	# the 1-minute load average less the tasks in D state now
	local l d
	l=$(cut -d' ' -f1 /proc/loadavg)
	d=$(ps -eLo stat= | grep -c '^D' || true)
	awk -v l="$l" -v d="$d" 'BEGIN { x = l - d; print (x < 0 ? 0 : x) }'
}
deadline=$((SECONDS + WAIT_S))
until awk -v x="$(busy_load)" -v m="$LOAD_MAX" 'BEGIN { exit !(x < m) }'; do
	if [ $SECONDS -ge $deadline ]; then
		echo "run-transport: load still $(busy_load) (>= $LOAD_MAX) after ${WAIT_S}s: not measuring" >&2
		exit 1
	fi
	sleep 5
done
echo "load (less D-state tasks): $(busy_load); $(nproc) CPUs; $(uname -r)"

param=/sys/module/fuse/parameters/enable_uring
if [ ! -e "$param" ]; then
	echo "run-transport: this kernel has no FUSE over io_uring ($param)" >&2
	exit 1
fi
was=$(cat "$param")
trap 'echo "$was" > "$param"' EXIT
echo Y > "$param"
"$BUILD_DIR/bench/transportbench" "$PWD/$BUILD_DIR/daxfs/daxfs" "$PWD/$BUILD_DIR/tools/mkfs.daxfs" "$ROUNDS"
