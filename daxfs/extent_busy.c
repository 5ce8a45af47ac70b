/* SPDX-License-Identifier: MIT */
#include "extent_busy.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daxfs/ioctl.h"
#include "util.h"

static int cmp_start(const struct busy_ext *a, const struct busy_ext *b)
{
	return a->start < b->start ? -1 : a->start > b->start;
}

RB_GENERATE_STATIC_UNUSED(busy_by_start, busy_ext, node, cmp_start)

static void init(struct busy_tree *bt)
{
	memset(bt, 0, sizeof(*bt));
	lock_init(&bt->lock);
	cond_init_monotonic(&bt->queued);
	cond_init_monotonic(&bt->reclaimed);
	RB_INIT(&bt->tree);
	TAILQ_INIT(&bt->queue);
}

struct busy_ext *busy_track_locked(struct busy_tree *bt, uint64_t start, uint64_t len, uint64_t ino, uint64_t slot,
				   uint32_t state)
{
	lock_assert_held(&bt->lock);
	struct busy_ext *be = calloc(1, sizeof(*be));

	if (!be)
		return NULL;
	be->start = start;
	be->len = len;
	be->ino = ino;
	be->slot = slot;
	be->state = state;
	be->created_ns = util_now_ns();
	RB_INSERT(busy_by_start, &bt->tree, be);
	bt->nextents++;
	bt->nblocks += len;
	return be;
}

struct load_ctx {
	struct busy_tree *bt;
	struct sbi *s;
	bool recover;
};

/* Does [start, start + len) meet an extent already in the tree? */
static bool overlaps(struct busy_tree *bt, uint64_t start, uint64_t len)
{
	struct busy_ext key = { .start = start };
	struct busy_ext *next = RB_NFIND(busy_by_start, &bt->tree, &key);
	struct busy_ext *prev = next ? RB_PREV(busy_by_start, &bt->tree, next) : RB_MAX(busy_by_start, &bt->tree);

	return (next && next->start < start + len) || (prev && prev->start + prev->len > start);
}

static int load_one(void *arg, uint64_t id, const uint64_t v[3])
{
	struct load_ctx *lc = arg;

	/*
	 * Reclaim will free these blocks: a record that overlaps another, or covers blocks the bitmap
	 * says are free, is corruption, and acting on it would free something twice.
	 */
	if (v[1] == 0 || !sbi_data_block(lc->s, v[0], v[1]) || overlaps(lc->bt, v[0], v[1]) ||
	    !journal_bitmap_all_set(&lc->s->bbm, v[0], v[1]))
		return -EUCLEAN;
	struct busy_ext *be = busy_track_locked(lc->bt, v[0], v[1], v[2], id, DAXFS_BUSY_PINNED);
	if (!be)
		return -ENOMEM;
	if (lc->recover)
		busy_queue_locked(lc->bt, be, be->created_ns);
	return 0;
}

int busy_load(struct busy_tree *bt, struct sbi *s, uint64_t head, bool recover, char *err, size_t errlen)
{
	struct load_ctx lc = { bt, s, recover };

	init(bt);
	lock_take(&bt->lock);	/* nobody else sees bt yet; load_one's helpers assert it */
	int ret = slots_load(&bt->slots, s, DAXFS_SLOTS_BUSY, head, load_one, &lc, err, errlen);
	lock_drop(&bt->lock);
	return ret;
}

void busy_destroy(struct busy_tree *bt)
{
	struct busy_ext *be, *next;

	RB_FOREACH_SAFE(be, busy_by_start, &bt->tree, next) {
		RB_REMOVE(busy_by_start, &bt->tree, be);
		free(be);
	}
	slots_destroy(&bt->slots);
	pthread_cond_destroy(&bt->queued);
	pthread_cond_destroy(&bt->reclaimed);
	lock_destroy(&bt->lock);
}

