/* SPDX-License-Identifier: MIT */
/*
 * file.c: file data through the extent map.  Writes and reads (merging appends, in-place overwrites,
 * holes), large writes placed 2 MiB congruent, truncate (in several transactions when it frees many
 * extents), punch hole and SEEK_DATA/SEEK_HOLE, preallocation and ZERO_RANGE, offsets up to the
 * maximum file size, 16 KiB blocks, and a full device (short writes, ENOSPC).
 */
#include <linux/falloc.h>
#include <sys/statvfs.h>

#include "fs_fixture.h"
#include "xattr.h"

static void test_write_read_merge(void **state)
{
	struct fixture *f = *state;
	struct fs *fs = f->fs;
	const uint64_t nblk = 1000;
	char *buf = malloc(nblk * BS), *back = malloc(nblk * BS + 100);

	assert_non_null(buf);
	assert_non_null(back);
	uint64_t ino = mkfile(fs, ROOT, "seq");
	uint64_t free0 = bfree(fs);
	struct inode *ip = openi(fs, ino);
	/* Block-sized appends: each extends the previous extent in place. */
	for (uint64_t b = 0; b < nblk; b++) {
		block_pattern(buf + b * BS, b, 1);
		wr(fs, ip, b * BS, buf + b * BS, BS);
	}
	assert_int_equal(emap_count(ip), 1);
	struct stat st = stat_of(fs, ino);
	assert_int_equal(st.st_size, nblk * BS);
	assert_int_equal(st.st_blocks, nblk * (BS / 512));
	assert_int_equal(bfree(fs), free0 - nblk);
	assert_int_equal(rd(fs, ip, 0, back, nblk * BS + 100), nblk * BS);	/* stops at EOF */
	assert_memory_equal(back, buf, nblk * BS);

	/* Overwrites in place: no allocation; unaligned, across a block boundary, from a gather list. */
	memcpy(buf + 4090, "0123456789", 10);
	wr(fs, ip, 4090, "0123456789", 10);
	struct iovec iov[3] = { { "ab", 2 }, { "", 0 }, { "cdefg", 5 } };
	assert_int_equal(file_write(fs, ip, 3 * BS - 3, iov, 3), 7);
	memcpy(buf + 3 * BS - 3, "abcdefg", 7);
	assert_int_equal(bfree(fs), free0 - nblk);
	assert_int_equal(rd(fs, ip, 0, back, nblk * BS), nblk * BS);
	assert_memory_equal(back, buf, nblk * BS);
	assert_int_equal(rd(fs, ip, 4088, back, 14), 14);
	assert_memory_equal(back, buf + 4088, 14);
	/* Reads at and past EOF return nothing. */
	assert_int_equal(rd(fs, ip, nblk * BS, back, 10), 0);
	assert_int_equal(rd(fs, ip, nblk * BS + 5000, back, 10), 0);

	/* A write far past EOF leaves a hole that reads as zeroes. */
	const uint64_t far = 10 * MiB + 100;
	wr(fs, ip, far, "tail", 4);
	assert_int_equal(stat_of(fs, ino).st_size, far + 4);
	assert_int_equal(emap_count(ip), 2);
	assert_int_equal(bfree(fs), free0 - nblk - 1);
	assert_int_equal(rd(fs, ip, nblk * BS - 10, back, 20000), 20000);
	assert_memory_equal(back, buf + nblk * BS - 10, 10);
	assert_true(all_zero(back + 10, 20000 - 10));
	/* The rest of the new block around "tail" is zero too. */
	assert_int_equal(rd(fs, ip, far - 100, back, 104), 104);
	assert_true(all_zero(back, 100));
	assert_memory_equal(back + 100, "tail", 4);
	closei(fs, ip);

	remount(f);
	fs = f->fs;
	ip = openi(fs, ino);
	assert_int_equal(emap_count(ip), 2);
	assert_int_equal(bfree(fs), free0 - nblk - 1);
	assert_int_equal(rd(fs, ip, 0, back, nblk * BS), nblk * BS);
	assert_memory_equal(back, buf, nblk * BS);
	assert_int_equal(rd(fs, ip, far, back, 100), 4);
	assert_memory_equal(back, "tail", 4);
	closei(fs, ip);
	free(buf);
	free(back);
}

