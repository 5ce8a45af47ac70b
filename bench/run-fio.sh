#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# bench/run-fio.sh: the headline figures, measured with fio (Debian's) on daxfs and on tmpfs side
# by side in one run, the two interleaved run by run, and printed as medians, spreads and ratios.
#
#   bench/run-fio.sh        (as root: it mounts tmpfs and FUSE)
#
# What runs, each test on both file systems (fio: 1 job, SIZE file, end_fsync on writes):
#   seqwrite-over  sequential 1 MiB psync writes over an existing file: no allocation on either
#                  side (tmpfs rewrites its page-cache pages, daxfs its media blocks)
#   seqwrite-new   sequential 1 MiB psync writes of a new file (deleted untimed before each run):
#                  tmpfs allocates and zeroes its pages, daxfs allocates blocks and commits them
#                  (its image pages stay resident, as a pmem device's do)
#   seqread        sequential 1 MiB psync reads of the file
#   rand4k-qd1     4 KiB random reads, io_uring, queue depth 1 (time based)
#   rand4k-qd16    the same at queue depth 16
#
# Environment knobs (defaults in brackets):
#   BUILD_DIR   meson build directory [build]
#   RUNS        measured runs per test and file system; the median is reported [5]
#   WARMUPS     unrecorded runs first (these VMs run the first large write after idle slowly) [1]
#   SIZE        fio file size [1G]
#   RAND_TIME   seconds per random-read run [5]
#   PAGES       4k: the daxfs image in /dev/shm and tmpfs as mounted by default (4 KiB pages);
#               2m: both the image's tmpfs and the reference tmpfs mounted huge=always (2 MiB
#               pages, as device DAX maps) [4k]
#   DAXFS_OPTS  extra daemon options, e.g. "-o splice=none" [none]
#   ALT_OPTS    if set, a second daxfs ("daxfs-alt", its own image) mounted with DAXFS_OPTS and then
#               these, e.g. "-o splice=none": it runs every test too, interleaved with the others,
#               so a data path option is compared with the default under the same conditions; the
#               table adds its rows and daxfs / daxfs-alt ratios []
#   TESTS       comma list of the tests above [all]
#   PIPE_MAX    if set, fs.pipe-max-size for the run (restored at exit): splicing 1 MiB writes
#               needs 2 MiB pipes, which a daemon without CAP_SYS_RESOURCE gets only when
#               fs.pipe-max-size allows them []
#   PIN_CPU     a CPU: pin the daemon and fio to it (both on one CPU) []
#
# Results go to stdout and bench/results/fio-<timestamp>/: env.txt, raw.txt (one line per run),
# table.txt, readme.md (the README's rows), the fio JSON of every run and the daemon's log.
# Everything mounted or created is unmounted and removed on exit, failure and ^C included.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD_DIR=${BUILD_DIR:-build}
RUNS=${RUNS:-5}
WARMUPS=${WARMUPS:-1}
SIZE=${SIZE:-1G}
RAND_TIME=${RAND_TIME:-5}
PAGES=${PAGES:-4k}
DAXFS_OPTS=${DAXFS_OPTS:-}
ALT_OPTS=${ALT_OPTS:-}
TESTS=${TESTS:-seqwrite-over,seqwrite-new,seqread,rand4k-qd1,rand4k-qd16}
PIPE_MAX=${PIPE_MAX:-}
PIN_CPU=${PIN_CPU:-}

DAXFS=$ROOT/$BUILD_DIR/daxfs/daxfs
MKFS=$ROOT/$BUILD_DIR/tools/mkfs.daxfs

WORK=""
IMAGES=()
DAEMON_PIDS=()
MOUNTS=()
PIPE_MAX_OLD=""

die() { echo "run-fio.sh: $*" >&2; exit 1; }
log() { echo "== $*" >&2; }