int busy_add_locked(struct busy_tree *bt, struct tx *tx, uint64_t start, uint64_t len, uint64_t ino)
{
	lock_assert_held(&bt->lock);
	uint64_t v[3] = { start, len, ino };
	uint64_t slot;
	int ret = slots_add(&bt->slots, tx, v, &slot);

	if (ret)
		return ret;
	if (!busy_track_locked(bt, start, len, ino, slot, DAXFS_BUSY_PENDING))
		return -ENOMEM;
	bt->created++;
	return 0;
}

void busy_visit_locked(struct busy_tree *bt, uint64_t start, uint64_t len, busy_visit_fn fn, void *arg)
{
	lock_assert_held(&bt->lock);
	struct busy_ext key = { .start = start };
	struct busy_ext *be = RB_NFIND(busy_by_start, &bt->tree, &key);
	struct busy_ext *prev = be ? RB_PREV(busy_by_start, &bt->tree, be) : RB_MAX(busy_by_start, &bt->tree);

	/* Busy extents never overlap: only the one just before start can reach into the range. */
	if (prev && prev->start + prev->len > start)
		be = prev;
	while (be && be->start < start + len) {
		struct busy_ext *next = RB_NEXT(busy_by_start, &bt->tree, be);

		fn(arg, be);
		be = next;
	}
}

struct busy_ext *busy_first_locked(struct busy_tree *bt)
{
	lock_assert_held(&bt->lock);
	return RB_MIN(busy_by_start, &bt->tree);
}

struct busy_ext *busy_next_locked(struct busy_tree *bt, struct busy_ext *be)
{
	lock_assert_held(&bt->lock);
	return RB_NEXT(busy_by_start, &bt->tree, be);
}

void busy_queue_locked(struct busy_tree *bt, struct busy_ext *be, uint64_t now_ns)
{
	lock_assert_held(&bt->lock);
	if (be->state == DAXFS_BUSY_RECLAIMING)
		return;
	be->state = DAXFS_BUSY_RECLAIMING;
	be->unpinned_ns = now_ns;
	TAILQ_INSERT_TAIL(&bt->queue, be, queue);
	bt->queued_extents++;
	pthread_cond_signal(&bt->queued);
}

size_t busy_take(struct busy_tree *bt, struct busy_ext **out, size_t max, const bool *stop)
{
	size_t n = 0;

	lock_take(&bt->lock);
	while (TAILQ_EMPTY(&bt->queue) && !__atomic_load_n(stop, __ATOMIC_ACQUIRE))
		lock_wait(&bt->queued, &bt->lock);
	while (n < max && !TAILQ_EMPTY(&bt->queue)) {
		struct busy_ext *be = TAILQ_FIRST(&bt->queue);

		TAILQ_REMOVE(&bt->queue, be, queue);
		out[n++] = be;
	}
	lock_drop(&bt->lock);
	return n;
}

void busy_done(struct busy_tree *bt, struct busy_ext **v, size_t n)
{
	lock_take(&bt->lock);
	for (size_t i = 0; i < n; i++) {
		RB_REMOVE(busy_by_start, &bt->tree, v[i]);
		bt->nextents--;
		bt->nblocks -= v[i]->len;
		bt->queued_extents--;
		free(v[i]);
	}
	pthread_cond_broadcast(&bt->reclaimed);
	lock_drop(&bt->lock);
}

void busy_abandon(struct busy_tree *bt, struct busy_ext **v, size_t n)
{
	lock_take(&bt->lock);
	for (size_t i = 0; i < n; i++) {
		v[i]->state = DAXFS_BUSY_PINNED;
		bt->queued_extents--;
	}
	pthread_cond_broadcast(&bt->reclaimed);
	lock_drop(&bt->lock);
}

bool busy_wait_reclaim(struct busy_tree *bt, uint64_t deadline_ns)
{
	bool waited = false;

	lock_take(&bt->lock);
	if (bt->queued_extents) {
		lock_wait_until(&bt->reclaimed, &bt->lock, deadline_ns);
		waited = true;
	}
	lock_drop(&bt->lock);
	return waited;
}

void busy_drain(struct busy_tree *bt)
{
	lock_take(&bt->lock);
	while (bt->queued_extents)
		lock_wait(&bt->reclaimed, &bt->lock);
	lock_drop(&bt->lock);
}