/* Large writes are placed so that file and media offsets agree modulo 2 MiB (huge mappings). */
static void test_large_write_aligned(void **state)
{
	struct fixture *f = *state;
	struct fs *fs = f->fs;
	const size_t len = 8 * MiB;
	char *buf = malloc(len), *back = malloc(len);
	const uint64_t align = DAXFS_HUGE_ALIGN / BS;

	assert_non_null(buf);
	assert_non_null(back);
	/* Disturb the allocator first so that "aligned" cannot happen by accident. */
	uint64_t small = mkfile(fs, ROOT, "small");
	struct inode *ip = openi(fs, small);
	wr(fs, ip, 0, "x", 1);
	closei(fs, ip);

	for (size_t i = 0; i < len; i += BS)
		block_pattern(buf + i, i / BS, 2);
	uint64_t ino = mkfile(fs, ROOT, "big");
	ip = openi(fs, ino);
	wr(fs, ip, 0, buf, len);
	struct emap_cursor c;
	struct daxfs_extent e;
	uint64_t mapped = 0;
	for (bool more = emap_seek(ip, 0, &c, &e); more; more = emap_next(ip, &c, &e)) {
		if (e.pblk % align != e.lblk % align)
			fail_msg("extent %llu+%u at media block %llu is not 2 MiB congruent",
				 (unsigned long long)e.lblk, e.len, (unsigned long long)e.pblk);
		mapped += e.len;
	}
	assert_int_equal(mapped, len / BS);
	assert_true(emap_count(ip) <= 2);
	assert_int_equal(rd(fs, ip, 0, back, len), len);
	assert_memory_equal(back, buf, len);

	/* Starting mid-file, at a block that is not a multiple of 2 MiB. */
	uint64_t ino2 = mkfile(fs, ROOT, "big2");
	struct inode *ip2 = openi(fs, ino2);
	wr(fs, ip2, 3 * MiB + 5 * BS, buf, 4 * MiB);
	assert_true(emap_seek(ip2, 0, &c, &e));
	assert_int_equal(e.lblk, (3 * MiB + 5 * BS) / BS);
	assert_int_equal(e.pblk % align, e.lblk % align);
	closei(fs, ip2);
	closei(fs, ip);
	free(buf);
	free(back);
}

/* The smallest journal (256 KiB): big operations must split into several transactions. */
static int setup_small_journal(void **state)
{
	return mount_fixture(state, "fs-smalljournal", 256 * MiB, &(struct mkfs_params){ .journal_bytes = 256 * KiB });
}

/*
 * Freeing a file with more extents than one transaction can carry: truncate and unlink go in
 * several transactions, and every block comes back.
 */
static void test_free_many_extents(void **state)
{
	struct fixture *f = *state;
	struct fs *fs = f->fs;
	const uint64_t nblk = 32000;
	char buf[BS];

	memset(buf, 0x42, sizeof(buf));
	uint64_t a = mkfile(fs, ROOT, "many-a");
	uint64_t b = mkfile(fs, ROOT, "many-b");
	uint64_t free0 = bfree(fs);
	struct inode *ia = openi(fs, a), *ib = openi(fs, b);
	/* Two files interleaved block by block: neither can grow in place, both fragment. */
	for (uint64_t k = 0; k < nblk / 2; k++) {
		wr(fs, ia, 2 * k * BS, buf, BS);
		wr(fs, ib, k * BS, buf, BS);
	}
	uint64_t ea = emap_count(ia);
	print_message("interleaved files: %llu and %llu extents, %u and %u leaves\n", (unsigned long long)ea,
		      (unsigned long long)emap_count(ib), ia->map.nleaves, ib->map.nleaves);
	assert_true(ea > 10000);
	/* Cut a to half: thousands of extents in one call, more than one transaction holds. */
	struct stat attr = { .st_size = (off_t)(nblk / 2 * BS) };
	uint64_t commits = fs->sbi.journal.commits;
	assert_int_equal(namei_setattr(fs, a, &attr, NAMEI_SET_SIZE, NULL, NULL), 0);
	assert_true(fs->sbi.journal.commits - commits > 1);
	uint64_t left = emap_count(ia);
	assert_true(left < ea && left > 0);
	assert_int_equal(ia->d.blocks, nblk / 4 + ia->map.nleaves - 1);
	closei(fs, ia);
	closei(fs, ib);
	remount(f);
	fs = f->fs;
	ia = openi(fs, a);
	assert_int_equal(emap_count(ia), left);
	closei(fs, ia);
	/* Unlink both (b still open while a goes). */
	ib = openi(fs, b);
	assert_int_equal(namei_unlink(fs, ROOT, "many-a"), 0);
	assert_int_equal(namei_unlink(fs, ROOT, "many-b"), 0);
	closei(fs, ib);
	assert_int_equal(bfree(fs), free0);
	remount(f);
	assert_int_equal(bfree(f->fs), free0);
}

