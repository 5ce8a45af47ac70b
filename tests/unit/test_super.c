/* SPDX-License-Identifier: MIT */
/*
 * Superblock geometry (super_layout), validation (super_validate) and formatting (super_format,
 * then sbi_open of the result).
 */
#include <stdint.h>
#include <string.h>
#include <stddef.h>
#include <sys/stat.h>
#include <time.h>

#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>

#include "csum.h"
#include "daxfs/format.h"
#include "sbi.h"
#include "unit_common.h"

static uint64_t div_up(uint64_t n, uint64_t d)
{
	return (n + d - 1) / d;
}

/*
 * The layout rules, restated independently of super.c: regions follow each other from block 1,
 * each just large enough for what it holds; the last block is the superblock copy.
 */
static void check_geometry(const struct daxfs_super *sb, uint64_t bytes, uint32_t bs, uint64_t min_inodes)
{
	uint64_t ipb = bs / DAXFS_INODE_SIZE;

	assert_int_equal(sb->magic, DAXFS_SB_MAGIC);
	assert_int_equal(sb->version_major, DAXFS_VERSION_MAJOR);
	assert_int_equal(sb->block_size, bs);
	assert_int_equal(sb->inode_size, DAXFS_INODE_SIZE);
	assert_int_equal(sb->nblocks, bytes / bs);
	assert_true(sb->ninodes >= min_inodes);
	assert_int_equal(sb->ninodes % ipb, 0);
	assert_true(sb->ninodes < min_inodes + ipb);	/* rounded up to a whole block, no more */
	assert_int_equal(sb->journal_start, 1);
	assert_true(sb->journal_blocks * bs >= 256 * KiB);
	assert_int_equal(sb->ibitmap_start, sb->journal_start + sb->journal_blocks);
	assert_int_equal(sb->ibitmap_blocks, div_up(sb->ninodes, 8ull * bs));
	assert_int_equal(sb->bbitmap_start, sb->ibitmap_start + sb->ibitmap_blocks);
	assert_int_equal(sb->bbitmap_blocks, div_up(sb->nblocks, 8ull * bs));
	assert_int_equal(sb->itable_start, sb->bbitmap_start + sb->bbitmap_blocks);
	assert_int_equal(sb->itable_blocks, sb->ninodes / ipb);
	assert_int_equal(sb->data_start, sb->itable_start + sb->itable_blocks);
	assert_int_equal(sb->backup_sb, sb->nblocks - 1);
	assert_true(sb->data_start < sb->backup_sb);
	assert_int_equal(sb->root_ino, DAXFS_ROOT_INO);
	assert_int_equal(sb->state, DAXFS_STATE_CLEAN);
	assert_int_equal(sb->feature_incompat, 0);
}

static void test_layout_default_1g(void **state)
{
	struct mkfs_params p = { 0 };
	struct daxfs_super sb;
	char err[256] = "";

	(void)state;
	assert_int_equal(super_layout(&sb, 1 * GiB, &p, err, sizeof(err)), 0);
	check_geometry(&sb, 1 * GiB, 4096, GiB / 16384);
	/* Exact numbers for the default 1 GiB image: one inode per 16 KiB, a 4 MiB journal (1/256). */
	assert_int_equal(sb.nblocks, 262144);
	assert_int_equal(sb.ninodes, 65536);
	assert_int_equal(sb.journal_blocks, 1024);
	assert_int_equal(sb.ibitmap_start, 1025);
	assert_int_equal(sb.ibitmap_blocks, 2);
	assert_int_equal(sb.bbitmap_start, 1027);
	assert_int_equal(sb.bbitmap_blocks, 8);
	assert_int_equal(sb.itable_start, 1035);
	assert_int_equal(sb.itable_blocks, 4096);
	assert_int_equal(sb.data_start, 5131);
	assert_int_equal(sb.backup_sb, 262143);
}

