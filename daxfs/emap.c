/* SPDX-License-Identifier: MIT */
/*
 * Per-file extent maps.
 *
 * A file's extents, sorted by logical block, are stored in the inode (five inline records) and then
 * in a chain of extent blocks.  In DRAM each container is a leaf holding an image of its records, so
 * a lookup is two binary searches (leaf, then record) and a change rewrites only the records it
 * moved.  Chain leaves are never empty: a block whose last extent goes is unlinked and freed.  Leaf
 * changes are marked dirty and logged once per transaction by emap_log().
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csum.h"
#include "fs.h"
#include "util.h"
#include "emap.h"
#include "inode.h"

#define CLEAN UINT32_MAX

static struct daxfs_extent *recs(struct inode *ip, struct emap_leaf *l)
{
	return l->blk ? l->blk->ext : ip->d.u.ext;
}

static const struct daxfs_extent *crecs(const struct inode *ip, const struct emap_leaf *l)
{
	return l->blk ? l->blk->ext : ip->d.u.ext;
}

static uint32_t leaf_cap(const struct fs *fs, const struct emap_leaf *l)
{
	return l->blk ? (uint32_t)DAXFS_EXTENTS_PER_BLOCK(fs_bs(fs)) : DAXFS_INLINE_EXTENTS;
}

static void mark_dirty(struct inode *ip, uint32_t li, uint32_t from)
{
	struct emap_leaf *l = &ip->map.leaves[li];

	if (l->dirty_from == CLEAN)
		ip->map.ndirty++;
	if (from < l->dirty_from)
		l->dirty_from = from;
	if (li == 0)
		ip->d.ext_count = (uint16_t)l->count;
}

static int grow_leaves(struct emap *map, uint32_t n)
{
	if (n <= map->capleaves)
		return 0;
	uint32_t cap = MAX(n, map->capleaves * 2);
	struct emap_leaf *nl = realloc(map->leaves, cap * sizeof(*nl));

	if (!nl)
		return -ENOMEM;
	map->leaves = nl;
	map->capleaves = cap;
	return 0;
}

void emap_destroy(struct emap *map)
{
	for (uint32_t i = 0; i < map->nleaves; i++)
		free(map->leaves[i].blk);
	free(map->leaves);
	memset(map, 0, sizeof(*map));
}

static int corrupt(struct fs *fs, const struct inode *ip, const char *what, uint64_t blk)
{
	sbi_corrupt(&fs->sbi, "inode %llu: %s (block %llu)", (unsigned long long)ip->ino, what, (unsigned long long)blk);
	return -EIO;
}

int emap_load(struct fs *fs, struct inode *ip)
{
	struct sbi *s = &fs->sbi;
	struct emap *map = &ip->map;
	uint32_t per = (uint32_t)DAXFS_EXTENTS_PER_BLOCK(s->bs);
	uint64_t next_lblk = 0;
	int ret;

	if ((ret = grow_leaves(map, 4)))
		return ret;
	if (ip->d.ext_count > DAXFS_INLINE_EXTENTS)
		return corrupt(fs, ip, "too many inline extents", 0);
	map->leaves[0] = (struct emap_leaf){ .pblk = 0, .count = ip->d.ext_count, .dirty_from = CLEAN };
	map->nleaves = 1;

	for (uint64_t blk = ip->d.ext_next; blk; ) {
		const struct daxfs_extent_block *eb = sbi_block(s, blk);

		/* d.blocks may be corrupt too: the data area bounds any honest chain. */
		if (!sbi_data_block(s, blk, 1) || map->nleaves > ip->d.blocks || map->nleaves > s->data_blocks)
			return corrupt(fs, ip, "extent chain leaves the data area or loops", blk);
		if (eb->magic != DAXFS_EXTENT_MAGIC || eb->ino != ip->ino || eb->count == 0 || eb->count > per ||
		    eb->crc != csum_extent_block(s->seed, blk, eb))
			return corrupt(fs, ip, "bad extent block", blk);
		if ((ret = grow_leaves(map, map->nleaves + 1)))
			return ret;
		struct daxfs_extent_block *img = malloc(s->bs);
		if (!img)
			return -ENOMEM;
		memcpy(img, eb, sizeof(*eb) + eb->count * sizeof(struct daxfs_extent));
		map->leaves[map->nleaves++] = (struct emap_leaf){ .pblk = blk, .count = eb->count, .blk = img,
								  .dirty_from = CLEAN };
		blk = eb->next;
	}
	/* Extents strictly ordered, inside the data area and the maximum file size. */
	for (uint32_t li = 0; li < map->nleaves; li++) {
		const struct daxfs_extent *r = crecs(ip, &map->leaves[li]);

		for (uint32_t i = 0; i < map->leaves[li].count; i++) {
			if (r[i].len == 0 || r[i].lblk < next_lblk || !sbi_data_block(s, r[i].pblk, r[i].len) ||
			    r[i].lblk + r[i].len > (DAXFS_MAX_FILE_SIZE >> s->bshift))
				return corrupt(fs, ip, "extent out of order or out of range", map->leaves[li].pblk);
			next_lblk = r[i].lblk + r[i].len;
		}
	}
	return 0;
}

