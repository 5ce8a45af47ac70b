#!/usr/bin/env bash
# A program built against the installed tree with nothing but pkg-config works on a real mount:
# tests/install/client.c linked with libdaxfs.so (pkg-config --cflags --libs daxfs) and with
# libdaxfs.a (pkg-config --static), and the example of libdaxfs(3), as printed there.
. "$(dirname "$0")/lib.sh"

need_fuse
install_tree
use_installed_pc
cflags="-std=gnu11 -Wall -Wextra -Werror $SANITIZE_CFLAGS $(pc_cflags)"

new_image img pkgconfig
mnt=$T/mnt
mkdir "$mnt"
"$DESTDIR$SBINDIR/mkfs.daxfs" -q -s 64M -L pkgconfig "$img" || fail "mkfs.daxfs"
on_exit "umount -l '$mnt'"
"$DESTDIR$BINDIR/daxfs" "$img" "$mnt" || fail "daxfs $img $mnt"
mounted "$mnt" || fail "daxfs returned but $mnt is not mounted"
dd if=/dev/urandom of="$mnt/file" bs=64K count=16 status=none

needs_libdaxfs() { readelf -d "$1" | grep -q 'NEEDED.*\[libdaxfs\.so\.'; }

note "the client, linked with libdaxfs.so"
# shellcheck disable=SC2086
$CC $cflags "$SOURCE_ROOT/tests/install/client.c" $(pc_libs) -o "$T/client-shared" || fail "cannot build the client"
needs_libdaxfs "$T/client-shared" || fail "the client is not linked with libdaxfs.so"
LD_LIBRARY_PATH=$DESTDIR$LIBDIR "$T/client-shared" "$mnt" "$img" pkgconfig "$mnt/file" || fail "the client (shared)"

note "the client, linked with libdaxfs.a"
# shellcheck disable=SC2086
$CC $cflags "$SOURCE_ROOT/tests/install/client.c" -Wl,-Bstatic $(pc_libs --static) -Wl,-Bdynamic \
	-o "$T/client-static" || fail "cannot build the client against libdaxfs.a"
needs_libdaxfs "$T/client-static" && fail "the static client still needs libdaxfs.so"
"$T/client-static" "$mnt" "$img" pkgconfig "$mnt/file" || fail "the client (static)"

if [ "$HAVE_MAN" = 1 ]; then
	note "the example of libdaxfs(3)"
	# The C program of the EXAMPLES section, unescaped as scdoc prints it.
	sed -n '/^#include <fcntl.h>/,/^```/p' "$SOURCE_ROOT/man/libdaxfs.3.scd" | sed -e '$d' -e 's/\\\\/\\/g' >"$T/example.c"
	[ -s "$T/example.c" ] || fail "no example program found in man/libdaxfs.3.scd"
	# shellcheck disable=SC2086
	$CC $cflags "$T/example.c" $(pc_libs) -o "$T/example" || fail "the example of libdaxfs(3) does not build"
	out=$(LD_LIBRARY_PATH=$DESTDIR$LIBDIR "$T/example" "$mnt/file") || fail "the example of libdaxfs(3) failed"
	grep -q "^file 0: media [0-9]*, [0-9]* bytes$" <<<"$out" || fail "the example printed: $out"
fi

unmount_image "$mnt" "$img"
"$DESTDIR$SBINDIR/fsck.daxfs" -n "$img" >/dev/null || fail "fsck.daxfs -n after the clients"
