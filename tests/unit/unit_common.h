/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the unit tests: scratch images in /dev/shm (tmpfs, so msync is cheap and sparse
 * files cost nothing) named after the test process, so parallel test programs never collide.
 * Everything is static inline: each test program includes only what it uses.
 */
#ifndef DAXFS_UNIT_COMMON_H
#define DAXFS_UNIT_COMMON_H

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

#include "media.h"
#include "super.h"

#define KiB (1ull << 10)
#define MiB (1ull << 20)
#define GiB (1ull << 30)

/* A per-test scratch image: the path lives in the fixture so teardown can remove it on failure. */
struct image {
	char path[256];
};

static inline void image_name(struct image *img, const char *name)
{
	snprintf(img->path, sizeof(img->path), "/dev/shm/daxfs-unit-%ld-%s.img", (long)getpid(), name);
}

/* Create (or truncate and regrow) a sparse file of `bytes`; fails the test on error. */
static inline void image_create(const struct image *img, uint64_t bytes)
{
	int fd = open(img->path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)bytes), 0);
	close(fd);
}

static inline void image_remove(const struct image *img)
{
	if (img->path[0])
		unlink(img->path);
}

/* Create an image of `bytes` and write an empty file system onto it with `p` (NULL: defaults). */
static inline void image_format(const struct image *img, uint64_t bytes, const struct mkfs_params *p)
{
	struct mkfs_params defaults = { 0 };
	struct media m;
	char err[256] = "";

	image_create(img, bytes);
	int ret = media_open(&m, img->path, 0, err, sizeof(err));
	if (ret)
		fail_msg("media_open(%s): %d %s", img->path, ret, err);
	ret = super_format(&m, p ? p : &defaults, err, sizeof(err));
	if (ret)
		fail_msg("super_format(%s): %d %s", img->path, ret, err);
	media_close(&m);
}

/* Setup and teardown for tests whose state is a struct image named after the test. */
static inline int image_setup(void **state, const char *name)
{
	struct image *img = calloc(1, sizeof(*img));

	if (!img)
		return -1;
	image_name(img, name);
	*state = img;
	return 0;
}

static inline int image_teardown(void **state)
{
	struct image *img = *state;

	if (img) {
		image_remove(img);
		free(img);
	}
	*state = NULL;
	return 0;
}

/* Deterministic pseudo-random numbers (xorshift64*), so a failing run can be repeated exactly. */
static inline uint64_t rng_next(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

/* Uniform in [0, n), n > 0 (the bias of the modulo is irrelevant here). */
static inline uint64_t rng_below(uint64_t *s, uint64_t n)
{
	return rng_next(s) % n;
}

/*
 * The first statement of a test that shows a bug not fixed yet: the test is compiled and listed, but
 * skipped (saying why) unless UNIT_KNOWN_BUGS=1 is in the environment, so the suite stays green
 * until the fix lands and the test can be run to check it.
 */
#define KNOWN_BUG(why)                                                        \
	do {                                                                  \
		if (!getenv("UNIT_KNOWN_BUGS")) {                             \
			print_message("known bug, skipped: %s\n", why);      \
			skip();                                               \
		}                                                             \
	} while (0)

/* Now on CLOCK_MONOTONIC, in ms. */
static inline uint64_t unit_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * Wait until cond(arg) holds, looking every 200 us, for at most timeout_ms: true if it came.
 * Conditions another thread or process brings about are waited for, never slept on and hoped for.
 */
static inline bool unit_wait(bool (*cond)(void *arg), void *arg, uint64_t timeout_ms)
{
	uint64_t deadline = unit_now_ms() + timeout_ms;

	for (;;) {
		if (cond(arg))
			return true;
		if (unit_now_ms() >= deadline)
			return cond(arg);
		struct timespec ts = { 0, 200000 };
		nanosleep(&ts, NULL);
	}
}

/* The contents of a file, NUL-terminated (its length in *len); fails the test if it cannot be read. */
static inline char *unit_read_file(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;

	if (fd < 0)
		fail_msg("open %s: %s", path, strerror(errno));
	assert_int_equal(fstat(fd, &st), 0);
	char *buf = malloc((size_t)st.st_size + 1);
	assert_non_null(buf);
	size_t got = 0;
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);

		assert_true(n > 0);
		got += (size_t)n;
	}
	close(fd);
	buf[got] = 0;
	*len = got;
	return buf;
}

/* What the code under test prints to stderr between capture_begin and capture_end. */
struct capture {
	int saved;
	char path[256];
};

static inline void capture_begin(struct capture *c)
{
	snprintf(c->path, sizeof(c->path), "/dev/shm/daxfs-unit-%ld-stderr.txt", (long)getpid());
	fflush(stderr);
	int fd = open(c->path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	c->saved = dup(2);
	assert_true(c->saved >= 0);
	assert_true(dup2(fd, 2) == 2);
	close(fd);
}

/* Restore stderr; returns what was written meanwhile (free it). */
static inline char *capture_end(struct capture *c)
{
	size_t len;

	fflush(stderr);
	assert_true(dup2(c->saved, 2) == 2);
	close(c->saved);
	char *text = unit_read_file(c->path, &len);
	unlink(c->path);
	return text;
}

/*
 * A child process that waits until the test writes a byte to *release_fd or closes it, then exits
 * with status: a process whose life the test controls (a pin holder, a pidfd to watch).
 */
static inline pid_t unit_waiting_child(int *release_fd, int status)
{
	int p[2];

	assert_int_equal(pipe(p), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char c;

		close(p[1]);
		if (read(p[0], &c, 1) < 0)
			_exit(1);
		_exit(status);
	}
	close(p[0]);
	*release_fd = p[1];
	return pid;
}

/* Collects what the image reports as corruption (sbi's report callback): how many, and the last. */
struct unit_reports {
	int n;
	char last[512];
};

static inline void unit_report(void *arg, const char *msg)
{
	struct unit_reports *r = arg;

	r->n++;
	snprintf(r->last, sizeof(r->last), "%s", msg);
}

#endif
