/* SPDX-License-Identifier: MIT */
/*
 * Inodes: the cache of in-use inodes (each with its extent map and, for directories, its index),
 * inode numbers, timestamps, and creation.
 *
 * Locks: fs->icache_lock guards the cache and each inode's reference counts (nlookup, refs, nopen);
 * it is a leaf, taken inside inode locks.  ip->lock guards the rest of an inode.  Functions below
 * take icache_lock themselves; "ip locked" means the caller holds ip->lock (write when it changes).
 */
#ifndef DAXFS_INODE_H
#define DAXFS_INODE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "daxfs/format.h"
#include "emap.h"

struct fs;
struct cred;
struct tx;
struct dir_index;

struct inode {
	uint64_t ino;
	struct inode *hnext;		/* icache chain */
	/* under fs->icache_lock */
	uint64_t nlookup;		/* references the kernel holds */
	uint32_t refs;			/* references held by running operations */
	uint32_t nopen;			/* open files */
	/* under lock */
	pthread_rwlock_t lock;
	struct daxfs_inode d;		/* the inode record, authoritative while cached */
	bool times_dirty;		/* timestamps changed but not yet on the media */
	bool deleted;			/* freed on the media; the number stays taken until forgotten */
	bool orphan;			/* on the orphan list (unlinked while open) */
	uint64_t orphan_slot;
	struct emap map;
	struct dir_index *dir;
};

/* Set up and tear down the cache and the inode-number map (mount). */
int inode_cache_init(struct fs *fs);
void inode_cache_destroy(struct fs *fs);
/* A held reference to inode ino, loaded if needed.  Returns 0, -ESTALE (not in use), -EIO, -ENOMEM. */
int inode_get(struct fs *fs, uint64_t ino, struct inode **ip);
/* Read an inode from the media without caching it (the checker); free with inode_free. 0 or -errno. */
int inode_read(struct fs *fs, uint64_t ino, struct inode **ip);
void inode_free(struct inode *ip);
void inode_hold(struct fs *fs, struct inode *ip);
/* Drop a reference; an unused inode that the kernel forgot leaves the cache. */
void inode_put(struct fs *fs, struct inode *ip);
/* The kernel got (nlookup) or dropped (forget) references. */
void inode_lookup_ref(struct fs *fs, struct inode *ip);
void inode_forget(struct fs *fs, uint64_t ino, uint64_t n);
/* Attributes of ip (locked, read). */
void inode_stat(struct fs *fs, const struct inode *ip, struct stat *st);
/* Log the inode record (with its checksum) into tx; clears times_dirty.  ip locked (write). */
void inode_log(struct fs *fs, struct tx *tx, struct inode *ip);
/* Write dirty timestamps back (fsync, release, forget, unmount); takes ip->lock.  0 or -EIO. */
int inode_sync(struct fs *fs, struct inode *ip);
/* Write back every cached inode's timestamps (unmount). */
void inode_sync_all(struct fs *fs);
/* Set timestamps to now; ip locked (write). */
#define T_ATIME 1
#define T_MTIME 2
#define T_CTIME 4
void inode_touch(struct inode *ip, int which);
/*
 * A new inode, logged in tx, returned held and write-locked with nlookup 0.  Returns 0, -ENOSPC
 * (no inode left), -ENOMEM.  The caller holds fs->ns_lock.
 */
int inode_create(struct fs *fs, struct tx *tx, const struct cred *cr, const struct inode *dir, mode_t mode,
		 dev_t rdev, struct inode **ip);
/* Undo inode_create when its transaction is abandoned (unlocks and frees ip). */
void inode_create_abort(struct fs *fs, struct inode *ip);
/* Count an open file of ip. */
void inode_open(struct fs *fs, struct inode *ip);
/* Drop an open; returns true when it was the last. */
bool inode_close(struct fs *fs, struct inode *ip);

#endif
