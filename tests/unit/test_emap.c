/* SPDX-License-Identifier: MIT */
/*
 * emap.c: extent maps.  Thousands of extents in the inline slots and a chain of extent blocks,
 * punched and truncated across leaves and reloaded from the media; holes filled in so that extents
 * continuing each other merge; emap_insert on a fixed layout (neighbours merge across leaves, empty
 * leaves go); splits of a full inline leaf; seek, next and the placement goal; a damaged extent block
 * makes the inode EIO (reported).
 */
#include <linux/falloc.h>

#include "fs_fixture.h"

/* Check file contents: blocks in `present` carry pattern(tag), the others read as zeroes. */
static void check_sparse(struct fs *fs, struct inode *ip, uint64_t nblk, const uint8_t *present, unsigned tag)
{
	char *back = malloc(nblk * BS), want[BS];
	uint64_t size = ip->d.size < nblk * BS ? ip->d.size : nblk * BS;

	assert_non_null(back);
	assert_int_equal(rd(fs, ip, 0, back, nblk * BS), size);
	memset(back + size, 0, nblk * BS - size);	/* past EOF: as good as a hole */
	for (uint64_t b = 0; b < nblk; b++) {
		if (present[b]) {
			block_pattern(want, b, tag);
			if (memcmp(back + b * BS, want, BS))
				fail_msg("block %llu: wrong data", (unsigned long long)b);
		} else if (!all_zero(back + b * BS, BS)) {
			fail_msg("block %llu: a hole that does not read as zeroes", (unsigned long long)b);
		}
	}
	free(back);
}

static void test_fragmented_file(void **state)
{
	struct fixture *f = *state;
	struct fs *fs = f->fs;
	const uint64_t nblk = 8000;	/* 4000 extents: inline ones, then a chain of extent blocks */
	uint8_t *present = calloc(nblk, 1);
	char buf[BS];

	assert_non_null(present);
	uint64_t ino = mkfile(fs, ROOT, "frag");
	uint64_t free0 = bfree(fs);
	struct inode *ip = openi(fs, ino);
	for (uint64_t b = 0; b < nblk; b += 2) {
		block_pattern(buf, b, 3);
		wr(fs, ip, b * BS, buf, BS);
		present[b] = 1;
	}
	assert_int_equal(emap_count(ip), nblk / 2);
	assert_true(ip->map.nleaves > 1);
	assert_true(ip->d.ext_next != 0);
	uint64_t eblocks = ip->map.nleaves - 1;
	/* The extent blocks are the file's too. */
	assert_int_equal(ip->d.blocks, nblk / 2 + eblocks);
	assert_int_equal(stat_of(fs, ino).st_blocks, (nblk / 2 + eblocks) * (BS / 512));
	assert_int_equal(bfree(fs), free0 - nblk / 2 - eblocks);
	check_sparse(fs, ip, nblk, present, 3);
	/* SEEK_DATA / SEEK_HOLE walk the alternation. */
	uint64_t pos;
	assert_int_equal(file_lseek(fs, ip, 0, SEEK_HOLE, &pos), 0);
	assert_int_equal(pos, BS);
	assert_int_equal(file_lseek(fs, ip, BS, SEEK_DATA, &pos), 0);
	assert_int_equal(pos, 2 * BS);
	assert_int_equal(file_lseek(fs, ip, 5001 * BS + 7, SEEK_DATA, &pos), 0);
	assert_int_equal(pos, 5002 * BS);
	closei(fs, ip);

	remount(f);
	fs = f->fs;
	ip = openi(fs, ino);
	assert_int_equal(emap_count(ip), nblk / 2);
	assert_int_equal(ip->map.nleaves - 1, eblocks);
	assert_int_equal(bfree(fs), free0 - nblk / 2 - eblocks);
	check_sparse(fs, ip, nblk, present, 3);

	/* Punch a range covering many extents and several extent blocks. */
	assert_int_equal(namei_fallocate(fs, ip, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 1000 * BS, 3001 * BS, NULL), 0);
	uint64_t gone = 0;
	for (uint64_t b = 1000; b <= 4000; b++) {
		gone += present[b];
		present[b] = 0;
	}
	assert_int_equal(gone, 1501);	/* the even blocks 1000..4000 */
	assert_int_equal(emap_count(ip), nblk / 2 - gone);
	assert_int_equal(stat_of(fs, ino).st_size, (nblk - 1) * BS);	/* size kept (last block written: nblk - 2) */
	check_sparse(fs, ip, nblk, present, 3);
	eblocks = ip->map.nleaves - 1;
	assert_int_equal(ip->d.blocks, nblk / 2 - gone + eblocks);
	assert_int_equal(bfree(fs), free0 - (nblk / 2 - gone) - eblocks);
	closei(fs, ip);

	remount(f);
	fs = f->fs;
	ip = openi(fs, ino);
	assert_int_equal(emap_count(ip), nblk / 2 - gone);
	check_sparse(fs, ip, nblk, present, 3);
	assert_int_equal(bfree(fs), free0 - (nblk / 2 - gone) - eblocks);

	/* Truncate to nothing: every data and extent block comes back. */
	struct stat attr = { .st_size = 0 };
	assert_int_equal(namei_setattr(fs, ino, &attr, NAMEI_SET_SIZE, NULL, NULL), 0);
	assert_int_equal(emap_count(ip), 0);
	assert_int_equal(ip->d.ext_next, 0);
	assert_int_equal(ip->d.blocks, 0);
	assert_int_equal(stat_of(fs, ino).st_blocks, 0);
	assert_int_equal(bfree(fs), free0);
	closei(fs, ip);
	remount(f);
	assert_int_equal(bfree(f->fs), free0);
	ip = openi(f->fs, ino);
	assert_int_equal(emap_count(ip), 0);
	closei(f->fs, ip);
	free(present);
}

