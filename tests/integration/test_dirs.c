/* SPDX-License-Identifier: MIT */
/*
 * The namespace: mkdir/rmdir, unlink (also of open files), rename in all its forms, hard links,
 * symlinks, special files, and readdir (plain, plus, with concurrent changes, telldir/seekdir).
 * One mount for the whole group; each test works in its own directory.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "itest.h"

static struct mnt M;

static int setup(void **state)
{
	(void)state;
	return h_group_up(&M, "dirs", "-s 128M", NULL);
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

static void mk(const char *path)
{
	if (mkdir(path, 0755) < 0)
		fail_msg("mkdir %s: %s", path, strerror(errno));
}

static ino_t ino_of(const char *path)
{
	return st_of(path).st_ino;
}

static nlink_t nlink_of(const char *path)
{
	return st_of(path).st_nlink;
}

/* d_ino of `name` in directory `dir` as readdir reports it, 0 if absent. */
static ino_t dirent_ino(const char *dir, const char *name)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	ino_t ino = 0;

	if (!d)
		fail_msg("opendir %s: %s", dir, strerror(errno));
	while ((e = readdir(d)))
		if (strcmp(e->d_name, name) == 0)
			ino = e->d_ino;
	closedir(d);
	return ino;
}

/* The number of names in a directory, without "." and "..". */
static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (!d)
		fail_msg("opendir %s: %s", dir, strerror(errno));
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

/* ---- mkdir, rmdir, unlink ---- */

static void test_mkdir_rmdir(void **state)
{
	(void)state;
	mk(P(&M, "md"));
	nlink_t root_links = nlink_of(M.dir);
	struct stat st = st_of(P(&M, "md"));
	assert_int_equal(st.st_mode, S_IFDIR | 0755);
	assert_int_equal(st.st_nlink, 2);
	assert_int_equal(st.st_size % 4096, 0);
	mk(P(&M, "md/a"));
	mk(P(&M, "md/b"));
	mk(P(&M, "md/c"));
	write_str(P(&M, "md/file"), "x");
	assert_int_equal(nlink_of(P(&M, "md")), 5);	/* ".", its entry, three ".." */
	assert_int_equal(nlink_of(M.dir), root_links);

	assert_errno(mkdir(P(&M, "md/a"), 0755), EEXIST);
	assert_errno(mkdir(P(&M, "md/file"), 0755), EEXIST);
	assert_errno(mkdir(P(&M, "md/missing/x"), 0755), ENOENT);
	assert_errno(mkdir(P(&M, "md/file/x"), 0755), ENOTDIR);
	assert_ok(symlink("a", P(&M, "md/link")));
	assert_errno(mkdir(P(&M, "md/link"), 0755), EEXIST);

	write_str(P(&M, "md/a/inner"), "y");
	assert_errno(rmdir(P(&M, "md/a")), ENOTEMPTY);
	assert_errno(rmdir(P(&M, "md/file")), ENOTDIR);
	assert_errno(rmdir(P(&M, "md/link")), ENOTDIR);
	assert_errno(rmdir(P(&M, "md/missing")), ENOENT);
	assert_errno(rmdir(P(&M, "md/b/.")), EINVAL);
	assert_errno(rmdir(P(&M, "md/b/..")), ENOTEMPTY);
	assert_errno(unlink(P(&M, "md/b")), EISDIR);
	assert_errno(unlink(P(&M, "md/missing")), ENOENT);
	assert_errno(unlink(P(&M, "md/file/x")), ENOTDIR);

	assert_ok(rmdir(P(&M, "md/b")));
	assert_errno(access(P(&M, "md/b"), F_OK), ENOENT);
	assert_int_equal(nlink_of(P(&M, "md")), 4);
	assert_ok(unlink(P(&M, "md/a/inner")));
	assert_ok(rmdir(P(&M, "md/a")));
	assert_int_equal(nlink_of(P(&M, "md")), 3);
	assert_ok(unlink(P(&M, "md/file")));
	assert_ok(unlink(P(&M, "md/link")));
	assert_int_equal(count_entries(P(&M, "md")), 1);
	/* mkdir honours the mode and umask; S_ISVTX is kept. */
	assert_ok(mkdir(P(&M, "md/m"), 01777));
	assert_int_equal(st_of(P(&M, "md/m")).st_mode, S_IFDIR | 01755);
}

/* A removed directory that is still open (or someone's cwd): nothing can be created in it. */
static void test_rmdir_open(void **state)
{
	(void)state;
	mk(P(&M, "rmo"));
	mk(P(&M, "rmo/d"));
	int dfd = open(P(&M, "rmo/d"), O_RDONLY | O_DIRECTORY);
	assert_true(dfd >= 0);
	assert_ok(rmdir(P(&M, "rmo/d")));
	assert_errno(openat(dfd, "x", O_WRONLY | O_CREAT, 0644), ENOENT);
	assert_errno(mkdirat(dfd, "y", 0755), ENOENT);
	struct stat st;
	assert_ok(fstat(dfd, &st));
	assert_int_equal(st.st_nlink, 0);
	/* Reading it gives no names (Linux returns none at all, not even "." and ".."). */
	DIR *d = fdopendir(dfd);
	struct dirent *e;
	while ((e = readdir(d)))
		assert_true(strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0);
	closedir(d);
	assert_int_equal(count_entries(P(&M, "rmo")), 0);
}

/*
 * An unlinked file stays usable through its descriptors and keeps its space until the last one is
 * closed.  "Closing one of two descriptors frees nothing" can only be checked once the daemon has
 * served that close's RELEASE, which close() does not wait for.  The kernel queues the RELEASE
 * before close() returns (straight to the daemon's queue: nothing else is in the background
 * queue), and a single-threaded daemon (-s) serves requests in the order it reads them, so a
 * statfs sent after close() is answered after the RELEASE has been served.  With several threads
 * the statfs could be answered while another thread still serves the RELEASE, and the check
 * would prove nothing.  A private image also keeps the counts to this test.
 */
