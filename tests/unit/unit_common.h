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
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

#endif