static void test_punch_holes(void **state)
{
	struct fixture *f = *state;
	struct fs *fs = f->fs;
	const uint64_t nblk = 100;
	const int mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
	char *buf = malloc(nblk * BS), *back = malloc(nblk * BS);
	uint64_t pos;

	assert_non_null(buf);
	assert_non_null(back);
	for (uint64_t b = 0; b < nblk; b++)
		block_pattern(buf + b * BS, b, 5);
	uint64_t ino = mkfile(fs, ROOT, "holes");
	struct inode *ip = openi(fs, ino);
	wr(fs, ip, 0, buf, nblk * BS);
	assert_int_equal(emap_count(ip), 1);
	uint64_t free0 = bfree(fs);

	/* Whole blocks in the middle: the extent splits in two, the blocks come back. */
	assert_int_equal(namei_fallocate(fs, ip, mode, 10 * BS, 10 * BS, NULL), 0);
	memset(buf + 10 * BS, 0, 10 * BS);
	assert_int_equal(emap_count(ip), 2);
	assert_int_equal(bfree(fs), free0 + 10);
	assert_int_equal(stat_of(fs, ino).st_blocks, (nblk - 10) * (BS / 512));
	assert_int_equal(namei_fallocate(fs, ip, mode, 50 * BS, 10 * BS, NULL), 0);
	memset(buf + 50 * BS, 0, 10 * BS);
	assert_int_equal(emap_count(ip), 3);
	/* Inside one block: zeroes, no unmapping. */
	assert_int_equal(namei_fallocate(fs, ip, mode, 70 * BS + 100, 200, NULL), 0);
	memset(buf + 70 * BS + 100, 0, 200);
	assert_int_equal(emap_count(ip), 3);
	/* Partial blocks at both ends, whole ones between. */
	assert_int_equal(namei_fallocate(fs, ip, mode, 30 * BS + 2048, 3 * BS, NULL), 0);
	memset(buf + 30 * BS + 2048, 0, 3 * BS);
	assert_int_equal(emap_count(ip), 4);
	assert_int_equal(bfree(fs), free0 + 22);
	/* Punching a hole again, or past EOF, changes nothing. */
	assert_int_equal(namei_fallocate(fs, ip, mode, 12 * BS, 4 * BS, NULL), 0);
	assert_int_equal(namei_fallocate(fs, ip, mode, 200 * BS, 4 * BS, NULL), 0);
	assert_int_equal(bfree(fs), free0 + 22);
	assert_int_equal(stat_of(fs, ino).st_size, nblk * BS);
	assert_int_equal(rd(fs, ip, 0, back, nblk * BS), nblk * BS);
	assert_memory_equal(back, buf, nblk * BS);

	assert_int_equal(file_lseek(fs, ip, 0, SEEK_HOLE, &pos), 0);
	assert_int_equal(pos, 10 * BS);
	assert_int_equal(file_lseek(fs, ip, 10 * BS, SEEK_DATA, &pos), 0);
	assert_int_equal(pos, 20 * BS);
	assert_int_equal(file_lseek(fs, ip, 25 * BS + 3, SEEK_DATA, &pos), 0);
	assert_int_equal(pos, 25 * BS + 3);
	assert_int_equal(file_lseek(fs, ip, 25 * BS, SEEK_HOLE, &pos), 0);
	assert_int_equal(pos, 31 * BS);
	assert_int_equal(file_lseek(fs, ip, 55 * BS, SEEK_DATA, &pos), 0);
	assert_int_equal(pos, 60 * BS);
	assert_int_equal(file_lseek(fs, ip, 95 * BS, SEEK_HOLE, &pos), 0);
	assert_int_equal(pos, nblk * BS);	/* the implicit hole at EOF */
	assert_int_equal(file_lseek(fs, ip, nblk * BS, SEEK_DATA, &pos), -ENXIO);
	assert_int_equal(file_lseek(fs, ip, 0, SEEK_SET, &pos), -EINVAL);

	/* Modes the kernel would pass and we do not support. */
	assert_int_equal(namei_fallocate(fs, ip, FALLOC_FL_PUNCH_HOLE, 0, BS, NULL), -EOPNOTSUPP);
	assert_int_equal(namei_fallocate(fs, ip, FALLOC_FL_COLLAPSE_RANGE, 0, BS, NULL), -EOPNOTSUPP);
	assert_int_equal(namei_fallocate(fs, ip, mode, 0, 0, NULL), -EINVAL);
	closei(fs, ip);

	remount(f);
	fs = f->fs;
	ip = openi(fs, ino);
	assert_int_equal(emap_count(ip), 4);
	assert_int_equal(bfree(fs), free0 + 22);
	assert_int_equal(rd(fs, ip, 0, back, nblk * BS), nblk * BS);
	assert_memory_equal(back, buf, nblk * BS);
	/* Everything: no blocks left, size unchanged. */
	assert_int_equal(namei_fallocate(fs, ip, mode, 0, nblk * BS, NULL), 0);
	assert_int_equal(emap_count(ip), 0);
	assert_int_equal(stat_of(fs, ino).st_blocks, 0);
	assert_int_equal(stat_of(fs, ino).st_size, nblk * BS);
	assert_int_equal(bfree(fs), free0 + nblk);
	closei(fs, ip);
	free(buf);
	free(back);
}

