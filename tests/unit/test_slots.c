/* SPDX-License-Identifier: MIT */
/*
 * Slot lists on a formatted image: records added, removed and rewritten through transactions, the
 * chain growing past one block, and what a fresh load from the media sees; corrupt blocks and
 * slots are refused with a message.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>

#include "csum.h"
#include "daxfs/format.h"
#include "slots.h"
#include "unit_common.h"

#define MAXREC 2048

/* What a load saw: value per id (v[0] == 0 never occurs in these tests, so 0 means absent). */
struct seen {
	uint64_t v[MAXREC][3];
	uint64_t n;
	int stop_at;	/* return an error at this record (0: never) */
};

static int visit(void *arg, uint64_t id, const uint64_t v[3])
{
	struct seen *s = arg;

	assert_true(id < MAXREC);
	if (s->v[id][0])
		fail_msg("slot %llu visited twice", (unsigned long long)id);
	memcpy(s->v[id], v, sizeof(s->v[id]));
	s->n++;
	if (s->stop_at && (int)s->n == s->stop_at)
		return -E2BIG;
	return 0;
}

struct fixture {
	struct image img;
	struct sbi s;
	bool open;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char err[256] = "";

	if (!f)
		return -1;
	image_name(&f->img, "slots");
	*state = f;
	image_format(&f->img, 64 * MiB, NULL);
	if (sbi_open(&f->s, f->img.path, 0, err, sizeof(err))) {
		fprintf(stderr, "sbi_open: %s\n", err);
		image_remove(&f->img);	/* teardown does not run after a failed setup */
		return -1;
	}
	f->open = true;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	if (f->open)
		sbi_close(&f->s);
	image_remove(&f->img);
	free(f);
	return 0;
}

/* Close and reopen the image: everything after this comes from the media. */
static void reopen(struct fixture *f)
{
	char err[256] = "";

	sbi_close(&f->s);
	f->open = false;
	if (sbi_open(&f->s, f->img.path, 0, err, sizeof(err)))
		fail_msg("sbi_open: %s", err);
	f->open = true;
}

static void load_ok(struct fixture *f, struct slotlist *sl, uint32_t kind, uint64_t head, struct seen *seen)
{
	char err[256] = "";

	memset(seen, 0, sizeof(*seen));
	int ret = slots_load(sl, &f->s, kind, head, visit, seen, err, sizeof(err));
	if (ret)
		fail_msg("slots_load: %d %s", ret, err);
}

static void test_empty_list(void **state)
{
	struct fixture *f = *state;
	struct slotlist sl;
	struct seen *seen = calloc(1, sizeof(*seen));

	assert_non_null(seen);
	load_ok(f, &sl, DAXFS_SLOTS_ORPHAN, f->s.sb.orphan_head, seen);
	assert_int_equal(seen->n, 0);
	assert_int_equal(sl.used, 0);
	assert_int_equal(sl.nblocks, 1);
	assert_int_equal(sl.blocks[0], f->s.sb.orphan_head);
	assert_int_equal(sl.per_block, (4096 - 32) / 32);
	assert_int_equal(sl.nfree, sl.per_block);
	slots_destroy(&sl);
	/* The busy list is a separate, empty list of its own kind. */
	load_ok(f, &sl, DAXFS_SLOTS_BUSY, f->s.sb.busy_head, seen);
	assert_int_equal(seen->n, 0);
	slots_destroy(&sl);
	free(seen);
}

