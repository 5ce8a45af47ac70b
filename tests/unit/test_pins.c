/* SPDX-License-Identifier: MIT */
/*
 * The pin table: reference counts over media block ranges (checked against a naive array of
 * per-block counts under a million random operations), the unpin notifications, pins with owners,
 * limits, events, lease breaks and both kinds of revocation, invalidations with their
 * acknowledgement and refault, breaks, and the fence between a pin and the DMA engine.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>
#include <unistd.h>

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

	if (!m)
		return;
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
	struct pin_callbacks cb = { .unpinned = on_unpinned, .ctx = m };
	pin_table_init(&t, 12, 0, 0, &cb);
	lock_take(&t.lock);
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
	lock_drop(&t.lock);
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
	struct pin_callbacks cb = { .unpinned = on_unpinned, .ctx = m };
	pin_table_init(&t, 12, 0, 0, &cb);
	lock_take(&t.lock);
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
	lock_drop(&t.lock);
	pin_table_destroy(&t);
	free(m);
}

/* A pin over one extent of media blocks [pblk, pblk + len) at file block 0 of ino. */
static struct pin *add(struct pin_table *t, struct pin_owner *o, uint64_t ino, uint64_t pblk, uint64_t len,
		       uint32_t flags)
{
	struct pin_ext e = { .lblk = 0, .pblk = pblk, .len = len };
	struct pin *p;

	assert_int_equal(pin_add_locked(t, o, ino, 0, len, flags, 1, 0, 0, &e, 1, &p), 0);
	return p;
}

static int remove_id(struct pin_table *t, struct pin_owner *o, uint64_t id)
{
	struct pin *p;
	int ret = pin_lookup_locked(t, o, id, &p);

	if (ret == 0)
		pin_remove_locked(t, p);
	return ret;
}

static void test_pins_owners_limits(void **state)
{
	struct pin_table t;
	struct pin_owner a, b;
	struct pin_ext e = { .lblk = 0, .pblk = 1000, .len = 8 };
	struct pin *p[4], *q;

	(void)state;
	pin_table_init(&t, 12, 5, 3, NULL);
	pin_owner_init(&a);
	pin_owner_init(&b);
	lock_take(&t.lock);
	for (int i = 0; i < 3; i++)
		assert_int_equal(pin_add_locked(&t, &a, 7, 0, 8, DAXFS_PIN_WRITE, 1, 0, 0, &e, 1, &p[i]), 0);
	assert_int_equal(pin_add_locked(&t, &a, 7, 0, 8, 0, 1, 0, 0, &e, 1, &q), -EMFILE);
	assert_int_equal(pin_add_locked(&t, &b, 7, 0, 8, 0, 1, 0, 0, &e, 1, &q), 0);
	assert_int_equal(pin_add_locked(&t, &b, 7, 0, 8, 0, 1, 0, 0, &e, 1, &q), 0);
	assert_int_equal(pin_add_locked(&t, &b, 7, 0, 8, 0, 1, 0, 0, &e, 1, &q), -ENFILE);
	assert_int_equal(t.refused, 2);
	assert_int_equal(pin_max_count_locked(&t, 1000, 8), 5);
	/* Ids are owned: another owner's id is EBADF, an unknown one ENOENT. */
	assert_int_equal(pin_lookup_locked(&t, &b, p[0]->id, &q), -EBADF);
	assert_int_equal(pin_lookup_locked(&t, &a, 999999, &q), -ENOENT);
	uint64_t id1 = p[1]->id;	/* p[1] is freed by its removal */
	assert_int_equal(remove_id(&t, &b, id1), -EBADF);
	assert_int_equal(remove_id(&t, &a, id1), 0);
	assert_int_equal(remove_id(&t, &a, id1), -ENOENT);
	/* The pins of a file, in file order. */
	int of_ino = 0;
	for (struct pin *x = pin_first_of_ino_locked(&t, 7); x; x = pin_next_of_ino_locked(&t, x))
		of_ino++;
	assert_int_equal(of_ino, 4);
	assert_null(pin_first_of_ino_locked(&t, 8));
	lock_drop(&t.lock);
	pin_release_owner(&t, &a);
	assert_int_equal(a.npins, 0);
	assert_int_equal(t.npins, 2);
	lock_take(&t.lock);
	assert_int_equal(pin_max_count_locked(&t, 1000, 8), 2);
	lock_drop(&t.lock);
	pin_release_all(&t);
	assert_int_equal(t.npins, 0);
	assert_int_equal(t.pinned_blocks, 0);
	assert_int_equal(pin_segments_locked(&t), 0);
	/* Unmount told b's holder that its pins were dropped. */
	struct daxfs_event ev[4];
	uint64_t next;
	lock_take(&t.lock);
	assert_int_equal(pin_events_read_locked(&b, 1, ev, 4, &next), 2);
	assert_int_equal(ev[0].type, DAXFS_EV_DROPPED);
	lock_drop(&t.lock);
	pin_owner_destroy(&a);
	pin_owner_destroy(&b);
	pin_table_destroy(&t);
}