/* Last leaf whose first extent starts at or before lblk (leaf 0 when none does). */
static uint32_t find_leaf(const struct inode *ip, uint64_t lblk)
{
	const struct emap *map = &ip->map;
	uint32_t lo = 0, hi = map->nleaves;

	while (hi - lo > 1) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (map->leaves[mid].blk->ext[0].lblk <= lblk)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

/* Position of the first extent ending after lblk; may be one past the last record of the last leaf. */
static struct emap_cursor find_pos(const struct inode *ip, uint64_t lblk)
{
	const struct emap *map = &ip->map;
	struct emap_cursor c = { .leaf = find_leaf(ip, lblk) };
	const struct emap_leaf *l = &map->leaves[c.leaf];
	const struct daxfs_extent *r = crecs(ip, l);
	uint32_t lo = 0, hi = l->count;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (r[mid].lblk + r[mid].len <= lblk)
			lo = mid + 1;
		else
			hi = mid;
	}
	c.rec = lo;
	if (c.rec == l->count && c.leaf + 1 < map->nleaves) {
		c.leaf++;
		c.rec = 0;
	}
	return c;
}

static bool valid(const struct inode *ip, struct emap_cursor c)
{
	return c.leaf < ip->map.nleaves && c.rec < ip->map.leaves[c.leaf].count;
}

static struct daxfs_extent *at(struct inode *ip, struct emap_cursor c)
{
	return &recs(ip, &ip->map.leaves[c.leaf])[c.rec];
}

bool emap_seek(const struct inode *ip, uint64_t lblk, struct emap_cursor *c, struct daxfs_extent *out)
{
	if (ip->map.nleaves == 0)
		return false;
	*c = find_pos(ip, lblk);
	if (!valid(ip, *c))
		return false;
	*out = crecs(ip, &ip->map.leaves[c->leaf])[c->rec];
	return true;
}

bool emap_next(const struct inode *ip, struct emap_cursor *c, struct daxfs_extent *out)
{
	c->rec++;
	while (c->leaf < ip->map.nleaves && c->rec >= ip->map.leaves[c->leaf].count) {
		c->leaf++;
		c->rec = 0;
	}
	if (!valid(ip, *c))
		return false;
	*out = crecs(ip, &ip->map.leaves[c->leaf])[c->rec];
	return true;
}

/* The cursor of the extent before c, if any. */
static bool prev_pos(const struct inode *ip, struct emap_cursor c, struct emap_cursor *p)
{
	if (c.rec > 0) {
		*p = (struct emap_cursor){ c.leaf, c.rec - 1 };
		return true;
	}
	for (uint32_t li = c.leaf; li-- > 0;) {
		if (ip->map.leaves[li].count) {
			*p = (struct emap_cursor){ li, ip->map.leaves[li].count - 1 };
			return true;
		}
	}
	return false;
}

