/* SPDX-License-Identifier: MIT */
#include "pins_util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

uint64_t pu_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void pu_setup(struct mnt *m, const char *name, const char *size, const char *opts)
{
	char args[64], o[512];

	h_init(m, name);
	pu_guard(NULL, NULL, 0);	/* whatever an earlier, failed test left armed */
	snprintf(args, sizeof(args), "-s %s", size);
	assert_int_equal(h_mkfs(m, args), 0);
	snprintf(o, sizeof(o), "-o attr_timeout=0%s%s", opts ? "," : "", opts ? opts : "");
	assert_int_equal(h_mount(m, o), 0);
	pu_guard(m, name, PU_TEST_TIMEOUT);
}

int pu_fsck(const struct mnt *m, char *out, size_t outlen)
{
	return h_run(out, outlen, "%s -n %s 2>&1", h_fsck_bin(), m->image);
}

void pu_release_barrier(const struct mnt *m)
{
	struct statvfs sv;

	assert_ok(statvfs(m->dir, &sv));
}

void pu_finish(struct mnt *m)
{
	char out[4096];

	pu_release_barrier(m);
	assert_int_equal(h_umount(m), 0);
	int rc = pu_fsck(m, out, sizeof(out));
	if (rc != 0)
		fail_msg("fsck -n after unmount: exit %d: %s", rc, out);
	pu_guard(NULL, NULL, 0);
	h_destroy(m);
}

int pu_dirfd(const struct mnt *m)
{
	int fd = open(m->dir, O_RDONLY | O_DIRECTORY);

	if (fd < 0)
		fail_msg("open %s: %s", m->dir, strerror(errno));
	return fd;
}

uint64_t pu_bfree(const struct mnt *m)
{
	struct statvfs sv;

	assert_ok(statvfs(m->dir, &sv));
	return sv.f_bfree;
}

struct daxfs_ioc_stats pu_stats(int fd)
{
	struct daxfs_ioc_stats st;
	int ret = daxfs_stats(fd, &st);

	if (ret)
		fail_msg("DAXFS_IOC_STATS: %s", strerror(-ret));
	return st;
}

uint32_t pu_npins(int fd)
{
	struct daxfs_pin_info *v = NULL;
	uint32_t n = 0;
	int ret = daxfs_list_pins(fd, &v, &n);

	if (ret)
		fail_msg("DAXFS_IOC_LIST_PINS: %s", strerror(-ret));
	free(v);
	return n;
}

struct daxfs_busy_info *pu_busy(int fd, uint32_t *n)
{
	struct daxfs_busy_info *v = NULL;
	int ret = daxfs_list_busy(fd, &v, n);

	if (ret)
		fail_msg("DAXFS_IOC_LIST_BUSY: %s", strerror(-ret));
	return v;
}

uint32_t pu_nbusy(int fd)
{
	uint32_t n;

	free(pu_busy(fd, &n));
	return n;
}

struct daxfs_pin pu_pin(int fd, uint64_t off, uint64_t len, uint32_t flags)
{
	struct daxfs_pin p;
	int ret = daxfs_pin(fd, off, len, flags, &p);

	if (ret)
		fail_msg("pin [%llu, +%llu) flags %u: %s", (unsigned long long)off, (unsigned long long)len, flags,
			 strerror(-ret));
	/* The extents tile the pinned range in file order. */
	uint64_t at = p.offset;
	for (uint32_t i = 0; i < p.nextents; i++) {
		if (p.ext[i].file_off != at || p.ext[i].len == 0 || p.ext[i].len % BS ||
		    (p.ext[i].media_off != DAXFS_MEDIA_ZERO && p.ext[i].media_off % BS))
			fail_msg("pin %llu extent %u: file %llu media %llu len %llu, expected file offset %llu",
				 (unsigned long long)p.id, i, (unsigned long long)p.ext[i].file_off,
				 (unsigned long long)p.ext[i].media_off, (unsigned long long)p.ext[i].len,
				 (unsigned long long)at);
		at += p.ext[i].len;
	}
	assert_int_equal(at, p.offset + p.length);
	return p;
}

