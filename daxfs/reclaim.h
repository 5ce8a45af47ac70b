/* SPDX-License-Identifier: MIT */
/*
 * Asynchronous reclaim: a worker thread takes busy extents whose last pin has dropped, scrubs them
 * and hands the space back to the allocator, a batch per transaction.  Scrubbing zeroes the blocks
 * with non-temporal stores, or (reclaim=discard, image files only) punches them out of the image
 * with io_uring fallocate, so nothing of the old file reaches the next one.  On an aborted image
 * (sbi_writable fails) it changes nothing: the extents stay busy on the media for the next mount.
 */
#ifndef DAXFS_RECLAIM_H
#define DAXFS_RECLAIM_H

#include <liburing.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "alloc.h"

struct sbi;
struct busy_tree;
struct trace;

struct reclaim {
	struct sbi *sbi;
	struct busy_tree *busy;
	uint64_t enospc_wait_ms;	/* how long an allocation on a full device waits for reclaim */
	struct trace *trace;
	pthread_t thread;
	bool started;
	bool stop;
	bool discard;
	struct io_uring ring;
	/* statistics, under the busy tree lock */
	uint64_t extents;
	uint64_t blocks;
	uint64_t latency_ns_total;
	uint64_t latency_ns_max;
	uint64_t discard_errors;	/* punches that failed and were zeroed instead */
	uint64_t enospc_waits;		/* allocations that waited for reclaim (atomic) */
};

/* Set up (worker not running yet): busy extents of bt are reclaimed into s. */
void reclaim_init(struct reclaim *rc, struct sbi *s, struct busy_tree *bt, uint64_t enospc_wait_ms,
		  struct trace *trace);
/* Start the worker.  Returns 0 or -errno. */
int reclaim_start(struct reclaim *rc, bool discard);
/* Finish what is queued, then stop the worker. */
void reclaim_stop(struct reclaim *rc);
/*
 * Allocate blocks (sbi_alloc semantics).  When the device is full but reclaim has work queued,
 * wait for it, up to enospc_wait_ms; space held by live pins is not coming back, so with nothing
 * queued the answer is -ENOSPC at once.  Returns 0 or -errno.  Callers may hold inode locks: the
 * worker takes none.
 */
int reclaim_alloc(struct reclaim *rc, const struct alloc_req *req, uint64_t *start, uint64_t *len);

#endif
