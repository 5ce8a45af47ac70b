/* SPDX-License-Identifier: MIT */
#include "journal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csum.h"
#include "daxfs/format.h"
#include "util.h"

#define HDR sizeof(struct daxfs_journal_header)

int journal_init(struct journal *j, struct media *m, uint64_t off, uint64_t size)
{
	memset(j, 0, sizeof(*j));
	j->m = m;
	j->off = off;
	j->size = size;
	if (size < HDR + 4096 || off + size > m->size)
		return -EINVAL;
	pthread_mutex_init(&j->lock, NULL);
	const struct daxfs_journal_header *jh = media_ptr(m, off);
	if (jh->magic == DAXFS_JOURNAL_MAGIC)
		j->seq = jh->seq;
	return 0;
}

void journal_destroy(struct journal *j)
{
	pthread_mutex_destroy(&j->lock);
}

static void write_header(struct journal *j, uint32_t nrec, uint32_t len, const void *records)
{
	struct daxfs_journal_header jh = {
		.magic = DAXFS_JOURNAL_MAGIC,
		.seq = j->seq,
		.nrec = nrec,
		.len = len,
	};
	void *dst = media_ptr(j->m, j->off);

	jh.crc = csum_journal(&jh, records);
	media_copy(j->m, dst, &jh, sizeof(jh));
}

void journal_clear(struct journal *j)
{
	write_header(j, 0, 0, NULL);
	media_drain(j->m);
}

/* Walk the records of a header already known to be intact; apply them when `apply` is set. */
static int walk_records(struct journal *j, const struct daxfs_journal_header *jh, bool apply, char *err,
			size_t errlen)
{
	const char *p = (const char *)jh + HDR;
	const char *end = p + jh->len;
	uint32_t n = 0;

	while (p < end) {
		const struct daxfs_journal_record *r = (const void *)p;

		if ((size_t)(end - p) < sizeof(*r) || DAXFS_JREC_LEN(r->len) > (size_t)(end - p)) {
			snprintf(err, errlen, "journal record %u overruns the transaction", n);
			return -EUCLEAN;
		}
		if (r->off > j->m->size || r->len > j->m->size - r->off ||
		    ranges_overlap(r->off, r->len, j->off, j->size)) {
			snprintf(err, errlen, "journal record %u targets bytes %llu+%u outside the metadata", n,
				 (unsigned long long)r->off, r->len);
			return -EUCLEAN;
		}
		if (apply)
			media_copy(j->m, media_ptr(j->m, r->off), r + 1, r->len);
		p += DAXFS_JREC_LEN(r->len);
		n++;
	}
	if (n != jh->nrec) {
		snprintf(err, errlen, "journal holds %u records, header says %u", n, jh->nrec);
		return -EUCLEAN;
	}
	return (int)n;
}

/* Returns 1 when the header describes a committed transaction, 0 when the journal is empty. */
static int committed(struct journal *j, const struct daxfs_journal_header *jh)
{
	if (jh->magic != DAXFS_JOURNAL_MAGIC || jh->len == 0)
		return 0;
	if (jh->len > j->size - HDR)
		return 0;
	/* A torn commit fails its checksum: it never reached the apply step, so it is simply absent. */
	return csum_journal(jh, (const char *)jh + HDR) == jh->crc;
}

int journal_check(struct journal *j, char *err, size_t errlen)
{
	const struct daxfs_journal_header *jh = media_ptr(j->m, j->off);

	if (!committed(j, jh))
		return 0;
	return walk_records(j, jh, false, err, errlen);
}

int journal_replay(struct journal *j, char *err, size_t errlen)
{
	const struct daxfs_journal_header *jh = media_ptr(j->m, j->off);
	int n;

	if (!committed(j, jh))
		return 0;
	n = walk_records(j, jh, false, err, errlen);
	if (n < 0)
		return n;
	walk_records(j, jh, true, err, errlen);
	media_drain(j->m);
	j->seq = jh->seq;
	journal_clear(j);
	return n;
}

void tx_init(struct tx *tx, struct journal *j)
{
	tx->j = j;
	tx->buf = tx->inline_buf;
	tx->cap = sizeof(tx->inline_buf);
	tx->len = 0;
	tx->nrec = 0;
	tx->ops = NULL;
	tx->nops = tx->capops = 0;
	tx->deferred = NULL;
	tx->ndeferred = tx->capdeferred = 0;
	tx->data = false;
	tx->err = 0;
}