static void test_layout_sizes(void **state)
{
	static const struct {
		uint64_t bytes;
		uint32_t bs;
	} cases[] = {
		{ 8 * MiB, 4096 },   { 64 * MiB, 4096 },  { 64 * MiB, 8192 },  { 64 * MiB, 32768 },
		{ 100 * MiB + 12345, 4096 }, { 3 * GiB, 16384 }, { 64 * GiB, 4096 }, { 1ull << 40, 32768 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct mkfs_params p = { .block_size = cases[i].bs };
		struct daxfs_super sb;
		char err[256] = "";
		uint64_t bytes = cases[i].bytes;
		uint64_t jb = bytes / 256;

		if (super_layout(&sb, bytes, &p, err, sizeof(err)))
			fail_msg("layout of %llu bytes, bs %u: %s", (unsigned long long)bytes, cases[i].bs, err);
		uint64_t want_inodes = bytes / 16384 > 64 ? bytes / 16384 : 64;
		check_geometry(&sb, bytes, cases[i].bs, want_inodes);
		/* Journal: 1/256 of the image, clamped to [256 KiB, 8 MiB], rounded up to blocks. */
		jb = jb < 256 * KiB ? 256 * KiB : jb > 8 * MiB ? 8 * MiB : jb;
		assert_int_equal(sb.journal_blocks, div_up(jb, cases[i].bs));
	}
}

static void test_layout_explicit_params(void **state)
{
	struct mkfs_params p = { .block_size = 8192, .ninodes = 1000, .journal_bytes = 1 * MiB, .label = "scratch" };
	struct daxfs_super sb;
	char err[256] = "";

	(void)state;
	assert_int_equal(super_layout(&sb, 256 * MiB, &p, err, sizeof(err)), 0);
	check_geometry(&sb, 256 * MiB, 8192, 1000);
	assert_int_equal(sb.ninodes, 1024);	/* 32 inodes per 8 KiB block */
	assert_int_equal(sb.journal_blocks, 128);
	assert_string_equal(sb.label, "scratch");

	/* A label longer than the field is cut, and stays NUL-terminated. */
	char longlabel[100];
	memset(longlabel, 'x', sizeof(longlabel) - 1);
	longlabel[sizeof(longlabel) - 1] = 0;
	p.label = longlabel;
	assert_int_equal(super_layout(&sb, 256 * MiB, &p, err, sizeof(err)), 0);
	assert_int_equal(strlen(sb.label), sizeof(sb.label) - 1);
}

static void test_layout_rejects(void **state)
{
	static const uint32_t bad_bs[] = { 512, 2048, 3000, 4097, 6144, 65536, 1u << 31 };
	struct daxfs_super sb;
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(bad_bs) / sizeof(bad_bs[0]); i++) {
		struct mkfs_params p = { .block_size = bad_bs[i] };

		err[0] = 0;
		assert_int_equal(super_layout(&sb, 1 * GiB, &p, err, sizeof(err)), -EINVAL);
		assert_non_null(strstr(err, "block size"));
	}
	/* Too small: no room for the metadata and a minimum data area. */
	static const uint64_t small[] = { 0, 4096, 8192, 64 * KiB, 256 * KiB, 300 * KiB };
	for (size_t i = 0; i < sizeof(small) / sizeof(small[0]); i++) {
		struct mkfs_params p = { 0 };

		err[0] = 0;
		assert_int_equal(super_layout(&sb, small[i], &p, err, sizeof(err)), -EINVAL);
		assert_non_null(strstr(err, "too small"));
	}
	/* Too many inodes for the image is "too small" as well. */
	struct mkfs_params p = { .ninodes = 1000000 };
	err[0] = 0;
	assert_int_equal(super_layout(&sb, 64 * MiB, &p, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "too small"));
	/* Journal outside [256 KiB, 1 GiB]. */
	p = (struct mkfs_params){ .journal_bytes = 128 * KiB };
	err[0] = 0;
	assert_int_equal(super_layout(&sb, 1 * GiB, &p, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "journal"));
	p = (struct mkfs_params){ .journal_bytes = 2 * GiB };
	assert_int_equal(super_layout(&sb, 64 * GiB, &p, err, sizeof(err)), -EINVAL);
}

/* ---- super_validate ---- */

/* A consistent superblock for an image of `bytes`, as super_format would write it. */
static void valid_super(struct daxfs_super *sb, uint64_t bytes)
{
	struct mkfs_params p = { 0 };
	char err[256];

	assert_int_equal(super_layout(sb, bytes, &p, err, sizeof(err)), 0);
	sb->orphan_head = sb->data_start;
	sb->busy_head = sb->data_start + 1;
	super_seal(sb);
}

