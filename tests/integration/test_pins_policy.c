/* SPDX-License-Identifier: MIT */
/*
 * What happens to pinned blocks when they leave their file, under each policy.
 *
 * The core check, repeated for truncate, punch hole, O_TRUNC, rename over and unlink: the pinned
 * media blocks must never reach another file while the pin lives.  A filler file G takes every free
 * block; G must not map a pinned block (its own pin's extents say where it lives), and a DMA pattern
 * written through the old pin must not show up in G's data.  policy=unsafe is the baseline where it
 * does.  Also: overlapping and partly truncated pins, ZERO_RANGE in place, fail, wait (including
 * the holder still working while a truncate waits, the 2017 deadlock, and more waiters than daemon
 * threads), revoke (ignored, cooperative, timed out, pins taken during the grace period), a crash
 * with busy extents, unmount while reclaim is queued, ENOSPC while reclaim is in flight, and
 * reclaim by discard.
 *
 * Anything that could block for ever runs under pu_guard (a watchdog that kills the daemon) or in
 * a child process, so a deadlock fails the test instead of hanging the suite.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pins_util.h"

#define FSIZE (16 * MiB)
#define PIN_OFF (1 * MiB)
#define PIN_LEN (2 * MiB)
#define PIN_BLOCKS (PIN_LEN / BS)
#define PIN_UNITS (PIN_LEN / DAXFS_DMA_UNIT)

/* A mounted file system with F (FSIZE bytes of stream 1) open read-write and [1M, 3M) write-pinned. */
struct fx {
	struct mnt m;
	char f[512], g[512];
	int dfd, fd;
	uint64_t ino;
	uint64_t blocks;	/* F's st_blocks / 8 before anything was freed */
	struct daxfs_pin p;
};

static void fx_setup(struct fx *x, const char *name, const char *opts)
{
	struct stat st;

	pu_setup(&x->m, name, "64M", opts);
	snprintf(x->f, sizeof(x->f), "%s", P(&x->m, "F"));
	snprintf(x->g, sizeof(x->g), "%s", P(&x->m, "G"));
	x->dfd = pu_dirfd(&x->m);
	pu_write_file(x->f, FSIZE, 1);
	x->fd = open(x->f, O_RDWR);
	assert_true(x->fd >= 0);
	assert_ok(fstat(x->fd, &st));
	x->ino = st.st_ino;
	x->blocks = (uint64_t)st.st_blocks * 512 / BS;
	assert_int_equal(x->blocks, FSIZE / BS);
	x->p = pu_pin(x->fd, PIN_OFF, PIN_LEN, DAXFS_PIN_WRITE);
	assert_int_equal(x->p.offset, PIN_OFF);
	assert_int_equal(x->p.length, PIN_LEN);
}

static void fx_done(struct fx *x)
{
	daxfs_pin_free(&x->p);
	if (x->fd >= 0)
		close(x->fd);
	close(x->dfd);
	pu_finish(&x->m);
}

/* DMA a pattern through the pin and check it reached the media the pin's extents name. */
static void dma_write_checked(struct fx *x, uint64_t tag)
{
	uint64_t mis = 1;

	assert_int_equal(daxfs_dma(x->fd, x->p.id, DAXFS_DMA_WRITE_PATTERN, 0, PIN_LEN, tag, NULL, NULL), 0);
	assert_int_equal(daxfs_dma(x->fd, x->p.id, DAXFS_DMA_VERIFY_PATTERN, 0, PIN_LEN, tag, &mis, NULL), 0);
	assert_int_equal(mis, 0);
	for (uint32_t i = 0; i < x->p.nextents; i++) {
		char *buf = malloc(x->p.ext[i].len);

		assert_non_null(buf);
		pu_read_media(&x->m, x->p.ext[i].media_off, buf, x->p.ext[i].len);
		assert_int_equal(pu_count_units(buf, x->p.ext[i].len, x->p.id, tag), x->p.ext[i].len / DAXFS_DMA_UNIT);
		free(buf);
	}
}

static uint64_t verify_mismatches(struct fx *x, uint64_t tag)
{
	uint64_t mis = UINT64_MAX;
	int r = daxfs_dma(x->fd, x->p.id, DAXFS_DMA_VERIFY_PATTERN, 0, PIN_LEN, tag, &mis, NULL);

	if (r)
		fail_msg("DMA verify through pin %llu: %s", (unsigned long long)x->p.id, strerror(-r));
	return mis;
}

/* Bytes of media the extent lists a and b share. */
static uint64_t overlap_bytes(const struct daxfs_pin_extent *a, uint32_t na, const struct daxfs_pin_extent *b,
			      uint32_t nb)
{
	uint64_t n = 0;

	for (uint32_t i = 0; i < na; i++) {
		for (uint32_t k = 0; k < nb; k++) {
			uint64_t s = a[i].media_off > b[k].media_off ? a[i].media_off : b[k].media_off;
			uint64_t ea = a[i].media_off + a[i].len, eb = b[k].media_off + b[k].len;
			uint64_t e = ea < eb ? ea : eb;

			n += e > s ? e - s : 0;
		}
	}
	return n;
}

/* Media bytes G maps that the pin holds (G pinned read-only for the look, then unpinned). */
static uint64_t g_overlap_with_pin(struct fx *x, uint64_t glen)
{
	int gfd = open(x->g, O_RDONLY);

	assert_true(gfd >= 0);
	struct daxfs_pin gp = pu_pin(gfd, 0, glen, 0);
	assert_int_equal(gp.length, glen);
	uint64_t n = overlap_bytes(gp.ext, gp.nextents, x->p.ext, x->p.nextents);
	assert_int_equal(daxfs_unpin(gfd, gp.id), 0);
	daxfs_pin_free(&gp);
	close(gfd);
	return n;
}

/* The busy list is exactly the pin's media, detached from F and still pinned. */
static void check_busy_is_pin(struct fx *x)
{
	uint32_t n;
	struct daxfs_busy_info *b = pu_busy(x->dfd, &n);
	uint64_t total = 0;

	assert_true(n >= 1);
	for (uint32_t i = 0; i < n; i++) {
		struct daxfs_pin_extent e = { .media_off = b[i].media_off, .len = b[i].len };

		/* Each busy extent lies wholly inside the pin; with the total equal, they tile it. */
		assert_int_equal(overlap_bytes(&e, 1, x->p.ext, x->p.nextents), b[i].len);
		assert_int_equal(b[i].ino, x->ino);
		assert_int_equal(b[i].state, DAXFS_BUSY_PINNED);
		assert_int_equal(b[i].pins, 1);
		total += b[i].len;
	}
	free(b);
	assert_int_equal(total, PIN_LEN);
	assert_int_equal(x->p.ext[0].media_off % BS, 0);
	struct daxfs_ioc_stats s = pu_stats(x->dfd);
	assert_int_equal(s.busy_blocks, PIN_BLOCKS);
	assert_int_equal(s.busy_extents, n);
}

/* Fill the file system with G; G must own none of the pinned blocks nor ever see the pin's DMA. */
static void fill_and_check_isolation(struct fx *x)
{
	uint64_t glen = pu_fill(x->g);

	assert_true(glen >= 8 * MiB);
	assert_int_equal(g_overlap_with_pin(x, glen), 0);
	struct scan s = pu_scan(x->g);
	assert_int_equal(s.units, 0);
	assert_int_equal(s.foreign, 0);
	/* The device keeps writing through its pin: that must still land in the pinned blocks only. */
	dma_write_checked(x, 0x2222);
	s = pu_scan(x->g);
	if (s.units || s.foreign)
		fail_msg("DMA through pin %llu landed in G: %llu units (first: pin %llu tag %#llx media %llu), %llu foreign bytes",
			 (unsigned long long)x->p.id, (unsigned long long)s.units, (unsigned long long)s.first.pin_id,
			 (unsigned long long)s.first.tag, (unsigned long long)s.first.media_off,
			 (unsigned long long)s.foreign);
	assert_int_equal(verify_mismatches(x, 0x2222), 0);
}

