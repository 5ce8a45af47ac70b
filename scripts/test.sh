#!/usr/bin/env bash
# Install what is missing, build, and run every test: once in a normal build and once under
# AddressSanitizer + UndefinedBehaviorSanitizer (the daemon the integration tests mount is the
# sanitized one, so a memory error or a leak in it fails the run).  Suites: unit, integration,
# crash (crash sweep, corruption campaign, fuzz corpus), install (meson install into a DESTDIR,
# pkg-config, mount -t fuse.daxfs and fstab, fsck -t daxfs, progress; the layout check in the normal
# build only), man (the man pages; normal build only); in the normal build the integration suite a
# second time over FUSE over io_uring (DAXFS_TEST_TRANSPORT=uring), enable_uring on and restored.  Not run here: the long crash sweep (meson test -C build --suite long; plain
# "meson test" leaves it out) and fuzzing (scripts/fuzz.sh SECONDS).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh

setup() {	# dir, extra meson args...
	local dir=$1
	shift
	if [ -f "$dir/build.ninja" ]; then
		meson setup --reconfigure "$dir" "$@" >/dev/null
	else
		meson setup "$dir" "$@" >/dev/null
	fi
}

setup build
ninja -C build
meson test -C build --print-errorlogs --num-processes 2

# The integration suite once more with every mount over FUSE over io_uring (-o transport=uring),
# when the kernel has it: the module parameter is turned on for the pass and restored after.
param=/sys/module/fuse/parameters/enable_uring
if [ -w "$param" ]; then
	was=$(cat "$param")
	trap 'echo "$was" > "$param"' EXIT
	echo Y > "$param"
	DAXFS_TEST_TRANSPORT=uring meson test -C build --print-errorlogs --num-processes 2 --suite integration
	echo "$was" > "$param"
	trap - EXIT
else
	echo "FUSE over io_uring: no $param to turn on (not root, or a kernel without it): io_uring pass skipped"
fi

setup build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dbench=false \
	-Dc_args=-fno-sanitize-recover=all -Dbuildtype=debug
ninja -C build-asan
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	meson test -C build-asan --print-errorlogs --num-processes 2 --timeout-multiplier 3
echo "all tests passed (normal and sanitizer builds)"