static uint8_t pat_byte(uint64_t pos, unsigned seed)
{
	uint64_t x = (pos / 8 + 1) * 0x9E3779B97F4A7C15ull ^ (uint64_t)seed * 0xC2B2AE3D27D4EB4Full;

	return (uint8_t)(x >> (8 * (pos % 8)));
}

void pu_pat_fill(void *buf, size_t len, uint64_t pos, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		((uint8_t *)buf)[i] = pat_byte(pos + i, seed);
}

long pu_pat_diff(const void *buf, size_t len, uint64_t pos, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		if (((const uint8_t *)buf)[i] != pat_byte(pos + i, seed))
			return (long)i;
	return -1;
}

void pu_write_file(const char *path, uint64_t len, unsigned seed)
{
	size_t chunk = 1 * MiB;
	char *buf = malloc(chunk);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	assert_non_null(buf);
	if (fd < 0)
		fail_msg("open %s: %s", path, strerror(errno));
	for (uint64_t off = 0; off < len;) {
		size_t n = (size_t)(len - off < chunk ? len - off : chunk);

		pu_pat_fill(buf, n, off, seed);
		ssize_t w = pwrite(fd, buf, n, (off_t)off);
		if (w <= 0)
			fail_msg("write %s at %llu: %s", path, (unsigned long long)off, strerror(errno));
		off += (uint64_t)w;
	}
	assert_ok(close(fd));
	free(buf);
}

/* Read [off, off + len) of path into a malloc'd buffer (short reads fail the test). */
static char *read_range(const char *path, uint64_t off, uint64_t len)
{
	char *buf = malloc(len ? len : 1);
	int fd = open(path, O_RDONLY);

	assert_non_null(buf);
	if (fd < 0)
		fail_msg("open %s: %s", path, strerror(errno));
	for (uint64_t done = 0; done < len;) {
		ssize_t r = pread(fd, buf + done, len - done, (off_t)(off + done));

		if (r <= 0)
			fail_msg("read %s at %llu: %s", path, (unsigned long long)(off + done),
				 r ? strerror(errno) : "end of file");
		done += (uint64_t)r;
	}
	close(fd);
	return buf;
}

bool pu_check_file(const char *path, uint64_t off, uint64_t len, unsigned seed)
{
	char *buf = read_range(path, off, len);
	long d = pu_pat_diff(buf, len, off, seed);

	if (d >= 0)
		print_message("%s: byte %llu differs from stream %u\n", path, (unsigned long long)(off + (uint64_t)d),
			      seed);
	free(buf);
	return d < 0;
}

bool pu_file_zero(const char *path, uint64_t off, uint64_t len)
{
	char *buf = read_range(path, off, len);
	bool zero = true;

	for (uint64_t i = 0; i < len && zero; i++)
		zero = buf[i] == 0;
	free(buf);
	return zero;
}

uint64_t pu_fill(const char *path)
{
	size_t chunk = 1 * MiB;
	char *buf = malloc(chunk);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	uint64_t total = 0;

	assert_non_null(buf);
	if (fd < 0)
		fail_msg("open %s: %s", path, strerror(errno));
	memset(buf, FILL_BYTE, chunk);
	for (;;) {
		ssize_t w = write(fd, buf, chunk);

		if (w < 0) {
			if (errno != ENOSPC)
				fail_msg("filling %s: %s after %llu bytes", path, strerror(errno),
					 (unsigned long long)total);
			break;
		}
		assert_true(w > 0);
		total += (uint64_t)w;
	}
	assert_ok(close(fd));
	free(buf);
	return total;
}

uint64_t pu_count_units(const void *buf, size_t len, uint64_t pin_id, uint64_t seq)
{
	uint64_t n = 0;

	for (size_t i = 0; i + DAXFS_TAG_UNIT <= len; i += DAXFS_TAG_UNIT) {
		struct daxfs_tag u;

		if (daxfs_tag_decode((const char *)buf + i, &u) && u.pin_id == pin_id && u.seq == seq)
			n++;
	}
	return n;
}

struct scan pu_scan(const char *path)
{
	size_t chunk = 4 * MiB;
	char *buf = malloc(chunk);
	int fd = open(path, O_RDONLY);
	struct scan s = { 0 };