cleanup() {
	local rc=$?
	set +e
	trap - EXIT INT TERM
	for fs in daxfs daxfs-alt; do
		if [[ -n $WORK ]] && mountpoint -q "$WORK/$fs"; then
			fusermount3 -u "$WORK/$fs" 2>/dev/null || umount -l "$WORK/$fs"
		fi
	done
	for pid in "${DAEMON_PIDS[@]}"; do
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	for img in "${IMAGES[@]}"; do rm -f "$img"; done
	for m in "${MOUNTS[@]}"; do
		mountpoint -q "$m" && { umount "$m" || umount -l "$m"; }
	done
	[[ -n $WORK && -d $WORK ]] && rm -rf --one-file-system "$WORK"
	[[ -n $PIPE_MAX_OLD ]] && echo "$PIPE_MAX_OLD" >/proc/sys/fs/pipe-max-size
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

[[ $(id -u) -eq 0 ]] || die "needs root (mounts tmpfs and FUSE)"
[[ -e /dev/fuse ]] || die "/dev/fuse missing"
command -v fio >/dev/null || die "fio missing (apt-get install fio)"
command -v jq >/dev/null || die "jq missing (apt-get install jq)"
[[ $PAGES == 4k || $PAGES == 2m ]] || die "PAGES=$PAGES: expected 4k or 2m"

if [[ ! -f $BUILD_DIR/build.ninja ]]; then
	meson setup "$BUILD_DIR" >/dev/null
fi
ninja -C "$BUILD_DIR" daxfs/daxfs tools/mkfs.daxfs >/dev/null || die "build failed (ninja -C $BUILD_DIR)"

if [[ -n $PIPE_MAX ]]; then
	PIPE_MAX_OLD=$(cat /proc/sys/fs/pipe-max-size)
	echo "$PIPE_MAX" >/proc/sys/fs/pipe-max-size
fi

RES=$ROOT/bench/results/fio-$(date +%Y%m%d-%H%M%S)
mkdir -p "$RES/json"
RAW=$RES/raw.txt
: >"$RAW"
WORK=$(mktemp -d /tmp/daxfs-fio.XXXXXX)
mkdir "$WORK/daxfs" "$WORK/daxfs-alt" "$WORK/tmpfs" "$WORK/img"
# The file systems measured, in the order each run visits them.
FSES=(daxfs tmpfs)
[[ -n $ALT_OPTS ]] && FSES=(daxfs daxfs-alt tmpfs)

# The reference and the image's home: the same kind of tmpfs, so both sides have the same pages.
TMPFS_OPTS=size=$(( $(numfmt --from=iec "$SIZE") * 2 / 1048576 + 64 ))m,mode=0755
[[ $PAGES == 2m ]] && TMPFS_OPTS+=,huge=always
MOUNTS+=("$WORK/tmpfs")
mount -t tmpfs -o "$TMPFS_OPTS" daxfs-fio-ref "$WORK/tmpfs"
if [[ $PAGES == 2m ]]; then
	MOUNTS+=("$WORK/img")
	mount -t tmpfs -o "huge=always,mode=0755" daxfs-fio-img "$WORK/img"
	IMG_DIR=$WORK/img
else
	IMG_DIR=/dev/shm
fi
IMAGE_SIZE=$(( $(numfmt --from=iec "$SIZE") * 3 / 1048576 + 256 ))M

PIN=()
[[ -n $PIN_CPU ]] && PIN=(taskset -c "$PIN_CPU")

# mount_daxfs NAME OPTIONS...: format NAME's image and mount it on $WORK/NAME.
mount_daxfs() {
	local name=$1 image=$IMG_DIR/daxfs-fio.$$.$1.img pid
	shift
	IMAGES+=("$image")
	"$MKFS" -q -f -s "$IMAGE_SIZE" "$image" || die "mkfs failed"
	echo "== $name: $*" >>"$RES/daemon.log"
	"${PIN[@]}" "$DAXFS" -f "$@" "$image" "$WORK/$name" 2>>"$RES/daemon.log" &
	pid=$!
	DAEMON_PIDS+=("$pid")
	for _ in $(seq 100); do
		mountpoint -q "$WORK/$name" && break
		kill -0 "$pid" 2>/dev/null || die "$name exited before mounting (see $RES/daemon.log)"
		sleep 0.05
	done
	mountpoint -q "$WORK/$name" || die "$name did not mount"
}
# shellcheck disable=SC2086
mount_daxfs daxfs $DAXFS_OPTS
# shellcheck disable=SC2086
[[ -n $ALT_OPTS ]] && mount_daxfs daxfs-alt $DAXFS_OPTS $ALT_OPTS

{
	echo "date: $(date -Is)"
	echo "commit: $(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet HEAD -- 2>/dev/null || echo ' (dirty tree)')"
	echo "kernel: $(uname -r); cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cpus"
	echo "fio: $(fio --version); libfuse: $(pkg-config --modversion fuse3 2>/dev/null || echo ?)"
	echo "pages: $PAGES (images in $IMG_DIR, reference tmpfs -o $TMPFS_OPTS); daemon options: ${DAXFS_OPTS:-(defaults)}"
	[[ -n $ALT_OPTS ]] && echo "daxfs-alt: the same daemon with ${DAXFS_OPTS:+$DAXFS_OPTS }$ALT_OPTS"
	echo "pipe-max-size: $(cat /proc/sys/fs/pipe-max-size); pin_cpu: ${PIN_CPU:-none}"
	echo "runs=$RUNS warmups=$WARMUPS size=$SIZE rand_time=${RAND_TIME}s; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$RES/env.txt"
cat "$RES/env.txt" >&2

# fio_run FS TEST RUN: one fio run; appends "fs=.. test=.. run=.. metric=value ..." to raw.txt.
fio_run() {
	local fs=$1 test=$2 run=$3 dir=$WORK/$1 out
	local f=$dir/fio.dat
	local args=(--name="$test" --filename="$f" --size="$SIZE" --numjobs=1 --output-format=json)
	out=$RES/json/$fs-$test-$run.json
	case $test in
	seqwrite-over)
		[[ -f $f && $(stat -c %s "$f") -eq $(numfmt --from=iec "$SIZE") ]] ||
			fio "${args[@]}" --rw=write --bs=1M --fallocate=none --end_fsync=1 >/dev/null
		args+=(--rw=write --bs=1M --ioengine=psync --end_fsync=1 --overwrite=1 --fallocate=none) ;;
	seqwrite-new)
		rm -f "$f"
		args+=(--rw=write --bs=1M --ioengine=psync --end_fsync=1 --fallocate=none) ;;
	seqread)
		args+=(--rw=read --bs=1M --ioengine=psync) ;;
	rand4k-qd1 | rand4k-qd16)
		args+=(--rw=randread --bs=4k --ioengine=io_uring --iodepth="${test#rand4k-qd}" --time_based
			--runtime="$RAND_TIME" --norandommap --randrepeat=0) ;;
	*) die "unknown test $test" ;;
	esac
	"${PIN[@]}" fio "${args[@]}" >"$out" || die "fio $fs $test failed (see $out)"
	[[ $run == w* ]] && return 0
	case $test in
	seqwrite-*)
		jq -r --arg fs "$fs" --arg t "$test" --arg r "$run" \
			'"fs=\($fs) test=\($t) run=\($r) gbps=\(.jobs[0].write.bw_bytes / 1e9)"' "$out" ;;
	seqread)
		jq -r --arg fs "$fs" --arg t "$test" --arg r "$run" \
			'"fs=\($fs) test=\($t) run=\($r) gbps=\(.jobs[0].read.bw_bytes / 1e9)"' "$out" ;;
	rand4k-*)
		jq -r --arg fs "$fs" --arg t "$test" --arg r "$run" '.jobs[0].read as $x |
			"fs=\($fs) test=\($t) run=\($r) kiops=\($x.iops / 1e3) lat_us=\($x.clat_ns.mean / 1e3) p50_us=\($x.clat_ns.percentile["50.000000"] / 1e3) p99_us=\($x.clat_ns.percentile["99.000000"] / 1e3)"' "$out" ;;
	esac >>"$RAW"
}