/*
 * Filling the holes of a sparse file through file_write: data, accounting and the merge invariant.
 * How far the extents merge is the allocator's business, so the count is only printed: today the
 * extent blocks (best fit, no goal) land in the file's own one-block holes, and each displaced
 * block then takes the lowest hole left, another block's place, so nothing merges at all.
 * test_emap_merge_across_leaves checks merging on a fixed layout.
 */
static void test_fill_holes(void **state)
{
	struct fixture *f = *state;
	struct fs *fs = f->fs;
	const uint64_t nblk = 2000;
	uint8_t *present = calloc(nblk, 1);
	char buf[BS];

	assert_non_null(present);
	uint64_t ino = mkfile(fs, ROOT, "merge");
	uint64_t free0 = bfree(fs);
	struct inode *ip = openi(fs, ino);
	for (uint64_t b = 0; b < nblk; b += 2) {
		block_pattern(buf, b, 4);
		wr(fs, ip, b * BS, buf, BS);
		present[b] = 1;
	}
	assert_int_equal(emap_count(ip), nblk / 2);
	struct emap_cursor c;
	struct daxfs_extent e;
	for (uint64_t b = 1; b < nblk; b += 2) {
		block_pattern(buf, b, 4);
		wr(fs, ip, b * BS, buf, BS);
		present[b] = 1;
	}
	/* Extents that continue each other on the media must have merged, across leaf boundaries too. */
	uint64_t count = emap_count(ip);
	print_message("2000 fragments filled in: %llu extents, %u leaves\n", (unsigned long long)count,
		      ip->map.nleaves);
	struct daxfs_extent prev = { 0 };
	bool more = emap_seek(ip, 0, &c, &e);
	assert_true(more);
	for (uint64_t k = 0; more; k++, prev = e, more = emap_next(ip, &c, &e))
		if (k && prev.lblk + prev.len == e.lblk && prev.pblk + prev.len == e.pblk)
			fail_msg("extents %llu+%u@%llu and %llu+%u@%llu were not merged", (unsigned long long)prev.lblk,
				 prev.len, (unsigned long long)prev.pblk, (unsigned long long)e.lblk, e.len,
				 (unsigned long long)e.pblk);
	/* The file owns its data blocks and its extent blocks, and nothing else is used. */
	uint64_t eblocks = ip->map.nleaves - 1;
	assert_int_equal(ip->d.blocks, nblk + eblocks);
	assert_int_equal(bfree(fs), free0 - nblk - eblocks);
	check_sparse(fs, ip, nblk, present, 4);
	closei(fs, ip);
	remount(f);
	ip = openi(f->fs, ino);
	assert_int_equal(emap_count(ip), count);
	check_sparse(f->fs, ip, nblk, present, 4);
	closei(f->fs, ip);
	free(present);
}

/*
 * emap_insert on a fixed layout: a reserved run of media blocks mapped one block in two, then the
 * gaps filled in random order.  Every insert that continues a neighbour must merge with it (both
 * sides at once when it closes a gap), leaves that empty must go, and the end is one extent.
 */
