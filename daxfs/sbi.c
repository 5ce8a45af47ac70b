/* SPDX-License-Identifier: MIT */
#include "sbi.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "csum.h"
#include "super.h"
#include "util.h"

/*
 * aborted is set by whichever thread's commit fails and read by every other committer (the FUSE
 * threads, the reclaim worker, the policy's holder list) without a common lock: atomic accesses, so
 * a commit that starts after a failed one has returned sees the abort.
 */
bool sbi_aborted(const struct sbi *s)
{
	return __atomic_load_n(&s->aborted, __ATOMIC_ACQUIRE);
}

void sbi_abort(struct sbi *s, const char *why)
{
	if (!__atomic_exchange_n(&s->aborted, true, __ATOMIC_ACQ_REL))
		fprintf(stderr, "daxfs: %s; the file system is now read-only\n", why);
}

int sbi_writable(const struct sbi *s)
{
	if (s->readonly)
		return -EROFS;
	if (sbi_aborted(s))
		return -EIO;
	return 0;
}

int sbi_commit(struct sbi *s, struct tx *tx)
{
	/*
	 * After a failed commit DRAM no longer matches the media, so no later transaction may reach it,
	 * however small: refuse it as tx_commit refuses one that fails (freed, its deferred work not run).
	 */
	if (sbi_aborted(s)) {
		tx_free(tx);
		return -EIO;
	}
	int ret = tx_commit(tx);

	if (ret) {
		char why[64];

		snprintf(why, sizeof(why), "transaction commit failed (%s)", strerror(-ret));
		sbi_abort(s, why);
		return -EIO;
	}
	return 0;
}

void sbi_corrupt(struct sbi *s, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	__atomic_add_fetch(&s->corruptions, 1, __ATOMIC_RELAXED);
	if (s->report)
		s->report(s->report_arg, msg);
	else
		fprintf(stderr, "daxfs: %s: %s; run fsck.daxfs\n", s->media.path, msg);
}

int sbi_find_backup(const struct media *m, struct daxfs_super *out)
{
	char msg[256];

	for (uint32_t bs = DAXFS_MIN_BLOCK_SIZE; bs <= DAXFS_MAX_BLOCK_SIZE; bs *= 2) {
		uint64_t nblocks = m->size / bs;

		if (nblocks < 2)
			break;
		memcpy(out, m->base + (nblocks - 1) * bs, sizeof(*out));
		if (out->block_size == bs && super_validate(out, m->size, msg, sizeof(msg)) == 0)
			return 0;
	}
	return -ENOENT;
}

static int load_bitmap(struct sbi *s, struct jbitmap *bm, uint64_t start_blk, uint64_t nbits)
{
	uint64_t words = DIV_ROUND_UP(nbits, 64);

	bm->off = sbi_block_off(s, start_blk);
	bm->nbits = nbits;
	bm->shadow = malloc(words * 8);
	if (!bm->shadow)
		return -ENOMEM;
	memcpy(bm->shadow, sbi_block(s, start_blk), words * 8);
	/* Bits past the end are not part of the map; keep them clear so word scans stay simple. */
	if (nbits % 64)
		bm->shadow[words - 1] &= (1ULL << (nbits % 64)) - 1;
	bm->nset = 0;
	for (uint64_t w = 0; w < words; w++)
		bm->nset += (uint64_t)__builtin_popcountll(bm->shadow[w]);
	return 0;
}

/* Feed the free runs of the data area to the allocator, a word at a time. */
static void build_free_index(struct sbi *s)
{
	const uint64_t *w = s->bbm.shadow;
	uint64_t end = s->sb.backup_sb, b = s->sb.data_start;

	while (b < end) {
		uint64_t word = w[b / 64] >> (b % 64);

		if (word == ~0ULL >> (b % 64)) {	/* the rest of the word is in use */
			b = ROUND_UP(b + 1, 64);
			continue;
		}
		if (word & 1) {
			b += (uint64_t)__builtin_ctzll(~word);
			continue;
		}
		uint64_t run = b;
		while (b < end) {
			uint64_t rest = w[b / 64] >> (b % 64);

			if (rest == 0) {
				b = ROUND_UP(b + 1, 64);
				continue;
			}
			b += (uint64_t)__builtin_ctzll(rest);
			break;
		}
		b = MIN(b, end);
		alloc_free(&s->alloc, run, b - run);
	}
}

