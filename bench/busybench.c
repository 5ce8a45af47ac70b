/* SPDX-License-Identifier: MIT */
/*
 * busybench: the busy-extent machinery at a million entries, in process (no FUSE).
 *
 *   busybench IMAGE_DIR
 *
 *   tree    the DRAM tree, as XFS's is: 1M inserts, 1M overlap queries with "still pinned?"
 *           checks against a pin table holding every other extent (the trim), 1M removals (the
 *           clear).  Target < 1 s in all.
 *   persistent  the same million with their records committed in batches, and reclaimed (discard)
 *           by the worker, a transaction per batch.
 *   mount   an image holding 1M busy extents (left by a process that died): time to mount,
 *           which loads and queues them all, and time until reclaim (discard) has freed them.
 *           Target < 2 s for the mount.
 *
 * Output: one "metric=... value=... unit=..." line per figure.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "super.h"
#include "util.h"
#include "mount.h"

#define N 1000000ull
#define BATCH 20000

static void make_image(const char *path, uint64_t bytes)
{
	struct mkfs_params p = { .ninodes = 1024, .journal_bytes = 8 << 20 };
	struct media m;
	char err[256];
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);

	if (fd < 0 || ftruncate(fd, (off_t)bytes) < 0) {
		perror(path);
		exit(1);
	}
	close(fd);
	if (media_open(&m, path, 0, err, sizeof(err)) || super_format(&m, &p, err, sizeof(err))) {
		fprintf(stderr, "busybench: %s\n", err);
		exit(1);
	}
	media_close(&m);
}

static struct fs *mount_it(const char *path, bool discard)
{
	struct mount_config cfg = { .reclaim_discard = discard };
	struct fs *fs;
	char err[512];

	if (mount_open(&fs, path, &cfg, err, sizeof(err))) {
		fprintf(stderr, "busybench: %s\n", err);
		exit(1);
	}
	return fs;
}

/* Where extent k of the million lives: every other block of the data area. */
static uint64_t ext_block(const struct fs *fs, uint64_t k)
{
	return fs->sbi.sb.data_start + 64 + 2 * k;
}

/*
 * 1M one-block busy extents, each marked in use, recorded in committed batches: what a truncate
 * under a million pins leaves behind.
 */
static void add_busy(struct fs *fs)
{
	for (uint64_t i = 0; i < N; i += BATCH) {
		struct tx tx;

		tx_init(&tx, &fs->sbi.journal);
		lock_take(&fs->busy.lock);
		for (uint64_t k = i; k < i + BATCH && k < N; k++) {
			uint64_t b = ext_block(fs, k);

			if (alloc_take(&fs->sbi.alloc, b, 1) || busy_add_locked(&fs->busy, &tx, b, 1, 7)) {
				fprintf(stderr, "busybench: cannot make block %llu busy\n", (unsigned long long)b);
				exit(1);
			}
			sbi_use(&fs->sbi, &tx, b, 1);
		}
		lock_drop(&fs->busy.lock);
		if (sbi_commit(&fs->sbi, &tx)) {
			fprintf(stderr, "busybench: commit failed\n");
			exit(1);
		}
	}
}

/* Every other extent stays pinned during the trims: half are skipped, half queued. */
static void pin_half(struct fs *fs, bool pin)
{
	lock_take(&fs->pol->pins.lock);
	for (uint64_t k = 0; k < N; k += 2) {
		if (pin)
			pin_ref_locked(&fs->pol->pins, ext_block(fs, k), 1);
		else
			pin_unref_locked(&fs->pol->pins, ext_block(fs, k), 1);
	}
	lock_drop(&fs->pol->pins.lock);
}

struct trim_ctx {
	struct fs *fs;
	uint64_t pinned;
	uint64_t queued;
	uint64_t now;
};

static void trim_one(void *arg, struct busy_ext *be)
{
	struct trim_ctx *t = arg;

	/* What the post-commit step and an unpin notification do: still pinned, or reclaimable? */
	if (be->state == DAXFS_BUSY_PENDING)
		be->state = DAXFS_BUSY_PINNED;
	if (pin_any_locked(&t->fs->pol->pins, be->start, be->len)) {
		t->pinned++;
	} else if (be->state != DAXFS_BUSY_RECLAIMING) {
		busy_queue_locked(&t->fs->busy, be, t->now);
		t->queued++;
	}
}

/* One trim per extent, as a million one-block truncates would do. */
static struct trim_ctx trim_all(struct fs *fs)
{
	struct trim_ctx tc = { fs, 0, 0, util_now_ns() };

	lock_take(&fs->pol->pins.lock);
	lock_take(&fs->busy.lock);
	for (uint64_t k = 0; k < N; k++)
		busy_visit_locked(&fs->busy, ext_block(fs, k), 1, trim_one, &tc);
	lock_drop(&fs->busy.lock);
	lock_drop(&fs->pol->pins.lock);
	return tc;
}

