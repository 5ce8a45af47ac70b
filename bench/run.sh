#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# bench/run.sh: build, then benchmark daxfs (multi-threaded and single-threaded) against tmpfs
# and against this machine's memory-copy limits, all in one run, and print ratios to targets.
#
#   bench/run.sh            (as root: it mounts tmpfs and FUSE)
#
# Environment knobs (defaults in brackets):
#   BUILD_DIR   meson build directory [build]
#   RUNS        measured runs per test; the median is reported [5]
#   WARMUPS     unrecorded warm-up runs per test [1]
#   IMAGE_SIZE  size of the sparse image in /dev/shm [4G]
#   SIZE_MIB    data file and copy size in MiB [1024]
#   FSBENCH_ARGS  extra fsbench options, e.g. "-r 10000 -F 2000" for a quick run []
#   PMEM_FORCE  1: run mkfs and the daemon with PMEM_IS_PMEM_FORCE=1, i.e. take the pmem code path
#               (non-temporal stores, no msync) on the /dev/shm image [0: libpmem decides, which on
#               /dev/shm means "not pmem": temporal stores + msync]
#   IMAGE_HUGE  1: put the image on a private tmpfs mounted with huge=always, so the daemon's mapping
#               uses 2 MiB pages as a real 2 MiB-aligned pmem/devdax mapping would [0: /dev/shm]
#   PIN_CPU     a CPU number: pin the daemon and fsbench to it (both on one CPU).  On VMs whose idle
#               vCPUs halt without polling, waking the other vCPU costs tens of microseconds per FUSE
#               request; pinning shows how much of a result is that and not daxfs []
#   PERF        1: also profile seq write and seq read on daxfs-mt with perf record -a -g [0]
#
# Results go to stdout and to bench/results/<timestamp>/ (raw.txt, table.txt, logs, perf reports).
# Everything mounted or created is unmounted and removed on exit, failure and ^C included.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD_DIR=${BUILD_DIR:-build}
RUNS=${RUNS:-5}
WARMUPS=${WARMUPS:-1}
IMAGE_SIZE=${IMAGE_SIZE:-4G}
SIZE_MIB=${SIZE_MIB:-1024}
FSBENCH_ARGS=${FSBENCH_ARGS:-}
PMEM_FORCE=${PMEM_FORCE:-0}
PERF=${PERF:-0}
PIN_CPU=${PIN_CPU:-}
IMAGE_HUGE=${IMAGE_HUGE:-0}

DAXFS=$ROOT/$BUILD_DIR/daxfs/daxfs
MKFS=$ROOT/$BUILD_DIR/tools/mkfs.daxfs
FSBENCH=$ROOT/$BUILD_DIR/bench/fsbench

# ---- state for cleanup: everything we create is recorded before it exists ----
WORK=""
IMAGE=""
MOUNTS=()	# FUSE mount points and our tmpfs mount points
DAEMON_PID=""
CHILD_PID=""	# a running fsbench, stopped first so that the unmounts find the mounts idle

die() { echo "run.sh: $*" >&2; exit 1; }

unmount_daxfs() {
	local mnt=$1
	if mountpoint -q "$mnt" 2>/dev/null; then
		fusermount3 -u "$mnt" 2>/dev/null || umount "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || true
	fi
	if [[ -n $DAEMON_PID ]]; then
		# The daemon exits once unmounted; give it a moment, then stop it by its own pid.
		for _ in $(seq 50); do kill -0 "$DAEMON_PID" 2>/dev/null || break; sleep 0.1; done
		kill "$DAEMON_PID" 2>/dev/null || true
		wait "$DAEMON_PID" 2>/dev/null || true
		DAEMON_PID=""
	fi
}

