#!/usr/bin/env bash
# Long work shows progress on a terminal and nothing elsewhere, as mkfs.ext4 and e2fsck do:
# mkfs.daxfs on a 1 TiB image (40 MiB of bitmaps to zero) and fsck.daxfs on a 64 GiB one (2^24
# blocks) print a progress line on stderr under a pty (script(1)), erased when done; with stderr
# not a terminal, with -q (mkfs) or with -p (fsck) they print nothing there.
#
#   progress.sh MKFS FSCK
. "$(dirname "$0")/lib.sh"

mkfs=$1 fsck=$2
new_image big progress-1t
new_image img progress-64g

# Run a command under a pseudo-terminal; its output (stdout and stderr: one terminal) in $T/tty.
on_tty() {
	script -qec "$*" /dev/null >"$T/tty" </dev/null || fail "under script(1): $*: $(cat -v "$T/tty")"
}
# A progress line: "WHAT:  NN%" after a carriage return, and its erasure, spaces between two.
expect_progress() {	# what command...
	local what=$1
	shift
	on_tty "$@"
	grep -q $'\r'"$what: *[0-9]*%" "$T/tty" || fail "no '$what: N%' progress on a terminal: $(cat -v "$T/tty")"
	grep -q $'\r *\r' "$T/tty" || fail "the progress line was not erased: $(cat -v "$T/tty")"
}
expect_no_progress_tty() {	# command...
	on_tty "$@"
	grep -q '%' "$T/tty" && fail "progress shown with: $*: $(cat -v "$T/tty")"
	return 0
}

note "mkfs.daxfs: quiet on stderr when it is not a terminal"
"$mkfs" -s 1T "$big" >"$T/out" 2>"$T/err" || fail "mkfs.daxfs -s 1T: $(cat "$T/err")"
[ -s "$T/err" ] && fail "mkfs.daxfs wrote to a stderr that is not a terminal: $(cat -v "$T/err")"
grep -q "268435456 blocks" "$T/out" || fail "mkfs.daxfs -s 1T: $(cat "$T/out")"

"$mkfs" -q -s 64G "$img" || fail "mkfs.daxfs -s 64G"
note "fsck.daxfs: quiet on stderr when it is not a terminal"
"$fsck" -n "$img" >"$T/out" 2>"$T/err" || fail "fsck.daxfs -n on 64 GiB: $(cat "$T/out" "$T/err")"
[ -s "$T/err" ] && fail "fsck.daxfs wrote to a stderr that is not a terminal: $(cat -v "$T/err")"

command -v script >/dev/null || skip "the terminal half needs script(1) (util-linux)"
note "mkfs.daxfs on a terminal"
expect_progress "zeroing bitmaps" "'$mkfs' -f -s 1T '$big'"
expect_no_progress_tty "'$mkfs' -q -f -s 1T '$big'"
note "fsck.daxfs on a terminal"
expect_progress "pass 1 of 4, inodes" "'$fsck' -n '$img'"
for pass in "pass 2 of 4, directories" "pass 3 of 4, link counts" "pass 4 of 4, block bitmap"; do
	grep -q $'\r'"$pass: *[0-9]*%" "$T/tty" || fail "no progress for '$pass': $(cat -v "$T/tty")"
done
expect_no_progress_tty "'$fsck' -p '$img'"
note "small images show none"
"$mkfs" -q -f -s 64M "$img"
expect_no_progress_tty "'$mkfs' -f -s 64M '$img'"
expect_no_progress_tty "'$fsck' -n '$img'"