/* Unpin: within 5 s the busy blocks are back in the allocator, scrubbed, and the list is empty. */
static void unpin_and_check_reclaim(struct fx *x)
{
	uint64_t bfree = pu_bfree(&x->m);
	struct daxfs_ioc_stats s0 = pu_stats(x->dfd);

	assert_int_equal(daxfs_unpin(x->fd, x->p.id), 0);
	if (!PU_POLL(pu_nbusy(x->dfd) == 0 && pu_bfree(&x->m) == bfree + PIN_BLOCKS, 5000))
		fail_msg("5 s after unpin: %u busy extents, %llu blocks free (expected %llu)", pu_nbusy(x->dfd),
			 (unsigned long long)pu_bfree(&x->m), (unsigned long long)(bfree + PIN_BLOCKS));
	struct daxfs_ioc_stats s = pu_stats(x->dfd);
	assert_true(s.reclaimed_extents >= s0.reclaimed_extents + 1);
	assert_int_equal(s.reclaimed_blocks, s0.reclaimed_blocks + PIN_BLOCKS);
	assert_int_equal(s.busy_blocks, 0);
	assert_int_equal(s.reclaim_queued, 0);
	assert_int_equal(s.pins_active, 0);
	/* reclaim=zero: the device's pattern does not survive into the next owner of the blocks. */
	for (uint32_t i = 0; i < x->p.nextents; i++)
		assert_true(pu_media_zero(&x->m, x->p.ext[i].media_off, x->p.ext[i].len));
}

enum detach { D_TRUNCATE, D_PUNCH, D_OTRUNC };

/* Default (busy) policy: detach the pinned range from F one way or another, then the core checks. */
static void busy_scenario(const char *name, enum detach how)
{
	struct fx x;
	struct stat st;

	fx_setup(&x, name, NULL);
	dma_write_checked(&x, 0x1111);
	uint64_t bfree0 = pu_bfree(&x.m);
	uint64_t t0 = pu_now_ms();
	if (how == D_TRUNCATE) {
		assert_ok(truncate(x.f, 0));
	} else if (how == D_PUNCH) {
		assert_ok(fallocate(x.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, PIN_OFF, PIN_LEN));
	} else {
		int t = open(x.f, O_WRONLY | O_TRUNC);
		assert_true(t >= 0);
		assert_ok(close(t));
	}
	uint64_t dt = pu_now_ms() - t0;
	if (dt > 1000)
		fail_msg("busy policy: detaching pinned blocks took %llu ms", (unsigned long long)dt);
	assert_ok(fstat(x.fd, &st));
	uint64_t left = (uint64_t)st.st_blocks * 512 / BS;
	if (how == D_PUNCH) {
		assert_int_equal(st.st_size, FSIZE);
		assert_int_equal(left, x.blocks - PIN_BLOCKS);
		assert_true(pu_file_zero(x.f, PIN_OFF, PIN_LEN));
		assert_true(pu_check_file(x.f, 0, PIN_OFF, 1));
		assert_true(pu_check_file(x.f, PIN_OFF + PIN_LEN, FSIZE - PIN_OFF - PIN_LEN, 1));
	} else {
		assert_int_equal(st.st_size, 0);
		assert_int_equal(left, 0);
	}
	/* Busy blocks count as used: only the unpinned part of what F lost is free. */
	uint64_t bfree1 = pu_bfree(&x.m);
	assert_int_equal(bfree1, bfree0 + (x.blocks - left) - PIN_BLOCKS);
	assert_int_equal(pu_stats(x.dfd).free_blocks, bfree1);
	check_busy_is_pin(&x);
	/* The blocks are detached, not scrubbed: the device still sees what it wrote. */
	assert_int_equal(verify_mismatches(&x, 0x1111), 0);
	if (how == D_PUNCH) {
		/* Rewrite the punched range: F gets new blocks, and the old pin's DMA must not reach them. */
		char *buf = malloc(PIN_LEN);
		assert_non_null(buf);
		pu_pat_fill(buf, PIN_LEN, PIN_OFF, 5);
		assert_int_equal(pwrite(x.fd, buf, PIN_LEN, PIN_OFF), (ssize_t)PIN_LEN);
		free(buf);
		struct daxfs_pin np = pu_pin(x.fd, PIN_OFF, PIN_LEN, 0);
		assert_int_equal(overlap_bytes(np.ext, np.nextents, x.p.ext, x.p.nextents), 0);
		assert_int_equal(daxfs_unpin(x.fd, np.id), 0);
		daxfs_pin_free(&np);
		dma_write_checked(&x, 0x1212);
		assert_true(pu_check_file(x.f, PIN_OFF, PIN_LEN, 5));
		check_busy_is_pin(&x);
	}

	fill_and_check_isolation(&x);
	unpin_and_check_reclaim(&x);
	struct scan s = pu_scan(x.g);	/* reclaim's scrub touched only the busy blocks */
	assert_int_equal(s.units + s.foreign, 0);
	assert_ok(unlink(x.g));
	assert_ok(unlink(x.f));
	fx_done(&x);
}

static void test_busy_truncate(void **state)
{
	(void)state;
	busy_scenario("busytrunc", D_TRUNCATE);
}

static void test_busy_punch_hole(void **state)
{
	(void)state;
	busy_scenario("busypunch", D_PUNCH);
}

static void test_busy_o_trunc(void **state)
{
	(void)state;
	busy_scenario("busyotrunc", D_OTRUNC);
}

/*
 * Unlink or rename over F while the pin's open file keeps F alive: nothing is freed while it is
 * open (F's blocks stay F's), and everything comes back at the last close, which drops the pin.
 */
static void unlinked_scenario(const char *name, bool rename_over)
{
	struct fx x;
	char h[512];

	fx_setup(&x, name, NULL);
	dma_write_checked(&x, 0x3333);
	snprintf(h, sizeof(h), "%s", P(&x.m, "H"));
	pu_write_file(h, 64 * KiB, 2);
	uint64_t bfree0 = pu_bfree(&x.m);
	if (rename_over)
		assert_ok(rename(h, x.f));
	else
		assert_ok(unlink(x.f));
	/* The orphan keeps its blocks (at most a block of orphan-list metadata is added). */
	uint64_t bfree1 = pu_bfree(&x.m);
	assert_true(bfree1 <= bfree0 && bfree1 + 1 >= bfree0);
	assert_int_equal(pu_nbusy(x.dfd), 0);
	struct stat st;
	assert_ok(fstat(x.fd, &st));
	assert_int_equal(st.st_nlink, 0);
	assert_int_equal(st.st_size, FSIZE);

	fill_and_check_isolation(&x);
	/* The open file still reads its own blocks, where the device's pattern now is. */
	char *buf = malloc(PIN_LEN);
	assert_non_null(buf);
	assert_int_equal(pread(x.fd, buf, PIN_LEN, PIN_OFF), (ssize_t)PIN_LEN);
	assert_int_equal(pu_count_units(buf, PIN_LEN, x.p.id, 0x2222), PIN_UNITS);
	free(buf);
	assert_true(pu_check_file(rename_over ? x.f : h, 0, 64 * KiB, 2));

	uint64_t bfull = pu_bfree(&x.m);
	assert_ok(close(x.fd));
	x.fd = -1;
	if (!PU_POLL(pu_npins(x.dfd) == 0 && pu_bfree(&x.m) >= bfull + FSIZE / BS, 5000))
		fail_msg("5 s after the last close: %u pins, %llu blocks free, expected at least %llu",
			 pu_npins(x.dfd), (unsigned long long)pu_bfree(&x.m), (unsigned long long)(bfull + FSIZE / BS));
	assert_true(PU_POLL(pu_nbusy(x.dfd) == 0, 5000));
	struct scan s = pu_scan(x.g);
	assert_int_equal(s.units + s.foreign, 0);
	assert_ok(unlink(x.g));
	fx_done(&x);
}