cleanup() {
	local rc=$?
	set +e
	trap - EXIT INT TERM
	if [[ -n $CHILD_PID ]]; then
		kill "$CHILD_PID" 2>/dev/null
		wait "$CHILD_PID" 2>/dev/null
	fi
	# daxfs first: its daemon holds the image, which may live on one of our tmpfs mounts.
	for m in "${MOUNTS[@]}"; do
		[[ $m == */tmpfs || $m == */imgfs ]] || unmount_daxfs "$m"
	done
	[[ -n $IMAGE ]] && rm -f "$IMAGE"
	for m in "${MOUNTS[@]}"; do
		if [[ $m == */tmpfs || $m == */imgfs ]] && mountpoint -q "$m"; then
			umount "$m" || umount -l "$m"
		fi
	done
	[[ -n $WORK && -d $WORK ]] && rm -rf --one-file-system "$WORK"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

[[ $(id -u) -eq 0 ]] || die "needs root (mounts tmpfs and FUSE)"
[[ -e /dev/fuse ]] || die "/dev/fuse missing"

# ---- build ----
if [[ ! -f $BUILD_DIR/build.ninja ]]; then
	meson setup "$BUILD_DIR" -Dbench=true >/dev/null
fi
# Only what the benchmark runs: a test that does not compile is no reason not to measure.
ninja -C "$BUILD_DIR" daxfs/daxfs tools/mkfs.daxfs bench/fsbench >/dev/null || die "build failed (ninja -C $BUILD_DIR)"
for b in "$DAXFS" "$MKFS" "$FSBENCH"; do [[ -x $b ]] || die "$b not built (is -Dbench=true?)"; done

STAMP=$(date +%Y%m%d-%H%M%S)
RES=$ROOT/bench/results/$STAMP
mkdir -p "$RES"
RAW=$RES/raw.txt
: >"$RAW"

WORK=$(mktemp -d /tmp/daxfs-bench.XXXXXX)
DMNT=$WORK/daxfs
TMNT=$WORK/tmpfs
mkdir "$DMNT" "$TMNT"
if [[ $IMAGE_HUGE == 1 ]]; then
	mkdir "$WORK/imgfs"
	MOUNTS+=("$WORK/imgfs")
	mount -t tmpfs -o huge=always daxfs-bench-img "$WORK/imgfs"
	IMAGE=$WORK/imgfs/daxfs-bench.img
	IMAGE_WHERE="a huge=always tmpfs"
else
	IMAGE=/dev/shm/daxfs-bench.$$.img
	IMAGE_WHERE="/dev/shm"
fi

PMEM_ENV=()
[[ $PMEM_FORCE == 1 ]] && PMEM_ENV=(PMEM_IS_PMEM_FORCE=1)
PIN=()
[[ -n $PIN_CPU ]] && PIN=(taskset -c "$PIN_CPU")

{
	echo "date: $(date -Is)"
	echo "commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD -- 2>/dev/null || echo ' (dirty tree)')"
	echo "kernel: $(uname -r); cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores"
	echo "cpuidle: $(cat /sys/devices/system/cpu/cpuidle/current_driver 2>/dev/null || echo ?), guest_halt_poll_ns=$(cat /sys/module/haltpoll/parameters/guest_halt_poll_ns 2>/dev/null || echo n/a)"
	echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg); pmem_force=$PMEM_FORCE pin_cpu=${PIN_CPU:-none}"
	echo "fuse: $(pkg-config --modversion fuse3 2>/dev/null || echo ?); runs=$RUNS warmups=$WARMUPS file=${SIZE_MIB}MiB image=$IMAGE_SIZE sparse in $IMAGE_WHERE; fsbench args: ${FSBENCH_ARGS:-(defaults)}"
} >"$RES/env.txt"

log() { echo "== $*" >&2; }

# bg_wait CMD...: run CMD in the background and wait, so that a signal reaches our trap at once
# (bash runs traps only after a foreground command ends) and cleanup can stop CMD by its pid.
bg_wait() {
	local rc=0
	"$@" &
	CHILD_PID=$!
	wait "$CHILD_PID" || rc=$?
	CHILD_PID=""
	return "$rc"
}