static void release_blocks(void *ctx, uint64_t start, uint64_t len)
{
	alloc_free(&((struct sbi *)ctx)->alloc, start, len);
}

int sbi_open(struct sbi *s, const char *path, int flags, char *err, size_t errlen)
{
	int mflags = 0, ret;
	char msg[256];

	memset(s, 0, sizeof(*s));
	if (flags & SBI_RDONLY)
		mflags |= MEDIA_RDONLY;
	if (flags & SBI_PRIVATE)
		mflags |= MEDIA_PRIVATE;
	if (!(flags & SBI_SHARED))
		mflags |= MEDIA_EXCL;
	ret = media_open(&s->media, path, mflags, err, errlen);
	if (ret)
		return ret;
	if (s->media.size < sizeof(struct daxfs_super)) {
		snprintf(err, errlen, "%s: %llu bytes is too small to hold a daxfs", path,
			 (unsigned long long)s->media.size);
		ret = -EINVAL;
		goto fail;
	}
	if (flags & SBI_BACKUP_SB) {
		struct daxfs_super backup;

		if (s->media.readonly || sbi_find_backup(&s->media, &backup)) {
			snprintf(err, errlen, "%s: no usable superblock copy", path);
			ret = -EUCLEAN;
			goto fail;
		}
		media_copy(&s->media, s->media.base, &backup, sizeof(backup));
		media_drain(&s->media);
	}
	memcpy(&s->sb, s->media.base, sizeof(s->sb));
	ret = super_validate(&s->sb, s->media.size, msg, sizeof(msg));
	if (ret == -EUCLEAN && !(flags & (SBI_NOREPLAY | SBI_RDONLY))) {
		/*
		 * A superblock torn by a crash while a transaction rewrote it is repaired by replaying
		 * that transaction, and the journal can be found without it: the geometry never changes,
		 * and the copy in the last block has it.  So take the geometry from the copy, replay, and
		 * judge the primary afterwards.
		 */
		struct daxfs_super backup;

		if (sbi_find_backup(&s->media, &backup) == 0 && s->sb.magic == DAXFS_SB_MAGIC) {
			s->sb = backup;
			ret = 0;
		}
	}
	if (ret) {
		snprintf(err, errlen, "%s: %s", path, msg);
		goto fail;
	}
	s->bs = s->sb.block_size;
	s->bshift = (unsigned)__builtin_ctz(s->bs);
	s->seed = csum_fs_seed(&s->sb);
	s->data_blocks = s->sb.backup_sb - s->sb.data_start;
	s->was_dirty = s->sb.state != DAXFS_STATE_CLEAN;

	ret = journal_init(&s->journal, &s->media, sbi_block_off(s, s->sb.journal_start),
			   s->sb.journal_blocks << s->bshift);
	if (ret) {
		snprintf(err, errlen, "%s: bad journal geometry", path);
		goto fail;
	}
	s->journal.release = release_blocks;
	s->journal.release_ctx = s;
	if (flags & (SBI_NOREPLAY | SBI_RDONLY)) {
		ret = journal_check(&s->journal, msg, sizeof(msg));
		if (flags & SBI_NOREPLAY)
			ret = 0;	/* the caller knows the journal is unusable and ignores it */
		if (ret > 0 && (flags & SBI_RDONLY)) {
			snprintf(err, errlen, "%s: the journal holds a transaction to replay; mount read-write once",
				 path);
			ret = -EROFS;
			goto fail_journal;
		}
	} else {
		ret = journal_replay(&s->journal, msg, sizeof(msg));
		s->replayed = ret > 0 ? ret : 0;
	}
	if (ret < 0) {
		snprintf(err, errlen, "%s: journal: %s", path, msg);
		goto fail_journal;
	}
	/* Replay may have rewritten the superblock. */
	memcpy(&s->sb, s->media.base, sizeof(s->sb));
	ret = super_validate(&s->sb, s->media.size, msg, sizeof(msg));
	if (ret) {
		snprintf(err, errlen, "%s: after journal replay: %s", path, msg);
		goto fail_journal;
	}

	ret = load_bitmap(s, &s->ibm, s->sb.ibitmap_start, s->sb.ninodes);
	if (!ret)
		ret = load_bitmap(s, &s->bbm, s->sb.bbitmap_start, s->sb.nblocks);
	if (ret) {
		snprintf(err, errlen, "%s: out of memory loading the bitmaps", path);
		goto fail_bitmaps;
	}
	/* Metadata must be marked in use; anything else means the bitmap cannot be trusted. */
	if (!(flags & SBI_CHECKER) &&
	    (!journal_bitmap_all_set(&s->bbm, 0, s->sb.data_start) || !journal_bitmap_test(&s->bbm, s->sb.backup_sb) ||
	     !journal_bitmap_test(&s->bbm, s->sb.orphan_head) || !journal_bitmap_test(&s->bbm, s->sb.busy_head) ||
	     ((s->sb.feature_compat & DAXFS_FEATURE_COMPAT_HOLDERS) && !journal_bitmap_test(&s->bbm, s->sb.holder_head)) ||
	     !journal_bitmap_test(&s->ibm, DAXFS_ROOT_INO - 1))) {
		snprintf(err, errlen, "%s: the bitmaps do not cover the metadata: image corrupt", path);
		ret = -EUCLEAN;
		goto fail_bitmaps;
	}
	alloc_init(&s->alloc, MIN(s->data_blocks / 1000 + 16, 4096), DAXFS_HUGE_ALIGN >> s->bshift);
	build_free_index(s);
	return 0;

fail_bitmaps:
	free(s->ibm.shadow);
	free(s->bbm.shadow);
fail_journal:
	journal_destroy(&s->journal);
fail:
	media_close(&s->media);
	return ret;
}