static void test_busy_rename_over(void **state)
{
	(void)state;
	unlinked_scenario("busyrename", true);
}

static void test_busy_unlink(void **state)
{
	(void)state;
	unlinked_scenario("busyunlink", false);
}

/* Two overlapping pins: blocks leave the busy list only as the last pin over them drops. */
static void test_busy_overlapping_pins(void **state)
{
	struct fx x;

	(void)state;
	fx_setup(&x, "busyoverlap", NULL);
	/* A second pin over [2M, 4M): [2M, 3M) is held twice. */
	struct daxfs_pin q = pu_pin(x.fd, 2 * MiB, 2 * MiB, 0);
	assert_ok(truncate(x.f, 0));
	struct daxfs_ioc_stats s = pu_stats(x.dfd);
	assert_int_equal(s.busy_blocks, 3 * MiB / BS);
	uint32_t n;
	struct daxfs_busy_info *b = pu_busy(x.dfd, &n);
	uint32_t maxpins = 0;
	for (uint32_t i = 0; i < n; i++)
		maxpins = b[i].pins > maxpins ? b[i].pins : maxpins;
	free(b);
	assert_int_equal(maxpins, 2);

	/* Drop the first pin: what only it held may go; what q holds must stay busy. */
	uint64_t bfree = pu_bfree(&x.m);
	assert_int_equal(daxfs_unpin(x.fd, x.p.id), 0);
	assert_true(PU_POLL(pu_stats(x.dfd).reclaim_queued == 0 && pu_bfree(&x.m) == bfree + 1 * MiB / BS, 5000));
	b = pu_busy(x.dfd, &n);
	uint64_t held = 0;
	for (uint32_t i = 0; i < n; i++) {
		struct daxfs_pin_extent e = { .media_off = b[i].media_off, .len = b[i].len };
		held += overlap_bytes(&e, 1, q.ext, q.nextents);
		assert_int_equal(b[i].pins, 1);
	}
	free(b);
	assert_int_equal(held, 2 * MiB);	/* every block q holds is still busy */

	/* Fill: G gets the reclaimed megabyte but none of q's blocks. */
	uint64_t glen = pu_fill(x.g);
	int gfd = open(x.g, O_RDONLY);
	assert_true(gfd >= 0);
	struct daxfs_pin gp = pu_pin(gfd, 0, glen, 0);
	assert_int_equal(overlap_bytes(gp.ext, gp.nextents, q.ext, q.nextents), 0);
	daxfs_pin_free(&gp);
	close(gfd);

	bfree = pu_bfree(&x.m);
	assert_int_equal(daxfs_unpin(x.fd, q.id), 0);
	assert_true(PU_POLL(pu_nbusy(x.dfd) == 0 && pu_bfree(&x.m) == bfree + 2 * MiB / BS, 5000));
	daxfs_pin_free(&q);
	assert_ok(unlink(x.g));
	fx_done(&x);
}

/*
 * A truncate through the middle of a pin: only the part past EOF becomes busy.  The rest is still
 * F's, so the pin's DMA shows in F there, and reclaim after the unpin must not scrub it.
 */
static void test_busy_partial_truncate(void **state)
{
	struct fx x;

	(void)state;
	fx_setup(&x, "busypartial", NULL);
	uint64_t bfree0 = pu_bfree(&x.m);
	assert_ok(truncate(x.f, 2 * MiB));
	assert_int_equal(pu_bfree(&x.m), bfree0 + (FSIZE - 3 * MiB) / BS);
	struct daxfs_ioc_stats s = pu_stats(x.dfd);
	assert_int_equal(s.busy_blocks, 1 * MiB / BS);
	dma_write_checked(&x, 0xbbbb);
	char *buf = malloc(1 * MiB);
	assert_non_null(buf);
	assert_int_equal(pread(x.fd, buf, 1 * MiB, PIN_OFF), (ssize_t)(1 * MiB));
	assert_int_equal(pu_count_units(buf, 1 * MiB, x.p.id, 0xbbbb), 1 * MiB / DAXFS_DMA_UNIT);
	assert_true(pu_check_file(x.f, 0, PIN_OFF, 1));

	bfree0 = pu_bfree(&x.m);
	assert_int_equal(daxfs_unpin(x.fd, x.p.id), 0);
	assert_true(PU_POLL(pu_nbusy(x.dfd) == 0 && pu_bfree(&x.m) == bfree0 + 1 * MiB / BS, 5000));
	assert_int_equal(pu_stats(x.dfd).reclaimed_blocks, 1 * MiB / BS);
	/* F's own half of the old pin is untouched by reclaim. */
	assert_int_equal(pread(x.fd, buf, 1 * MiB, PIN_OFF), (ssize_t)(1 * MiB));
	assert_int_equal(pu_count_units(buf, 1 * MiB, x.p.id, 0xbbbb), 1 * MiB / DAXFS_DMA_UNIT);
	free(buf);
	struct stat st;
	assert_ok(fstat(x.fd, &st));
	assert_int_equal(st.st_size, 2 * MiB);
	assert_int_equal((uint64_t)st.st_blocks * 512 / BS, 2 * MiB / BS);
	fx_done(&x);
}

/* ZERO_RANGE over pinned blocks zeroes them in place: nothing is detached or freed. */
static void test_zero_range(void **state)
{
	struct fx x;
	struct stat st;

	(void)state;
	fx_setup(&x, "zerorange", NULL);
	dma_write_checked(&x, 0x4444);
	uint64_t bfree0 = pu_bfree(&x.m);
	assert_ok(fallocate(x.fd, FALLOC_FL_ZERO_RANGE, PIN_OFF, PIN_LEN));
	struct daxfs_ioc_stats s = pu_stats(x.dfd);
	assert_int_equal(s.busy_extents, 0);
	assert_int_equal(s.busy_created, 0);
	assert_int_equal(pu_bfree(&x.m), bfree0);
	assert_ok(fstat(x.fd, &st));
	assert_int_equal(st.st_size, FSIZE);
	assert_int_equal((uint64_t)st.st_blocks * 512 / BS, x.blocks);
	assert_true(pu_file_zero(x.f, PIN_OFF, PIN_LEN));
	assert_true(pu_check_file(x.f, 0, PIN_OFF, 1));
	assert_true(pu_check_file(x.f, PIN_OFF + PIN_LEN, FSIZE - PIN_OFF - PIN_LEN, 1));
	/* The device sees its own blocks zeroed: every unit mismatches. */
	uint64_t mis = 0, first = 1;
	assert_int_equal(daxfs_dma(x.fd, x.p.id, DAXFS_DMA_VERIFY_PATTERN, 0, PIN_LEN, 0x4444, &mis, &first), 0);
	assert_int_equal(mis, PIN_UNITS);
	assert_int_equal(first, 0);
	/* Same blocks as before: a fresh pin of the range maps the same media. */
	struct daxfs_pin q = pu_pin(x.fd, PIN_OFF, PIN_LEN, 0);
	assert_int_equal(overlap_bytes(q.ext, q.nextents, x.p.ext, x.p.nextents), PIN_LEN);
	daxfs_pin_free(&q);
	fx_done(&x);
}

