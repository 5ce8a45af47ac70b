/* SPDX-License-Identifier: MIT */
/*
 * The pin table: reference counts over media block ranges (checked against a naive array of
 * per-block counts under a million random operations), the unpin notifications, and pins with
 * owners, limits and revocation.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "daxfs/ioctl.h"
#include "mmap_pin.h"

#define SPACE 4096	/* blocks in the model: small enough that ranges collide all the time */

struct model {
	uint32_t count[SPACE];
	uint8_t unpinned[SPACE];	/* blocks reported by the callback since the last check */
	uint64_t callbacks;
};

static void on_unpinned(void *ctx, uint64_t start, uint64_t len)
{
	struct model *m = ctx;

	m->callbacks++;
	for (uint64_t b = start; b < start + len; b++) {
		assert_true(b < SPACE);
		assert_int_equal(m->unpinned[b], 0);	/* each drop to zero is reported once */
		m->unpinned[b] = 1;
	}
}

struct walk {
	struct model *m;
	uint64_t next;
};

static void check_run(void *arg, uint64_t start, uint64_t len, uint32_t count)
{
	struct walk *w = arg;

	assert_int_equal(start, w->next);	/* runs tile the range with no gap */
	assert_true(len > 0);
	for (uint64_t b = start; b < start + len; b++)
		assert_int_equal(w->m->count[b], count);
	w->next = start + len;
}