void tx_free(struct tx *tx)
{
	if (tx->buf != tx->inline_buf)
		free(tx->buf);
	free(tx->ops);
	free(tx->deferred);
	tx_init(tx, tx->j);
}

static bool reserve(struct tx *tx, size_t more)
{
	if (tx->len + more <= tx->cap)
		return true;
	size_t cap = MAX(tx->cap * 2, tx->len + more);
	char *nb = tx->buf == tx->inline_buf ? malloc(cap) : realloc(tx->buf, cap);

	if (!nb) {
		tx->err = -ENOMEM;
		return false;
	}
	if (tx->buf == tx->inline_buf)
		memcpy(nb, tx->inline_buf, tx->len);
	tx->buf = nb;
	tx->cap = cap;
	return true;
}

/*
 * The same inode or block is often logged several times by one operation: reuse its record, but
 * only if no later record overlaps it.  Records apply in order, so rewriting an earlier one in
 * place would let a later, overlapping one (a wider bitmap range, say) put back older bytes.
 */
static struct daxfs_journal_record *find_record(struct tx *tx, uint64_t off, size_t len)
{
	struct daxfs_journal_record *match = NULL;
	char *p = tx->buf;
	char *end = tx->buf + tx->len;

	if (tx->nrec > 64)
		return NULL;
	while (p < end) {
		struct daxfs_journal_record *r = (void *)p;

		if (r->off == off && r->len == len)
			match = r;
		else if (match && ranges_overlap(r->off, r->len, off, len))
			match = NULL;
		p += DAXFS_JREC_LEN(r->len);
	}
	return match;
}

void tx_log(struct tx *tx, uint64_t off, const void *src, size_t len)
{
	struct daxfs_journal_record *r;

	if (tx->err || len == 0)
		return;
	r = find_record(tx, off, len);
	if (r) {
		memcpy(r + 1, src, len);
		return;
	}
	if (!reserve(tx, DAXFS_JREC_LEN(len)))
		return;
	r = (void *)(tx->buf + tx->len);
	r->off = off;
	r->len = (uint32_t)len;
	r->reserved = 0;
	memcpy(r + 1, src, len);
	memset((char *)(r + 1) + len, 0, DAXFS_JREC_LEN(len) - sizeof(*r) - len);
	tx->len += DAXFS_JREC_LEN(len);
	tx->nrec++;
}

void tx_log_data(struct tx *tx, uint64_t off, const void *src, size_t len)
{
	tx_log(tx, off, src, len);
	tx->data = true;
}

bool journal_bitmap_test(const struct jbitmap *bm, uint64_t bit)
{
	return bit < bm->nbits && (bm->shadow[bit / 64] >> (bit % 64)) & 1;
}

bool journal_bitmap_all_set(const struct jbitmap *bm, uint64_t first, uint64_t n)
{
	for (uint64_t b = first; b < first + n; b++)
		if (!journal_bitmap_test(bm, b))
			return false;
	return true;
}

void tx_bits(struct tx *tx, struct jbitmap *bm, uint64_t first, uint64_t n, bool set)
{
	if (tx->err || n == 0)
		return;
	if (tx->nops == tx->capops) {
		size_t cap = tx->capops ? tx->capops * 2 : 8;
		struct tx_bitop *no = realloc(tx->ops, cap * sizeof(*no));

		if (!no) {
			tx->err = -ENOMEM;
			return;
		}
		tx->ops = no;
		tx->capops = cap;
	}
	/* Adjacent operations of the same kind (extents freed in order) merge into one. */
	if (tx->nops > 0) {
		struct tx_bitop *last = &tx->ops[tx->nops - 1];

		if (last->bm == bm && last->set == set && last->first + last->n == first) {
			last->n += n;
			return;
		}
	}
	tx->ops[tx->nops++] = (struct tx_bitop){ .bm = bm, .first = first, .n = n, .set = set };
}

void tx_defer(struct tx *tx, tx_deferred_fn fn, void *ctx, uint64_t start, uint64_t len)
{
	if (tx->err || len == 0)
		return;
	/* Consecutive ranges for the same callback (extents freed in order) merge into one call. */
	if (tx->ndeferred > 0) {
		struct tx_deferred *last = &tx->deferred[tx->ndeferred - 1];

		if (last->fn == fn && last->ctx == ctx && last->start + last->len == start) {
			last->len += len;
			return;
		}
	}
	if (tx->ndeferred == tx->capdeferred) {
		size_t cap = tx->capdeferred ? tx->capdeferred * 2 : 8;
		void *nd = realloc(tx->deferred, cap * sizeof(*tx->deferred));

		if (!nd) {
			tx->err = -ENOMEM;
			return;
		}
		tx->deferred = nd;
		tx->capdeferred = cap;
	}
	tx->deferred[tx->ndeferred++] = (struct tx_deferred){ .fn = fn, .ctx = ctx, .start = start, .len = len };
}