static void test_events(void **state)
{
	struct pin_table t;
	struct pin_owner a;
	struct daxfs_event ev[8];
	uint64_t next;

	(void)state;
	pin_table_init(&t, 12, 0, 0, NULL);
	pin_owner_init(&a);
	lock_take(&t.lock);
	struct pin *p = add(&t, &a, 1, 10, 4, 0);
	assert_int_equal(pin_events_read_locked(&a, 1, ev, 8, &next), 0);
	assert_int_equal(next, 1);
	assert_int_equal(pin_break_lease_locked(&t, p, 5000, 12), 0);
	/* A second break keeps the first deadline and tells nobody again. */
	assert_int_equal(pin_break_lease_locked(&t, p, 9000, 12), 0);
	assert_int_equal(p->deadline_ns, 5000);
	assert_int_equal(pin_events_read_locked(&a, 1, ev, 8, &next), 1);
	assert_int_equal(ev[0].seq, 1);
	assert_int_equal(ev[0].type, DAXFS_EV_LEASE_BREAK);
	assert_int_equal(ev[0].pin_id, p->id);
	assert_int_equal(ev[0].deadline_ns, 5000);
	assert_int_equal(ev[0].len, 4 << 12);
	assert_int_equal(next, 2);
	/* Reading again from the same seq returns it again: nothing is lost to a holder that polls. */
	assert_int_equal(pin_events_read_locked(&a, 1, ev, 8, &next), 1);
	/* Asking from the next seq consumes it. */
	assert_int_equal(pin_events_read_locked(&a, 2, ev, 8, &next), 0);
	assert_int_equal(a.nevents, 0);
	/* The deadline revokes it: not before, exactly at. */
	assert_int_equal(pin_expire_locked(&t, 4999, 12), 0);
	assert_int_equal(pin_expire_locked(&t, 5000, 12), 1);
	assert_int_equal(p->state, DAXFS_PIN_REVOKED);
	assert_int_equal(pin_events_read_locked(&a, 2, ev, 8, &next), 1);
	assert_int_equal(ev[0].seq, 2);
	assert_int_equal(ev[0].type, DAXFS_EV_REVOKED);
	assert_int_equal(pin_break_lease_locked(&t, p, 1, 12), -EINVAL);
	/* More than a page: next_seq is past the page, and reading on from it loses nothing. */
	for (int i = 0; i < 11; i++)
		pin_event_locked(&t, p, DAXFS_EV_DROPPED, 0, 1, 0, 12);
	uint64_t from = 2, want = 2;
	uint32_t got;
	while ((got = pin_events_read_locked(&a, from, ev, 4, &next)) > 0) {
		for (uint32_t i = 0; i < got; i++)
			assert_int_equal(ev[i].seq, want++);
		assert_int_equal(next, ev[got - 1].seq + 1);
		from = next;
	}
	assert_int_equal(want, 14);
	assert_int_equal(next, 14);	/* none left: the seq of the next event */
	lock_drop(&t.lock);
	pin_release_owner(&t, &a);
	pin_owner_destroy(&a);
	pin_table_destroy(&t);
}