/*
 * The tree alone, as XFS's busy-extent tree is (DRAM, no records): 1M inserts, 1M trims (overlap
 * query plus "still pinned?" against a pin table holding every other extent), 1M removals.
 */
static void bench_dram_tree(const char *dir)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/busybench-dram.img", dir);
	make_image(path, 16ull << 30);
	struct fs *fs = mount_it(path, false);
	bool stop = false;
	struct busy_ext **v = malloc(4096 * sizeof(*v));

	pin_half(fs, true);
	double t0 = bench_now();
	lock_take(&fs->busy.lock);
	for (uint64_t k = 0; k < N; k++)
		busy_track_locked(&fs->busy, ext_block(fs, k), 1, 7, k, DAXFS_BUSY_PENDING);
	lock_drop(&fs->busy.lock);
	double t1 = bench_now();
	struct trim_ctx tc = trim_all(fs);
	double t2 = bench_now();
	/* Clear: the still-pinned half queued too, then everything taken and removed as reclaim would. */
	lock_take(&fs->busy.lock);
	for (struct busy_ext *be = busy_first_locked(&fs->busy); be; be = busy_next_locked(&fs->busy, be))
		busy_queue_locked(&fs->busy, be, tc.now);
	lock_drop(&fs->busy.lock);
	size_t n;
	while (fs->busy.queued_extents && (n = busy_take(&fs->busy, v, 4096, &stop)) > 0)
		busy_done(&fs->busy, v, n);
	double t3 = bench_now();
	if (tc.pinned != N / 2 || fs->busy.nextents != 0) {
		fprintf(stderr, "busybench: tree trim saw %llu pinned; %llu left\n", (unsigned long long)tc.pinned,
			(unsigned long long)fs->busy.nextents);
		exit(1);
	}
	bench_report("tree_insert_1M_s", t1 - t0, "s");
	bench_report("tree_trim_1M_s", t2 - t1, "s");
	bench_report("tree_clear_1M_s", t3 - t2, "s");
	bench_report("tree_total_1M_s", t3 - t0, "s");
	free(v);
	mount_close(fs);
	unlink(path);
}

/* The same with persistence: records committed in batches, then reclaim (discard) and its commits. */
static void bench_tree(const char *dir)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/busybench-tree.img", dir);
	make_image(path, 16ull << 30);	/* sparse: only metadata is touched */
	struct fs *fs = mount_it(path, true);

	pin_half(fs, true);
	double t0 = bench_now();
	add_busy(fs);
	double t1 = bench_now();
	struct trim_ctx tc = trim_all(fs);
	double t2 = bench_now();
	/* The clear: unpin the rest and let the reclaim worker (discard) free everything. */
	if (mount_start(fs))
		exit(1);
	pin_half(fs, false);
	busy_drain(&fs->busy);
	double t3 = bench_now();
	if (tc.pinned != N / 2 || tc.queued != N / 2 || fs->busy.nextents != 0) {
		fprintf(stderr, "busybench: trim saw %llu pinned, %llu queued; %llu left\n",
			(unsigned long long)tc.pinned, (unsigned long long)tc.queued,
			(unsigned long long)fs->busy.nextents);
		exit(1);
	}
	bench_report("persistent_insert_1M_s", t1 - t0, "s");
	bench_report("persistent_trim_1M_s", t2 - t1, "s");
	bench_report("persistent_reclaim_1M_s", t3 - t2, "s");
	bench_report("persistent_total_1M_s", t3 - t0, "s");
	mount_close(fs);
	unlink(path);
}

static void bench_mount(const char *dir)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/busybench-mount.img", dir);
	make_image(path, 16ull << 30);
	pid_t pid = fork();
	if (pid == 0) {
		struct fs *fs = mount_it(path, true);

		add_busy(fs);
		_exit(0);	/* die with a million busy extents on the media */
	}
	int st;
	waitpid(pid, &st, 0);
	if (!WIFEXITED(st) || WEXITSTATUS(st))
		exit(1);
	double t0 = bench_now();
	struct fs *fs = mount_it(path, true);
	double t1 = bench_now();
	if (fs->busy.nextents != N) {
		fprintf(stderr, "busybench: mount found %llu busy extents\n", (unsigned long long)fs->busy.nextents);
		exit(1);
	}
	mount_start(fs);
	busy_drain(&fs->busy);
	double t2 = bench_now();
	bench_report("mount_1M_busy_s", t1 - t0, "s");
	bench_report("mount_1M_busy_reclaimed_s", t2 - t0, "s");
	mount_close(fs);
	unlink(path);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: busybench IMAGE_DIR\n");
		return 2;
	}
	bench_dram_tree(argv[1]);
	bench_tree(argv[1]);
	bench_mount(argv[1]);
	return 0;
}