/* policy=fail: freeing a pinned block is refused with EBUSY and changes nothing; unpinned frees work. */
static void test_policy_fail(void **state)
{
	struct fx x;
	struct stat st;

	(void)state;
	fx_setup(&x, "polfail", "policy=fail");
	assert_errno(truncate(x.f, 0), EBUSY);
	assert_errno(truncate(x.f, PIN_OFF + PIN_LEN - BS), EBUSY);	/* the last pinned block */
	assert_errno(ftruncate(x.fd, 0), EBUSY);
	assert_errno(fallocate(x.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 2 * MiB, BS), EBUSY);
	assert_errno(open(x.f, O_WRONLY | O_TRUNC), EBUSY);
	assert_ok(fstat(x.fd, &st));
	assert_int_equal(st.st_size, FSIZE);
	assert_int_equal((uint64_t)st.st_blocks * 512 / BS, x.blocks);
	assert_true(pu_check_file(x.f, 0, FSIZE, 1));
	struct daxfs_ioc_stats s = pu_stats(x.dfd);
	assert_int_equal(s.frees_failed, 5);
	assert_int_equal(s.busy_created, 0);
	/* Frees that miss the pin go ahead. */
	assert_ok(fallocate(x.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 4 * MiB, 1 * MiB));
	assert_ok(truncate(x.f, 8 * MiB));
	assert_ok(truncate(x.f, PIN_OFF + PIN_LEN));
	assert_ok(fstat(x.fd, &st));
	assert_int_equal(st.st_size, PIN_OFF + PIN_LEN);
	assert_true(pu_check_file(x.f, 0, PIN_OFF + PIN_LEN, 1));
	assert_int_equal(daxfs_unpin(x.fd, x.p.id), 0);
	assert_ok(truncate(x.f, 0));
	assert_ok(fstat(x.fd, &st));
	assert_int_equal(st.st_blocks, 0);
	assert_int_equal(pu_stats(x.dfd).busy_created, 0);
	fx_done(&x);
}

/* ---- threads: truncates that wait, and holders that act while they do ---- */

struct trunc_job {
	const char *path;
	off_t size;
	int err;			/* 0 or errno */
	uint64_t ms;			/* how long it took */
	int done;			/* atomic */
};

