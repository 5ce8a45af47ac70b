/* SPDX-License-Identifier: MIT */
/*
 * The free-space allocator: merging, best fit, goals, 2 MiB congruence, the metadata reserve,
 * partial results, and a long randomized run against a plain bitmap model.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>

#include "alloc.h"
#include "unit_common.h"

/* Walk the allocator's trees from here: alloc.c's generated functions are static, so generate our own. */
RB_GENERATE_STATIC_UNUSED(free_by_start, free_ext, by_start, free_ext_cmp_start)
RB_GENERATE_STATIC_UNUSED(free_by_len, free_ext, by_len, free_ext_cmp_len)

struct ext {
	uint64_t start, len;
};

/* The free extents in start order; checks that both trees agree and that neighbours are merged. */
static size_t extents(struct allocator *a, struct ext *out, size_t max)
{
	struct free_ext *fe, *prev = NULL;
	size_t n = 0, nlen = 0;
	uint64_t total = 0;

	RB_FOREACH(fe, free_by_start, &a->by_start) {
		assert_true(fe->len > 0);
		if (prev && prev->start + prev->len >= fe->start)
			fail_msg("free extents [%llu,+%llu) and [%llu,+%llu) overlap or touch without merging",
				 (unsigned long long)prev->start, (unsigned long long)prev->len,
				 (unsigned long long)fe->start, (unsigned long long)fe->len);
		if (n < max)
			out[n] = (struct ext){ fe->start, fe->len };
		n++;
		total += fe->len;
		prev = fe;
	}
	prev = NULL;
	RB_FOREACH(fe, free_by_len, &a->by_len) {
		if (prev)
			assert_true(free_ext_cmp_len(prev, fe) < 0);
		nlen++;
		prev = fe;
	}
	assert_int_equal(n, nlen);
	assert_int_equal(n, a->nextents);
	assert_int_equal(total, alloc_free_blocks(a));
	return n;
}

static void expect_extents(struct allocator *a, const struct ext *want, size_t n)
{
	struct ext got[64];
	size_t k = extents(a, got, 64);

	assert_int_equal(k, n);
	for (size_t i = 0; i < n; i++) {
		if (got[i].start != want[i].start || got[i].len != want[i].len)
			fail_msg("extent %zu: got [%llu,+%llu), want [%llu,+%llu)", i, (unsigned long long)got[i].start,
				 (unsigned long long)got[i].len, (unsigned long long)want[i].start,
				 (unsigned long long)want[i].len);
	}
}

/* alloc_get that must succeed; returns the extent. */
static struct ext get(struct allocator *a, uint64_t want, uint64_t goal, uint64_t lblk, unsigned flags)
{
	struct alloc_req req = { .goal = goal, .lblk = lblk, .want = want, .flags = flags };
	struct ext e = { 0, 0 };
	int ret = alloc_get(a, &req, &e.start, &e.len);

	if (ret)
		fail_msg("alloc_get(want %llu goal %llu flags %u): %d", (unsigned long long)want,
			 (unsigned long long)goal, flags, ret);
	assert_true(e.len >= 1 && e.len <= want);
	return e;
}

static int get_ret(struct allocator *a, uint64_t want, unsigned flags)
{
	struct alloc_req req = { .want = want, .flags = flags };
	uint64_t s = 12345, l = 6789;
	int ret = alloc_get(a, &req, &s, &l);

	return ret;
}

static void test_empty_and_invalid(void **state)
{
	struct allocator a;

	(void)state;
	alloc_init(&a, 0, 1);
	assert_int_equal(alloc_free_blocks(&a), 0);
	assert_int_equal(get_ret(&a, 1, 0), -ENOSPC);
	assert_int_equal(get_ret(&a, 1, ALLOC_META), -ENOSPC);
	alloc_free(&a, 10, 5);
	assert_int_equal(get_ret(&a, 0, 0), -EINVAL);
	alloc_free(&a, 100, 0);	/* a no-op, not an empty extent */
	expect_extents(&a, (struct ext[]){ { 10, 5 } }, 1);
	alloc_destroy(&a);
}

