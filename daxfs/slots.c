/* SPDX-License-Identifier: MIT */
#include "slots.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csum.h"
#include "util.h"

/*
 * Keep room for `nblocks` chain blocks and all their slots on the free stack, so that removing a
 * record and pushing a block can never fail half-way.
 */
static int reserve_capacity(struct slotlist *sl, size_t nblocks)
{
	if (nblocks > sl->capblocks) {
		size_t cap = MAX(nblocks, sl->capblocks * 2);
		uint64_t *nb = realloc(sl->blocks, cap * sizeof(*nb));

		if (!nb)
			return -ENOMEM;
		sl->blocks = nb;
		sl->capblocks = cap;
	}
	size_t slots = sl->capblocks * sl->per_block;
	if (slots > sl->capfree) {
		uint64_t *nf = realloc(sl->free, slots * sizeof(*nf));

		if (!nf)
			return -ENOMEM;
		sl->free = nf;
		sl->capfree = slots;
	}
	return 0;
}

static bool slot_is_free(const struct daxfs_slot *s)
{
	static const struct daxfs_slot zero;

	return memcmp(s, &zero, sizeof(zero)) == 0;
}

/*
 * Check the chain from `head` before anything reads its records: every block in the data area with
 * a valid header of this kind, and no loop (Brent's cycle finding, so that a loop is found in time
 * proportional to the chain, with no memory, and no record is ever seen twice).  *len is its length.
 */
static int walk_chain(struct sbi *s, uint32_t kind, uint64_t head, size_t *len, char *err, size_t errlen)
{
	uint64_t tortoise = head, power = 1, lam = 0;

	*len = 0;
	for (uint64_t blk = head; blk; ) {
		const struct daxfs_slot_block *hdr = sbi_block(s, blk);

		if (!sbi_data_block(s, blk, 1)) {
			snprintf(err, errlen, "slot list %u: block %llu out of range", kind, (unsigned long long)blk);
			return -EUCLEAN;
		}
		if (hdr->magic != DAXFS_SLOT_MAGIC || hdr->kind != kind ||
		    hdr->crc != csum_slot_block(s->seed, blk, hdr)) {
			snprintf(err, errlen, "slot list %u: block %llu has a bad header", kind,
				 (unsigned long long)blk);
			return -EUCLEAN;
		}
		(*len)++;
		blk = hdr->next;
		if (blk == tortoise) {
			snprintf(err, errlen, "slot list %u: the chain loops back to block %llu", kind,
				 (unsigned long long)blk);
			return -EUCLEAN;
		}
		if (++lam == power) {
			tortoise = blk;
			power *= 2;
			lam = 0;
		}
	}
	return 0;
}

static int load(struct slotlist *sl, struct sbi *s, uint32_t kind, uint64_t head, slot_visit_fn visit,
		bool salvage, slot_bad_fn bad, void *arg, char *err, size_t errlen)
{
	size_t len;
	int ret;

	memset(sl, 0, sizeof(*sl));
	sl->sbi = s;
	sl->kind = kind;
	sl->per_block = (uint32_t)DAXFS_SLOTS_PER_BLOCK(s->bs);
	pthread_mutex_init(&sl->lock, NULL);

	if ((ret = walk_chain(s, kind, head, &len, err, errlen)))
		return ret;
	if ((ret = reserve_capacity(sl, len))) {
		snprintf(err, errlen, "out of memory loading slot list %u", kind);
		return ret;
	}
	for (uint64_t blk = head; blk; ) {
		const struct daxfs_slot_block *hdr = sbi_block(s, blk);
		uint64_t bi = sl->nblocks;

		sl->blocks[sl->nblocks++] = blk;
		const struct daxfs_slot *slot = (const void *)(hdr + 1);
		for (uint32_t i = sl->per_block; i-- > 0;) {
			uint64_t id = bi * sl->per_block + i;

			if (slot_is_free(&slot[i])) {
				sl->free[sl->nfree++] = id;
				continue;
			}
			if (slot[i].crc != csum_slot(s->seed, blk, i, &slot[i])) {
				if (salvage) {
					sl->used++;	/* in use until the caller clears it */
					if (bad)
						bad(arg, id, slot[i].v);
					continue;
				}
				snprintf(err, errlen, "slot list %u: block %llu slot %u has a bad checksum", kind,
					 (unsigned long long)blk, i);
				return -EUCLEAN;
			}
			sl->used++;
			if (visit && (ret = visit(arg, id, slot[i].v)) < 0) {
				snprintf(err, errlen, "slot list %u: block %llu slot %u: %s", kind,
					 (unsigned long long)blk, i, strerror(-ret));
				return ret;
			}
		}
		blk = hdr->next;
	}
	return 0;
}

int slots_load(struct slotlist *sl, struct sbi *s, uint32_t kind, uint64_t head, slot_visit_fn visit, void *arg,
	       char *err, size_t errlen)
{
	return load(sl, s, kind, head, visit, false, NULL, arg, err, errlen);
}

int slots_load_salvage(struct slotlist *sl, struct sbi *s, uint32_t kind, uint64_t head, slot_visit_fn visit,
		       slot_bad_fn bad, void *arg, char *err, size_t errlen)
{
	return load(sl, s, kind, head, visit, true, bad, arg, err, errlen);
}

