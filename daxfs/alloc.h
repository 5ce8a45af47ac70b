/* SPDX-License-Identifier: MIT */
/*
 * Free space in DRAM: the free extents of the data area, indexed by start (to find neighbours and
 * extend a file in place) and by length (best fit), like XFS's bnobt/cntbt pair.  It is built from
 * the committed block bitmap at mount.  The allocator hands out blocks before the transaction that
 * marks them used commits; freed blocks come back only after the transaction that clears them has
 * committed, so a block is never in two files' extents on the media, whatever the crash point.
 */
#ifndef DAXFS_ALLOC_H
#define DAXFS_ALLOC_H

#include "rbtree.h"
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct free_ext {
	RB_ENTRY(free_ext) by_start;
	RB_ENTRY(free_ext) by_len;
	uint64_t start;
	uint64_t len;
};

RB_HEAD(free_by_start, free_ext);
RB_HEAD(free_by_len, free_ext);

/* The two trees' orders; here so that a test can generate walkers for the same trees. */
static inline int free_ext_cmp_start(const struct free_ext *a, const struct free_ext *b)
{
	return a->start < b->start ? -1 : a->start > b->start;
}

static inline int free_ext_cmp_len(const struct free_ext *a, const struct free_ext *b)
{
	if (a->len != b->len)
		return a->len < b->len ? -1 : 1;
	return free_ext_cmp_start(a, b);
}

struct allocator {
	pthread_mutex_t lock;
	struct free_by_start by_start;
	struct free_by_len by_len;
	uint64_t free;		/* blocks in the index */
	uint64_t nextents;	/* nodes in the index */
	uint64_t reserve;	/* blocks only metadata allocations may take */
	uint32_t align;		/* blocks in DAXFS_HUGE_ALIGN */
};

#define ALLOC_META	0x1	/* metadata: may dip into the reserve; placed like ALLOC_TOP */
#define ALLOC_ALIGN	0x2	/* place at pblk = lblk (mod align) when the request is large */
#define ALLOC_TOP	0x4	/* when the goal fails, take from the top of free space (metadata placement) */
/*
 * Order of preference: extend in place at goal; the nearest free space after goal (within 2 MiB);
 * for metadata, the top of free space; 2 MiB-congruent placement for large requests; best fit; the
 * largest piece.
 */

struct alloc_req {
	uint64_t goal;		/* preferred first block (the block after the file's previous extent), 0 = none */
	uint64_t lblk;		/* file block the allocation maps, for ALLOC_ALIGN */
	uint64_t want;		/* blocks wanted; fewer may be returned */
	unsigned flags;
};

void alloc_init(struct allocator *a, uint64_t reserve, uint32_t align);
void alloc_destroy(struct allocator *a);

/* Return [start, start + len) to the free index, merging with neighbours. */
void alloc_free(struct allocator *a, uint64_t start, uint64_t len);
/*
 * Allocate one extent of 1 to req->want blocks.  Returns 0 with *start and *len set, or -ENOSPC.
 * Callers needing more loop.
 */
int alloc_get(struct allocator *a, const struct alloc_req *req, uint64_t *start, uint64_t *len);
/* Remove a specific range that must be free (checker and tests); -ENOENT if any block is not free. */
int alloc_take(struct allocator *a, uint64_t start, uint64_t len);
uint64_t alloc_free_blocks(struct allocator *a);
/* Free blocks an ordinary (data) allocation may still take. */
uint64_t alloc_avail_blocks(struct allocator *a);

#endif