static void test_unlink_open_file(void **state)
{
	(void)state;
	const size_t len = 1 << 20;
	char *buf = malloc(len), *got = malloc(len);
	struct mnt m;

	h_init(&m, "unlink-open");
	assert_int_equal(h_mkfs(&m, "-s 32M"), 0);
	assert_int_equal(h_mount(&m, "-s"), 0);
	mk(P(&m, "uo"));
	write_str(P(&m, "uo/keep"), "");	/* the directory's first block, allocated before we count */
	struct statvfs s0 = sfs_of(m.dir);
	pat_fill(buf, len, 0, 11);
	int fd = open(P(&m, "uo/f"), O_RDWR | O_CREAT | O_EXCL, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, len), (ssize_t)len);
	int fd2 = open(P(&m, "uo/f"), O_RDONLY);
	assert_true(fd2 >= 0);
	struct statvfs s1 = sfs_of(m.dir);
	assert_int_equal(s0.f_bfree - s1.f_bfree, len / 4096);
	assert_int_equal(s0.f_ffree - s1.f_ffree, 1);

	assert_ok(unlink(P(&m, "uo/f")));
	assert_errno(access(P(&m, "uo/f"), F_OK), ENOENT);
	assert_int_equal(count_entries(P(&m, "uo")), 1);
	struct stat st;
	assert_ok(fstat(fd, &st));
	assert_int_equal(st.st_nlink, 0);
	assert_int_equal(st.st_size, len);
	/* Still readable and writable through the descriptors; the space is still in use. */
	assert_int_equal(pread(fd2, got, len, 0), (ssize_t)len);
	assert_memory_equal(got, buf, len);
	assert_int_equal(pwrite(fd, "tail", 4, len), 4);
	assert_int_equal(pread(fd2, got, 10, len - 6), 10);
	assert_memory_equal(got, buf + len - 6, 6);
	assert_memory_equal(got + 6, "tail", 4);
	struct statvfs s2 = sfs_of(m.dir);
	assert_int_equal(s1.f_bfree - s2.f_bfree, 1);
	assert_int_equal(s2.f_ffree, s1.f_ffree);
	/* A new file of the same name is a different inode; once it is gone the counts are back at s2. */
	write_str(P(&m, "uo/f"), "new");
	assert_true(ino_of(P(&m, "uo/f")) != st.st_ino);
	assert_ok(unlink(P(&m, "uo/f")));
	assert_int_equal(wait_ffree(m.dir, s2.f_ffree), s2.f_ffree);
	assert_int_equal(sfs_of(m.dir).f_bfree, s2.f_bfree);

	/* Closing one descriptor frees nothing: this statfs is served after the RELEASE (see above). */
	assert_ok(close(fd));
	struct statvfs s3 = sfs_of(m.dir);
	assert_int_equal(s3.f_bfree, s2.f_bfree);
	assert_int_equal(s3.f_ffree, s2.f_ffree);
	assert_int_equal(pread(fd2, got, len, 0), (ssize_t)len);
	assert_memory_equal(got, buf, len);
	/* The last close gives everything back: blocks first, then the inode (see settle). */
	assert_ok(close(fd2));
	assert_int_equal(wait_ffree(m.dir, s0.f_ffree), s0.f_ffree);
	assert_int_equal(sfs_of(m.dir).f_bfree, s0.f_bfree);
	assert_int_equal(h_umount(&m), 0);
	fsck_clean(&m);
	h_destroy(&m);
	free(buf);
	free(got);
}

/* ---- rename ---- */

static void test_rename_plain(void **state)
{
	(void)state;
	mk(P(&M, "rn"));
	write_str(P(&M, "rn/a"), "alpha");
	ino_t ino = ino_of(P(&M, "rn/a"));
	assert_ok(rename(P(&M, "rn/a"), P(&M, "rn/b")));
	assert_errno(access(P(&M, "rn/a"), F_OK), ENOENT);
	check_str(P(&M, "rn/b"), "alpha");
	assert_int_equal(ino_of(P(&M, "rn/b")), ino);
	assert_int_equal(nlink_of(P(&M, "rn/b")), 1);
	assert_int_equal(dirent_ino(P(&M, "rn"), "b"), ino);
	assert_int_equal(dirent_ino(P(&M, "rn"), "a"), 0);
	/* Onto itself: nothing happens. */
	assert_ok(rename(P(&M, "rn/b"), P(&M, "rn/b")));
	check_str(P(&M, "rn/b"), "alpha");
	assert_errno(rename(P(&M, "rn/missing"), P(&M, "rn/c")), ENOENT);
	assert_errno(rename(P(&M, "rn/b"), P(&M, "rn/nodir/c")), ENOENT);
	assert_errno(rename(P(&M, "rn/b"), P(&M, "rn/b/c")), ENOTDIR);
	assert_int_equal(count_entries(P(&M, "rn")), 1);
	/* Two names of one inode: rename of one onto the other does nothing (POSIX). */
	assert_ok(link(P(&M, "rn/b"), P(&M, "rn/c")));
	assert_ok(rename(P(&M, "rn/b"), P(&M, "rn/c")));
	assert_int_equal(nlink_of(P(&M, "rn/b")), 2);
	assert_int_equal(count_entries(P(&M, "rn")), 2);
}

static void test_rename_over_file(void **state)
{
	(void)state;
	char big[16384];

	mk(P(&M, "ro"));
	pat_fill(big, sizeof(big), 0, 12);
	write_str(P(&M, "ro/a"), "AAA");
	write_file(P(&M, "ro/b"), big, sizeof(big));
	ino_t ia = ino_of(P(&M, "ro/a"));
	struct statvfs s0 = sfs_of(M.dir);
	assert_ok(rename(P(&M, "ro/a"), P(&M, "ro/b")));
	check_str(P(&M, "ro/b"), "AAA");
	assert_int_equal(ino_of(P(&M, "ro/b")), ia);
	assert_errno(access(P(&M, "ro/a"), F_OK), ENOENT);
	assert_int_equal(count_entries(P(&M, "ro")), 1);
	/* The replaced file's blocks and inode are freed. */
	assert_int_equal(wait_bfree(M.dir, s0.f_bfree + 4), s0.f_bfree + 4);
	assert_int_equal(wait_ffree(M.dir, s0.f_ffree + 1), s0.f_ffree + 1);

	/* The replaced file is open: readable through the fd, freed at close. */
	write_file(P(&M, "ro/c"), big, sizeof(big));
	int fd = open(P(&M, "ro/c"), O_RDONLY);
	assert_true(fd >= 0);
	s0 = sfs_of(M.dir);
	assert_ok(rename(P(&M, "ro/b"), P(&M, "ro/c")));
	check_str(P(&M, "ro/c"), "AAA");
	char got[sizeof(big)];
	assert_int_equal(pread(fd, got, sizeof(got), 0), (ssize_t)sizeof(got));
	assert_memory_equal(got, big, sizeof(big));
	struct stat st;
	assert_ok(fstat(fd, &st));
	assert_int_equal(st.st_nlink, 0);
	assert_int_equal(sfs_of(M.dir).f_bfree, s0.f_bfree);
	close(fd);
	assert_int_equal(wait_bfree(M.dir, s0.f_bfree + 4), s0.f_bfree + 4);

	/* Over one of several links: the other link keeps the data. */
	write_str(P(&M, "ro/d"), "DDD");
	assert_ok(link(P(&M, "ro/d"), P(&M, "ro/d2")));
	assert_ok(rename(P(&M, "ro/c"), P(&M, "ro/d")));
	check_str(P(&M, "ro/d"), "AAA");
	check_str(P(&M, "ro/d2"), "DDD");
	assert_int_equal(nlink_of(P(&M, "ro/d2")), 1);
}

static void test_rename_across_dirs(void **state)
{
	(void)state;
	mk(P(&M, "rx"));
	mk(P(&M, "rx/d1"));
	mk(P(&M, "rx/d2"));
	write_str(P(&M, "rx/d1/f"), "moving");
	ino_t ino = ino_of(P(&M, "rx/d1/f"));
	assert_ok(rename(P(&M, "rx/d1/f"), P(&M, "rx/d2/g")));
	check_str(P(&M, "rx/d2/g"), "moving");
	assert_int_equal(ino_of(P(&M, "rx/d2/g")), ino);
	assert_int_equal(count_entries(P(&M, "rx/d1")), 0);
	assert_int_equal(count_entries(P(&M, "rx/d2")), 1);
	/* Files do not change directory link counts. */
	assert_int_equal(nlink_of(P(&M, "rx/d1")), 2);
	assert_int_equal(nlink_of(P(&M, "rx/d2")), 2);
	/* Over an existing file in the other directory. */
	write_str(P(&M, "rx/d1/h"), "h");
	assert_ok(rename(P(&M, "rx/d2/g"), P(&M, "rx/d1/h")));
	check_str(P(&M, "rx/d1/h"), "moving");
	assert_int_equal(count_entries(P(&M, "rx/d2")), 0);
}