static void test_merge_neighbours(void **state)
{
	struct allocator a;

	(void)state;
	alloc_init(&a, 0, 1);
	alloc_free(&a, 10, 10);
	alloc_free(&a, 30, 10);
	expect_extents(&a, (struct ext[]){ { 10, 10 }, { 30, 10 } }, 2);
	/* Fills the gap exactly: both sides merge into one. */
	alloc_free(&a, 20, 10);
	expect_extents(&a, (struct ext[]){ { 10, 30 } }, 1);
	/* Left and right neighbours alone. */
	alloc_free(&a, 0, 10);
	alloc_free(&a, 40, 2);
	expect_extents(&a, (struct ext[]){ { 0, 42 } }, 1);
	/* Not touching: separate. */
	alloc_free(&a, 43, 1);
	alloc_free(&a, 100, 1);
	expect_extents(&a, (struct ext[]){ { 0, 42 }, { 43, 1 }, { 100, 1 } }, 3);
	alloc_free(&a, 42, 1);
	expect_extents(&a, (struct ext[]){ { 0, 44 }, { 100, 1 } }, 2);
	assert_int_equal(alloc_free_blocks(&a), 45);

	/* Single blocks freed in reverse and shuffled orders end up as one extent. */
	for (uint64_t b = 299; b >= 200; b--)
		alloc_free(&a, b, 1);
	for (uint64_t i = 0; i < 100; i++)
		alloc_free(&a, 1000 + (i * 37) % 100, 1);
	expect_extents(&a, (struct ext[]){ { 0, 44 }, { 100, 1 }, { 200, 100 }, { 1000, 100 } }, 4);
	alloc_destroy(&a);
}

static void test_best_fit(void **state)
{
	struct allocator a;

	(void)state;
	alloc_init(&a, 0, 1);
	alloc_free(&a, 100, 5);
	alloc_free(&a, 200, 20);
	alloc_free(&a, 300, 10);
	alloc_free(&a, 400, 10);
	/* The smallest extent that holds the request; among equals, the lowest. */
	struct ext e = get(&a, 8, 0, 0, 0);
	assert_int_equal(e.start, 300);
	assert_int_equal(e.len, 8);
	e = get(&a, 10, 0, 0, 0);
	assert_int_equal(e.start, 400);
	assert_int_equal(e.len, 10);
	e = get(&a, 2, 0, 0, 0);
	assert_int_equal(e.start, 308);	/* the 2-block remainder is now the best fit */
	e = get(&a, 5, 0, 0, 0);
	assert_int_equal(e.start, 100);
	e = get(&a, 11, 0, 0, 0);
	assert_int_equal(e.start, 200);
	assert_int_equal(e.len, 11);
	/* Nothing holds 30: the largest piece comes back, short. */
	e = get(&a, 30, 0, 0, 0);
	assert_int_equal(e.start, 211);
	assert_int_equal(e.len, 9);
	assert_int_equal(alloc_free_blocks(&a), 0);
	assert_int_equal(get_ret(&a, 1, ALLOC_META), -ENOSPC);
	alloc_destroy(&a);
}

static void test_goal(void **state)
{
	struct allocator a;

	(void)state;
	alloc_init(&a, 0, 1);
	alloc_free(&a, 100, 100);
	alloc_free(&a, 500, 100);
	/* A free goal is taken as is, from the middle of an extent. */
	struct ext e = get(&a, 10, 150, 0, 0);
	assert_int_equal(e.start, 150);
	assert_int_equal(e.len, 10);
	expect_extents(&a, (struct ext[]){ { 100, 50 }, { 160, 40 }, { 500, 100 } }, 3);
	/* Extending in place stops at the end of the free extent rather than moving the file. */
	e = get(&a, 100, 190, 0, 0);
	assert_int_equal(e.start, 190);
	assert_int_equal(e.len, 10);
	/* A goal in use: best fit instead. */
	e = get(&a, 5, 155, 0, 0);
	assert_int_equal(e.start, 160);
	/* A goal at the first block of an extent. */
	e = get(&a, 3, 500, 0, 0);
	assert_int_equal(e.start, 500);
	/* The goal wins over best fit even for metadata. */
	e = get(&a, 1, 120, 0, ALLOC_META);
	assert_int_equal(e.start, 120);
	alloc_destroy(&a);
}