static void test_fallocate(void **state)
{
	struct fixture *f = *state;
	struct fs *fs = f->fs;
	char *back = malloc(2 * MiB);
	uint64_t pos;

	assert_non_null(back);
	uint64_t ino = mkfile(fs, ROOT, "prealloc");
	uint64_t free0 = bfree(fs);
	struct inode *ip = openi(fs, ino);
	assert_int_equal(namei_fallocate(fs, ip, 0, 0, 1 * MiB, NULL), 0);
	struct stat st = stat_of(fs, ino);
	assert_int_equal(st.st_size, 1 * MiB);
	assert_int_equal(st.st_blocks, MiB / 512);
	assert_int_equal(bfree(fs), free0 - MiB / BS);
	/* Preallocated blocks read as zeroes (whatever the media held) and count as data. */
	assert_int_equal(rd(fs, ip, 0, back, MiB), MiB);
	assert_true(all_zero(back, MiB));
	assert_int_equal(file_lseek(fs, ip, 0, SEEK_HOLE, &pos), 0);
	assert_int_equal(pos, MiB);

	/* Beyond EOF with KEEP_SIZE: blocks, no size. */
	assert_int_equal(namei_fallocate(fs, ip, FALLOC_FL_KEEP_SIZE, MiB, MiB, NULL), 0);
	assert_int_equal(stat_of(fs, ino).st_size, MiB);
	assert_int_equal(stat_of(fs, ino).st_blocks, 2 * MiB / 512);
	/* Overlapping what is mapped allocates only the holes. */
	assert_int_equal(namei_fallocate(fs, ip, 0, MiB / 2, 2 * MiB, NULL), 0);
	assert_int_equal(stat_of(fs, ino).st_size, MiB / 2 + 2 * MiB);
	assert_int_equal(stat_of(fs, ino).st_blocks, (MiB / 2 + 2 * MiB) / 512);
	assert_int_equal(bfree(fs), free0 - (MiB / 2 + 2 * MiB) / BS);

	/* ZERO_RANGE over written data. */
	char data[3 * BS];
	memset(data, 0x77, sizeof(data));
	wr(fs, ip, 0, data, sizeof(data));
	assert_int_equal(namei_fallocate(fs, ip, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, 100, BS, NULL), 0);
	assert_int_equal(rd(fs, ip, 0, back, 3 * BS), 3 * BS);
	assert_true(back[99] == 0x77 && back[100] == 0 && back[100 + BS - 1] == 0 && back[100 + BS] == 0x77);
	assert_true(all_zero(back + 100, BS));

	/* Errors: bad modes, zero length, not a regular file, more than the free space. */
	assert_int_equal(namei_fallocate(fs, ip, FALLOC_FL_ZERO_RANGE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0,
				      BS, NULL), -EOPNOTSUPP);
	assert_int_equal(namei_fallocate(fs, ip, 0, 0, 0, NULL), -EINVAL);
	assert_int_equal(namei_fallocate(fs, ip, 0, DAXFS_MAX_FILE_SIZE, 1, NULL), -EFBIG);
	uint64_t before = bfree(fs);
	assert_int_equal(namei_fallocate(fs, ip, 0, 0, 1 * GiB, NULL), -ENOSPC);
	assert_int_equal(bfree(fs), before);	/* nothing allocated */
	assert_int_equal(stat_of(fs, ino).st_size, MiB / 2 + 2 * MiB);
	closei(fs, ip);
	struct inode *dp = openi(fs, ROOT);
	assert_int_equal(namei_fallocate(fs, dp, 0, 0, BS, NULL), -EISDIR);
	closei(fs, dp);

	remount(f);
	ip = openi(f->fs, ino);
	assert_int_equal(stat_of(f->fs, ino).st_blocks, (MiB / 2 + 2 * MiB) / 512);
	assert_int_equal(rd(f->fs, ip, 0, back, 2 * MiB), 2 * MiB);
	assert_true(back[99] == 0x77 && back[100] == 0 && back[100 + BS] == 0x77);
	assert_true(all_zero(back + 3 * BS, 2 * MiB - 3 * BS));
	closei(f->fs, ip);
	free(back);
}