static void test_rename_dir(void **state)
{
	(void)state;
	mk(P(&M, "rd"));
	mk(P(&M, "rd/d1"));
	mk(P(&M, "rd/d2"));
	mk(P(&M, "rd/d1/sub"));
	mk(P(&M, "rd/d1/sub/deep"));
	write_str(P(&M, "rd/d1/sub/x"), "x");
	ino_t d2 = ino_of(P(&M, "rd/d2")), sub = ino_of(P(&M, "rd/d1/sub"));
	assert_int_equal(nlink_of(P(&M, "rd/d1")), 3);
	assert_ok(rename(P(&M, "rd/d1/sub"), P(&M, "rd/d2/sub")));
	assert_int_equal(nlink_of(P(&M, "rd/d1")), 2);
	assert_int_equal(nlink_of(P(&M, "rd/d2")), 3);
	assert_int_equal(nlink_of(P(&M, "rd/d2/sub")), 3);
	assert_int_equal(ino_of(P(&M, "rd/d2/sub")), sub);
	check_str(P(&M, "rd/d2/sub/x"), "x");
	/* ".." as the file system reports it follows the move. */
	assert_int_equal(dirent_ino(P(&M, "rd/d2/sub"), ".."), d2);
	assert_int_equal(dirent_ino(P(&M, "rd/d2/sub/deep"), ".."), sub);
	/* Rename within one directory keeps the counts. */
	assert_ok(rename(P(&M, "rd/d2/sub"), P(&M, "rd/d2/sub2")));
	assert_int_equal(nlink_of(P(&M, "rd/d2")), 3);
	assert_int_equal(dirent_ino(P(&M, "rd/d2/sub2"), ".."), d2);
	/* Over an empty directory in another parent: the victim's link to its parent goes. */
	mk(P(&M, "rd/d1/empty"));
	assert_int_equal(nlink_of(P(&M, "rd/d1")), 3);
	assert_ok(rename(P(&M, "rd/d2/sub2"), P(&M, "rd/d1/empty")));
	assert_int_equal(nlink_of(P(&M, "rd/d1")), 3);
	assert_int_equal(nlink_of(P(&M, "rd/d2")), 2);
	assert_int_equal(ino_of(P(&M, "rd/d1/empty")), sub);
	assert_int_equal(dirent_ino(P(&M, "rd/d1/empty"), ".."), ino_of(P(&M, "rd/d1")));
	check_str(P(&M, "rd/d1/empty/x"), "x");
	/* Over an empty directory in the same parent. */
	mk(P(&M, "rd/d1/e2"));
	assert_int_equal(nlink_of(P(&M, "rd/d1")), 4);
	assert_ok(rename(P(&M, "rd/d1/empty"), P(&M, "rd/d1/e2")));
	assert_int_equal(nlink_of(P(&M, "rd/d1")), 3);
	assert_int_equal(count_entries(P(&M, "rd/d1")), 1);
}

static void test_rename_errors(void **state)
{
	(void)state;
	mk(P(&M, "re"));
	mk(P(&M, "re/d"));
	mk(P(&M, "re/full"));
	write_str(P(&M, "re/full/x"), "x");
	write_str(P(&M, "re/f"), "f");
	mk(P(&M, "re/d/sub"));
	assert_errno(rename(P(&M, "re/d"), P(&M, "re/full")), ENOTEMPTY);
	assert_errno(rename(P(&M, "re/d"), P(&M, "re/f")), ENOTDIR);
	assert_errno(rename(P(&M, "re/f"), P(&M, "re/d")), EISDIR);
	assert_errno(rename(P(&M, "re/d"), P(&M, "re/d/sub/d")), EINVAL);
	assert_errno(rename(P(&M, "re/d"), P(&M, "re/d/x")), EINVAL);
	assert_errno(rename(P(&M, "re/d/."), P(&M, "re/y")), EBUSY);
	assert_errno(rename(P(&M, "re/d/sub"), P(&M, "re/d")), ENOTEMPTY);
	/* Nothing changed. */
	assert_true(S_ISDIR(st_of(P(&M, "re/d")).st_mode));
	assert_true(S_ISDIR(st_of(P(&M, "re/d/sub")).st_mode));
	assert_true(S_ISREG(st_of(P(&M, "re/f")).st_mode));
	check_str(P(&M, "re/full/x"), "x");
	assert_int_equal(nlink_of(P(&M, "re/d")), 3);
	/* Another file system. */
	char tmp[64];
	snprintf(tmp, sizeof(tmp), "/tmp/daxfs-exdev-%d", getpid());
	assert_errno(rename(P(&M, "re/f"), tmp), EXDEV);
	assert_errno(link(P(&M, "re/f"), tmp), EXDEV);
	int fd = open(tmp, O_WRONLY | O_CREAT, 0644);
	assert_true(fd >= 0);
	close(fd);
	assert_errno(rename(tmp, P(&M, "re/g")), EXDEV);
	unlink(tmp);
	check_str(P(&M, "re/f"), "f");
	/* Unknown flags; RENAME_WHITEOUT is not supported. */
	assert_errno(renameat2_(P(&M, "re/f"), P(&M, "re/g"), RENAME_NOREPLACE | RENAME_EXCHANGE), EINVAL);
	assert_errno(renameat2_(P(&M, "re/f"), P(&M, "re/g"), 1u << 7), EINVAL);
	assert_errno(renameat2_(P(&M, "re/f"), P(&M, "re/g"), RENAME_WHITEOUT), EINVAL);
	check_str(P(&M, "re/f"), "f");
	assert_errno(access(P(&M, "re/g"), F_OK), ENOENT);
}

static void test_rename_noreplace(void **state)
{
	(void)state;
	mk(P(&M, "rnr"));
	write_str(P(&M, "rnr/a"), "a");
	write_str(P(&M, "rnr/b"), "b");
	mk(P(&M, "rnr/d"));
	assert_errno(renameat2_(P(&M, "rnr/a"), P(&M, "rnr/b"), RENAME_NOREPLACE), EEXIST);
	assert_errno(renameat2_(P(&M, "rnr/a"), P(&M, "rnr/d"), RENAME_NOREPLACE), EEXIST);
	assert_errno(renameat2_(P(&M, "rnr/d"), P(&M, "rnr/a"), RENAME_NOREPLACE), EEXIST);
	check_str(P(&M, "rnr/a"), "a");
	check_str(P(&M, "rnr/b"), "b");
	assert_ok(renameat2_(P(&M, "rnr/a"), P(&M, "rnr/c"), RENAME_NOREPLACE));
	check_str(P(&M, "rnr/c"), "a");
	assert_errno(access(P(&M, "rnr/a"), F_OK), ENOENT);
	assert_ok(renameat2_(P(&M, "rnr/c"), P(&M, "rnr/d/c"), RENAME_NOREPLACE));
	check_str(P(&M, "rnr/d/c"), "a");
	assert_errno(renameat2_(P(&M, "rnr/missing"), P(&M, "rnr/x"), RENAME_NOREPLACE), ENOENT);
}

