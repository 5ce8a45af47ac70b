/* SPDX-License-Identifier: MIT */
/*
 * Slot lists: persistent sets of small records (orphan inodes, busy extents), stored in a chain of
 * blocks that starts at a fixed head block.  Records are independent bytes, written by the caller's
 * transaction.  The two things that could make concurrent transactions step on each other are
 * handled here: the chain grows in a transaction of its own, committed at once, and a removed
 * slot becomes free again only after the transaction that cleared it has committed.
 */
#ifndef DAXFS_SLOTS_H
#define DAXFS_SLOTS_H

#include <pthread.h>
#include <stdint.h>

#include "sbi.h"

struct slotlist {
	struct sbi *sbi;
	uint32_t kind;
	uint32_t per_block;
	pthread_mutex_t lock;
	uint64_t *blocks;	/* the chain, in order */
	size_t nblocks;
	size_t capblocks;
	uint64_t *free;		/* stack of free slot ids */
	size_t nfree;
	size_t capfree;
	uint64_t used;
};

typedef int (*slot_visit_fn)(void *arg, uint64_t id, const uint64_t v[3]);
/* A slot whose record does not verify (its checksum is wrong): v is what it holds. */
typedef void (*slot_bad_fn)(void *arg, uint64_t id, const uint64_t v[3]);

/*
 * Walk the list from `head`, validating it; `visit` sees each record (it may return -errno to stop).
 * Returns 0, or -errno with err (-EUCLEAN: a bad block, a loop, a record that does not verify).
 * No lock: sl is the caller's, initialized here (slots_destroy it whatever the result).
 */
int slots_load(struct slotlist *sl, struct sbi *s, uint32_t kind, uint64_t head, slot_visit_fn visit, void *arg,
	       char *err, size_t errlen);
/*
 * The same, but a record that does not verify does not stop the walk: `bad` (if not NULL) sees it,
 * and its slot stays in use, for the caller to clear with slots_remove.  Returns as slots_load
 * (-EUCLEAN now only for a broken chain).  No lock, as slots_load.
 */
int slots_load_salvage(struct slotlist *sl, struct sbi *s, uint32_t kind, uint64_t head, slot_visit_fn visit,
		       slot_bad_fn bad, void *arg, char *err, size_t errlen);
/*
 * Empty the list whose chain is broken: its head block is written back empty, in a transaction of
 * its own, and the chain after it is cut off (fsck reclaims those blocks as leaked).  sl is then
 * that empty list, loaded.  0 or -errno with err (slots_destroy sl either way).  No lock: nothing
 * else may use the list meanwhile (mount or fsck, before anyone else can).
 */
int slots_reset(struct slotlist *sl, struct sbi *s, uint32_t kind, uint64_t head, char *err, size_t errlen);
void slots_destroy(struct slotlist *sl);

/* Store a record in tx and return its slot id (growing the chain first if it is full). */
int slots_add(struct slotlist *sl, struct tx *tx, const uint64_t v[3], uint64_t *id);
/* Clear a record in tx; the slot is reusable once tx has committed. */
void slots_remove(struct slotlist *sl, struct tx *tx, uint64_t id);
/* Rewrite a record in tx. */
void slots_update(struct slotlist *sl, struct tx *tx, uint64_t id, const uint64_t v[3]);
/* The records of one chain block (for walking the list in DRAM order). */
const struct daxfs_slot *slots_block(const struct slotlist *sl, size_t bi);

#endif