#define ALIGN 512u	/* 2 MiB of 4 KiB blocks */

static void test_align(void **state)
{
	struct allocator a;

	(void)state;
	alloc_init(&a, 0, ALIGN);
	alloc_free(&a, 1000, 10000);
	/* Large requests: media block congruent to the file block modulo 2 MiB. */
	struct ext e = get(&a, 600, 0, 7, ALLOC_ALIGN);
	assert_int_equal(e.len, 600);
	assert_int_equal(e.start % ALIGN, 7);
	e = get(&a, ALIGN / 2, 0, 3 * ALIGN, ALLOC_ALIGN);
	assert_int_equal(e.len, ALIGN / 2);
	assert_int_equal(e.start % ALIGN, 0);
	e = get(&a, 1000, 0, 12345, ALLOC_ALIGN);
	assert_int_equal(e.start % ALIGN, 12345 % ALIGN);
	/* Small requests are not aligned: plain best fit, from the start of the smallest extent. */
	struct ext ext[8];
	size_t n = extents(&a, ext, 8);
	struct ext smallest = { 0, UINT64_MAX };
	for (size_t i = 0; i < n; i++)
		if (ext[i].len >= ALIGN / 2 - 1 && ext[i].len < smallest.len)
			smallest = ext[i];
	assert_true(smallest.len != UINT64_MAX);
	e = get(&a, ALIGN / 2 - 1, 0, 5, ALLOC_ALIGN);
	assert_int_equal(e.start, smallest.start);
	alloc_destroy(&a);

	/* A perfect-size extent that cannot be aligned loses to a larger one that can. */
	alloc_init(&a, 0, ALIGN);
	alloc_free(&a, 1001, 600);
	alloc_free(&a, 5000, 1200);
	e = get(&a, 600, 0, 0, ALLOC_ALIGN);
	assert_int_equal(e.start, 5120);
	assert_int_equal(e.len, 600);
	/* Without ALLOC_ALIGN, best fit takes the exact one. */
	e = get(&a, 600, 0, 0, 0);
	assert_int_equal(e.start, 1001);
	alloc_destroy(&a);

	/* No extent allows alignment: fall back to best fit rather than fail. */
	alloc_init(&a, 0, ALIGN);
	alloc_free(&a, 1001, 600);
	e = get(&a, 600, 0, 0, ALLOC_ALIGN);
	assert_int_equal(e.start, 1001);
	assert_int_equal(e.len, 600);
	alloc_destroy(&a);

	/* A goal (extending a file in place) beats alignment. */
	alloc_init(&a, 0, ALIGN);
	alloc_free(&a, 1000, 10000);
	e = get(&a, 600, 1001, 0, ALLOC_ALIGN);
	assert_int_equal(e.start, 1001);
	alloc_destroy(&a);

	/* With align 1 (tiny block counts) ALLOC_ALIGN changes nothing. */
	alloc_init(&a, 0, 0);
	assert_int_equal(a.align, 1);
	alloc_free(&a, 1001, 600);
	alloc_free(&a, 5000, 1200);
	e = get(&a, 600, 0, 0, ALLOC_ALIGN);
	assert_int_equal(e.start, 1001);
	alloc_destroy(&a);
}

static void test_reserve(void **state)
{
	struct allocator a;

	(void)state;
	alloc_init(&a, 100, 1);
	alloc_free(&a, 0, 1000);
	assert_int_equal(alloc_free_blocks(&a), 1000);
	assert_int_equal(alloc_avail_blocks(&a), 900);
	/* Data allocations stop at the reserve, even when asked for more. */
	struct ext e = get(&a, 2000, 0, 0, 0);
	assert_int_equal(e.len, 900);
	assert_int_equal(alloc_avail_blocks(&a), 0);
	assert_int_equal(get_ret(&a, 1, 0), -ENOSPC);
	assert_int_equal(get_ret(&a, 1, ALLOC_ALIGN), -ENOSPC);
	/* Metadata may use it, all of it. */
	e = get(&a, 60, 0, 0, ALLOC_META);
	assert_int_equal(e.len, 60);
	e = get(&a, 100, 0, 0, ALLOC_META);
	assert_int_equal(e.len, 40);
	assert_int_equal(alloc_free_blocks(&a), 0);
	assert_int_equal(get_ret(&a, 1, ALLOC_META), -ENOSPC);
	/* Freeing below the reserve helps metadata only. */
	alloc_free(&a, 500, 50);
	assert_int_equal(alloc_avail_blocks(&a), 0);
	assert_int_equal(get_ret(&a, 1, 0), -ENOSPC);
	e = get(&a, 1, 0, 0, ALLOC_META);
	assert_int_equal(e.start, 549);	/* metadata without a goal: the top of free space */
	alloc_destroy(&a);
}

