# shellcheck shell=bash
# Shared by the install tests: a scratch directory, cleanup that runs however the test ends, an
# installation into a DESTDIR, and waiting for conditions with a deadline.
#
# meson passes the build's layout in the environment: MESON, SOURCE_ROOT, BUILD_ROOT, VERSION, PREFIX,
# BINDIR, SBINDIR, LIBDIR, INCLUDEDIR, MANDIR (absolute), FUSE_PROBE, CC, SANITIZE_CFLAGS, HAVE_MAN.
set -euo pipefail

T=$(mktemp -d /tmp/daxfs-install-test.XXXXXX)
CLEANUP=()	# commands, run last first

cleanup() {
	local rc=$? i
	set +e	# best effort: every step runs whatever the others did
	trap - EXIT INT TERM
	for ((i = ${#CLEANUP[@]} - 1; i >= 0; i--)); do
		eval "${CLEANUP[i]}" >/dev/null 2>&1
	done
	rm -rf "$T"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
on_exit() { CLEANUP+=("$*"); }

fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "SKIP: $*"; exit 77; }
note() { echo "-- $*"; }

# The test needs to mount FUSE file systems: skip (77) when this machine cannot.
need_fuse() {
	local why
	why=$("$FUSE_PROBE") || skip "$why"
}

# A fresh image path in /dev/shm, in variable VAR, removed at exit.  (Not img=$(new_image ...):
# the cleanup registered in a command substitution's subshell would be lost.)
new_image() {	# VAR name
	local new_image_path=/dev/shm/daxfs-install-$$-$2.img
	on_exit "rm -f '$new_image_path'"
	printf -v "$1" %s "$new_image_path"
}

# Run the build's "meson install" into $T/dest; D is the installed prefix seen from here.
install_tree() {
	DESTDIR=$T/dest
	"$MESON" install -C "$BUILD_ROOT" --no-rebuild --quiet --destdir "$DESTDIR" >"$T/install.log" 2>&1 ||
		{ cat "$T/install.log" >&2; fail "meson install failed"; }
	D=$DESTDIR$PREFIX
}

# Wait until a command succeeds, polling, for at most SECONDS.
wait_until() {	# seconds command...
	local deadline=$((SECONDS + $1))
	shift
	until "$@"; do
		((SECONDS < deadline)) || return 1
		sleep 0.02
	done
}

mounted() { findmnt -n -M "$1" >/dev/null 2>&1; }
# A daemon holds an exclusive lock on its image until it has written it back and exited.
image_free() { flock -n -x "$1" true; }

# Unmount and wait for the daemon to let go of the image.
unmount_image() {	# mountpoint image
	umount "$1" || fail "umount $1"
	wait_until 30 image_free "$2" || fail "the daemon did not release $2 within 30 s of umount"
}

# pkg-config answers from the installed daxfs.pc, with paths into the DESTDIR.
use_installed_pc() {
	export PKG_CONFIG_PATH=$DESTDIR$LIBDIR/pkgconfig PKG_CONFIG_SYSROOT_DIR=$DESTDIR
	pkg-config --exists daxfs || fail "pkg-config does not find daxfs.pc in ${LIBDIR}/pkgconfig"
}

# pkg-config leaves out the system's own directories (a prefix of /usr): put them back, in the DESTDIR.
pc_cflags() {
	local f
	f=$(pkg-config --cflags daxfs)
	[[ $f == *"$DESTDIR"* ]] || f+=" -I$DESTDIR$INCLUDEDIR"
	echo "$f"
}
pc_libs() {	# extra pkg-config arguments (--static)
	local f
	f=$(pkg-config --libs "$@" daxfs)
	[[ $f == *"$DESTDIR"* ]] || f="-L$DESTDIR$LIBDIR $f"
	echo "$f"
}
