/* SPDX-License-Identifier: MIT */
/*
 * The checker.
 *
 * It mounts the image through the same code as the daemon (superblock and journal validation,
 * journal replay, inode, extent, directory and xattr parsing), in a copy-on-write mapping when
 * nothing may change, and then cross-checks what no single structure can tell:
 *   1. every allocated inode reads back; every block it owns is owned only once;
 *   2. every directory entry names a live inode of its type; directories have one name;
 *   3. link counts, block counts and ".." match what the namespace says;
 *   4. the block bitmap is exactly the set of owned blocks.
 * Repairs go through transactions, like any other change, and the check runs again after them.
 */
#include "check.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"
#include "file.h"
#include "inode.h"
#include "mount.h"
#include "namei.h"
#include "orphan.h"
#include "xattr.h"

enum { ST_FREE, ST_OK, ST_BAD };

struct fixlist {
	uint64_t (*v)[3];
	size_t n;
	size_t cap;
};

struct ck {
	struct fs *fs;
	struct sbi *s;
	const struct check_opts *o;
	struct check_result *r;
	FILE *out;
	uint64_t *seen;		/* blocks owned by something */
	uint64_t *dup;		/* blocks owned twice */
	uint8_t *state;		/* per inode: ST_* */
	uint16_t *mode;		/* per inode: file type bits */
	uint32_t *refs;		/* per inode: directory entries naming it */
	uint32_t *subdirs;	/* per directory: entries that are directories */
	uint64_t *parent;	/* per directory: the directory whose entry names it */
	uint8_t *orphan;	/* per inode: on the orphan list */
	uint64_t errors;
	uint64_t unfixed;	/* problems no repair addresses */
	uint64_t bad_inodes;
	uint64_t dups;
	bool quiet;		/* an intermediate pass of a repair: findings are not news */
	/* what a repair pass will do */
	struct fixlist bad_entries;	/* dir, ino, fix type (0 = remove) */
	struct fixlist counts;		/* ino, nlink, blocks */
	struct fixlist parents;		/* dir, parent */
	struct fixlist unlinked;	/* ino: nlink 0, no name: free it */
	struct fixlist disconnected;	/* ino: has links but no name: reconnect */
	struct fixlist stale_orphans;	/* slot id, ino */
	struct fixlist bad_holders;	/* slot id: a holder record that does not verify or names no holder */
	bool reset_holders;		/* the holder list's chain is broken: empty it */
	struct fixlist bad;		/* ino: unreadable: clear it (its blocks then count as leaked) */
	struct fixlist bits_set;	/* first, n: used blocks marked free */
	struct fixlist bits_clear;	/* first, n: free blocks marked used */
};

static void fl_add(struct ck *c, struct fixlist *fl, uint64_t a, uint64_t b, uint64_t d)
{
	if (fl->n == fl->cap) {
		size_t cap = fl->cap ? fl->cap * 2 : 64;
		void *nv = realloc(fl->v, cap * sizeof(*fl->v));

		if (!nv) {
			c->unfixed++;	/* a repair we cannot even record */
			return;
		}
		fl->v = nv;
		fl->cap = cap;
	}
	fl->v[fl->n][0] = a;
	fl->v[fl->n][1] = b;
	fl->v[fl->n][2] = d;
	fl->n++;
}

/* Findings go to c->out, often the terminal a progress display is on: take the display down first. */
static void clear_progress(struct ck *c)
{
	if (c->o->progress)
		c->o->progress(c->o->progress_arg, NULL, 0, 0);
}