# fsbench LABEL DIR [extra args]: results appended to raw.txt and echoed.
run_fsbench() {
	local label=$1 dir=$2 out=$RES/fsbench-$1.txt; shift 2
	# shellcheck disable=SC2086
	bg_wait "${PIN[@]}" "$FSBENCH" -l "$label" -n "$RUNS" -w "$WARMUPS" -s "$SIZE_MIB" $FSBENCH_ARGS "$@" "$dir" \
		>"$out" || die "fsbench $label failed (see $out)"
	tee -a "$RAW" <"$out" >&2
}

# mount_daxfs FRESH(0|1) [daemon options...]: (re)format if asked, mount at $DMNT, daemon in the foreground.
mount_daxfs() {
	local fresh=$1; shift
	if [[ $fresh == 1 ]]; then
		rm -f "$IMAGE"
		env "${PMEM_ENV[@]}" "$MKFS" -f -s "$IMAGE_SIZE" "$IMAGE" >"$RES/mkfs.txt" || die "mkfs failed"
	fi
	MOUNTS+=("$DMNT")
	"${PIN[@]}" env "${PMEM_ENV[@]}" "$DAXFS" -f "$@" "$IMAGE" "$DMNT" 2>>"$RES/daemon.log" &
	DAEMON_PID=$!
	for _ in $(seq 100); do
		mountpoint -q "$DMNT" && return 0
		kill -0 "$DAEMON_PID" 2>/dev/null || die "daxfs exited before mounting (see $RES/daemon.log)"
		sleep 0.05
	done
	die "daxfs did not mount within 5 s"
}

# ---- the memory-copy limits ----
log "memcpy limits"
bg_wait "${PIN[@]}" "$FSBENCH" --memcpy -l memcpy -n "$RUNS" -w "$WARMUPS" -s "$SIZE_MIB" >"$RES/fsbench-memcpy.txt" \
	|| die "fsbench --memcpy failed"
tee -a "$RAW" <"$RES/fsbench-memcpy.txt" >&2

# ---- reference: tmpfs ----
log "tmpfs"
MOUNTS+=("$TMNT")
mount -t tmpfs -o size=8g,mode=0755 daxfs-bench-ref "$TMNT"
run_fsbench tmpfs "$TMNT"
umount "$TMNT"

# ---- daxfs, multi-threaded (default) and single-threaded, each on a fresh image ----
log "daxfs multi-threaded"
mount_daxfs 1
run_fsbench daxfs-mt "$DMNT"
unmount_daxfs "$DMNT"

log "daxfs single-threaded (-s)"
mount_daxfs 1 -s
run_fsbench daxfs-st "$DMNT"
unmount_daxfs "$DMNT"

# With attr_timeout=0 every fstat is a GETATTR round trip: the second round-trip measure.
log "daxfs getattr round trip (attr_timeout=0), MT and -s"
mount_daxfs 0 -o attr_timeout=0
run_fsbench daxfs-mt-at0 "$DMNT" -t rtt
unmount_daxfs "$DMNT"
mount_daxfs 0 -s -o attr_timeout=0
run_fsbench daxfs-st-at0 "$DMNT" -t rtt
unmount_daxfs "$DMNT"

