/* SPDX-License-Identifier: MIT */
/*
 * The redo journal on a mapped scratch file: commits apply their bytes and bit operations, budgets
 * are enforced, deferred frees are released after the commit, replay applies a committed but
 * unapplied transaction and nothing else, corrupt journals are refused, and a process killed at
 * any durability point leaves each transaction whole or absent.
 */
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>

#include "csum.h"
#include "daxfs/format.h"
#include "journal.h"
#include "unit_common.h"

/* Layout of the scratch image: no file system, just a journal region and places to write. */
#define IMG_SIZE (1 * MiB)
#define JOFF 4096u
#define JSIZE (64 * KiB)
#define DATA (128 * KiB)	/* ordinary bytes the tests log */
#define BMAP (512 * KiB)	/* a bitmap for tx_bits */
#define HDR sizeof(struct daxfs_journal_header)

struct fixture {
	struct image a, b;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	image_name(&f->a, "journal-a");
	image_name(&f->b, "journal-b");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	image_remove(&f->a);
	image_remove(&f->b);
	free(f);
	return 0;
}

/* A fresh zeroed image, mapped, with a journal over [JOFF, JOFF + JSIZE). */
static void open_fresh(const struct image *img, struct media *m, struct journal *j)
{
	char err[256] = "";

	image_create(img, IMG_SIZE);
	if (media_open(m, img->path, 0, err, sizeof(err)))
		fail_msg("media_open: %s", err);
	assert_int_equal(journal_init(j, m, JOFF, JSIZE), 0);
}

static void close_all(struct media *m, struct journal *j)
{
	journal_destroy(j);
	media_close(m);
}

static const struct daxfs_journal_header *jhdr(const struct media *m)
{
	return media_ptr(m, JOFF);
}

static void pattern(void *p, size_t n, unsigned seed)
{
	unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		b[i] = (unsigned char)(seed * 31 + i * 7 + (i >> 8));
}

static void test_init_rejects(void **state)
{
	struct fixture *f = *state;
	struct media m;
	struct journal j;

	open_fresh(&f->a, &m, &j);
	journal_destroy(&j);
	struct journal k;
	assert_int_equal(journal_init(&k, &m, JOFF, HDR + 4095), -EINVAL);
	assert_int_equal(journal_init(&k, &m, IMG_SIZE - JSIZE + 8, JSIZE), -EINVAL);
	media_close(&m);
}

static void test_commit_applies(void **state)
{
	struct fixture *f = *state;
	struct media m;
	struct journal j;
	struct tx tx;
	char a[1] = { 'x' }, b[100], c[4096];

	open_fresh(&f->a, &m, &j);
	pattern(b, sizeof(b), 1);
	pattern(c, sizeof(c), 2);
	tx_init(&tx, &j);
	assert_true(tx_empty(&tx));
	tx_log(&tx, DATA + 3, a, sizeof(a));
	tx_log(&tx, DATA + 1001, b, sizeof(b));
	tx_log(&tx, DATA + 8190, c, sizeof(c));	/* crosses a page boundary */
	tx_log(&tx, DATA + 50000, c, 0);	/* empty: ignored */
	assert_false(tx_empty(&tx));
	assert_int_equal(tx.nrec, 3);
	size_t want_len = DAXFS_JREC_LEN(1) + DAXFS_JREC_LEN(100) + DAXFS_JREC_LEN(4096);
	assert_int_equal(tx_bytes(&tx), want_len);
	/* The source is copied at tx_log time: later changes to it do not leak into the commit. */
	b[0] ^= 0xff;
	assert_int_equal(tx_commit(&tx), 0);
	b[0] ^= 0xff;
	assert_true(tx_empty(&tx));	/* reset for reuse */

	assert_int_equal(m.base[DATA + 3], 'x');
	assert_int_equal(m.base[DATA + 2], 0);
	assert_int_equal(m.base[DATA + 4], 0);
	assert_memory_equal(m.base + DATA + 1001, b, sizeof(b));
	assert_memory_equal(m.base + DATA + 8190, c, sizeof(c));
	assert_int_equal(m.base[DATA + 8190 + 4096], 0);
	assert_int_equal(j.seq, 1);
	assert_int_equal(j.commits, 1);

	/* The committed transaction stays in the journal, checksummed, until the next one replaces it. */
	const struct daxfs_journal_header *jh = jhdr(&m);
	assert_int_equal(jh->magic, DAXFS_JOURNAL_MAGIC);
	assert_int_equal(jh->seq, 1);
	assert_int_equal(jh->nrec, 3);
	assert_int_equal(jh->len, want_len);
	assert_int_equal(jh->crc, csum_journal(jh, (const char *)jh + HDR));
	char err[256];
	assert_int_equal(journal_check(&j, err, sizeof(err)), 3);

	/* An empty transaction commits nothing. */
	tx_init(&tx, &j);
	assert_int_equal(tx_commit(&tx), 0);
	assert_int_equal(j.seq, 1);
	assert_int_equal(j.commits, 1);

	/* A second one bumps the sequence and replaces the journal contents. */
	tx_init(&tx, &j);
	tx_log(&tx, DATA, a, 1);
	assert_int_equal(tx_commit(&tx), 0);
	assert_int_equal(jh->seq, 2);
	assert_int_equal(jh->nrec, 1);
	assert_int_equal(j.seq, 2);

	/* A reopened journal continues from the sequence on the media. */
	close_all(&m, &j);
	char e2[256];
	assert_int_equal(media_open(&m, f->a.path, 0, e2, sizeof(e2)), 0);
	assert_int_equal(journal_init(&j, &m, JOFF, JSIZE), 0);
	assert_int_equal(j.seq, 2);
	close_all(&m, &j);
}