uint64_t emap_goal(const struct inode *ip, uint64_t lblk)
{
	struct emap_cursor c, p;

	if (ip->map.nleaves == 0)
		return 0;
	c = find_pos(ip, lblk);
	if (!prev_pos(ip, c, &p))
		return 0;
	const struct daxfs_extent *e = &crecs(ip, &ip->map.leaves[p.leaf])[p.rec];
	return e->pblk + (lblk - e->lblk);
}

uint64_t emap_count(const struct inode *ip)
{
	uint64_t n = 0;

	for (uint32_t i = 0; i < ip->map.nleaves; i++)
		n += ip->map.leaves[i].count;
	return n;
}

/* Set the chain pointer that leads to leaf li (the inode's or the previous block's). */
static void set_link_to(struct inode *ip, uint32_t li, uint64_t blk)
{
	if (li == 1) {
		ip->d.ext_next = blk;
		mark_dirty(ip, 0, ip->map.leaves[0].count);
	} else {
		struct emap_leaf *prev = &ip->map.leaves[li - 1];

		prev->blk->next = blk;
		mark_dirty(ip, li - 1, prev->count);
	}
}

/*
 * Split full leaf li, moving records [from, count) to a new block placed after it.  from == count
 * makes an empty new leaf (appending: no half-empty blocks behind a growing file).
 */
static int split_leaf(struct fs *fs, struct tx *tx, struct inode *ip, uint32_t li, uint32_t from)
{
	struct sbi *s = &fs->sbi;
	struct emap *map = &ip->map;
	/* Next to the previous extent block, or (the first one) wherever metadata goes. */
	struct alloc_req req = { .goal = li ? map->leaves[li].pblk + 1 : 0, .want = 1, .flags = ALLOC_META };
	uint64_t blk, n;
	int ret;

	if ((ret = grow_leaves(map, map->nleaves + 1)))
		return ret;
	struct daxfs_extent_block *img = calloc(1, s->bs);
	if (!img)
		return -ENOMEM;
	if ((ret = reclaim_alloc(&fs->reclaim, &req, &blk, &n))) {
		free(img);
		return ret;
	}
	sbi_use(s, tx, blk, 1);
	struct emap_leaf *l = &map->leaves[li];
	uint32_t moved = l->count - from;
	uint64_t after = li == 0 ? ip->d.ext_next : l->blk->next;

	img->magic = DAXFS_EXTENT_MAGIC;
	img->ino = ip->ino;
	img->next = after;
	memcpy(img->ext, recs(ip, l) + from, moved * sizeof(struct daxfs_extent));
	l->count = from;
	mark_dirty(ip, li, from);
	memmove(&map->leaves[li + 2], &map->leaves[li + 1], (map->nleaves - li - 1) * sizeof(*map->leaves));
	map->nleaves++;
	map->leaves[li + 1] = (struct emap_leaf){ .pblk = blk, .count = moved, .blk = img, .dirty_from = CLEAN };
	mark_dirty(ip, li + 1, 0);
	set_link_to(ip, li + 1, blk);
	ip->d.blocks++;
	return 0;
}

/* Remove chain leaf li, which has become empty, and free its block. */
static void drop_leaf(struct fs *fs, struct tx *tx, struct inode *ip, uint32_t li)
{
	struct emap *map = &ip->map;
	struct emap_leaf *l = &map->leaves[li];

	set_link_to(ip, li, l->blk->next);
	sbi_free(&fs->sbi, tx, l->pblk, 1);
	ip->d.blocks--;
	if (l->dirty_from != CLEAN)
		map->ndirty--;
	free(l->blk);
	memmove(&map->leaves[li], &map->leaves[li + 1], (map->nleaves - li - 1) * sizeof(*map->leaves));
	map->nleaves--;
}