void tx_defer_free(struct tx *tx, uint64_t start, uint64_t len)
{
	tx_defer(tx, tx->j->release, tx->j->release_ctx, start, len);
}

static size_t bitop_bytes(const struct tx_bitop *op)
{
	uint64_t words = op->n / 64 + 2;

	return DAXFS_JREC_LEN(words * 8);
}

size_t tx_bytes(const struct tx *tx)
{
	size_t bytes = tx->len;

	for (size_t i = 0; i < tx->nops; i++)
		bytes += bitop_bytes(&tx->ops[i]);
	return bytes;
}

size_t tx_budget(const struct journal *j)
{
	return j->size - HDR;
}

/* Apply one bit operation to the committed shadow and log the words it changed. */
static void resolve_bitop(struct tx *tx, const struct tx_bitop *op)
{
	struct jbitmap *bm = op->bm;
	uint64_t w0 = op->first / 64, w1 = (op->first + op->n - 1) / 64;
	uint64_t changed = 0;

	for (uint64_t w = w0; w <= w1; w++) {
		uint64_t lo = w == w0 ? op->first % 64 : 0;
		uint64_t hi = w == w1 ? (op->first + op->n - 1) % 64 : 63;
		uint64_t mask = (hi == 63 ? ~0ULL : ((1ULL << (hi + 1)) - 1)) & ~((1ULL << lo) - 1);
		uint64_t old = bm->shadow[w];

		bm->shadow[w] = op->set ? old | mask : old & ~mask;
		changed += (uint64_t)__builtin_popcountll(op->set ? mask & ~old : mask & old);
	}
	if (changed != op->n)
		fprintf(stderr, "daxfs: bitmap at %llu: %s %llu bits from %llu found %llu already %s\n",
			(unsigned long long)bm->off, op->set ? "setting" : "clearing",
			(unsigned long long)op->n, (unsigned long long)op->first,
			(unsigned long long)(op->n - changed), op->set ? "set" : "clear");
	bm->nset = op->set ? bm->nset + changed : bm->nset - changed;
	tx_log(tx, bm->off + w0 * 8, &bm->shadow[w0], (w1 - w0 + 1) * 8);
}

int tx_commit(struct tx *tx)
{
	struct journal *j = tx->j;
	struct media *m = j->m;
	int ret = 0;

	if (tx->err) {
		ret = tx->err;
		goto out;
	}
	if (tx_empty(tx) && tx->ndeferred == 0)
		goto out;
	if (tx_bytes(tx) > tx_budget(j)) {
		ret = -E2BIG;
		goto out;
	}
	/* Room for the resolved bit operations, so nothing can fail under the lock. */
	if (!reserve(tx, tx_bytes(tx) - tx->len)) {
		ret = -ENOMEM;
		goto out;
	}

	pthread_mutex_lock(&j->lock);
	for (size_t i = 0; i < tx->nops; i++)
		resolve_bitop(tx, &tx->ops[i]);

	/* 1: the records and their header reach the journal together, under one checksum. */
	char *log = media_ptr(m, j->off);
	media_copy(m, log + HDR, tx->buf, tx->len);
	j->seq++;
	write_header(j, tx->nrec, (uint32_t)tx->len, tx->buf);
	media_drain(m);

	/* 2: apply in place.  The next commit overwrites the journal, so this must be durable first. */
	for (char *p = tx->buf; p < tx->buf + tx->len;) {
		struct daxfs_journal_record *r = (void *)p;

		media_copy(m, media_ptr(m, r->off), r + 1, r->len);
		p += DAXFS_JREC_LEN(r->len);
	}
	media_drain(m);
	if (tx->data) {
		write_header(j, 0, 0, NULL);
		media_drain(m);
	}
	j->commits++;
	j->bytes += tx->len;
	pthread_mutex_unlock(&j->lock);
	for (size_t i = 0; i < tx->ndeferred; i++)
		tx->deferred[i].fn(tx->deferred[i].ctx, tx->deferred[i].start, tx->deferred[i].len);
out:
	tx_free(tx);
	return ret;
}