/*
 * Records are built in the transaction's buffer and read through struct daxfs_journal_record
 * pointers: the buffer, inline or not, must be aligned for it (misaligned access is undefined
 * behaviour in C, and UBSan reports it in tx_log and tx_commit).
 */
static void test_record_buffer_aligned(void **state)
{
	struct fixture *f = *state;
	struct media m;
	struct journal j;
	struct tx tx;

	open_fresh(&f->a, &m, &j);
	tx_init(&tx, &j);
	tx_log(&tx, DATA, "x", 1);
	if ((uintptr_t)tx.buf % _Alignof(struct daxfs_journal_record))
		fail_msg("records are built at %p, not %zu-byte aligned (inline buffer at offset %zu of struct tx)",
			 (void *)tx.buf, _Alignof(struct daxfs_journal_record), offsetof(struct tx, inline_buf));
	tx_free(&tx);
	close_all(&m, &j);
}

static void test_later_record_wins(void **state)
{
	struct fixture *f = *state;
	struct media m;
	struct journal j;
	struct tx tx;
	uint64_t v;

	open_fresh(&f->a, &m, &j);
	tx_init(&tx, &j);
	/* The same range twice: one record, the second value. */
	v = 1;
	tx_log(&tx, DATA, &v, 8);
	v = 2;
	tx_log(&tx, DATA, &v, 8);
	assert_int_equal(tx.nrec, 1);
	/* Overlapping ranges of different shapes: applied in order. */
	char big[16], small[4];
	memset(big, 'A', sizeof(big));
	memset(small, 'b', sizeof(small));
	tx_log(&tx, DATA + 100, big, 16);
	tx_log(&tx, DATA + 104, small, 4);
	tx_log(&tx, DATA + 204, small, 4);
	tx_log(&tx, DATA + 200, big, 16);
	assert_int_equal(tx_commit(&tx), 0);
	assert_int_equal(*(uint64_t *)(m.base + DATA), 2);
	assert_memory_equal(m.base + DATA + 100, "AAAAbbbbAAAAAAAA", 16);
	assert_memory_equal(m.base + DATA + 200, "AAAAAAAAAAAAAAAA", 16);

	/* Past 64 records the duplicate search stops, but the later record must still win. */
	tx_init(&tx, &j);
	for (uint64_t i = 0; i < 100; i++)
		tx_log(&tx, DATA + 4096 + i * 16, &i, 8);
	v = 7;
	tx_log(&tx, DATA + 4096, &v, 8);
	v = 8;
	tx_log(&tx, DATA + 4096, &v, 8);
	v = 9;
	tx_log(&tx, DATA + 4096 + 99 * 16, &v, 8);
	assert_int_equal(tx_commit(&tx), 0);
	assert_int_equal(*(uint64_t *)(m.base + DATA + 4096), 8);
	assert_int_equal(*(uint64_t *)(m.base + DATA + 4096 + 16), 1);
	assert_int_equal(*(uint64_t *)(m.base + DATA + 4096 + 98 * 16), 98);
	assert_int_equal(*(uint64_t *)(m.base + DATA + 4096 + 99 * 16), 9);
	close_all(&m, &j);
}

