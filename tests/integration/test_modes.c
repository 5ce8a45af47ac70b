/* SPDX-License-Identifier: MIT */
/*
 * Mount modes and mappings: shared mmap in the default (direct I/O) mode, -o cache=page, -o ro,
 * EXDEV between two mounts, and the daemon refusing what it cannot mount.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "itest.h"

#define MiB (1u << 20)
#define MAPLEN (256 * 1024)

static struct mnt M;	/* the default mode */

static int setup(void **state)
{
	(void)state;
	return h_group_up(&M, "modes", "-s 128M", NULL);
}

static int teardown(void **state)
{
	(void)state;
	return h_group_down(&M);
}

/* Before each test: the earlier tests' deferred releases and forgets have arrived (see settle). */
static int settled(void **state)
{
	(void)state;
	settle(&M);
	return 0;
}

static void *map_file(int fd, size_t len, int prot, int flags)
{
	void *p = mmap(NULL, len, prot, flags, fd, 0);

	if (p == MAP_FAILED)
		fail_msg("mmap: %s", strerror(errno));
	return p;
}

/*
 * MAP_SHARED in both directions against read()/write(), which bypass the page cache in this
 * mode: stores reach the file after msync, and writes show up in an existing mapping.
 */
static void shared_mmap_checks(const struct mnt *m, const char *name)
{
	char *buf = malloc(MAPLEN), *got = malloc(MAPLEN);
	const char *path = P(m, "%s", name);

	int fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0644);
	assert_true(fd >= 0);
	pat_fill(buf, MAPLEN, 0, 21);
	assert_int_equal(pwrite(fd, buf, MAPLEN, 0), MAPLEN);
	char *p = map_file(fd, MAPLEN, PROT_READ | PROT_WRITE, MAP_SHARED);
	/* The mapping sees what write() put there. */
	assert_memory_equal(p, buf, MAPLEN);

	/* Stores through the map, msync, then read() through another descriptor. */
	pat_fill(buf, MAPLEN, 0, 22);
	memcpy(p, buf, MAPLEN);
	assert_ok(msync(p, MAPLEN, MS_SYNC));
	int fd2 = open(path, O_RDONLY);
	assert_int_equal(pread(fd2, got, MAPLEN, 0), MAPLEN);
	assert_memory_equal(got, buf, MAPLEN);

	/* write() after the mapping exists: the mapping must show the new bytes. */
	pat_fill(buf + 4096, 3 * 4096 + 100, 4096, 23);
	assert_int_equal(pwrite(fd, buf + 4096, 3 * 4096 + 100, 4096), 3 * 4096 + 100);
	if (memcmp(p, buf, MAPLEN) != 0) {
		long d = 0;
		while (p[d] == buf[d])
			d++;
		fail_msg("mapping is stale after write(): first difference at byte %ld", d);
	}

	/* A small store, msync of just that page. */
	p[MAPLEN - 1] = 'E';
	buf[MAPLEN - 1] = 'E';
	assert_ok(msync(p + MAPLEN - 4096, 4096, MS_SYNC));
	assert_int_equal(pread(fd2, got, 1, MAPLEN - 1), 1);
	assert_int_equal(got[0], 'E');
	assert_ok(munmap(p, MAPLEN));

	/* Without msync: munmap and close must still get the data to the file. */
	p = map_file(fd, MAPLEN, PROT_READ | PROT_WRITE, MAP_SHARED);
	memcpy(p, "unsynced", 8);
	memcpy(buf, "unsynced", 8);
	assert_ok(munmap(p, MAPLEN));
	close(fd);
	assert_int_equal(pread(fd2, got, MAPLEN, 0), MAPLEN);
	assert_memory_equal(got, buf, MAPLEN);
	close(fd2);

	/* MAP_PRIVATE: copy on write, the file stays as it was. */
	fd = open(path, O_RDWR);
	p = map_file(fd, MAPLEN, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	assert_memory_equal(p, buf, MAPLEN);
	memcpy(p, "private!", 8);
	assert_int_equal(pread(fd, got, 8, 0), 8);
	assert_memory_equal(got, "unsynced", 8);
	assert_ok(munmap(p, MAPLEN));
	close(fd);
	check_file(path, buf, MAPLEN);
	free(buf);
	free(got);
}

static void test_mmap_shared(void **state)
{
	(void)state;
	shared_mmap_checks(&M, "mm");
}

