/* SPDX-License-Identifier: MIT */
/*
 * Checksums: crc32c itself against published check values, and every structure checksum against
 * its coverage as format.h defines it: a change to any covered byte must be caught, a change to
 * the crc field itself or to bytes outside the structure must not matter.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>

#include "csum.h"
#include "daxfs/format.h"
#include "unit_common.h"

#define SEED 0x1234abcdu

/* ---- crc32c ---- */

static void test_crc32c_check_value(void **state)
{
	(void)state;
	/* The standard "check" value of CRC-32C (Castagnoli). */
	assert_int_equal(csum_crc32c(0, "123456789", 9), 0xE3069283u);
	assert_int_equal(csum_crc32c(0, "", 0), 0);
}

static void test_crc32c_iscsi_vectors(void **state)
{
	unsigned char buf[32];

	(void)state;
	/* RFC 3720 (iSCSI) appendix B.4 test vectors. */
	memset(buf, 0, sizeof(buf));
	assert_int_equal(csum_crc32c(0, buf, sizeof(buf)), 0x8A9136AAu);
	memset(buf, 0xff, sizeof(buf));
	assert_int_equal(csum_crc32c(0, buf, sizeof(buf)), 0x62A8AB43u);
	for (int i = 0; i < 32; i++)
		buf[i] = (unsigned char)i;
	assert_int_equal(csum_crc32c(0, buf, sizeof(buf)), 0x46DD794Eu);
	for (int i = 0; i < 32; i++)
		buf[i] = (unsigned char)(31 - i);
	assert_int_equal(csum_crc32c(0, buf, sizeof(buf)), 0x113FDB5Cu);
}

static void test_crc32c_incremental(void **state)
{
	unsigned char buf[1031];
	uint64_t rng = 42;

	(void)state;
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (unsigned char)rng_next(&rng);
	uint32_t whole = csum_crc32c(0, buf, sizeof(buf));
	/* Every split point, including the empty prefix and suffix, gives the one-shot value. */
	for (size_t k = 0; k <= sizeof(buf); k++) {
		uint32_t c = csum_crc32c(0, buf, k);

		c = csum_crc32c(c, buf + k, sizeof(buf) - k);
		assert_int_equal(c, whole);
	}
	/* Three pieces, and a non-zero starting value continued the same way. */
	uint32_t c = csum_crc32c(7, buf, 100);
	c = csum_crc32c(c, buf + 100, 500);
	c = csum_crc32c(c, buf + 600, sizeof(buf) - 600);
	assert_int_equal(c, csum_crc32c(7, buf, sizeof(buf)));
	assert_int_not_equal(csum_crc32c(7, buf, sizeof(buf)), whole);
}

/* ---- coverage of the structure checksums ---- */

typedef uint32_t (*csum_fn)(const void *buf);

/*
 * Flip every bit of buf[0, size) in turn: a flip inside [lo, hi) must change the checksum, a flip
 * elsewhere must not.  Bytes in [skip_lo, skip_hi) are skipped: they hold a length that bounds the
 * coverage, and a random flip there would make the checksum read past the buffer (tested apart).
 */
static void check_coverage(unsigned char *buf, size_t size, csum_fn fn, size_t lo, size_t hi, size_t skip_lo,
			   size_t skip_hi)
{
	uint32_t ref = fn(buf);

	for (size_t i = 0; i < size; i++) {
		if (i >= skip_lo && i < skip_hi)
			continue;
		for (int bit = 0; bit < 8; bit++) {
			buf[i] ^= (unsigned char)(1u << bit);
			uint32_t c = fn(buf);
			buf[i] ^= (unsigned char)(1u << bit);
			if (i >= lo && i < hi) {
				if (c == ref)
					fail_msg("flipping bit %d of covered byte %zu did not change the checksum", bit, i);
			} else if (c != ref) {
				fail_msg("flipping bit %d of byte %zu (outside [%zu, %zu)) changed the checksum", bit, i,
					 lo, hi);
			}
		}
	}
	assert_int_equal(fn(buf), ref);
}

static void fill_random(void *p, size_t n, uint64_t seed)
{
	unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		b[i] = (unsigned char)rng_next(&seed);
}

static uint32_t super_fn(const void *b)
{
	return csum_super(b);
}

static void test_super_csum_coverage(void **state)
{
	struct daxfs_super sb;

	(void)state;
	fill_random(&sb, sizeof(sb), 1);
	/* Covered: everything after the crc field. */
	check_coverage((unsigned char *)&sb, sizeof(sb), super_fn, offsetof(struct daxfs_super, crc) + 4, sizeof(sb),
		       0, 0);
	/* super_seal stores exactly that value, and a sealed superblock verifies. */
	super_seal(&sb);
	assert_int_equal(sb.crc, csum_super(&sb));
	/* The format: crc32c over bytes [12, 512) with a zero seed. */
	assert_int_equal(sb.crc, csum_crc32c(0, (const char *)&sb + 12, 500));
}