/* The bitmap bytes on the media, bit by bit. */
static bool media_bit(const struct media *m, uint64_t bit)
{
	return (((const uint8_t *)m->base)[BMAP + bit / 8] >> (bit % 8)) & 1;
}

static void test_bits(void **state)
{
	struct fixture *f = *state;
	struct media m;
	struct journal j;
	struct tx tx, tx2;
	struct jbitmap bm = { .off = BMAP, .nbits = 1000 };

	open_fresh(&f->a, &m, &j);
	bm.shadow = calloc(16, sizeof(uint64_t));
	assert_non_null(bm.shadow);

	tx_init(&tx, &j);
	tx_bits(&tx, &bm, 3, 70, true);
	tx_bits(&tx, &bm, 500, 0, true);	/* empty: ignored */
	/* Nothing changes before the commit: the shadow is the committed state. */
	assert_int_equal(bm.shadow[0], 0);
	assert_int_equal(bm.nset, 0);
	assert_int_equal(tx_commit(&tx), 0);
	assert_int_equal(bm.nset, 70);
	for (uint64_t b = 0; b < 200; b++) {
		bool want = b >= 3 && b < 73;

		assert_int_equal(media_bit(&m, b), want);
		assert_int_equal((bm.shadow[b / 64] >> (b % 64)) & 1, want);
	}

	/* Clear a piece; adjacent operations of one kind merge into one. */
	tx_init(&tx, &j);
	tx_bits(&tx, &bm, 10, 5, false);
	tx_bits(&tx, &bm, 15, 5, false);
	assert_int_equal(tx.nops, 1);
	tx_bits(&tx, &bm, 128, 64, true);	/* exactly one whole word */
	assert_int_equal(tx.nops, 2);
	assert_int_equal(tx_commit(&tx), 0);
	assert_int_equal(bm.nset, 60 + 64);
	for (uint64_t b = 0; b < 260; b++) {
		bool want = (b >= 3 && b < 10) || (b >= 20 && b < 73) || (b >= 128 && b < 192);

		if (media_bit(&m, b) != want)
			fail_msg("bit %llu is %d on the media", (unsigned long long)b, !want);
	}

	/*
	 * Two transactions built side by side touching bits of one word: each logs the word as it is at
	 * its own commit, so neither undoes the other.
	 */
	tx_init(&tx, &j);
	tx_init(&tx2, &j);
	tx_bits(&tx, &bm, 700, 1, true);
	tx_bits(&tx2, &bm, 701, 2, true);
	tx_bits(&tx2, &bm, 3, 1, false);
	assert_int_equal(tx_commit(&tx), 0);
	assert_int_equal(tx_commit(&tx2), 0);
	assert_true(media_bit(&m, 700) && media_bit(&m, 701) && media_bit(&m, 702));
	assert_false(media_bit(&m, 703));
	assert_false(media_bit(&m, 3));
	assert_true(media_bit(&m, 4));
	assert_int_equal(bm.nset, 60 + 64 + 3 - 1);

	/* The last bits of the map. */
	tx_init(&tx, &j);
	tx_bits(&tx, &bm, 990, 10, true);
	assert_int_equal(tx_commit(&tx), 0);
	assert_true(media_bit(&m, 999));
	assert_false(media_bit(&m, 989));
	free(bm.shadow);
	close_all(&m, &j);
}

struct released {
	uint64_t v[8][2];
	int n;
	const struct media *m;
	bool applied_first;	/* the transaction's bytes were on the media when release ran */
};

static void on_release(void *ctx, uint64_t start, uint64_t len)
{
	struct released *r = ctx;

	if (r->n == 0)
		r->applied_first = r->m->base[DATA] == 'Z';
	if (r->n < 8) {
		r->v[r->n][0] = start;
		r->v[r->n][1] = len;
	}
	r->n++;
}