static void problem(struct ck *c, bool fixable, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void problem(struct ck *c, bool fixable, const char *fmt, ...)
{
	va_list ap;

	c->errors++;
	if (!fixable)
		c->unfixed++;
	if (c->quiet || (c->o->mode == CHECK_PREEN && fixable))
		return;
	clear_progress(c);
	va_start(ap, fmt);
	vfprintf(c->out, fmt, ap);
	va_end(ap);
	fprintf(c->out, "%s\n", fixable || c->o->mode == CHECK_READONLY ? "" : " (cannot repair)");
}

static void note(struct ck *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(struct ck *c, const char *fmt, ...)
{
	va_list ap;

	if (c->o->mode == CHECK_PREEN && !c->o->verbose)
		return;
	clear_progress(c);
	va_start(ap, fmt);
	vfprintf(c->out, fmt, ap);
	va_end(ap);
	fputc('\n', c->out);
}

/*
 * Corrupt metadata met while parsing: the parser's own words, as a finding.  An inode that does not
 * parse is cleared by a repair (like e2fsck), which the caller records.
 */
static void report_hook(void *arg, const char *msg)
{
	struct ck *c = arg;

	problem(c, true, "%s", msg);
}

/* Every 4096 inodes or blocks and at the end of a pass, on images large enough to take a while. */
static void progress(struct ck *c, const char *what, uint64_t done, uint64_t total)
{
	if (c->o->progress && c->s->sb.nblocks >= (1ULL << 24) && (done % 4096 == 0 || done == total))
		c->o->progress(c->o->progress_arg, what, done, total);
}

static bool bit(const uint64_t *map, uint64_t b)
{
	return (map[b / 64] >> (b % 64)) & 1;
}

static void set_bit(uint64_t *map, uint64_t b)
{
	map[b / 64] |= 1ULL << (b % 64);
}

static void claim(struct ck *c, uint64_t start, uint64_t len)
{
	for (uint64_t b = start; b < start + len; b++) {
		if (bit(c->seen, b)) {
			if (!bit(c->dup, b))
				c->dups++;
			set_bit(c->dup, b);
		}
		set_bit(c->seen, b);
	}
}

/* Blocks an inode owns: data, extent blocks, the xattr block.  Returns the count. */
static uint64_t claim_inode(struct ck *c, struct inode *ip)
{
	struct emap_cursor cur;
	struct daxfs_extent e;
	uint64_t n = 0;

	for (uint32_t li = 1; li < ip->map.nleaves; li++) {
		claim(c, ip->map.leaves[li].pblk, 1);
		n++;
	}
	for (bool more = emap_seek(ip, 0, &cur, &e); more; more = emap_next(ip, &cur, &e)) {
		claim(c, e.pblk, e.len);
		n += e.len;
	}
	if (ip->d.xattr_blk) {
		claim(c, ip->d.xattr_blk, 1);
		n++;
	}
	return n;
}

static void check_symlink(struct ck *c, struct inode *ip)
{
	if (ip->d.flags & DAXFS_IF_INLINE_SYMLINK) {
		if (ip->d.size == 0 || ip->d.size >= DAXFS_INLINE_SYMLINK ||
		    memchr(ip->d.u.symlink, 0, ip->d.size))
			problem(c, false, "inode %llu: inline symlink of bad length %llu", (unsigned long long)ip->ino,
				(unsigned long long)ip->d.size);
		return;
	}
	struct emap_cursor cur;
	struct daxfs_extent e;
	if (ip->d.size == 0 || ip->d.size > c->s->bs || !emap_seek(ip, 0, &cur, &e) || e.lblk != 0)
		problem(c, false, "inode %llu: symlink target missing or too long", (unsigned long long)ip->ino);
}

/* Pass 1: every allocated inode. */
static void pass_inodes(struct ck *c)
{
	struct fs *fs = c->fs;
	uint64_t ninodes = c->s->sb.ninodes;

	for (uint64_t ino = 1; ino <= ninodes; ino++) {
		progress(c, "pass 1 of 4, inodes", ino, ninodes);
		if (!journal_bitmap_test(&c->s->ibm, ino - 1))
			continue;
		struct inode *ip;
		int ret = inode_read(fs, ino, &ip);
		if (ret) {
			if (ret != -EIO)
				problem(c, true, "inode %llu: cannot read it (%s)", (unsigned long long)ino,
					strerror(-ret));
			c->state[ino] = ST_BAD;
			c->bad_inodes++;
			fl_add(c, &c->bad, ino, 0, 0);
			continue;
		}
		c->state[ino] = ST_OK;
		c->mode[ino] = ip->d.mode;
		c->r->inodes++;
		if (S_ISDIR(ip->d.mode))
			c->r->dirs++;
		if (S_ISLNK(ip->d.mode))
			check_symlink(c, ip);
		if (ip->d.xattr_blk && xattr_list(fs, ip, NULL, 0) < 0) {
			c->state[ino] = ST_BAD;	/* reported by the parser */
			c->bad_inodes++;
			fl_add(c, &c->bad, ino, 0, 0);
		}
		uint64_t owned = claim_inode(c, ip);
		if (owned != ip->d.blocks) {
			problem(c, true, "inode %llu: block count %llu, owns %llu", (unsigned long long)ino,
				(unsigned long long)ip->d.blocks, (unsigned long long)owned);
			fl_add(c, &c->counts, ino, UINT64_MAX, owned);
		}
		inode_free(ip);
	}
}

struct dirwalk {
	struct ck *c;
	uint64_t dir;
};

static int check_entry(void *arg, const char *name, size_t len, uint64_t ino, uint8_t type, uint64_t next)
{
	struct dirwalk *w = arg;
	struct ck *c = w->c;

	(void)next;
	if (ino == 0 || ino > c->s->sb.ninodes || c->state[ino] == ST_FREE) {
		problem(c, true, "directory %llu: entry '%.*s' names free inode %llu", (unsigned long long)w->dir,
			(int)len, name, (unsigned long long)ino);
		fl_add(c, &c->bad_entries, w->dir, ino, 0);
		return 0;
	}
	if (c->state[ino] == ST_BAD) {
		/* The inode is reported and will be cleared; its names go with it. */
		fl_add(c, &c->bad_entries, w->dir, ino, 0);
		return 0;
	}
	if (type != IFTODT(c->mode[ino])) {
		problem(c, true, "directory %llu: entry '%.*s' has type %u, inode %llu is type %u",
			(unsigned long long)w->dir, (int)len, name, type, (unsigned long long)ino,
			IFTODT(c->mode[ino]));
		fl_add(c, &c->bad_entries, w->dir, ino, IFTODT(c->mode[ino]));
	}
	c->refs[ino]++;
	if (S_ISDIR(c->mode[ino])) {
		c->subdirs[w->dir]++;
		if (c->parent[ino])
			problem(c, false, "directory %llu has more than one name", (unsigned long long)ino);
		else
			c->parent[ino] = w->dir;
	}
	return 0;
}

/* Pass 2: the namespace. */
static void pass_dirs(struct ck *c)
{
	uint64_t ninodes = c->s->sb.ninodes;

	for (uint64_t ino = 1; ino <= ninodes; ino++) {
		progress(c, "pass 2 of 4, directories", ino, ninodes);
		if (c->state[ino] != ST_OK || !S_ISDIR(c->mode[ino]))
			continue;
		struct inode *ip;
		if (inode_read(c->fs, ino, &ip))
			continue;
		struct dirwalk w = { c, ino };
		dir_iterate(c->fs, ip, 2, check_entry, &w);
		inode_free(ip);
	}
}

static int mark_orphan(void *arg, uint64_t id, const uint64_t v[3])
{
	struct ck *c = arg;
	uint64_t ino = v[0];

	if (ino == 0 || ino > c->s->sb.ninodes || c->state[ino] != ST_OK) {
		problem(c, true, "orphan list slot %llu names inode %llu, which is not in use",
			(unsigned long long)id, (unsigned long long)ino);
		fl_add(c, &c->stale_orphans, id, ino, 0);
	} else {
		c->orphan[ino] = 1;
	}
	return 0;
}

/* Pass 3: link counts, "..", orphans. */
static void pass_links(struct ck *c)
{
	uint64_t ninodes = c->s->sb.ninodes;

	for (uint64_t ino = 1; ino <= ninodes; ino++) {
		progress(c, "pass 3 of 4, link counts", ino, ninodes);
		if (c->state[ino] != ST_OK)
			continue;
		struct inode *ip;
		if (inode_read(c->fs, ino, &ip))
			continue;
		uint32_t nlink = ip->d.nlink;
		bool dir = S_ISDIR(ip->d.mode);
		uint32_t want = dir ? 2 + c->subdirs[ino] : c->refs[ino];

		if (ino == DAXFS_ROOT_INO) {
			if (c->refs[ino])
				problem(c, false, "the root directory has a name in a directory");
			if (ip->d.parent != DAXFS_ROOT_INO) {
				problem(c, true, "root: '..' is %llu", (unsigned long long)ip->d.parent);
				fl_add(c, &c->parents, ino, DAXFS_ROOT_INO, 0);
			}
		} else if (c->refs[ino] == 0) {
			if (nlink == 0) {
				c->r->orphans++;
				if (!c->orphan[ino]) {
					problem(c, true, "inode %llu: no links and not on the orphan list",
						(unsigned long long)ino);
					fl_add(c, &c->unlinked, ino, 0, 0);
				}
			} else {
				problem(c, true, "inode %llu: %u links but no name (reconnect to /lost+found)",
					(unsigned long long)ino, nlink);
				fl_add(c, &c->disconnected, ino, 0, 0);
			}
			inode_free(ip);
			continue;
		} else if (dir && ip->d.parent != c->parent[ino]) {
			problem(c, true, "directory %llu: '..' is %llu, should be %llu", (unsigned long long)ino,
				(unsigned long long)ip->d.parent, (unsigned long long)c->parent[ino]);
			fl_add(c, &c->parents, ino, c->parent[ino], 0);
		}
		if (c->orphan[ino] && nlink) {
			problem(c, true, "inode %llu: on the orphan list but linked", (unsigned long long)ino);
		}
		if (nlink != want) {
			problem(c, true, "inode %llu: link count %u, should be %u", (unsigned long long)ino, nlink, want);
			fl_add(c, &c->counts, ino, want, UINT64_MAX);
		}
		inode_free(ip);
	}
}

/* Pass 4: the block bitmap against ownership, as runs. */
static void pass_bitmap(struct ck *c)
{
	const uint64_t *bm = c->s->bbm.shadow;
	uint64_t nblocks = c->s->sb.nblocks;
	uint64_t leaked = 0, unmarked = 0;

	for (uint64_t b = 0; b < nblocks;) {
		uint64_t w = b / 64;

		if (b % (1 << 20) == 0)
			progress(c, "pass 4 of 4, block bitmap", b, nblocks);
		if (b % 64 == 0 && bm[w] == c->seen[w] && b + 64 <= nblocks) {
			b += 64;
			continue;
		}
		bool used = bit(c->seen, b), marked = bit(bm, b);
		if (used == marked) {
			b++;
			continue;
		}
		uint64_t start = b;
		while (b < nblocks && bit(c->seen, b) == used && bit(bm, b) == marked)
			b++;
		if (used) {
			unmarked += b - start;
			fl_add(c, &c->bits_set, start, b - start, 0);
		} else {
			leaked += b - start;
			fl_add(c, &c->bits_clear, start, b - start, 0);
		}
	}
	progress(c, "pass 4 of 4, block bitmap", nblocks, nblocks);
	if (unmarked)
		problem(c, true, "block bitmap: %llu blocks in use are marked free", (unsigned long long)unmarked);
	/* With unreadable inodes around, "owned by nothing" may mean "owned by them": leave those bits. */
	if (leaked)
		problem(c, c->bad_inodes == 0, "block bitmap: %llu blocks are marked in use but owned by nothing (leaked)",
			(unsigned long long)leaked);
	if (c->dups)
		problem(c, false, "%llu blocks are owned more than once", (unsigned long long)c->dups);
	for (uint64_t w = 0; w < DIV_ROUND_UP(nblocks, 64); w++)
		c->r->blocks_used += (uint64_t)__builtin_popcountll(c->seen[w]);
	c->r->blocks_used -= c->s->sb.data_start + 1;	/* metadata and the superblock copy */
}

static void reset(struct ck *c)
{
	struct fixlist *lists[] = { &c->bad_entries, &c->counts, &c->parents, &c->unlinked, &c->disconnected,
				    &c->stale_orphans, &c->bits_set, &c->bits_clear, &c->bad, &c->bad_holders };
	uint64_t ninodes = c->s->sb.ninodes, words = DIV_ROUND_UP(c->s->sb.nblocks, 64);

	for (size_t i = 0; i < ARRAY_SIZE(lists); i++)
		lists[i]->n = 0;
	c->reset_holders = false;
	memset(c->seen, 0, words * 8);
	memset(c->dup, 0, words * 8);
	memset(c->state, 0, ninodes + 1);
	memset(c->mode, 0, (ninodes + 1) * sizeof(*c->mode));
	memset(c->refs, 0, (ninodes + 1) * sizeof(*c->refs));
	memset(c->subdirs, 0, (ninodes + 1) * sizeof(*c->subdirs));
	memset(c->parent, 0, (ninodes + 1) * sizeof(*c->parent));
	memset(c->orphan, 0, ninodes + 1);
	c->errors = 0;
	c->unfixed = 0;
	c->bad_inodes = 0;
	c->dups = 0;
	uint64_t fixed = c->r->fixed;
	int jr = c->r->journal_records;
	bool dirty = c->r->was_dirty;
	memset(c->r, 0, sizeof(*c->r));
	c->r->fixed = fixed;
	c->r->journal_records = jr;
	c->r->was_dirty = dirty;
}

/* Busy extents are blocks in their own state: owned by the busy list, not by a file. */
static int claim_busy(void *arg, uint64_t id, const uint64_t v[3])
{
	struct ck *c = arg;

	if (v[1] == 0 || !sbi_data_block(c->s, v[0], v[1])) {
		problem(c, false, "busy extent slot %llu: blocks %llu+%llu outside the data area", (unsigned long long)id,
			(unsigned long long)v[0], (unsigned long long)v[1]);
		return 0;
	}
	claim(c, v[0], v[1]);
	c->r->busy += v[1];
	return 0;
}

/*
 * A holder record names a process that held write pins when the daemon stopped: the next mount
 * decides what it means (quarantine while that process lives).  The checker only sees that it is
 * well formed; a repair drops one that is not (it can quarantine nothing), or that does not verify.
 */
static int check_holder(void *arg, uint64_t id, const uint64_t v[3])
{
	struct ck *c = arg;

	if (v[0] == 0 || v[0] > c->s->sb.ninodes || v[2] == 0 || v[2] > INT32_MAX) {
		problem(c, true, "holder slot %llu: inode %llu, pid %llu: not a holder", (unsigned long long)id,
			(unsigned long long)v[0], (unsigned long long)v[2]);
		fl_add(c, &c->bad_holders, id, 0, 0);
	}
	return 0;
}

static void bad_holder(void *arg, uint64_t id, const uint64_t v[3])
{
	struct ck *c = arg;

	problem(c, true, "holder slot %llu: bad checksum (inode %llu, pid %llu?)", (unsigned long long)id,
		(unsigned long long)v[0], (unsigned long long)v[2]);
	fl_add(c, &c->bad_holders, id, 0, 0);
}

static int run_passes(struct ck *c)
{
	char msg[256];
	struct slotlist tmp;

	reset(c);
	/* Fixed metadata first: the regions before the data area, the superblock copy, the slot lists. */
	claim(c, 0, c->s->sb.data_start);
	claim(c, c->s->sb.backup_sb, 1);
	for (size_t i = 0; i < c->fs->orphans.nblocks; i++)
		claim(c, c->fs->orphans.blocks[i], 1);
	if (slots_load(&tmp, c->s, DAXFS_SLOTS_BUSY, c->s->sb.busy_head, claim_busy, c, msg, sizeof(msg)) == 0) {
		for (size_t i = 0; i < tmp.nblocks; i++)
			claim(c, tmp.blocks[i], 1);
	} else {
		problem(c, false, "%s", msg);
	}
	slots_destroy(&tmp);
	if (c->s->sb.feature_compat & DAXFS_FEATURE_COMPAT_HOLDERS) {
		if (slots_load_salvage(&tmp, c->s, DAXFS_SLOTS_HOLDER, c->s->sb.holder_head, check_holder, bad_holder,
				       c, msg, sizeof(msg)) == 0) {
			for (size_t i = 0; i < tmp.nblocks; i++)
				claim(c, tmp.blocks[i], 1);
		} else {
			/* Its head block stays the list's; the rest of a broken chain is not owned. */
			problem(c, true, "holder list: %s: the list is unusable", msg);
			c->reset_holders = true;
			claim(c, c->s->sb.holder_head, 1);
		}
		slots_destroy(&tmp);
	}
	pass_inodes(c);
	pass_dirs(c);
	/* The orphan list names inodes; walk it through the loaded list's blocks. */
	if (c->fs->orphans.nblocks) {
		if (slots_load(&tmp, c->s, DAXFS_SLOTS_ORPHAN, c->s->sb.orphan_head, mark_orphan, c, msg,
			       sizeof(msg)))
			problem(c, false, "%s", msg);
		slots_destroy(&tmp);
	}
	pass_links(c);
	pass_bitmap(c);
	c->r->errors = c->errors;
	return 0;
}

/* ---- repairs ---- */

static int fix_bits(struct ck *c, struct fixlist *fl, bool set)
{
	struct tx tx;

	tx_init(&tx, &c->s->journal);
	for (size_t i = 0; i < fl->n; i++) {
		tx_bits(&tx, &c->s->bbm, fl->v[i][0], fl->v[i][1], set);
		/* Keep the allocator from handing out blocks that turned out to be in use. */
		if (set)
			for (uint64_t b = fl->v[i][0]; b < fl->v[i][0] + fl->v[i][1]; b++)
				alloc_take(&c->s->alloc, b, 1);
		if (tx_bytes(&tx) > tx_budget(&c->s->journal) / 2) {
			if (sbi_commit(&c->fs->sbi, &tx))
				return -EIO;
			tx_init(&tx, &c->s->journal);
		}
	}
	c->r->fixed += fl->n;
	return sbi_commit(&c->fs->sbi, &tx);
}

struct find_name {
	uint64_t ino;
	char name[DAXFS_NAME_MAX + 1];
	bool found;
};

static int find_name_cb(void *arg, const char *name, size_t len, uint64_t ino, uint8_t type, uint64_t next)
{
	struct find_name *f = arg;

	(void)type;
	(void)next;
	if (ino != f->ino)
		return 0;
	memcpy(f->name, name, len);
	f->name[len] = 0;
	f->found = true;
	return 1;
}

static int fix_entries(struct ck *c)
{
	struct fs *fs = c->fs;

	for (size_t i = 0; i < c->bad_entries.n; i++) {
		uint64_t dino = c->bad_entries.v[i][0], ino = c->bad_entries.v[i][1];
		uint8_t type = (uint8_t)c->bad_entries.v[i][2];
		struct find_name f = { .ino = ino };
		struct inode *dir;
		struct tx tx;
		int ret;

		if ((ret = inode_get(fs, dino, &dir)))
			return ret;
		pthread_rwlock_wrlock(&dir->lock);
		dir_iterate(fs, dir, 2, find_name_cb, &f);
		if (f.found) {
			tx_init(&tx, &c->s->journal);
			if (type)
				ret = dir_replace(fs, &tx, dir, f.name, strlen(f.name), ino, type);
			else
				ret = dir_remove(fs, &tx, dir, f.name, strlen(f.name));
			inode_log(fs, &tx, dir);
			ret = ret ? ret : sbi_commit(&fs->sbi, &tx);
			if (ret)
				tx_free(&tx);
			c->r->fixed++;
		}
		pthread_rwlock_unlock(&dir->lock);
		inode_put(fs, dir);
		if (ret)
			return ret;
	}
	return 0;
}

/* Unreadable inodes: free the number and zero the record; their blocks are found leaked next pass. */
static int fix_bad(struct ck *c)
{
	struct sbi *s = c->s;
	struct daxfs_inode zero = { 0 };
	struct tx tx;

	if (c->bad.n == 0)
		return 0;
	tx_init(&tx, &s->journal);
	for (size_t i = 0; i < c->bad.n; i++) {
		uint64_t ino = c->bad.v[i][0];

		tx_bits(&tx, &s->ibm, ino - 1, 1, false);
		tx_log(&tx, sbi_block_off(s, s->sb.itable_start) + (ino - 1) * DAXFS_INODE_SIZE, &zero, sizeof(zero));
		note(c, "inode %llu cleared", (unsigned long long)ino);
		c->r->fixed++;
		if (tx_bytes(&tx) > tx_budget(&s->journal) / 2) {
			if (sbi_commit(&c->fs->sbi, &tx))
				return -EIO;
			tx_init(&tx, &s->journal);
		}
	}
	return sbi_commit(&c->fs->sbi, &tx);
}

static int fix_inode_fields(struct ck *c)
{
	struct fs *fs = c->fs;

	for (int pass = 0; pass < 2; pass++) {
		struct fixlist *fl = pass ? &c->parents : &c->counts;

		for (size_t i = 0; i < fl->n; i++) {
			struct inode *ip;
			struct tx tx;
			int ret;

			if ((ret = inode_get(fs, fl->v[i][0], &ip)))
				return ret;
			pthread_rwlock_wrlock(&ip->lock);
			if (pass) {
				ip->d.parent = fl->v[i][1];
			} else {
				if (fl->v[i][1] != UINT64_MAX)
					ip->d.nlink = (uint32_t)fl->v[i][1];
				if (fl->v[i][2] != UINT64_MAX)
					ip->d.blocks = fl->v[i][2];
			}
			tx_init(&tx, &c->s->journal);
			inode_log(fs, &tx, ip);
			ret = sbi_commit(&fs->sbi, &tx);
			pthread_rwlock_unlock(&ip->lock);
			inode_put(fs, ip);
			if (ret)
				return ret;
			c->r->fixed++;
		}
	}
	return 0;
}

static int fix_unlinked(struct ck *c)
{
	char err[256];
	int ret;

	/*
	 * Stale slots first (they name free or unreadable inodes): recovery below then sees only
	 * real orphans, and no slot is removed twice.
	 */
	for (size_t i = 0; i < c->stale_orphans.n; i++) {
		if ((ret = orphan_drop_slot(c->fs, c->stale_orphans.v[i][0])))
			return ret;
		c->r->fixed++;
	}
	/* Orphans: what mount would do. */
	uint64_t before = c->fs->orphans_recovered;
	struct file_free_sink sink = file_free_direct(c->fs);
	if ((ret = orphan_recover(c->fs, &sink, err, sizeof(err)))) {
		fprintf(c->out, "%s\n", err);
		return ret;
	}
	if (c->fs->orphans_recovered > before) {
		note(c, "freed %llu orphan inodes (unlinked while open)",
		     (unsigned long long)(c->fs->orphans_recovered - before));
		c->r->fixed += c->fs->orphans_recovered - before;
	}
	for (size_t i = 0; i < c->unlinked.n; i++) {
		struct inode *ip;

		if ((ret = inode_get(c->fs, c->unlinked.v[i][0], &ip)))
			return ret;
		pthread_mutex_lock(&c->fs->ns_lock);
		pthread_rwlock_wrlock(&ip->lock);
		ret = orphan_free_inode(c->fs, ip, &sink);
		pthread_rwlock_unlock(&ip->lock);
		pthread_mutex_unlock(&c->fs->ns_lock);
		inode_put(c->fs, ip);
		if (ret)
			return ret;
		c->r->fixed++;
	}
	return 0;
}

static int fix_disconnected(struct ck *c)
{
	struct fs *fs = c->fs;
	struct cred root = { 0 };
	struct entry e;
	uint64_t lf;
	int ret;

	if (c->disconnected.n == 0)
		return 0;
	ret = namei_lookup(fs, DAXFS_ROOT_INO, "lost+found", &e);
	if (ret == -ENOENT)
		ret = namei_mkdir(fs, &root, DAXFS_ROOT_INO, "lost+found", 0700, &e);
	if (ret)
		return ret;
	lf = e.ino;
	for (size_t i = 0; i < c->disconnected.n; i++) {
		uint64_t ino = c->disconnected.v[i][0];
		char name[32];
		struct inode *dir, *ip;
		struct tx tx;

		snprintf(name, sizeof(name), "#%llu", (unsigned long long)ino);
		if ((ret = inode_get(fs, lf, &dir)))
			return ret;
		if ((ret = inode_get(fs, ino, &ip))) {
			inode_put(fs, dir);
			return ret;
		}
		pthread_mutex_lock(&fs->ns_lock);
		pthread_rwlock_wrlock(&dir->lock);
		pthread_rwlock_wrlock(&ip->lock);
		tx_init(&tx, &c->s->journal);
		ret = dir_add(fs, &tx, dir, name, strlen(name), ino, (uint8_t)IFTODT(ip->d.mode));
		if (ret == 0) {
			/* One name now; pass 3 of the re-check settles the counts. */
			if (S_ISDIR(ip->d.mode)) {
				ip->d.parent = lf;
				dir->d.nlink++;
			} else {
				ip->d.nlink = 1;
			}
			emap_log(fs, &tx, dir);
			inode_log(fs, &tx, dir);
			inode_log(fs, &tx, ip);
			ret = sbi_commit(&fs->sbi, &tx);
		} else {
			tx_free(&tx);
		}
		pthread_rwlock_unlock(&ip->lock);
		pthread_rwlock_unlock(&dir->lock);
		pthread_mutex_unlock(&fs->ns_lock);
		inode_put(fs, ip);
		inode_put(fs, dir);
		if (ret)
			return ret;
		note(c, "inode %llu reconnected as /lost+found/%s", (unsigned long long)ino, name);
		c->r->fixed++;
	}
	return 0;
}

/*
 * The holder list: records that do not verify or name no holder are dropped; a broken chain is
 * emptied (the blocks it leaves are leaked, freed by the bitmap repair).  Either way the next mount
 * quarantines nothing for them: the processes they named are unknown.
 */
static int fix_holders(struct ck *c)
{
	struct slotlist sl;
	struct tx tx;
	char msg[256];
	int ret;

	if (c->reset_holders) {
		if ((ret = slots_reset(&sl, c->s, DAXFS_SLOTS_HOLDER, c->s->sb.holder_head, msg, sizeof(msg)))) {
			fprintf(c->out, "%s\n", msg);
			slots_destroy(&sl);
			return ret;
		}
		slots_destroy(&sl);
		note(c, "holder list emptied");
		c->r->fixed++;
		return 0;
	}
	if (c->bad_holders.n == 0)
		return 0;
	if ((ret = slots_load_salvage(&sl, c->s, DAXFS_SLOTS_HOLDER, c->s->sb.holder_head, NULL, NULL, NULL, msg,
				      sizeof(msg)))) {
		fprintf(c->out, "%s\n", msg);
		slots_destroy(&sl);
		return ret;
	}
	tx_init(&tx, &c->s->journal);
	for (size_t i = 0; i < c->bad_holders.n && ret == 0; i++) {
		slots_remove(&sl, &tx, c->bad_holders.v[i][0]);
		note(c, "holder slot %llu dropped", (unsigned long long)c->bad_holders.v[i][0]);
		c->r->fixed++;
		if (tx_bytes(&tx) > tx_budget(&c->s->journal) / 2) {
			ret = sbi_commit(&c->fs->sbi, &tx);
			tx_init(&tx, &c->s->journal);
		}
	}
	if (ret)
		tx_free(&tx);
	else
		ret = sbi_commit(&c->fs->sbi, &tx);
	slots_destroy(&sl);
	return ret;
}

static int repair(struct ck *c)
{
	int ret;

	/* Blocks in use but marked free first: nothing may allocate them during the other repairs. */
	if ((ret = fix_bits(c, &c->bits_set, true)) || (ret = fix_holders(c)) || (ret = fix_entries(c)) ||
	    (ret = fix_bad(c)) || (ret = fix_unlinked(c)))
		return ret;
	/*
	 * Then from a fresh look, since each step changes what the next one sees: clearing an inode
	 * disconnects its children and leaks its blocks.
	 */
	c->quiet = true;
	run_passes(c);
	if ((ret = fix_bits(c, &c->bits_set, true)) || (ret = fix_disconnected(c)) || (ret = fix_inode_fields(c)))
		return ret;
	run_passes(c);
	if ((ret = fix_inode_fields(c)))
		return ret;
	run_passes(c);
	if (c->bits_clear.n && (ret = fix_bits(c, &c->bits_clear, false)))
		return ret;
	return 0;
}

/* ---- driver ---- */

static int alloc_maps(struct ck *c)
{
	uint64_t ninodes = c->s->sb.ninodes, words = DIV_ROUND_UP(c->s->sb.nblocks, 64);

	c->seen = calloc(words, 8);
	c->dup = calloc(words, 8);
	c->state = calloc(ninodes + 1, 1);
	c->mode = calloc(ninodes + 1, sizeof(*c->mode));
	c->refs = calloc(ninodes + 1, sizeof(*c->refs));
	c->subdirs = calloc(ninodes + 1, sizeof(*c->subdirs));
	c->parent = calloc(ninodes + 1, sizeof(*c->parent));
	c->orphan = calloc(ninodes + 1, 1);
	return c->seen && c->dup && c->state && c->mode && c->refs && c->subdirs && c->parent && c->orphan ? 0
														: -ENOMEM;
}

static void free_maps(struct ck *c)
{
	struct fixlist *lists[] = { &c->bad_entries, &c->counts, &c->parents, &c->unlinked, &c->disconnected,
				    &c->stale_orphans, &c->bits_set, &c->bits_clear, &c->bad, &c->bad_holders };

	for (size_t i = 0; i < ARRAY_SIZE(lists); i++)
		free(lists[i]->v);
	free(c->seen);
	free(c->dup);
	free(c->state);
	free(c->mode);
	free(c->refs);
	free(c->subdirs);
	free(c->parent);
	free(c->orphan);
}

/*
 * Mount for checking.  Damage to the structures mount itself needs (superblock, journal, orphan
 * list) is reported and worked around: the superblock copy, an ignored journal, an empty list.
 */
static int open_fs(struct ck *c, const char *path)
{
	bool ro = c->o->mode == CHECK_READONLY;
	struct mount_config cfg = { .norecovery = true, .private_map = ro, .shared = ro, .readonly = ro,
				 .report = report_hook, .report_arg = c };
	char err[512];
	int ret;

	for (int attempt = 0; attempt < 4; attempt++) {
		ret = mount_open(&c->fs, path, &cfg, err, sizeof(err));
		if (ret == 0)
			break;
		if (ret == -EBUSY || ret == -ENOENT || ret == -EACCES || ret == -ENOMEM || ret == -EINVAL ||
		    ret == -EPROTONOSUPPORT) {
			/* EINVAL: not a daxfs at all (or an unusable file) unless a copy saves it. */
			if (ret == -EINVAL && !cfg.backup_sb && strstr(err, "magic")) {
				problem(c, !ro, "%s", err);
				cfg.backup_sb = true;
				continue;
			}
			fprintf(c->out, "%s\n", err);
			return ret;
		}
		if (!cfg.backup_sb && strstr(err, "superblock")) {
			problem(c, !ro, "%s; using the superblock copy", err);
			cfg.backup_sb = true;
		} else if (!cfg.noreplay && strstr(err, "journal")) {
			problem(c, !ro, "%s; ignoring the journal", err);
			cfg.noreplay = true;
			if (!ro)
				c->r->fixed++;
		} else if (!cfg.noorphans && strstr(err, "slot list")) {
			problem(c, false, "%s; ignoring the orphan list", err);
			cfg.noorphans = true;
		} else {
			fprintf(c->out, "%s\n", err);
			return ret;
		}
	}
	if (ret) {
		fprintf(c->out, "%s\n", err);
		return ret;
	}
	c->s = &c->fs->sbi;
	if (!ro && cfg.noreplay)
		journal_clear(&c->s->journal);	/* the ignored transaction must not replay later */
	if (!ro && cfg.backup_sb)
		c->r->fixed++;	/* sbi_open wrote the copy over the primary */
	return 0;
}

int check_image(const char *path, const struct check_opts *o, struct check_result *r)
{
	struct ck c = { .o = o, .r = r, .out = o->out ? o->out : stdout };
	int ret;

	memset(r, 0, sizeof(*r));
	ret = open_fs(&c, path);
	if (ret) {
		r->exit_code = ret == -EBUSY ? FSCK_FAILED : (c.errors ? FSCK_UNFIXED : FSCK_FAILED);
		free_maps(&c);
		return r->exit_code;
	}
	uint64_t early = c.errors;	/* found while mounting (superblock, journal, lists) */
	uint64_t early_unfixed = c.unfixed;
	if (c.s->media.in_use)
		note(&c, "warning: the image is mounted; this is a snapshot and may look inconsistent mid-change");
	r->journal_records = c.s->replayed;
	r->was_dirty = c.s->was_dirty;
	if (r->journal_records)
		note(&c, "journal: replayed a committed transaction (%d records)%s", r->journal_records,
		     o->mode == CHECK_READONLY ? " in memory" : "");
	if (alloc_maps(&c)) {
		fprintf(c.out, "out of memory\n");
		r->exit_code = FSCK_FAILED;
		goto out;
	}
	run_passes(&c);
	if (o->mode == CHECK_READONLY) {
		r->errors = c.errors + early;
		r->exit_code = r->errors ? FSCK_UNFIXED : FSCK_OK;
		goto report;
	}
	if (c.errors > 0 || r->orphans) {
		if ((ret = repair(&c))) {
			fprintf(c.out, "repair failed: %s\n", strerror(-ret));
			r->exit_code = FSCK_UNFIXED;
			goto out;
		}
		/* The verdict comes from a clean look after the repairs; say what is left, if anything. */
		c.quiet = true;
		run_passes(&c);
		if (c.errors) {
			c.quiet = false;
			fprintf(c.out, "after repair:\n");
			run_passes(&c);
		}
	}
	/* What mounting found and could not mend (a corrupt orphan list) still counts. */
	r->errors = c.errors + early_unfixed;
	if (r->errors)
		r->exit_code = FSCK_UNFIXED;
	else
		r->exit_code = r->fixed ? FSCK_FIXED : FSCK_OK;
report:
	if (o->mode != CHECK_PREEN || o->verbose || r->exit_code >= FSCK_UNFIXED)
		fprintf(c.out,
			"%s: %llu inodes (%llu directories), %llu data blocks in use (%llu busy), %llu orphans; "
			"%llu problems%s, %llu repaired\n",
			path, (unsigned long long)r->inodes, (unsigned long long)r->dirs,
			(unsigned long long)r->blocks_used, (unsigned long long)r->busy, (unsigned long long)r->orphans,
			(unsigned long long)r->errors, o->mode == CHECK_READONLY ? "" : " left",
			(unsigned long long)r->fixed);
out:
	free_maps(&c);
	/* Leave the image marked dirty when problems remain, so the next mount or check looks again. */
	if (r->exit_code >= FSCK_UNFIXED)
		c.fs->sbi.readonly = true;	/* the unmount then leaves it dirty */
	mount_close(c.fs);
	return r->exit_code;
}
