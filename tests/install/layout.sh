#!/usr/bin/env bash
# meson install puts everything where a Linux file-system package does: the programs in bindir and
# sbindir (and fsck.fuse.daxfs for fsck(8)), the headers in include/daxfs, libdaxfs.so with a
# soname and only daxfs_* exported, libdaxfs.a, daxfs.pc and daxfs-policy.pc, and the man pages in
# their sections.
# The installed programs run from there.
. "$(dirname "$0")/lib.sh"

install_tree
bindir=$DESTDIR$BINDIR sbindir=$DESTDIR$SBINDIR libdir=$DESTDIR$LIBDIR
incdir=$DESTDIR$INCLUDEDIR/daxfs mandir=$DESTDIR$MANDIR

for f in "$bindir"/daxfs "$bindir"/daxfsctl "$bindir"/daxfs-pin "$bindir"/daxfs-lab "$bindir"/daxfs-lab-plot \
	"$sbindir"/mkfs.daxfs "$sbindir"/fsck.daxfs; do
	[ -x "$f" ] || fail "not installed: ${f#"$DESTDIR"}"
done
[ "$(readlink "$sbindir/fsck.fuse.daxfs")" = fsck.daxfs ] || fail "sbindir/fsck.fuse.daxfs is not a link to fsck.daxfs"
for h in format.h ioctl.h libdaxfs.h device.h detect.h policy.h; do
	[ -f "$incdir/$h" ] || fail "not installed: include/daxfs/$h"
done

# The shared library: a versioned file, the soname link, the development link; the soname inside.
so=$(cd "$libdir" && ls libdaxfs.so.*.*.*) || fail "no libdaxfs.so.X.Y.Z in ${libdir#"$DESTDIR"}"
soname=$(readelf -d "$libdir/$so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
case $soname in libdaxfs.so.[0-9]*) ;; *) fail "soname '$soname' is not libdaxfs.so.N" ;; esac
[ "$(readlink -f "$libdir/$soname")" = "$(readlink -f "$libdir/$so")" ] || fail "$soname does not lead to $so"
[ "$(readlink -f "$libdir/libdaxfs.so")" = "$(readlink -f "$libdir/$so")" ] || fail "libdaxfs.so does not lead to $so"
[ -f "$libdir/libdaxfs.a" ] || fail "no static archive libdaxfs.a"
# Exported: the daxfs_* functions of libdaxfs.h, under the library's symbol version.
exported=$(nm -D --defined-only "$libdir/$so" | awk '$2 ~ /[TtDdBbRrWwVv]/ && $3 !~ /^LIBDAXFS_/ {print $3}' | sed 's/@.*//')
for fn in $(sed -n 's/^[a-z].* \**\(daxfs_[a-z_]*\)(.*/\1/p' "$incdir/libdaxfs.h"); do
	grep -qx "$fn" <<<"$exported" || fail "libdaxfs.so does not export $fn"
done
stray=$(grep -v '^daxfs_' <<<"$exported" | grep -v '^__\|^_init$\|^_fini$\|^_end$\|^_edata$\|^__bss_start$' || true)
[ -z "$stray" ] || fail "libdaxfs.so exports more than daxfs_*: $stray"
nm -D --defined-only "$libdir/$so" | grep -q ' daxfs_pin@@LIBDAXFS_' || fail "daxfs_pin has no LIBDAXFS_ symbol version"

# pkg-config: the .pc file, pointing into the installed tree.
pc=$DESTDIR$LIBDIR/pkgconfig/daxfs.pc
[ -f "$pc" ] || fail "no daxfs.pc in ${LIBDIR}/pkgconfig"
use_installed_pc
[ "$(pkg-config --modversion daxfs)" = "$VERSION" ] || fail "daxfs.pc version $(pkg-config --modversion daxfs), not $VERSION"
grep -q -- "-ldaxfs" <<<"$(pc_libs)" || fail "pkg-config --libs daxfs: $(pc_libs)"
# The policy interface: compile flags, no library (the daemon provides what a policy calls).
[ -f "$DESTDIR$LIBDIR/pkgconfig/daxfs-policy.pc" ] || fail "no daxfs-policy.pc in ${LIBDIR}/pkgconfig"
[ -z "$(pkg-config --libs daxfs-policy)" ] || fail "daxfs-policy.pc names libraries: $(pkg-config --libs daxfs-policy)"

# Every installed header compiles on its own, with nothing but the pkg-config flags.
for h in format.h ioctl.h libdaxfs.h device.h detect.h policy.h; do
	echo "#include <daxfs/$h>" >"$T/${h%.h}.c"
done
# shellcheck disable=SC2046,SC2086
$CC -std=c11 -Wall -Wextra -Werror -fsyntax-only "$T"/format.c "$T"/ioctl.c "$T"/libdaxfs.c "$T"/device.c "$T"/detect.c \
	"$T"/policy.c $(pc_cflags) ||
	fail "an installed header does not compile on its own"

# Man pages, in their sections, found by man(1) under the installed prefix.
if [ "$HAVE_MAN" = 1 ] && command -v man >/dev/null; then
	pages=(daxfs.8 mkfs.daxfs.8 fsck.daxfs.8 daxfsctl.8 daxfs-pin.1 daxfs-lab.1 libdaxfs.3 daxfs-ioctl.7 daxfs-policy.7)
	expected=$(for page in "${pages[@]}"; do echo "$mandir/man${page##*.}/$page"; done)
	found=$(MANPATH=$mandir man -w "${pages[@]%.*}" 2>&1) || fail "man -w: $found"
	[ "$found" = "$expected" ] || fail "man -w finds: $found; expected: $expected"
else
	note "man pages not built (no scdoc) or no man(1): not checked"
fi

# The installed programs run from the installed tree (the tools link libdaxfs statically).
"$bindir/daxfs" --version | grep -q "^daxfs $VERSION" || fail "installed daxfs --version"
for p in "$bindir"/daxfsctl "$bindir"/daxfs-pin "$bindir"/daxfs-lab "$sbindir"/mkfs.daxfs "$sbindir"/fsck.daxfs; do
	"$p" -h >/dev/null || fail "installed ${p##*/} -h"
done
"$bindir/daxfs-lab" list | grep -q '^  truncate-under-dma ' || fail "installed daxfs-lab list"
"$bindir/daxfs-lab-plot" --help | grep -q 'usage: daxfs-lab-plot DIR' || fail "installed daxfs-lab-plot --help"
new_image img layout
"$sbindir/mkfs.daxfs" -q -s 64M "$img" || fail "installed mkfs.daxfs"
"$sbindir/fsck.daxfs" -n "$img" >/dev/null || fail "installed fsck.daxfs -n on a new image"
note "installed: $(cd "$DESTDIR" && find . ! -type d | sort | tr '\n' ' ')"
