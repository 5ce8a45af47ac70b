/* SPDX-License-Identifier: MIT */
/*
 * Busy extents through the fs API (no FUSE): a truncate under a pin makes the pinned blocks busy
 * and persistent; the allocator never hands them out; unpin gets them reclaimed; a process that dies
 * with busy extents leaves records that the next mount reclaims; thousands of pinned ranges in one
 * truncate round-trip.
 */
#include <sys/wait.h>

#include "daxfs/ioctl.h"
#include "unit_common.h"
#include "util.h"
#include "file.h"
#include "inode.h"
#include "mount.h"
#include "namei.h"

static struct cred root;

static int setup_size(void **state, uint64_t bytes)
{
	struct image *img = calloc(1, sizeof(*img));

	image_name(img, "busy");
	image_format(img, bytes, NULL);
	*state = img;
	return 0;
}

static int setup(void **state)
{
	return setup_size(state, 64 * MiB);
}

static int setup_big(void **state)
{
	return setup_size(state, 256 * MiB);
}

static int teardown(void **state)
{
	image_remove(*state);
	free(*state);
	return 0;
}

static struct fs *mount_fs(const struct image *img)
{
	struct mount_config cfg = { .enospc_wait_ms = 1000 };
	struct fs *fs;
	char err[512];

	if (mount_open(&fs, img->path, &cfg, err, sizeof(err)))
		fail_msg("mount_open: %s", err);
	assert_int_equal(mount_start(fs), 0);
	return fs;
}

/* Create a file of `blocks` blocks written with `byte`; returns it opened. */
static struct inode *make_file(struct fs *fs, const char *name, uint64_t blocks, int byte)
{
	struct entry e;
	struct inode *ip;
	char *buf = malloc(blocks * 4096);

	assert_int_equal(namei_mknod(fs, &root, DAXFS_ROOT_INO, name, S_IFREG | 0644, 0, &e), 0);
	assert_int_equal(namei_open(fs, e.ino, O_RDWR, &ip, NULL), 0);
	memset(buf, byte, blocks * 4096);
	/* In 1 MiB requests, as FUSE would send them. */
	for (uint64_t off = 0; off < blocks * 4096;) {
		struct iovec iov = { buf + off, MIN(1 * MiB, blocks * 4096 - off) };
		ssize_t w = file_write(fs, ip, off, &iov, 1);

		assert_true(w > 0);
		off += (uint64_t)w;
	}
	free(buf);
	return ip;
}

static void truncate_to(struct fs *fs, struct inode *ip, uint64_t size)
{
	struct stat st = { .st_size = (off_t)size };

	assert_int_equal(namei_setattr(fs, ip->ino, &st, NAMEI_SET_SIZE, NULL, NULL), 0);
}

static uint64_t busy_blocks(struct fs *fs)
{
	lock_take(&fs->busy.lock);
	uint64_t n = fs->busy.nblocks;
	lock_drop(&fs->busy.lock);
	return n;
}

/* Poll until reclaim has emptied the busy list (it runs on its own thread). */
static void wait_reclaimed(struct fs *fs)
{
	for (int i = 0; i < 5000 && busy_blocks(fs); i++)
		usleep(1000);
	assert_int_equal(busy_blocks(fs), 0);
}