	assert_non_null(buf);
	if (fd < 0)
		fail_msg("open %s: %s", path, strerror(errno));
	for (;;) {
		ssize_t r = read(fd, buf, chunk);

		if (r < 0)
			fail_msg("read %s: %s", path, strerror(errno));
		if (r == 0)
			break;
		/* File and media offsets agree modulo the block size, so tags sit at multiples of 64. */
		assert_int_equal(r % DAXFS_TAG_UNIT, 0);
		for (ssize_t i = 0; i < r; i += DAXFS_TAG_UNIT) {
			struct daxfs_tag u;

			if (daxfs_tag_decode(buf + i, &u) && s.units++ == 0)
				s.first = u;
		}
		for (ssize_t i = 0; i < r; i++)
			s.foreign += (uint8_t)buf[i] != FILL_BYTE;
	}
	close(fd);
	free(buf);
	return s;
}

void pu_read_media(const struct mnt *m, uint64_t off, void *buf, size_t len)
{
	int fd = open(m->image, O_RDONLY);

	if (fd < 0)
		fail_msg("open %s: %s", m->image, strerror(errno));
	assert_int_equal(pread(fd, buf, len, (off_t)off), (ssize_t)len);
	close(fd);
}

bool pu_media_zero(const struct mnt *m, uint64_t off, uint64_t len)
{
	char *buf = malloc(len);
	bool zero = true;

	assert_non_null(buf);
	pu_read_media(m, off, buf, len);
	for (uint64_t i = 0; i < len && zero; i++)
		zero = buf[i] == 0;
	free(buf);
	return zero;
}

bool pu_ext_overlap(const struct daxfs_pin_extent *a, uint32_t na, uint64_t off, uint64_t len)
{
	for (uint32_t i = 0; i < na; i++)
		if (a[i].media_off < off + len && off < a[i].media_off + a[i].len)
			return true;
	return false;
}

/*
 * The watchdog is a separate process: a test thread blocked in a FUSE request cannot run a signal
 * handler (the kernel waits uninterruptibly once the daemon has the request), but killing the
 * daemon from outside aborts the connection and every blocked call returns an error.
 */
struct guard_msg {
	pid_t daemon;
	unsigned secs;
	char what[120];
};

static int guard_fd = -1;

static void watchdog(int rfd)
{
	struct guard_msg cur = { 0 };
	uint64_t deadline = 0;

	for (;;) {
		struct pollfd pfd = { .fd = rfd, .events = POLLIN };
		uint64_t now = pu_now_ms();
		int timeout = deadline == 0 ? -1 : deadline > now ? (int)(deadline - now) : 0;
		int r = poll(&pfd, 1, timeout);

		if (r > 0) {
			if (read(rfd, &cur, sizeof(cur)) != (ssize_t)sizeof(cur))
				_exit(0);
			deadline = cur.secs ? pu_now_ms() + cur.secs * 1000ull : 0;
		} else if (r == 0) {
			fprintf(stderr, "TIMEOUT (deadlock?) after %u s in: %s; killing daemon %d\n", cur.secs, cur.what,
				(int)cur.daemon);
			if (cur.daemon > 0)
				kill(cur.daemon, SIGKILL);
			deadline = 0;
		}
	}
}

void pu_guard(const struct mnt *m, const char *what, unsigned secs)
{
	struct guard_msg msg = { .daemon = m ? m->daemon : 0, .secs = secs };

	if (guard_fd < 0) {
		int p[2];

		assert_ok(pipe2(p, O_CLOEXEC));
		if (pu_fork() == 0) {
			close(p[1]);
			watchdog(p[0]);
		}
		close(p[0]);
		guard_fd = p[1];
	}
	snprintf(msg.what, sizeof(msg.what), "%s", what ? what : "");
	/* One small write: atomic on a pipe. */
	assert_int_equal(write(guard_fd, &msg, sizeof(msg)), (ssize_t)sizeof(msg));
}

pid_t pu_fork(void)
{
	pid_t parent = getpid(), pid = fork();

	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(100);	/* the parent is already gone */
	}
	assert_true(pid >= 0);
	return pid;
}
