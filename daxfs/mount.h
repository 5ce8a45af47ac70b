/* SPDX-License-Identifier: MIT */
/*
 * Mount and unmount: from a validated image to a live file system (journal replayed, orphans
 * recovered, busy extents queued), the workers started and stopped, and back to a clean image.
 */
#ifndef DAXFS_MOUNT_H
#define DAXFS_MOUNT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fs.h"
#include "policy.h"

struct mount_config {
	bool readonly;
	bool norecovery;	/* leave the clean flag and the orphans alone (the checker) */
	bool private_map;	/* copy-on-write mapping: nothing reaches the image (fsck -n) */
	bool shared;		/* do not take the exclusive image lock (fsck -n of a mounted image) */
	bool backup_sb;		/* use the superblock copy in the last block */
	bool noreplay;		/* ignore the journal (a corrupt one, for the checker) */
	bool noorphans;		/* start with an empty orphan list (a corrupt one, for the checker) */
	const char *policy;		/* a built-in policy's name or a .so path; NULL = busy */
	const char *policy_params;	/* "key=value,..." */
	struct policy_limits limits;
	const char *trace;		/* trace file, or NULL */
	bool reclaim_discard;		/* punch reclaimed blocks out of the image file */
	bool reclaim_at_mount;		/* recover=reclaim: no crash quarantine, reclaim every busy extent */
	uint64_t enospc_wait_ms;	/* how long an allocation waits for reclaim in flight */
	/* Where corruption reports go; NULL prints them to stderr. */
	void (*report)(void *arg, const char *msg);
	void *report_arg;
};

/* Open, check and recover the image.  Returns 0 with *out, or -errno with a message in err. */
int mount_open(struct fs **out, const char *image, const struct mount_config *cfg, char *err, size_t errlen);
/*
 * Start the workers (reclaim, the policy's).  Separate from mount_open so a daemon can fork in
 * between.  Returns 0 or -errno.
 */
int mount_start(struct fs *fs);
/*
 * Fail the requests still waiting, drop every pin, drain reclaim, write back, mark the image clean
 * (unless read-only or aborted) and free fs.  The caller holds no lock and nothing else uses fs
 * any more (the FUSE session is over).
 *
 * Pin owners are the caller's, and mount_close does not free what is theirs: release each one
 * first (policy_release_owner, as the daemon's fuse_ops_release_all does) and nothing is left.
 * An owner that was not released loses its pins here, but keeps a DROPPED event for each (queued
 * by pin_release_all, and signalled if the pin asked for it), which nobody can read any more: the
 * caller frees them with pin_owner_destroy after mount_close returns (no lock needed then) before
 * it frees or reuses the owner.  The quarantine's owners (ghosts) are the mount's and go with it.
 */
void mount_close(struct fs *fs);

#endif
