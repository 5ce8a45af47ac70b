#!/usr/bin/env bash
# An out-of-tree policy built against the installed tree with nothing but its own Makefile and
# pkg-config: examples/policy-quota, copied as a user would copy it, built with `make` against
# daxfs-policy.pc (the installed <daxfs/policy.h>, no library), loads into the installed daemon at
# mount (-o policy=/abs/quota.so) and at run time (daxfsctl policy); so does the example of
# daxfs-policy(7).
. "$(dirname "$0")/lib.sh"

need_fuse
install_tree
umask 022	# the daemon loads only an object nobody but its owner may write

export PKG_CONFIG_PATH=$DESTDIR$LIBDIR/pkgconfig PKG_CONFIG_SYSROOT_DIR=$DESTDIR
# Keep -I even for the system's own include directory (a prefix of /usr): it is in the DESTDIR here.
export PKG_CONFIG_ALLOW_SYSTEM_CFLAGS=1
pkg-config --exists daxfs-policy || fail "pkg-config does not find daxfs-policy.pc in ${LIBDIR}/pkgconfig"
[ "$(pkg-config --modversion daxfs-policy)" = "$VERSION" ] || fail "daxfs-policy.pc version $(pkg-config --modversion daxfs-policy)"
[[ $(pkg-config --cflags daxfs-policy) == *"-I$DESTDIR$INCLUDEDIR"* ]] ||
	fail "pkg-config --cflags daxfs-policy: $(pkg-config --cflags daxfs-policy)"
[ -z "$(pkg-config --libs daxfs-policy)" ] || fail "daxfs-policy.pc names libraries: $(pkg-config --libs daxfs-policy)"

note "examples/policy-quota, built out of the tree with its Makefile"
cp -r "$SOURCE_ROOT/examples/policy-quota" "$T/policy-quota"
rm -f "$T/policy-quota/quota.so"
make -C "$T/policy-quota" CC="$CC" CFLAGS="-O2 -g -Wall -Wextra -Werror" >"$T/make.log" 2>&1 ||
	{ cat "$T/make.log" >&2; fail "make in a copy of examples/policy-quota"; }
so=$T/policy-quota/quota.so
[ -f "$so" ] || fail "the Makefile built no quota.so"
nm -D --defined-only "$so" | grep -q ' daxfs_policy$' || fail "quota.so exports no daxfs_policy"

new_image img policy
mnt=$T/mnt
mkdir "$mnt"
daxfsctl=$DESTDIR$BINDIR/daxfsctl
"$DESTDIR$SBINDIR/mkfs.daxfs" -q -s 64M "$img" || fail "mkfs.daxfs"

note "loaded at mount: -o policy=$so"
on_exit "umount -l '$mnt'"
"$DESTDIR$BINDIR/daxfs" -o "policy=$so,per_holder=4M" "$img" "$mnt" || fail "daxfs -o policy=$so"
got=$("$daxfsctl" --json policy "$mnt") || fail "daxfsctl policy $mnt"
[[ $got == *'"policy":"quota"'* && $got == *'"per_holder":"4M"'* && $got == *'"loaded":true'* ]] ||
	fail "the mount's policy: $got"

note "loaded at run time: daxfsctl policy MOUNTPOINT $so"
"$daxfsctl" policy "$mnt" busy >/dev/null || fail "daxfsctl policy $mnt busy"
"$daxfsctl" policy "$mnt" "$so" per_holder=2M >/dev/null || fail "daxfsctl policy $mnt $so"
got=$("$daxfsctl" --json policy "$mnt") || fail "daxfsctl policy $mnt"
[[ $got == *'"policy":"quota"'* && $got == *'"per_holder":"2M"'* ]] || fail "after daxfsctl policy: $got"

note "the example of daxfs-policy(7), built as the page says"
sed -n '/^# EXAMPLES/,/^# SEE ALSO/p' "$SOURCE_ROOT/man/daxfs-policy.7.scd" |
	sed -n '/^#include <daxfs\/policy.h>/,/^```/p' | sed '$d' >"$T/patient.c"
[ -s "$T/patient.c" ] || fail "no example policy found in man/daxfs-policy.7.scd"
# shellcheck disable=SC2046
$CC -std=gnu11 -Wall -Wextra -Werror -shared -fPIC $(pkg-config --cflags daxfs-policy) "$T/patient.c" \
	-o "$T/patient.so" || fail "the example of daxfs-policy(7) does not build"
"$daxfsctl" policy "$mnt" "$T/patient.so" patience_ms=50 >/dev/null || fail "daxfsctl policy $mnt $T/patient.so"
got=$("$daxfsctl" --json policy "$mnt") || fail "daxfsctl policy $mnt"
[[ $got == *'"policy":"patient"'* && $got == *'"patience_ms":"50"'* ]] || fail "after loading the example: $got"

unmount_image "$mnt" "$img"
"$DESTDIR$SBINDIR/fsck.daxfs" -n "$img" >/dev/null || fail "fsck.daxfs -n after the policy's mount"
