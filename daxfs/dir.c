/* SPDX-License-Identifier: MIT */
/*
 * Directories.
 *
 * On the media a directory is a file of blocks, each a chain of variable-length records (ext2's
 * layout, with a checksum per record).  In DRAM, a cached directory has an image of its blocks, a
 * hash table from name to record (lookup never scans), and the largest free record of each block
 * (insertion finds room without walking the directory).  Records never move, so a record's byte
 * position is a stable readdir cookie.  Changes are made to the image and logged record by record.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csum.h"
#include "fs.h"
#include "util.h"
#include "dir.h"
#include "inode.h"

struct dent {
	uint64_t ino;
	uint32_t blk;		/* logical block of the directory */
	uint16_t off;		/* record offset in the block */
	uint8_t type;
	uint8_t name_len;
	uint32_t hash;
	char name[];
};

#define TOMBSTONE ((struct dent *)1)

struct dir_index {
	struct dent **table;	/* open addressing, linear probing */
	size_t cap;
	size_t count;
	size_t used;		/* count + tombstones */
	char **img;		/* block images */
	uint64_t *pblk;		/* where each block lives */
	uint16_t *max_free;	/* largest record that would fit in each block */
	uint32_t nblocks;
	uint32_t capblocks;
	uint32_t hint;		/* block that last had room */
};

#define REC(img, off) ((struct daxfs_dirent *)((img) + (off)))

static uint32_t name_hash(const char *name, size_t len)
{
	return csum_crc32c(0x9747b28c, name, len);
}

void dir_destroy(struct dir_index *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->cap; i++)
		if (d->table[i] && d->table[i] != TOMBSTONE)
			free(d->table[i]);
	for (uint32_t b = 0; b < d->nblocks; b++)
		free(d->img[b]);
	free(d->table);
	free(d->img);
	free(d->pblk);
	free(d->max_free);
	free(d);
}

static struct dent **probe(struct dir_index *d, const char *name, size_t len, uint32_t h, bool for_insert)
{
	size_t mask = d->cap - 1;
	struct dent **grave = NULL;

	for (size_t i = h & mask;; i = (i + 1) & mask) {
		struct dent *e = d->table[i];

		if (!e)
			return for_insert && grave ? grave : &d->table[i];
		if (e == TOMBSTONE) {
			if (!grave)
				grave = &d->table[i];
			continue;
		}
		if (e->hash == h && e->name_len == len && memcmp(e->name, name, len) == 0)
			return &d->table[i];
	}
}

static int rehash(struct dir_index *d, size_t cap)
{
	struct dent **old = d->table;
	size_t oldcap = d->cap;
	struct dent **nt = calloc(cap, sizeof(*nt));

	if (!nt)
		return -ENOMEM;
	d->table = nt;
	d->cap = cap;
	d->used = d->count;
	for (size_t i = 0; i < oldcap; i++) {
		struct dent *e = old[i];

		if (e && e != TOMBSTONE)
			*probe(d, e->name, e->name_len, e->hash, true) = e;
	}
	free(old);
	return 0;
}

/* Make room for one more entry before anything is changed. */
static int reserve_entry(struct dir_index *d)
{
	if ((d->used + 1) * 10 < d->cap * 7)
		return 0;
	return rehash(d, (d->count + 1) * 10 >= d->cap * 5 ? d->cap * 2 : d->cap);
}

static struct dent *index_add(struct dir_index *d, const char *name, size_t len, uint64_t ino, uint8_t type,
			      uint32_t blk, uint16_t off)
{
	uint32_t h = name_hash(name, len);
	struct dent *e = malloc(sizeof(*e) + len);

	if (!e)
		return NULL;
	*e = (struct dent){ .ino = ino, .blk = blk, .off = off, .type = type, .name_len = (uint8_t)len, .hash = h };
	memcpy(e->name, name, len);
	struct dent **slot = probe(d, name, len, h, true);
	if (*slot == NULL)
		d->used++;
	*slot = e;
	d->count++;
	return e;
}

static struct dent **index_find(struct dir_index *d, const char *name, size_t len)
{
	struct dent **slot = probe(d, name, len, name_hash(name, len), false);

	return *slot ? slot : NULL;
}

