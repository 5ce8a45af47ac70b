/* SPDX-License-Identifier: MIT */
/*
 * Atomic metadata updates: a redo journal on the media.
 *
 * A transaction collects the new bytes of every metadata range it changes (tx_log) and bit changes
 * to the allocation bitmaps (tx_bits).  tx_commit writes them to the journal under one checksum,
 * drains, applies them in place and drains again: after a crash the image holds either all of a
 * transaction or none of it.  Commits are serialised; each one is durable when tx_commit returns.
 *
 * Bitmaps are special because concurrent transactions share their words: a transaction records bit
 * operations, and the bytes are computed at commit, under the journal lock, from a DRAM copy of the
 * committed bitmap.  Two transactions that touch neighbouring bits can then never log stale words.
 */
#ifndef DAXFS_JOURNAL_H
#define DAXFS_JOURNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "media.h"

/* A bitmap region of the image whose committed contents are mirrored in DRAM. */
struct jbitmap {
	uint64_t off;		/* byte offset of the bitmap in the image */
	uint64_t nbits;
	uint64_t *shadow;	/* committed bits; changed only by commits, read under the journal lock */
	uint64_t nset;		/* bits set in shadow */
};

/* Work a transaction hands over to run once it has committed: a range [start, start + len). */
typedef void (*tx_deferred_fn)(void *ctx, uint64_t start, uint64_t len);

struct journal {
	struct media *m;
	tx_deferred_fn release;		/* where tx_defer_free sends freed blocks */
	void *release_ctx;
	uint64_t off;		/* journal region in the image */
	uint64_t size;
	uint64_t seq;		/* sequence number of the last committed transaction */
	pthread_mutex_t lock;
	/* statistics, under lock */
	uint64_t commits;
	uint64_t bytes;
};

struct tx_bitop {
	struct jbitmap *bm;
	uint64_t first;
	uint64_t n;
	bool set;
};

#define TX_INLINE 2048

struct tx {
	struct journal *j;
	char *buf;		/* records, in the journal's format */
	size_t len;
	size_t cap;
	uint32_t nrec;
	struct tx_bitop *ops;
	size_t nops;
	size_t capops;
	struct tx_deferred {
		tx_deferred_fn fn;
		void *ctx;
		uint64_t start;
		uint64_t len;
	} *deferred;		/* run in order after the commit */
	size_t ndeferred;
	size_t capdeferred;
	bool data;		/* logged bytes of file data: empty the journal once applied */
	int err;		/* first allocation failure, reported by tx_commit */
	_Alignas(8) char inline_buf[TX_INLINE];	/* records are read through struct pointers */
};

int journal_init(struct journal *j, struct media *m, uint64_t off, uint64_t size);
void journal_destroy(struct journal *j);

/*
 * Replay a committed transaction left in the journal, then empty it.  Returns the number of records
 * applied (0 when the journal was empty) or -errno with a message in err when it is corrupt.
 */
int journal_replay(struct journal *j, char *err, size_t errlen);
/* Write an empty journal header (mkfs, clean unmount). */
void journal_clear(struct journal *j);
/* Validate without changing anything; returns the number of records pending or -errno. */
int journal_check(struct journal *j, char *err, size_t errlen);

void tx_init(struct tx *tx, struct journal *j);
void tx_free(struct tx *tx);
static inline bool tx_empty(const struct tx *tx)
{
	return tx->nrec == 0 && tx->nops == 0;
}

/* Record that bytes [off, off + len) of the image become src.  A later record of the same range wins. */
void tx_log(struct tx *tx, uint64_t off, const void *src, size_t len);
/*
 * Like tx_log, for bytes of a file's data block (the zeroed tail of a truncated block).  Replaying
 * the last transaction is only harmless while it touches metadata alone, which no one writes
 * outside transactions; data may be rewritten in place after the commit, so such a transaction
 * empties the journal once it is applied.
 */
void tx_log_data(struct tx *tx, uint64_t off, const void *src, size_t len);
/* Set or clear bits [first, first + n) of bm at commit. */
void tx_bits(struct tx *tx, struct jbitmap *bm, uint64_t first, uint64_t n, bool set);
/* Is bit set (all of [first, first + n) set) in the committed bitmap? */
bool journal_bitmap_test(const struct jbitmap *bm, uint64_t bit);
bool journal_bitmap_all_set(const struct jbitmap *bm, uint64_t first, uint64_t n);
/*
 * Hand [start, start + len) to the journal's release callback once this transaction has committed:
 * blocks freed by a transaction must not be reused before the free is durable.
 */
void tx_defer_free(struct tx *tx, uint64_t start, uint64_t len);
/* Run fn(ctx, start, len) after the commit (and not at all if the transaction is abandoned). */
void tx_defer(struct tx *tx, tx_deferred_fn fn, void *ctx, uint64_t start, uint64_t len);
/* Worst-case journal bytes this transaction needs; callers that loop keep it below tx_budget(). */
size_t tx_bytes(const struct tx *tx);
size_t tx_budget(const struct journal *j);

/*
 * Commit and reset the transaction for reuse.  Returns 0, -ENOMEM when building it failed, or
 * -E2BIG when it does not fit in the journal; nothing reaches the media on failure.
 */
int tx_commit(struct tx *tx);

#endif