static void test_add_grow_remove_reload(void **state)
{
	struct fixture *f = *state;
	struct slotlist sl;
	struct seen *seen = calloc(1, sizeof(*seen));
	static uint64_t ids[400];
	static bool live[400];
	const int N = 400;	/* more than three blocks of 127 */
	uint64_t free_before = alloc_free_blocks(&f->s.alloc);

	assert_non_null(seen);
	load_ok(f, &sl, DAXFS_SLOTS_ORPHAN, f->s.sb.orphan_head, seen);
	uint32_t per = sl.per_block;

	/* Add in a few transactions, as an fs would. */
	for (int i = 0; i < N;) {
		struct tx tx;

		tx_init(&tx, &f->s.journal);
		for (int k = 0; k < 50 && i < N; k++, i++) {
			uint64_t v[3] = { 1000 + (uint64_t)i, (uint64_t)i * 3, ~(uint64_t)i };

			assert_int_equal(slots_add(&sl, &tx, v, &ids[i]), 0);
			live[i] = true;
		}
		assert_int_equal(tx_commit(&tx), 0);
	}
	assert_int_equal(sl.used, N);
	uint64_t nblk = (N + per - 1) / per;
	assert_int_equal(sl.nblocks, nblk);
	/* Ids are distinct and inside the chain. */
	for (int i = 0; i < N; i++) {
		assert_true(ids[i] < nblk * per);
		for (int k = 0; k < i; k++)
			assert_true(ids[k] != ids[i]);
	}
	/* The new chain blocks came from the allocator (metadata) and are marked in use. */
	assert_int_equal(alloc_free_blocks(&f->s.alloc), free_before - (nblk - 1));
	for (size_t b = 0; b < sl.nblocks; b++)
		assert_true(journal_bitmap_test(&f->s.bbm, sl.blocks[b]));

	/* Remove every third record and rewrite every seventh. */
	struct tx tx;
	tx_init(&tx, &f->s.journal);
	for (int i = 0; i < N; i++) {
		if (i % 3 == 0) {
			slots_remove(&sl, &tx, ids[i]);
			live[i] = false;
		} else if (i % 7 == 0) {
			uint64_t v[3] = { 5000 + (uint64_t)i, 1, 2 };

			slots_update(&sl, &tx, ids[i], v);
		}
	}
	assert_int_equal(tx_commit(&tx), 0);
	uint64_t used = sl.used;
	slots_destroy(&sl);

	/* From the media, after a reopen: exactly the live records, with their latest values. */
	reopen(f);
	load_ok(f, &sl, DAXFS_SLOTS_ORPHAN, f->s.sb.orphan_head, seen);
	assert_int_equal(sl.used, used);
	assert_int_equal(sl.nblocks, nblk);
	uint64_t nlive = 0;
	for (int i = 0; i < N; i++) {
		const uint64_t *v = seen->v[ids[i]];

		if (!live[i]) {
			if (v[0])
				fail_msg("record %d (slot %llu) was removed but reloads as %llu", i,
					 (unsigned long long)ids[i], (unsigned long long)v[0]);
			continue;
		}
		nlive++;
		if (i % 7 == 0) {
			assert_int_equal(v[0], 5000 + (uint64_t)i);
			assert_int_equal(v[1], 1);
			assert_int_equal(v[2], 2);
		} else {
			assert_int_equal(v[0], 1000 + (uint64_t)i);
			assert_int_equal(v[1], (uint64_t)i * 3);
			assert_int_equal(v[2], ~(uint64_t)i);
		}
	}
	assert_int_equal(seen->n, nlive);
	assert_int_equal(used, nlive);
	/* The chain blocks stay allocated across the reopen. */
	for (size_t b = 0; b < sl.nblocks; b++) {
		assert_true(journal_bitmap_test(&f->s.bbm, sl.blocks[b]));
		assert_int_equal(alloc_take(&f->s.alloc, sl.blocks[b], 1), -ENOENT);
	}
	/* Freed slots are reused before the chain grows again. */
	tx_init(&tx, &f->s.journal);
	for (uint64_t k = 0; k < N - nlive; k++) {
		uint64_t v[3] = { 9000 + k, 0, 0 }, id;

		assert_int_equal(slots_add(&sl, &tx, v, &id), 0);
		assert_true(id < nblk * per);
		assert_int_equal(seen->v[id][0], 0);	/* a slot that was free */
	}
	assert_int_equal(sl.nblocks, nblk);
	assert_int_equal(tx_commit(&tx), 0);
	slots_destroy(&sl);
	free(seen);
}