if [[ $PERF == 1 ]]; then
	log "perf: seq write and seq read on daxfs-mt"
	mount_daxfs 1
	# Unprofiled warm-up: fault in the image's pages and wake the VM, so the profiles show steady state.
	# shellcheck disable=SC2086
	bg_wait "${PIN[@]}" "$FSBENCH" -l perf-warmup -n 1 -w 1 -s "$SIZE_MIB" $FSBENCH_ARGS -t seqwrite,seqread -k "$DMNT" \
		>>"$RES/perf-runs.txt" 2>&1
	for t in seqwrite seqread; do
		# -a: the client's syscalls and the daemon's work land in one profile, split by comm; the
		# reports keep only those two comms (other work on the machine is dropped), in % of their samples.
		# shellcheck disable=SC2086
		bg_wait perf record -q -a -g -o "$RES/perf-$t.data" -- \
			"${PIN[@]}" "$FSBENCH" -l perf -n 3 -w 0 -s "$SIZE_MIB" $FSBENCH_ARGS -t "$t" -k "$DMNT" \
			>>"$RES/perf-runs.txt" 2>&1
		for sort in comm,dso comm,sym; do
			perf report -i "$RES/perf-$t.data" --comms daxfs,fsbench --percentage relative --no-children \
				--sort "$sort" --stdio -g none 2>/dev/null | grep -v -e '^$' -e '^#' | head -60 \
				>"$RES/perf-$t-by-${sort#comm,}.txt" || true
		done
	done
	unmount_daxfs "$DMNT"
fi

# ---- the table ----
# val LABEL METRIC: the median fsbench printed, or "-" when absent.
val() {
	awk -v l="$1" -v m="$2" '
		{ lab = ""; met = ""; v = ""
		  for (i = 1; i <= NF; i++) {
			split($i, kv, "=")
			if (kv[1] == "label") lab = kv[2]; else if (kv[1] == "metric") met = kv[2]; else if (kv[1] == "value") v = kv[2]
		  }
		  if (lab == l && met == m) { print v; found = 1; exit } }
		END { if (!found) print "-" }' "$RAW"
}

fmt() { awk -v x="$1" 'BEGIN { if (x == "-") print "-"; else if (x >= 1000) printf "%.0f", x; else if (x >= 100) printf "%.1f", x; else if (x >= 10) printf "%.2f", x; else printf "%.3f", x }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.2fx", a / b }'; }
# verdict RATIO OP LIMIT: PASS or MISS against a target.
verdict() { awk -v r="${1%x}" -v op="$2" -v t="$3" 'BEGIN { if (r == "-") print "-"; else if ((op == ">=" && r + 0 >= t) || (op == "<=" && r + 0 <= t)) print "PASS"; else print "MISS" }'; }