static void test_defer_free(void **state)
{
	struct fixture *f = *state;
	struct media m;
	struct journal j;
	struct tx tx;
	struct released r = { .n = 0 };

	open_fresh(&f->a, &m, &j);
	r.m = &m;
	j.release = on_release;
	j.release_ctx = &r;

	tx_init(&tx, &j);
	tx_log(&tx, DATA, "Z", 1);
	tx_defer_free(&tx, 10, 5);
	tx_defer_free(&tx, 15, 3);	/* continues the previous range: one callback */
	tx_defer_free(&tx, 100, 1);
	tx_defer_free(&tx, 200, 0);	/* empty: ignored */
	assert_int_equal(r.n, 0);
	assert_int_equal(tx_commit(&tx), 0);
	assert_int_equal(r.n, 2);
	assert_true(r.applied_first);
	assert_int_equal(r.v[0][0], 10);
	assert_int_equal(r.v[0][1], 8);
	assert_int_equal(r.v[1][0], 100);
	assert_int_equal(r.v[1][1], 1);

	/* A transaction that only frees still commits and releases. */
	r.n = 0;
	tx_init(&tx, &j);
	tx_defer_free(&tx, 300, 2);
	assert_int_equal(tx_commit(&tx), 0);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.v[0][0], 300);

	/* A transaction that fails releases nothing. */
	r.n = 0;
	char *big = calloc(1, JSIZE);
	assert_non_null(big);
	tx_init(&tx, &j);
	tx_log(&tx, DATA, big, JSIZE);
	tx_defer_free(&tx, 400, 4);
	assert_int_equal(tx_commit(&tx), -E2BIG);
	assert_int_equal(r.n, 0);
	free(big);
	close_all(&m, &j);
}

/* Generic deferred work: run in order after the commit, merged per callback, dropped on abandon. */
struct calls {
	char log[16][32];
	int n;
};

static void note_a(void *ctx, uint64_t start, uint64_t len)
{
	struct calls *c = ctx;

	snprintf(c->log[c->n++ % 16], 32, "a %llu+%llu", (unsigned long long)start, (unsigned long long)len);
}

static void note_b(void *ctx, uint64_t start, uint64_t len)
{
	struct calls *c = ctx;

	snprintf(c->log[c->n++ % 16], 32, "b %llu+%llu", (unsigned long long)start, (unsigned long long)len);
}

static void test_defer(void **state)
{
	struct fixture *f = *state;
	struct media m;
	struct journal j;
	struct tx tx;
	struct calls c = { .n = 0 }, other = { .n = 0 };

	open_fresh(&f->a, &m, &j);
	tx_init(&tx, &j);
	tx_defer(&tx, note_a, &c, 1, 2);
	tx_defer(&tx, note_a, &c, 3, 4);	/* continues: merged */
	tx_defer(&tx, note_b, &c, 7, 1);	/* another callback: not merged */
	tx_defer(&tx, note_a, &c, 8, 1);	/* continues a's range, but not the last entry */
	tx_defer(&tx, note_a, &other, 9, 1);	/* another context */
	tx_defer(&tx, note_b, &c, 20, 0);	/* empty: dropped */
	assert_int_equal(c.n, 0);
	assert_int_equal(tx_commit(&tx), 0);
	assert_int_equal(c.n, 3);
	assert_string_equal(c.log[0], "a 1+6");
	assert_string_equal(c.log[1], "b 7+1");
	assert_string_equal(c.log[2], "a 8+1");
	assert_int_equal(other.n, 1);
	assert_string_equal(other.log[0], "a 9+1");

	/* Abandoned: nothing runs, now or at a later commit of the reused tx. */
	c.n = 0;
	tx_init(&tx, &j);
	tx_defer(&tx, note_a, &c, 1, 1);
	tx_free(&tx);
	tx_log(&tx, DATA, "k", 1);
	assert_int_equal(tx_commit(&tx), 0);
	assert_int_equal(c.n, 0);
	close_all(&m, &j);
}