static void test_rename_exchange_files(void **state)
{
	(void)state;
	mk(P(&M, "xf"));
	mk(P(&M, "xf/d"));
	write_str(P(&M, "xf/a"), "first");
	write_str(P(&M, "xf/d/b"), "second file");
	ino_t ia = ino_of(P(&M, "xf/a")), ib = ino_of(P(&M, "xf/d/b"));
	assert_ok(renameat2_(P(&M, "xf/a"), P(&M, "xf/d/b"), RENAME_EXCHANGE));
	check_str(P(&M, "xf/a"), "second file");
	check_str(P(&M, "xf/d/b"), "first");
	assert_int_equal(ino_of(P(&M, "xf/a")), ib);
	assert_int_equal(ino_of(P(&M, "xf/d/b")), ia);
	assert_int_equal(dirent_ino(P(&M, "xf"), "a"), ib);
	assert_int_equal(dirent_ino(P(&M, "xf/d"), "b"), ia);
	assert_int_equal(nlink_of(P(&M, "xf/a")), 1);
	assert_int_equal(nlink_of(P(&M, "xf/d")), 2);
	/* Same directory. */
	write_str(P(&M, "xf/c"), "third");
	assert_ok(renameat2_(P(&M, "xf/a"), P(&M, "xf/c"), RENAME_EXCHANGE));
	check_str(P(&M, "xf/a"), "third");
	check_str(P(&M, "xf/c"), "second file");
	/* The target must exist. */
	assert_errno(renameat2_(P(&M, "xf/a"), P(&M, "xf/missing"), RENAME_EXCHANGE), ENOENT);
	assert_errno(renameat2_(P(&M, "xf/missing"), P(&M, "xf/a"), RENAME_EXCHANGE), ENOENT);
	check_str(P(&M, "xf/a"), "third");
	/* With itself (via a second link): nothing changes. */
	assert_ok(link(P(&M, "xf/a"), P(&M, "xf/a2")));
	assert_ok(renameat2_(P(&M, "xf/a"), P(&M, "xf/a2"), RENAME_EXCHANGE));
	check_str(P(&M, "xf/a"), "third");
	check_str(P(&M, "xf/a2"), "third");
	assert_int_equal(count_entries(P(&M, "xf")), 4);
}

static void test_rename_exchange_dirs(void **state)
{
	(void)state;
	mk(P(&M, "xd"));
	mk(P(&M, "xd/p1"));
	mk(P(&M, "xd/p2"));
	mk(P(&M, "xd/p1/x"));
	mk(P(&M, "xd/p1/x/in"));
	mk(P(&M, "xd/p2/y"));
	write_str(P(&M, "xd/p2/y/file"), "y");
	ino_t p1 = ino_of(P(&M, "xd/p1")), p2 = ino_of(P(&M, "xd/p2"));
	ino_t x = ino_of(P(&M, "xd/p1/x")), y = ino_of(P(&M, "xd/p2/y"));
	assert_ok(renameat2_(P(&M, "xd/p1/x"), P(&M, "xd/p2/y"), RENAME_EXCHANGE));
	assert_int_equal(ino_of(P(&M, "xd/p1/x")), y);
	assert_int_equal(ino_of(P(&M, "xd/p2/y")), x);
	check_str(P(&M, "xd/p1/x/file"), "y");
	assert_true(S_ISDIR(st_of(P(&M, "xd/p2/y/in")).st_mode));
	assert_int_equal(nlink_of(P(&M, "xd/p1")), 3);
	assert_int_equal(nlink_of(P(&M, "xd/p2")), 3);
	assert_int_equal(nlink_of(P(&M, "xd/p1/x")), 2);
	assert_int_equal(nlink_of(P(&M, "xd/p2/y")), 3);
	assert_int_equal(dirent_ino(P(&M, "xd/p1/x"), ".."), p1);
	assert_int_equal(dirent_ino(P(&M, "xd/p2/y"), ".."), p2);
	/* A directory with its own ancestor: EINVAL. */
	assert_errno(renameat2_(P(&M, "xd/p2"), P(&M, "xd/p2/y/in"), RENAME_EXCHANGE), EINVAL);
	assert_errno(renameat2_(P(&M, "xd/p2/y/in"), P(&M, "xd/p2"), RENAME_EXCHANGE), EINVAL);
}

static void test_rename_exchange_file_dir(void **state)
{
	(void)state;
	mk(P(&M, "xfd"));
	mk(P(&M, "xfd/pa"));
	mk(P(&M, "xfd/pb"));
	write_str(P(&M, "xfd/pa/f"), "file");
	mk(P(&M, "xfd/pb/sd"));
	write_str(P(&M, "xfd/pb/sd/inside"), "in");
	ino_t pa = ino_of(P(&M, "xfd/pa"));
	assert_int_equal(nlink_of(P(&M, "xfd/pa")), 2);
	assert_int_equal(nlink_of(P(&M, "xfd/pb")), 3);
	assert_ok(renameat2_(P(&M, "xfd/pa/f"), P(&M, "xfd/pb/sd"), RENAME_EXCHANGE));
	assert_true(S_ISDIR(st_of(P(&M, "xfd/pa/f")).st_mode));
	assert_true(S_ISREG(st_of(P(&M, "xfd/pb/sd")).st_mode));
	check_str(P(&M, "xfd/pa/f/inside"), "in");
	check_str(P(&M, "xfd/pb/sd"), "file");
	/* The subdirectory's ".." link moved from pb to pa. */
	assert_int_equal(nlink_of(P(&M, "xfd/pa")), 3);
	assert_int_equal(nlink_of(P(&M, "xfd/pb")), 2);
	assert_int_equal(dirent_ino(P(&M, "xfd/pa/f"), ".."), pa);
	/* d_type in the parents follows the exchange. */
	DIR *d = opendir(P(&M, "xfd/pa"));
	struct dirent *e;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, "f") == 0)
			assert_int_equal(e->d_type, DT_DIR);
	closedir(d);
	d = opendir(P(&M, "xfd/pb"));
	while ((e = readdir(d)))
		if (strcmp(e->d_name, "sd") == 0)
			assert_int_equal(e->d_type, DT_REG);
	closedir(d);
	/* And back, within one directory now: counts unchanged. */
	mk(P(&M, "xfd/pa/g"));
	write_str(P(&M, "xfd/pa/h"), "h");
	assert_ok(renameat2_(P(&M, "xfd/pa/g"), P(&M, "xfd/pa/h"), RENAME_EXCHANGE));
	assert_int_equal(nlink_of(P(&M, "xfd/pa")), 4);
	assert_true(S_ISDIR(st_of(P(&M, "xfd/pa/h")).st_mode));
	/* The moved directory can be removed and its old parent's count stays right. */
	assert_ok(unlink(P(&M, "xfd/pa/f/inside")));
	assert_ok(rmdir(P(&M, "xfd/pa/f")));
	assert_int_equal(nlink_of(P(&M, "xfd/pa")), 3);
	assert_ok(rmdir(P(&M, "xfd/pa/h")));
	assert_int_equal(nlink_of(P(&M, "xfd/pa")), 2);
}

/* ---- links ---- */