static void test_fragmented_partial(void **state)
{
	struct allocator a;
	uint8_t seen[200] = { 0 };
	uint64_t got = 0;

	(void)state;
	alloc_init(&a, 0, 1);
	for (uint64_t b = 0; b < 200; b += 2)
		alloc_free(&a, b, 1);
	assert_int_equal(a.nextents, 100);
	/* Every request gets one block: callers loop. */
	for (;;) {
		struct alloc_req req = { .want = 10 };
		uint64_t s, l;
		int ret = alloc_get(&a, &req, &s, &l);

		if (ret == -ENOSPC)
			break;
		assert_int_equal(ret, 0);
		assert_int_equal(l, 1);
		assert_true(s < 200 && s % 2 == 0);
		assert_int_equal(seen[s], 0);
		seen[s] = 1;
		got++;
	}
	assert_int_equal(got, 100);
	assert_int_equal(a.nextents, 0);
	alloc_destroy(&a);
}

static void test_take(void **state)
{
	struct allocator a;

	(void)state;
	alloc_init(&a, 0, 1);
	alloc_free(&a, 0, 100);
	assert_int_equal(alloc_take(&a, 10, 10), 0);
	expect_extents(&a, (struct ext[]){ { 0, 10 }, { 20, 80 } }, 2);
	/* Partly in use, or spanning two extents: refused, nothing changes. */
	assert_int_equal(alloc_take(&a, 5, 10), -ENOENT);
	assert_int_equal(alloc_take(&a, 15, 10), -ENOENT);
	assert_int_equal(alloc_take(&a, 95, 10), -ENOENT);
	assert_int_equal(alloc_take(&a, 500, 1), -ENOENT);
	expect_extents(&a, (struct ext[]){ { 0, 10 }, { 20, 80 } }, 2);
	/* Whole extents and edges. */
	assert_int_equal(alloc_take(&a, 0, 10), 0);
	assert_int_equal(alloc_take(&a, 99, 1), 0);
	assert_int_equal(alloc_take(&a, 20, 1), 0);
	expect_extents(&a, (struct ext[]){ { 21, 78 } }, 1);
	assert_int_equal(alloc_free_blocks(&a), 78);
	/* Taken blocks are never handed out. */
	for (;;) {
		struct alloc_req req = { .want = 7 };
		uint64_t s, l;

		if (alloc_get(&a, &req, &s, &l))
			break;
		assert_true(s >= 21 && s + l <= 99);
	}
	alloc_destroy(&a);
}

/* ---- randomized run against a bitmap ---- */

#define NB 8192u	/* blocks in the model */
#define BASE 5000u	/* first block: the data area never starts at 0 */
#define RESERVE 64u
#define SALIGN 64u

struct model {
	uint8_t used[NB];	/* 1: allocated (not in the allocator) */
	uint64_t nfree;
	struct ext *owned;	/* extents handed out and not yet freed */
	size_t nowned, capowned;
};

static void own(struct model *m, uint64_t start, uint64_t len)
{
	if (m->nowned == m->capowned) {
		m->capowned = m->capowned ? m->capowned * 2 : 256;
		m->owned = realloc(m->owned, m->capowned * sizeof(*m->owned));
		assert_non_null(m->owned);
	}
	m->owned[m->nowned++] = (struct ext){ start, len };
}

