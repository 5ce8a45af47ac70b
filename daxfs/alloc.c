/* SPDX-License-Identifier: MIT */
#include "alloc.h"

#include <errno.h>
#include <stdlib.h>

#include "util.h"

RB_GENERATE_STATIC_UNUSED(free_by_start, free_ext, by_start, free_ext_cmp_start)
RB_GENERATE_STATIC_UNUSED(free_by_len, free_ext, by_len, free_ext_cmp_len)

void alloc_init(struct allocator *a, uint64_t reserve, uint32_t align)
{
	pthread_mutex_init(&a->lock, NULL);
	RB_INIT(&a->by_start);
	RB_INIT(&a->by_len);
	a->free = 0;
	a->nextents = 0;
	a->reserve = reserve;
	a->align = align ? align : 1;
}

void alloc_destroy(struct allocator *a)
{
	struct free_ext *fe, *next;

	RB_FOREACH_SAFE(fe, free_by_start, &a->by_start, next) {
		RB_REMOVE(free_by_start, &a->by_start, fe);
		free(fe);
	}
	RB_INIT(&a->by_len);
	pthread_mutex_destroy(&a->lock);
}

static void insert(struct allocator *a, struct free_ext *fe)
{
	RB_INSERT(free_by_start, &a->by_start, fe);
	RB_INSERT(free_by_len, &a->by_len, fe);
	a->nextents++;
}

static void unlink_ext(struct allocator *a, struct free_ext *fe)
{
	RB_REMOVE(free_by_start, &a->by_start, fe);
	RB_REMOVE(free_by_len, &a->by_len, fe);
	a->nextents--;
}

/* The free extent containing blk, or NULL. */
static struct free_ext *containing(struct allocator *a, uint64_t blk)
{
	struct free_ext key = { .start = blk };
	struct free_ext *fe = RB_NFIND(free_by_start, &a->by_start, &key);

	if (fe && fe->start == blk)
		return fe;
	fe = fe ? RB_PREV(free_by_start, &a->by_start, fe) : RB_MAX(free_by_start, &a->by_start);
	if (fe && blk < fe->start + fe->len)
		return fe;
	return NULL;
}

static void free_locked(struct allocator *a, uint64_t start, uint64_t len)
{
	struct free_ext key = { .start = start };
	struct free_ext *next = RB_NFIND(free_by_start, &a->by_start, &key);
	struct free_ext *prev = next ? RB_PREV(free_by_start, &a->by_start, next)
				     : RB_MAX(free_by_start, &a->by_start);
	struct free_ext *fe = NULL;

	a->free += len;
	if (prev && prev->start + prev->len == start) {
		unlink_ext(a, prev);
		prev->len += len;
		fe = prev;
	}
	if (next && start + len == next->start) {
		unlink_ext(a, next);
		if (fe) {
			fe->len += next->len;
			free(next);
		} else {
			next->start = start;
			next->len += len;
			fe = next;
		}
	}
	if (!fe) {
		fe = malloc(sizeof(*fe));
		if (!fe) {
			/* Losing track of free space is a leak until the next mount, never corruption. */
			a->free -= len;
			return;
		}
		fe->start = start;
		fe->len = len;
	}
	insert(a, fe);
}

void alloc_free(struct allocator *a, uint64_t start, uint64_t len)
{
	uint64_t cur = start, end = start + len;

	pthread_mutex_lock(&a->lock);
	/*
	 * Only a corrupt image frees a block twice, but the index must stay a set of disjoint
	 * extents whatever happens: add only the parts not already free.
	 */
	while (cur < end) {
		struct free_ext *fe = containing(a, cur);

		if (fe) {
			cur = fe->start + fe->len;
			continue;
		}
		struct free_ext key = { .start = cur };
		struct free_ext *next = RB_NFIND(free_by_start, &a->by_start, &key);
		uint64_t gap_end = next ? MIN(next->start, end) : end;

		free_locked(a, cur, gap_end - cur);
		cur = gap_end;
	}
	pthread_mutex_unlock(&a->lock);
}

/* Take [start, start + len) out of fe, keeping what is left on either side. */
static void carve(struct allocator *a, struct free_ext *fe, uint64_t start, uint64_t len)
{
	uint64_t end = fe->start + fe->len;

	unlink_ext(a, fe);
	a->free -= len;
	if (start > fe->start) {
		uint64_t left = start - fe->start;

		if (start + len < end) {
			struct free_ext *right = malloc(sizeof(*right));

			if (right) {
				right->start = start + len;
				right->len = end - (start + len);
				insert(a, right);
			} else {
				a->free -= end - (start + len);
			}
		}
		fe->len = left;
		insert(a, fe);
	} else if (start + len < end) {
		fe->start = start + len;
		fe->len = end - fe->start;
		insert(a, fe);
	} else {
		free(fe);
	}
}