/* The file system dropping an owner's pins on its own tells the holder, one DROPPED per pin. */
static void test_drop_owner(void **state)
{
	struct pin_table t;
	struct pin_owner a, b;
	struct daxfs_event ev[8];
	uint64_t next;

	(void)state;
	pin_table_init(&t, 12, 0, 0, NULL);
	pin_owner_init(&a);
	pin_owner_init(&b);
	lock_take(&t.lock);
	struct pin *p = add(&t, &a, 1, 10, 4, 0), *q = add(&t, &a, 1, 20, 2, 0);
	uint64_t pid = p->id, qid = q->id;
	add(&t, &b, 1, 10, 4, 0);
	lock_drop(&t.lock);
	pin_drop_owner(&t, &a);
	lock_take(&t.lock);
	assert_int_equal(a.npins, 0);
	assert_int_equal(pin_events_read_locked(&a, 1, ev, 8, &next), 2);
	assert_int_equal(ev[0].type, DAXFS_EV_DROPPED);
	assert_int_equal(ev[0].pin_id, pid);
	assert_int_equal(ev[1].type, DAXFS_EV_DROPPED);
	assert_int_equal(ev[1].pin_id, qid);
	assert_false(pin_any_locked(&t, 20, 2));
	assert_true(pin_any_locked(&t, 10, 4));	/* b's pin is b's */
	assert_int_equal(pin_events_read_locked(&b, 1, ev, 8, &next), 0);
	lock_drop(&t.lock);
	pin_release_owner(&t, &b);
	pin_owner_destroy(&a);
	pin_owner_destroy(&b);
	pin_table_destroy(&t);
}

/* A removing callback that tries what a policy's on_unpin hook might: break and revoke the pin. */
struct meddler {
	struct pin_table *t;
	int calls;
	int broke;		/* what pin_break_lease_locked answered */
	uint32_t state;		/* the pin's state after the attempts */
};

static void meddle(void *ctx, const struct pin *p)
{
	struct meddler *m = ctx;
	struct pin *q = (struct pin *)p;

	m->calls++;
	m->broke = pin_break_lease_locked(m->t, q, 1000, 12);
	pin_revoke_locked(m->t, q, 12);
	m->state = q->state;
}

/* The "revoked" field of the trace's unpin record of pin id: 1 true, 0 false, -1 none. */
static int unpin_revoked(const char *path, uint64_t id)
{
	char line[512], pat[64];
	int found = -1;
	FILE *f = fopen(path, "r");

	assert_non_null(f);
	snprintf(pat, sizeof(pat), "\"ev\":\"unpin\",\"pin\":%llu,", (unsigned long long)id);
	while (fgets(line, sizeof(line), f))
		if (strstr(line, pat))
			found = strstr(line, "\"revoked\":true") ? 1 : strstr(line, "\"revoked\":false") ? 0 : -2;
	fclose(f);
	return found;
}

/*
 * A pin going away can no longer be acted on, even from the hook that says it goes: unpinned, it is
 * neither broken nor revoked (no event, its unpin record says "revoked":false); revoked, the hook
 * runs once, and only its later unpin says "revoked":true.
 */