/* Validation must fail with `code` and a message containing `needle`. */
static void expect_invalid(const struct daxfs_super *sb, uint64_t bytes, int code, const char *needle)
{
	char err[256] = "";
	int ret = super_validate(sb, bytes, err, sizeof(err));

	if (ret != code)
		fail_msg("expected %d (%s), got %d: %s", code, needle, ret, err);
	if (!strstr(err, needle))
		fail_msg("message \"%s\" does not mention \"%s\"", err, needle);
}

static void test_validate_ok(void **state)
{
	struct daxfs_super sb;
	char err[256] = "";

	(void)state;
	valid_super(&sb, 1 * GiB);
	assert_int_equal(super_validate(&sb, 1 * GiB, err, sizeof(err)), 0);
	/* A larger image than the file system is fine (grown device); so are unknown compat features. */
	assert_int_equal(super_validate(&sb, 2 * GiB, err, sizeof(err)), 0);
	sb.feature_compat = 0x80;
	sb.feature_ro_compat = 0x1;
	super_seal(&sb);
	assert_int_equal(super_validate(&sb, 1 * GiB, err, sizeof(err)), 0);
}

static void test_validate_header(void **state)
{
	struct daxfs_super sb, bad;

	(void)state;
	valid_super(&sb, 1 * GiB);

	bad = sb;
	bad.magic ^= 1;
	super_seal(&bad);
	expect_invalid(&bad, 1 * GiB, -EINVAL, "magic");

	bad = sb;
	bad.crc ^= 0x100;
	expect_invalid(&bad, 1 * GiB, -EUCLEAN, "checksum");
	bad = sb;
	bad.label[3] = 'z';	/* a covered byte changed without resealing */
	expect_invalid(&bad, 1 * GiB, -EUCLEAN, "checksum");

	bad = sb;
	bad.version_major = DAXFS_VERSION_MAJOR + 1;
	super_seal(&bad);
	expect_invalid(&bad, 1 * GiB, -EPROTONOSUPPORT, "version");
	bad = sb;
	bad.version_major = 0;
	super_seal(&bad);
	expect_invalid(&bad, 1 * GiB, -EPROTONOSUPPORT, "version");

	/* A newer minor version is compatible by definition. */
	bad = sb;
	bad.version_minor = DAXFS_VERSION_MINOR + 5;
	super_seal(&bad);
	char err[256];
	assert_int_equal(super_validate(&bad, 1 * GiB, err, sizeof(err)), 0);

	bad = sb;
	bad.feature_incompat = 0x4;
	super_seal(&bad);
	expect_invalid(&bad, 1 * GiB, -EPROTONOSUPPORT, "incompatible");

	bad = sb;
	bad.block_size = 2048;
	super_seal(&bad);
	expect_invalid(&bad, 1 * GiB, -EUCLEAN, "block size");
	bad = sb;
	bad.block_size = 65536;
	super_seal(&bad);
	expect_invalid(&bad, 1 * GiB, -EUCLEAN, "block size");
	bad = sb;
	bad.block_size = 3000;
	super_seal(&bad);
	expect_invalid(&bad, 1 * GiB, -EUCLEAN, "block size");
	bad = sb;
	bad.inode_size = 128;
	super_seal(&bad);
	expect_invalid(&bad, 1 * GiB, -EUCLEAN, "inode size");
}

static void test_validate_truncated(void **state)
{
	struct daxfs_super sb;

	(void)state;
	valid_super(&sb, 1 * GiB);
	expect_invalid(&sb, 1 * GiB - 1, -EUCLEAN, "truncated");
	expect_invalid(&sb, 1 * GiB - 4096, -EUCLEAN, "truncated");
	expect_invalid(&sb, 4096, -EUCLEAN, "truncated");
	expect_invalid(&sb, 0, -EUCLEAN, "truncated");
}