/* Largest free run in the model, and the best fit for `want` (smallest run >= want, lowest start). */
static void model_runs(const struct model *m, uint64_t want, uint64_t *maxrun, uint64_t *fit_start, uint64_t *fit_len)
{
	*maxrun = 0;
	*fit_len = UINT64_MAX;
	*fit_start = 0;
	for (uint64_t b = 0; b < NB;) {
		if (m->used[b]) {
			b++;
			continue;
		}
		uint64_t s = b;
		while (b < NB && !m->used[b])
			b++;
		uint64_t len = b - s;
		if (len > *maxrun)
			*maxrun = len;
		if (len >= want && len < *fit_len) {
			*fit_len = len;
			*fit_start = s + BASE;
		}
	}
}

/* The allocator's extents are exactly the model's free runs. */
static void model_compare(struct allocator *a, const struct model *m)
{
	static struct ext ext[NB];
	size_t n = extents(a, ext, NB), k = 0;

	for (uint64_t b = 0; b < NB;) {
		if (m->used[b]) {
			b++;
			continue;
		}
		uint64_t s = b;
		while (b < NB && !m->used[b])
			b++;
		if (k >= n || ext[k].start != s + BASE || ext[k].len != b - s)
			fail_msg("free run [%llu,+%llu) of the model is not extent %zu of the allocator",
				 (unsigned long long)(s + BASE), (unsigned long long)(b - s), k);
		k++;
	}
	assert_int_equal(k, n);
}

struct stats {
	uint64_t gets, shorts, enospc, aligned, must_align, goals;
};

/* A request as file writes make them: mostly small, sometimes large, with or without a goal. */
static struct alloc_req random_req(const struct model *m, uint64_t *rng)
{
	struct alloc_req req = { .want = rng_below(rng, 4) ? 1 + rng_below(rng, 16) : 1 + rng_below(rng, 400) };
	uint64_t gr = rng_below(rng, 16);

	/* Random goals split free runs in the middle: keep them rare, or the space shatters. */
	if (gr < 4 && m->nowned) {
		struct ext o = m->owned[rng_below(rng, m->nowned)];
		req.goal = o.start + o.len;
	} else if (gr == 4) {
		req.goal = BASE + rng_below(rng, NB);
	}
	req.lblk = rng_below(rng, 100000);
	req.flags = (rng_below(rng, 4) == 0 ? ALLOC_META : 0) | (rng_below(rng, 2) ? ALLOC_ALIGN : 0);
	return req;
}

/* alloc_get, checked against the model (the best-fit choice only when check_fit), then recorded. */
static int model_alloc(struct allocator *a, struct model *m, const struct alloc_req *req, bool check_fit,
		       struct stats *st)
{
	uint64_t avail = (req->flags & ALLOC_META) ? m->nfree : (m->nfree > RESERVE ? m->nfree - RESERVE : 0);
	uint64_t w = req->want < avail ? req->want : avail;
	bool goal_free = req->goal >= BASE && req->goal < BASE + NB && !m->used[req->goal - BASE];
	bool large_align = (req->flags & ALLOC_ALIGN) && w >= SALIGN / 2;
	/* A taken goal: the first free run after it, if it starts within SALIGN blocks. */
	uint64_t near_start = 0, near_len = 0;
	if (req->goal && !goal_free && !large_align) {
		for (uint64_t b = req->goal >= BASE ? req->goal - BASE : 0; b < NB; b++) {
			if (!m->used[b]) {
				if (b + BASE - req->goal < SALIGN) {
					near_start = b + BASE;
					while (b < NB && !m->used[b])
						b++;
					near_len = b + BASE - near_start;
				}
				break;
			}
		}
	}
	/* Metadata whose goal failed (or that had none): the top of the highest free run. */
	uint64_t top_end = 0, top_len = 0;
	bool top = !goal_free && !near_len && (req->flags & (ALLOC_META | ALLOC_TOP));
	if (top) {
		for (uint64_t b = NB; b-- > 0;) {
			if (!m->used[b]) {
				top_end = b + 1 + BASE;
				while (b > 0 && !m->used[b - 1])
					b--;
				top_len = top_end - (b + BASE);
				break;
			}
		}
	}
	bool align = !goal_free && !near_len && !top && large_align;
	uint64_t maxrun = 0, fit_start = 0, fit_len = 0;
	uint64_t s = 0, l = 0;