# The seq tests first make the file the others read.
IFS=, read -ra TLIST <<<"$TESTS"
for t in "${TLIST[@]}"; do
	log "$t"
	for w in $(seq "$WARMUPS"); do
		for fs in "${FSES[@]}"; do fio_run "$fs" "$t" "w$w"; done
	done
	for r in $(seq "$RUNS"); do
		for fs in "${FSES[@]}"; do fio_run "$fs" "$t" "$r"; done
	done
	# A read needs a full file: leave one where seqwrite-new may have left none.
	for fs in "${FSES[@]}"; do
		[[ -f $WORK/$fs/fio.dat ]] || fio_run "$fs" seqwrite-over w0
	done
done

# summary FS TEST METRIC: "median min max" of the runs.
summary() {
	awk -v fs="$1" -v t="$2" -v m="$3" '
		{ ok = 0; v = ""
		  for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[1] == "fs" && kv[2] == fs) ok++
			if (kv[1] == "test" && kv[2] == t) ok++; if (kv[1] == m) v = kv[2] }
		  if (ok == 2 && v != "") print v }' "$RAW" | sort -g |
		awk '{ x[n++] = $1 } END { if (!n) { print "- - -"; exit }
		      med = n % 2 ? x[(n - 1) / 2] : (x[n / 2 - 1] + x[n / 2]) / 2
		      printf "%.3g %.3g %.3g\n", med, x[0], x[n - 1] }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.2fx", a / b }'; }

