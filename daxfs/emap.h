/* SPDX-License-Identifier: MIT */
/*
 * Extent maps: the extents of a file, in logical order, grouped in leaves that mirror where they are
 * stored (leaf 0: the inode's inline slots; the others: extent blocks, in chain order).
 *
 * Every function works on one inode's map: the caller holds that inode's lock, for reading (seek,
 * next, goal, count) or for writing (the rest).
 */
#ifndef DAXFS_EMAP_H
#define DAXFS_EMAP_H

#include <stdbool.h>
#include <stdint.h>

#include "daxfs/format.h"

struct fs;
struct inode;
struct tx;

struct emap_leaf {
	uint64_t pblk;				/* 0 for the inline leaf */
	uint32_t count;
	uint32_t dirty_from;			/* first record changed since last logged; UINT32_MAX = clean */
	struct daxfs_extent_block *blk;		/* DRAM image of the block (NULL for the inline leaf) */
};

struct emap {
	struct emap_leaf *leaves;
	uint32_t nleaves;
	uint32_t capleaves;
	uint32_t ndirty;			/* leaves with changes not yet logged */
};

/* A position in an extent map: leaf and record index. */
struct emap_cursor {
	uint32_t leaf;
	uint32_t rec;
};

/* Read the extent chain of ip into ip->map (inode_get does it).  Returns 0, -EIO on corrupt blocks, -ENOMEM. */
int emap_load(struct fs *fs, struct inode *ip);
void emap_destroy(struct emap *map);
/* The first extent that ends after lblk (it contains lblk, or follows it); false when none. */
bool emap_seek(const struct inode *ip, uint64_t lblk, struct emap_cursor *c, struct daxfs_extent *out);
/* The extent after the cursor's; false at the end. */
bool emap_next(const struct inode *ip, struct emap_cursor *c, struct daxfs_extent *out);
/* Where to place new blocks for lblk so the file stays contiguous: 0 when there is no hint. */
uint64_t emap_goal(const struct inode *ip, uint64_t lblk);
/* Extents in the map. */
uint64_t emap_count(const struct inode *ip);
/* Map [lblk, lblk + len) (a hole) to pblk in tx.  Returns 0, -ENOSPC (no extent block), -ENOMEM. */
int emap_insert(struct fs *fs, struct tx *tx, struct inode *ip, uint64_t lblk, uint64_t pblk, uint64_t len);
/*
 * Unmap [lblk, lblk + len); each freed media range is passed to `freed`.  Returns 0, or -EAGAIN,
 * having made partial progress, when the transaction has grown to its budget: commit and call again.
 */
typedef void (*emap_free_fn)(void *arg, uint64_t pblk, uint64_t len);
int emap_remove(struct fs *fs, struct tx *tx, struct inode *ip, uint64_t lblk, uint64_t len, emap_free_fn freed,
		void *arg);
/* Log the extent blocks changed since the last call.  Inline extents live in the inode: log it too. */
void emap_log(struct fs *fs, struct tx *tx, struct inode *ip);

#endif