	if (check_fit || align)
		model_runs(m, w, &maxrun, &fit_start, &fit_len);
	int ret = alloc_get(a, req, &s, &l);

	if (avail == 0) {
		assert_int_equal(ret, -ENOSPC);
		st->enospc++;
		return ret;
	}
	assert_int_equal(ret, 0);
	st->gets++;
	if (l < req->want)
		st->shorts++;
	if (l < 1 || l > w)
		fail_msg("got %llu blocks for want %llu avail %llu", (unsigned long long)l,
			 (unsigned long long)req->want, (unsigned long long)avail);
	if (s < BASE || s + l > BASE + NB)
		fail_msg("extent [%llu,+%llu) outside the space", (unsigned long long)s, (unsigned long long)l);
	for (uint64_t b = s; b < s + l; b++)
		if (m->used[b - BASE])
			fail_msg("block %llu handed out twice", (unsigned long long)b);
	if (goal_free) {
		/* Extend in place: exactly the goal, as far as its free run reaches. */
		assert_int_equal(s, req->goal);
		st->goals++;
	} else if (near_len) {
		/* The goal is taken: the nearest free run after it keeps the file together. */
		assert_int_equal(s, near_start);
		assert_int_equal(l, w < near_len ? w : near_len);
	} else if (top) {
		/* Metadata goes to the top of free space, away from data. */
		assert_int_equal(s + l, top_end);
		assert_int_equal(l, w < top_len ? w : top_len);
	} else if (align) {
		if (s % SALIGN == req->lblk % SALIGN)
			st->aligned++;
		/* A run with align - 1 blocks of slack always admits an aligned placement: it must be used. */
		if (maxrun >= w + SALIGN - 1) {
			st->must_align++;
			if (s % SALIGN != req->lblk % SALIGN || l != w)
				fail_msg("want %llu at lblk %llu: got [%llu,+%llu), not aligned though a run of %llu exists",
					 (unsigned long long)w, (unsigned long long)req->lblk, (unsigned long long)s,
					 (unsigned long long)l, (unsigned long long)maxrun);
		}
	} else if (check_fit) {
		if (fit_len != UINT64_MAX) {
			/* Some run holds the whole request: the smallest such, from its start. */
			assert_int_equal(l, w);
			assert_int_equal(s, fit_start);
		} else {
			assert_int_equal(l, maxrun);
		}
	}
	memset(&m->used[s - BASE], 1, l);
	m->nfree -= l;
	own(m, s, l);
	return 0;
}