/* A read-only shared mapping of a file opened read-only, and growing a file under a mapping. */
static void test_mmap_readonly_and_grow(void **state)
{
	(void)state;
	char buf[8192];

	pat_fill(buf, sizeof(buf), 0, 24);
	write_file(P(&M, "mro"), buf, sizeof(buf));
	int fd = open(P(&M, "mro"), O_RDONLY);
	char *p = map_file(fd, sizeof(buf), PROT_READ, MAP_SHARED);
	assert_memory_equal(p, buf, sizeof(buf));
	assert_errno(mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), EACCES);
	munmap(p, sizeof(buf));
	close(fd);
	/* Extend with ftruncate, then store into the new part through a mapping. */
	fd = open(P(&M, "mro"), O_RDWR);
	assert_ok(ftruncate(fd, 4 * 8192));
	p = map_file(fd, 4 * 8192, PROT_READ | PROT_WRITE, MAP_SHARED);
	assert_true(all_zero(p + 8192, 3 * 8192));
	memset(p + 3 * 8192, 'G', 8192);
	assert_ok(msync(p, 4 * 8192, MS_SYNC));
	munmap(p, 4 * 8192);
	char got[8192];
	assert_int_equal(pread(fd, got, sizeof(got), 3 * 8192), (ssize_t)sizeof(got));
	for (size_t i = 0; i < sizeof(got); i++)
		if (got[i] != 'G')
			fail_msg("byte %zu of the extended part is %d", i, got[i]);
	close(fd);
}

/*
 * A mapping keeps an unlinked file alive; its space returns when the mapping goes.  The file is
 * opened once: the mapping holds that open file, so close() sends no RELEASE and nothing is in
 * flight when the unlink is answered.  Whatever the daemon frees at the unlink (or at the FLUSH
 * of close) it has freed by then, so the statfs after it is exact, with no sleep.
 */
static void test_mmap_unlinked(void **state)
{
	(void)state;
	char buf[MAPLEN];

	write_str(P(&M, "mun-keep"), "");
	uint64_t bfree0 = sfs_of(M.dir).f_bfree;
	pat_fill(buf, sizeof(buf), 0, 25);
	int fd = open(P(&M, "mun"), O_RDWR | O_CREAT | O_EXCL, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, sizeof(buf)), (ssize_t)sizeof(buf));
	char *p = map_file(fd, MAPLEN, PROT_READ | PROT_WRITE, MAP_SHARED);
	close(fd);
	assert_ok(unlink(P(&M, "mun")));
	assert_int_equal(sfs_of(M.dir).f_bfree, bfree0 - MAPLEN / 4096);
	assert_memory_equal(p, buf, MAPLEN);
	p[0] = 'w';	/* still writable */
	assert_ok(msync(p, MAPLEN, MS_SYNC));
	assert_int_equal(sfs_of(M.dir).f_bfree, bfree0 - MAPLEN / 4096);
	assert_ok(munmap(p, MAPLEN));
	assert_int_equal(wait_bfree(M.dir, bfree0), bfree0);
}

/* O_DIRECT, copy_file_range, sendfile and locks: kernel paths on top of the same operations. */
static void test_other_io_paths(void **state)
{
	(void)state;
	const size_t len = 1 << 20;
	char *buf = aligned_alloc(4096, len), *got = aligned_alloc(4096, len);

	pat_fill(buf, len, 0, 26);
	int fd = open(P(&M, "odirect"), O_RDWR | O_CREAT | O_EXCL | O_DIRECT, 0644);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, buf, len, 0), (ssize_t)len);
	assert_int_equal(pread(fd, got, len, 0), (ssize_t)len);
	assert_memory_equal(got, buf, len);
	close(fd);
	check_file(P(&M, "odirect"), buf, len);

	/* copy_file_range within the file system (the kernel falls back to a copy through splice). */
	int in = open(P(&M, "odirect"), O_RDONLY);
	int out = open(P(&M, "copy"), O_WRONLY | O_CREAT | O_EXCL, 0644);
	loff_t off_in = 1000, off_out = 0;
	size_t left = len - 1000;
	while (left > 0) {
		ssize_t n = copy_file_range(in, &off_in, out, &off_out, left, 0);
		assert_true(n > 0);
		left -= (size_t)n;
	}
	close(out);
	check_file(P(&M, "copy"), buf + 1000, len - 1000);
	/* sendfile into a pipe. */
	int pfd[2];
	assert_ok(pipe(pfd));
	off_t soff = 4096;
	assert_int_equal(sendfile(pfd[1], in, &soff, 4000), 4000);
	assert_int_equal(read(pfd[0], got, 4000), 4000);
	assert_memory_equal(got, buf + 4096, 4000);
	close(pfd[0]);
	close(pfd[1]);
	/* POSIX and BSD locks work (the kernel keeps them). */
	struct flock fl = { .l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 100 };
	assert_ok(fcntl(in, F_SETLK, &fl));
	assert_ok(flock(in, LOCK_SH | LOCK_NB));
	int in2 = open(P(&M, "odirect"), O_RDWR);
	assert_errno(flock(in2, LOCK_EX | LOCK_NB), EWOULDBLOCK);
	close(in2);
	close(in);
	free(buf);
	free(got);
}