static int insert_rec(struct fs *fs, struct tx *tx, struct inode *ip, struct emap_cursor c,
		      const struct daxfs_extent *e)
{
	struct emap *map = &ip->map;
	int ret;

	/* At the end of a leaf, the start of the next one is the same place. */
	if (c.rec == map->leaves[c.leaf].count && c.leaf + 1 < map->nleaves &&
	    map->leaves[c.leaf].count == leaf_cap(fs, &map->leaves[c.leaf]) &&
	    map->leaves[c.leaf + 1].count < leaf_cap(fs, &map->leaves[c.leaf + 1]))
		c = (struct emap_cursor){ c.leaf + 1, 0 };
	struct emap_leaf *l = &map->leaves[c.leaf];
	if (l->count == leaf_cap(fs, l)) {
		bool append = c.rec == l->count;
		uint32_t from = append ? l->count : l->count / 2;

		if ((ret = split_leaf(fs, tx, ip, c.leaf, from)))
			return ret;
		if (c.rec >= from)
			c = (struct emap_cursor){ c.leaf + 1, c.rec - from };
		l = &map->leaves[c.leaf];
	}
	struct daxfs_extent *r = recs(ip, l);
	memmove(&r[c.rec + 1], &r[c.rec], (l->count - c.rec) * sizeof(*r));
	r[c.rec] = *e;
	l->count++;
	mark_dirty(ip, c.leaf, c.rec);
	return 0;
}

static void delete_rec(struct fs *fs, struct tx *tx, struct inode *ip, struct emap_cursor c)
{
	struct emap_leaf *l = &ip->map.leaves[c.leaf];
	struct daxfs_extent *r = recs(ip, l);

	memmove(&r[c.rec], &r[c.rec + 1], (l->count - c.rec - 1) * sizeof(*r));
	l->count--;
	mark_dirty(ip, c.leaf, c.rec);
	if (l->count == 0 && c.leaf > 0)
		drop_leaf(fs, tx, ip, c.leaf);
}

static bool joins(const struct daxfs_extent *a, uint64_t lblk, uint64_t pblk, uint64_t len)
{
	return a->lblk + a->len == lblk && a->pblk + a->len == pblk && a->len + len <= UINT32_MAX;
}

int emap_insert(struct fs *fs, struct tx *tx, struct inode *ip, uint64_t lblk, uint64_t pblk, uint64_t len)
{
	while (len > 0) {
		uint64_t n = MIN(len, (uint64_t)UINT32_MAX);
		struct emap_cursor c = find_pos(ip, lblk), p;
		bool has_next = valid(ip, c);
		int ret;

		/* Grow the previous extent, possibly closing the gap to the next one. */
		if (prev_pos(ip, c, &p) && joins(at(ip, p), lblk, pblk, n)) {
			struct daxfs_extent *pe = at(ip, p);

			pe->len += (uint32_t)n;
			mark_dirty(ip, p.leaf, p.rec);
			if (has_next && joins(pe, at(ip, c)->lblk, at(ip, c)->pblk, at(ip, c)->len)) {
				pe->len += at(ip, c)->len;
				delete_rec(fs, tx, ip, c);
			}
		} else if (has_next && at(ip, c)->lblk == lblk + n && at(ip, c)->pblk == pblk + n &&
			   at(ip, c)->len + n <= UINT32_MAX) {
			struct daxfs_extent *ne = at(ip, c);

			ne->lblk = lblk;
			ne->pblk = pblk;
			ne->len += (uint32_t)n;
			mark_dirty(ip, c.leaf, c.rec);
		} else {
			struct daxfs_extent e = { .lblk = lblk, .pblk = pblk, .len = (uint32_t)n };

			if ((ret = insert_rec(fs, tx, ip, c, &e)))
				return ret;
		}
		lblk += n;
		pblk += n;
		len -= n;
	}
	return 0;
}