static void test_hook_on_going_pin(void **state)
{
	struct pin_table t;
	struct pin_owner a;
	struct daxfs_event ev[8];
	struct trace tr;
	uint64_t next;
	char path[] = "/tmp/daxfs-unit-trace-XXXXXX";
	struct meddler m = { .t = &t };
	struct pin_callbacks cb = { .removing = meddle, .ctx = &m };

	(void)state;
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	trace_init(&tr);
	assert_int_equal(trace_start(&tr, path), 0);
	pin_table_init(&t, 12, 0, 0, &cb);
	t.trace = &tr;
	pin_owner_init(&a);
	lock_take(&t.lock);
	struct pin *p = add(&t, &a, 1, 10, 4, 0), *q = add(&t, &a, 1, 20, 4, 0);
	uint64_t pid = p->id, qid = q->id;
	pin_remove_locked(&t, p);
	assert_int_equal(m.calls, 1);
	assert_int_equal(m.broke, -EINVAL);
	assert_int_equal(m.state, DAXFS_PIN_ACTIVE);
	assert_int_equal(t.revoked, 0);
	assert_int_equal(pin_events_read_locked(&a, 1, ev, 8, &next), 0);
	pin_revoke_locked(&t, q, 12);
	assert_int_equal(m.calls, 2);
	assert_int_equal(m.broke, -EINVAL);
	assert_int_equal(m.state, DAXFS_PIN_REVOKED);
	assert_int_equal(t.revoked, 1);
	assert_int_equal(pin_events_read_locked(&a, 1, ev, 8, &next), 1);
	assert_int_equal(ev[0].type, DAXFS_EV_REVOKED);
	pin_remove_locked(&t, q);
	assert_int_equal(m.calls, 2);	/* a revoked pin is not reported again */
	lock_drop(&t.lock);
	trace_stop(&tr);
	assert_int_equal(unpin_revoked(path, pid), 0);
	assert_int_equal(unpin_revoked(path, qid), 1);
	trace_destroy(&tr);
	unlink(path);
	pin_owner_destroy(&a);
	pin_table_destroy(&t);
}

/* Revocation: a revocable pin lets go of its blocks at once; another keeps them until removed. */
static void test_revoke_kinds(void **state)
{
	struct model *m = calloc(1, sizeof(*m));
	struct pin_table t;
	struct pin_owner a;

	(void)state;
	struct pin_callbacks cb = { .unpinned = on_unpinned, .ctx = m };
	pin_table_init(&t, 12, 0, 0, &cb);
	pin_owner_init(&a);
	lock_take(&t.lock);
	struct pin *r = add(&t, &a, 1, 10, 4, DAXFS_PIN_REVOCABLE);
	struct pin *k = add(&t, &a, 2, 50, 4, 0);
	pin_revoke_locked(&t, r, 12);
	assert_false(pin_any_locked(&t, 10, 4));
	for (int b = 10; b < 14; b++)
		assert_int_equal(m->unpinned[b], 1);
	pin_revoke_locked(&t, k, 12);
	assert_int_equal(k->state, DAXFS_PIN_REVOKED);
	assert_true(pin_any_locked(&t, 50, 4));	/* its device may still write: held */
	assert_int_equal(t.held_revoked_blocks, 4);
	assert_int_equal(t.revoked, 2);
	/* Removal lets go; nothing is dropped twice. */
	assert_int_equal(remove_id(&t, &a, k->id), 0);
	assert_false(pin_any_locked(&t, 50, 4));
	assert_int_equal(t.held_revoked_blocks, 0);
	assert_int_equal(remove_id(&t, &a, r->id), 0);
	assert_int_equal(t.pinned_blocks, 0);
	lock_drop(&t.lock);
	pin_owner_destroy(&a);
	pin_table_destroy(&t);
	free(m);
}