static void test_truncate(void **state)
{
	struct fixture *f = *state;
	struct fs *fs = f->fs;
	char data[3 * BS], back[3 * BS];
	struct stat attr, out;

	memset(&attr, 0, sizeof(attr));

	memset(data, 0xaa, sizeof(data));
	uint64_t ino = mkfile(fs, ROOT, "trunc");
	uint64_t free0 = bfree(fs);
	struct inode *ip = openi(fs, ino);
	wr(fs, ip, 0, data, sizeof(data));
	/* Shrink to the middle of block 1, then grow again: the old bytes must not come back. */
	attr.st_size = 5000;
	assert_int_equal(namei_setattr(fs, ino, &attr, NAMEI_SET_SIZE, &out, NULL), 0);
	assert_int_equal(out.st_size, 5000);
	assert_int_equal(out.st_blocks, 2 * (BS / 512));
	assert_int_equal(bfree(fs), free0 - 2);
	attr.st_size = 3 * BS;
	assert_int_equal(namei_setattr(fs, ino, &attr, NAMEI_SET_SIZE, &out, NULL), 0);
	assert_int_equal(out.st_blocks, 2 * (BS / 512));	/* growing allocates nothing */
	assert_int_equal(rd(fs, ip, 0, back, sizeof(back)), sizeof(back));
	assert_memory_equal(back, data, 5000);
	assert_true(all_zero(back + 5000, sizeof(back) - 5000));
	/* Re-extending by writing past EOF in the same block: the gap is zero. */
	attr.st_size = 100;
	assert_int_equal(namei_setattr(fs, ino, &attr, NAMEI_SET_SIZE, NULL, NULL), 0);
	wr(fs, ip, 200, "z", 1);
	assert_int_equal(rd(fs, ip, 0, back, 201), 201);
	assert_true(all_zero(back + 100, 100));
	assert_int_equal(back[200], 'z');

	attr.st_size = (off_t)DAXFS_MAX_FILE_SIZE + 1;
	assert_int_equal(namei_setattr(fs, ino, &attr, NAMEI_SET_SIZE, NULL, NULL), -EFBIG);
	attr.st_size = 0;
	assert_int_equal(namei_setattr(fs, ROOT, &attr, NAMEI_SET_SIZE, NULL, NULL), -EISDIR);
	closei(fs, ip);

	/* O_TRUNC empties the file. */
	assert_int_equal(namei_open(fs, ino, O_RDWR | O_TRUNC, &ip, NULL), 0);
	assert_int_equal(stat_of(fs, ino).st_size, 0);
	assert_int_equal(stat_of(fs, ino).st_blocks, 0);
	assert_int_equal(bfree(fs), free0);
	closei(fs, ip);

	/* Mode, owner and times. */
	memset(&attr, 0, sizeof(attr));
	attr.st_mode = 0600;
	attr.st_uid = 42;
	attr.st_gid = 43;
	attr.st_mtim.tv_sec = 1000000;
	attr.st_mtim.tv_nsec = 5;
	assert_int_equal(namei_setattr(fs, ino, &attr, NAMEI_SET_MODE | NAMEI_SET_UID | NAMEI_SET_GID | NAMEI_SET_MTIME, &out, NULL), 0);
	assert_int_equal(out.st_mode, S_IFREG | 0600);
	assert_int_equal(out.st_uid, 42);
	assert_int_equal(out.st_mtim.tv_sec, 1000000);

	remount(f);
	struct stat st = stat_of(f->fs, ino);
	assert_int_equal(st.st_size, 0);
	assert_int_equal(st.st_mode, S_IFREG | 0600);
	assert_int_equal(st.st_uid, 42);
	assert_int_equal(st.st_gid, 43);
	assert_int_equal(st.st_mtim.tv_sec, 1000000);
	assert_int_equal(st.st_mtim.tv_nsec, 5);
}