static void test_link(void **state)
{
	(void)state;
	mk(P(&M, "ln"));
	mk(P(&M, "ln/other"));
	write_str(P(&M, "ln/f"), "shared");
	ino_t ino = ino_of(P(&M, "ln/f"));
	assert_ok(link(P(&M, "ln/f"), P(&M, "ln/g")));
	assert_ok(link(P(&M, "ln/g"), P(&M, "ln/other/h")));
	assert_int_equal(nlink_of(P(&M, "ln/f")), 3);
	assert_int_equal(nlink_of(P(&M, "ln/other/h")), 3);
	assert_int_equal(ino_of(P(&M, "ln/other/h")), ino);
	assert_int_equal(dirent_ino(P(&M, "ln/other"), "h"), ino);
	/* One inode: a write through one name shows through the others. */
	int fd = open(P(&M, "ln/g"), O_WRONLY);
	assert_int_equal(pwrite(fd, "S", 1, 0), 1);
	close(fd);
	check_str(P(&M, "ln/other/h"), "Shared");
	assert_ok(chmod(P(&M, "ln/other/h"), 0600));
	assert_int_equal(st_of(P(&M, "ln/f")).st_mode, S_IFREG | 0600);

	assert_errno(link(P(&M, "ln/other"), P(&M, "ln/dirlink")), EPERM);
	assert_errno(link(P(&M, "ln/f"), P(&M, "ln/g")), EEXIST);
	assert_errno(link(P(&M, "ln/f"), P(&M, "ln/other")), EEXIST);
	assert_errno(link(P(&M, "ln/missing"), P(&M, "ln/x")), ENOENT);
	assert_errno(link(P(&M, "ln/f"), P(&M, "ln/nodir/x")), ENOENT);
	assert_errno(link(P(&M, "ln/f"), P(&M, "ln/f/x")), ENOTDIR);

	assert_ok(unlink(P(&M, "ln/f")));
	assert_int_equal(nlink_of(P(&M, "ln/g")), 2);
	check_str(P(&M, "ln/g"), "Shared");
	assert_ok(unlink(P(&M, "ln/other/h")));
	assert_int_equal(nlink_of(P(&M, "ln/g")), 1);

	/* A link to a symlink (linkat without AT_SYMLINK_FOLLOW) links the symlink itself. */
	assert_ok(symlink("g", P(&M, "ln/sym")));
	assert_ok(linkat(AT_FDCWD, P(&M, "ln/sym"), AT_FDCWD, P(&M, "ln/sym2"), 0));
	struct stat st = st_of(P(&M, "ln/sym2"));
	assert_true(S_ISLNK(st.st_mode));
	assert_int_equal(st.st_nlink, 2);
	assert_ok(linkat(AT_FDCWD, P(&M, "ln/sym"), AT_FDCWD, P(&M, "ln/g2"), AT_SYMLINK_FOLLOW));
	assert_int_equal(nlink_of(P(&M, "ln/g")), 2);
	/* Special files can be linked too. */
	assert_ok(mkfifo(P(&M, "ln/fifo"), 0644));
	assert_ok(link(P(&M, "ln/fifo"), P(&M, "ln/fifo2")));
	assert_int_equal(nlink_of(P(&M, "ln/fifo")), 2);

	/* An unlinked, open file cannot be linked back in. */
	fd = open(P(&M, "ln/g"), O_RDONLY);
	assert_ok(unlink(P(&M, "ln/g")));
	assert_ok(unlink(P(&M, "ln/g2")));
	assert_errno(linkat(fd, "", AT_FDCWD, P(&M, "ln/back"), AT_EMPTY_PATH), ENOENT);
	close(fd);
}

/* ---- symlinks ---- */

static char *repeat(char c, size_t n)
{
	char *s = malloc(n + 1);

	memset(s, c, n);
	s[n] = 0;
	return s;
}

static void check_symlink(const char *path, const char *target)
{
	char buf[8192];
	size_t len = strlen(target);

	assert_ok(symlink(target, path));
	ssize_t n = readlink(path, buf, sizeof(buf));
	assert_int_equal(n, (ssize_t)len);
	assert_memory_equal(buf, target, len);
	struct stat st = st_of(path);
	assert_true(S_ISLNK(st.st_mode));
	assert_int_equal(st.st_size, len);
	assert_int_equal(st.st_mode & 07777, 0777);
}

static void test_symlink(void **state)
{
	(void)state;
	char buf[64];

	mk(P(&M, "sl"));
	write_str(P(&M, "sl/target"), "content");
	check_symlink(P(&M, "sl/short"), "target");
	check_str(P(&M, "sl/short"), "content");
	struct stat st;
	assert_ok(stat(P(&M, "sl/short"), &st));
	assert_int_equal(st.st_ino, ino_of(P(&M, "sl/target")));
	/* Around the inline limit, and the longest target Linux allows. */
	static const size_t lens[] = { 1, 119, 120, 121, 1000, 4095 };
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		char *t = repeat((char)('a' + i), lens[i]);
		char name[32];

		snprintf(name, sizeof(name), "sl/len%zu", lens[i]);
		check_symlink(P(&M, "%s", name), t);
		free(t);
	}
	char *t = repeat('z', 4096);
	assert_errno(symlink(t, P(&M, "sl/toolong")), ENAMETOOLONG);
	free(t);
	assert_errno(access(P(&M, "sl/toolong"), F_OK), ENOENT);
	assert_errno(symlink("", P(&M, "sl/empty")), ENOENT);
	/* A target full of path syntax is stored verbatim. */
	check_symlink(P(&M, "sl/odd"), "../x/./y//z/");
	/* Errors. */
	assert_errno(symlink("x", P(&M, "sl/short")), EEXIST);
	assert_errno(symlink("x", P(&M, "sl/target")), EEXIST);
	assert_errno(symlink("x", P(&M, "sl/nodir/l")), ENOENT);
	assert_errno(readlink(P(&M, "sl/target"), buf, sizeof(buf)), EINVAL);
	assert_errno(readlink(P(&M, "sl"), buf, sizeof(buf)), EINVAL);
	/* A short buffer truncates without NUL. */
	memset(buf, '#', sizeof(buf));
	assert_int_equal(readlink(P(&M, "sl/short"), buf, 3), 3);
	assert_memory_equal(buf, "tar#", 4);
	/* Dangling and looping links. */
	assert_ok(symlink("nowhere", P(&M, "sl/dangling")));
	assert_errno(stat(P(&M, "sl/dangling"), &st), ENOENT);
	assert_ok(lstat(P(&M, "sl/dangling"), &st));
	assert_ok(symlink("loop2", P(&M, "sl/loop1")));
	assert_ok(symlink("loop1", P(&M, "sl/loop2")));
	assert_errno(open(P(&M, "sl/loop1"), O_RDONLY), ELOOP);
	assert_errno(open(P(&M, "sl/short"), O_RDONLY | O_NOFOLLOW), ELOOP);
	/* Through a directory symlink. */
	mk(P(&M, "sl/realdir"));
	write_str(P(&M, "sl/realdir/in"), "in");
	assert_ok(symlink("realdir", P(&M, "sl/dirlink")));
	check_str(P(&M, "sl/dirlink/in"), "in");
	/* Removing a symlink leaves the target; its data block (long target) is freed. */
	struct statvfs s0 = sfs_of(M.dir);
	assert_ok(unlink(P(&M, "sl/len1000")));
	assert_int_equal(wait_bfree(M.dir, s0.f_bfree + 1), s0.f_bfree + 1);
	assert_ok(unlink(P(&M, "sl/short")));
	check_str(P(&M, "sl/target"), "content");
}

/* ---- special files ---- */

