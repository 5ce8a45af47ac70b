/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the integration tests: data patterns, whole-file write/check, statfs, and
 * running a function as another user in a forked child.
 *
 * Everything is static inline so each test program takes only what it uses.
 */
#ifndef DAXFS_ITEST_H
#define DAXFS_ITEST_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <grp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

/* Byte `pos` of the data stream `seed`: position-dependent, so misplaced data shows. */
static inline char pat_byte(uint64_t pos, unsigned seed)
{
	uint64_t x = (pos + 1) * 0x9E3779B97F4A7C15ull ^ (uint64_t)seed * 0xC2B2AE3D27D4EB4Full;

	return (char)(x >> 56 ^ x >> 29 ^ x);
}

static inline void pat_fill(void *buf, size_t len, uint64_t pos, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		((char *)buf)[i] = pat_byte(pos + i, seed);
}

/* Offset of the first byte that differs from the pattern, or -1. */
static inline long pat_diff(const void *buf, size_t len, uint64_t pos, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		if (((const char *)buf)[i] != pat_byte(pos + i, seed))
			return (long)i;
	return -1;
}

static inline bool all_zero(const void *buf, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (((const char *)buf)[i])
			return false;
	return true;
}

static inline void write_file(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	if (fd < 0)
		fail_msg("open %s: %s", path, strerror(errno));
	assert_int_equal(write(fd, buf, len), (ssize_t)len);
	assert_ok(close(fd));
}

/* The file holds exactly `len` bytes equal to buf. */
static inline void check_file(const char *path, const void *buf, size_t len)
{
	char *got = malloc(len + 1);
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		fail_msg("open %s: %s", path, strerror(errno));
	size_t n = 0;
	ssize_t r;
	while ((r = read(fd, got + n, len + 1 - n)) > 0)
		n += (size_t)r;
	assert_true(r >= 0);
	assert_int_equal(n, len);
	assert_memory_equal(got, buf, len);
	close(fd);
	free(got);
}

static inline void write_str(const char *path, const char *s)
{
	write_file(path, s, strlen(s));
}

static inline void check_str(const char *path, const char *s)
{
	check_file(path, s, strlen(s));
}

static inline struct stat st_of(const char *path)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		fail_msg("lstat %s: %s", path, strerror(errno));
	return st;
}

static inline struct statvfs sfs_of(const char *path)
{
	struct statvfs sv;

	if (statvfs(path, &sv) < 0)
		fail_msg("statvfs %s: %s", path, strerror(errno));
	return sv;
}

/*
 * FUSE sends RELEASE asynchronously after close(): wait (up to 5 s) for f_bfree to reach `want`.
 * Returns the last value seen.
 */
static inline uint64_t wait_bfree(const char *path, uint64_t want)
{
	uint64_t v = 0;

	for (int i = 0; i < 500; i++) {
		v = sfs_of(path).f_bfree;
		if (v == want)
			break;
		usleep(10000);
	}
	return v;
}

/* Inode numbers return when the kernel sends FORGET, also asynchronously: the same for f_ffree. */
static inline uint64_t wait_ffree(const char *path, uint64_t want)
{
	uint64_t v = 0;

	for (int i = 0; i < 500; i++) {
		v = sfs_of(path).f_ffree;
		if (v == want)
			break;
		usleep(10000);
	}
	return v;
}

static inline int64_t ts_cmp(struct timespec a, struct timespec b)
{
	if (a.tv_sec != b.tv_sec)
		return a.tv_sec < b.tv_sec ? -1 : 1;
	return a.tv_nsec < b.tv_nsec ? -1 : a.tv_nsec > b.tv_nsec;
}

static inline struct timespec now_rt(void)
{
	struct timespec t;

	clock_gettime(CLOCK_REALTIME, &t);
	return t;
}