/* ---- -o cache=page ---- */

static const struct cred_spec U1000 = { 1000, 1000, 1, { 1000 } };

static int user_writes(void *arg)
{
	int fd = open(arg, O_WRONLY);

	C_TRUE(fd >= 0);
	C_TRUE(write(fd, "x", 1) == 1);
	close(fd);
	return 0;
}

static void test_cache_page(void **state)
{
	(void)state;
	struct mnt m;
	char *buf = malloc(8 * MiB), *got = malloc(8 * MiB);

	h_init(&m, "page");
	{
		/* Other users must reach the mount point for the setuid check below. */
		char parent[sizeof(m.dir)];
		snprintf(parent, sizeof(parent), "%s", m.dir);
		*strrchr(parent, '/') = 0;
		chmod(parent, 0711);
	}
	assert_int_equal(h_mkfs(&m, "-s 64M"), 0);
	assert_int_equal(h_mount(&m, "-o cache=page,allow_other,default_permissions"), 0);
	/* Plain I/O: a large file in odd pieces, overwrites, reads through another descriptor. */
	pat_fill(buf, 8 * MiB, 0, 31);
	int fd = open(P(&m, "f"), O_RDWR | O_CREAT | O_EXCL, 0644);
	for (size_t off = 0; off < 8 * MiB;) {
		size_t n = off % 3 ? 100000 : 333333;
		n = n > 8 * MiB - off ? 8 * MiB - off : n;
		assert_int_equal(write(fd, buf + off, n), (ssize_t)n);
		off += n;
	}
	int fd2 = open(P(&m, "f"), O_RDONLY);
	assert_int_equal(pread(fd2, got, 8 * MiB, 0), 8 * MiB);
	assert_memory_equal(got, buf, 8 * MiB);
	assert_int_equal(pwrite(fd, "patch", 5, 4095), 5);
	memcpy(buf + 4095, "patch", 5);
	assert_int_equal(pread(fd2, got, 20, 4090), 20);
	assert_memory_equal(got, buf + 4090, 20);
	/* Shrink and grow: the cut part reads as zero, also from the cache. */
	assert_ok(ftruncate(fd, 5000));
	assert_ok(ftruncate(fd, 3 * 4096));
	assert_int_equal(pread(fd2, got, 3 * 4096, 0), 3 * 4096);
	assert_memory_equal(got, buf, 5000);
	assert_true(all_zero(got + 5000, 3 * 4096 - 5000));
	struct stat st;
	assert_ok(fstat(fd, &st));
	assert_int_equal(st.st_size, 3 * 4096);
	close(fd);
	close(fd2);
	/* Shared mmap, as in the default mode. */
	shared_mmap_checks(&m, "mm");
	/* Setuid is cleared when another user writes (the kernel's buffered write path does it). */
	write_str(P(&m, "suid"), "");
	assert_ok(chown(P(&m, "suid"), 1000, 1000));
	assert_ok(chmod(P(&m, "suid"), 06755));
	assert_int_equal(as_user(&U1000, user_writes, (void *)P(&m, "suid")), 0);
	assert_int_equal(st_of(P(&m, "suid")).st_mode & 07777, 0755);
	/* Everything reached the media: a remount in the default mode sees it. */
	assert_int_equal(h_umount(&m), 0);
	assert_int_equal(h_mount(&m, NULL), 0);
	check_file(P(&m, "f"), got, 3 * 4096);
	assert_int_equal(st_of(P(&m, "mm")).st_size, MAPLEN);
	assert_int_equal(h_umount(&m), 0);
	fsck_clean(&m);
	h_destroy(&m);
	free(buf);
	free(got);
}