static uint32_t inode_fn(const void *b)
{
	return csum_inode(SEED, 77, b);
}

static void test_inode_csum_coverage(void **state)
{
	struct daxfs_inode di;

	(void)state;
	fill_random(&di, sizeof(di), 2);
	check_coverage((unsigned char *)&di, sizeof(di), inode_fn, 0, offsetof(struct daxfs_inode, crc), 0, 0);
	/* Seed and inode number both feed the checksum: a record copied to another slot fails. */
	uint32_t c = csum_inode(SEED, 77, &di);
	assert_int_not_equal(c, csum_inode(SEED + 1, 77, &di));
	assert_int_not_equal(c, csum_inode(SEED, 78, &di));
	assert_int_not_equal(c, csum_inode(SEED, 77ull | (1ull << 40), &di));
	/* The format: the seed continued over the little-endian inode number, then bytes [0, 252). */
	uint64_t ino = 77;
	assert_int_equal(c, csum_crc32c(csum_crc32c(SEED, &ino, 8), &di, 252));
}

#define EB_COUNT 3
static uint32_t eb_fn(const void *b)
{
	return csum_extent_block(SEED, 1000, b);
}

static void test_extent_block_csum_coverage(void **state)
{
	union {
		struct daxfs_extent_block eb;
		unsigned char b[512];
	} u;

	(void)state;
	fill_random(&u, sizeof(u), 3);
	u.eb.count = EB_COUNT;
	size_t covered = sizeof(u.eb) + EB_COUNT * sizeof(struct daxfs_extent);
	check_coverage(u.b, sizeof(u.b), eb_fn, 4, covered, offsetof(struct daxfs_extent_block, count),
		       offsetof(struct daxfs_extent_block, count) + 4);
	/* The count itself is covered, and it moves the end of the coverage. */
	uint32_t c = eb_fn(&u);
	u.eb.count = EB_COUNT + 1;
	assert_int_not_equal(eb_fn(&u), c);
	u.b[covered] ^= 1;	/* now inside the fourth extent */
	uint32_t c4 = eb_fn(&u);
	u.b[covered] ^= 1;
	assert_int_not_equal(eb_fn(&u), c4);
	u.eb.count = EB_COUNT;
	assert_int_equal(eb_fn(&u), c);
	/* Block number dependence. */
	assert_int_not_equal(c, csum_extent_block(SEED, 1001, &u.eb));
	assert_int_not_equal(c, csum_extent_block(SEED ^ 1, 1000, &u.eb));
}

static uint32_t dirent_fn(const void *b)
{
	return csum_dirent(SEED, 5, b);
}

static void test_dirent_csum_coverage(void **state)
{
	union {
		struct daxfs_dirent de;
		unsigned char b[512];
	} u;

	(void)state;
	fill_random(&u, sizeof(u), 4);
	u.de.ino = 0x123456789ull;	/* several bits set: no single flip makes it a free record */
	u.de.name_len = 11;
	/* A live record: header after the crc and the name_len bytes of the name. */
	check_coverage(u.b, sizeof(u.b), dirent_fn, 4, DAXFS_DIRENT_HDR + 11, 0, 0);
	uint32_t c = dirent_fn(&u);
	assert_int_not_equal(c, csum_dirent(SEED, 6, &u.de));
	assert_int_not_equal(c, csum_dirent(SEED + 1, 5, &u.de));

	/* A free record (ino 0): only the header; its stale name bytes do not matter. */
	u.de.ino = 0;
	uint32_t f = dirent_fn(&u);
	for (size_t i = DAXFS_DIRENT_HDR; i < sizeof(u.b); i++) {
		u.b[i] ^= 0x5a;
		assert_int_equal(dirent_fn(&u), f);
		u.b[i] ^= 0x5a;
	}
	u.b[DAXFS_DIRENT_HDR - 1] ^= 1;	/* inside ino: covered */
	assert_int_not_equal(dirent_fn(&u), f);
}

#define XB_USED 100u
static uint32_t xattr_fn(const void *b)
{
	return csum_xattr(SEED, 9, b);
}