/* Removing records that were added in the same, uncommitted transaction leaves nothing behind. */
static void test_add_remove_same_tx(void **state)
{
	struct fixture *f = *state;
	struct slotlist sl;
	struct seen *seen = calloc(1, sizeof(*seen));
	struct tx tx;
	uint64_t id1, id2;

	assert_non_null(seen);
	load_ok(f, &sl, DAXFS_SLOTS_BUSY, f->s.sb.busy_head, seen);
	tx_init(&tx, &f->s.journal);
	assert_int_equal(slots_add(&sl, &tx, (uint64_t[3]){ 11, 22, 33 }, &id1), 0);
	assert_int_equal(slots_add(&sl, &tx, (uint64_t[3]){ 44, 55, 66 }, &id2), 0);
	slots_remove(&sl, &tx, id1);
	assert_int_equal(tx_commit(&tx), 0);
	slots_destroy(&sl);

	reopen(f);
	load_ok(f, &sl, DAXFS_SLOTS_BUSY, f->s.sb.busy_head, seen);
	assert_int_equal(seen->n, 1);
	assert_int_equal(seen->v[id2][0], 44);
	assert_int_equal(seen->v[id2][2], 66);
	assert_int_equal(seen->v[id1][0], 0);
	slots_destroy(&sl);
	/* The orphan list did not see any of it. */
	load_ok(f, &sl, DAXFS_SLOTS_ORPHAN, f->s.sb.orphan_head, seen);
	assert_int_equal(seen->n, 0);
	slots_destroy(&sl);
	free(seen);
}

/*
 * A removed slot is free again only once the removal has committed: reusing it earlier would let
 * a crash lose the new record (the old transaction's clear could land after it).
 */
static void test_slot_reuse_after_commit(void **state)
{
	struct fixture *f = *state;
	struct slotlist sl;
	struct seen *seen = calloc(1, sizeof(*seen));
	struct tx tx, tx2;
	uint64_t id, id2, id3;

	assert_non_null(seen);
	load_ok(f, &sl, DAXFS_SLOTS_ORPHAN, f->s.sb.orphan_head, seen);
	tx_init(&tx, &f->s.journal);
	assert_int_equal(slots_add(&sl, &tx, (uint64_t[3]){ 1, 0, 0 }, &id), 0);
	assert_int_equal(tx_commit(&tx), 0);
	uint64_t nfree = sl.nfree;

	tx_init(&tx, &f->s.journal);
	slots_remove(&sl, &tx, id);
	assert_int_equal(sl.used, 0);
	assert_int_equal(sl.nfree, nfree);	/* not yet */
	tx_init(&tx2, &f->s.journal);
	assert_int_equal(slots_add(&sl, &tx2, (uint64_t[3]){ 2, 0, 0 }, &id2), 0);
	assert_true(id2 != id);
	assert_int_equal(tx_commit(&tx2), 0);
	assert_int_equal(tx_commit(&tx), 0);
	assert_int_equal(sl.nfree, nfree);	/* id back, id2 taken */
	tx_init(&tx, &f->s.journal);
	assert_int_equal(slots_add(&sl, &tx, (uint64_t[3]){ 3, 0, 0 }, &id3), 0);
	assert_int_equal(id3, id);	/* the freed slot is the next one handed out */
	assert_int_equal(tx_commit(&tx), 0);
	slots_destroy(&sl);

	/* A removal that is abandoned never frees its slot (the record is still on the media). */
	load_ok(f, &sl, DAXFS_SLOTS_ORPHAN, f->s.sb.orphan_head, seen);
	assert_int_equal(seen->n, 2);
	nfree = sl.nfree;
	tx_init(&tx, &f->s.journal);
	slots_remove(&sl, &tx, id3);
	tx_free(&tx);
	assert_int_equal(sl.nfree, nfree);
	slots_destroy(&sl);
	reopen(f);
	load_ok(f, &sl, DAXFS_SLOTS_ORPHAN, f->s.sb.orphan_head, seen);
	assert_int_equal(seen->n, 2);
	assert_int_equal(seen->v[id3][0], 3);
	assert_int_equal(seen->v[id2][0], 2);
	slots_destroy(&sl);
	free(seen);
}