/* ---- -o ro ---- */

static void test_read_only(void **state)
{
	(void)state;
	struct mnt m;
	struct stat st;
	char buf[64];

	h_init(&m, "ro");
	assert_int_equal(h_mkfs(&m, "-s 16M"), 0);
	assert_int_equal(h_mount(&m, NULL), 0);
	write_str(P(&m, "file"), "read me");
	assert_ok(setxattr(P(&m, "file"), "user.k", "v", 1, 0));
	assert_ok(mkdir(P(&m, "dir"), 0755));
	write_str(P(&m, "dir/inner"), "inner");
	assert_ok(symlink("file", P(&m, "link")));
	assert_ok(mknod(P(&m, "chr"), S_IFCHR | 0600, makedev(1, 3)));
	struct timespec ts[2] = { { 1000, 0 }, { 2000, 0 } };
	assert_ok(utimensat(AT_FDCWD, P(&m, "file"), ts, 0));
	assert_int_equal(h_umount(&m), 0);

	assert_int_equal(h_mount(&m, "-o ro"), 0);
	assert_true(sfs_of(m.dir).f_flag & ST_RDONLY);
	/* Reading works. */
	check_str(P(&m, "file"), "read me");
	check_str(P(&m, "dir/inner"), "inner");
	check_str(P(&m, "link"), "read me");
	assert_int_equal(readlink(P(&m, "link"), buf, sizeof(buf)), 4);
	assert_int_equal(getxattr(P(&m, "file"), "user.k", buf, sizeof(buf)), 1);
	assert_int_equal(listxattr(P(&m, "file"), buf, sizeof(buf)), 7);
	assert_int_equal(st_of(P(&m, "chr")).st_rdev, makedev(1, 3));
	int fd = open(P(&m, "dir"), O_RDONLY | O_DIRECTORY);
	assert_true(fd >= 0);
	close(fd);
	/* Reading did not touch atime. */
	assert_int_equal(st_of(P(&m, "file")).st_atim.tv_sec, 1000);
	/* Every change: EROFS. */
	assert_errno(open(P(&m, "file"), O_WRONLY), EROFS);
	assert_errno(open(P(&m, "file"), O_RDWR), EROFS);
	assert_errno(open(P(&m, "file"), O_RDONLY | O_TRUNC), EROFS);
	assert_errno(open(P(&m, "new"), O_WRONLY | O_CREAT, 0644), EROFS);
	assert_errno(mkdir(P(&m, "newdir"), 0755), EROFS);
	assert_errno(rmdir(P(&m, "dir")), EROFS);
	assert_errno(unlink(P(&m, "file")), EROFS);
	assert_errno(rename(P(&m, "file"), P(&m, "moved")), EROFS);
	assert_errno(link(P(&m, "file"), P(&m, "hard")), EROFS);
	assert_errno(symlink("x", P(&m, "sym")), EROFS);
	assert_errno(mknod(P(&m, "fifo"), S_IFIFO | 0644, 0), EROFS);
	assert_errno(chmod(P(&m, "file"), 0600), EROFS);
	assert_errno(chown(P(&m, "file"), 1, 1), EROFS);
	assert_errno(utimensat(AT_FDCWD, P(&m, "file"), NULL, 0), EROFS);
	assert_errno(truncate(P(&m, "file"), 0), EROFS);
	assert_errno(setxattr(P(&m, "file"), "user.k", "w", 1, 0), EROFS);
	assert_errno(removexattr(P(&m, "file"), "user.k"), EROFS);
	st = st_of(P(&m, "file"));
	assert_int_equal(st.st_size, 7);
	assert_int_equal(st.st_mode, S_IFREG | 0644);
	assert_int_equal(h_umount(&m), 0);

	/* Read-write again: all as before, and changes work. */
	assert_int_equal(h_mount(&m, NULL), 0);
	check_str(P(&m, "file"), "read me");
	write_str(P(&m, "new"), "ok");
	assert_int_equal(h_umount(&m), 0);
	fsck_clean(&m);
	h_destroy(&m);
}

/* ---- several mounts ---- */