/* Offsets far beyond 4 GiB and up to the maximum file size. */
static void test_huge_offsets(void **state)
{
	struct fixture *f = *state;
	struct fs *fs = f->fs;
	char back[64];
	uint64_t pos;

	uint64_t ino = mkfile(fs, ROOT, "huge");
	struct inode *ip = openi(fs, ino);
	const uint64_t far = 5ull << 40;	/* 5 TiB */
	wr(fs, ip, far + 10, "far away", 8);
	assert_int_equal(stat_of(fs, ino).st_size, far + 18);
	assert_int_equal(stat_of(fs, ino).st_blocks, BS / 512);
	assert_int_equal(file_lseek(fs, ip, 0, SEEK_DATA, &pos), 0);
	assert_int_equal(pos, far);
	assert_int_equal(file_lseek(fs, ip, far, SEEK_HOLE, &pos), 0);
	assert_int_equal(pos, far + 18);
	/* The last byte a file can hold; one more is EFBIG. */
	wr(fs, ip, DAXFS_MAX_FILE_SIZE - 1, "z", 1);
	assert_int_equal(stat_of(fs, ino).st_size, DAXFS_MAX_FILE_SIZE);
	struct iovec iov = { "zz", 2 };
	assert_int_equal(file_write(fs, ip, DAXFS_MAX_FILE_SIZE, &iov, 1), -EFBIG);
	/* A write that would cross the limit is cut at it. */
	assert_int_equal(file_write(fs, ip, DAXFS_MAX_FILE_SIZE - 1, &iov, 1), 1);
	closei(fs, ip);
	remount(f);
	fs = f->fs;
	ip = openi(fs, ino);
	assert_int_equal(rd(fs, ip, far, back, 18), 18);
	assert_true(all_zero(back, 10));
	assert_memory_equal(back + 10, "far away", 8);
	assert_int_equal(rd(fs, ip, DAXFS_MAX_FILE_SIZE - 1, back, 10), 1);
	assert_int_equal(back[0], 'z');
	assert_int_equal(emap_count(ip), 2);
	/* Truncating down frees both ends. */
	struct stat attr = { .st_size = 1 };
	assert_int_equal(namei_setattr(fs, ino, &attr, NAMEI_SET_SIZE, NULL, NULL), 0);
	assert_int_equal(emap_count(ip), 0);
	assert_int_equal(stat_of(fs, ino).st_blocks, 0);
	closei(fs, ip);
}

/* The same operations on a file system with 16 KiB blocks: nothing may assume 4 KiB. */
static int setup_16k(void **state)
{
	return mount_fixture(state, "fs-16k", 128 * MiB, &(struct mkfs_params){ .block_size = 16384 });
}

