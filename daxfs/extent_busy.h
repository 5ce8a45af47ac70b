/* SPDX-License-Identifier: MIT */
/*
 * Busy extents: blocks detached from a file while a pin still holds them.  They stay marked in use
 * in the block bitmap (so the allocator never sees them and statfs counts them as used), are
 * recorded in the persistent busy slot list by the same transaction that detaches them (like XFS's
 * extent-free intents), and wait here until their last pin drops and reclaim gives them back.
 *
 * Life of a busy extent: PENDING (its transaction has not committed) -> PINNED -> RECLAIMING
 * (queued for the reclaim worker) -> gone, in a transaction that clears its slot and its bitmap bits.
 *
 * Everything named *_locked expects bt->lock.
 */
#ifndef DAXFS_EXTENT_BUSY_H
#define DAXFS_EXTENT_BUSY_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include "rbtree.h"
#include "slots.h"
#include "util.h"

struct busy_ext {
	RB_ENTRY(busy_ext) node;
	TAILQ_ENTRY(busy_ext) queue;
	uint64_t start;		/* media blocks */
	uint64_t len;
	uint64_t ino;		/* the file it came from */
	uint64_t slot;		/* its record in the busy slot list */
	uint32_t state;		/* DAXFS_BUSY_* */
	uint64_t created_ns;
	uint64_t unpinned_ns;	/* when its last pin dropped: reclaim latency starts here */
};

RB_HEAD(busy_by_start, busy_ext);

struct busy_tree {
	struct lock lock;		/* busy_*_locked assert it (lock_assert_held) */
	pthread_cond_t queued;		/* the reclaim queue gained work */
	pthread_cond_t reclaimed;	/* reclaim finished a batch */
	struct busy_by_start tree;
	TAILQ_HEAD(, busy_ext) queue;	/* RECLAIMING, not yet taken by the worker */
	struct slotlist slots;
	uint64_t nextents;
	uint64_t nblocks;
	uint64_t queued_extents;	/* queued or being reclaimed */
	uint64_t created;
};

/* Load the persistent list; every record found is queued for reclaim (no pin survives a restart). */
int busy_load(struct busy_tree *bt, struct sbi *s, uint64_t head, bool recover, char *err, size_t errlen);
void busy_destroy(struct busy_tree *bt);

/* Track an extent in DRAM only (its record already exists, or a benchmark of the tree). */
struct busy_ext *busy_track_locked(struct busy_tree *bt, uint64_t start, uint64_t len, uint64_t ino, uint64_t slot,
				   uint32_t state);
/* Record [start, start + len) as busy in tx, PENDING until busy_committed. */
int busy_add_locked(struct busy_tree *bt, struct tx *tx, uint64_t start, uint64_t len, uint64_t ino);
/* Visit the busy extents overlapping [start, start + len). */
typedef void (*busy_visit_fn)(void *arg, struct busy_ext *be);
void busy_visit_locked(struct busy_tree *bt, uint64_t start, uint64_t len, busy_visit_fn fn, void *arg);
/* Busy extents in media order. */
struct busy_ext *busy_first_locked(struct busy_tree *bt);
struct busy_ext *busy_next_locked(struct busy_tree *bt, struct busy_ext *be);
/* Hand an extent to the reclaim worker. */
void busy_queue_locked(struct busy_tree *bt, struct busy_ext *be, uint64_t now_ns);
/* The reclaim worker: take up to max queued extents (waits until there is one or *stop). */
size_t busy_take(struct busy_tree *bt, struct busy_ext **out, size_t max, const bool *stop);
/* After the reclaim transaction committed: forget the extents, wake waiters. */
void busy_done(struct busy_tree *bt, struct busy_ext **v, size_t n);
/* Reclaim could not commit (the file system went read-only): the extents stay busy, unqueued. */
void busy_abandon(struct busy_tree *bt, struct busy_ext **v, size_t n);
/* Wait until reclaim finishes something, up to deadline (CLOCK_MONOTONIC ns); false if none is queued. */
bool busy_wait_reclaim(struct busy_tree *bt, uint64_t deadline_ns);
/* Wait until nothing is queued or being reclaimed (unmount). */
void busy_drain(struct busy_tree *bt);

#endif