static void test_budget(void **state)
{
	struct fixture *f = *state;
	struct media m;
	struct journal j;
	struct tx tx;
	char *buf = malloc(JSIZE);

	assert_non_null(buf);
	open_fresh(&f->a, &m, &j);
	assert_int_equal(tx_budget(&j), JSIZE - HDR);

	/* A record that fills the log area exactly fits. */
	size_t exact = JSIZE - HDR - sizeof(struct daxfs_journal_record);
	memset(buf, 0x5a, exact);
	tx_init(&tx, &j);
	tx_log(&tx, DATA, buf, exact);
	assert_int_equal(tx_bytes(&tx), tx_budget(&j));
	assert_int_equal(tx_commit(&tx), 0);
	assert_int_equal((uint8_t)m.base[DATA + exact - 1], 0x5a);

	/* One byte more does not, and leaves the media alone: data and journal. */
	char *before = malloc(IMG_SIZE);
	assert_non_null(before);
	memcpy(before, m.base, IMG_SIZE);
	memset(buf, 0xa5, exact + 1);
	tx_init(&tx, &j);
	tx_log(&tx, DATA, buf, exact + 1);
	assert_int_equal(tx_commit(&tx), -E2BIG);
	assert_memory_equal(m.base, before, IMG_SIZE);
	assert_int_equal(j.seq, 1);

	/* Bit operations count too: 64 Ki bits need 8 KiB of words; many of them overflow. */
	struct jbitmap bm = { .off = BMAP, .nbits = 1u << 20 };
	bm.shadow = calloc((1u << 20) / 64, 8);
	assert_non_null(bm.shadow);
	tx_init(&tx, &j);
	for (int i = 0; i < 10; i++)
		tx_bits(&tx, &bm, (uint64_t)i * 100000, 65536, true);
	assert_true(tx_bytes(&tx) > tx_budget(&j));
	assert_int_equal(tx_commit(&tx), -E2BIG);
	assert_int_equal(bm.nset, 0);	/* the shadow is untouched too */
	assert_memory_equal(m.base, before, IMG_SIZE);
	free(bm.shadow);
	free(before);
	free(buf);
	close_all(&m, &j);
}

/* Commit three records in image a and return them as an image of the journal (header + records). */
static size_t committed_journal(struct fixture *f, char *out, uint64_t *seq)
{
	struct media m;
	struct journal j;
	struct tx tx;
	char b[300];

	open_fresh(&f->a, &m, &j);
	pattern(b, sizeof(b), 3);
	for (int i = 0; i < 3; i++) {	/* a few commits, so the sequence is not 1 */
		tx_init(&tx, &j);
		tx_log(&tx, DATA + 64, "old", 3);
		assert_int_equal(tx_commit(&tx), 0);
	}
	tx_init(&tx, &j);
	tx_log(&tx, DATA + 5, "hello", 5);
	tx_log(&tx, DATA + 4000, b, sizeof(b));
	tx_log(&tx, 0, "SB", 2);	/* before the journal */
	assert_int_equal(tx_commit(&tx), 0);
	size_t n = HDR + jhdr(&m)->len;
	memcpy(out, jhdr(&m), n);
	*seq = j.seq;
	close_all(&m, &j);
	return n;
}