/* An uncommitted transaction changes nothing on the media. */
static void test_uncommitted(void **state)
{
	struct fixture *f = *state;
	struct slotlist sl;
	struct seen *seen = calloc(1, sizeof(*seen));
	struct tx tx;
	uint64_t id;

	assert_non_null(seen);
	load_ok(f, &sl, DAXFS_SLOTS_ORPHAN, f->s.sb.orphan_head, seen);
	tx_init(&tx, &f->s.journal);
	assert_int_equal(slots_add(&sl, &tx, (uint64_t[3]){ 7, 7, 7 }, &id), 0);
	tx_free(&tx);
	slots_destroy(&sl);
	reopen(f);
	load_ok(f, &sl, DAXFS_SLOTS_ORPHAN, f->s.sb.orphan_head, seen);
	assert_int_equal(seen->n, 0);
	assert_int_equal(sl.nblocks, 1);

	/*
	 * Growing the chain is committed on its own, at once: an abandoned transaction leaves a valid,
	 * longer chain with no records in it, and no block leaked from the bitmap.
	 */
	uint64_t free0 = alloc_free_blocks(&f->s.alloc);
	tx_init(&tx, &f->s.journal);
	for (uint32_t i = 0; i < sl.per_block + 1; i++)
		assert_int_equal(slots_add(&sl, &tx, (uint64_t[3]){ 100 + i, 0, 0 }, &id), 0);
	assert_int_equal(sl.nblocks, 2);
	uint64_t grown = sl.blocks[1];
	tx_free(&tx);
	slots_destroy(&sl);
	reopen(f);
	load_ok(f, &sl, DAXFS_SLOTS_ORPHAN, f->s.sb.orphan_head, seen);
	assert_int_equal(seen->n, 0);
	assert_int_equal(sl.nblocks, 2);
	assert_int_equal(sl.blocks[1], grown);
	assert_true(journal_bitmap_test(&f->s.bbm, grown));
	assert_int_equal(alloc_free_blocks(&f->s.alloc), free0 - 1);
	slots_destroy(&sl);
	free(seen);
}

/*
 * Add `n` records to the orphan list, committing every `per_tx`; returns the chain's blocks in
 * *blocks.
 */
static void fill_tx(struct fixture *f, int n, int per_tx, uint64_t *blocks, size_t *nblocks)
{
	struct slotlist sl;
	struct seen *seen = calloc(1, sizeof(*seen));
	struct tx tx;

	assert_non_null(seen);
	load_ok(f, &sl, DAXFS_SLOTS_ORPHAN, f->s.sb.orphan_head, seen);
	tx_init(&tx, &f->s.journal);
	for (int i = 0; i < n; i++) {
		uint64_t id;

		assert_int_equal(slots_add(&sl, &tx, (uint64_t[3]){ 100 + (uint64_t)i, 0, 0 }, &id), 0);
		if ((i + 1) % per_tx == 0) {
			assert_int_equal(tx_commit(&tx), 0);
			tx_init(&tx, &f->s.journal);
		}
	}
	assert_int_equal(tx_commit(&tx), 0);
	*nblocks = sl.nblocks;
	memcpy(blocks, sl.blocks, sl.nblocks * sizeof(*blocks));
	slots_destroy(&sl);
	free(seen);
}

/* At most one new chain block per transaction: the chain tests need a chain that loads. */
static void fill(struct fixture *f, int n, uint64_t *blocks, size_t *nblocks)
{
	fill_tx(f, n, 100, blocks, nblocks);
}