static void test_two_mounts(void **state)
{
	(void)state;
	struct mnt a, b, dup;

	h_init(&a, "two-a");
	h_init(&b, "two-b");
	assert_int_equal(h_mkfs(&a, "-s 16M"), 0);
	assert_int_equal(h_mkfs(&b, "-s 16M"), 0);
	assert_int_equal(h_mount(&a, NULL), 0);
	assert_int_equal(h_mount(&b, NULL), 0);
	write_str(P(&a, "f"), "in a");
	assert_ok(mkdir(P(&a, "d"), 0755));
	assert_errno(rename(P(&a, "f"), P(&b, "f")), EXDEV);
	assert_errno(link(P(&a, "f"), P(&b, "f")), EXDEV);
	assert_errno(rename(P(&a, "d"), P(&b, "d")), EXDEV);
	check_str(P(&a, "f"), "in a");
	assert_errno(access(P(&b, "f"), F_OK), ENOENT);
	/* Different file systems: different f_fsid and st_dev. */
	assert_true(st_of(a.dir).st_dev != st_of(b.dir).st_dev);
	/*
	 * The same image cannot be mounted twice (the daemon holds it exclusively; it retries for 5 s
	 * in case an earlier daemon is still exiting), nor formatted while mounted.
	 */
	h_init(&dup, "two-dup");
	snprintf(dup.image, sizeof(dup.image), "%s", a.image);
	assert_int_equal(h_mount(&dup, "-o ro"), -1);
	assert_true(h_mkfs(&a, "-s 16M") != 0);
	check_str(P(&a, "f"), "in a");
	assert_int_equal(h_umount(&a), 0);
	assert_int_equal(h_umount(&b), 0);
	h_destroy(&a);
	h_destroy(&b);
}

static void test_bad_mounts(void **state)
{
	(void)state;
	struct mnt m;

	h_init(&m, "bad");
	/* No image. */
	assert_int_equal(h_mount(&m, NULL), -1);
	/* Not a daxfs image. */
	int fd = open(m.image, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_ok(ftruncate(fd, 16 * MiB));
	close(fd);
	assert_int_equal(h_mount(&m, NULL), -1);
	/* Unknown cache mode. */
	assert_int_equal(h_mkfs(&m, "-s 16M"), 0);
	assert_int_equal(h_mount(&m, "-o cache=bogus"), -1);
	/* Timeouts of zero are fine: every stat and lookup goes to the daemon. */
	assert_int_equal(h_mount(&m, "-o attr_timeout=0,entry_timeout=0"), 0);
	write_str(P(&m, "f"), "zero timeouts");
	check_str(P(&m, "f"), "zero timeouts");
	assert_int_equal(h_umount(&m), 0);
	/* Single-threaded. */
	assert_int_equal(h_mount(&m, "-s"), 0);
	check_str(P(&m, "f"), "zero timeouts");
	assert_int_equal(h_umount(&m), 0);
	fsck_clean(&m);
	h_destroy(&m);
}

static void test_remount(void **state)
{
	(void)state;
	char buf[MAPLEN];

	close_leaked(&M);
	assert_int_equal(h_umount(&M), 0);
	fsck_clean(&M);
	assert_int_equal(h_mount(&M, NULL), 0);
	int fd = open(P(&M, "mm"), O_RDONLY);
	assert_int_equal(read(fd, buf, sizeof(buf)), MAPLEN);
	assert_memory_equal(buf, "unsynced", 8);
	assert_int_equal(buf[MAPLEN - 1], 'E');
	close(fd);
	assert_int_equal(st_of(P(&M, "mro")).st_size, 4 * 8192);
	assert_int_equal(h_umount(&M), 0);
}

static int run(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_mmap_shared, settled),
		cmocka_unit_test_setup(test_mmap_readonly_and_grow, settled),
		cmocka_unit_test_setup(test_mmap_unlinked, settled),
		cmocka_unit_test_setup(test_other_io_paths, settled),
		cmocka_unit_test_setup(test_cache_page, settled),
		cmocka_unit_test_setup(test_read_only, settled),
		cmocka_unit_test_setup(test_two_mounts, settled),
		cmocka_unit_test_setup(test_bad_mounts, settled),
		cmocka_unit_test_setup(test_remount, settled),
	};
	return cmocka_run_group_tests_name("modes", tests, setup, teardown);
}

int main(void)
{
	return h_main(run);
}