static void test_replay(void **state)
{
	struct fixture *f = *state;
	char jbuf[4096], err[256] = "", b[300];
	uint64_t seq;
	size_t n = committed_journal(f, jbuf, &seq);
	struct media m;
	struct journal j;

	assert_int_equal(seq, 4);
	pattern(b, sizeof(b), 3);
	/* Image b: the transaction is in its journal, but was never applied. */
	image_create(&f->b, IMG_SIZE);
	assert_int_equal(media_open(&m, f->b.path, 0, err, sizeof(err)), 0);
	memcpy(m.base + JOFF, jbuf, n);
	assert_int_equal(journal_init(&j, &m, JOFF, JSIZE), 0);
	assert_int_equal(j.seq, 4);
	assert_int_equal(journal_check(&j, err, sizeof(err)), 3);
	assert_int_equal(m.base[DATA + 5], 0);	/* check changes nothing */

	assert_int_equal(journal_replay(&j, err, sizeof(err)), 3);
	assert_memory_equal(m.base + DATA + 5, "hello", 5);
	assert_memory_equal(m.base + DATA + 4000, b, sizeof(b));
	assert_memory_equal(m.base, "SB", 2);
	assert_int_equal(m.base[DATA + 64], 0);	/* earlier transactions are not in the journal */
	/* The journal is empty afterwards, and says so with a valid header. */
	const struct daxfs_journal_header *jh = jhdr(&m);
	assert_int_equal(jh->len, 0);
	assert_int_equal(jh->nrec, 0);
	assert_int_equal(jh->magic, DAXFS_JOURNAL_MAGIC);
	assert_int_equal(jh->crc, csum_journal(jh, NULL));
	assert_int_equal(journal_check(&j, err, sizeof(err)), 0);
	assert_int_equal(journal_replay(&j, err, sizeof(err)), 0);
	/* The sequence continues. */
	assert_int_equal(j.seq, 4);
	struct tx tx;
	tx_init(&tx, &j);
	tx_log(&tx, DATA, "q", 1);
	assert_int_equal(tx_commit(&tx), 0);
	assert_int_equal(jh->seq, 5);

	/* journal_clear empties a journal holding a committed transaction without applying it. */
	memcpy(m.base + JOFF, jbuf, n);
	memset(m.base + DATA + 5, 0, 5);
	assert_int_equal(journal_check(&j, err, sizeof(err)), 3);
	journal_clear(&j);
	assert_int_equal(journal_check(&j, err, sizeof(err)), 0);
	assert_int_equal(journal_replay(&j, err, sizeof(err)), 0);
	assert_int_equal(m.base[DATA + 5], 0);
	close_all(&m, &j);
}

/* Torn or damaged commits read as an empty journal: nothing is applied. */
static void test_replay_ignores_torn(void **state)
{
	struct fixture *f = *state;
	char jbuf[4096], err[256] = "";
	uint64_t seq;
	size_t n = committed_journal(f, jbuf, &seq);
	struct media m;
	struct journal j;
	struct daxfs_journal_header *jh;

	image_create(&f->b, IMG_SIZE);
	assert_int_equal(media_open(&m, f->b.path, 0, err, sizeof(err)), 0);
	assert_int_equal(journal_init(&j, &m, JOFF, JSIZE), 0);
	jh = media_ptr(&m, JOFF);

	/* Each corruption in turn: one byte of a record, the crc, the magic, the length. */
	for (int k = 0; k < 5; k++) {
		memcpy(m.base + JOFF, jbuf, n);
		switch (k) {
		case 0: m.base[JOFF + HDR + 20] ^= 1; break;		/* record payload */
		case 1: m.base[JOFF + n - 1] ^= 0x80; break;		/* last byte (padding is covered) */
		case 2: jh->crc ^= 1; break;
		case 3: jh->magic ^= 1; break;
		case 4:	/* longer than the log area, though the checksum over that length matches */
			jh->len = JSIZE - HDR + 8;
			jh->crc = csum_journal(jh, m.base + JOFF + HDR);
			break;
		}
		assert_int_equal(journal_check(&j, err, sizeof(err)), 0);
		assert_int_equal(journal_replay(&j, err, sizeof(err)), 0);
		if (m.base[DATA + 5] != 0 || m.base[0] != 0)
			fail_msg("corruption %d: a torn transaction was applied", k);
	}
	/* A zero-length commit is empty too. */
	memset(m.base + JOFF, 0, HDR);
	jh->magic = DAXFS_JOURNAL_MAGIC;
	jh->seq = 9;
	jh->crc = csum_journal(jh, NULL);
	assert_int_equal(journal_replay(&j, err, sizeof(err)), 0);
	close_all(&m, &j);
}

/* Build a committed journal from (off, len, fill) records; nrec_delta skews the header's count. */
struct rec {
	uint64_t off;
	uint32_t len;
	char fill;
};

static void write_journal(struct media *m, const struct rec *r, int n, int nrec_delta, uint32_t len_delta)
{
	char *p = m->base + JOFF + HDR;
	uint32_t len = 0;

	for (int i = 0; i < n; i++) {
		struct daxfs_journal_record jr = { .off = r[i].off, .len = r[i].len };

		memcpy(p + len, &jr, sizeof(jr));
		memset(p + len + sizeof(jr), r[i].fill, DAXFS_JREC_LEN(r[i].len) - sizeof(jr));
		len += (uint32_t)DAXFS_JREC_LEN(r[i].len);
	}
	struct daxfs_journal_header jh = { .magic = DAXFS_JOURNAL_MAGIC, .seq = 7,
					   .nrec = (uint32_t)(n + nrec_delta), .len = len + len_delta };
	jh.crc = csum_journal(&jh, p);
	memcpy(m->base + JOFF, &jh, sizeof(jh));
}