static unsigned char byte_at(uint64_t off)
{
	return (unsigned char)((off * 2654435761u) >> 13);
}

static void test_block_size_16k(void **state)
{
	struct fixture *f = *state;
	struct fs *fs = f->fs;
	const uint64_t bs = 16384, nblk = 1600;	/* 800 extents: more than one extent block holds */
	const int mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
	char *buf = malloc(bs * 4), *back = malloc(nblk * bs);

	assert_non_null(buf);
	assert_non_null(back);
	assert_int_equal(fs_bs(fs), bs);
	uint64_t ino = mkfile(fs, ROOT, "f");
	uint64_t free0 = bfree(fs);
	struct inode *ip = openi(fs, ino);
	/* Every other block: 800 one-block extents. */
	for (uint64_t b = 0; b < nblk; b += 2) {
		for (uint64_t i = 0; i < bs; i++)
			buf[i] = (char)byte_at(b * bs + i);
		wr(fs, ip, b * bs, buf, bs);
	}
	assert_int_equal(emap_count(ip), nblk / 2);
	assert_true(ip->map.nleaves > 2);
	uint64_t eblocks = ip->map.nleaves - 1;
	assert_int_equal(stat_of(fs, ino).st_blocks, (nblk / 2 + eblocks) * (bs / 512));
	assert_int_equal(bfree(fs), free0 - nblk / 2 - eblocks);
	/* Unaligned write across three blocks (one of them a hole). */
	for (uint64_t i = 0; i < 2 * bs + 100; i++)
		buf[i] = (char)byte_at(7 * bs + 50 + i);
	wr(fs, ip, 7 * bs + 50, buf, 2 * bs + 100);
	/* Punch inside an extent block's range and partial blocks. */
	assert_int_equal(namei_fallocate(fs, ip, mode, 500 * bs + 1000, 300 * bs, NULL), 0);
	closei(fs, ip);

	remount(f);
	fs = f->fs;
	ip = openi(fs, ino);
	uint64_t size = stat_of(fs, ino).st_size;
	assert_int_equal(size, (nblk - 1) * bs);
	assert_int_equal(rd(fs, ip, 0, back, nblk * bs), size);
	for (uint64_t off = 0; off < size; off++) {
		uint64_t b = off / bs;
		bool written = b % 2 == 0 || (off >= 7 * bs + 50 && off < 9 * bs + 150);
		bool punched = off >= 500 * bs + 1000 && off < 800 * bs + 1000;
		unsigned char want = written && !punched ? byte_at(off) : 0;

		if ((unsigned char)back[off] != want)
			fail_msg("byte %llu (block %llu): %#x, want %#x", (unsigned long long)off,
				 (unsigned long long)b, (unsigned char)back[off], want);
	}
	closei(fs, ip);

	/* A directory of 16 KiB blocks, and an attribute that would not fit a 4 KiB block. */
	uint64_t d = mkdir_(fs, ROOT, "dir");
	char name[32];
	for (int i = 0; i < 3000; i++) {
		snprintf(name, sizeof(name), "entry%d", i);
		mkfile(fs, d, name);
	}
	assert_int_equal(stat_of(fs, d).st_size % bs, 0);
	char *val = calloc(1, 10000);
	assert_non_null(val);
	memset(val, 'v', 10000);
	ip = openi(fs, ino);
	assert_int_equal(xattr_set(fs, ip, "user.big", val, 10000, 0), 0);
	closei(fs, ip);
	remount(f);
	fs = f->fs;
	for (int i = 0; i < 3000; i += 7) {
		snprintf(name, sizeof(name), "entry%d", i);
		lookup(fs, d, name);
	}
	ip = openi(fs, ino);
	assert_int_equal(xattr_get(fs, ip, "user.big", back, 20000), 10000);
	assert_memory_equal(back, val, 10000);
	closei(fs, ip);
	/* Everything goes back. */
	assert_int_equal(namei_unlink(fs, ROOT, "f"), 0);
	assert_int_equal(bfree(fs), free0 - (uint64_t)stat_of(fs, d).st_blocks / (bs / 512));
	free(val);
	free(buf);
	free(back);
}

static int setup_small(void **state)
{
	return mount_fixture(state, "fs-small", 16 * MiB, NULL);
}