static void test_mknod(void **state)
{
	(void)state;
	struct stat st;

	mk(P(&M, "sp"));
	assert_ok(mkfifo(P(&M, "sp/fifo"), 0640));
	st = st_of(P(&M, "sp/fifo"));
	assert_int_equal(st.st_mode, S_IFIFO | 0640);
	assert_int_equal(st.st_size, 0);
	assert_int_equal(st.st_rdev, 0);
	/* A FIFO on the mount is a working pipe (the kernel's, not the file system's). */
	int fd = open(P(&M, "sp/fifo"), O_RDWR | O_NONBLOCK);
	assert_true(fd >= 0);
	char buf[8];
	assert_int_equal(write(fd, "pipe", 4), 4);
	assert_int_equal(read(fd, buf, sizeof(buf)), 4);
	assert_memory_equal(buf, "pipe", 4);
	close(fd);

	assert_ok(mknod(P(&M, "sp/chr"), S_IFCHR | 0600, makedev(1, 7)));
	st = st_of(P(&M, "sp/chr"));
	assert_int_equal(st.st_mode, S_IFCHR | 0600);
	assert_int_equal(major(st.st_rdev), 1);
	assert_int_equal(minor(st.st_rdev), 7);
	assert_ok(mknod(P(&M, "sp/chr-big"), S_IFCHR | 0600, makedev(4000, 1000000)));
	st = st_of(P(&M, "sp/chr-big"));
	assert_int_equal(major(st.st_rdev), 4000);
	assert_int_equal(minor(st.st_rdev), 1000000);
	assert_ok(mknod(P(&M, "sp/blk"), S_IFBLK | 0640, makedev(8, 17)));
	st = st_of(P(&M, "sp/blk"));
	assert_int_equal(st.st_mode, S_IFBLK | 0640);
	assert_int_equal(st.st_rdev, makedev(8, 17));
	/* The mount is nodev: a device node cannot be opened. */
	assert_errno(open(P(&M, "sp/chr"), O_RDONLY), EACCES);

	assert_ok(mknod(P(&M, "sp/sock"), S_IFSOCK | 0755, 0));
	assert_int_equal(st_of(P(&M, "sp/sock")).st_mode, S_IFSOCK | 0755);
	assert_ok(mknod(P(&M, "sp/reg"), S_IFREG | 0600, 0));
	st = st_of(P(&M, "sp/reg"));
	assert_int_equal(st.st_mode, S_IFREG | 0600);
	assert_int_equal(st.st_size, 0);
	assert_errno(mknod(P(&M, "sp/fifo"), S_IFIFO | 0644, 0), EEXIST);
	assert_errno(mknod(P(&M, "sp/nodir/x"), S_IFIFO | 0644, 0), ENOENT);

	/* A listening unix socket bound on the mount, and a client connecting through the path. */
	int srv = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(P(&M, "sp/usock")) >= sizeof(sa.sun_path))
		skip();
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", P(&M, "sp/usock"));
	assert_ok(bind(srv, (struct sockaddr *)&sa, sizeof(sa)));
	assert_ok(listen(srv, 1));
	assert_true(S_ISSOCK(st_of(P(&M, "sp/usock")).st_mode));
	int cli = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_ok(connect(cli, (struct sockaddr *)&sa, sizeof(sa)));
	int acc = accept(srv, NULL, NULL);
	assert_true(acc >= 0);
	assert_int_equal(write(cli, "hi", 2), 2);
	assert_int_equal(read(acc, buf, 2), 2);
	assert_memory_equal(buf, "hi", 2);
	close(acc);
	close(cli);
	close(srv);
	srv = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_errno(bind(srv, (struct sockaddr *)&sa, sizeof(sa)), EADDRINUSE);
	close(srv);

	/* readdir reports each type. */
	static const struct { const char *name; unsigned char type; } want[] = {
		{ "fifo", DT_FIFO }, { "chr", DT_CHR }, { "blk", DT_BLK }, { "sock", DT_SOCK },
		{ "usock", DT_SOCK }, { "reg", DT_REG },
	};
	DIR *d = opendir(P(&M, "sp"));
	struct dirent *e;
	int seen = 0;
	while ((e = readdir(d))) {
		for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
			if (strcmp(e->d_name, want[i].name) == 0) {
				if (e->d_type != want[i].type)
					fail_msg("%s: d_type %d, want %d", e->d_name, e->d_type, want[i].type);
				seen++;
			}
		}
	}
	closedir(d);
	assert_int_equal(seen, 6);
	assert_ok(unlink(P(&M, "sp/usock")));
	assert_ok(unlink(P(&M, "sp/chr-big")));
}

/* ---- readdir ---- */

#define NFILES 1000

/* Names of varying length so records pack differently in each block. */
static void fname(char *buf, size_t len, int i)
{
	snprintf(buf, len, "file-%d-%.*s", i, i % 200, "pppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppp");
}

static int parse_index(const char *name)
{
	int i;

	return sscanf(name, "file-%d-", &i) == 1 ? i : -1;
}

static void test_readdir_all(void **state)
{
	(void)state;
	char name[300];
	static unsigned char seen[NFILES];

	mk(P(&M, "rdall"));
	for (int i = 0; i < NFILES; i++) {
		fname(name, sizeof(name), i);
		int fd = open(P(&M, "rdall/%s", name), O_WRONLY | O_CREAT | O_EXCL, 0644);
		assert_true(fd >= 0);
		close(fd);
	}
	mk(P(&M, "rdall/subdir"));
	ino_t self = ino_of(P(&M, "rdall")), parent = ino_of(M.dir), sub = ino_of(P(&M, "rdall/subdir"));

	/* Twice: once plain, once stat'ing every entry as ls -l does (which makes FUSE use READDIRPLUS). */
	for (int pass = 0; pass < 2; pass++) {
		memset(seen, 0, sizeof(seen));
		int dots = 0, subs = 0;
		DIR *d = opendir(P(&M, "rdall"));
		struct dirent *e;
		assert_non_null(d);
		while ((e = readdir(d))) {
			if (strcmp(e->d_name, ".") == 0) {
				assert_int_equal(e->d_ino, self);
				assert_int_equal(e->d_type, DT_DIR);
				dots++;
				continue;
			}
			if (strcmp(e->d_name, "..") == 0) {
				assert_int_equal(e->d_ino, parent);
				assert_int_equal(e->d_type, DT_DIR);
				dots++;
				continue;
			}
			if (strcmp(e->d_name, "subdir") == 0) {
				assert_int_equal(e->d_ino, sub);
				assert_int_equal(e->d_type, DT_DIR);
				subs++;
				continue;
			}
			int i = parse_index(e->d_name);
			if (i < 0 || i >= NFILES)
				fail_msg("unexpected entry %s", e->d_name);
			fname(name, sizeof(name), i);
			assert_string_equal(e->d_name, name);
			if (seen[i]++)
				fail_msg("%s seen twice", e->d_name);
			assert_int_equal(e->d_type, DT_REG);
			if (pass == 1) {
				struct stat st;
				assert_ok(fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW));
				assert_int_equal(st.st_ino, e->d_ino);
				assert_int_equal(st.st_mode, S_IFREG | 0644);
			}
		}
		closedir(d);
		assert_int_equal(dots, 2);
		assert_int_equal(subs, 1);
		for (int i = 0; i < NFILES; i++)
			if (seen[i] != 1)
				fail_msg("file %d seen %d times (pass %d)", i, seen[i], pass);
	}
	/* ".." in a subdirectory is its parent. */
	assert_int_equal(dirent_ino(P(&M, "rdall/subdir"), ".."), self);
	assert_int_equal(dirent_ino(P(&M, "rdall/subdir"), "."), sub);
	assert_int_equal(dirent_ino(M.dir, "."), ino_of(M.dir));

	/* Remove every other file: exactly the rest remain. */
	for (int i = 0; i < NFILES; i += 2) {
		fname(name, sizeof(name), i);
		assert_ok(unlink(P(&M, "rdall/%s", name)));
	}
	memset(seen, 0, sizeof(seen));
	DIR *d = opendir(P(&M, "rdall"));
	struct dirent *e;
	int n = 0;
	while ((e = readdir(d))) {
		int i = parse_index(e->d_name);
		if (i >= 0) {
			assert_true(i % 2 == 1);
			assert_int_equal(seen[i]++, 0);
			n++;
		}
	}
	closedir(d);
	assert_int_equal(n, NFILES / 2);
}

