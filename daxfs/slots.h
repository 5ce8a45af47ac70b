/* SPDX-License-Identifier: MIT */
/*
 * Slot lists: persistent sets of small records (orphan inodes now, busy extents later), stored in a
 * chain of blocks that starts at a fixed head block.  The list lock is held from the first change
 * until the transaction carrying it commits, so transactions touching one list commit in the order
 * they changed it and a slot is never reused before its removal is durable.
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

/* Walk the list from `head`, validating it; `visit` sees each record (it may return -errno to stop). */
int slots_load(struct slotlist *sl, struct sbi *s, uint32_t kind, uint64_t head, slot_visit_fn visit, void *arg,
	       char *err, size_t errlen);
void slots_destroy(struct slotlist *sl);

static inline void slots_lock(struct slotlist *sl)
{
	pthread_mutex_lock(&sl->lock);
}

static inline void slots_unlock(struct slotlist *sl)
{
	pthread_mutex_unlock(&sl->lock);
}

/* With the lock held: store a record (growing the chain if needed) and return its id. */
int slots_add(struct slotlist *sl, struct tx *tx, const uint64_t v[3], uint64_t *id);
/* With the lock held: clear a record. */
void slots_remove(struct slotlist *sl, struct tx *tx, uint64_t id);
/* With the lock held: rewrite a record in place. */
void slots_update(struct slotlist *sl, struct tx *tx, uint64_t id, const uint64_t v[3]);

#endif