/* Journal bytes the dirty leaves will need, to stop before a transaction outgrows the journal. */
static size_t pending_bytes(const struct fs *fs, const struct inode *ip)
{
	return (size_t)(ip->map.ndirty + 2) * (fs_bs(fs) + 64);
}

/*
 * Blocks handed to `freed` at a time.  A freed range can split into many pinned and unpinned runs,
 * each adding to the transaction; bounding the piece keeps every step well inside the journal.
 */
#define FREE_PIECE 512

int emap_remove(struct fs *fs, struct tx *tx, struct inode *ip, uint64_t lblk, uint64_t len, emap_free_fn freed,
		void *arg)
{
	uint64_t end = lblk + len;
	size_t budget = tx_budget(tx->j) / 2;
	struct emap_cursor c;
	int ret;

	if (ip->map.nleaves == 0)
		return 0;
	c = find_pos(ip, lblk);
	while (valid(ip, c) && at(ip, c)->lblk < end) {
		if (tx_bytes(tx) + pending_bytes(fs, ip) > budget)
			return -EAGAIN;
		struct daxfs_extent *e = at(ip, c);
		uint64_t e_end = e->lblk + e->len;

		if (e->lblk < lblk) {
			/*
			 * The range starts inside this extent: split it there, so what follows only ever
			 * removes from the front of an extent.  The new record goes in first (it may need a
			 * block); only then is the old one cut short.
			 */
			struct daxfs_extent right = { .lblk = lblk, .pblk = e->pblk + (lblk - e->lblk),
						      .len = (uint32_t)(e_end - lblk) };
			uint64_t left_lblk = e->lblk;

			if ((ret = insert_rec(fs, tx, ip, (struct emap_cursor){ c.leaf, c.rec + 1 }, &right)))
				return ret;
			/*
			 * Find the left part by its own start: the insert may have split the leaf, and a
			 * search for lblk would land in the new leaf, on the right part.
			 */
			c = find_pos(ip, left_lblk);
			e = at(ip, c);
			e->len = (uint32_t)(lblk - e->lblk);
			mark_dirty(ip, c.leaf, c.rec);
			c = find_pos(ip, lblk);	/* now the right part */
			continue;
		}
		uint64_t t = MIN(MIN(e_end, end), e->lblk + FREE_PIECE);

		freed(arg, e->pblk, t - e->lblk);
		ip->d.blocks -= t - e->lblk;
		if (t == e_end) {
			uint32_t leaves = ip->map.nleaves;

			delete_rec(fs, tx, ip, c);
			if (ip->map.nleaves < leaves || c.rec >= ip->map.leaves[c.leaf].count)
				c = find_pos(ip, t);	/* the leaf went away or ended */
		} else {
			e->pblk += t - e->lblk;
			e->len = (uint32_t)(e_end - t);
			e->lblk = t;
			mark_dirty(ip, c.leaf, c.rec);
		}
	}
	return 0;
}

void emap_log(struct fs *fs, struct tx *tx, struct inode *ip)
{
	struct sbi *s = &fs->sbi;
	struct emap *map = &ip->map;

	for (uint32_t li = 0; li < map->nleaves && map->ndirty; li++) {
		struct emap_leaf *l = &map->leaves[li];

		if (l->dirty_from == CLEAN)
			continue;
		if (l->blk) {
			struct daxfs_extent_block *eb = l->blk;
			uint64_t off = sbi_block_off(s, l->pblk);

			eb->count = l->count;
			eb->crc = csum_extent_block(s->seed, l->pblk, eb);
			tx_log(tx, off, eb, sizeof(*eb));
			if (l->dirty_from < l->count)
				tx_log(tx, off + sizeof(*eb) + l->dirty_from * sizeof(struct daxfs_extent),
				       &eb->ext[l->dirty_from], (l->count - l->dirty_from) * sizeof(struct daxfs_extent));
		}
		l->dirty_from = CLEAN;
		map->ndirty--;
	}
}