static void check_all(struct pin_table *t, struct model *m)
{
	struct walk w = { m, 0 };
	uint64_t pinned = 0;

	pin_runs_locked(t, 0, SPACE, check_run, &w);
	assert_int_equal(w.next, SPACE);
	for (int b = 0; b < SPACE; b++)
		pinned += m->count[b] > 0;
	assert_int_equal(t->pinned_blocks, pinned);
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* A million refs and unrefs over overlapping ranges; the tree must agree with the array throughout. */
static void test_refcount_stress(void **state)
{
	struct model *m = calloc(1, sizeof(*m));
	struct pin_table t;
	uint64_t seed = 0x9e3779b97f4a7c15ull;
	/* Ranges currently referenced, so unrefs only drop what was taken, like real pins. */
	enum { MAXR = 4096 };
	uint64_t (*held)[2] = malloc(MAXR * sizeof(*held));
	size_t nheld = 0;

	(void)state;
	pin_table_init(&t, 0, 0, on_unpinned, m);
	for (int op = 0; op < 1000000; op++) {
		bool take = nheld == 0 || (nheld < MAXR && rnd(&seed) % 100 < 52);

		if (take) {
			uint64_t start = rnd(&seed) % SPACE;
			uint64_t len = 1 + rnd(&seed) % (rnd(&seed) % 8 == 0 ? 512 : 16);

			if (start + len > SPACE)
				len = SPACE - start;
			assert_int_equal(pin_ref_locked(&t, start, len), 0);
			for (uint64_t b = start; b < start + len; b++)
				m->count[b]++;
			held[nheld][0] = start;
			held[nheld][1] = len;
			nheld++;
		} else {
			size_t i = rnd(&seed) % nheld;
			uint64_t start = held[i][0], len = held[i][1];

			memset(m->unpinned, 0, sizeof(m->unpinned));
			pin_unref_locked(&t, start, len);
			for (uint64_t b = start; b < start + len; b++) {
				m->count[b]--;
				/* Reported exactly when this unref dropped the block to zero. */
				assert_int_equal(m->unpinned[b], m->count[b] == 0);
			}
			held[i][0] = held[nheld - 1][0];
			held[i][1] = held[nheld - 1][1];
			nheld--;
		}
		if (op % 50000 == 0)
			check_all(&t, m);
	}
	check_all(&t, m);
	while (nheld > 0) {
		nheld--;
		pin_unref_locked(&t, held[nheld][0], held[nheld][1]);
	}
	assert_int_equal(t.pinned_blocks, 0);
	assert_int_equal(pin_segments_locked(&t), 0);	/* nothing left behind, not even zero-count segments */
	pin_table_destroy(&t);
	free(held);
	free(m);
}

/* Equal neighbours merge, so nested and adjacent references stay a handful of segments. */
static void test_split_and_merge(void **state)
{
	struct model *m = calloc(1, sizeof(*m));
	struct pin_table t;

	(void)state;
	pin_table_init(&t, 0, 0, on_unpinned, m);
	assert_int_equal(pin_ref_locked(&t, 100, 100), 0);	/* [100,200):1 */
	assert_int_equal(pin_ref_locked(&t, 150, 10), 0);	/* split in three */
	assert_int_equal(pin_segments_locked(&t), 3);
	assert_int_equal(pin_max_count_locked(&t, 0, SPACE), 2);
	pin_unref_locked(&t, 150, 10);	/* back to one segment */
	assert_int_equal(pin_segments_locked(&t), 1);
	assert_int_equal(m->callbacks, 0);	/* nothing reached zero */
	assert_int_equal(pin_ref_locked(&t, 200, 50), 0);	/* adjacent, same count: merges */
	assert_int_equal(pin_segments_locked(&t), 1);
	struct walk w = { m, 100 };
	memset(m->count, 0, sizeof(m->count));
	for (int b = 100; b < 250; b++)
		m->count[b] = 1;
	pin_runs_locked(&t, 100, 150, check_run, &w);
	assert_int_equal(w.next, 250);
	/* A partial unpin from the middle reports exactly the middle. */
	pin_unref_locked(&t, 120, 30);
	assert_int_equal(m->callbacks, 1);
	for (int b = 0; b < SPACE; b++)
		assert_int_equal(m->unpinned[b], b >= 120 && b < 150);
	assert_true(pin_any_locked(&t, 110, 20));
	assert_false(pin_any_locked(&t, 120, 30));
	assert_true(pin_any_locked(&t, 149, 2));
	pin_table_destroy(&t);
	free(m);
}

static void test_pins_owners_limits(void **state)
{
	struct pin_table t;
	struct pin_owner a, b;
	struct pin_ext e = { .lblk = 0, .pblk = 1000, .len = 8 };
	struct pin *p[4], *q;

	(void)state;
	pin_table_init(&t, 5, 3, NULL, NULL);
	pin_owner_init(&a);
	pin_owner_init(&b);
	for (int i = 0; i < 3; i++)
		assert_int_equal(pin_add_locked(&t, &a, 7, 0, 8, DAXFS_PIN_WRITE, 1, &e, 1, &p[i]), 0);
	assert_int_equal(pin_add_locked(&t, &a, 7, 0, 8, 0, 1, &e, 1, &q), -EMFILE);
	assert_int_equal(pin_add_locked(&t, &b, 7, 0, 8, 0, 1, &e, 1, &q), 0);
	assert_int_equal(pin_add_locked(&t, &b, 7, 0, 8, 0, 1, &e, 1, &q), 0);
	assert_int_equal(pin_add_locked(&t, &b, 7, 0, 8, 0, 1, &e, 1, &q), -ENFILE);
	assert_int_equal(t.refused, 2);
	assert_int_equal(pin_max_count_locked(&t, 1000, 8), 5);
	/* Ids are owned: another owner's id is EBADF, an unknown one ENOENT. */
	assert_int_equal(pin_lookup_locked(&t, &b, p[0]->id, &q), -EBADF);
	assert_int_equal(pin_lookup_locked(&t, &a, 999999, &q), -ENOENT);
	uint64_t id1 = p[1]->id;	/* p[1] is freed by its removal */
	assert_int_equal(pin_remove(&t, &b, id1), -EBADF);
	assert_int_equal(pin_remove(&t, &a, id1), 0);
	assert_int_equal(pin_remove(&t, &a, id1), -ENOENT);
	pin_release_owner(&t, &a);
	assert_int_equal(a.npins, 0);
	assert_int_equal(t.npins, 2);
	assert_int_equal(pin_max_count_locked(&t, 1000, 8), 2);
	pin_release_all(&t);
	assert_int_equal(t.npins, 0);
	assert_int_equal(t.pinned_blocks, 0);
	assert_int_equal(pin_segments_locked(&t), 0);
	pin_table_destroy(&t);
}

static void test_revoke(void **state)
{
	struct model *m = calloc(1, sizeof(*m));
	struct pin_table t;
	struct pin_owner a;
	struct pin_ext e1 = { .lblk = 0, .pblk = 10, .len = 4 }, e2 = { .lblk = 0, .pblk = 50, .len = 4 };
	struct pin *p1, *p2;

	(void)state;
	pin_table_init(&t, 0, 0, on_unpinned, m);
	pin_owner_init(&a);
	assert_int_equal(pin_add_locked(&t, &a, 1, 0, 4, 0, 1, &e1, 1, &p1), 0);
	assert_int_equal(pin_add_locked(&t, &a, 2, 0, 4, 0, 1, &e2, 1, &p2), 0);
	/* Breaking the lease on [12, 13) affects only the pin holding it. */
	assert_int_equal(pin_break_locked(&t, 12, 1, 5000), 1);
	assert_int_equal(p1->state, DAXFS_PIN_REVOKING);
	assert_int_equal(p2->state, DAXFS_PIN_ACTIVE);
	assert_int_equal(pin_revoke_expired_locked(&t, 4999), 0);
	assert_true(pin_any_locked(&t, 10, 4));
	assert_int_equal(pin_revoke_expired_locked(&t, 5000), 1);
	assert_int_equal(p1->state, DAXFS_PIN_REVOKED);
	assert_false(pin_any_locked(&t, 10, 4));
	for (int b = 10; b < 14; b++)
		assert_int_equal(m->unpinned[b], 1);
	/* The revoked pin still exists for its holder; removing it drops nothing twice. */
	assert_int_equal(pin_remove(&t, &a, p1->id), 0);
	assert_int_equal(t.revoked, 1);
	assert_true(pin_any_locked(&t, 50, 4));
	pin_table_destroy(&t);
	free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_refcount_stress),
		cmocka_unit_test(test_split_and_merge),
		cmocka_unit_test(test_pins_owners_limits),
		cmocka_unit_test(test_revoke),
	};
	return cmocka_run_group_tests_name("pins", tests, NULL, NULL);
}