ROW="%-34s %10s %10s %10s %9s %9s  %s\n"
{
	cat "$RES/env.txt"
	echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg) (other work on this machine perturbs results)"
	echo "media: $(grep -o 'media [^,]*' "$RES/mkfs.txt" | head -1 || echo '?')"
	echo "values: median of $RUNS runs after $WARMUPS warm-up run(s); ratios are daxfs / tmpfs unless noted"
	echo
	# shellcheck disable=SC2059
	printf "$ROW" "metric" "daxfs-mt" "daxfs-st" "tmpfs" "mt/tmpfs" "st/tmpfs" "target (mt, st)"
	# row TITLE METRIC [TARGET_OP TARGET]: one metric of all three file systems, ratio against tmpfs.
	row() {
		local title=$1 m=$2 op=${3:-} t=${4:-}
		local a b c ra rb tgt=""
		a=$(val daxfs-mt "$m"); b=$(val daxfs-st "$m"); c=$(val tmpfs "$m")
		ra=$(ratio "$a" "$c"); rb=$(ratio "$b" "$c")
		[[ -n $op ]] && tgt="$op ${t}x tmpfs: $(verdict "$ra" "$op" "$t"), $(verdict "$rb" "$op" "$t")"
		# shellcheck disable=SC2059
		printf "$ROW" "$title" "$(fmt "$a")" "$(fmt "$b")" "$(fmt "$c")" "$ra" "$rb" "$tgt"
	}
	row "seq write ${SIZE_MIB} MiB file (GiB/s)" seq_write ">=" 0.5
	row "seq read ${SIZE_MIB} MiB file (GiB/s)" seq_read ">=" 0.7
	row "4K rand read QD1 mean (us)" rand4k_mean
	row "4K rand read QD1 p50 (us)" rand4k_p50
	row "4K rand read QD1 p99 (us)" rand4k_p99
	row "statfs round trip mean (us)" rtt_statfs_mean
	row "statfs round trip p50 (us)" rtt_statfs_p50
	row "fstat mean, attr cached (us)" rtt_fstat_mean
	a=$(val daxfs-mt-at0 rtt_fstat_mean); b=$(val daxfs-st-at0 rtt_fstat_mean); c=$(val tmpfs rtt_fstat_mean)
	# shellcheck disable=SC2059
	printf "$ROW" "fstat mean, attr_timeout=0 (us)" "$(fmt "$a")" "$(fmt "$b")" "$(fmt "$c")" \
		"$(ratio "$a" "$c")" "$(ratio "$b" "$c")" ""
	row "create (ops/s)" meta_create
	row "stat (ops/s)" meta_stat
	row "unlink (ops/s)" meta_unlink
	row "create+stat+unlink total (s)" meta_total
	row "create+stat+unlink (ops/s)" meta_total_ops
	echo
	echo "4K QD1 read latency against one FUSE round trip (daxfs only; target <= 1.3x):"
	for v in mt st; do
		for s in mean p50; do
			l=$(val "daxfs-$v" "rand4k_$s"); r=$(val "daxfs-$v" "rtt_statfs_$s"); g=$(val "daxfs-$v-at0" "rtt_fstat_$s")
			rs=$(ratio "$l" "$r"); rg=$(ratio "$l" "$g")
			printf "  daxfs-%s %-4s: 4K %s us / statfs %s us = %s (%s);  / getattr %s us = %s\n" "$v" "$s" \
				"$(fmt "$l")" "$(fmt "$r")" "$rs" "$(verdict "$rs" "<=" 1.3)" "$(fmt "$g")" "$rg"
		done
	done
	echo
	echo "memory-copy limits on this machine (1 MiB chunks, ${SIZE_MIB} MiB of /dev/shm mapping on the far side):"
	mr=$(val memcpy memcpy_read); mw=$(val memcpy memcpy_write); nw=$(val memcpy ntcopy_write)
	mf=$(val memcpy memcpy_write_fresh)
	printf "  memcpy read  (shm -> buffer)            %8s GiB/s\n" "$(fmt "$mr")"
	printf "  memcpy write (buffer -> shm, prefaulted) %8s GiB/s\n" "$(fmt "$mw")"
	printf "  NT write     (pmem_memcpy NONTEMPORAL)   %8s GiB/s\n" "$(fmt "$nw")"
	printf "  memcpy write faulting in new shm pages   %8s GiB/s  (page allocation + zeroing, as a new tmpfs file)\n" "$(fmt "$mf")"
	for l in daxfs-mt daxfs-st tmpfs; do
		printf "  %-9s seq read = %s of memcpy read; seq write = %s of memcpy write, %s of NT write\n" "$l" \
			"$(ratio "$(val "$l" seq_read)" "$mr")" "$(ratio "$(val "$l" seq_write)" "$mw")" \
			"$(ratio "$(val "$l" seq_write)" "$nw")"
	done
	echo
	echo "notes:"
	echo "  - round trip = fstatfs(): FUSE forwards every statfs, and the daemon answers from counters"
	echo "  - FUSE latencies on a VM depend on waking the other vCPU (no halt polling when guest_halt_poll_ns=0);"
	echo "    PIN_CPU=0 puts daemon and client on one CPU and shows what is left without that cost"
	echo "  - stat is served from the kernel's cache within attr/entry_timeout (1 s) of its create; a create"
	echo "    phase longer than 1 s turns part of the stats into LOOKUP round trips"
	echo "  - tmpfs seq write allocates and zeroes fresh pages; daxfs reuses image pages the warm-up faulted in"
} | tee "$RES/table.txt"

echo
echo "results: $RES"