static void test_invalidate_ack_refault(void **state)
{
	struct pin_table t;
	struct pin_owner a;
	struct daxfs_event ev[4];
	uint64_t next, lblk, n;
	struct pin *p;

	(void)state;
	pin_table_init(&t, 12, 0, 0, NULL);
	pin_owner_init(&a);
	lock_take(&t.lock);
	/* File blocks [0, 8) at media [100, 108), an ODP pin. */
	struct pin_ext e = { .lblk = 0, .pblk = 100, .len = 8 };
	assert_int_equal(pin_add_locked(&t, &a, 3, 0, 8, DAXFS_PIN_ODP | DAXFS_PIN_WRITE, 1, 0, 0, &e, 1, &p), 0);
	struct pin *plain = add(&t, &a, 3, 200, 1, 0);
	assert_int_equal(pin_invalidate_locked(&t, plain, 0, 1, 1000, 7, 12), -EINVAL);	/* not ODP */
	/* The free of blocks [4, 100) asks for [4, 8): the part the pin covers.  Once per free. */
	assert_int_equal(pin_invalidate_locked(&t, p, 4, 96, 1000, 7, 12), 0);
	assert_int_equal(pin_invalidate_locked(&t, p, 4, 96, 1000, 7, 12), 1);
	assert_int_equal(pin_events_read_locked(&a, 1, ev, 4, &next), 1);
	assert_int_equal(ev[0].type, DAXFS_EV_INVALIDATE);
	assert_int_equal(ev[0].file_off, 4 << 12);
	assert_int_equal(ev[0].len, 4 << 12);
	assert_int_equal(pin_ack_locked(&t, p, ev[0].seq + 5, &lblk, &n), -ENOENT);
	assert_int_equal(pin_ack_locked(&t, p, ev[0].seq, &lblk, &n), 0);
	assert_int_equal(lblk, 4);
	assert_int_equal(n, 4);
	assert_false(pin_any_locked(&t, 104, 4));	/* let go of */
	assert_true(pin_any_locked(&t, 100, 4));
	assert_int_equal(pin_invalidated_ranges(p), 1);
	uint64_t moff, run;
	assert_int_equal(pin_unit_begin_locked(p, 5 << 12, 4096, 12, &moff, &run), -EFAULT);
	assert_int_equal(pin_unit_begin_locked(p, 1 << 12, 64 << 10, 12, &moff, &run), 0);
	assert_int_equal(moff, 101 << 12);
	assert_int_equal(run, 3 << 12);	/* up to the gap */
	pin_unit_end_locked(&t, p);
	/* Refault: the file now has [4, 8) at media [300, 304). */
	struct pin_ext ne = { .lblk = 4, .pblk = 300, .len = 4 };
	assert_int_equal(pin_refault_locked(&t, p, 4, 4, &ne, 1), 0);
	assert_int_equal(p->gen, 1);
	assert_int_equal(pin_invalidated_ranges(p), 0);
	assert_int_equal(p->next, 2);
	assert_true(pin_any_locked(&t, 300, 4));
	assert_int_equal(pin_unit_begin_locked(p, 6 << 12, 4096, 12, &moff, &run), 0);
	assert_int_equal(moff, 302 << 12);
	pin_unit_end_locked(&t, p);
	/* An invalidation nobody acknowledges revokes the pin at its deadline. */
	assert_int_equal(pin_invalidate_locked(&t, p, 0, 2, 2000, 8, 12), 0);
	assert_int_equal(pin_expire_locked(&t, 1999, 12), 0);
	assert_int_equal(pin_expire_locked(&t, 2000, 12), 1);
	assert_int_equal(p->state, DAXFS_PIN_REVOKED);
	assert_int_equal(pin_unit_begin_locked(p, 0, 4096, 12, &moff, &run), -ENOLINK);
	lock_drop(&t.lock);
	pin_release_owner(&t, &a);
	assert_int_equal(t.pinned_blocks, 0);
	pin_owner_destroy(&a);
	pin_table_destroy(&t);
}

/* Acknowledge the invalidation free_id asks of file blocks [lblk, lblk + n) of p. */
static void invalidate_and_ack(struct pin_table *t, struct pin_owner *o, struct pin *p, uint64_t lblk, uint64_t n,
			       uint64_t free_id)
{
	struct daxfs_event ev[8];
	uint64_t next, l, k;
	uint32_t got;

	assert_int_equal(pin_invalidate_locked(t, p, lblk, n, 1000, free_id, 12), 0);
	got = pin_events_read_locked(o, 1, ev, 8, &next);
	assert_true(got >= 1);
	assert_int_equal(pin_ack_locked(t, p, ev[got - 1].seq, &l, &k), 0);
}