/* Each field that defines a region, changed (and resealed): the message names the region. */
static void test_validate_regions(void **state)
{
	struct daxfs_super sb, b;

	(void)state;
	valid_super(&sb, 1 * GiB);

#define BAD(stmt, what)                                    \
	do {                                               \
		b = sb;                                    \
		stmt;                                      \
		super_seal(&b);                            \
		expect_invalid(&b, 1 * GiB, -EUCLEAN, what); \
	} while (0)

	BAD(b.journal_start = 2, "journal");
	BAD(b.journal_start = 0, "journal");
	BAD(b.journal_blocks = 63, "journal");	/* under 256 KiB */
	BAD(b.ibitmap_start++, "inode bitmap");
	BAD(b.ibitmap_blocks++, "inode bitmap");
	BAD(b.ibitmap_blocks--, "inode bitmap");
	BAD(b.ninodes += 32768 * 2, "inode bitmap");	/* bitmap now too short */
	BAD(b.bbitmap_start--, "block bitmap");
	BAD(b.bbitmap_blocks++, "block bitmap");
	BAD(b.nblocks -= 32768 * 2, "block bitmap");	/* bitmap now too long for nblocks */
	BAD(b.itable_start++, "inode table");
	BAD(b.itable_blocks--, "inode table");
	BAD(b.ninodes -= 8, "inode table");	/* not a whole number of inode blocks */
	BAD(b.data_start++, "data area");
	BAD(b.data_start--, "data area");
	BAD(b.backup_sb--, "backup superblock");
	BAD(b.nblocks--, "backup superblock");
	BAD(b.root_ino = 2, "root inode");
	BAD(b.root_ino = 0, "root inode");
	BAD(b.orphan_head = 0, "orphan list");
	BAD(b.orphan_head = b.data_start - 1, "orphan list");
	BAD(b.orphan_head = b.backup_sb, "orphan list");
	BAD(b.busy_head = b.orphan_head, "busy extent list");
	BAD(b.busy_head = b.backup_sb, "busy extent list");
	BAD(b.busy_head = 5, "busy extent list");
#undef BAD
}

/* ---- super_format ---- */

static int setup_fmt(void **state)
{
	return image_setup(state, "super-fmt");
}

static void test_format_and_open(void **state)
{
	struct image *img = *state;
	uint8_t uuid[16];
	struct mkfs_params p = { .label = "unit", .root_uid = 1234, .root_gid = 567, .uuid = uuid };
	struct sbi s;
	char err[256] = "";

	for (int i = 0; i < 16; i++)
		uuid[i] = (uint8_t)(0xa0 + i);
	image_format(img, 64 * MiB, &p);
	if (sbi_open(&s, img->path, 0, err, sizeof(err)))
		fail_msg("sbi_open: %s", err);

	const struct daxfs_super *sb = &s.sb;
	check_geometry(sb, 64 * MiB, 4096, 4096);
	assert_string_equal(sb->label, "unit");
	assert_int_equal(s.bs, 4096);
	assert_int_equal(s.bshift, 12);
	assert_false(s.was_dirty);
	assert_int_equal(s.replayed, 0);
	/* The uuid is the one given, with the RFC 4122 version and variant bits forced. */
	for (int i = 0; i < 16; i++) {
		uint8_t want = uuid[i];

		if (i == 6)
			want = (uint8_t)((want & 0x0f) | 0x40);
		if (i == 8)
			want = (uint8_t)((want & 0x3f) | 0x80);
		assert_int_equal(sb->uuid[i], want);
	}
	assert_int_equal(s.seed, csum_fs_seed(sb));
	assert_int_equal(sb->orphan_head, sb->data_start);
	assert_int_equal(sb->busy_head, sb->data_start + 1);

	/* The backup superblock is identical to the primary. */
	assert_memory_equal(sbi_block(&s, sb->backup_sb), s.media.base, sizeof(struct daxfs_super));

	/* Root inode: a valid directory owned as asked, "..", no blocks yet. */
	const struct daxfs_inode *root = (const void *)((const char *)sbi_block(&s, sb->itable_start));
	assert_int_equal(root->crc, csum_inode(s.seed, DAXFS_ROOT_INO, root));
	assert_int_equal(root->mode, S_IFDIR | 0755);
	assert_int_equal(root->nlink, 2);
	assert_int_equal(root->uid, 1234);
	assert_int_equal(root->gid, 567);
	assert_int_equal(root->parent, DAXFS_ROOT_INO);
	assert_int_equal(root->size, 0);
	assert_int_equal(root->ext_count, 0);
	assert_int_equal(root->ext_next, 0);
	assert_true(root->mtime_sec > 0);

	/* Block bitmap: metadata, the three slot heads and the backup superblock; nothing else. */
	for (uint64_t b = 0; b < sb->data_start + 3; b++)
		assert_true(journal_bitmap_test(&s.bbm, b));
	assert_true(journal_bitmap_test(&s.bbm, sb->backup_sb));
	for (uint64_t b = sb->data_start + 3; b < sb->backup_sb; b += 97)
		assert_false(journal_bitmap_test(&s.bbm, b));
	assert_false(journal_bitmap_test(&s.bbm, sb->data_start + 3));
	assert_true(sb->feature_compat & DAXFS_FEATURE_COMPAT_HOLDERS);
	assert_int_equal(sb->holder_head, sb->data_start + 2);
	assert_false(journal_bitmap_test(&s.bbm, sb->backup_sb - 1));
	assert_int_equal(s.bbm.nset, sb->data_start + 4);
	assert_int_equal(s.bbm.nbits, sb->nblocks);
	/* Inode bitmap: only the root. */
	assert_true(journal_bitmap_test(&s.ibm, 0));
	assert_false(journal_bitmap_test(&s.ibm, 1));
	assert_int_equal(s.ibm.nset, 1);
	assert_int_equal(s.ibm.nbits, sb->ninodes);
	/* The allocator knows every other data block as free. */
	assert_int_equal(s.data_blocks, sb->backup_sb - sb->data_start);
	assert_int_equal(alloc_free_blocks(&s.alloc), sb->backup_sb - sb->data_start - 3);

	/* Slot list heads: valid, empty, of the right kind. */
	const struct daxfs_slot_block *oh = sbi_block(&s, sb->orphan_head);
	const struct daxfs_slot_block *bh = sbi_block(&s, sb->busy_head);
	assert_int_equal(oh->magic, DAXFS_SLOT_MAGIC);
	assert_int_equal(oh->kind, DAXFS_SLOTS_ORPHAN);
	assert_int_equal(oh->next, 0);
	assert_int_equal(oh->crc, csum_slot_block(s.seed, sb->orphan_head, oh));
	assert_int_equal(bh->kind, DAXFS_SLOTS_BUSY);
	assert_int_equal(bh->crc, csum_slot_block(s.seed, sb->busy_head, bh));

	/* The journal is empty. */
	assert_int_equal(journal_check(&s.journal, err, sizeof(err)), 0);
	sbi_close(&s);
}