/* Space a record can give to a new entry: all of it when free, its slack otherwise. */
static uint16_t rec_room(const struct daxfs_dirent *r)
{
	return r->ino ? (uint16_t)(r->rec_len - DAXFS_DIRENT_LEN(r->name_len)) : r->rec_len;
}

static void update_max_free(struct fs *fs, struct dir_index *d, uint32_t b)
{
	uint16_t best = 0;

	for (uint32_t off = 0; off < fs_bs(fs); off += REC(d->img[b], off)->rec_len)
		best = MAX(best, rec_room(REC(d->img[b], off)));
	d->max_free[b] = best;
}

static int grow_blocks(struct dir_index *d, uint32_t n)
{
	if (n <= d->capblocks)
		return 0;
	uint32_t cap = MAX(n, d->capblocks * 2);
	char **ni = realloc(d->img, cap * sizeof(*ni));
	if (!ni)
		return -ENOMEM;
	d->img = ni;
	uint64_t *np = realloc(d->pblk, cap * sizeof(*np));
	if (!np)
		return -ENOMEM;
	d->pblk = np;
	uint16_t *nf = realloc(d->max_free, cap * sizeof(*nf));
	if (!nf)
		return -ENOMEM;
	d->max_free = nf;
	d->capblocks = cap;
	return 0;
}

static int dir_corrupt(struct fs *fs, const struct inode *dir, uint32_t blk, uint32_t off, const char *what)
{
	sbi_corrupt(&fs->sbi, "directory %llu block %u offset %u: %s", (unsigned long long)dir->ino, blk, off, what);
	return -EIO;
}

static bool valid_dtype(uint8_t t)
{
	return t == DT_REG || t == DT_DIR || t == DT_LNK || t == DT_CHR || t == DT_BLK || t == DT_FIFO ||
	       t == DT_SOCK;
}

int dir_load(struct fs *fs, struct inode *dir)
{
	uint32_t bs = fs_bs(fs);
	struct dir_index *d = calloc(1, sizeof(*d));
	struct emap_cursor c;
	struct daxfs_extent e;
	int ret;

	if (!d)
		return -ENOMEM;
	dir->dir = d;
	d->cap = 16;
	d->table = calloc(d->cap, sizeof(*d->table));
	if (!d->table)
		return -ENOMEM;
	if (dir->d.size % bs || dir->d.size / bs > MIN(UINT32_MAX, fs->sbi.data_blocks))
		return dir_corrupt(fs, dir, 0, 0, "size is not a whole number of blocks, or too large");
	uint32_t nblocks = (uint32_t)(dir->d.size / bs);
	if ((ret = grow_blocks(d, nblocks)))
		return ret;

	for (uint32_t b = 0; b < nblocks; b++) {
		if (!emap_seek(dir, b, &c, &e) || e.lblk > b)
			return dir_corrupt(fs, dir, b, 0, "block is not mapped");
		uint64_t pblk = e.pblk + (b - e.lblk);
		char *img = malloc(bs);
		if (!img)
			return -ENOMEM;
		memcpy(img, sbi_block(&fs->sbi, pblk), bs);
		d->img[b] = img;
		d->pblk[b] = pblk;
		d->nblocks = b + 1;

		for (uint32_t off = 0; off < bs;) {
			const struct daxfs_dirent *r = REC(img, off);

			if (bs - off < DAXFS_DIRENT_HDR || r->rec_len < DAXFS_DIRENT_HDR || r->rec_len % 8 ||
			    r->rec_len > bs - off)
				return dir_corrupt(fs, dir, b, off, "bad record length");
			if (r->crc != csum_dirent(fs->sbi.seed, dir->ino, r))
				return dir_corrupt(fs, dir, b, off, "record checksum mismatch");
			if (r->ino) {
				if (r->name_len == 0 || DAXFS_DIRENT_LEN(r->name_len) > r->rec_len ||
				    r->ino > fs->sbi.sb.ninodes || !valid_dtype(r->type) ||
				    memchr(r->name, '/', r->name_len) || memchr(r->name, 0, r->name_len))
					return dir_corrupt(fs, dir, b, off, "bad entry");
				if (index_find(d, r->name, r->name_len))
					return dir_corrupt(fs, dir, b, off, "duplicate name");
				if ((ret = reserve_entry(d)) || !index_add(d, r->name, r->name_len, r->ino, r->type, b,
									  (uint16_t)off))
					return ret ? ret : -ENOMEM;
			}
			off += r->rec_len;
		}
		update_max_free(fs, d, b);
	}
	return 0;
}

