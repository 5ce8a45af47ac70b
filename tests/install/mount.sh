#!/usr/bin/env bash
# The installed daemon behind mount(8): mount.fuse3 with daxfs found in PATH; mount -t fuse.daxfs
# with daxfs options, allow_other and ro; /etc/fstab lines through mount -T FILE (by mount point, by
# source, and -a); umount ends the daemon cleanly and leaves the image clean.
#
# mount(8) starts its helpers without PATH (util-linux drops it from the environment), so
# mount.fuse3's /bin/sh finds daxfs in the shell's default directories only, where a real
# installation puts it.  The test therefore runs in a private mount namespace and lays the installed
# tree over PREFIX there (a read-only overlay of DESTDIR/PREFIX on PREFIX): in that namespace daxfs is
# installed, outside nothing changes, and every mount the test makes goes with the namespace.
if [ -z "${DAXFS_TEST_NS:-}" ]; then
	if unshare --mount --propagation private true 2>/dev/null; then
		DAXFS_TEST_NS=1 exec unshare --mount --propagation private "$BASH" "$0" "$@"
	fi
	DAXFS_TEST_NS=none
fi
. "$(dirname "$0")/lib.sh"

need_fuse
MOUNT_FUSE3=$(PATH=$PATH:/usr/sbin:/sbin command -v mount.fuse3) || skip "no mount.fuse3 (Debian package fuse3)"
install_tree
chmod 755 "$T"	# the mount points are in here, and another user must reach them
daxfsctl=$DESTDIR$BINDIR/daxfsctl

new_image img1 mount1
new_image img2 mount2
mnt1=$T/mnt1
mnt2=$T/mnt2
mkdir "$mnt1" "$mnt2"
on_exit "umount -l '$mnt1'; umount -l '$mnt2'"
"$DESTDIR$SBINDIR/mkfs.daxfs" -q -s 64M -L one "$img1" || fail "mkfs.daxfs $img1"
"$DESTDIR$SBINDIR/mkfs.daxfs" -q -s 64M -L two "$img2" || fail "mkfs.daxfs $img2"

# What a mount looks like: type, source, and the policy the daemon got.
expect_mount() {	# mountpoint image policy-json-fragment
	local got
	got=$(findmnt -n -o FSTYPE,SOURCE -M "$1") || fail "$1 is not mounted"
	[ "$(echo $got)" = "fuse.daxfs $2" ] || fail "$1: mounted as '$got', not 'fuse.daxfs $2'"
	got=$("$daxfsctl" --json policy "$1") || fail "daxfsctl policy $1"
	[[ $got == *"$3"* ]] || fail "$1: policy $got, expected $3"
}
# umount ends the daemon, which marks the image clean (superblock state 1, at byte 144).
expect_clean_umount() {	# mountpoint image
	unmount_image "$1" "$2"
	[ "$(od -An -tu4 -j144 -N4 "$2" | tr -d ' ')" = 1 ] || fail "$2 is not marked clean after umount"
	"$DESTDIR$SBINDIR/fsck.daxfs" -n "$2" >/dev/null || fail "fsck.daxfs -n $2 after umount"
}
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }

note "mount.fuse3 runs daxfs from PATH, with the daemon's options"
PATH=$DESTDIR$BINDIR:$PATH "$MOUNT_FUSE3" "$img1" "$mnt1" -t fuse.daxfs -o policy=wait,wait_timeout_ms=100 ||
	fail "mount.fuse3 $img1 $mnt1 -t fuse.daxfs"
expect_mount "$mnt1" "$img1" '"policy":"wait","params":{"pins":"allow","grace_ms":"1000","wait_timeout_ms":"100"}'
echo persistent >"$mnt1/file"
as_nobody stat "$mnt1" >/dev/null 2>&1 && fail "another user reaches $mnt1 without allow_other"
expect_clean_umount "$mnt1" "$img1"

if [ "$DAXFS_TEST_NS" = none ]; then
	skip "mount(8) not tested: no private mount namespace (unshare --mount) to install daxfs in"
fi
helper_path=$(env -i /bin/sh -c 'echo "$PATH"')
[[ :$helper_path: == *:"$BINDIR":* ]] ||
	skip "mount(8) not tested: mount.fuse3 finds daxfs in $helper_path, and it installs to $BINDIR"
mount -t overlay daxfs-install -o "lowerdir=$DESTDIR$PREFIX:$PREFIX" "$PREFIX" ||
	skip "mount(8) not tested: cannot lay the installed tree over $PREFIX (overlayfs)"
[ "$(env -i /bin/sh -c 'command -v daxfs')" = "$BINDIR/daxfs" ] || fail "the overlay does not show $BINDIR/daxfs"

note "mount -t fuse.daxfs IMAGE MOUNTPOINT -o policy=busy,allow_other; umount"
mount -t fuse.daxfs "$img1" "$mnt1" -o policy=busy,allow_other || fail "mount -t fuse.daxfs"
expect_mount "$mnt1" "$img1" '"policy":"busy"'
[[ $(findmnt -n -o OPTIONS -M "$mnt1") == *allow_other* ]] || fail "allow_other did not reach the kernel"
[ "$(as_nobody cat "$mnt1/file")" = persistent ] || fail "another user cannot read $mnt1/file with allow_other"
expect_clean_umount "$mnt1" "$img1"

note "mount -t fuse.daxfs -o ro"
mount -t fuse.daxfs -o ro "$img1" "$mnt1" || fail "mount -o ro"
[[ $(findmnt -n -o OPTIONS -M "$mnt1") == ro,* ]] || fail "not mounted read-only: $(findmnt -n -o OPTIONS -M "$mnt1")"
touch "$mnt1/new" 2>/dev/null && fail "created a file on a read-only mount"
[ "$(cat "$mnt1/file")" = persistent ] || fail "cannot read $mnt1/file read-only"
expect_clean_umount "$mnt1" "$img1"

note "/etc/fstab lines, through mount -T FILE"
fstab=$T/fstab
cat >"$fstab" <<EOF
# daxfs: the daemon's options, generic and fstab-only ones together
$img1	$mnt1	fuse.daxfs	defaults,noauto,nofail,_netdev,x-systemd.automount,noatime,relatime,nodiratime,nosuid,nodev,policy=revoke,grace_ms=250,allow_other	0 0
$img2	$mnt2	fuse.daxfs	policy=fail,pins=deny-longterm,max_pins=100,cache=page	0 2
EOF
mount -T "$fstab" "$mnt1" || fail "mount -T fstab $mnt1 (by mount point)"
expect_mount "$mnt1" "$img1" '"policy":"revoke","params":{"pins":"allow","grace_ms":"250"'
opts=$(findmnt -n -o OPTIONS -M "$mnt1")
for o in nosuid nodev noatime allow_other; do
	[[ ,$opts, == *,$o,* ]] || fail "$o did not reach the kernel: $opts"
done
mount -T "$fstab" "$img2" || fail "mount -T fstab $img2 (by source)"
expect_mount "$mnt2" "$img2" '"policy":"fail","params":{"pins":"deny-longterm"'
expect_clean_umount "$mnt1" "$img1"
expect_clean_umount "$mnt2" "$img2"

note "mount -a -T FILE mounts the entries without noauto"
mount -a -T "$fstab" || fail "mount -a -T fstab"
mounted "$mnt1" && fail "mount -a mounted a noauto entry"
expect_mount "$mnt2" "$img2" '"policy":"fail"'
expect_clean_umount "$mnt2" "$img2"