/*
 * One transaction that grows the chain by several blocks: each new block is linked from the one
 * added just before it, in the same transaction.  All records must reload.
 */
static void test_grow_several_blocks_in_one_tx(void **state)
{
	struct fixture *f = *state;
	uint64_t blocks[8];
	size_t nb;
	const int n = 3 * 127 + 10;	/* four blocks: three of them new */

	fill_tx(f, n, n, blocks, &nb);
	assert_int_equal(nb, 4);
	/* Every block of the chain, as written, is a valid block of the orphan list. */
	for (size_t b = 0; b < nb; b++) {
		const struct daxfs_slot_block *h = sbi_block(&f->s, blocks[b]);

		if (h->magic != DAXFS_SLOT_MAGIC || h->kind != DAXFS_SLOTS_ORPHAN)
			fail_msg("chain block %zu (block %llu): magic %#x kind %u after a multi-block growth", b,
				 (unsigned long long)blocks[b], h->magic, h->kind);
		assert_int_equal(h->next, b + 1 < nb ? blocks[b + 1] : 0);
	}
	struct slotlist sl;
	struct seen *seen = calloc(1, sizeof(*seen));
	assert_non_null(seen);
	reopen(f);
	load_ok(f, &sl, DAXFS_SLOTS_ORPHAN, f->s.sb.orphan_head, seen);
	assert_int_equal(seen->n, n);
	slots_destroy(&sl);
	free(seen);
}

/* slots_load must fail with `code` and a message containing `needle`, visiting no record twice. */
static void expect_load_error(struct fixture *f, uint32_t kind, uint64_t head, int code, const char *needle)
{
	struct slotlist sl;
	struct seen *seen = calloc(1, sizeof(*seen));
	char err[256] = "";

	assert_non_null(seen);
	int ret = slots_load(&sl, &f->s, kind, head, visit, seen, err, sizeof(err));
	slots_destroy(&sl);
	free(seen);
	if (ret != code)
		fail_msg("slots_load: expected %d, got %d (%s)", code, ret, err);
	if (!strstr(err, needle))
		fail_msg("message \"%s\" lacks \"%s\"", err, needle);
}

static void test_corrupt_slot(void **state)
{
	struct fixture *f = *state;
	uint64_t blocks[8];
	size_t nb;

	fill(f, 200, blocks, &nb);
	assert_int_equal(nb, 2);
	/* A flipped byte in a slot's value, in the second block. */
	struct daxfs_slot *slot = (void *)((char *)sbi_block(&f->s, blocks[1]) + sizeof(struct daxfs_slot_block));
	struct daxfs_slot *victim = NULL;
	/* A used slot whose predecessor is used too (index 0 has none in this block). */
	for (uint32_t i = 1; i < DAXFS_SLOTS_PER_BLOCK(4096u) && !victim; i++)
		if (slot[i].v[0] && slot[i - 1].v[0])
			victim = &slot[i];
	assert_non_null(victim);
	victim->v[1] ^= 0x10;
	expect_load_error(f, DAXFS_SLOTS_ORPHAN, f->s.sb.orphan_head, -EUCLEAN, "bad checksum");
	victim->v[1] ^= 0x10;
	/* The crc itself. */
	victim->crc ^= 1;
	expect_load_error(f, DAXFS_SLOTS_ORPHAN, f->s.sb.orphan_head, -EUCLEAN, "bad checksum");
	victim->crc ^= 1;
	/* A valid slot copied to another index fails: the index is in its checksum. */
	struct daxfs_slot saved = victim[-1];
	victim[-1] = victim[0];
	expect_load_error(f, DAXFS_SLOTS_ORPHAN, f->s.sb.orphan_head, -EUCLEAN, "bad checksum");
	victim[-1] = saved;

	struct seen *seen = calloc(1, sizeof(*seen));
	struct slotlist sl;
	assert_non_null(seen);
	load_ok(f, &sl, DAXFS_SLOTS_ORPHAN, f->s.sb.orphan_head, seen);
	assert_int_equal(seen->n, 200);
	slots_destroy(&sl);
	free(seen);
}