int dir_lookup(struct inode *dir, const char *name, size_t len, uint64_t *ino, uint8_t *type)
{
	struct dent **slot = index_find(dir->dir, name, len);

	if (!slot)
		return -ENOENT;
	*ino = (*slot)->ino;
	if (type)
		*type = (*slot)->type;
	return 0;
}

uint64_t dir_entries(const struct inode *dir)
{
	return dir->dir->count;
}

/* Log the header of the record at (b, off) with a fresh checksum, and its name if asked. */
static void log_rec(struct fs *fs, struct tx *tx, struct inode *dir, uint32_t b, uint32_t off, bool name)
{
	struct dir_index *d = dir->dir;
	struct daxfs_dirent *r = REC(d->img[b], off);

	r->crc = csum_dirent(fs->sbi.seed, dir->ino, r);
	tx_log(tx, sbi_block_off(&fs->sbi, d->pblk[b]) + off, r,
	       DAXFS_DIRENT_HDR + (name && r->ino ? r->name_len : 0));
}

/* Append an empty block to the directory. */
static int add_block(struct fs *fs, struct tx *tx, struct inode *dir, uint32_t *out)
{
	struct dir_index *d = dir->dir;
	uint32_t bs = fs_bs(fs), b = d->nblocks;
	struct alloc_req req = { .goal = emap_goal(dir, b), .lblk = b, .want = 1 };
	uint64_t pblk, n;
	int ret;

	if (b == UINT32_MAX || (uint64_t)(b + 1) * bs > DAXFS_MAX_FILE_SIZE)
		return -EFBIG;
	if ((ret = grow_blocks(d, b + 1)))
		return ret;
	char *img = calloc(1, bs);
	if (!img)
		return -ENOMEM;
	if ((ret = reclaim_alloc(&fs->reclaim, &req, &pblk, &n))) {
		free(img);
		return ret;
	}
	if ((ret = emap_insert(fs, tx, dir, b, pblk, 1))) {
		sbi_unalloc(&fs->sbi, pblk, 1);
		free(img);
		return ret;
	}
	sbi_use(&fs->sbi, tx, pblk, 1);
	d->img[b] = img;
	d->pblk[b] = pblk;
	d->nblocks = b + 1;
	dir->d.size += bs;
	dir->d.blocks++;
	/* One free record spanning the block. */
	REC(img, 0)->rec_len = (uint16_t)bs;
	log_rec(fs, tx, dir, b, 0, false);
	d->max_free[b] = (uint16_t)bs;
	*out = b;
	return 0;
}

static int find_room(struct fs *fs, struct tx *tx, struct inode *dir, uint16_t need, uint32_t *out)
{
	struct dir_index *d = dir->dir;

	if (d->hint < d->nblocks && d->max_free[d->hint] >= need) {
		*out = d->hint;
		return 0;
	}
	for (uint32_t i = 0; i < d->nblocks; i++) {
		/* Start from the end: recently added blocks are the likeliest to have room. */
		uint32_t b = d->nblocks - 1 - i;

		if (d->max_free[b] >= need) {
			*out = d->hint = b;
			return 0;
		}
	}
	int ret = add_block(fs, tx, dir, out);
	if (!ret)
		d->hint = *out;
	return ret;
}