/* telldir/seekdir: a saved position continues with exactly the same entries. */
static void test_readdir_seek(void **state)
{
	(void)state;
	char name[300];
	enum { N = 300 };
	static char after[N + 2][300], again[N + 2][300];

	mk(P(&M, "rdseek"));
	for (int i = 0; i < N; i++) {
		fname(name, sizeof(name), i);
		assert_ok(mknod(P(&M, "rdseek/%s", name), S_IFREG | 0644, 0));
	}
	DIR *d = opendir(P(&M, "rdseek"));
	struct dirent *e;
	long start = telldir(d);
	for (int i = 0; i < 123; i++)
		assert_non_null(readdir(d));
	long pos = telldir(d);
	int na = 0, nb = 0;
	while ((e = readdir(d)))
		snprintf(after[na++], 300, "%s", e->d_name);
	assert_int_equal(na, N + 2 - 123);
	seekdir(d, pos);
	while ((e = readdir(d)))
		snprintf(again[nb++], 300, "%s", e->d_name);
	assert_int_equal(nb, na);
	for (int i = 0; i < na; i++)
		assert_string_equal(after[i], again[i]);
	/* Back to the start, and rewinddir. */
	seekdir(d, start);
	nb = 0;
	while (readdir(d))
		nb++;
	assert_int_equal(nb, N + 2);
	rewinddir(d);
	nb = 0;
	while (readdir(d))
		nb++;
	assert_int_equal(nb, N + 2);
	/* A position saved before an entry there is removed still continues with the entries after it. */
	seekdir(d, pos);
	e = readdir(d);
	assert_non_null(e);
	snprintf(name, sizeof(name), "%s", e->d_name);
	seekdir(d, pos);
	assert_ok(unlink(P(&M, "rdseek/%s", name)));
	nb = 0;
	while ((e = readdir(d))) {
		assert_string_not_equal(e->d_name, name);
		assert_string_equal(e->d_name, after[nb + 1]);
		nb++;
	}
	assert_int_equal(nb, na - 1);
	closedir(d);
}

struct churn {
	const char *dir;
	volatile int stop;
	int created;
};

static void *churn_thread(void *arg)
{
	struct churn *c = arg;
	char path[PATH_MAX];

	for (int i = 0; !c->stop && i < 5000; i++) {
		snprintf(path, sizeof(path), "%s/new-%d", c->dir, i);
		int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
		if (fd < 0)
			break;
		close(fd);
		c->created = i + 1;
		/* Delete some new ones again: holes appear and get reused while the reader walks. */
		if (i % 3 == 2) {
			snprintf(path, sizeof(path), "%s/new-%d", c->dir, i - 1);
			unlink(path);
		}
	}
	return NULL;
}

/*
 * Entries present for the whole walk are seen exactly once, whatever is created and deleted
 * meanwhile; nothing is ever seen twice.
 */
static void test_readdir_concurrent(void **state)
{
	(void)state;
	char name[300];
	static unsigned char seen[NFILES], seen_new[5000];

	mk(P(&M, "rdcon"));
	for (int i = 0; i < NFILES; i++) {
		fname(name, sizeof(name), i);
		assert_ok(mknod(P(&M, "rdcon/%s", name), S_IFREG | 0644, 0));
	}
	for (int round = 0; round < 3; round++) {
		struct churn c = { 0 };
		char dir[PATH_MAX];
		pthread_t t;

		snprintf(dir, sizeof(dir), "%s", P(&M, "rdcon"));
		c.dir = dir;
		memset(seen, 0, sizeof(seen));
		memset(seen_new, 0, sizeof(seen_new));
		int fd = open(dir, O_RDONLY | O_DIRECTORY);
		assert_true(fd >= 0);
		assert_int_equal(pthread_create(&t, NULL, churn_thread, &c), 0);
		/* Small getdents buffers: many READDIR requests, each resuming from a cookie. */
		char buf[1024];
		long n;
		while ((n = syscall(SYS_getdents64, fd, buf, sizeof(buf))) > 0) {
			for (long off = 0; off < n;) {
				struct dirent64 *e = (struct dirent64 *)(buf + off);
				int i;

				off += e->d_reclen;
				if (sscanf(e->d_name, "new-%d", &i) == 1) {
					if (seen_new[i]++)
						fail_msg("round %d: %s seen twice", round, e->d_name);
					continue;
				}
				i = parse_index(e->d_name);
				if (i < 0)
					continue;
				if (seen[i]++)
					fail_msg("round %d: %s seen twice", round, e->d_name);
			}
			usleep(200);
		}
		c.stop = 1;
		pthread_join(t, NULL);
		assert_int_equal(n, 0);
		close(fd);
		for (int i = 0; i < NFILES; i++)
			if (seen[i] != 1)
				fail_msg("round %d: file %d seen %d times", round, i, seen[i]);
		/* Clean up the new ones for the next round. */
		for (int i = 0; i < c.created; i++) {
			snprintf(name, sizeof(name), "rdcon/new-%d", i);
			unlink(P(&M, "%s", name));
		}
		assert_int_equal(count_entries(dir), NFILES);
	}
}

/*
 * READDIRPLUS on a cold cache: after a remount the attributes come from the readdir reply; they
 * must match the files.
 */
static void test_readdirplus_cold(void **state)
{
	(void)state;
	mk(P(&M, "rdplus"));
	for (int i = 0; i < 200; i++) {
		char name[32];
		snprintf(name, sizeof(name), "rdplus/f%d", i);
		int fd = open(P(&M, "%s", name), O_WRONLY | O_CREAT | O_EXCL, 0600);
		assert_true(fd >= 0);
		assert_ok(fchmod(fd, 0600 | (mode_t)(i % 8)));
		assert_int_equal(ftruncate(fd, i * 100), 0);
		close(fd);
	}
	mk(P(&M, "rdplus/d"));
	assert_ok(symlink("f1", P(&M, "rdplus/l")));
	assert_ok(link(P(&M, "rdplus/f7"), P(&M, "rdplus/f7b")));
	close_leaked(&M);
	assert_int_equal(h_umount(&M), 0);
	assert_int_equal(h_mount(&M, NULL), 0);

	DIR *d = opendir(P(&M, "rdplus"));
	struct dirent *e;
	int n = 0;
	while ((e = readdir(d))) {
		struct stat st;
		int i;

		assert_ok(fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW));
		assert_int_equal(st.st_ino, e->d_ino);
		if (sscanf(e->d_name, "f%d", &i) == 1) {
			assert_int_equal(e->d_type, DT_REG);
			assert_int_equal(st.st_mode, S_IFREG | 0600 | (i % 8));
			assert_int_equal(st.st_size, i * 100);
			assert_int_equal(st.st_nlink, i == 7 ? 2 : 1);
			n++;
		} else if (strcmp(e->d_name, "d") == 0) {
			assert_int_equal(e->d_type, DT_DIR);
			assert_int_equal(st.st_nlink, 2);
		} else if (strcmp(e->d_name, "l") == 0) {
			assert_int_equal(e->d_type, DT_LNK);
			assert_int_equal(st.st_size, 2);
		}
	}
	closedir(d);
	assert_int_equal(n, 201);
}

/* ---- concurrent namespace changes ---- */

#define NSTRESS_NAMES 40
#define NSTRESS_PROCS 4

/* Errors a racing namespace operation may legitimately return. */
static bool expected_race_errno(int e)
{
	return e == ENOENT || e == EEXIST || e == ENOTEMPTY || e == EISDIR || e == ENOTDIR || e == EINVAL ||
	       e == EPERM || e == EBUSY;
}