int slots_reset(struct slotlist *sl, struct sbi *s, uint32_t kind, uint64_t head, char *err, size_t errlen)
{
	struct daxfs_slot_block *hdr = calloc(1, s->bs);
	struct tx tx;
	int ret;

	memset(sl, 0, sizeof(*sl));
	pthread_mutex_init(&sl->lock, NULL);	/* safe to destroy on failure */
	if (!hdr) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	hdr->magic = DAXFS_SLOT_MAGIC;
	hdr->kind = kind;
	hdr->crc = csum_slot_block(s->seed, head, hdr);
	tx_init(&tx, &s->journal);
	tx_log(&tx, sbi_block_off(s, head), hdr, s->bs);
	free(hdr);
	if ((ret = tx_commit(&tx))) {
		snprintf(err, errlen, "slot list %u: writing its head block %llu back empty: %s", kind,
			 (unsigned long long)head, strerror(-ret));
		return ret;
	}
	pthread_mutex_destroy(&sl->lock);
	return slots_load(sl, s, kind, head, NULL, NULL, err, errlen);
}

void slots_destroy(struct slotlist *sl)
{
	free(sl->blocks);
	free(sl->free);
	pthread_mutex_destroy(&sl->lock);
	memset(sl, 0, sizeof(*sl));
}

static uint64_t slot_off(struct slotlist *sl, uint64_t id, uint64_t *blk, uint32_t *idx)
{
	*blk = sl->blocks[id / sl->per_block];
	*idx = (uint32_t)(id % sl->per_block);
	return sbi_block_off(sl->sbi, *blk) + sizeof(struct daxfs_slot_block) + *idx * sizeof(struct daxfs_slot);
}

/* Append a zeroed block to the chain, in a transaction of its own; its slots become free. */
static int grow(struct slotlist *sl)
{
	struct sbi *s = sl->sbi;
	struct alloc_req req = { .want = 1, .flags = ALLOC_META };
	uint64_t blk, len;
	struct tx tx;
	int ret;

	if (sl->nblocks == 0)
		return -EUCLEAN;	/* loaded without its head block (a checker ignoring a corrupt list) */
	if ((ret = reserve_capacity(sl, sl->nblocks + 1)))
		return ret;
	ret = sbi_alloc(s, &req, &blk, &len);
	if (ret)
		return ret;
	char *img = calloc(1, s->bs);
	if (!img) {
		sbi_unalloc(s, blk, 1);
		return -ENOMEM;
	}
	tx_init(&tx, &s->journal);
	sbi_use(s, &tx, blk, 1);
	struct daxfs_slot_block *hdr = (void *)img;
	hdr->magic = DAXFS_SLOT_MAGIC;
	hdr->kind = sl->kind;
	hdr->crc = csum_slot_block(s->seed, blk, hdr);
	tx_log(&tx, sbi_block_off(s, blk), img, s->bs);
	free(img);

	/* Link it after the current tail. */
	uint64_t tail = sl->blocks[sl->nblocks - 1];
	struct daxfs_slot_block th = *(struct daxfs_slot_block *)sbi_block(s, tail);
	th.next = blk;
	th.crc = csum_slot_block(s->seed, tail, &th);
	tx_log(&tx, sbi_block_off(s, tail), &th, sizeof(th));
	if ((ret = tx_commit(&tx))) {
		sbi_unalloc(s, blk, 1);
		return ret;
	}

	uint64_t bi = sl->nblocks;
	sl->blocks[sl->nblocks++] = blk;
	for (uint32_t i = sl->per_block; i-- > 0;)
		sl->free[sl->nfree++] = bi * sl->per_block + i;
	return 0;
}

static void write_slot(struct slotlist *sl, struct tx *tx, uint64_t id, const uint64_t v[3])
{
	struct daxfs_slot slot = { 0 };
	uint64_t blk;
	uint32_t idx;
	uint64_t off = slot_off(sl, id, &blk, &idx);

	if (v) {
		memcpy(slot.v, v, sizeof(slot.v));
		slot.crc = csum_slot(sl->sbi->seed, blk, idx, &slot);
	}
	tx_log(tx, off, &slot, sizeof(slot));
}

int slots_add(struct slotlist *sl, struct tx *tx, const uint64_t v[3], uint64_t *id)
{
	int ret = 0;

	pthread_mutex_lock(&sl->lock);
	if (sl->nfree == 0)
		ret = grow(sl);
	if (ret == 0) {
		*id = sl->free[--sl->nfree];
		sl->used++;
		write_slot(sl, tx, *id, v);
	}
	pthread_mutex_unlock(&sl->lock);
	return ret;
}

void slots_update(struct slotlist *sl, struct tx *tx, uint64_t id, const uint64_t v[3])
{
	pthread_mutex_lock(&sl->lock);
	write_slot(sl, tx, id, v);
	pthread_mutex_unlock(&sl->lock);
}

/* After the commit that cleared them: slots [id, id + n) may be used again. */
static void release_slots(void *ctx, uint64_t id, uint64_t n)
{
	struct slotlist *sl = ctx;

	pthread_mutex_lock(&sl->lock);
	for (uint64_t i = id; i < id + n; i++)
		sl->free[sl->nfree++] = i;	/* reserve_capacity keeps room for every slot */
	pthread_mutex_unlock(&sl->lock);
}

void slots_remove(struct slotlist *sl, struct tx *tx, uint64_t id)
{
	pthread_mutex_lock(&sl->lock);
	write_slot(sl, tx, id, NULL);
	sl->used--;
	pthread_mutex_unlock(&sl->lock);
	tx_defer(tx, release_slots, sl, id, 1);
}

const struct daxfs_slot *slots_block(const struct slotlist *sl, size_t bi)
{
	return (const void *)((const char *)sbi_block(sl->sbi, sl->blocks[bi]) + sizeof(struct daxfs_slot_block));
}