static void test_emap_merge_across_leaves(void **state)
{
	struct fixture *f = *state;
	struct fs *fs = f->fs;
	const uint64_t n = 3000;
	uint8_t *present = calloc(n + 2, 1);	/* present[k + 1]: block k mapped */
	uint64_t *order = calloc(n / 2, sizeof(*order));
	uint64_t rng = 7, runs = 0, maxleaves = 0;

	assert_non_null(present);
	assert_non_null(order);
	uint64_t ino = mkfile(fs, ROOT, "emap");
	uint64_t free0 = bfree(fs);
	struct inode *ip = openi(fs, ino);
	/* The run is the caller's: extent blocks cannot land in its gaps. */
	struct alloc_req req = { .want = n };
	uint64_t first, got;
	assert_int_equal(sbi_alloc(&fs->sbi, &req, &first, &got), 0);
	assert_int_equal(got, n);

	for (int phase = 0; phase < 2; phase++) {
		for (uint64_t i = 0; i < n / 2; i++)
			order[i] = 2 * i + (uint64_t)phase;
		if (phase == 1) {
			for (uint64_t i = n / 2 - 1; i > 0; i--) {
				uint64_t j = rng_below(&rng, i + 1), t = order[i];

				order[i] = order[j];
				order[j] = t;
			}
		}
		for (uint64_t i = 0; i < n / 2; i++) {
			uint64_t k = order[i];
			struct tx tx;

			tx_init(&tx, &fs->sbi.journal);
			pthread_rwlock_wrlock(&ip->lock);
			assert_int_equal(emap_insert(fs, &tx, ip, k, first + k, 1), 0);
			sbi_use(&fs->sbi, &tx, first + k, 1);
			ip->d.blocks++;
			if ((k + 1) * BS > ip->d.size)
				ip->d.size = (k + 1) * BS;
			emap_log(fs, &tx, ip);
			inode_log(fs, &tx, ip);
			assert_int_equal(sbi_commit(&fs->sbi, &tx), 0);
			pthread_rwlock_unlock(&ip->lock);
			/* The model: a new run, or joined to one neighbour, or closing the gap between two. */
			runs = runs + 1 - present[k] - present[k + 2];
			present[k + 1] = 1;
			if (emap_count(ip) != runs)
				fail_msg("phase %d, block %llu: %llu extents, %llu runs of blocks", phase,
					 (unsigned long long)k, (unsigned long long)emap_count(ip),
					 (unsigned long long)runs);
			if (ip->map.nleaves > maxleaves)
				maxleaves = ip->map.nleaves;
			/* Every extent block left is in use: blocks = data + extent blocks. */
			assert_int_equal(ip->d.blocks, (phase ? n / 2 + i + 1 : i + 1) + ip->map.nleaves - 1);
		}
	}
	assert_true(maxleaves > 5);
	assert_int_equal(emap_count(ip), 1);
	assert_int_equal(ip->map.nleaves, 1);
	assert_int_equal(ip->d.ext_next, 0);
	struct emap_cursor c;
	struct daxfs_extent e;
	assert_true(emap_seek(ip, 0, &c, &e));
	assert_int_equal(e.lblk, 0);
	assert_int_equal(e.pblk, first);
	assert_int_equal(e.len, n);
	assert_int_equal(bfree(fs), free0 - n);	/* the extent blocks all came back */
	closei(fs, ip);
	remount(f);
	fs = f->fs;
	ip = openi(fs, ino);
	assert_int_equal(emap_count(ip), 1);
	assert_int_equal(bfree(fs), free0 - n);
	closei(fs, ip);
	assert_int_equal(namei_unlink(fs, ROOT, "emap"), 0);
	assert_int_equal(bfree(fs), free0);
	free(order);
	free(present);
}