static void expect_rejected(struct journal *j, const struct media *m, const char *needle)
{
	char err[256] = "";

	assert_int_equal(journal_check(j, err, sizeof(err)), -EUCLEAN);
	if (!strstr(err, needle))
		fail_msg("journal_check message \"%s\" lacks \"%s\"", err, needle);
	err[0] = 0;
	assert_int_equal(journal_replay(j, err, sizeof(err)), -EUCLEAN);
	if (!strstr(err, needle))
		fail_msg("journal_replay message \"%s\" lacks \"%s\"", err, needle);
	/* Validation comes before any write: the good first record was not applied either. */
	assert_int_equal(m->base[DATA], 0);
}

static void test_replay_rejects_bad_records(void **state)
{
	struct fixture *f = *state;
	struct media m;
	struct journal j;
	char err[256];

	open_fresh(&f->b, &m, &j);
	/* Past the end of the image, or straddling it. */
	write_journal(&m, (struct rec[]){ { DATA, 8, 'g' }, { IMG_SIZE, 8, 'x' } }, 2, 0, 0);
	expect_rejected(&j, &m, "outside");
	write_journal(&m, (struct rec[]){ { DATA, 8, 'g' }, { IMG_SIZE - 4, 8, 'x' } }, 2, 0, 0);
	expect_rejected(&j, &m, "outside");
	write_journal(&m, (struct rec[]){ { DATA, 8, 'g' }, { UINT64_MAX - 3, 8, 'x' } }, 2, 0, 0);
	expect_rejected(&j, &m, "outside");
	/* Into the journal itself: its header, its log, its last byte. */
	write_journal(&m, (struct rec[]){ { DATA, 8, 'g' }, { JOFF, 8, 'x' } }, 2, 0, 0);
	expect_rejected(&j, &m, "outside");
	write_journal(&m, (struct rec[]){ { DATA, 8, 'g' }, { JOFF + 1000, 8, 'x' } }, 2, 0, 0);
	expect_rejected(&j, &m, "outside");
	write_journal(&m, (struct rec[]){ { DATA, 8, 'g' }, { JOFF - 4, 8, 'x' } }, 2, 0, 0);
	expect_rejected(&j, &m, "outside");
	write_journal(&m, (struct rec[]){ { DATA, 8, 'g' }, { JOFF + JSIZE - 1, 8, 'x' } }, 2, 0, 0);
	expect_rejected(&j, &m, "outside");
	/* The header's record count disagrees with the records. */
	write_journal(&m, (struct rec[]){ { DATA, 8, 'g' }, { DATA + 64, 8, 'x' } }, 2, 1, 0);
	expect_rejected(&j, &m, "records");
	write_journal(&m, (struct rec[]){ { DATA, 8, 'g' }, { DATA + 64, 8, 'x' } }, 2, -1, 0);
	expect_rejected(&j, &m, "records");
	/* The last record runs past the transaction's length. */
	write_journal(&m, (struct rec[]){ { DATA, 8, 'g' }, { DATA + 64, 64, 'x' } }, 2, 0, (uint32_t)-8);
	expect_rejected(&j, &m, "overruns");

	/* Right next to the journal on both sides is fine. */
	write_journal(&m, (struct rec[]){ { DATA, 8, 'g' }, { JOFF - 8, 8, 'x' }, { JOFF + JSIZE, 8, 'y' } }, 3, 0,
		      0);
	assert_int_equal(journal_replay(&j, err, sizeof(err)), 3);
	assert_int_equal(m.base[DATA], 'g');
	assert_int_equal(m.base[JOFF - 1], 'x');
	assert_int_equal(m.base[JOFF + JSIZE], 'y');
	close_all(&m, &j);
}

/* ---- crash injection ---- */

#define CRASH_TXS 6
#define CRASH_SPOTS 8

/* An unaligned 64-bit load from the image. */
static uint64_t load64(const struct media *m, uint64_t off)
{
	uint64_t v;

	memcpy(&v, media_ptr(m, off), sizeof(v));
	return v;
}