void sbi_close(struct sbi *s)
{
	alloc_destroy(&s->alloc);
	free(s->ibm.shadow);
	free(s->bbm.shadow);
	journal_destroy(&s->journal);
	media_close(&s->media);
}

/* The superblock changes outside transactions only here, with no other writer running. */
void sbi_set_state(struct sbi *s, uint32_t state)
{
	struct timespec now;
	struct tx tx;

	clock_gettime(CLOCK_REALTIME, &now);
	s->sb.state = state;
	s->sb.write_time = now.tv_sec;
	if (state == DAXFS_STATE_DIRTY) {
		s->sb.mount_time = now.tv_sec;
		s->sb.mount_count++;
	}
	super_seal(&s->sb);
	tx_init(&tx, &s->journal);
	tx_log(&tx, 0, &s->sb, sizeof(s->sb));
	tx_commit(&tx);
	if (state == DAXFS_STATE_CLEAN)
		journal_clear(&s->journal);
}

int sbi_alloc(struct sbi *s, const struct alloc_req *req, uint64_t *start, uint64_t *len)
{
	return alloc_get(&s->alloc, req, start, len);
}

void sbi_use(struct sbi *s, struct tx *tx, uint64_t start, uint64_t len)
{
	tx_bits(tx, &s->bbm, start, len, true);
}

void sbi_free(struct sbi *s, struct tx *tx, uint64_t start, uint64_t len)
{
	tx_bits(tx, &s->bbm, start, len, false);
	tx_defer_free(tx, start, len);
}

void sbi_unalloc(struct sbi *s, uint64_t start, uint64_t len)
{
	alloc_free(&s->alloc, start, len);
}
