/* SPDX-License-Identifier: MIT */
/*
 * Busy extents (the default policy): what happens to pinned blocks when they leave their file.
 *
 * The core check, repeated for truncate, punch hole, O_TRUNC, rename over and unlink: the pinned
 * media blocks must never reach another file while the pin lives.  A filler file G takes every free
 * block; G must not map a pinned block (its own pin's extents say where it lives), and tags written
 * through the old pin must not show up in G's data.  Also: overlapping and partly truncated pins,
 * ZERO_RANGE in place, a crash with busy extents, unmount while reclaim is queued, ENOSPC while
 * reclaim is in flight, and reclaim by discard.  The other policies are test_policies.c's.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pins_fx.h"
#include "pins_util.h"

enum detach { D_TRUNCATE, D_PUNCH, D_OTRUNC };

/* Default (busy) policy: detach the pinned range from F one way or another, then the core checks. */
static void busy_scenario(const char *name, enum detach how)
{
	struct fx x;
	struct stat st;

	fx_setup(&x, name, NULL);
	dma_write_checked(&x, 0x1111);
	uint64_t bfree0 = pu_bfree(&x.m);
	if (how == D_TRUNCATE) {
		assert_ok(truncate(x.f, 0));
	} else if (how == D_PUNCH) {
		assert_ok(fallocate(x.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, PIN_OFF, PIN_LEN));
	} else {
		int t = open(x.f, O_WRONLY | O_TRUNC);
		assert_true(t >= 0);
		assert_ok(close(t));
	}
	/* It did not wait: nothing of the policy's waiting machinery was used. */
	assert_int_equal(pu_stats(x.dfd).frees_waited, 0);
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
	if (!PU_POLL(pu_npins(x.dfd) == 0 && pu_bfree(&x.m) >= bfull + FSIZE / BS, PU_WAIT_MS))
		fail_msg("5 s after the last close: %u pins, %llu blocks free, expected at least %llu",
			 pu_npins(x.dfd), (unsigned long long)pu_bfree(&x.m), (unsigned long long)(bfull + FSIZE / BS));
	assert_true(PU_POLL(pu_nbusy(x.dfd) == 0, PU_WAIT_MS));
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
	assert_true(PU_POLL(pu_stats(x.dfd).reclaim_queued == 0 && pu_bfree(&x.m) == bfree + 1 * MiB / BS, PU_WAIT_MS));
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
	assert_true(PU_POLL(pu_nbusy(x.dfd) == 0 && pu_bfree(&x.m) == bfree + 2 * MiB / BS, PU_WAIT_MS));
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
	assert_int_equal(pu_count_units(buf, 1 * MiB, x.p.id, 0xbbbb), 1 * MiB / DAXFS_TAG_UNIT);
	assert_true(pu_check_file(x.f, 0, PIN_OFF, 1));

	bfree0 = pu_bfree(&x.m);
	assert_int_equal(daxfs_unpin(x.fd, x.p.id), 0);
	assert_true(PU_POLL(pu_nbusy(x.dfd) == 0 && pu_bfree(&x.m) == bfree0 + 1 * MiB / BS, PU_WAIT_MS));
	assert_int_equal(pu_stats(x.dfd).reclaimed_blocks, 1 * MiB / BS);
	/* F's own half of the old pin is untouched by reclaim. */
	assert_int_equal(pread(x.fd, buf, 1 * MiB, PIN_OFF), (ssize_t)(1 * MiB));
	assert_int_equal(pu_count_units(buf, 1 * MiB, x.p.id, 0xbbbb), 1 * MiB / DAXFS_TAG_UNIT);
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

/*
 * Kill the daemon while busy extents exist: fsck sees them as busy, the next mount reclaims them
 * (the pin is a read pin: no device could be writing them, so nothing is quarantined).
 */
static void test_crash_with_busy_extents(void **state)
{
	struct fx x;
	char out[4096];
	unsigned long long busy = 0;

	(void)state;
	fx_setup_flags(&x, "busycrash", NULL, 0);
	assert_true(pu_check_file(x.f, PIN_OFF, PIN_LEN, 1));
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
	if (!PU_POLL(pu_nbusy(x.dfd) == 0 && pu_bfree(&x.m) == bfree + PIN_BLOCKS, PU_WAIT_MS))
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

/*
 * A holder that outlives a daemon crash may still be writing what it pinned.  It pins F's range for
 * writing (in a child process, which survives the daemon), F is truncated (busy extents) and G's
 * range stays pinned in place; then the daemon dies.  With recover=quarantine (the default) the
 * next mount keeps both out of reuse while the holder lives, and gives them back when it exits; with
 * recover=reclaim the busy extents are reclaimed at once.
 */
static pid_t start_holder(const char *f, const char *g, int *ready_fd)
{
	int p[2];

	assert_ok(pipe(p));
	pid_t pid = pu_fork();
	if (pid == 0) {
		int fd = open(f, O_RDWR), gfd = open(g, O_RDWR);
		struct daxfs_pin a, b;

		close(p[0]);
		if (fd < 0 || gfd < 0 || daxfs_pin(fd, PIN_OFF, PIN_LEN, DAXFS_PIN_WRITE | DAXFS_PIN_LONGTERM, &a) ||
		    daxfs_pin(gfd, 0, PIN_LEN, DAXFS_PIN_WRITE | DAXFS_PIN_LONGTERM, &b))
			_exit(3);
		if (write(p[1], "r", 1) != 1)
			_exit(4);
		for (;;)
			pause();	/* a device that keeps the registration until killed */
	}
	close(p[1]);
	*ready_fd = p[0];
	char c;
	assert_int_equal(read(p[0], &c, 1), 1);
	return pid;
}

static void quarantine_case(bool quarantine)
{
	struct fx x;
	char g2[512];
	int ready;

	fx_setup_flags(&x, quarantine ? "quarantine" : "noquarantine", NULL, 0);	/* a read pin: extents only */
	snprintf(g2, sizeof(g2), "%s", P(&x.m, "G2"));
	pu_write_file(g2, PIN_LEN, 6);
	int g2fd = open(g2, O_RDONLY);
	assert_true(g2fd >= 0);
	struct daxfs_pin gp = pu_pin(g2fd, 0, PIN_LEN, 0);
	pid_t holder = start_holder(x.f, g2, &ready);
	assert_int_equal(daxfs_unpin(x.fd, x.p.id), 0);
	assert_int_equal(daxfs_unpin(g2fd, gp.id), 0);
	assert_ok(truncate(x.f, 0));	/* the holder's pin keeps F's range busy */
	assert_int_equal(pu_stats(x.dfd).busy_blocks, PIN_BLOCKS);
	uint64_t bfree = pu_bfree(&x.m);
	close(x.dfd);
	close(x.fd);
	close(g2fd);
	x.fd = -1;
	h_crash(&x.m);	/* the holder lives on */

	assert_int_equal(h_mount(&x.m, quarantine ? "-o attr_timeout=0" : "-o attr_timeout=0,recover=reclaim"), 0);
	pu_guard(&x.m, "after the remount", PU_TEST_TIMEOUT);
	x.dfd = pu_dirfd(&x.m);
	struct daxfs_ioc_stats s = pu_stats(x.dfd);
	if (!quarantine) {
		/* Everything busy is reclaimed at once, live holder or not: the promise is only for crashes of both. */
		assert_int_equal(s.quarantined_blocks, 0);
		if (!PU_POLL(pu_nbusy(x.dfd) == 0, PU_WAIT_MS))
			fail_msg("recover=reclaim: busy extents left 30 s after the mount");
	} else {
		/* Held: the busy range, and G2's pinned range, not queued for reclaim. */
		assert_int_equal(s.quarantined_blocks, 2 * PIN_BLOCKS);
		assert_int_equal(s.busy_blocks, PIN_BLOCKS);
		assert_int_equal(s.reclaim_queued, 0);
		assert_int_equal(pu_bfree(&x.m), bfree);
		/* G2 truncated now: its blocks stay out of reuse, busy, as if the pin were live. */
		assert_ok(truncate(g2, 0));
		assert_int_equal(pu_stats(x.dfd).busy_blocks, 2 * PIN_BLOCKS);
		uint64_t glen = pu_fill(x.g);
		assert_int_equal(g_overlap_with_pin(&x, glen), 0);
		int gfd = open(x.g, O_RDONLY);
		assert_true(gfd >= 0);
		struct daxfs_pin all = pu_pin(gfd, 0, glen, 0);
		assert_int_equal(overlap_bytes(all.ext, all.nextents, gp.ext, gp.nextents), 0);
		assert_int_equal(daxfs_unpin(gfd, all.id), 0);
		daxfs_pin_free(&all);
		close(gfd);
		uint64_t full = pu_bfree(&x.m);
		assert_ok(unlink(x.g));
		/* G's blocks come back when its RELEASE arrives, after close() returned: count from then. */
		if (!PU_POLL(pu_bfree(&x.m) >= full + glen / BS, PU_WAIT_MS))
			fail_msg("30 s after the unlink: %llu blocks free, G's %llu not back",
				 (unsigned long long)pu_bfree(&x.m), (unsigned long long)(glen / BS));
		/* The holder exits: what it held comes back. */
		uint64_t before = pu_bfree(&x.m);
		assert_ok(kill(holder, SIGKILL));
		waitpid(holder, NULL, 0);
		if (!PU_POLL(pu_nbusy(x.dfd) == 0 && pu_bfree(&x.m) == before + 2 * PIN_BLOCKS, PU_WAIT_MS))
			fail_msg("30 s after the holder exited: %u busy extents, %llu blocks free (expected %llu)",
				 pu_nbusy(x.dfd), (unsigned long long)pu_bfree(&x.m),
				 (unsigned long long)(before + 2 * PIN_BLOCKS));
		assert_int_equal(pu_stats(x.dfd).quarantined_blocks, 0);
	}
	if (!quarantine) {
		kill(holder, SIGKILL);
		waitpid(holder, NULL, 0);
	}
	close(ready);
	daxfs_pin_free(&gp);
	fx_done(&x);
}

static void test_crash_quarantine(void **state)
{
	(void)state;
	quarantine_case(true);
}

static void test_crash_recover_reclaim(void **state)
{
	(void)state;
	quarantine_case(false);
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
	uint64_t waits = pu_stats(x.dfd).enospc_waits;
	assert_errno(pwrite(pfd, buf, sizeof(buf), 0), ENOSPC);
	/* Only pinned space left: nothing is coming back, so the allocation did not wait for reclaim. */
	assert_int_equal(pu_stats(x.dfd).enospc_waits, waits);

	/* Now the pinned space is the only space there will be: an allocation right after the unpin gets it. */
	assert_int_equal(daxfs_unpin(x.fd, x.p.id), 0);
	ssize_t w = pwrite(pfd, buf, sizeof(buf), 0);
	if (w != (ssize_t)sizeof(buf))
		fail_msg("write right after the unpin: %zd (%s); enospc_waits %llu", w, w < 0 ? strerror(errno) : "short",
			 (unsigned long long)pu_stats(x.dfd).enospc_waits);
	assert_true(PU_POLL(pu_nbusy(x.dfd) == 0, PU_WAIT_MS));
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
	assert_true(PU_POLL(pu_nbusy(x.dfd) == 0, PU_WAIT_MS));
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
		cmocka_unit_test(test_crash_with_busy_extents),
		cmocka_unit_test(test_crash_quarantine),
		cmocka_unit_test(test_crash_recover_reclaim),
		cmocka_unit_test(test_umount_drains_reclaim),
		cmocka_unit_test(test_enospc_and_reclaim),
		cmocka_unit_test(test_reclaim_discard),
	};
	return cmocka_run_group_tests_name("busy-extents", tests, NULL, NULL);
}

int main(void)
{
	return h_main(run);
}