static void test_enospc(void **state)
{
	struct fixture *f = *state;
	struct fs *fs = f->fs;
	const size_t len = 32 * MiB;	/* twice the image */
	char *buf = malloc(len), *back = malloc(len);

	assert_non_null(buf);
	assert_non_null(back);
	for (size_t i = 0; i < len; i += BS)
		block_pattern(buf + i, i / BS, 7);
	uint64_t ino = mkfile(fs, ROOT, "filler");
	mkfile(fs, ROOT, "second");	/* the root directory block exists before space runs out */
	uint64_t free0 = bfree(fs);
	struct statvfs sv;
	assert_int_equal(namei_statfs(fs, &sv), 0);
	uint64_t avail = sv.f_bavail;
	assert_true(avail < free0);	/* the metadata reserve */

	/* A write larger than the space is short, not an error, and ends on a block boundary. */
	struct inode *ip = openi(fs, ino);
	struct iovec iov = { buf, len };
	ssize_t n = file_write(fs, ip, 0, &iov, 1);
	print_message("16 MiB image: %llu blocks available, short write of %zd bytes, %llu extents\n",
		      (unsigned long long)avail, n, (unsigned long long)emap_count(ip));
	assert_true(n > 0);
	assert_int_equal(n % BS, 0);
	assert_true((uint64_t)n <= avail * BS);
	assert_true((uint64_t)n >= (avail - 64) * BS);	/* nearly everything was usable */
	assert_int_equal(stat_of(fs, ino).st_size, n);
	assert_int_equal(namei_statfs(fs, &sv), 0);
	assert_int_equal(sv.f_bavail, 0);
	/* Now nothing: -ENOSPC, the file unchanged. */
	iov.iov_len = BS;
	assert_int_equal(file_write(fs, ip, (uint64_t)n, &iov, 1), -ENOSPC);
	assert_int_equal(namei_fallocate(fs, ip, 0, (uint64_t)n, BS, NULL), -ENOSPC);
	assert_int_equal(stat_of(fs, ino).st_size, n);
	/* Overwriting allocated blocks still works. */
	wr(fs, ip, 0, buf, BS);
	assert_int_equal(rd(fs, ip, 0, back, (size_t)n), n);
	assert_memory_equal(back, buf, (size_t)n);
	/* Metadata that needs no new block still works; the other file can take no data. */
	struct entry e;
	assert_int_equal(namei_mknod(fs, &root_cred, ROOT, "third", S_IFREG | 0644, 0, &e), 0);
	forget(fs, e.ino);
	struct inode *ip2 = openi(fs, lookup(fs, ROOT, "second"));
	assert_int_equal(file_write(fs, ip2, 0, &iov, 1), -ENOSPC);
	closei(fs, ip2);
	closei(fs, ip);

	remount(f);
	fs = f->fs;
	assert_int_equal(stat_of(fs, ino).st_size, n);
	ip = openi(fs, ino);
	assert_int_equal(rd(fs, ip, 0, back, (size_t)n), n);
	assert_memory_equal(back, buf, (size_t)n);
	closei(fs, ip);
	/* Deleting the file gives everything back. */
	assert_int_equal(namei_unlink(fs, ROOT, "filler"), 0);
	assert_int_equal(bfree(fs), free0);
	ip = openi(fs, lookup(fs, ROOT, "second"));
	wr(fs, ip, 0, buf, 4 * MiB);
	closei(fs, ip);
	free(buf);
	free(back);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_write_read_merge),
		T(test_large_write_aligned),
		cmocka_unit_test_setup_teardown(test_free_many_extents, setup_small_journal, teardown),
		T(test_punch_holes),
		T(test_fallocate),
		T(test_truncate),
		T(test_huge_offsets),
		cmocka_unit_test_setup_teardown(test_block_size_16k, setup_16k, teardown),
		cmocka_unit_test_setup_teardown(test_enospc, setup_small, teardown),
	};

	/* UNIT_FILTER=test_name (cmocka's glob) runs a subset while debugging. */
	if (getenv("UNIT_FILTER"))
		cmocka_set_test_filter(getenv("UNIT_FILTER"));
	return cmocka_run_group_tests_name("file", tests, NULL, NULL);
}