static void test_corrupt_chain(void **state)
{
	struct fixture *f = *state;
	uint64_t blocks[8];
	size_t nb;

	fill(f, 300, blocks, &nb);
	assert_int_equal(nb, 3);
	struct daxfs_slot_block *h1 = sbi_block(&f->s, blocks[1]);
	struct daxfs_slot_block *h0 = sbi_block(&f->s, blocks[0]);
	struct daxfs_slot_block save1 = *h1, save0 = *h0;

	/* A block header with a bad crc, magic or kind. */
	h1->reserved1 = 1;
	expect_load_error(f, DAXFS_SLOTS_ORPHAN, f->s.sb.orphan_head, -EUCLEAN, "bad header");
	*h1 = save1;
	h1->magic ^= 1;
	h1->crc = csum_slot_block(f->s.seed, blocks[1], h1);
	expect_load_error(f, DAXFS_SLOTS_ORPHAN, f->s.sb.orphan_head, -EUCLEAN, "bad header");
	*h1 = save1;
	h1->kind = DAXFS_SLOTS_BUSY;
	h1->crc = csum_slot_block(f->s.seed, blocks[1], h1);
	expect_load_error(f, DAXFS_SLOTS_ORPHAN, f->s.sb.orphan_head, -EUCLEAN, "bad header");
	*h1 = save1;
	/* The wrong list head for the kind. */
	expect_load_error(f, DAXFS_SLOTS_ORPHAN, f->s.sb.busy_head, -EUCLEAN, "bad header");
	/* A link out of the data area (into the inode table), or past it. */
	h0->next = f->s.sb.itable_start;
	h0->crc = csum_slot_block(f->s.seed, blocks[0], h0);
	expect_load_error(f, DAXFS_SLOTS_ORPHAN, f->s.sb.orphan_head, -EUCLEAN, "out of range");
	h0->next = f->s.sb.backup_sb;
	h0->crc = csum_slot_block(f->s.seed, blocks[0], h0);
	expect_load_error(f, DAXFS_SLOTS_ORPHAN, f->s.sb.orphan_head, -EUCLEAN, "out of range");
	*h0 = save0;
	/* A loop: the last block links back to the first. */
	struct daxfs_slot_block *h2 = sbi_block(&f->s, blocks[2]);
	struct daxfs_slot_block save2 = *h2;
	h2->next = blocks[0];
	h2->crc = csum_slot_block(f->s.seed, blocks[2], h2);
	/* Found before any record is visited twice (the visitor fails on a second visit). */
	expect_load_error(f, DAXFS_SLOTS_ORPHAN, f->s.sb.orphan_head, -EUCLEAN, "loops");
	*h2 = save2;
	/* A block linking to itself, in the middle of the chain. */
	h1->next = blocks[1];
	h1->crc = csum_slot_block(f->s.seed, blocks[1], h1);
	expect_load_error(f, DAXFS_SLOTS_ORPHAN, f->s.sb.orphan_head, -EUCLEAN, "loops");
	*h1 = save1;
	/* A visitor error stops the walk and is reported. */
	struct slotlist sl;
	struct seen *seen = calloc(1, sizeof(*seen));
	char err[256] = "";
	assert_non_null(seen);
	seen->stop_at = 5;
	assert_int_equal(slots_load(&sl, &f->s, DAXFS_SLOTS_ORPHAN, f->s.sb.orphan_head, visit, seen, err, sizeof(err)),
			 -E2BIG);
	assert_int_equal(seen->n, 5);
	assert_true(strlen(err) > 0);
	slots_destroy(&sl);
	free(seen);
}