static void test_truncate_pinned_then_reclaim(void **state)
{
	struct fs *fs = mount_fs(*state);
	struct pin_owner owner;
	uint64_t id, free0, media_off, media_len;
	struct daxfs_pin_extent ext[4];
	uint32_t n;

	pin_owner_init(&owner);
	struct inode *ip = make_file(fs, "f", 256, 0xab);
	assert_int_equal(policy_pin(fs, &owner, ip, &(struct policy_pin_args){ .offset = 64 * 4096, .length = 32 * 4096, .flags = DAXFS_PIN_WRITE, .pid = getpid(), .writable = true }, NULL, &id), 0);
	assert_int_equal(policy_pin_extents(fs, &owner, id, 0, ext, 4, &n, NULL, NULL), 1);
	media_off = ext[0].media_off;
	media_len = ext[0].len;
	assert_int_equal(media_len, 32 * 4096);
	free0 = alloc_free_blocks(&fs->sbi.alloc);

	truncate_to(fs, ip, 0);
	assert_int_equal(ip->d.size, 0);
	assert_int_equal(ip->d.blocks, 0);
	/* 224 unpinned blocks came back at once; the 32 pinned ones are busy, not free. */
	assert_int_equal(alloc_free_blocks(&fs->sbi.alloc), free0 + 224);
	assert_int_equal(busy_blocks(fs), 32);

	/* Fill the device: no allocation may land on the busy blocks. */
	struct entry e;
	struct inode *g;
	assert_int_equal(namei_mknod(fs, &root, DAXFS_ROOT_INO, "g", S_IFREG | 0644, 0, &e), 0);
	assert_int_equal(namei_open(fs, e.ino, O_RDWR, &g, NULL), 0);
	static char chunk[1 << 20];
	struct iovec iov = { chunk, sizeof(chunk) };
	uint64_t off = 0;
	ssize_t w;
	while ((w = file_write(fs, g, off, &iov, 1)) > 0)
		off += (uint64_t)w;
	assert_int_equal(w, -ENOSPC);
	struct emap_cursor c;
	struct daxfs_extent x;
	for (bool more = emap_seek(g, 0, &c, &x); more; more = emap_next(g, &c, &x))
		assert_false(ranges_overlap(x.pblk * 4096, x.len * 4096ull, media_off, media_len));
	assert_int_equal(busy_blocks(fs), 32);

	/* Unpin: reclaim gives the 32 blocks back (to what the metadata reserve kept), zeroed. */
	uint64_t full = alloc_free_blocks(&fs->sbi.alloc);
	assert_true(full <= fs->sbi.alloc.reserve);
	assert_int_equal(policy_unpin(fs, &owner, id), 0);
	wait_reclaimed(fs);
	assert_int_equal(alloc_free_blocks(&fs->sbi.alloc), full + 32);
	const char *p = media_ptr(fs_media(fs), media_off);
	for (uint64_t i = 0; i < media_len; i++)
		assert_int_equal(p[i], 0);
	assert_int_equal(fs->reclaim.extents, 1);
	namei_release(fs, g);
	namei_release(fs, ip);
	mount_close(fs);
}

/*
 * A child truncates under pins and dies without unmounting: every commit is durable, so that is a
 * crash.  The next mount finds the busy records and reclaims them; nothing leaks.
 */