static void test_xattr_csum_coverage(void **state)
{
	union {
		struct daxfs_xattr_block xb;
		unsigned char b[512];
	} u;

	(void)state;
	fill_random(&u, sizeof(u), 5);
	u.xb.used = XB_USED;
	check_coverage(u.b, sizeof(u.b), xattr_fn, 4, XB_USED, offsetof(struct daxfs_xattr_block, used),
		       offsetof(struct daxfs_xattr_block, used) + 4);
	uint32_t c = xattr_fn(&u);
	u.xb.used = XB_USED + 4;
	assert_int_not_equal(xattr_fn(&u), c);
	u.xb.used = XB_USED;
	assert_int_not_equal(c, csum_xattr(SEED, 10, &u.xb));
	assert_int_not_equal(c, csum_xattr(SEED - 1, 9, &u.xb));
}

static uint32_t slot_block_fn(const void *b)
{
	return csum_slot_block(SEED, 300, b);
}

static void test_slot_block_csum_coverage(void **state)
{
	unsigned char b[128];

	(void)state;
	fill_random(b, sizeof(b), 6);
	/* Only the 32-byte header: the slots that follow have checksums of their own. */
	check_coverage(b, sizeof(b), slot_block_fn, 4, sizeof(struct daxfs_slot_block), 0, 0);
	uint32_t c = slot_block_fn(b);
	assert_int_not_equal(c, csum_slot_block(SEED, 301, (const void *)b));
	assert_int_not_equal(c, csum_slot_block(SEED + 2, 300, (const void *)b));
}

static uint32_t slot_fn(const void *b)
{
	return csum_slot(SEED, 300, 7, b);
}

static void test_slot_csum_coverage(void **state)
{
	unsigned char b[96];

	(void)state;
	fill_random(b, sizeof(b), 7);
	check_coverage(b, sizeof(b), slot_fn, 4, sizeof(struct daxfs_slot), 0, 0);
	/* Block and index both matter: a slot moved within or between blocks fails. */
	uint32_t c = slot_fn(b);
	assert_int_not_equal(c, csum_slot(SEED, 300, 8, (const void *)b));
	assert_int_not_equal(c, csum_slot(SEED, 301, 7, (const void *)b));
	assert_int_not_equal(c, csum_slot(SEED + 3, 300, 7, (const void *)b));
	/* Index and block are not interchangeable. */
	assert_int_not_equal(csum_slot(SEED, 7, 300, (const void *)b), c);
}

#define JREC_LEN 72u
static uint32_t journal_fn(const void *b)
{
	const struct daxfs_journal_header *jh = b;

	return csum_journal(jh, (const char *)b + sizeof(*jh));
}

static void test_journal_csum_coverage(void **state)
{
	union {
		struct daxfs_journal_header jh;
		unsigned char b[256];
	} u;

	(void)state;
	fill_random(&u, sizeof(u), 8);
	u.jh.len = JREC_LEN;
	/* Header after the crc, then exactly len bytes of records. */
	check_coverage(u.b, sizeof(u.b), journal_fn, 4, sizeof(u.jh) + JREC_LEN,
		       offsetof(struct daxfs_journal_header, len), offsetof(struct daxfs_journal_header, len) + 4);
	uint32_t c = journal_fn(&u);
	u.jh.len = JREC_LEN - 8;
	assert_int_not_equal(journal_fn(&u), c);
	/* An empty journal's checksum covers the header alone; records may be NULL. */
	u.jh.len = 0;
	assert_int_equal(csum_journal(&u.jh, NULL), csum_crc32c(0, u.b + 4, sizeof(u.jh) - 4));
}

static void test_fs_seed(void **state)
{
	struct daxfs_super a, b;

	(void)state;
	fill_random(&a, sizeof(a), 9);
	b = a;
	/* The seed is the uuid's crc and nothing else. */
	assert_int_equal(csum_fs_seed(&a), csum_crc32c(0, a.uuid, sizeof(a.uuid)));
	b.label[0] ^= 1;
	b.nblocks++;
	assert_int_equal(csum_fs_seed(&a), csum_fs_seed(&b));
	for (size_t i = 0; i < sizeof(b.uuid); i++) {
		b = a;
		b.uuid[i] ^= 0x80;
		assert_int_not_equal(csum_fs_seed(&a), csum_fs_seed(&b));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc32c_check_value),
		cmocka_unit_test(test_crc32c_iscsi_vectors),
		cmocka_unit_test(test_crc32c_incremental),
		cmocka_unit_test(test_super_csum_coverage),
		cmocka_unit_test(test_inode_csum_coverage),
		cmocka_unit_test(test_extent_block_csum_coverage),
		cmocka_unit_test(test_dirent_csum_coverage),
		cmocka_unit_test(test_xattr_csum_coverage),
		cmocka_unit_test(test_slot_block_csum_coverage),
		cmocka_unit_test(test_slot_csum_coverage),
		cmocka_unit_test(test_journal_csum_coverage),
		cmocka_unit_test(test_fs_seed),
	};

	return cmocka_run_group_tests_name("csum", tests, NULL, NULL);
}