static void test_format_custom_block_size(void **state)
{
	struct image *img = *state;
	struct mkfs_params p = { .block_size = 16384 };
	struct sbi s;
	char err[256] = "";

	image_format(img, 128 * MiB + 5000, &p);
	if (sbi_open(&s, img->path, 0, err, sizeof(err)))
		fail_msg("sbi_open: %s", err);
	check_geometry(&s.sb, 128 * MiB + 5000, 16384, 128 * MiB / 16384);
	assert_int_equal(s.bshift, 14);
	assert_int_equal(s.bbm.nset, s.sb.data_start + 4);
	assert_int_equal(alloc_free_blocks(&s.alloc), s.sb.backup_sb - s.sb.data_start - 3);
	sbi_close(&s);
}

static void test_format_too_small(void **state)
{
	struct image *img = *state;
	struct mkfs_params p = { 0 };
	struct media m;
	char err[256] = "";

	image_create(img, 128 * KiB);
	assert_int_equal(media_open(&m, img->path, 0, err, sizeof(err)), 0);
	assert_int_equal(super_format(&m, &p, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "too small"));
	/* Nothing was written: the image is still all zeroes. */
	for (uint64_t i = 0; i < m.size; i++)
		if (m.base[i])
			fail_msg("byte %llu written by a failed format", (unsigned long long)i);
	media_close(&m);
}

/* XOR one byte of the image file (sbi_open takes the image's exclusive lock: no mapping here). */
static void patch_byte(const struct image *img, uint64_t off, uint8_t x)
{
	int fd = open(img->path, O_RDWR | O_CLOEXEC);
	uint8_t b;

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &b, 1, (off_t)off), 1);
	b ^= x;
	assert_int_equal(pwrite(fd, &b, 1, (off_t)off), 1);
	close(fd);
}