static void crash_with_busy(const struct image *img, int npins)
{
	pid_t pid = fork();

	if (pid == 0) {
		struct fs *fs = mount_fs(img);
		struct pin_owner owner;
		uint64_t id;

		pin_owner_init(&owner);
		struct inode *ip = make_file(fs, "victim", (uint64_t)npins * 2, 0x5a);
		/* Every other block pinned: npins separate busy extents. */
		for (int i = 0; i < npins; i++)
			if (policy_pin(fs, &owner, ip, &(struct policy_pin_args){ .offset = (uint64_t)i * 2 * 4096, .length = 4096, .flags = 0, .pid = getpid(), .writable = true }, NULL, &id))
				_exit(2);
		truncate_to(fs, ip, 0);
		_exit(busy_blocks(fs) == (uint64_t)npins ? 0 : 3);
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

static void test_crash_with_busy_extents(void **state)
{
	const struct image *img = *state;

	crash_with_busy(img, 20000);
	struct mount_config cfg = { 0 };
	struct fs *fs;
	char err[512];
	assert_int_equal(mount_open(&fs, img->path, &cfg, err, sizeof(err)), 0);
	/* Loaded and queued, but reclaim runs only once started. */
	assert_int_equal(fs->busy.nextents, 20000);
	assert_int_equal(fs->busy.queued_extents, 20000);
	uint64_t data = fs->sbi.data_blocks;
	assert_int_equal(mount_start(fs), 0);
	wait_reclaimed(fs);
	/* Only the root directory, the two list heads and the grown busy list remain in use. */
	uint64_t used = data - alloc_free_blocks(&fs->sbi.alloc);
	assert_true(used >= 2 && used < 2 + DIV_ROUND_UP(20000u, 127u) + 4);
	mount_close(fs);
}

/*
 * The busy tree alone against a per-block array, over a million random operations: extents are
 * added where nothing is busy, found by overlap queries from any block, queued, taken and removed.
 */
#define SPACE 20000

struct visit_ctx {
	struct busy_ext *seen[64];
	int n;
};

static void visit_record(void *arg, struct busy_ext *be)
{
	struct visit_ctx *v = arg;

	assert_true(v->n < 64);
	v->seen[v->n++] = be;
}

static void test_busy_tree_stress(void **state)
{
	static struct busy_ext *owner[SPACE];	/* the model: which extent holds each block */
	struct busy_tree bt;
	struct sbi s = { .bs = 4096, .data_blocks = SPACE };
	char err[256];
	uint64_t rng = 0x9e3779b97f4a7c15ull, live = 0, blocks = 0;
	bool stop = false;

	(void)state;
	memset(owner, 0, sizeof(owner));
	assert_int_equal(busy_load(&bt, &s, 0, false, err, sizeof(err)), 0);
	for (int op = 0; op < 1000000; op++) {
		rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
		uint64_t start = rng % SPACE, len = 1 + (rng >> 32) % 8;

		if (start + len > SPACE)
			len = SPACE - start;
		switch ((rng >> 20) % 3) {
		case 0: {	/* add, if the range is free in the model */
			bool free_range = true;

			for (uint64_t b = start; b < start + len; b++)
				free_range &= owner[b] == NULL;
			if (!free_range)
				break;
			lock_take(&bt.lock);
			struct busy_ext *be = busy_track_locked(&bt, start, len, 1, 0, DAXFS_BUSY_PINNED);
			lock_drop(&bt.lock);
			for (uint64_t b = start; b < start + len; b++)
				owner[b] = be;
			live++;
			blocks += len;
			break;
		}
		case 1: {	/* query: exactly the extents the model has on the range, in order */
			struct visit_ctx v = { .n = 0 };
			struct busy_ext *expect[64];
			int ne = 0;

			lock_take(&bt.lock);
			busy_visit_locked(&bt, start, len, visit_record, &v);
			lock_drop(&bt.lock);
			for (uint64_t b = start; b < start + len; b++)
				if (owner[b] && (ne == 0 || expect[ne - 1] != owner[b]))
					expect[ne++] = owner[b];
			assert_int_equal(v.n, ne);
			for (int i = 0; i < ne; i++)
				assert_ptr_equal(v.seen[i], expect[i]);
			break;
		}
		case 2: {	/* remove the extent holding `start`, through the reclaim queue */
			struct busy_ext *be = owner[start], *got;

			if (!be)
				break;
			uint64_t s0 = be->start, l0 = be->len;
			lock_take(&bt.lock);
			busy_queue_locked(&bt, be, 0);
			lock_drop(&bt.lock);
			assert_int_equal(busy_take(&bt, &got, 1, &stop), 1);
			assert_ptr_equal(got, be);
			busy_done(&bt, &got, 1);
			for (uint64_t b = s0; b < s0 + l0; b++)
				owner[b] = NULL;
			live--;
			blocks -= l0;
			break;
		}
		}
		if (op % 100000 == 0) {
			assert_int_equal(bt.nextents, live);
			assert_int_equal(bt.nblocks, blocks);
		}
	}
	assert_int_equal(bt.nextents, live);
	assert_int_equal(bt.queued_extents, 0);
	busy_destroy(&bt);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_truncate_pinned_then_reclaim, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash_with_busy_extents, setup_big, teardown),
		cmocka_unit_test(test_busy_tree_stress),
	};
	return cmocka_run_group_tests_name("busy", tests, NULL, NULL);
}
