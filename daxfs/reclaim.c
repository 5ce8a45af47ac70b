/* SPDX-License-Identifier: MIT */
#include "reclaim.h"

#include <errno.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <string.h>

#include "extent_busy.h"
#include "sbi.h"
#include "trace.h"
#include "util.h"

/* Extents per reclaim transaction: big batches amortise the commit when a mass unpin queues many. */
#define BATCH 256

/* Punch the extents out of the image file; failed[i] says which must be zeroed instead. */
static void discard_batch(struct reclaim *rc, struct busy_ext **v, size_t n, bool *failed)
{
	struct sbi *s = rc->sbi;
	size_t queued = 0;

	for (size_t i = 0; i < n; i++) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&rc->ring);

		failed[i] = true;	/* until its completion says otherwise */
		if (!sqe)
			continue;
		io_uring_prep_fallocate(sqe, s->media.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					(off_t)sbi_block_off(s, v[i]->start), (off_t)(v[i]->len << s->bshift));
		io_uring_sqe_set_data64(sqe, i);
		queued++;
	}
	int sub = io_uring_submit_and_wait(&rc->ring, (unsigned)queued);
	for (int i = 0; i < sub; i++) {
		struct io_uring_cqe *cqe;

		if (io_uring_wait_cqe(&rc->ring, &cqe))
			break;
		if (cqe->res == 0)
			failed[io_uring_cqe_get_data64(cqe)] = false;
		io_uring_cqe_seen(&rc->ring, cqe);
	}
}

static void *worker(void *arg)
{
	struct reclaim *rc = arg;
	struct busy_tree *bt = rc->busy;
	struct sbi *s = rc->sbi;
	struct busy_ext *v[BATCH];
	bool zero[BATCH];
	size_t n;

	while ((n = busy_take(bt, v, BATCH, &rc->stop)) > 0) {
		struct tx tx;

		/*
		 * An aborted image takes no more changes, scrubs included: leave the extents busy on the
		 * media for the next mount.  (An abort that comes later is caught by the commit below.)
		 */
		if (sbi_writable(s)) {
			busy_abandon(bt, v, n);
			continue;
		}
		uint64_t blocks = 0;
		for (size_t i = 0; i < n; i++) {
			zero[i] = true;
			blocks += v[i]->len;
		}
		TRACE(rc->trace, "reclaim_start", "\"extents\":%zu,\"len\":%llu", n,
		      (unsigned long long)(blocks << s->bshift));
		if (rc->discard)
			discard_batch(rc, v, n, zero);
		for (size_t i = 0; i < n; i++) {
			if (!zero[i])
				continue;
			if (rc->discard)
				rc->discard_errors++;
			media_fill(&s->media, sbi_block(s, v[i]->start), 0, v[i]->len << s->bshift);
		}
		/* The scrub is durable before the blocks can be allocated again. */
		media_drain(&s->media);
		tx_init(&tx, &s->journal);
		for (size_t i = 0; i < n; i++) {
			slots_remove(&bt->slots, &tx, v[i]->slot);
			sbi_free(s, &tx, v[i]->start, v[i]->len);
		}
		if (sbi_commit(s, &tx)) {
			/* The file system is read-only now; the extents stay busy on the media. */
			busy_abandon(bt, v, n);
			continue;
		}
		uint64_t now = util_now_ns();
		lock_take(&bt->lock);
		for (size_t i = 0; i < n; i++) {
			uint64_t lat = now - v[i]->unpinned_ns;

			TRACE(rc->trace, "reclaim", "\"media\":%llu,\"len\":%llu,\"ino\":%llu,\"latency\":%llu",
			      (unsigned long long)(v[i]->start << s->bshift), (unsigned long long)(v[i]->len << s->bshift),
			      (unsigned long long)v[i]->ino, (unsigned long long)lat);
			rc->extents++;
			rc->blocks += v[i]->len;
			rc->latency_ns_total += lat;
			rc->latency_ns_max = MAX(rc->latency_ns_max, lat);
		}
		lock_drop(&bt->lock);
		busy_done(bt, v, n);
	}
	return NULL;
}

void reclaim_init(struct reclaim *rc, struct sbi *s, struct busy_tree *bt, uint64_t enospc_wait_ms,
		  struct trace *trace)
{
	memset(rc, 0, sizeof(*rc));
	rc->trace = trace;
	rc->sbi = s;
	rc->busy = bt;
	rc->enospc_wait_ms = enospc_wait_ms;
}

int reclaim_start(struct reclaim *rc, bool discard)
{
	int ret;

	rc->stop = false;
	rc->discard = discard && rc->sbi->media.kind == MEDIA_FILE && !rc->sbi->media.private_map;
	if (rc->discard && (ret = io_uring_queue_init(BATCH, &rc->ring, 0)) < 0) {
		fprintf(stderr, "daxfs: io_uring unavailable (%s); reclaim will zero instead of discarding\n",
			strerror(-ret));
		rc->discard = false;
	}
	ret = pthread_create(&rc->thread, NULL, worker, rc);
	if (ret) {
		if (rc->discard)
			io_uring_queue_exit(&rc->ring);
		return -ret;
	}
	rc->started = true;
	return 0;
}

void reclaim_stop(struct reclaim *rc)
{
	if (!rc->started)
		return;
	busy_drain(rc->busy);
	lock_take(&rc->busy->lock);
	__atomic_store_n(&rc->stop, true, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&rc->busy->queued);
	lock_drop(&rc->busy->lock);
	pthread_join(rc->thread, NULL);
	if (rc->discard)
		io_uring_queue_exit(&rc->ring);
	rc->started = false;
}

int reclaim_alloc(struct reclaim *rc, const struct alloc_req *req, uint64_t *start, uint64_t *len)
{
	int ret = sbi_alloc(rc->sbi, req, start, len);

	if (ret != -ENOSPC || !rc->started)
		return ret;
	uint64_t deadline = util_now_ns() + rc->enospc_wait_ms * 1000000ull;
	bool counted = false;
	uint64_t t0 = util_now_ns();
	while (ret == -ENOSPC && util_now_ns() < deadline && busy_wait_reclaim(rc->busy, deadline)) {
		if (!counted) {
			__atomic_add_fetch(&rc->enospc_waits, 1, __ATOMIC_RELAXED);
			counted = true;
		}
		ret = sbi_alloc(rc->sbi, req, start, len);
	}
	if (counted)
		TRACE(rc->trace, "enospc_wait", "\"ns\":%llu,\"ok\":%s", (unsigned long long)(util_now_ns() - t0),
		      ret ? "false" : "true");
	return ret;
}
