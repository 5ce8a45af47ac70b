/* SPDX-License-Identifier: MIT */
/*
 * Asynchronous reclaim: a worker thread takes busy extents whose last pin has dropped, scrubs them
 * and hands the space back to the allocator, a batch per transaction.  Scrubbing zeroes the blocks
 * with non-temporal stores, or (reclaim=discard, image files only) punches them out of the image
 * with io_uring fallocate, so nothing of the old file reaches the next one.
 */
#ifndef DAXFS_RECLAIM_H
#define DAXFS_RECLAIM_H

#include <liburing.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct fs;

struct reclaim {
	struct fs *fs;
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
};

int reclaim_start(struct reclaim *rc, struct fs *fs, bool discard);
/* Finish what is queued, then stop the worker. */
void reclaim_stop(struct reclaim *rc);

#endif