static void test_random_against_model(void **state)
{
	struct model *m = calloc(1, sizeof(*m));
	struct allocator a;
	uint64_t rng = 0x9e3779b97f4a7c15ull;
	struct stats st = { 0 };

	(void)state;
	assert_non_null(m);
	alloc_init(&a, RESERVE, SALIGN);
	/* Start with everything used, then free it in random pieces and order (exercises merging). */
	memset(m->used, 1, sizeof(m->used));
	for (uint64_t b = 0; b < NB;) {
		uint64_t len = 1 + rng_below(&rng, 40);
		if (b + len > NB)
			len = NB - b;
		own(m, b + BASE, len);
		b += len;
	}
	while (m->nowned) {
		size_t i = rng_below(&rng, m->nowned);
		struct ext e = m->owned[i];

		m->owned[i] = m->owned[--m->nowned];
		alloc_free(&a, e.start, e.len);
		memset(&m->used[e.start - BASE], 0, e.len);
		m->nfree += e.len;
	}
	assert_int_equal(a.nextents, 1);
	model_compare(&a, m);

	for (int op = 0; op < 200000; op++) {
		/* Allocation is likelier while more than half is free: the space hovers around half full. */
		uint64_t r = rng_below(&rng, 100);
		uint64_t split = m->nfree > NB / 2 ? 60 : 40;

		if (r < split) {
			struct alloc_req req = random_req(m, &rng);

			model_alloc(&a, m, &req, op % 8 == 0, &st);
		} else if (r < 95) {
			/* Free all or a piece of an owned extent. */
			if (!m->nowned)
				continue;
			size_t i = rng_below(&rng, m->nowned);
			struct ext e = m->owned[i];
			uint64_t off = rng_below(&rng, 8) ? 0 : rng_below(&rng, e.len);
			uint64_t len = off ? 1 + rng_below(&rng, e.len - off) : e.len;

			m->owned[i] = m->owned[--m->nowned];
			if (off)
				own(m, e.start, off);
			if (off + len < e.len)
				own(m, e.start + off + len, e.len - off - len);
			alloc_free(&a, e.start + off, len);
			memset(&m->used[e.start + off - BASE], 0, len);
			m->nfree += len;
		} else {
			/* Take a free range (the checker's path), or try one that is partly in use. */
			uint64_t b = rng_below(&rng, NB);
			uint64_t len = 1 + rng_below(&rng, 8);
			bool all_free = b + len <= NB;

			for (uint64_t k = b; k < b + len && all_free; k++)
				all_free = !m->used[k];
			int ret = alloc_take(&a, b + BASE, len);
			if (all_free) {
				assert_int_equal(ret, 0);
				memset(&m->used[b], 1, len);
				m->nfree -= len;
				own(m, b + BASE, len);
			} else {
				assert_int_equal(ret, -ENOENT);
			}
		}
		/* Now and then fill the space up: data allocations must stop exactly at the reserve. */
		if (op % 20000 == 19999) {
			for (;;) {
				struct alloc_req req = random_req(m, &rng);

				req.flags &= ~(unsigned)ALLOC_META;
				if (model_alloc(&a, m, &req, false, &st) == -ENOSPC)
					break;
			}
			assert_true(m->nfree <= RESERVE);
			assert_int_equal(alloc_avail_blocks(&a), 0);
		}
		assert_int_equal(alloc_free_blocks(&a), m->nfree);
		if (op % 512 == 0)
			model_compare(&a, m);
	}
	model_compare(&a, m);
	print_message("alloc model: %llu gets, %llu short, %llu ENOSPC, %llu aligned (%llu forced), %llu at goal\n",
		      (unsigned long long)st.gets, (unsigned long long)st.shorts, (unsigned long long)st.enospc,
		      (unsigned long long)st.aligned, (unsigned long long)st.must_align, (unsigned long long)st.goals);
	/* The run must have exercised every path, or it proves little. */
	assert_true(st.shorts > 100);
	assert_true(st.enospc >= 10);
	assert_true(st.must_align > 100);
	assert_true(st.goals > 1000);

	/* Give everything back: one extent again. */
	for (size_t i = 0; i < m->nowned; i++)
		alloc_free(&a, m->owned[i].start, m->owned[i].len);
	assert_int_equal(alloc_free_blocks(&a), NB);
	expect_extents(&a, (struct ext[]){ { BASE, NB } }, 1);
	alloc_destroy(&a);
	free(m->owned);
	free(m);
}

/* A block freed twice (a corrupt image) must not make the index overlap or count it twice. */
static void test_double_free_is_clipped(void **state)
{
	struct allocator a;
	uint64_t s, l;

	(void)state;
	alloc_init(&a, 0, 512);
	alloc_free(&a, 100, 50);
	alloc_free(&a, 120, 50);	/* overlaps [120, 150) */
	alloc_free(&a, 90, 100);	/* covers everything, and more on both sides */
	assert_int_equal(alloc_free_blocks(&a), 100);
	assert_int_equal(a.nextents, 1);
	struct alloc_req req = { .want = 1000 };
	assert_int_equal(alloc_get(&a, &req, &s, &l), 0);
	assert_int_equal(s, 90);
	assert_int_equal(l, 100);
	assert_int_equal(alloc_free_blocks(&a), 0);
	alloc_destroy(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty_and_invalid),
		cmocka_unit_test(test_merge_neighbours),
		cmocka_unit_test(test_best_fit),
		cmocka_unit_test(test_goal),
		cmocka_unit_test(test_align),
		cmocka_unit_test(test_reserve),
		cmocka_unit_test(test_double_free_is_clipped),
		cmocka_unit_test(test_fragmented_partial),
		cmocka_unit_test(test_take),
		cmocka_unit_test(test_random_against_model),
	};

	return cmocka_run_group_tests_name("alloc", tests, NULL, NULL);
}
