#!/usr/bin/env bash
# The daxfs demo on emulated pmem: install what is missing, build, format an image in /dev/shm,
# mount it, show it working, and unmount.  Everything it creates is removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
# Its own build directory, without tests and benchmarks: the demo needs only the programs.
BIN=build-demo
[ -f $BIN/build.ninja ] || meson setup $BIN -Dtests=false -Dbench=false >/dev/null
ninja -C $BIN >/dev/null
IMAGE=/dev/shm/daxfs-demo-$$.img
MNT=$(mktemp -d /tmp/daxfs-demo.XXXXXX)
cleanup() {
	set +e	# best effort: every step runs whatever the others did
	[ -n "${PIN_PID:-}" ] && kill "$PIN_PID" 2>/dev/null
	rm -f "$MNT.pin"
	umount "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null || true
	rmdir "$MNT" 2>/dev/null || true
	rm -f "$IMAGE"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

step "format a 1 GiB emulated-pmem image (a sparse file in /dev/shm)"
run $BIN/tools/mkfs.daxfs -s 1G -L demo "$IMAGE"
run du -h --apparent-size "$IMAGE"
run du -h "$IMAGE"

step "mount it (multi-threaded FUSE daemon, DAX-like direct I/O)"
run $BIN/daxfs/daxfs "$IMAGE" "$MNT"
run findmnt -n -o SOURCE,TARGET,FSTYPE "$MNT"

step "files, directories, links, xattrs"
run mkdir -p "$MNT/docs/notes"
echo "daxfs keeps file data in persistent memory" > "$MNT/docs/readme.txt"
run cat "$MNT/docs/readme.txt"
run ln -s docs/readme.txt "$MNT/link"
run ln "$MNT/docs/readme.txt" "$MNT/docs/hardlink"
run setfattr -n user.origin -v demo "$MNT/docs/readme.txt"
run getfattr -d "$MNT/docs/readme.txt"
run ls -la "$MNT" "$MNT/docs"

step "a sparse file: 1 GiB apparent size, 8 KiB of data"
run truncate -s 1G "$MNT/sparse"
printf 'head' | dd of="$MNT/sparse" conv=notrunc status=none
printf 'tail' | dd of="$MNT/sparse" bs=1 seek=$((1024 * 1024 * 1024 - 4)) conv=notrunc status=none
run du -h --apparent-size "$MNT/sparse"
run du -h "$MNT/sparse"

step "write and read 256 MiB through the mapping"
run dd if=/dev/urandom of="$MNT/big" bs=1M count=256 status=none
run sha256sum "$MNT/big"
run dd if="$MNT/big" of=/dev/null bs=1M status=progress
run df -h "$MNT"

step "pin 2 MiB of a file, as an RDMA NIC registering a DAX buffer would (long-term, writable)"
run dd if=/dev/zero of="$MNT/buffer" bs=1M count=8 status=none
# daxfs-pin holds the pin (and runs a tagged DMA write through it) until signalled.
$BIN/tools/daxfs-pin -w -l -d write -T 42 "$MNT/buffer" 2M 2M >"$MNT.pin" &
PIN_PID=$!
for _ in $(seq 100); do grep -q "dma write" "$MNT.pin" 2>/dev/null && break; sleep 0.05; done
cat "$MNT.pin"
run $BIN/tools/daxfsctl pins "$MNT"

step "truncate the pinned file: the pinned blocks are detached but stay busy, never reallocated"
run df -B4096 --output=used,avail "$MNT"
run truncate -s 0 "$MNT/buffer"
run ls -ls "$MNT/buffer"
run $BIN/tools/daxfsctl busy "$MNT"
run df -B4096 --output=used,avail "$MNT"
echo "(the 512 busy blocks still count as used: no other file can be given them while the device may write)"

step "unpin: the busy extent is reclaimed (zeroed) asynchronously and the space comes back"
kill -INT $PIN_PID
wait $PIN_PID || true
PIN_PID=
tail -1 "$MNT.pin"
rm -f "$MNT.pin"
for _ in $(seq 100); do
	$BIN/tools/daxfsctl busy "$MNT" | grep -q "^0 busy" && break
	sleep 0.02
done
run $BIN/tools/daxfsctl busy "$MNT"
run $BIN/tools/daxfsctl stat "$MNT"
run df -B4096 --output=used,avail "$MNT"

step "unmount, remount: everything is still there"
SUM=$(sha256sum < "$MNT/big")
run umount "$MNT"
run $BIN/daxfs/daxfs "$IMAGE" "$MNT"
[ "$(sha256sum < "$MNT/big")" = "$SUM" ] && echo "big: checksum matches after remount"
run cat "$MNT/link"
run umount "$MNT"

step "check the image"
sleep 0.5
run $BIN/tools/fsck.daxfs -n "$IMAGE"
echo
echo "demo finished"