/* PIN_STATUS.invalidated: the ranges of the pin its holder gave up and has not faulted in again. */
static void test_invalidated_ranges(void **state)
{
	struct pin_table t;
	struct pin_owner a;
	struct pin *p;

	(void)state;
	pin_table_init(&t, 12, 0, 0, NULL);
	pin_owner_init(&a);
	lock_take(&t.lock);
	struct pin_ext e[2] = { { .lblk = 0, .pblk = 100, .len = 4 }, { .lblk = 4, .pblk = PIN_HOLE, .len = 6 } };
	assert_int_equal(pin_add_locked(&t, &a, 3, 0, 10, DAXFS_PIN_ODP, 1, 0, 0, e, 2, &p), 0);
	assert_int_equal(pin_invalidated_ranges(p), 0);	/* a hole is not a gap */
	invalidate_and_ack(&t, &a, p, 0, 1, 1);		/* at the start */
	assert_int_equal(pin_invalidated_ranges(p), 1);
	invalidate_and_ack(&t, &a, p, 2, 1, 2);		/* in the middle: a second range */
	assert_int_equal(pin_invalidated_ranges(p), 2);
	invalidate_and_ack(&t, &a, p, 3, 2, 3);		/* next to it, across extents: the same range */
	assert_int_equal(pin_invalidated_ranges(p), 2);
	invalidate_and_ack(&t, &a, p, 9, 100, 4);		/* the end, beyond the pin cut off */
	assert_int_equal(pin_invalidated_ranges(p), 3);
	struct pin_ext back = { .lblk = 2, .pblk = 300, .len = 3 };
	assert_int_equal(pin_refault_locked(&t, p, 2, 3, &back, 1), 0);
	assert_int_equal(pin_invalidated_ranges(p), 2);
	struct pin_ext all = { .lblk = 0, .pblk = 400, .len = 10 };
	assert_int_equal(pin_refault_locked(&t, p, 0, 10, &all, 1), 0);
	assert_int_equal(pin_invalidated_ranges(p), 0);
	pin_remove_locked(&t, p);
	lock_drop(&t.lock);
	pin_owner_destroy(&a);
	pin_table_destroy(&t);
}

static void test_breaks(void **state)
{
	struct pin_table t;
	struct pin_break whole = { .ino = 5, .lblk = 0, .n = UINT64_MAX, .wait_id = 1 };
	struct pin_break range = { .ino = 6, .lblk = 10, .n = 5, .wait_id = 2 };

	(void)state;
	pin_table_init(&t, 12, 0, 0, NULL);
	lock_take(&t.lock);
	pin_break_begin_locked(&t, &whole);
	pin_break_begin_locked(&t, &range);
	assert_ptr_equal(pin_break_find_locked(&t, 5, 1000000, 1), &whole);
	assert_ptr_equal(pin_break_find_locked(&t, 6, 14, 3), &range);
	assert_null(pin_break_find_locked(&t, 6, 15, 3));
	assert_null(pin_break_find_locked(&t, 6, 0, 10));
	assert_null(pin_break_find_locked(&t, 7, 0, 100));
	pin_break_end_locked(&t, &whole);
	assert_null(pin_break_find_locked(&t, 5, 0, 1));
	pin_break_end_locked(&t, &range);
	lock_drop(&t.lock);
	pin_table_destroy(&t);
}

/* The fence: removal waits for the DMA engine to leave; revocation never waits, but lets go after it. */
struct dma_thread {
	struct pin_table *t;
	struct pin *p;
	int units;		/* completed */
	int stopped_by;		/* the error that stopped it */
	volatile int inflight;	/* 1 while a unit's bytes are "being written" */
	volatile int go;
};

