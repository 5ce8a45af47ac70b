/* SPDX-License-Identifier: MIT */
/*
 * The mounted image below the inode layer: the mapping, the superblock, the journal, the committed
 * bitmaps and the DRAM free-space index.  Opening it validates the superblock, replays the journal
 * and builds the indexes; mount, fsck and the tests all start here.
 */
#ifndef DAXFS_SBI_H
#define DAXFS_SBI_H

#include <stdbool.h>
#include <stdint.h>

#include "alloc.h"
#include "daxfs/format.h"
#include "journal.h"
#include "media.h"

struct sbi {
	struct media media;
	struct daxfs_super sb;		/* DRAM copy; changes only at mount and unmount */
	uint32_t bs;
	unsigned bshift;
	uint32_t seed;			/* checksum seed, from the uuid */
	struct journal journal;
	struct jbitmap bbm;		/* committed block bitmap */
	struct jbitmap ibm;		/* committed inode bitmap */
	struct allocator alloc;		/* free data blocks */
	uint64_t data_blocks;		/* blocks of the data area */
	int replayed;			/* journal records replayed at open */
	bool was_dirty;			/* the image was not unmounted cleanly */
	bool readonly;			/* no changes: a read-only mount, or a check that found damage */
	bool aborted;			/* a commit failed: refuse further changes (atomic: sbi_aborted, sbi_abort) */
	uint64_t corruptions;		/* reports of corrupt metadata */
	/* Where corruption reports go (the checker collects them); NULL prints them to stderr. */
	void (*report)(void *arg, const char *msg);
	void *report_arg;
};

#define SBI_RDONLY	0x1	/* map read-only; fail if the journal needs replay */
#define SBI_NOREPLAY	0x2	/* leave the journal alone (fsck -n) */
#define SBI_SHARED	0x4	/* do not take the exclusive lock (fsck -n on a mounted image) */
#define SBI_PRIVATE	0x8	/* copy-on-write mapping: replay and repairs stay in this process */
#define SBI_BACKUP_SB	0x10	/* take the superblock from its copy in the last block */
#define SBI_CHECKER	0x20	/* the checker: tolerate bitmaps it will verify and repair itself */

int sbi_open(struct sbi *s, const char *path, int flags, char *err, size_t errlen);
/* Find a valid superblock copy at the end of the media (any block size); 0, or -ENOENT if none. */
int sbi_find_backup(const struct media *m, struct daxfs_super *out);
void sbi_close(struct sbi *s);

/* Mark the image mounted (dirty) or cleanly unmounted, durably. */
void sbi_set_state(struct sbi *s, uint32_t state);

static inline void *sbi_block(const struct sbi *s, uint64_t blk)
{
	return media_ptr(&s->media, blk << s->bshift);
}

static inline uint64_t sbi_block_off(const struct sbi *s, uint64_t blk)
{
	return blk << s->bshift;
}

static inline bool sbi_data_block(const struct sbi *s, uint64_t blk, uint64_t len)
{
	return blk >= s->sb.data_start && len <= s->sb.backup_sb && blk <= s->sb.backup_sb - len;
}

/*
 * Allocate blocks (alloc_get semantics).  They are the caller's until it either marks them in use in
 * a transaction (sbi_use) or gives them back (sbi_unalloc).
 */
int sbi_alloc(struct sbi *s, const struct alloc_req *req, uint64_t *start, uint64_t *len);
void sbi_use(struct sbi *s, struct tx *tx, uint64_t start, uint64_t len);
/* Mark blocks free in tx; they return to the allocator when tx commits. */
void sbi_free(struct sbi *s, struct tx *tx, uint64_t start, uint64_t len);
/* Give back allocated blocks that were not used. */
void sbi_unalloc(struct sbi *s, uint64_t start, uint64_t len);

/* 0 when changes are allowed; -EROFS on a read-only mount, -EIO once a commit has failed.  No lock. */
int sbi_writable(const struct sbi *s);
/* Whether the image is aborted (a commit failed, or sbi_abort).  No lock: an atomic read. */
bool sbi_aborted(const struct sbi *s);
/*
 * Abort the image as a failed commit does, when DRAM may have diverged from what later commits
 * would write (why: for the one message, printed by whichever thread aborts first).  No lock.
 */
void sbi_abort(struct sbi *s, const char *why);
/*
 * Commit tx (and reset it, as tx_commit does).  Returns 0, or -EIO when the commit failed (out of
 * memory, too big for the journal): the DRAM state then differs from the media, so the image is
 * aborted and stops changing (like errors=remount-ro): every later commit returns -EIO at once,
 * with nothing of it reaching the media and its deferred work not run.  No lock needed beyond
 * what the transaction's own changes require.
 */
int sbi_commit(struct sbi *s, struct tx *tx);
/* Report corrupt metadata found while reading it (the operation then fails with EIO). */
void sbi_corrupt(struct sbi *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