int dir_add(struct fs *fs, struct tx *tx, struct inode *dir, const char *name, size_t len, uint64_t ino,
	    uint8_t type)
{
	struct dir_index *d = dir->dir;
	uint16_t need = (uint16_t)DAXFS_DIRENT_LEN(len);
	uint32_t b, off;
	int ret;

	if (len == 0 || len > DAXFS_NAME_MAX)
		return len ? -ENAMETOOLONG : -EINVAL;
	if (index_find(d, name, len))
		return -EEXIST;
	if ((ret = reserve_entry(d)) || (ret = find_room(fs, tx, dir, need, &b)))
		return ret;

	char *img = d->img[b];
	for (off = 0; rec_room(REC(img, off)) < need; off += REC(img, off)->rec_len)
		;
	struct daxfs_dirent *r = REC(img, off);
	if (r->ino) {
		/* Take the slack at the end of a live record. */
		uint16_t keep = (uint16_t)DAXFS_DIRENT_LEN(r->name_len);
		uint16_t rest = (uint16_t)(r->rec_len - keep);

		r->rec_len = keep;
		log_rec(fs, tx, dir, b, off, false);
		off += keep;
		r = REC(img, off);
		r->rec_len = rest;
	}
	uint16_t avail = r->rec_len;
	if (avail - need >= (int)DAXFS_DIRENT_HDR) {
		/* Split off the tail as a free record. */
		struct daxfs_dirent *tail = REC(img, off + need);

		memset(tail, 0, DAXFS_DIRENT_HDR);
		tail->rec_len = (uint16_t)(avail - need);
		log_rec(fs, tx, dir, b, off + need, false);
		avail = need;
	}
	r->rec_len = avail;
	r->name_len = (uint8_t)len;
	r->type = type;
	r->ino = ino;
	memcpy(r->name, name, len);
	log_rec(fs, tx, dir, b, off, true);
	update_max_free(fs, d, b);
	if (!index_add(d, name, len, ino, type, b, (uint16_t)off))
		return -ENOMEM;
	return 0;
}

int dir_remove(struct fs *fs, struct tx *tx, struct inode *dir, const char *name, size_t len)
{
	struct dir_index *d = dir->dir;
	struct dent **slot = index_find(d, name, len);

	if (!slot)
		return -ENOENT;
	struct dent *e = *slot;
	char *img = d->img[e->blk];
	uint32_t prev = UINT32_MAX;

	for (uint32_t off = 0; off < e->off; off += REC(img, off)->rec_len)
		prev = off;
	if (prev != UINT32_MAX) {
		/* Fold the record into its predecessor, as ext2 does: blocks stay unfragmented. */
		REC(img, prev)->rec_len = (uint16_t)(REC(img, prev)->rec_len + REC(img, e->off)->rec_len);
		log_rec(fs, tx, dir, e->blk, prev, false);
	} else {
		REC(img, e->off)->ino = 0;
		REC(img, e->off)->name_len = 0;
		REC(img, e->off)->type = 0;
		log_rec(fs, tx, dir, e->blk, e->off, false);
	}
	update_max_free(fs, d, e->blk);
	if (d->max_free[e->blk] > d->max_free[d->hint])
		d->hint = e->blk;
	*slot = TOMBSTONE;
	d->count--;
	free(e);
	return 0;
}

int dir_replace(struct fs *fs, struct tx *tx, struct inode *dir, const char *name, size_t len, uint64_t ino,
		uint8_t type)
{
	struct dent **slot = index_find(dir->dir, name, len);

	if (!slot)
		return -ENOENT;
	struct dent *e = *slot;
	struct daxfs_dirent *r = REC(dir->dir->img[e->blk], e->off);
	r->ino = ino;
	r->type = type;
	log_rec(fs, tx, dir, e->blk, e->off, false);
	e->ino = ino;
	e->type = type;
	return 0;
}

/*
 * Cookies: 0 is the start, 1 follows ".", 2 follows "..".  A record at byte position P of the
 * directory is emitted with next cookie P + 3, and cookie C >= 2 resumes at the first record at or
 * after position C - 2: a record removed (or folded away) since the cookie was issued is skipped.
 */
int dir_iterate(struct fs *fs, struct inode *dir, uint64_t pos, dir_emit_fn emit, void *arg)
{
	struct dir_index *d = dir->dir;
	uint32_t bs = fs_bs(fs);

	if (pos == 0) {
		if (emit(arg, ".", 1, dir->ino, DT_DIR, 1))
			return 0;
		pos = 1;
	}
	if (pos == 1) {
		if (emit(arg, "..", 2, dir->d.parent, DT_DIR, 2))
			return 0;
		pos = 2;
	}
	uint64_t start = pos - 2;
	for (uint64_t b = start / bs; b < d->nblocks; b++) {
		char *img = d->img[b];

		for (uint32_t off = 0; off < bs; off += REC(img, off)->rec_len) {
			const struct daxfs_dirent *r = REC(img, off);
			uint64_t p = b * bs + off;

			if (p < start || !r->ino)
				continue;
			if (emit(arg, r->name, r->name_len, r->ino, r->type, p + 3))
				return 0;
		}
	}
	return 0;
}