static void *trunc_thread(void *arg)
{
	struct trunc_job *j = arg;
	uint64_t t0 = pu_now_ms();

	j->err = truncate(j->path, j->size) ? errno : 0;
	j->ms = pu_now_ms() - t0;
	__atomic_store_n(&j->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static bool job_done(struct trunc_job *j)
{
	return __atomic_load_n(&j->done, __ATOMIC_ACQUIRE);
}

struct holder_job {
	int fd;
	uint64_t pin_id;
	unsigned delay_ms;		/* unpin after this long (delayed holder) */
	int unpin_ret;
	uint32_t seen_state;		/* polling holder: the state it reacted to */
	uint64_t seen_deadline_ns;
};

static void *delayed_unpinner(void *arg)
{
	struct holder_job *h = arg;

	usleep(h->delay_ms * 1000);	/* the scenario: a device done with its buffer after a while */
	h->unpin_ret = daxfs_unpin(h->fd, h->pin_id);
	return NULL;
}

/* A well-behaved holder: polls its pin and lets go as soon as the lease is broken. */
static void *polling_holder(void *arg)
{
	struct holder_job *h = arg;
	uint64_t deadline = pu_now_ms() + 10000;

	h->unpin_ret = -ETIMEDOUT;
	while (pu_now_ms() < deadline) {
		struct daxfs_ioc_pin_status ps;

		if (daxfs_pin_status(h->fd, h->pin_id, &ps) != 0)
			break;
		if (ps.state != DAXFS_PIN_ACTIVE) {
			h->seen_state = ps.state;
			h->seen_deadline_ns = ps.deadline_ns;
			h->unpin_ret = daxfs_unpin(h->fd, h->pin_id);
			break;
		}
		usleep(2000);
	}
	return NULL;
}

/* policy=wait: the truncate returns only once the holder has unpinned, then frees everything at once. */
static void test_policy_wait(void **state)
{
	struct fx x;
	pthread_t t;

	(void)state;
	fx_setup(&x, "polwait", "policy=wait");
	struct holder_job h = { .fd = x.fd, .pin_id = x.p.id, .delay_ms = 300 };
	assert_int_equal(pthread_create(&t, NULL, delayed_unpinner, &h), 0);
	pu_guard(&x.m, "policy=wait truncate", 10);
	uint64_t t0 = pu_now_ms();
	assert_ok(truncate(x.f, 0));
	uint64_t dt = pu_now_ms() - t0;
	pu_guard(&x.m, "the rest of the test", PU_TEST_TIMEOUT);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(h.unpin_ret, 0);
	if (dt < 250)
		fail_msg("truncate returned after %llu ms, before the holder unpinned at 300 ms", (unsigned long long)dt);
	struct stat st;
	assert_ok(fstat(x.fd, &st));
	assert_int_equal(st.st_size, 0);
	assert_int_equal(st.st_blocks, 0);
	struct daxfs_ioc_stats s = pu_stats(x.dfd);
	assert_int_equal(s.busy_created, 0);	/* it waited instead */
	assert_int_equal(s.frees_waited, 1);
	assert_true(s.free_wait_ns_total >= 250000000ull);
	fx_done(&x);
}

/*
 * The 2017 deadlock: a truncate waiting for a pin must not lock out the holder, which needs the file
 * to finish its work and unpin.  While the truncate waits, the holder reads, pins and unpins another
 * range, asks for its pin's status, runs DMA, and finally unpins; then the truncate completes.
 */
static void test_policy_wait_holder_not_deadlocked(void **state)
{
	struct fx x;
	pthread_t t;
	struct stat st;

	(void)state;
	fx_setup(&x, "poldeadlock", "policy=wait");
	struct trunc_job j = { .path = x.f, .size = 0 };
	pu_guard(&x.m, "starting the waiting truncate", 20);
	assert_int_equal(pthread_create(&t, NULL, trunc_thread, &j), 0);
	if (!PU_POLL(pu_stats(x.dfd).frees_waited >= 1, 5000))
		fail_msg("the truncate never started waiting for the pin (done %d, err %d)", job_done(&j), j.err);
	assert_false(job_done(&j));

	char *buf = malloc(1 * MiB);
	assert_non_null(buf);
	pu_guard(&x.m, "holder pread while a truncate waits", 10);
	assert_int_equal(pread(x.fd, buf, 1 * MiB, PIN_OFF), (ssize_t)(1 * MiB));
	assert_true(pu_pat_diff(buf, 1 * MiB, PIN_OFF, 1) < 0);
	pu_guard(&x.m, "holder fstat while a truncate waits", 10);
	assert_ok(fstat(x.fd, &st));
	pu_guard(&x.m, "holder pins another range while a truncate waits", 10);
	struct daxfs_pin q = pu_pin(x.fd, 8 * MiB, 1 * MiB, 0);
	pu_guard(&x.m, "holder PIN_STATUS while a truncate waits", 10);
	struct daxfs_ioc_pin_status ps;
	assert_int_equal(daxfs_pin_status(x.fd, x.p.id, &ps), 0);
	assert_int_equal(ps.state, DAXFS_PIN_ACTIVE);
	assert_int_equal(daxfs_pin_status(x.fd, q.id, &ps), 0);
	assert_int_equal(ps.state, DAXFS_PIN_ACTIVE);
	pu_guard(&x.m, "holder DMA while a truncate waits", 10);
	dma_write_checked(&x, 0x5555);
	pu_guard(&x.m, "holder unpins the other range while a truncate waits", 10);
	assert_int_equal(daxfs_unpin(x.fd, q.id), 0);
	daxfs_pin_free(&q);
	/* The first pin still holds blocks being truncated: the truncate keeps waiting. */
	assert_false(PU_POLL(job_done(&j), 100));
	pu_guard(&x.m, "holder's final unpin", 10);
	assert_int_equal(daxfs_unpin(x.fd, x.p.id), 0);
	pu_guard(&x.m, "the truncate finishing after the unpin", 10);
	if (!PU_POLL(job_done(&j), 5000))
		fail_msg("truncate still waiting 5 s after the last unpin");
	assert_int_equal(pthread_join(t, NULL), 0);
	pu_guard(&x.m, "the rest of the test", PU_TEST_TIMEOUT);
	free(buf);
	assert_int_equal(j.err, 0);
	assert_ok(fstat(x.fd, &st));
	assert_int_equal(st.st_size, 0);
	assert_int_equal(st.st_blocks, 0);
	assert_int_equal(pu_nbusy(x.dfd), 0);
	fx_done(&x);
}

static void *delayed_closer(void *arg)
{
	struct holder_job *h = arg;

	usleep(h->delay_ms * 1000);
	h->unpin_ret = close(h->fd) ? -errno : 0;
	return NULL;
}

/*
 * More of policy=wait: a free that misses the pin does not wait; punch hole and O_TRUNC wait like
 * truncate; closing the pin's file ends the wait like an unpin; and switching the policy to busy
 * while a truncate waits lets it finish at once, leaving the pinned blocks busy.
 */
static void test_policy_wait_variants(void **state)
{
	struct fx x;
	pthread_t t;
	struct stat st;

	(void)state;
	fx_setup(&x, "polwaitvar", "policy=wait");
	pu_guard(&x.m, "policy=wait: truncate that misses the pin", 10);
	uint64_t t0 = pu_now_ms();
	assert_ok(truncate(x.f, 8 * MiB));
	assert_true(pu_now_ms() - t0 < 500);

	/* Punch hole over the pin waits for the unpin. */
	struct holder_job h = { .fd = x.fd, .pin_id = x.p.id, .delay_ms = 300 };
	assert_int_equal(pthread_create(&t, NULL, delayed_unpinner, &h), 0);
	pu_guard(&x.m, "policy=wait: punch hole", 10);
	t0 = pu_now_ms();
	assert_ok(fallocate(x.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, PIN_OFF, PIN_LEN));
	uint64_t dt = pu_now_ms() - t0;
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(h.unpin_ret, 0);
	if (dt < 250)
		fail_msg("punch hole returned after %llu ms, before the unpin at 300 ms", (unsigned long long)dt);
	assert_true(pu_file_zero(x.f, PIN_OFF, PIN_LEN));
	daxfs_pin_free(&x.p);

	/* O_TRUNC waits too. */
	pu_write_file(x.f, 8 * MiB, 1);
	x.p = pu_pin(x.fd, PIN_OFF, PIN_LEN, DAXFS_PIN_WRITE);
	h = (struct holder_job){ .fd = x.fd, .pin_id = x.p.id, .delay_ms = 300 };
	assert_int_equal(pthread_create(&t, NULL, delayed_unpinner, &h), 0);
	pu_guard(&x.m, "policy=wait: open O_TRUNC", 10);
	t0 = pu_now_ms();
	int tfd = open(x.f, O_WRONLY | O_TRUNC);
	dt = pu_now_ms() - t0;
	assert_true(tfd >= 0);
	close(tfd);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(h.unpin_ret, 0);
	if (dt < 250)
		fail_msg("open O_TRUNC returned after %llu ms, before the unpin at 300 ms", (unsigned long long)dt);
	assert_ok(fstat(x.fd, &st));
	assert_int_equal(st.st_size, 0);
	daxfs_pin_free(&x.p);

	/* The holder closes its file instead of unpinning: the wait ends. */
	pu_write_file(x.f, 8 * MiB, 1);
	x.p = pu_pin(x.fd, PIN_OFF, PIN_LEN, DAXFS_PIN_WRITE);
	h = (struct holder_job){ .fd = x.fd, .delay_ms = 300 };
	x.fd = -1;
	assert_int_equal(pthread_create(&t, NULL, delayed_closer, &h), 0);
	pu_guard(&x.m, "policy=wait: truncate while the holder closes", 10);
	t0 = pu_now_ms();
	assert_ok(truncate(x.f, 0));
	dt = pu_now_ms() - t0;
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(h.unpin_ret, 0);
	assert_true(dt >= 250);
	assert_true(PU_POLL(pu_npins(x.dfd) == 0, 5000));
	daxfs_pin_free(&x.p);

	/* Switch to busy while a truncate waits: it completes, and the pinned blocks become busy. */
	pu_write_file(x.f, FSIZE, 1);
	x.fd = open(x.f, O_RDWR);
	assert_true(x.fd >= 0);
	x.p = pu_pin(x.fd, PIN_OFF, PIN_LEN, DAXFS_PIN_WRITE);
	uint64_t waited = pu_stats(x.dfd).frees_waited;
	struct trunc_job j = { .path = x.f, .size = 0 };
	pu_guard(&x.m, "policy=wait switched to busy under a waiting truncate", 15);
	assert_int_equal(pthread_create(&t, NULL, trunc_thread, &j), 0);
	assert_true(PU_POLL(pu_stats(x.dfd).frees_waited > waited, 5000));
	assert_false(job_done(&j));
	assert_int_equal(daxfs_policy_set(x.dfd, DAXFS_POLICY_BUSY, DAXFS_ADMIT_ALL, 1000, 0), 0);
	if (!PU_POLL(job_done(&j), 2000))
		fail_msg("the waiting truncate did not finish after the switch to policy=busy");
	assert_int_equal(pthread_join(t, NULL), 0);
	pu_guard(&x.m, "the rest of the test", PU_TEST_TIMEOUT);
	assert_int_equal(j.err, 0);
	check_busy_is_pin(&x);
	unpin_and_check_reclaim(&x);
	fx_done(&x);
}

/* policy=wait with wait_timeout_ms=200: a holder that never lets go makes the truncate fail with EBUSY. */
static void test_policy_wait_timeout(void **state)
{
	struct fx x;
	struct stat st;

	(void)state;
	fx_setup(&x, "polwaitto", "policy=wait,wait_timeout_ms=200");
	pu_guard(&x.m, "truncate with wait_timeout_ms=200", 10);
	uint64_t t0 = pu_now_ms();
	assert_errno(truncate(x.f, 0), EBUSY);
	uint64_t dt = pu_now_ms() - t0;
	pu_guard(&x.m, "the rest of the test", PU_TEST_TIMEOUT);
	if (dt < 180 || dt > 2000)
		fail_msg("EBUSY after %llu ms, expected about 200", (unsigned long long)dt);
	assert_ok(fstat(x.fd, &st));
	assert_int_equal(st.st_size, FSIZE);
	assert_int_equal((uint64_t)st.st_blocks * 512 / BS, x.blocks);
	assert_true(pu_check_file(x.f, 0, FSIZE, 1));
	struct daxfs_ioc_stats s = pu_stats(x.dfd);
	assert_int_equal(s.frees_failed, 1);
	assert_int_equal(s.busy_created, 0);
	assert_int_equal(daxfs_pin_status(x.fd, x.p.id, &(struct daxfs_ioc_pin_status){ 0 }), 0);
	assert_int_equal(daxfs_unpin(x.fd, x.p.id), 0);
	assert_ok(truncate(x.f, 0));
	fx_done(&x);
}

/* policy=revoke, grace 300 ms, a holder that ignores the lease break: its pin is revoked. */
static void test_policy_revoke_ignored(void **state)
{
	struct fx x;
	struct stat st;
	struct daxfs_ioc_pin_status ps;

	(void)state;
	fx_setup(&x, "polrevoke", "policy=revoke,grace_ms=300");
	dma_write_checked(&x, 0x6666);
	pu_guard(&x.m, "truncate under revoke", 10);
	uint64_t t0 = pu_now_ms();
	assert_ok(truncate(x.f, 0));
	uint64_t dt = pu_now_ms() - t0;
	pu_guard(&x.m, "the rest of the test", PU_TEST_TIMEOUT);
	if (dt < 280 || dt > 3000)
		fail_msg("revoking truncate took %llu ms, expected about the 300 ms grace period", (unsigned long long)dt);
	assert_ok(fstat(x.fd, &st));
	assert_int_equal(st.st_size, 0);
	assert_int_equal(st.st_blocks, 0);
	assert_int_equal(daxfs_pin_status(x.fd, x.p.id, &ps), 0);
	assert_int_equal(ps.state, DAXFS_PIN_REVOKED);
	assert_int_equal(daxfs_dma(x.fd, x.p.id, DAXFS_DMA_WRITE_PATTERN, 0, PIN_LEN, 1, NULL, NULL), -ENOLINK);
	assert_int_equal(daxfs_dma(x.fd, x.p.id, DAXFS_DMA_VERIFY_PATTERN, 0, PIN_LEN, 1, NULL, NULL), -ENOLINK);
	assert_int_equal(daxfs_dma(x.fd, x.p.id, DAXFS_DMA_ZERO, 0, PIN_LEN, 1, NULL, NULL), -ENOLINK);
	struct daxfs_ioc_stats s = pu_stats(x.dfd);
	assert_int_equal(s.pins_revoked, 1);
	assert_int_equal(s.busy_created, 0);	/* revoked blocks are simply free */
	assert_int_equal(s.pinned_blocks, 0);
	assert_int_equal(pu_npins(x.dfd), 1);	/* listed until its holder unpins */
	/* The revoked blocks are really free: a fill takes them, and the dead pin cannot write into it. */
	uint64_t glen = pu_fill(x.g);
	assert_int_equal(daxfs_dma(x.fd, x.p.id, DAXFS_DMA_WRITE_PATTERN, 0, PIN_LEN, 2, NULL, NULL), -ENOLINK);
	struct scan sc = pu_scan(x.g);
	assert_int_equal(sc.units + sc.foreign, 0);
	assert_true(g_overlap_with_pin(&x, glen) > 0);
	assert_int_equal(daxfs_unpin(x.fd, x.p.id), 0);
	assert_int_equal(pu_npins(x.dfd), 0);
	assert_int_equal(daxfs_unpin(x.fd, x.p.id), -ENOENT);
	assert_ok(unlink(x.g));
	fx_done(&x);
}

/* policy=revoke with a holder that watches its pin: it unpins on REVOKING, long before the deadline. */
static void test_policy_revoke_cooperative(void **state)
{
	struct fx x;
	pthread_t t;

	(void)state;
	fx_setup(&x, "polrevcoop", "policy=revoke,grace_ms=3000");
	struct holder_job h = { .fd = x.fd, .pin_id = x.p.id };
	assert_int_equal(pthread_create(&t, NULL, polling_holder, &h), 0);
	pu_guard(&x.m, "truncate under revoke with a polling holder", 15);
	uint64_t t0 = pu_now_ms();
	assert_ok(truncate(x.f, 0));
	uint64_t dt = pu_now_ms() - t0;
	assert_int_equal(pthread_join(t, NULL), 0);
	pu_guard(&x.m, "the rest of the test", PU_TEST_TIMEOUT);
	assert_int_equal(h.seen_state, DAXFS_PIN_REVOKING);
	assert_true(h.seen_deadline_ns > 0 && h.seen_deadline_ns <= 3000000000ull);
	assert_int_equal(h.unpin_ret, 0);
	if (dt > 1500)
		fail_msg("truncate took %llu ms although the holder unpinned on the lease break", (unsigned long long)dt);
	struct daxfs_ioc_stats s = pu_stats(x.dfd);
	assert_int_equal(s.pins_revoked, 0);
	assert_int_equal(s.busy_created, 0);
	assert_int_equal(pu_npins(x.dfd), 0);
	fx_done(&x);
}

/*
 * policy=revoke with wait_timeout_ms shorter than the grace period: the truncate gives up with
 * EBUSY first.  The broken lease must still end consistently: by its deadline the pin is either
 * active again or revoked, not left "revoking" for ever with no time left.
 */
static void test_policy_revoke_after_timeout(void **state)
{
	struct fx x;
	struct daxfs_ioc_pin_status ps;

	(void)state;
	fx_setup(&x, "polrevto", "policy=revoke,grace_ms=400,wait_timeout_ms=100");
	pu_guard(&x.m, "truncate under revoke with wait_timeout_ms=100", 10);
	uint64_t t0 = pu_now_ms();
	assert_errno(truncate(x.f, 0), EBUSY);
	uint64_t dt = pu_now_ms() - t0;
	assert_true(dt >= 90 && dt < 400);
	/*
	 * Right after, the break may still stand (REVOKING) or be withdrawn (ACTIVE); well past the
	 * 400 ms deadline it must have ended one way or the other.
	 */
	assert_int_equal(daxfs_pin_status(x.fd, x.p.id, &ps), 0);
	assert_int_not_equal(ps.state, DAXFS_PIN_REVOKED);	/* not before its deadline */
	bool settled = PU_POLL(daxfs_pin_status(x.fd, x.p.id, &ps) == 0 && ps.state != DAXFS_PIN_REVOKING,
			       t0 + 1500 - pu_now_ms());
	if (!settled)
		fail_msg("pin %llu still REVOKING (deadline_ns %llu) %llu ms after its 400 ms lease break: never "
			 "revoked, never restored", (unsigned long long)x.p.id, (unsigned long long)ps.deadline_ns,
			 (unsigned long long)(pu_now_ms() - t0));
	int r = daxfs_dma(x.fd, x.p.id, DAXFS_DMA_VERIFY_PATTERN, 0, PIN_LEN, 1, NULL, NULL);
	assert_int_equal(r, ps.state == DAXFS_PIN_REVOKED ? -ENOLINK : 0);
	assert_int_equal(daxfs_unpin(x.fd, x.p.id), 0);
	assert_ok(truncate(x.f, 0));
	fx_done(&x);
}

/*
 * policy=revoke: a pin taken on the blocks while a lease break is pending falls under the same
 * deadline.  Its holder must be told (REVOKING, or the pin refused), not find it silently revoked.
 */
static void test_policy_revoke_new_pin_during_grace(void **state)
{
	struct fx x;
	pthread_t t;
	struct daxfs_ioc_pin_status ps;

	(void)state;
	fx_setup(&x, "polrevnew", "policy=revoke,grace_ms=1000");
	int fd2 = open(x.f, O_RDWR);
	assert_true(fd2 >= 0);
	struct trunc_job j = { .path = x.f, .size = 0 };
	pu_guard(&x.m, "truncate under revoke, new pin during grace", 15);
	assert_int_equal(pthread_create(&t, NULL, trunc_thread, &j), 0);
	assert_true(PU_POLL(daxfs_pin_status(x.fd, x.p.id, &ps) == 0 && ps.state == DAXFS_PIN_REVOKING, 5000));
	uint64_t deadline_ms = pu_now_ms() + ps.deadline_ns / 1000000;
	struct daxfs_pin q;
	int r = daxfs_pin(fd2, PIN_OFF, PIN_LEN, 0, &q);
	bool told = r != 0;
	if (r == 0) {
		/* Until 100 ms before the deadline, the new pin must show up as revoking. */
		told = PU_POLL(daxfs_pin_status(fd2, q.id, &ps) == 0 && ps.state != DAXFS_PIN_ACTIVE,
			       deadline_ms > pu_now_ms() + 100 ? deadline_ms - pu_now_ms() - 100 : 0);
		if (!told)
			print_message("new pin %llu still ACTIVE 100 ms before the lease-break deadline\n",
				      (unsigned long long)q.id);
	}
	assert_int_equal(pthread_join(t, NULL), 0);
	pu_guard(&x.m, "the rest of the test", PU_TEST_TIMEOUT);
	assert_int_equal(j.err, 0);
	if (r == 0) {
		assert_int_equal(daxfs_pin_status(fd2, q.id, &ps), 0);
		assert_int_equal(ps.state, DAXFS_PIN_REVOKED);	/* it was under the same deadline */
		assert_int_equal(daxfs_unpin(fd2, q.id), 0);
		daxfs_pin_free(&q);
	}
	close(fd2);
	if (!told)
		fail_msg("a pin taken during a pending lease break stayed ACTIVE until it was revoked: its holder "
			 "had no warning");
	fx_done(&x);
}

/* policy=unsafe, the baseline: the pinned blocks are freed, reused, and the device writes into G. */
static void test_policy_unsafe(void **state)
{
	struct fx x;

	(void)state;
	fx_setup(&x, "polunsafe", "policy=unsafe");
	dma_write_checked(&x, 0x7777);
	uint64_t bfree0 = pu_bfree(&x.m);
	assert_ok(truncate(x.f, 0));
	assert_int_equal(pu_bfree(&x.m), bfree0 + x.blocks);	/* pinned blocks included */
	struct daxfs_ioc_stats s = pu_stats(x.dfd);
	assert_true(s.unsafe_frees >= 1);
	assert_int_equal(s.unsafe_blocks, PIN_BLOCKS);
	assert_int_equal(s.busy_created, 0);
	uint64_t glen = pu_fill(x.g);
	uint64_t shared = g_overlap_with_pin(&x, glen);
	assert_int_equal(shared, PIN_LEN);	/* G got every pinned block */
	struct scan sc = pu_scan(x.g);
	assert_int_equal(sc.units + sc.foreign, 0);
	/* The stale pin still works, and its DMA corrupts G: the detection the other tests rely on. */
	assert_int_equal(daxfs_dma(x.fd, x.p.id, DAXFS_DMA_WRITE_PATTERN, 0, PIN_LEN, 0x8888, NULL, NULL), 0);
	sc = pu_scan(x.g);
	print_message("unsafe: %llu pattern units of pin %llu found in G\n", (unsigned long long)sc.units,
		      (unsigned long long)x.p.id);
	assert_int_equal(sc.units, PIN_UNITS);
	assert_int_equal(sc.first.pin_id, x.p.id);
	assert_int_equal(sc.first.tag, 0x8888);
	assert_true(sc.foreign > 0);
	assert_int_equal(daxfs_unpin(x.fd, x.p.id), 0);
	assert_ok(unlink(x.g));
	fx_done(&x);
}

/* Kill the daemon while busy extents exist: fsck sees them as busy, the next mount reclaims them. */
static void test_crash_with_busy_extents(void **state)
{
	struct fx x;
	char out[4096];
	unsigned long long busy = 0;

	(void)state;
	fx_setup(&x, "busycrash", NULL);
	dma_write_checked(&x, 0x9999);
	assert_ok(truncate(x.f, 0));
	check_busy_is_pin(&x);
	uint64_t bfree = pu_bfree(&x.m);
	close(x.dfd);
	h_crash(&x.m);
	close(x.fd);	/* its connection is gone: no release reaches a daemon */
	x.fd = -1;

	int rc = pu_fsck(&x.m, out, sizeof(out));
	if (rc != 0)
		fail_msg("fsck -n after the crash: exit %d: %s", rc, out);
	const char *b = strstr(out, "busy)");
	const char *open_paren = b ? b : out;
	while (open_paren > out && *open_paren != '(')
		open_paren--;
	if (!b || sscanf(open_paren, "(%llu busy)", &busy) != 1)
		fail_msg("fsck output does not count busy blocks: %s", out);
	assert_int_equal(busy, PIN_BLOCKS);

	assert_int_equal(h_mount(&x.m, "-o attr_timeout=0"), 0);
	pu_guard(&x.m, "after the remount", PU_TEST_TIMEOUT);
	x.dfd = pu_dirfd(&x.m);
	if (!PU_POLL(pu_nbusy(x.dfd) == 0 && pu_bfree(&x.m) == bfree + PIN_BLOCKS, 5000))
		fail_msg("5 s after remount: %u busy extents, %llu free blocks (expected %llu)", pu_nbusy(x.dfd),
			 (unsigned long long)pu_bfree(&x.m), (unsigned long long)(bfree + PIN_BLOCKS));
	for (uint32_t i = 0; i < x.p.nextents; i++)
		assert_true(pu_media_zero(&x.m, x.p.ext[i].media_off, x.p.ext[i].len));
	struct stat st;
	assert_ok(stat(x.f, &st));
	assert_int_equal(st.st_size, 0);
	assert_int_equal(pu_npins(x.dfd), 0);
	fx_done(&x);
}

/* An unmount right after the last unpin finishes reclaim first: the image has no busy blocks left. */
static void test_umount_drains_reclaim(void **state)
{
	struct fx x;
	char out[4096];
	unsigned long long busy = 1;

	(void)state;
	fx_setup(&x, "busyumount", NULL);
	assert_ok(truncate(x.f, 0));
	check_busy_is_pin(&x);
	assert_ok(close(x.fd));	/* drops the pin; no waiting for reclaim */
	x.fd = -1;
	close(x.dfd);
	x.dfd = -1;
	pu_release_barrier(&x.m);
	assert_int_equal(h_umount(&x.m), 0);
	int rc = pu_fsck(&x.m, out, sizeof(out));
	if (rc != 0)
		fail_msg("fsck -n: exit %d: %s", rc, out);
	const char *b = strstr(out, " busy)");
	while (b && b > out && *b != '(')
		b--;
	if (!b || sscanf(b, "(%llu busy)", &busy) != 1)
		fail_msg("fsck output does not count busy blocks: %s", out);
	assert_int_equal(busy, 0);
	h_destroy(&x.m);
	daxfs_pin_free(&x.p);
}

/* Full device: space a live pin holds gives ENOSPC at once; once unpinned, allocation waits for reclaim. */
static void test_enospc_and_reclaim(void **state)
{
	struct fx x;
	char probe[512], buf[4096];

	(void)state;
	fx_setup(&x, "enospc", NULL);
	snprintf(probe, sizeof(probe), "%s", P(&x.m, "probe"));
	int pfd = open(probe, O_WRONLY | O_CREAT, 0644);	/* created now: later it needs only data blocks */
	assert_true(pfd >= 0);
	assert_ok(truncate(x.f, 0));
	pu_fill(x.g);
	memset(buf, 0x77, sizeof(buf));
	uint64_t t0 = pu_now_ms();
	assert_errno(pwrite(pfd, buf, sizeof(buf), 0), ENOSPC);
	uint64_t dt = pu_now_ms() - t0;
	if (dt >= 100)
		fail_msg("ENOSPC with only pinned space left took %llu ms (nothing to wait for)", (unsigned long long)dt);

	/* Now the pinned space is the only space there will be: an allocation right after the unpin gets it. */
	assert_int_equal(daxfs_unpin(x.fd, x.p.id), 0);
	ssize_t w = pwrite(pfd, buf, sizeof(buf), 0);
	if (w != (ssize_t)sizeof(buf))
		fail_msg("write right after the unpin: %zd (%s); enospc_waits %llu", w, w < 0 ? strerror(errno) : "short",
			 (unsigned long long)pu_stats(x.dfd).enospc_waits);
	assert_true(PU_POLL(pu_nbusy(x.dfd) == 0, 5000));
	/* The rest of the reclaimed space is usable too. */
	for (uint64_t off = BS; off < 1 * MiB; off += BS)
		assert_int_equal(pwrite(pfd, buf, sizeof(buf), (off_t)off), (ssize_t)sizeof(buf));
	close(pfd);
	assert_ok(unlink(x.g));
	fx_done(&x);
}

/* reclaim=discard punches reclaimed blocks out of the image: its allocated size drops by about that much. */
static void test_reclaim_discard(void **state)
{
	struct fx x;
	struct stat st;

	(void)state;
	fx_setup(&x, "discard", "reclaim=discard");
	dma_write_checked(&x, 0xaaaa);
	assert_ok(truncate(x.f, 0));
	check_busy_is_pin(&x);
	assert_ok(stat(x.m.image, &st));
	uint64_t before = (uint64_t)st.st_blocks * 512;
	assert_int_equal(daxfs_unpin(x.fd, x.p.id), 0);
	assert_true(PU_POLL(pu_nbusy(x.dfd) == 0, 5000));
	assert_ok(stat(x.m.image, &st));
	uint64_t after = (uint64_t)st.st_blocks * 512;
	print_message("image allocation: %llu -> %llu bytes\n", (unsigned long long)before, (unsigned long long)after);
	if (after > before || before - after < PIN_LEN - 64 * KiB || before - after > PIN_LEN + 256 * KiB)
		fail_msg("image allocation went from %llu to %llu bytes; expected a drop of about %llu",
			 (unsigned long long)before, (unsigned long long)after, (unsigned long long)PIN_LEN);
	for (uint32_t i = 0; i < x.p.nextents; i++)
		assert_true(pu_media_zero(&x.m, x.p.ext[i].media_off, x.p.ext[i].len));
	assert_int_equal(pu_stats(x.dfd).reclaimed_blocks, PIN_BLOCKS);
	/* Discarded blocks are ordinary free blocks again. */
	pu_write_file(x.g, 4 * MiB, 3);
	assert_true(pu_check_file(x.g, 0, 4 * MiB, 3));
	fx_done(&x);
}

/*
 * policy=wait with more waiting truncates than the daemon has worker threads (libfuse's default
 * is 10): the holder's unpin must still be served, or nothing can ever finish.  Everything that
 * may block runs in child processes, so a deadlock is detected here, broken by killing the daemon,
 * and reported.
 */
#define NWAITERS 12

/* Threads of pid now waiting for a FUSE reply. */
static int fuse_waiters(pid_t pid)
{
	char path[300], wchan[64];
	struct dirent *de;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	DIR *d = opendir(path);
	if (!d)
		return 0;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%.20s/wchan", pid, de->d_name);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(wchan, sizeof(wchan), f) && strstr(wchan, "request_wait_answer"))
			n++;
		fclose(f);
	}
	closedir(d);
	return n;
}

static void *child_trunc(void *arg)
{
	return (void *)(intptr_t)(truncate((const char *)arg, 0) ? errno : 0);
}

static bool reaped(pid_t pid, int *st)
{
	return waitpid(pid, st, WNOHANG) == pid;
}

static void test_policy_wait_more_waiters_than_threads(void **state)
{
	struct mnt m;
	char path[NWAITERS][512];
	int fd[NWAITERS];
	uint64_t id[NWAITERS];
	int st;

	(void)state;
	pu_setup(&m, "polwaitmany", "64M", "policy=wait");
	int dfd = pu_dirfd(&m);
	for (int i = 0; i < NWAITERS; i++) {
		snprintf(path[i], sizeof(path[i]), "%s", P(&m, "f%d", i));
		pu_write_file(path[i], 1 * MiB, 20 + (unsigned)i);
		fd[i] = open(path[i], O_RDWR);
		assert_true(fd[i] >= 0);
		struct daxfs_pin p = pu_pin(fd[i], 0, 64 * KiB, DAXFS_PIN_WRITE);
		id[i] = p.id;
		daxfs_pin_free(&p);
	}
	/* The truncater: one thread per file; exits 0 when every truncate succeeded. */
	pid_t tr = pu_fork();
	if (tr == 0) {
		pthread_t t[NWAITERS];
		int bad = 0;

		for (int i = 0; i < NWAITERS; i++)
			if (pthread_create(&t[i], NULL, child_trunc, path[i]))
				_exit(100);
		for (int i = 0; i < NWAITERS; i++) {
			void *r;
			pthread_join(t[i], &r);
			bad += r != NULL;
		}
		_exit(bad);
	}
	/*
	 * All truncates are waiting inside the daemon before the holder lets go.  The daemon's own
	 * count says so; blocked in the kernel is not enough (a request may still be on its way).
	 */
	bool all_seen = PU_POLL(pu_stats(dfd).frees_waited == NWAITERS, 5000);
	if (!all_seen)
		print_message("only %llu of %d truncates waiting in the daemon (%d blocked in the kernel)\n",
			      (unsigned long long)pu_stats(dfd).frees_waited, NWAITERS, fuse_waiters(tr));
	/* The unpinner shares our open files, so it may drop their pins. */
	pid_t un = pu_fork();
	if (un == 0) {
		int bad = 0;

		for (int i = 0; i < NWAITERS; i++)
			bad += daxfs_unpin(fd[i], id[i]) != 0;
		_exit(bad);
	}
	bool unpinned = PU_POLL(reaped(un, &st), 5000);
	if (!unpinned) {
		/* Deadlocked: free the blocked requests by killing the daemon, then report. */
		h_crash(&m);
		waitpid(un, NULL, 0);
		waitpid(tr, NULL, 0);
		for (int i = 0; i < NWAITERS; i++)
			close(fd[i]);
		close(dfd);
		fail_msg("deadlock: with %d truncates waiting under policy=wait, the holder's UNPIN was not served "
			 "within 5 s (every daemon worker thread is blocked in a waiting truncate)", NWAITERS);
	}
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	if (!PU_POLL(reaped(tr, &st), 5000))
		fail_msg("truncates still waiting 5 s after every pin was dropped");
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	if (all_seen)
		assert_int_equal(pu_stats(dfd).frees_waited, NWAITERS);
	for (int i = 0; i < NWAITERS; i++) {
		struct stat sb;
		assert_ok(fstat(fd[i], &sb));
		assert_int_equal(sb.st_size, 0);
		close(fd[i]);
	}
	close(dfd);
	pu_finish(&m);
}

static int run(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_busy_truncate),
		cmocka_unit_test(test_busy_punch_hole),
		cmocka_unit_test(test_busy_o_trunc),
		cmocka_unit_test(test_busy_rename_over),
		cmocka_unit_test(test_busy_unlink),
		cmocka_unit_test(test_busy_overlapping_pins),
		cmocka_unit_test(test_busy_partial_truncate),
		cmocka_unit_test(test_zero_range),
		cmocka_unit_test(test_policy_fail),
		cmocka_unit_test(test_policy_wait),
		cmocka_unit_test(test_policy_wait_holder_not_deadlocked),
		cmocka_unit_test(test_policy_wait_variants),
		cmocka_unit_test(test_policy_wait_timeout),
		cmocka_unit_test(test_policy_revoke_ignored),
		cmocka_unit_test(test_policy_revoke_cooperative),
		cmocka_unit_test(test_policy_revoke_after_timeout),
		cmocka_unit_test(test_policy_revoke_new_pin_during_grace),
		cmocka_unit_test(test_policy_unsafe),
		cmocka_unit_test(test_crash_with_busy_extents),
		cmocka_unit_test(test_umount_drains_reclaim),
		cmocka_unit_test(test_enospc_and_reclaim),
		cmocka_unit_test(test_reclaim_discard),
		cmocka_unit_test(test_policy_wait_more_waiters_than_threads),
	};
	return cmocka_run_group_tests_name("pins-policy", tests, NULL, NULL);
}

int main(void)
{
	return h_main(run);
}
