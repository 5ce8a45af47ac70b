#!/usr/bin/env bash
# mkfs(8) and fsck(8) run the installed mkfs.daxfs and fsck.daxfs (found through PATH, after the
# system directories), and fsck's exit codes and -n/-y/-p hold through fsck(8): on a clean image, on
# one with a leaked block (a block-bitmap bit set for a block nothing owns), for a usage error and a
# missing image; and fsck -A checks a fuse.daxfs line of an fstab through fsck.fuse.daxfs.  No FUSE
# needed.
. "$(dirname "$0")/lib.sh"

install_tree
export PATH=$DESTDIR$SBINDIR:$PATH
command -v fsck >/dev/null || skip "no fsck(8) (util-linux)"
new_image img fsck

# fsck(8) (-T: no title) with fsck.daxfs's options; sets rc and out.
run_fsck() {
	rc=0
	out=$(fsck -T "$@" 2>&1) || rc=$?
}
expect() {	# exit-code what
	[ "$rc" = "$1" ] || fail "$2: exit $rc, expected $1; output: $out"
}

# Mark a data block nothing owns as in use in the block bitmap: a leaked block.  Superblock fields
# (include/daxfs/format.h): block_size at byte 16, bbitmap_start at 72, backup_sb at 112.
leak_block() {
	local bs bbm backup blk off byte
	bs=$(od -An -tu4 -j16 -N4 "$img" | tr -d ' ')
	bbm=$(od -An -tu8 -j72 -N8 "$img" | tr -d ' ')
	backup=$(od -An -tu8 -j112 -N8 "$img" | tr -d ' ')
	blk=$((backup - 1))	# the last data block, free on a new image
	off=$((bbm * bs + blk / 8))
	byte=$(od -An -tu1 -j"$off" -N1 "$img" | tr -d ' ')
	(((byte >> (blk % 8)) & 1)) && fail "block $blk is already marked in use"
	# shellcheck disable=SC2059
	printf "$(printf '\\%03o' $((byte | 1 << (blk % 8))))" |
		dd of="$img" bs=1 seek="$off" conv=notrunc status=none
}

note "mkfs -t daxfs"
out=$(mkfs -t daxfs -s 64M -L fsck "$img" 2>&1) || fail "mkfs -t daxfs: $out"
grep -q "label fsck" <<<"$out" || fail "mkfs -t daxfs did not run mkfs.daxfs: $out"

note "a clean image: 0 whatever the mode"
for mode in -n -y -p -a; do
	run_fsck -t daxfs "$mode" "$img"
	expect 0 "fsck -t daxfs $mode (clean)"
done
[ -z "$out" ] || fail "fsck -p on a clean image printed: $out"

note "a leaked block: -n finds it (4), -p repairs it quietly (1), then clean (0)"
leak_block
run_fsck -t daxfs -n "$img"
expect 4 "fsck -t daxfs -n (leaked block)"
grep -q "1 blocks are marked in use but owned by nothing (leaked)" <<<"$out" || fail "fsck -n did not report the leak: $out"
run_fsck -t daxfs -n "$img"
expect 4 "fsck -t daxfs -n again (-n changed the image)"
run_fsck -t daxfs -p "$img"
expect 1 "fsck -t daxfs -p (leaked block)"
[ -z "$out" ] || fail "fsck -p printed what it repaired: $out"
run_fsck -t daxfs -n "$img"
expect 0 "fsck -t daxfs -n after -p"

note "again with -y, which says what it did"
leak_block
run_fsck -t daxfs -y "$img"
expect 1 "fsck -t daxfs -y (leaked block)"
grep -q "leaked" <<<"$out" || fail "fsck -y did not report the leak: $out"
grep -q "0 problems left, 1 repaired" <<<"$out" || fail "fsck -y summary: $out"
run_fsck -t daxfs -n "$img"
expect 0 "fsck -t daxfs -n after -y"

note "usage and operational errors: 16 and 8"
run_fsck -t daxfs -n -y "$img"
expect 16 "fsck -t daxfs -n -y (two modes)"
run_fsck -t daxfs -n "$T/no-such-image"
expect 8 "fsck -t daxfs -n on a missing image"

note "fsck -A checks fuse.daxfs lines of fstab (through fsck.fuse.daxfs)"
printf '%s  %s  fuse.daxfs  policy=busy,allow_other  0  2\n' "$img" "$T/mnt" >"$T/fstab"
leak_block
rc=0
out=$(LIBMOUNT_FSTAB=$T/fstab fsck -A -T -n 2>&1) || rc=$?
expect 4 "fsck -A -n with a damaged fuse.daxfs line"
rc=0
out=$(LIBMOUNT_FSTAB=$T/fstab fsck -A -T -p 2>&1) || rc=$?
expect 1 "fsck -A -p with a damaged fuse.daxfs line"
run_fsck -t daxfs -n "$img"
expect 0 "fsck -t daxfs -n after fsck -A -p"