/* Punching inside extents when the inline slots are full forces extent blocks to appear. */
static void test_punch_splits_full_leaf(void **state)
{
	struct fixture *f = *state;
	struct fs *fs = f->fs;
	const uint64_t nblk = 60;
	const int mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
	uint8_t present[60];
	char buf[BS];

	uint64_t ino = mkfile(fs, ROOT, "split");
	struct inode *ip = openi(fs, ino);
	for (uint64_t b = 0; b < nblk; b++) {
		block_pattern(buf, b, 6);
		wr(fs, ip, b * BS, buf, BS);
		present[b] = 1;
	}
	/* Five extents: exactly the inline slots. */
	for (uint64_t k = 1; k <= 4; k++) {
		assert_int_equal(namei_fallocate(fs, ip, mode, k * 10 * BS, BS, NULL), 0);
		present[k * 10] = 0;
	}
	assert_int_equal(emap_count(ip), 5);
	assert_int_equal(ip->d.ext_next, 0);
	/* A sixth, from a split in the middle, then one in the last extent (an append). */
	assert_int_equal(namei_fallocate(fs, ip, mode, 25 * BS, BS, NULL), 0);
	present[25] = 0;
	assert_int_equal(namei_fallocate(fs, ip, mode, 55 * BS, BS, NULL), 0);
	present[55] = 0;
	assert_int_equal(emap_count(ip), 7);
	assert_true(ip->d.ext_next != 0);
	check_sparse(fs, ip, nblk, present, 6);
	for (uint64_t b = 1; b < nblk; b += 7) {
		assert_int_equal(namei_fallocate(fs, ip, mode, b * BS, BS, NULL), 0);
		present[b] = 0;
	}
	check_sparse(fs, ip, nblk, present, 6);
	uint64_t count = emap_count(ip);
	closei(fs, ip);
	remount(f);
	ip = openi(f->fs, ino);
	assert_int_equal(emap_count(ip), count);
	check_sparse(f->fs, ip, nblk, present, 6);
	closei(f->fs, ip);
}

/* emap_goal: where new blocks for lblk go to keep the file contiguous. */
static void test_goal(void **state)
{
	struct fixture *f = *state;
	struct fs *fs = f->fs;
	struct emap_cursor c;
	struct daxfs_extent e;
	char buf[BS];

	memset(buf, 0x31, sizeof(buf));
	uint64_t ino = mkfile(fs, ROOT, "goal");
	struct inode *ip = openi(fs, ino);
	assert_int_equal(emap_goal(ip, 0), 0);	/* nothing mapped: no hint */
	assert_int_equal(emap_count(ip), 0);
	assert_false(emap_seek(ip, 0, &c, &e));
	wr(fs, ip, 0, buf, BS);
	wr(fs, ip, BS, buf, BS);
	assert_true(emap_seek(ip, 0, &c, &e));
	assert_int_equal(emap_goal(ip, 2), e.pblk + 2);	/* right after the extent */
	wr(fs, ip, 10 * BS, buf, BS);
	assert_true(emap_seek(ip, 5, &c, &e));	/* in the hole: the next extent */
	assert_int_equal(e.lblk, 10);
	assert_false(emap_next(ip, &c, &e));
	assert_false(emap_seek(ip, 11, &c, &e));	/* past the last */
	closei(fs, ip);
}

struct reports {
	int n;
};

static void report(void *arg, const char *msg)
{
	(void)msg;
	((struct reports *)arg)->n++;
}

/* A damaged extent block: the inode does not load (EIO, reported); put back, it does. */
static void test_corrupt_extent_block(void **state)
{
	struct fixture *f = *state;
	struct fs *fs = f->fs;
	struct reports r = { 0 };
	struct inode *ip;
	char buf[BS];

	memset(buf, 0x32, sizeof(buf));
	uint64_t ino = mkfile(fs, ROOT, "chain");
	ip = openi(fs, ino);
	for (uint64_t b = 0; b < 40; b += 2)	/* 20 extents: more than the inline slots */
		wr(fs, ip, b * BS, buf, BS);
	uint64_t eblk = ip->d.ext_next;
	assert_true(eblk != 0);
	closei(fs, ip);
	struct daxfs_extent_block *xb = sbi_block(&fs->sbi, eblk);
	((char *)&xb->ext[0])[0] ^= 0x10;
	media_persist(fs_media(fs), &xb->ext[0], 1);
	fs->sbi.report = report;
	fs->sbi.report_arg = &r;
	assert_int_equal(inode_get(fs, ino, &ip), -EIO);
	assert_int_equal(inode_read(fs, ino, &ip), -EIO);
	assert_int_equal(r.n, 2);
	((char *)&xb->ext[0])[0] ^= 0x10;
	media_persist(fs_media(fs), &xb->ext[0], 1);
	ip = openi(fs, ino);
	assert_int_equal(emap_count(ip), 20);
	closei(fs, ip);
	fs->sbi.report = NULL;
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_fragmented_file),
		T(test_fill_holes),
		T(test_emap_merge_across_leaves),
		T(test_punch_splits_full_leaf),
		T(test_goal),
		T(test_corrupt_extent_block),
	};

	/* UNIT_FILTER=test_name (cmocka's glob) runs a subset while debugging. */
	if (getenv("UNIT_FILTER"))
		cmocka_set_test_filter(getenv("UNIT_FILTER"));
	return cmocka_run_group_tests_name("emap", tests, NULL, NULL);
}
