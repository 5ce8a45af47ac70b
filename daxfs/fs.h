/* SPDX-License-Identifier: MIT */
/*
 * The mounted file system: what every layer from the inodes up shares (the image, the inode cache,
 * the orphan list, the busy tree and reclaim).  Each module has its own header; this one defines
 * struct fs and the lock order.
 *
 * Lock order (never taken in the other direction):
 *   fs->ns_lock                  namespace changes: create, link, unlink, rename, rmdir; orphans
 *   inode->lock                  one inode's attributes, extents, directory and xattrs; several
 *                                inodes are locked together only under ns_lock
 *   pins.lock                    pin table and media reference counts (mmap_pin.h)
 *   busy.lock                    busy extents and the reclaim queue (extent_busy.h)
 *   pol_lock, slot list locks, icache_lock, ino_lock, allocator, journal    leaves
 * Nothing waits for a pin to drop while holding ns_lock or an inode lock.
 * A transaction that changes an inode commits before that inode's lock is dropped.
 */
#ifndef DAXFS_FS_H
#define DAXFS_FS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "daxfs/format.h"
#include "extent_busy.h"
#include "reclaim.h"
#include "sbi.h"
#include "slots.h"
#include "trace.h"

struct policy;

/* Who is asking: the request's credentials, for ownership of new objects. */
struct cred {
	uint32_t uid;
	uint32_t gid;
	pid_t pid;
	const gid_t *groups;	/* supplementary groups, when known */
	int ngroups;
};

struct fs {
	struct sbi sbi;
	pthread_mutex_t ns_lock;

	pthread_mutex_t icache_lock;
	struct inode **buckets;
	size_t nbuckets;
	size_t ncached;

	pthread_mutex_t ino_lock;	/* inode numbers: taken (in use, reserved or not yet forgotten) */
	uint64_t *ino_map;
	uint64_t ino_taken;
	uint64_t ino_rotor;
	uint32_t next_generation;

	struct inode *root;		/* held for the life of the mount: the kernel never looks it up */
	struct slotlist orphans;
	struct busy_tree busy;
	struct reclaim reclaim;
	uint64_t orphans_recovered;	/* at mount */
	struct trace trace;		/* the event trace (off unless asked for) */
	/*
	 * The pins and the policy live above this layer (policy.h); the namespace layer reaches them
	 * through here.  Nothing below the namespace looks inside.
	 */
	struct policy *pol;
};

static inline struct media *fs_media(struct fs *fs)
{
	return &fs->sbi.media;
}

static inline uint32_t fs_bs(const struct fs *fs)
{
	return fs->sbi.bs;
}

#endif