static void *dma_loop(void *arg)
{
	struct dma_thread *d = arg;

	for (;;) {
		uint64_t moff, run;

		lock_take(&d->t->lock);
		int ret = pin_unit_begin_locked(d->p, 0, 4096, 12, &moff, &run);
		lock_drop(&d->t->lock);
		if (ret) {
			d->stopped_by = ret;
			break;
		}
		d->inflight = 1;
		while (!d->go)
			usleep(100);	/* the test decides when this unit's copy finishes */
		d->inflight = 0;
		lock_take(&d->t->lock);
		pin_unit_end_locked(d->t, d->p);
		lock_drop(&d->t->lock);
		d->units++;
	}
	lock_take(&d->t->lock);
	pin_put_locked(d->t, d->p);
	lock_drop(&d->t->lock);
	return NULL;
}

static void *finish_later(void *arg)
{
	struct dma_thread *d = arg;

	usleep(20000);	/* not for correctness: makes the removal below likely to find the unit in flight */
	d->go = 1;
	return NULL;
}

static void test_dma_fence(void **state)
{
	struct model *m = calloc(1, sizeof(*m));
	struct pin_table t;
	struct pin_owner a;
	pthread_t th;

	(void)state;
	struct pin_callbacks cb = { .unpinned = on_unpinned, .ctx = m };
	pin_table_init(&t, 12, 0, 0, &cb);
	pin_owner_init(&a);

	/* Revocation of a revocable pin while a unit is in flight: the blocks go only after it ends. */
	lock_take(&t.lock);
	struct pin *r = add(&t, &a, 1, 10, 1, DAXFS_PIN_REVOCABLE | DAXFS_PIN_WRITE);
	pin_get_locked(r);
	lock_drop(&t.lock);
	struct dma_thread d = { &t, r, 0, 0, 0, 0 };
	assert_int_equal(pthread_create(&th, NULL, dma_loop, &d), 0);
	while (!d.inflight)
		usleep(100);
	lock_take(&t.lock);
	pin_revoke_locked(&t, r, 12);
	assert_true(pin_any_locked(&t, 10, 1));	/* the unit in flight may still write it */
	lock_drop(&t.lock);
	d.go = 1;
	pthread_join(th, NULL);
	assert_int_equal(d.stopped_by, -ENOLINK);
	lock_take(&t.lock);
	assert_false(pin_any_locked(&t, 10, 1));
	assert_int_equal(m->unpinned[10], 1);
	assert_int_equal(remove_id(&t, &a, r->id), 0);

	/* Removal while a unit is in flight: it returns only after the engine has left the pin. */
	struct pin *p = add(&t, &a, 2, 20, 1, DAXFS_PIN_WRITE);
	pin_get_locked(p);
	lock_drop(&t.lock);
	struct dma_thread e = { &t, p, 0, 0, 0, 0 };
	assert_int_equal(pthread_create(&th, NULL, dma_loop, &e), 0);
	while (!e.inflight)
		usleep(100);
	/* The unit finishes from another thread while the removal below waits for it. */
	pthread_t releaser;
	assert_int_equal(pthread_create(&releaser, NULL, finish_later, &e), 0);
	lock_take(&t.lock);
	pin_remove_locked(&t, p);	/* waits for the engine */
	assert_int_equal(e.inflight, 0);	/* whatever the timing: it returned only after the unit ended */
	assert_false(pin_any_locked(&t, 20, 1));
	lock_drop(&t.lock);
	pthread_join(th, NULL);
	pthread_join(releaser, NULL);
	assert_int_equal(e.stopped_by, -ESHUTDOWN);
	assert_int_equal(t.npins, 0);
	pin_owner_destroy(&a);
	pin_table_destroy(&t);
	free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_refcount_stress),
		cmocka_unit_test(test_split_and_merge),
		cmocka_unit_test(test_pins_owners_limits),
		cmocka_unit_test(test_events),
		cmocka_unit_test(test_drop_owner),
		cmocka_unit_test(test_hook_on_going_pin),
		cmocka_unit_test(test_revoke_kinds),
		cmocka_unit_test(test_invalidate_ack_refault),
		cmocka_unit_test(test_invalidated_ranges),
		cmocka_unit_test(test_breaks),
		cmocka_unit_test(test_dma_fence),
	};
	return cmocka_run_group_tests_name("pins", tests, NULL, NULL);
}