/* One worker: random operations on names shared with the others; exits non-zero on a surprise. */
static int stress_worker(const char *base, unsigned seed, int seconds)
{
	char a[PATH_MAX + 64], b[PATH_MAX + 64];
	struct timespec end = now_rt();

	end.tv_sec += seconds;
	srandom(seed);
	for (long n = 0; ts_cmp(now_rt(), end) < 0; n++) {
		int op = (int)(random() % 9), r = 0;
		const char *sub1 = random() % 3 ? "" : "d0/", *sub2 = random() % 3 ? "" : "d1/";

		snprintf(a, sizeof(a), "%s/%ss%ld", base, sub1, random() % NSTRESS_NAMES);
		snprintf(b, sizeof(b), "%s/%ss%ld", base, sub2, random() % NSTRESS_NAMES);
		switch (op) {
		case 0: {
			int fd = open(a, O_WRONLY | O_CREAT | O_EXCL, 0644);
			if (fd >= 0) {
				r = write(fd, a, strlen(a)) < 0 ? -1 : 0;
				close(fd);
			} else {
				r = -1;
			}
			break;
		}
		case 1: r = unlink(a); break;
		case 2: r = rename(a, b); break;
		case 3: r = renameat2_(a, b, RENAME_EXCHANGE); break;
		case 4: r = renameat2_(a, b, RENAME_NOREPLACE); break;
		case 5: r = link(a, b); break;
		case 6: r = mkdir(a, 0755); break;
		case 7: r = rmdir(a); break;
		case 8: r = symlink("target", a); break;
		}
		if (r < 0 && !expected_race_errno(errno)) {
			fprintf(stderr, "stress op %d on %s / %s: %s\n", op, a, b, strerror(errno));
			return 1;
		}
	}
	return 0;
}

struct tally {
	ino_t ino;
	int names;
	nlink_t nlink;
};

/* Walk the tree: every name resolves, d_type matches, directory link counts add up; count names per inode. */
static void stress_walk(const char *dir, struct tally *t, int *nt)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int subdirs = 0;

	assert_non_null(d);
	while ((e = readdir(d))) {
		char path[PATH_MAX + 300];
		struct stat st;

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (lstat(path, &st) < 0)
			fail_msg("%s listed but lstat fails: %s", path, strerror(errno));
		assert_int_equal(st.st_ino, e->d_ino);
		if (IFTODT(st.st_mode) != e->d_type)
			fail_msg("%s: d_type %d but mode %o", path, e->d_type, st.st_mode);
		if (S_ISDIR(st.st_mode)) {
			subdirs++;
			assert_int_equal(dirent_ino(path, ".."), st_of(dir).st_ino);
			stress_walk(path, t, nt);
			continue;
		}
		int i;
		for (i = 0; i < *nt && t[i].ino != st.st_ino; i++)
			;
		if (i == *nt) {
			t[i] = (struct tally){ st.st_ino, 0, st.st_nlink };
			(*nt)++;
		}
		t[i].names++;
	}
	closedir(d);
	nlink_t want = (nlink_t)(2 + subdirs);
	if (st_of(dir).st_nlink != want)
		fail_msg("%s: nlink %lu, but it has %d subdirectories", dir, (unsigned long)st_of(dir).st_nlink, subdirs);
}

static void check_stress_tree(const char *base)
{
	static struct tally t[4096];
	int nt = 0;

	stress_walk(base, t, &nt);
	for (int i = 0; i < nt; i++)
		if ((nlink_t)t[i].names != t[i].nlink)
			fail_msg("inode %lu has %d names but nlink %lu", (unsigned long)t[i].ino, t[i].names,
				 (unsigned long)t[i].nlink);
}

/*
 * Several processes create, remove, rename (plain, exchange, noreplace), link and mkdir over the
 * same few names.  Afterwards the tree must be consistent, before and after a remount (and fsck,
 * in test_remount).
 */
static void test_namespace_stress(void **state)
{
	(void)state;
	char base[PATH_MAX];
	pid_t pids[NSTRESS_PROCS];

	mk(P(&M, "stress"));
	mk(P(&M, "stress/d0"));
	mk(P(&M, "stress/d1"));
	snprintf(base, sizeof(base), "%s", P(&M, "stress"));
	for (int i = 0; i < NSTRESS_PROCS; i++) {
		pids[i] = fork();
		if (pids[i] == 0)
			_exit(stress_worker(base, 1000u + (unsigned)i, 2));
	}
	for (int i = 0; i < NSTRESS_PROCS; i++) {
		int st;
		assert_int_equal(waitpid(pids[i], &st, 0), pids[i]);
		assert_true(WIFEXITED(st));
		assert_int_equal(WEXITSTATUS(st), 0);
	}
	check_stress_tree(base);
	close_leaked(&M);
	assert_int_equal(h_umount(&M), 0);
	assert_int_equal(h_mount(&M, NULL), 0);
	check_stress_tree(P(&M, "stress"));
}

/* Last: a clean unmount, and a remount that sees what the tests left. */
static void test_remount(void **state)
{
	(void)state;
	char buf[8192];

	close_leaked(&M);
	assert_int_equal(h_umount(&M), 0);
	fsck_clean(&M);
	assert_int_equal(h_mount(&M, NULL), 0);
	char *t = repeat((char)('a' + 5), 4095);
	assert_int_equal(readlink(P(&M, "sl/len4095"), buf, sizeof(buf)), 4095);
	assert_memory_equal(buf, t, 4095);
	free(t);
	assert_int_equal(st_of(P(&M, "sp/chr")).st_rdev, makedev(1, 7));
	assert_int_equal(st_of(P(&M, "sp/blk")).st_rdev, makedev(8, 17));
	assert_int_equal(st_of(P(&M, "sp/fifo")).st_mode, S_IFIFO | 0640);
	assert_int_equal(nlink_of(P(&M, "xfd/pa")), 2);
	assert_int_equal(nlink_of(P(&M, "xfd/pb")), 2);
	assert_int_equal(nlink_of(P(&M, "xd/p2/y")), 3);
	assert_int_equal(dirent_ino(P(&M, "xd/p1/x"), ".."), ino_of(P(&M, "xd/p1")));
	assert_int_equal(dirent_ino(P(&M, "rd/d1/e2"), ".."), ino_of(P(&M, "rd/d1")));
	assert_int_equal(nlink_of(P(&M, "rd/d1")), 3);
	check_str(P(&M, "rd/d1/e2/x"), "x");
	check_str(P(&M, "ro/d2"), "DDD");
	check_str(P(&M, "xf/d/b"), "first");
	assert_int_equal(count_entries(P(&M, "rdall")), NFILES / 2 + 1);
	assert_int_equal(count_entries(P(&M, "rdcon")), NFILES);
	assert_int_equal(h_umount(&M), 0);
}

static int run(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_mkdir_rmdir, settled),
		cmocka_unit_test_setup(test_rmdir_open, settled),
		cmocka_unit_test(test_unlink_open_file),
		cmocka_unit_test_setup(test_rename_plain, settled),
		cmocka_unit_test_setup(test_rename_over_file, settled),
		cmocka_unit_test_setup(test_rename_across_dirs, settled),
		cmocka_unit_test_setup(test_rename_dir, settled),
		cmocka_unit_test_setup(test_rename_errors, settled),
		cmocka_unit_test_setup(test_rename_noreplace, settled),
		cmocka_unit_test_setup(test_rename_exchange_files, settled),
		cmocka_unit_test_setup(test_rename_exchange_dirs, settled),
		cmocka_unit_test_setup(test_rename_exchange_file_dir, settled),
		cmocka_unit_test_setup(test_link, settled),
		cmocka_unit_test_setup(test_symlink, settled),
		cmocka_unit_test_setup(test_mknod, settled),
		cmocka_unit_test_setup(test_readdir_all, settled),
		cmocka_unit_test_setup(test_readdir_seek, settled),
		cmocka_unit_test_setup(test_readdir_concurrent, settled),
		cmocka_unit_test_setup(test_readdirplus_cold, settled),
		cmocka_unit_test_setup(test_namespace_stress, settled),
		cmocka_unit_test_setup(test_remount, settled),
	};
	return cmocka_run_group_tests_name("dirs", tests, setup, teardown);
}

int main(void)
{
	return h_main(run);
}