static inline int64_t ts_ns(struct timespec t)
{
	return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static inline int renameat2_(const char *a, const char *b, unsigned flags)
{
	return (int)syscall(SYS_renameat2, AT_FDCWD, a, AT_FDCWD, b, flags);
}

/*
 * A failed assertion leaves the test's descriptors and mappings behind, and they would keep the
 * mount busy: close every descriptor and unmap every mapping of something under the mount point.
 */
static inline void close_leaked(const struct mnt *m)
{
	size_t len = strlen(m->dir);
	FILE *maps = fopen("/proc/self/maps", "r");
	char line[PATH_MAX + 128];

	while (maps && fgets(line, sizeof(line), maps)) {
		unsigned long start, end;
		char *path = strchr(line, '/');

		if (path && strncmp(path, m->dir, len) == 0 && sscanf(line, "%lx-%lx", &start, &end) == 2)
			munmap((void *)start, end - start);
	}
	if (maps)
		fclose(maps);

	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d))) {
		char link[64], target[PATH_MAX];
		int fd = atoi(e->d_name);

		if (fd <= 2 || fd == dirfd(d))
			continue;
		snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
		ssize_t n = readlink(link, target, sizeof(target) - 1);
		if (n <= 0)
			continue;
		target[n] = 0;
		if (strncmp(target, m->dir, len) == 0 && (target[len] == '/' || target[len] == 0))
			close(fd);
	}
	closedir(d);
}

/* fsck.daxfs -n on the (unmounted) image must find nothing wrong. */
static inline void fsck_clean(const struct mnt *m)
{
	char out[8192];
	int rc = h_run(out, sizeof(out), "%s -n %s 2>&1", h_fsck_bin(), m->image);

	if (rc != 0)
		fail_msg("fsck.daxfs -n %s exited %d:\n%s", m->image, rc, out);
}

/*
 * For a check in the middle of a group: fsck.daxfs -n; if it finds problems, repair them (so the
 * tests after this one start from a clean image) and return its exit code and report in out.
 */
static inline int fsck_and_repair(const struct mnt *m, char *out, size_t outlen)
{
	int rc = h_run(out, outlen, "%s -n %s 2>&1", h_fsck_bin(), m->image);

	if (rc != 0)
		h_run(NULL, 0, "%s -y %s >/dev/null 2>&1", h_fsck_bin(), m->image);
	return rc;
}

/* ---- running code as another user ---- */

/*
 * In a forked child cmocka must not be used (a failed assertion would longjmp into the copy of
 * the test runner), so child code reports with these and returns non-zero on the first failure.
 */
#define C_TRUE(cond)                                                                             \
	do {                                                                                     \
		if (!(cond)) {                                                                   \
			fprintf(stderr, "%s:%d: (uid %d) check failed: %s\n", __FILE__, __LINE__,  \
				(int)getuid(), #cond);                                           \
			return 1;                                                                \
		}                                                                                \
	} while (0)

#define C_OK(call)                                                                               \
	do {                                                                                     \
		errno = 0;                                                                       \
		long __r = (long)(call);                                                         \
		if (__r < 0) {                                                                   \
			fprintf(stderr, "%s:%d: (uid %d) %s failed: %s\n", __FILE__, __LINE__,     \
				(int)getuid(), #call, strerror(errno));                          \
			return 1;                                                                \
		}                                                                                \
	} while (0)

#define C_ERRNO(call, err)                                                                       \
	do {                                                                                     \
		errno = 0;                                                                       \
		long __r = (long)(call);                                                         \
		if (__r != -1 || errno != (err)) {                                               \
			fprintf(stderr, "%s:%d: (uid %d) %s: expected errno %s, got %ld (%s)\n",   \
				__FILE__, __LINE__, (int)getuid(), #call, strerror(err), __r,     \
				strerror(errno));                                                \
			return 1;                                                                \
		}                                                                                \
	} while (0)

struct cred_spec {
	uid_t uid;
	gid_t gid;
	int ngroups;
	gid_t groups[8];
};

/* Run fn(arg) in a child with the given credentials; returns its exit status (0: all checks held). */
static inline int as_user(const struct cred_spec *c, int (*fn)(void *), void *arg)
{
	fflush(NULL);
	pid_t pid = fork();

	if (pid < 0)
		return -1;
	if (pid == 0) {
		if (setgroups((size_t)c->ngroups, c->groups) < 0 || setgid(c->gid) < 0 || setuid(c->uid) < 0) {
			perror("setuid");
			_exit(100);
		}
		int r = fn(arg);
		fflush(NULL);
		_exit(r ? 1 : 0);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

#endif