/* Where transaction k writes its number: spread over pages so each is a separate flush. */
static uint64_t spot(int i)
{
	return DATA + (uint64_t)i * 12345;
}

/* The child: commit CRASH_TXS transactions, each writing k to every spot and setting bit k. */
static void crash_child(const char *path, int n)
{
	char err[256], num[32];
	struct media m;
	struct journal j;
	struct jbitmap bm = { .off = BMAP, .nbits = 64 };
	uint64_t shadow[1] = { 0 };

	snprintf(num, sizeof(num), "%d", n);
	setenv("DAXFS_CRASH_AT", num, 1);
	if (media_open(&m, path, 0, err, sizeof(err)))
		_exit(2);
	if (m.crash_at != (uint64_t)n)
		_exit(3);
	if (journal_init(&j, &m, JOFF, JSIZE))
		_exit(4);
	bm.shadow = shadow;
	for (uint64_t k = 1; k <= CRASH_TXS; k++) {
		struct tx tx;

		tx_init(&tx, &j);
		for (int i = 0; i < CRASH_SPOTS; i++)
			tx_log(&tx, spot(i), &k, sizeof(k));
		tx_bits(&tx, &bm, k, 1, true);
		if (tx_commit(&tx))
			_exit(5);
	}
	_exit(0);	/* should not get here: the crash point is inside the commits */
}

static void test_crash_points(void **state)
{
	struct fixture *f = *state;
	int outcomes[2] = { 0, 0 };	/* last transaction absent, present */

	/* Each commit drains twice (journal written, then applied): try every drain. */
	for (int n = 1; n <= 2 * CRASH_TXS; n++) {
		struct media m;
		struct journal j;
		char err[256] = "";
		int status;

		image_create(&f->a, IMG_SIZE);
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0)
			crash_child(f->a.path, n);
		assert_int_equal(waitpid(pid, &status, 0), pid);
		if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
			fail_msg("crash point %d: child did not die by SIGKILL (status %#x)", n, status);

		assert_int_equal(media_open(&m, f->a.path, 0, err, sizeof(err)), 0);
		assert_int_equal(journal_init(&j, &m, JOFF, JSIZE), 0);
		int ret = journal_replay(&j, err, sizeof(err));
		if (ret < 0)
			fail_msg("crash point %d: replay failed: %s", n, err);

		/* The transaction in progress at drain n, and what the image may hold after recovery. */
		uint64_t cur = (uint64_t)(n + 1) / 2;
		uint64_t v = load64(&m, spot(0));
		for (int i = 1; i < CRASH_SPOTS; i++)
			if (load64(&m, spot(i)) != v)
				fail_msg("crash point %d: spot %d holds %llu, spot 0 holds %llu: a torn transaction", n,
					 i, (unsigned long long)load64(&m, spot(i)), (unsigned long long)v);
		if (v != cur && v != cur - 1)
			fail_msg("crash point %d: image holds transaction %llu, expected %llu or %llu", n,
				 (unsigned long long)v, (unsigned long long)cur - 1, (unsigned long long)cur);
		uint8_t bits = *(uint8_t *)media_ptr(&m, BMAP);
		uint8_t want = (uint8_t)(((1u << (v + 1)) - 1) & ~1u);	/* bits 1..v */
		if (bits != want)
			fail_msg("crash point %d: bitmap %#x, expected %#x for transaction %llu", n, bits, want,
				 (unsigned long long)v);
		outcomes[v == cur]++;
		/* Replay leaves an empty journal behind. */
		assert_int_equal(journal_check(&j, err, sizeof(err)), 0);
		close_all(&m, &j);
	}
	print_message("crash points: %d recovered without the last transaction, %d with it\n", outcomes[0],
		      outcomes[1]);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_init_rejects),
		T(test_commit_applies),
		T(test_record_buffer_aligned),
		T(test_later_record_wins),
		T(test_bits),
		T(test_defer_free),
		T(test_defer),
		T(test_budget),
		T(test_replay),
		T(test_replay_ignores_torn),
		T(test_replay_rejects_bad_records),
		T(test_crash_points),
	};

	return cmocka_run_group_tests_name("journal", tests, NULL, NULL);
}