struct bad_seen {
	uint64_t id[8];
	int n;
};

static void bad_visit(void *arg, uint64_t id, const uint64_t v[3])
{
	struct bad_seen *b = arg;

	(void)v;
	assert_true(b->n < 8);
	b->id[b->n++] = id;
}

/*
 * A record that does not verify: the salvaging load reports it and keeps its slot in use, and once
 * the caller clears it the strict load succeeds again with every other record.  A broken chain
 * still fails it; slots_reset empties the list from its head and the list works afterwards.
 */
static void test_salvage_and_reset(void **state)
{
	struct fixture *f = *state;
	struct slotlist sl;
	struct bad_seen bad = { 0 };
	struct tx tx;
	uint64_t blocks[8], id;
	size_t nb;
	char err[256] = "";

	fill(f, 200, blocks, &nb);
	assert_int_equal(nb, 2);
	struct daxfs_slot *slot = (void *)((char *)sbi_block(&f->s, blocks[1]) + sizeof(struct daxfs_slot_block));
	uint32_t vi = 0;
	while (!slot[vi].v[0])
		vi++;
	slot[vi].v[2] ^= 0x10;
	expect_load_error(f, DAXFS_SLOTS_ORPHAN, f->s.sb.orphan_head, -EUCLEAN, "bad checksum");
	assert_int_equal(slots_load_salvage(&sl, &f->s, DAXFS_SLOTS_ORPHAN, f->s.sb.orphan_head, NULL, bad_visit, &bad,
					    err, sizeof(err)), 0);
	assert_int_equal(bad.n, 1);
	assert_int_equal(bad.id[0], sl.per_block + vi);
	assert_int_equal(sl.used, 200);
	tx_init(&tx, &f->s.journal);
	slots_remove(&sl, &tx, bad.id[0]);
	assert_int_equal(tx_commit(&tx), 0);
	slots_destroy(&sl);

	struct seen *seen = calloc(1, sizeof(*seen));
	assert_non_null(seen);
	reopen(f);
	load_ok(f, &sl, DAXFS_SLOTS_ORPHAN, f->s.sb.orphan_head, seen);
	assert_int_equal(seen->n, 199);
	slots_destroy(&sl);

	/* The second block's header broken: the chain does not load, even salvaging. */
	struct daxfs_slot_block *h1 = sbi_block(&f->s, blocks[1]);
	h1->magic ^= 1;
	assert_int_equal(slots_load_salvage(&sl, &f->s, DAXFS_SLOTS_ORPHAN, f->s.sb.orphan_head, NULL, NULL, NULL, err,
					    sizeof(err)), -EUCLEAN);
	slots_destroy(&sl);
	assert_int_equal(slots_reset(&sl, &f->s, DAXFS_SLOTS_ORPHAN, f->s.sb.orphan_head, err, sizeof(err)), 0);
	assert_int_equal(sl.used, 0);
	assert_int_equal(sl.nblocks, 1);
	uint64_t v[3] = { 7, 8, 9 };
	tx_init(&tx, &f->s.journal);
	assert_int_equal(slots_add(&sl, &tx, v, &id), 0);
	assert_int_equal(tx_commit(&tx), 0);
	slots_destroy(&sl);
	reopen(f);
	load_ok(f, &sl, DAXFS_SLOTS_ORPHAN, f->s.sb.orphan_head, seen);
	assert_int_equal(seen->n, 1);
	assert_int_equal(seen->v[id][0], 7);
	slots_destroy(&sl);
	free(seen);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_empty_list),
		T(test_add_grow_remove_reload),
		T(test_add_remove_same_tx),
		T(test_slot_reuse_after_commit),
		T(test_uncommitted),
		T(test_grow_several_blocks_in_one_tx),
		T(test_corrupt_slot),
		T(test_corrupt_chain),
		T(test_salvage_and_reset),
	};

	return cmocka_run_group_tests_name("slots", tests, NULL, NULL);
}