/* First block >= start congruent to lblk modulo align. */
static uint64_t aligned_from(uint64_t start, uint64_t lblk, uint32_t align)
{
	uint64_t want = lblk % align;
	uint64_t have = start % align;

	return start + (want >= have ? want - have : align - have + want);
}

static struct free_ext *find_aligned(struct allocator *a, const struct alloc_req *req, uint64_t *at)
{
	struct free_ext key = { .len = req->want, .start = 0 };
	struct free_ext *fe = RB_NFIND(free_by_len, &a->by_len, &key);

	/* Smallest extents first; give up on a long tail of near misses and ask for slack instead. */
	for (int tries = 0; fe && tries < 32; tries++, fe = RB_NEXT(free_by_len, &a->by_len, fe)) {
		uint64_t p = aligned_from(fe->start, req->lblk, a->align);

		if (p + req->want <= fe->start + fe->len) {
			*at = p;
			return fe;
		}
	}
	key.len = req->want + a->align - 1;
	fe = RB_NFIND(free_by_len, &a->by_len, &key);
	if (fe)
		*at = aligned_from(fe->start, req->lblk, a->align);
	return fe;
}

int alloc_get(struct allocator *a, const struct alloc_req *req, uint64_t *start, uint64_t *len)
{
	struct free_ext *fe;
	uint64_t want = req->want, at;
	int ret = 0;

	if (want == 0)
		return -EINVAL;
	pthread_mutex_lock(&a->lock);
	uint64_t avail = (req->flags & ALLOC_META) ? a->free : (a->free > a->reserve ? a->free - a->reserve : 0);
	if (avail == 0) {
		ret = -ENOSPC;
		goto out;
	}
	want = MIN(want, avail);

	/* 1: extend the file's previous extent in place. */
	if (req->goal && (fe = containing(a, req->goal)) != NULL) {
		at = req->goal;
		want = MIN(want, fe->start + fe->len - at);
		goto take;
	}
	/* 1b: the goal is taken: the nearest free space after it, if close, keeps the file together. */
	if (req->goal && !(req->flags & ALLOC_ALIGN && want >= a->align / 2)) {
		struct free_ext key = { .start = req->goal };

		fe = RB_NFIND(free_by_start, &a->by_start, &key);
		if (fe && fe->start - req->goal < a->align) {
			at = fe->start;
			want = MIN(want, fe->len);
			goto take;
		}
	}
	/*
	 * Metadata with no better place goes to the top of free space, away from data, so it never
	 * plugs a hole a file will want to fill.
	 */
	if ((req->flags & (ALLOC_META | ALLOC_TOP)) && (fe = RB_MAX(free_by_start, &a->by_start)) != NULL) {
		want = MIN(want, fe->len);
		at = fe->start + fe->len - want;
		goto take;
	}
	/* 2: large requests keep file and media offsets congruent modulo 2 MiB (huge-page mappable). */
	if ((req->flags & ALLOC_ALIGN) && a->align > 1 && want >= a->align / 2 &&
	    (fe = find_aligned(a, req, &at)) != NULL)
		goto take;
	/* 3: best fit: the smallest extent that holds the whole request. */
	struct free_ext key = { .len = want, .start = 0 };
	fe = RB_NFIND(free_by_len, &a->by_len, &key);
	if (!fe)
		fe = RB_MAX(free_by_len, &a->by_len);	/* 4: the largest piece; the caller loops */
	at = fe->start;
	want = MIN(want, fe->len);
take:
	carve(a, fe, at, want);
	*start = at;
	*len = want;
out:
	pthread_mutex_unlock(&a->lock);
	return ret;
}

int alloc_take(struct allocator *a, uint64_t start, uint64_t len)
{
	int ret = 0;

	pthread_mutex_lock(&a->lock);
	struct free_ext *fe = containing(a, start);
	if (!fe || start + len > fe->start + fe->len)
		ret = -ENOENT;
	else
		carve(a, fe, start, len);
	pthread_mutex_unlock(&a->lock);
	return ret;
}

uint64_t alloc_free_blocks(struct allocator *a)
{
	return __atomic_load_n(&a->free, __ATOMIC_RELAXED);
}

uint64_t alloc_avail_blocks(struct allocator *a)
{
	uint64_t f = alloc_free_blocks(a);

	return f > a->reserve ? f - a->reserve : 0;
}