/* Corruptions that sbi_open must refuse, with a message. */
static void test_open_rejects_corruption(void **state)
{
	struct image *img = *state;
	struct sbi s;
	char err[256];

	image_format(img, 64 * MiB, NULL);
	assert_int_equal(sbi_open(&s, img->path, 0, err, sizeof(err)), 0);
	uint64_t bbm = s.sb.bbitmap_start * s.bs;
	sbi_close(&s);

	/* A flipped superblock byte (in the label). */
	patch_byte(img, offsetof(struct daxfs_super, label) + 10, 0x20);
	err[0] = 0;
	assert_int_equal(sbi_open(&s, img->path, 0, err, sizeof(err)), -EUCLEAN);
	assert_non_null(strstr(err, "checksum"));
	assert_non_null(strstr(err, img->path));
	patch_byte(img, offsetof(struct daxfs_super, label) + 10, 0x20);

	/* A block bitmap that does not cover the metadata: block 3 is in the journal. */
	patch_byte(img, bbm, 0x08);
	err[0] = 0;
	assert_int_equal(sbi_open(&s, img->path, 0, err, sizeof(err)), -EUCLEAN);
	assert_non_null(strstr(err, "bitmap"));
	patch_byte(img, bbm, 0x08);

	/* Repaired: opens again. */
	assert_int_equal(sbi_open(&s, img->path, 0, err, sizeof(err)), 0);
	sbi_close(&s);

	/* Not a file system at all. */
	patch_byte(img, 0, 0xff);
	err[0] = 0;
	assert_int_equal(sbi_open(&s, img->path, 0, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "magic"));
}

/* A 64 GiB image formats in well under a second and writes only a few MiB: metadata only. */
static void test_format_large_sparse(void **state)
{
	struct image *img = *state;
	struct mkfs_params p = { 0 };
	struct media m;
	struct timespec t0, t1;
	struct stat st;
	char err[256] = "";

	image_create(img, 64 * GiB);
	assert_int_equal(media_open(&m, img->path, 0, err, sizeof(err)), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int ret = super_format(&m, &p, err, sizeof(err));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	media_close(&m);
	if (ret)
		fail_msg("super_format: %s", err);
	double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	if (secs >= 1.0)
		fail_msg("formatting 64 GiB took %.3f s", secs);
	assert_int_equal(stat(img->path, &st), 0);
	assert_int_equal((uint64_t)st.st_size, 64 * GiB);
	/* The bitmaps of 64 GiB are 2.5 MiB: allow those and a little more, never the data area. */
	uint64_t allocated = (uint64_t)st.st_blocks * 512;
	print_message("64 GiB format: %.3f s, %llu KiB of the image allocated\n", secs,
		      (unsigned long long)(allocated >> 10));
	if (allocated > 6 * MiB)
		fail_msg("formatting 64 GiB allocated %llu KiB of the image", (unsigned long long)(allocated >> 10));

	/* And it opens. */
	struct sbi s;
	if (sbi_open(&s, img->path, 0, err, sizeof(err)))
		fail_msg("sbi_open: %s", err);
	assert_int_equal(s.sb.nblocks, 16 * MiB);
	assert_int_equal(alloc_free_blocks(&s.alloc), s.sb.backup_sb - s.sb.data_start - 3);
	/* The free space is one extent: the whole data area after the slot heads. */
	assert_int_equal(s.alloc.nextents, 1);
	sbi_close(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layout_default_1g),
		cmocka_unit_test(test_layout_sizes),
		cmocka_unit_test(test_layout_explicit_params),
		cmocka_unit_test(test_layout_rejects),
		cmocka_unit_test(test_validate_ok),
		cmocka_unit_test(test_validate_header),
		cmocka_unit_test(test_validate_truncated),
		cmocka_unit_test(test_validate_regions),
		cmocka_unit_test_setup_teardown(test_format_and_open, setup_fmt, image_teardown),
		cmocka_unit_test_setup_teardown(test_format_custom_block_size, setup_fmt, image_teardown),
		cmocka_unit_test_setup_teardown(test_format_too_small, setup_fmt, image_teardown),
		cmocka_unit_test_setup_teardown(test_open_rejects_corruption, setup_fmt, image_teardown),
		cmocka_unit_test_setup_teardown(test_format_large_sparse, setup_fmt, image_teardown),
	};

	return cmocka_run_group_tests_name("super", tests, NULL, NULL);
}