ROWF="%-16s %-8s %22s %22s %7s"
ALTF=" %22s %9s %11s"
{
	cat "$RES/env.txt"
	echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine perturbs results)"
	echo "each cell: median [min-max] of $RUNS runs after $WARMUPS warm-up; ratio = daxfs / tmpfs medians"
	[[ -n $ALT_OPTS ]] && echo "alt/tmpfs = daxfs-alt / tmpfs medians, daxfs/alt = daxfs / daxfs-alt medians"
	echo "(for latencies a ratio above 1 means daxfs is slower)"
	echo
	# shellcheck disable=SC2059
	printf "$ROWF" test metric daxfs tmpfs ratio
	# shellcheck disable=SC2059
	[[ -n $ALT_OPTS ]] && printf "$ALTF" daxfs-alt alt/tmpfs daxfs/alt
	echo
	for t in "${TLIST[@]}"; do
		case $t in
		seq*) metrics="gbps" ;;
		rand*) metrics="kiops lat_us p50_us p99_us" ;;
		esac
		for m in $metrics; do
			read -r dm dlo dhi <<<"$(summary daxfs "$t" "$m")"
			read -r tm tlo thi <<<"$(summary tmpfs "$t" "$m")"
			# shellcheck disable=SC2059
			printf "$ROWF" "$t" "$m" "$dm [$dlo-$dhi]" "$tm [$tlo-$thi]" "$(ratio "$dm" "$tm")"
			if [[ -n $ALT_OPTS ]]; then
				read -r am alo ahi <<<"$(summary daxfs-alt "$t" "$m")"
				# shellcheck disable=SC2059
				printf "$ALTF" "$am [$alo-$ahi]" "$(ratio "$am" "$tm")" "$(ratio "$dm" "$am")"
			fi
			echo
		done
	done
} | tee "$RES/table.txt"

# The README's rows: the same medians, with the condition each row measured.
{
	where=$([[ $PAGES == 2m ]] && echo "2 MiB pages (image and tmpfs huge=always)" || echo "4 KiB pages (image in /dev/shm)")
	for t in "${TLIST[@]}"; do
		case $t in
		seqwrite-over) what="sequential 1 MiB writes over an existing $SIZE file" m=gbps u="GB/s" ;;
		seqwrite-new) what="sequential 1 MiB writes of a new $SIZE file (fresh allocation)" m=gbps u="GB/s" ;;
		seqread) what="sequential 1 MiB reads" m=gbps u="GB/s" ;;
		rand4k-qd1) what="4 KiB random reads, io_uring QD 1" m=kiops u="k IOPS" ;;
		rand4k-qd16) what="4 KiB random reads, io_uring QD 16" m=kiops u="k IOPS" ;;
		esac
		read -r dm dlo dhi <<<"$(summary daxfs "$t" "$m")"
		read -r tm tlo thi <<<"$(summary tmpfs "$t" "$m")"
		echo "| $what, $where | $dm $u ($dlo-$dhi) | tmpfs $tm $u ($tlo-$thi) | $(ratio "$dm" "$tm") |"
	done
} >"$RES/readme.md"

echo
echo "results: $RES"
