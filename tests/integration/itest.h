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
 * How long a test waits for the daemon to do something it must do before calling it hung.  Only a
 * hang may fail a wait: the machine may be a loaded 2-CPU VM running two test programs, under ASan.
 */
#define WAIT_S 30

static inline uint64_t mono_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

/*
 * FUSE sends RELEASE asynchronously after close(): wait (up to WAIT_S) for f_bfree to reach `want`.
 * Returns the last value seen.  Only for a count that moves one way to a known value: a value
 * that passes through `want` on its way elsewhere ends the wait too (settle() has no such hole).
 */
static inline uint64_t wait_bfree(const char *path, uint64_t want)
{
	uint64_t v, deadline = mono_ms() + WAIT_S * 1000;

	while ((v = sfs_of(path).f_bfree) != want && mono_ms() < deadline)
		usleep(2000);
	return v;
}

/* Inode numbers return when the kernel sends FORGET, also asynchronously: the same for f_ffree. */
static inline uint64_t wait_ffree(const char *path, uint64_t want)
{
	uint64_t v, deadline = mono_ms() + WAIT_S * 1000;

	while ((v = sfs_of(path).f_ffree) != want && mono_ms() < deadline)
		usleep(2000);
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

/*
 * Wait until the clock has passed t, so that a change made after this returns stamps a time later
 * than t and a change that should not have happened shows.  The daemon stamps with CLOCK_REALTIME;
 * the kernel's coarse clock, which it uses when it stamps a time itself, trails that by up to a
 * tick: wait for the coarse one.  A fixed sleep would assume how fast the clock ticks.
 */
static inline void tick_past(struct timespec t)
{
	uint64_t deadline = mono_ms() + WAIT_S * 1000;
	struct timespec now;

	for (;;) {
		clock_gettime(CLOCK_REALTIME_COARSE, &now);
		if (ts_cmp(now, t) > 0)
			return;
		if (mono_ms() > deadline)
			fail_msg("CLOCK_REALTIME_COARSE did not pass %lld.%09ld in %d s", (long long)t.tv_sec,
				 t.tv_nsec, WAIT_S);
		usleep(1000);
	}
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

/* Append the inode number of everything below the directory fd (which this closes) to *v. */
static inline void collect_inos(int fd, ino_t **v, size_t *n, size_t *cap)
{
	DIR *d = fdopendir(fd);
	struct dirent *e;

	if (!d)
		fail_msg("fdopendir: %s", strerror(errno));
	while ((e = readdir(d))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (*n == *cap) {
			*cap = *cap ? 2 * *cap : 1024;
			*v = realloc(*v, *cap * sizeof(**v));
			assert_non_null(*v);
		}
		(*v)[(*n)++] = e->d_ino;
		unsigned char type = e->d_type;
		if (type == DT_UNKNOWN) {
			struct stat st;

			if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
				fail_msg("fstatat %s: %s", e->d_name, strerror(errno));
			type = IFTODT(st.st_mode);
		}
		if (type == DT_DIR) {
			int sub = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);

			if (sub < 0)
				fail_msg("open directory %s: %s", e->d_name, strerror(errno));
			collect_inos(sub, v, n, cap);
		}
	}
	closedir(d);
}

static inline int ino_cmp(const void *a, const void *b)
{
	ino_t x = *(const ino_t *)a, y = *(const ino_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * Wait until the daemon holds no inode that is gone from the namespace: every file unlinked (or
 * replaced, or removed while open) has been released and forgotten, so its blocks and its inode are
 * back in the counts.  close() returns before the kernel's RELEASE is served, and FORGET follows
 * later still (the kernel holds a file's inode until the RELEASE reply); nothing the test can call
 * waits for them, and a statfs answered in between is not ordered after them (the daemon serves
 * requests on several threads).  So: count the distinct inodes the namespace holds (hard links
 * once, the root too) and wait for statfs to say exactly that many are in use.  The daemon frees
 * an inode's blocks before it drops the inode number, so once the inode count agrees f_bfree is
 * final too (busy extents aside: those wait for their pins, see the pin tests).
 *
 * For a test's start, when it must not see the earlier tests' deferred frees arrive, and after a
 * test's own removals when it then checks exact counts.  Requires that nothing unlinked is still
 * open or mapped: descriptors left behind by a failed test are closed first.
 */
static inline void settle(const struct mnt *m)
{
	ino_t *v = NULL;
	size_t n = 0, cap = 0, distinct = 0;

	close_leaked(m);
	int fd = open(m->dir, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		fail_msg("open %s: %s", m->dir, strerror(errno));
	collect_inos(fd, &v, &n, &cap);
	if (n)
		qsort(v, n, sizeof(*v), ino_cmp);
	for (size_t i = 0; i < n; i++)
		distinct += i == 0 || v[i] != v[i - 1];
	free(v);
	distinct++;	/* the root */

	uint64_t deadline = mono_ms() + WAIT_S * 1000, used;
	for (;;) {
		struct statvfs sv = sfs_of(m->dir);

		used = sv.f_files - sv.f_ffree;
		if (used == distinct)
			return;
		if (mono_ms() > deadline)
			break;
		usleep(2000);
	}
	fail_msg("%s: after %d s the daemon has %llu inodes in use, the namespace holds %zu", m->dir, WAIT_S,
		 (unsigned long long)used, distinct);
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
