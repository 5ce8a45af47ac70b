/* SPDX-License-Identifier: MIT */
/*
 * Regular files through the kernel: create/open flags, read and write at offsets, vectored I/O,
 * large files, truncate, attributes and timestamps, sparse files, SEEK_DATA/SEEK_HOLE, fallocate.
 * One mount for the whole group; each test works in its own directory.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "itest.h"

#define MiB (1u << 20)
#define BS 4096
#define MIN(a, b) ((a) < (b) ? (a) : (b))

static struct mnt M;

static int setup(void **state)
{
	(void)state;
	return h_group_up(&M, "files", "-s 256M", NULL);
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

/* A fresh directory for one test. */
static const char *tdir(const char *name)
{
	const char *d = P(&M, "%s", name);

	assert_ok(mkdir(d, 0755));
	return d;
}

static int open_new(const char *path)
{
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0644);

	if (fd < 0)
		fail_msg("create %s: %s", path, strerror(errno));
	return fd;
}

/*
 * Blocks a file owns beyond its data: extent blocks, when the allocator could not keep a large
 * range in a few extents.  Checks of large preallocations allow a few.
 */
static void assert_blocks_about(int fd, uint64_t data_blocks)
{
	struct stat st;

	assert_ok(fstat(fd, &st));
	uint64_t have = (uint64_t)st.st_blocks / (BS / 512);
	if (have < data_blocks || have > data_blocks + 4)
		fail_msg("st_blocks says %lu blocks, want %lu data blocks (+ at most 4 extent blocks)",
			 (unsigned long)have, (unsigned long)data_blocks);
}

static void test_create_excl(void **state)
{
	(void)state;
	tdir("excl");
	int fd = open(P(&M, "excl/f"), O_WRONLY | O_CREAT | O_EXCL, 0640);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "abc", 3), 3);
	assert_ok(close(fd));
	assert_errno(open(P(&M, "excl/f"), O_WRONLY | O_CREAT | O_EXCL, 0640), EEXIST);
	/* Without O_EXCL an existing file is opened, not recreated. */
	fd = open(P(&M, "excl/f"), O_RDWR | O_CREAT, 0600);
	assert_true(fd >= 0);
	struct stat st;
	assert_ok(fstat(fd, &st));
	assert_int_equal(st.st_size, 3);
	assert_int_equal(st.st_mode, S_IFREG | 0640);
	assert_int_equal(st.st_nlink, 1);
	assert_int_equal(st.st_uid, getuid());
	assert_int_equal(st.st_gid, getgid());
	assert_ok(close(fd));
	/* O_EXCL on a dangling symlink: EEXIST, and no file appears at the target. */
	assert_ok(symlink("nowhere", P(&M, "excl/dangling")));
	assert_errno(open(P(&M, "excl/dangling"), O_WRONLY | O_CREAT | O_EXCL, 0644), EEXIST);
	assert_errno(access(P(&M, "excl/nowhere"), F_OK), ENOENT);
	/* Without O_EXCL, creation through a dangling symlink creates the target. */
	fd = open(P(&M, "excl/dangling"), O_WRONLY | O_CREAT, 0644);
	assert_true(fd >= 0);
	assert_ok(close(fd));
	assert_ok(access(P(&M, "excl/nowhere"), F_OK));
}

static void test_open_errors(void **state)
{
	(void)state;
	tdir("openerr");
	write_str(P(&M, "openerr/f"), "x");
	assert_errno(open(P(&M, "openerr/missing"), O_RDONLY), ENOENT);
	assert_errno(open(P(&M, "openerr/nodir/f"), O_RDONLY | O_CREAT, 0644), ENOENT);
	assert_errno(open(P(&M, "openerr/f/x"), O_RDONLY), ENOTDIR);
	assert_errno(open(P(&M, "openerr/f/x"), O_RDWR | O_CREAT, 0644), ENOTDIR);
	assert_errno(open(P(&M, "openerr/f"), O_RDONLY | O_DIRECTORY), ENOTDIR);
	assert_errno(open(P(&M, "openerr"), O_WRONLY), EISDIR);
	assert_errno(open(P(&M, "openerr"), O_RDWR), EISDIR);
	assert_errno(open(P(&M, "openerr"), O_RDONLY | O_CREAT, 0644), EISDIR);
	/* Reading a directory fd. */
	int fd = open(P(&M, "openerr"), O_RDONLY | O_DIRECTORY);
	char c;
	assert_true(fd >= 0);
	assert_errno(read(fd, &c, 1), EISDIR);
	close(fd);
	/* Access mode is enforced by the kernel on the descriptor. */
	fd = open(P(&M, "openerr/f"), O_RDONLY);
	assert_true(fd >= 0);
	assert_errno(write(fd, "y", 1), EBADF);
	close(fd);
	fd = open(P(&M, "openerr/f"), O_WRONLY);
	assert_true(fd >= 0);
	assert_errno(read(fd, &c, 1), EBADF);
	close(fd);
	assert_errno(open(P(&M, "openerr/empty-name/"), O_RDWR | O_CREAT, 0644), EISDIR);
}

static void test_o_trunc(void **state)
{
	(void)state;
	char buf[10000];
	struct stat st;

	tdir("trunc");
	pat_fill(buf, sizeof(buf), 0, 1);
	write_file(P(&M, "trunc/f"), buf, sizeof(buf));
	uint64_t bfree = sfs_of(M.dir).f_bfree;
	int fd = open(P(&M, "trunc/f"), O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	assert_ok(fstat(fd, &st));
	assert_int_equal(st.st_size, 0);
	assert_int_equal(st.st_blocks, 0);
	assert_ok(close(fd));
	assert_int_equal(sfs_of(M.dir).f_bfree, bfree + 3);
	assert_int_equal(st_of(P(&M, "trunc/f")).st_size, 0);
	/* O_TRUNC on an empty file and O_TRUNC|O_CREAT on an existing one. */
	write_str(P(&M, "trunc/f"), "short");
	fd = open(P(&M, "trunc/f"), O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	char c;
	assert_int_equal(read(fd, &c, 1), 0);
	assert_int_equal(write(fd, "new", 3), 3);
	close(fd);
	check_str(P(&M, "trunc/f"), "new");
	/* The mode of an existing file is not changed by O_CREAT. */
	assert_int_equal(st_of(P(&M, "trunc/f")).st_mode & 07777, 0644);
	/* O_RDONLY|O_TRUNC: POSIX leaves it unspecified; Linux (ext4, xfs, tmpfs) truncates. */
	fd = open(P(&M, "trunc/f"), O_RDONLY | O_TRUNC);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(st_of(P(&M, "trunc/f")).st_size, 0);
	check_str(P(&M, "trunc/f"), "");
}

static void test_o_append(void **state)
{
	(void)state;
	tdir("append");
	write_str(P(&M, "append/f"), "abc");
	int fd = open(P(&M, "append/f"), O_WRONLY | O_APPEND);
	assert_true(fd >= 0);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	assert_int_equal(write(fd, "def", 3), 3);
	assert_int_equal(lseek(fd, 0, SEEK_CUR), 6);
	/* Another descriptor extends the file: an O_APPEND write still lands at the new end. */
	int fd2 = open(P(&M, "append/f"), O_WRONLY);
	assert_true(fd2 >= 0);
	assert_int_equal(pwrite(fd2, "XYZ", 3, 6), 3);
	assert_int_equal(write(fd, "ghi", 3), 3);
	assert_int_equal(lseek(fd, 0, SEEK_CUR), 12);
	close(fd2);
	close(fd);
	check_str(P(&M, "append/f"), "abcdefXYZghi");

	/* Two appenders interleaving: nothing overwritten. */
	int a = open(P(&M, "append/g"), O_WRONLY | O_CREAT | O_APPEND, 0644);
	int b = open(P(&M, "append/g"), O_WRONLY | O_APPEND);
	assert_true(a >= 0 && b >= 0);
	for (int i = 0; i < 50; i++) {
		assert_int_equal(write(a, "aa", 2), 2);
		assert_int_equal(write(b, "b", 1), 1);
	}
	close(a);
	close(b);
	char want[150];
	for (int i = 0; i < 50; i++)
		memcpy(want + i * 3, "aab", 3);
	check_file(P(&M, "append/g"), want, sizeof(want));
}

static void test_rw_offsets(void **state)
{
	(void)state;
	char buf[3 * BS], got[3 * BS];

	tdir("rw");
	int fd = open_new(P(&M, "rw/f"));
	pat_fill(buf, sizeof(buf), 0, 2);
	/* Out of order, unaligned pieces. */
	assert_int_equal(pwrite(fd, buf + 5000, 7000, 5000), 7000);
	assert_int_equal(pwrite(fd, buf, 100, 0), 100);
	assert_int_equal(pwrite(fd, buf + 100, 4900, 100), 4900);
	assert_int_equal(pwrite(fd, buf + 12000, sizeof(buf) - 12000, 12000), (ssize_t)(sizeof(buf) - 12000));
	struct stat st;
	assert_ok(fstat(fd, &st));
	assert_int_equal(st.st_size, sizeof(buf));
	memset(got, 0, sizeof(got));
	assert_int_equal(pread(fd, got, sizeof(got), 0), (ssize_t)sizeof(got));
	assert_memory_equal(got, buf, sizeof(buf));
	/* Overwrite in the middle, crossing a block boundary. */
	assert_int_equal(pwrite(fd, "0123456789", 10, BS - 5), 10);
	memcpy(buf + BS - 5, "0123456789", 10);
	assert_int_equal(pread(fd, got, 30, BS - 10), 30);
	assert_memory_equal(got, buf + BS - 10, 30);
	/* Reads at and across EOF. */
	assert_int_equal(pread(fd, got, 100, sizeof(buf) - 40), 40);
	assert_memory_equal(got, buf + sizeof(buf) - 40, 40);
	assert_int_equal(pread(fd, got, 100, sizeof(buf)), 0);
	assert_int_equal(pread(fd, got, 100, sizeof(buf) + 12345), 0);
	/* The file offset: read/write advance it, pread/pwrite do not. */
	assert_int_equal(lseek(fd, 0, SEEK_CUR), 0);
	assert_int_equal(read(fd, got, 10), 10);
	assert_int_equal(lseek(fd, 0, SEEK_CUR), 10);
	assert_int_equal(lseek(fd, -2, SEEK_END), (off_t)sizeof(buf) - 2);
	assert_int_equal(read(fd, got, 10), 2);
	assert_int_equal(read(fd, got, 10), 0);
	assert_errno(lseek(fd, -1, SEEK_SET), EINVAL);
	assert_errno(pread(fd, got, 1, -1), EINVAL);
	assert_errno(pwrite(fd, got, 1, -1), EINVAL);
	/* A zero-length write changes nothing. */
	assert_int_equal(pwrite(fd, got, 0, 1 << 20), 0);
	assert_ok(fstat(fd, &st));
	assert_int_equal(st.st_size, sizeof(buf));
	close(fd);
	check_file(P(&M, "rw/f"), buf, sizeof(buf));
}

static void test_readv_writev(void **state)
{
	(void)state;
	char a[1000], b[5000], c[3], all[6003], got[7000];

	tdir("vec");
	pat_fill(all, sizeof(all), 0, 3);
	memcpy(a, all, sizeof(a));
	memcpy(b, all + 1000, sizeof(b));
	memcpy(c, all + 6000, sizeof(c));
	int fd = open_new(P(&M, "vec/f"));
	struct iovec w[3] = { { a, sizeof(a) }, { b, sizeof(b) }, { c, sizeof(c) } };
	assert_int_equal(writev(fd, w, 3), 6003);
	/* Read back with a different split, including an empty iovec. */
	char r1[7], r2[4000];
	struct iovec r[4] = { { r1, sizeof(r1) }, { NULL, 0 }, { r2, sizeof(r2) }, { got, sizeof(got) } };
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	assert_int_equal(readv(fd, r, 4), 6003);
	assert_memory_equal(r1, all, 7);
	assert_memory_equal(r2, all + 7, 4000);
	assert_memory_equal(got, all + 4007, 6003 - 4007);
	/* pwritev/preadv at an offset. */
	struct iovec pw[2] = { { "hello ", 6 }, { "world", 5 } };
	assert_int_equal(pwritev(fd, pw, 2, 4090), 11);
	memcpy(all + 4090, "hello world", 11);
	struct iovec pr[2] = { { r1, 5 }, { r2, 100 } };
	assert_int_equal(preadv(fd, pr, 2, 4088), 105);
	assert_memory_equal(r1, all + 4088, 5);
	assert_memory_equal(r2, all + 4093, 100);
	close(fd);
	check_file(P(&M, "vec/f"), all, sizeof(all));
}

static void test_large_file(void **state)
{
	(void)state;
	const size_t total = 48 * MiB, chunk = MiB;
	char *buf = malloc(chunk);

	tdir("large");
	int fd = open_new(P(&M, "large/f"));
	uint64_t bfree0 = sfs_of(M.dir).f_bfree;
	for (size_t off = 0; off < total; off += chunk) {
		pat_fill(buf, chunk, off, 4);
		assert_int_equal(write(fd, buf, chunk), (ssize_t)chunk);
	}
	struct stat st;
	assert_ok(fstat(fd, &st));
	assert_int_equal(st.st_size, total);
	/* Data blocks plus at most a few extent blocks. */
	assert_true((uint64_t)st.st_blocks * 512 >= total && (uint64_t)st.st_blocks * 512 <= total + 16 * BS);
	assert_int_equal(bfree0 - sfs_of(M.dir).f_bfree, (uint64_t)st.st_blocks * 512 / BS);
	assert_ok(close(fd));

	/* Read back in odd-sized pieces that straddle blocks and extents. */
	fd = open(P(&M, "large/f"), O_RDONLY);
	assert_true(fd >= 0);
	const size_t piece = 777777;
	size_t off = 0;
	for (;;) {
		ssize_t n = read(fd, buf, piece);
		assert_true(n >= 0);
		if (n == 0)
			break;
		long d = pat_diff(buf, (size_t)n, off, 4);
		if (d >= 0)
			fail_msg("large file differs at byte %zu", off + (size_t)d);
		off += (size_t)n;
	}
	assert_int_equal(off, total);
	/* Overwrite a range in the middle and check both sides of it. */
	close(fd);
	fd = open(P(&M, "large/f"), O_RDWR);
	memset(buf, 0x5a, 100000);
	assert_int_equal(pwrite(fd, buf, 100000, 20 * MiB - 50000), 100000);
	assert_int_equal(pread(fd, buf, 200000, 20 * MiB - 100000), 200000);
	assert_int_equal(pat_diff(buf, 50000, 20 * MiB - 100000, 4), -1);
	for (int i = 50000; i < 150000; i++)
		if (buf[i] != 0x5a)
			fail_msg("overwritten byte %d is %d", i, buf[i]);
	assert_int_equal(pat_diff(buf + 150000, 50000, 20 * MiB + 50000, 4), -1);
	assert_ok(close(fd));
	/* Unlinking gives every block back. */
	assert_ok(unlink(P(&M, "large/f")));
	assert_int_equal(wait_bfree(M.dir, bfree0), bfree0);
	free(buf);
}

static void test_truncate(void **state)
{
	(void)state;
	char buf[3 * BS], got[3 * BS];
	struct stat st;

	tdir("truncate");
	int fd = open_new(P(&M, "truncate/f"));
	memset(buf, 0xaa, sizeof(buf));
	assert_int_equal(write(fd, buf, sizeof(buf)), (ssize_t)sizeof(buf));
	/* Shrink to the middle of a block, then grow back: the cut bytes read as zero. */
	assert_ok(ftruncate(fd, 100));
	assert_ok(fstat(fd, &st));
	assert_int_equal(st.st_size, 100);
	assert_int_equal(st.st_blocks, 8);
	assert_ok(ftruncate(fd, sizeof(buf)));
	assert_ok(fstat(fd, &st));
	assert_int_equal(st.st_size, sizeof(buf));
	assert_int_equal(st.st_blocks, 8);	/* growing allocates nothing */
	assert_int_equal(pread(fd, got, sizeof(got), 0), (ssize_t)sizeof(got));
	assert_memory_equal(got, buf, 100);
	assert_true(all_zero(got + 100, sizeof(got) - 100));

	/* Shrink to a block boundary and to zero. */
	assert_int_equal(pwrite(fd, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
	assert_ok(ftruncate(fd, BS));
	assert_ok(fstat(fd, &st));
	assert_int_equal(st.st_blocks, 8);
	assert_ok(ftruncate(fd, 0));
	assert_ok(fstat(fd, &st));
	assert_int_equal(st.st_size, 0);
	assert_int_equal(st.st_blocks, 0);
	assert_int_equal(pread(fd, got, 10, 0), 0);

	/* Shrink, then extend with a write beyond EOF: the gap reads as zero. */
	assert_int_equal(pwrite(fd, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
	assert_ok(ftruncate(fd, 1000));
	assert_int_equal(pwrite(fd, "end", 3, 9000), 3);
	assert_int_equal(pread(fd, got, sizeof(got), 0), 9003);
	assert_memory_equal(got, buf, 1000);
	assert_true(all_zero(got + 1000, 8000));
	assert_memory_equal(got + 9000, "end", 3);
	close(fd);

	/* truncate(2) by path, growing far: sparse. */
	assert_ok(truncate(P(&M, "truncate/f"), 1ll << 32));
	st = st_of(P(&M, "truncate/f"));
	assert_int_equal(st.st_size, 1ll << 32);
	assert_int_equal(st.st_blocks, 16);
	fd = open(P(&M, "truncate/f"), O_RDONLY);
	assert_int_equal(pread(fd, got, 4096, (1ll << 32) - 4096), 4096);
	assert_true(all_zero(got, 4096));
	close(fd);
	assert_ok(truncate(P(&M, "truncate/f"), 0));
	assert_int_equal(st_of(P(&M, "truncate/f")).st_blocks, 0);
}

static void test_truncate_errors(void **state)
{
	(void)state;
	tdir("truncerr");
	write_str(P(&M, "truncerr/f"), "data");
	assert_errno(truncate(P(&M, "truncerr"), 0), EISDIR);
	assert_errno(truncate(P(&M, "truncerr/f"), -1), EINVAL);
	assert_errno(truncate(P(&M, "truncerr/missing"), 0), ENOENT);
	/* Beyond the maximum file size (16 TiB). */
	assert_errno(truncate(P(&M, "truncerr/f"), (1ll << 44) + 1), EFBIG);
	assert_int_equal(st_of(P(&M, "truncerr/f")).st_size, 4);
	int fd = open(P(&M, "truncerr/f"), O_RDONLY);
	assert_errno(ftruncate(fd, 0), EINVAL);
	close(fd);
	check_str(P(&M, "truncerr/f"), "data");
	/* Exactly the maximum is allowed. */
	assert_ok(truncate(P(&M, "truncerr/f"), 1ll << 44));
	assert_int_equal(st_of(P(&M, "truncerr/f")).st_size, 1ll << 44);
	assert_ok(truncate(P(&M, "truncerr/f"), 4));
	check_str(P(&M, "truncerr/f"), "data");
}

static void test_chmod_chown(void **state)
{
	(void)state;
	tdir("attr");
	write_str(P(&M, "attr/f"), "x");
	assert_ok(mkdir(P(&M, "attr/d"), 0700));
	static const mode_t modes[] = { 0, 0644, 04755, 02750, 01777, 07777, 0400 };
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		assert_ok(chmod(P(&M, "attr/f"), modes[i]));
		assert_int_equal(st_of(P(&M, "attr/f")).st_mode, S_IFREG | modes[i]);
		assert_ok(chmod(P(&M, "attr/d"), modes[i]));
		assert_int_equal(st_of(P(&M, "attr/d")).st_mode, S_IFDIR | modes[i]);
	}
	assert_ok(chmod(P(&M, "attr/f"), 0644));
	assert_ok(chown(P(&M, "attr/f"), 1234, 5678));
	struct stat st = st_of(P(&M, "attr/f"));
	assert_int_equal(st.st_uid, 1234);
	assert_int_equal(st.st_gid, 5678);
	assert_ok(chown(P(&M, "attr/f"), (uid_t)-1, 42));
	st = st_of(P(&M, "attr/f"));
	assert_int_equal(st.st_uid, 1234);
	assert_int_equal(st.st_gid, 42);
	assert_ok(chown(P(&M, "attr/f"), 7, (gid_t)-1));
	st = st_of(P(&M, "attr/f"));
	assert_int_equal(st.st_uid, 7);
	assert_int_equal(st.st_gid, 42);
	/* Large ids survive. */
	assert_ok(chown(P(&M, "attr/f"), 4000000000u, 3000000000u));
	st = st_of(P(&M, "attr/f"));
	assert_int_equal(st.st_uid, 4000000000u);
	assert_int_equal(st.st_gid, 3000000000u);
	/* fchmod/fchown through a descriptor. */
	int fd = open(P(&M, "attr/f"), O_RDONLY);
	assert_ok(fchmod(fd, 0600));
	assert_ok(fchown(fd, 0, 0));
	assert_ok(fstat(fd, &st));
	assert_int_equal(st.st_mode, S_IFREG | 0600);
	assert_int_equal(st.st_uid, 0);
	close(fd);
	/* lchown changes the link, not its target. */
	assert_ok(symlink("f", P(&M, "attr/l")));
	assert_ok(lchown(P(&M, "attr/l"), 99, 98));
	st = st_of(P(&M, "attr/l"));
	assert_true(S_ISLNK(st.st_mode));
	assert_int_equal(st.st_uid, 99);
	assert_int_equal(st.st_gid, 98);
	assert_int_equal(st_of(P(&M, "attr/f")).st_uid, 0);
	/* chmod through the symlink changes the target. */
	assert_ok(chmod(P(&M, "attr/l"), 0604));
	assert_int_equal(st_of(P(&M, "attr/f")).st_mode, S_IFREG | 0604);
	assert_int_equal(st_of(P(&M, "attr/l")).st_mode, S_IFLNK | 0777);
	assert_errno(chmod(P(&M, "attr/missing"), 0644), ENOENT);
}

static void test_utimens(void **state)
{
	(void)state;
	struct stat st;

	tdir("times");
	write_str(P(&M, "times/f"), "x");
	struct timespec ts[2] = { { 1234567890, 123456789 }, { 1000000000, 999999999 } };
	assert_ok(utimensat(AT_FDCWD, P(&M, "times/f"), ts, 0));
	st = st_of(P(&M, "times/f"));
	assert_int_equal(st.st_atim.tv_sec, 1234567890);
	assert_int_equal(st.st_atim.tv_nsec, 123456789);
	assert_int_equal(st.st_mtim.tv_sec, 1000000000);
	assert_int_equal(st.st_mtim.tv_nsec, 999999999);
	/* Times before 1970 and after 2038. */
	struct timespec odd[2] = { { -1000, 5 }, { 4102444800ll, 1 } };
	assert_ok(utimensat(AT_FDCWD, P(&M, "times/f"), odd, 0));
	st = st_of(P(&M, "times/f"));
	assert_int_equal(st.st_atim.tv_sec, -1000);
	assert_int_equal(st.st_atim.tv_nsec, 5);
	assert_int_equal(st.st_mtim.tv_sec, 4102444800ll);
	assert_int_equal(st.st_mtim.tv_nsec, 1);

	/* UTIME_OMIT keeps atime, UTIME_NOW sets mtime to now. */
	assert_ok(utimensat(AT_FDCWD, P(&M, "times/f"), ts, 0));
	struct timespec t0 = now_rt();
	struct timespec mix[2] = { { 0, UTIME_OMIT }, { 0, UTIME_NOW } };
	assert_ok(utimensat(AT_FDCWD, P(&M, "times/f"), mix, 0));
	struct timespec t1 = now_rt();
	st = st_of(P(&M, "times/f"));
	assert_int_equal(st.st_atim.tv_sec, 1234567890);
	assert_int_equal(st.st_atim.tv_nsec, 123456789);
	/* The kernel's coarse clock may lag ours by a tick. */
	assert_true(ts_ns(st.st_mtim) >= ts_ns(t0) - 20000000 && ts_ns(st.st_mtim) <= ts_ns(t1));
	struct timespec mix2[2] = { { 0, UTIME_NOW }, { 0, UTIME_OMIT } };
	struct timespec mt = st.st_mtim;
	assert_ok(utimensat(AT_FDCWD, P(&M, "times/f"), mix2, 0));
	st = st_of(P(&M, "times/f"));
	assert_true(ts_ns(st.st_atim) >= ts_ns(t0) - 20000000);
	assert_int_equal(ts_cmp(st.st_mtim, mt), 0);
	/* NULL: both now; ctime always moves. */
	assert_ok(utimensat(AT_FDCWD, P(&M, "times/f"), ts, 0));
	struct timespec c0 = st_of(P(&M, "times/f")).st_ctim;
	tick_past(c0);
	assert_ok(utimensat(AT_FDCWD, P(&M, "times/f"), NULL, 0));
	st = st_of(P(&M, "times/f"));
	assert_true(st.st_atim.tv_sec > 1234567890 && st.st_mtim.tv_sec > 1234567890);
	assert_true(ts_cmp(st.st_ctim, c0) > 0);
	/* On a symlink itself (AT_SYMLINK_NOFOLLOW) and on a directory. */
	assert_ok(symlink("f", P(&M, "times/l")));
	mt = st_of(P(&M, "times/f")).st_mtim;
	assert_ok(utimensat(AT_FDCWD, P(&M, "times/l"), ts, AT_SYMLINK_NOFOLLOW));
	st = st_of(P(&M, "times/l"));
	assert_int_equal(st.st_mtim.tv_sec, 1000000000);
	assert_int_equal(st.st_mtim.tv_nsec, 999999999);
	assert_int_equal(ts_cmp(st_of(P(&M, "times/f")).st_mtim, mt), 0);
	assert_ok(utimensat(AT_FDCWD, P(&M, "times"), ts, 0));
	st = st_of(P(&M, "times"));
	assert_int_equal(st.st_atim.tv_nsec, 123456789);
	assert_int_equal(st.st_mtim.tv_nsec, 999999999);
	/* futimens */
	int fd = open(P(&M, "times/f"), O_RDONLY);
	assert_ok(futimens(fd, odd));
	assert_ok(fstat(fd, &st));
	assert_int_equal(st.st_mtim.tv_sec, 4102444800ll);
	close(fd);
	struct timespec bad[2] = { { 0, 1000000000 }, { 0, 0 } };
	assert_errno(utimensat(AT_FDCWD, P(&M, "times/f"), bad, 0), EINVAL);
}

/* ctime (and where it applies mtime) must move forward after each kind of change. */
static void test_ctime_updates(void **state)
{
	(void)state;
	const char *f;
	struct stat a, b, da, db;

	tdir("ctime");
	f = P(&M, "ctime/f");
	write_str(f, "hello");
	assert_ok(mkdir(P(&M, "ctime/d"), 0755));

#define BEFORE()                                    \
	do {                                        \
		a = st_of(P(&M, "ctime/f"));        \
		da = st_of(P(&M, "ctime/d"));       \
		tick_past(a.st_ctim);               \
		tick_past(a.st_mtim);               \
		tick_past(da.st_ctim);              \
		tick_past(da.st_mtim);              \
	} while (0)
#define AFTER()                                     \
	do {                                        \
		b = st_of(P(&M, "ctime/f"));        \
		db = st_of(P(&M, "ctime/d"));       \
	} while (0)

	BEFORE();
	assert_ok(chmod(P(&M, "ctime/f"), 0600));
	AFTER();
	assert_true(ts_cmp(b.st_ctim, a.st_ctim) > 0);
	assert_int_equal(ts_cmp(b.st_mtim, a.st_mtim), 0);

	BEFORE();
	assert_ok(chown(P(&M, "ctime/f"), 5, 5));
	AFTER();
	assert_true(ts_cmp(b.st_ctim, a.st_ctim) > 0);
	assert_int_equal(ts_cmp(b.st_mtim, a.st_mtim), 0);

	BEFORE();
	int fd = open(P(&M, "ctime/f"), O_WRONLY);
	assert_int_equal(pwrite(fd, "J", 1, 0), 1);
	close(fd);
	AFTER();
	assert_true(ts_cmp(b.st_ctim, a.st_ctim) > 0);
	assert_true(ts_cmp(b.st_mtim, a.st_mtim) > 0);

	/* link and unlink change the inode's ctime and the directory's mtime and ctime. */
	BEFORE();
	assert_ok(link(P(&M, "ctime/f"), P(&M, "ctime/d/link")));
	AFTER();
	assert_true(ts_cmp(b.st_ctim, a.st_ctim) > 0);
	assert_true(ts_cmp(db.st_ctim, da.st_ctim) > 0);
	assert_true(ts_cmp(db.st_mtim, da.st_mtim) > 0);
	assert_int_equal(b.st_nlink, 2);

	BEFORE();
	assert_ok(unlink(P(&M, "ctime/d/link")));
	AFTER();
	assert_true(ts_cmp(b.st_ctim, a.st_ctim) > 0);
	assert_true(ts_cmp(db.st_mtim, da.st_mtim) > 0);
	assert_int_equal(b.st_nlink, 1);

	/* rename: the moved inode's ctime (as ext4 and xfs do) and both directories. */
	BEFORE();
	assert_ok(rename(P(&M, "ctime/f"), P(&M, "ctime/d/f")));
	b = st_of(P(&M, "ctime/d/f"));
	db = st_of(P(&M, "ctime/d"));
	assert_true(ts_cmp(b.st_ctim, a.st_ctim) > 0);
	assert_int_equal(ts_cmp(b.st_mtim, a.st_mtim), 0);
	assert_true(ts_cmp(db.st_mtim, da.st_mtim) > 0);
	assert_ok(rename(P(&M, "ctime/d/f"), P(&M, "ctime/f")));

	/* Creating in a directory changes its mtime and ctime; the new file's times are now. */
	BEFORE();
	struct timespec t0 = now_rt();
	write_str(P(&M, "ctime/d/new"), "");
	AFTER();
	assert_true(ts_cmp(db.st_mtim, da.st_mtim) > 0);
	assert_true(ts_cmp(db.st_ctim, da.st_ctim) > 0);
	struct stat n = st_of(P(&M, "ctime/d/new"));
	assert_true(ts_ns(n.st_mtim) >= ts_ns(t0) - 20000000);
	assert_true(ts_ns(n.st_ctim) >= ts_ns(t0) - 20000000);

	/* A read does not change mtime or ctime. */
	BEFORE();
	char c;
	fd = open(P(&M, "ctime/f"), O_RDONLY);
	assert_int_equal(read(fd, &c, 1), 1);
	close(fd);
	AFTER();
	assert_int_equal(ts_cmp(b.st_ctim, a.st_ctim), 0);
	assert_int_equal(ts_cmp(b.st_mtim, a.st_mtim), 0);
#undef BEFORE
#undef AFTER
}

/*
 * A size change marks mtime and ctime (POSIX truncate(); Linux file systems do it themselves,
 * since truncate(2), unlike ftruncate(2) and O_TRUNC, does not ask the file system for new times).
 */
static void test_truncate_times(void **state)
{
	(void)state;
	struct stat a, b;

	tdir("trtimes");
	write_str(P(&M, "trtimes/f"), "hello");
	int fd = open(P(&M, "trtimes/f"), O_WRONLY);
	a = st_of(P(&M, "trtimes/f"));
	tick_past(a.st_ctim);
	tick_past(a.st_mtim);
	assert_ok(ftruncate(fd, 3));
	b = st_of(P(&M, "trtimes/f"));
	assert_true(ts_cmp(b.st_ctim, a.st_ctim) > 0);
	assert_true(ts_cmp(b.st_mtim, a.st_mtim) > 0);
	close(fd);
	/* truncate(2) by path, shrinking and growing. */
	a = b;
	tick_past(a.st_ctim);
	tick_past(a.st_mtim);
	assert_ok(truncate(P(&M, "trtimes/f"), 2));
	b = st_of(P(&M, "trtimes/f"));
	assert_int_equal(b.st_size, 2);
	assert_true(ts_cmp(b.st_ctim, a.st_ctim) > 0);
	assert_true(ts_cmp(b.st_mtim, a.st_mtim) > 0);
	a = b;
	tick_past(a.st_ctim);
	tick_past(a.st_mtim);
	assert_ok(truncate(P(&M, "trtimes/f"), 10000));
	b = st_of(P(&M, "trtimes/f"));
	assert_true(ts_cmp(b.st_ctim, a.st_ctim) > 0);
	assert_true(ts_cmp(b.st_mtim, a.st_mtim) > 0);
}

/* relatime: a read after a write updates atime; a second read right after does not. */
static void test_atime_relatime(void **state)
{
	(void)state;
	char c;

	tdir("atime");
	write_str(P(&M, "atime/f"), "abc");
	struct timespec old[2] = { { 1000, 0 }, { 2000, 0 } };
	assert_ok(utimensat(AT_FDCWD, P(&M, "atime/f"), old, 0));
	int fd = open(P(&M, "atime/f"), O_RDONLY);
	assert_int_equal(read(fd, &c, 1), 1);
	close(fd);
	struct stat st = st_of(P(&M, "atime/f"));
	assert_true(st.st_atim.tv_sec > 2000);
	assert_int_equal(st.st_mtim.tv_sec, 2000);
	struct timespec at = st.st_atim;
	tick_past(at);	/* an atime update would now show */
	fd = open(P(&M, "atime/f"), O_RDONLY);
	assert_int_equal(read(fd, &c, 1), 1);
	close(fd);
	assert_int_equal(ts_cmp(st_of(P(&M, "atime/f")).st_atim, at), 0);
}

static void test_sparse(void **state)
{
	(void)state;
	char *buf = malloc(MiB);
	const off_t far = 100ll * MiB + 5;

	tdir("sparse");
	int fd = open_new(P(&M, "sparse/f"));
	uint64_t bfree0 = sfs_of(M.dir).f_bfree;
	assert_int_equal(pwrite(fd, "Z", 1, far), 1);
	struct stat st;
	assert_ok(fstat(fd, &st));
	assert_int_equal(st.st_size, far + 1);
	assert_int_equal(st.st_blocks, 8);	/* one 4 KiB block */
	assert_int_equal(bfree0 - sfs_of(M.dir).f_bfree, 1);
	/* Holes read as zeros, in chunks and across the data. */
	memset(buf, 0x77, MiB);
	assert_int_equal(pread(fd, buf, MiB, 0), MiB);
	assert_true(all_zero(buf, MiB));
	assert_int_equal(pread(fd, buf, MiB, 50 * MiB + 3), MiB);
	assert_true(all_zero(buf, MiB));
	memset(buf, 0x77, 100);
	assert_int_equal(pread(fd, buf, 100, far - 50), 51);
	assert_true(all_zero(buf, 50));
	assert_int_equal(buf[50], 'Z');
	/* A whole sequential read of the file. */
	size_t total = 0;
	ssize_t n;
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	bool z = true;
	while ((n = read(fd, buf, MiB)) > 0) {
		if (total + (size_t)n > (size_t)far)
			z &= all_zero(buf, (size_t)far - total) && buf[far - (off_t)total] == 'Z';
		else
			z &= all_zero(buf, (size_t)n);
		total += (size_t)n;
	}
	assert_true(z);
	assert_int_equal(total, far + 1);
	/* Filling a hole in the middle allocates only there. */
	assert_int_equal(pwrite(fd, "mid", 3, 30 * MiB), 3);
	assert_ok(fstat(fd, &st));
	assert_int_equal(st.st_blocks, 16);
	assert_int_equal(st.st_size, far + 1);
	close(fd);
	assert_ok(unlink(P(&M, "sparse/f")));
	assert_int_equal(wait_bfree(M.dir, bfree0), bfree0);
	free(buf);
}

static void test_seek_data_hole(void **state)
{
	(void)state;
	char blk[BS];

	tdir("seek");
	memset(blk, 1, sizeof(blk));
	int fd = open_new(P(&M, "seek/f"));
	/* Empty file: both ENXIO at 0. */
	assert_errno(lseek(fd, 0, SEEK_DATA), ENXIO);
	assert_errno(lseek(fd, 0, SEEK_HOLE), ENXIO);
	/* data [0,4K) hole [4K,1M) data [1M,1M+4K) hole [1M+4K, 2M) */
	assert_int_equal(pwrite(fd, blk, BS, 0), BS);
	assert_int_equal(pwrite(fd, blk, BS, MiB), BS);
	assert_ok(ftruncate(fd, 2 * MiB));
	assert_int_equal(lseek(fd, 0, SEEK_DATA), 0);
	assert_int_equal(lseek(fd, 100, SEEK_DATA), 100);
	assert_int_equal(lseek(fd, 0, SEEK_HOLE), BS);
	assert_int_equal(lseek(fd, 100, SEEK_HOLE), BS);
	assert_int_equal(lseek(fd, BS, SEEK_DATA), MiB);
	assert_int_equal(lseek(fd, BS + 1, SEEK_DATA), MiB);
	assert_int_equal(lseek(fd, BS, SEEK_HOLE), BS);
	assert_int_equal(lseek(fd, MiB + 10, SEEK_DATA), MiB + 10);
	assert_int_equal(lseek(fd, MiB, SEEK_HOLE), MiB + BS);
	/* No data after the last extent: ENXIO before EOF too; the hole runs to EOF. */
	assert_errno(lseek(fd, MiB + BS, SEEK_DATA), ENXIO);
	assert_int_equal(lseek(fd, MiB + BS, SEEK_HOLE), MiB + BS);
	assert_int_equal(lseek(fd, 2 * MiB - 1, SEEK_HOLE), 2 * MiB - 1);
	/* At and after EOF: ENXIO. */
	assert_errno(lseek(fd, 2 * MiB, SEEK_DATA), ENXIO);
	assert_errno(lseek(fd, 2 * MiB, SEEK_HOLE), ENXIO);
	assert_errno(lseek(fd, 3 * MiB, SEEK_DATA), ENXIO);
	assert_errno(lseek(fd, 3 * MiB, SEEK_HOLE), ENXIO);
	/* The position moves to the result. */
	assert_int_equal(lseek(fd, BS, SEEK_DATA), MiB);
	assert_int_equal(lseek(fd, 0, SEEK_CUR), MiB);
	/* Data that runs to EOF: the implicit hole at EOF. */
	assert_ok(ftruncate(fd, MiB + 100));
	assert_int_equal(lseek(fd, MiB, SEEK_HOLE), MiB + 100);
	assert_int_equal(lseek(fd, MiB + 99, SEEK_DATA), MiB + 99);
	close(fd);
}

/*
 * A badly fragmented file: thousands of extents (far more than fit in the inode), built by writing
 * every other block, then filled in, punched and truncated; the data and the space accounting stay
 * exact throughout.
 */
static void test_fragmented(void **state)
{
	(void)state;
	enum { NBLK = 3000 };
	char blk[BS];
	char *buf = malloc((size_t)NBLK * BS);
	struct stat st;

	tdir("frag");
	int fd = open_new(P(&M, "frag/f"));
	int other = open_new(P(&M, "frag/other"));
	uint64_t bfree0 = sfs_of(M.dir).f_bfree;
	/* Even blocks, interleaved with another file's writes so nothing is physically contiguous. */
	for (int b = 0; b < NBLK; b += 2) {
		pat_fill(blk, BS, (uint64_t)b * BS, 51);
		assert_int_equal(pwrite(fd, blk, BS, (off_t)b * BS), BS);
		assert_int_equal(pwrite(other, blk, BS, (off_t)b * BS), BS);
	}
	assert_ok(fstat(fd, &st));
	assert_int_equal(st.st_size, (off_t)(NBLK - 1) * BS);
	/* Data blocks plus extent blocks, and statfs agrees with both files' st_blocks. */
	assert_true(st.st_blocks >= NBLK / 2 * 8 && st.st_blocks <= (NBLK / 2 + 64) * 8);
	struct stat so;
	assert_ok(fstat(other, &so));
	assert_int_equal(bfree0 - sfs_of(M.dir).f_bfree, (uint64_t)(st.st_blocks + so.st_blocks) / 8);
	/* 1 MiB reads over alternating data and holes. */
	memset(buf, 0x55, (size_t)NBLK * BS);
	for (off_t off = 0; off < st.st_size; off += MiB) {
		ssize_t n = pread(fd, buf + off, MiB, off);
		assert_int_equal(n, MIN((off_t)MiB, st.st_size - off));
	}
	for (int b = 0; b < NBLK - 1; b++) {
		if (b % 2 == 0)
			assert_int_equal(pat_diff(buf + (size_t)b * BS, BS, (uint64_t)b * BS, 51), -1);
		else if (!all_zero(buf + (size_t)b * BS, BS))
			fail_msg("hole block %d is not zero", b);
	}
	assert_int_equal(lseek(fd, BS, SEEK_DATA), 2 * BS);
	assert_int_equal(lseek(fd, 2 * BS, SEEK_HOLE), 3 * BS);
	/* Fill the odd blocks: a dense file again. */
	for (int b = 1; b < NBLK; b += 2) {
		pat_fill(blk, BS, (uint64_t)b * BS, 51);
		assert_int_equal(pwrite(fd, blk, BS, (off_t)b * BS), BS);
	}
	assert_int_equal(pread(fd, buf, (size_t)NBLK * BS, 0), (ssize_t)NBLK * BS);
	long d = pat_diff(buf, (size_t)NBLK * BS, 0, 51);
	if (d >= 0)
		fail_msg("dense file wrong at byte %ld", d);
	assert_ok(fstat(fd, &st));
	assert_int_equal(bfree0 - sfs_of(M.dir).f_bfree, (uint64_t)(st.st_blocks + so.st_blocks) / 8);
	/* Punch every third block: splits extents everywhere. */
	for (int b = 0; b < NBLK; b += 3)
		assert_ok(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)b * BS, BS));
	assert_int_equal(pread(fd, buf, (size_t)NBLK * BS, 0), (ssize_t)NBLK * BS);
	for (int b = 0; b < NBLK; b++) {
		if (b % 3 == 0) {
			if (!all_zero(buf + (size_t)b * BS, BS))
				fail_msg("punched block %d is not zero", b);
		} else if (pat_diff(buf + (size_t)b * BS, BS, (uint64_t)b * BS, 51) >= 0) {
			fail_msg("block %d damaged by punching its neighbours", b);
		}
	}
	assert_ok(fstat(fd, &st));
	assert_int_equal(bfree0 - sfs_of(M.dir).f_bfree, (uint64_t)(st.st_blocks + so.st_blocks) / 8);
	/* Truncate into the middle, then to zero. */
	/* (Block NBLK / 2 + 1 is not a punched one.) */
	assert_ok(ftruncate(fd, (off_t)(NBLK / 2 + 1) * BS + 123));
	assert_int_equal(pread(fd, buf, BS, (off_t)(NBLK / 2 + 1) * BS), 123);
	assert_int_equal(pat_diff(buf, 123, (uint64_t)(NBLK / 2 + 1) * BS, 51), -1);
	assert_ok(fstat(fd, &st));
	assert_int_equal(bfree0 - sfs_of(M.dir).f_bfree, (uint64_t)(st.st_blocks + so.st_blocks) / 8);
	assert_ok(ftruncate(fd, 0));
	assert_ok(fstat(fd, &st));
	assert_int_equal(st.st_blocks, 0);
	close(fd);
	close(other);
	/* "other" stays fragmented for the remount at the end. */
	uint64_t live = sfs_of(M.dir).f_bfree;
	assert_int_equal(bfree0 - live, (uint64_t)so.st_blocks / 8);
	free(buf);
	/* The media agrees: fsck finds nothing, and a remount counts the same free space. */
	char out[8192];
	close_leaked(&M);
	assert_int_equal(h_umount(&M), 0);
	int rc = fsck_and_repair(&M, out, sizeof(out));
	assert_int_equal(h_mount(&M, NULL), 0);
	uint64_t after = sfs_of(M.dir).f_bfree;
	if (rc != 0)
		fail_msg("fsck.daxfs -n after the fragmented-file workload exited %d:\n%s", rc, out);
	assert_int_equal(after, live);
}

static void test_fallocate_default(void **state)
{
	(void)state;
	char *buf = malloc(4 * MiB);
	struct stat st;

	tdir("falloc");
	int fd = open_new(P(&M, "falloc/f"));
	uint64_t bfree0 = sfs_of(M.dir).f_bfree;
	assert_ok(fallocate(fd, 0, 0, MiB));
	assert_ok(fstat(fd, &st));
	assert_int_equal(st.st_size, MiB);
	assert_blocks_about(fd, MiB / BS);
	assert_int_equal(bfree0 - sfs_of(M.dir).f_bfree, (uint64_t)st.st_blocks / 8);
	memset(buf, 1, MiB);
	assert_int_equal(pread(fd, buf, MiB, 0), MiB);
	assert_true(all_zero(buf, MiB));
	assert_int_equal(lseek(fd, 0, SEEK_DATA), 0);
	assert_int_equal(lseek(fd, 0, SEEK_HOLE), MiB);
	/* Overlapping an allocated range: only the new part is allocated; size grows. */
	assert_ok(fallocate(fd, 0, MiB / 2, 2 * MiB));
	assert_ok(fstat(fd, &st));
	assert_int_equal(st.st_size, 5 * MiB / 2);
	assert_blocks_about(fd, 5 * MiB / 2 / BS);
	/* Unaligned range: whole blocks covering it. */
	assert_ok(fallocate(fd, 0, 3 * MiB + 100, 10));
	assert_ok(fstat(fd, &st));
	assert_int_equal(st.st_size, 3 * MiB + 110);
	assert_blocks_about(fd, 5 * MiB / 2 / BS + 1);
	assert_int_equal(bfree0 - sfs_of(M.dir).f_bfree, (uint64_t)st.st_blocks / 8);
	/* Written data inside a preallocated range stays; a smaller fallocate does not shrink. */
	assert_int_equal(pwrite(fd, "data", 4, 1000), 4);
	assert_ok(fallocate(fd, 0, 0, 10));
	assert_ok(fstat(fd, &st));
	assert_int_equal(st.st_size, 3 * MiB + 110);
	assert_int_equal(pread(fd, buf, 4, 1000), 4);
	assert_memory_equal(buf, "data", 4);
	/* Errors. */
	assert_errno(fallocate(fd, 0, 0, 0), EINVAL);
	assert_errno(fallocate(fd, 0, -1, 10), EINVAL);
	assert_errno(fallocate(fd, 0, 1ll << 44, 4096), EFBIG);
	close(fd);
	fd = open(P(&M, "falloc/f"), O_RDONLY);
	assert_errno(fallocate(fd, 0, 0, 10), EBADF);
	close(fd);
	assert_ok(unlink(P(&M, "falloc/f")));
	assert_int_equal(wait_bfree(M.dir, bfree0), bfree0);
	free(buf);
}

static void test_fallocate_keep_size(void **state)
{
	(void)state;
	char buf[BS];
	struct stat st;

	tdir("fkeep");
	int fd = open_new(P(&M, "fkeep/f"));
	assert_int_equal(write(fd, "abc", 3), 3);
	assert_ok(fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, MiB));
	assert_ok(fstat(fd, &st));
	assert_int_equal(st.st_size, 3);
	assert_blocks_about(fd, MiB / BS);
	assert_int_equal(pread(fd, buf, sizeof(buf), 0), 3);
	assert_memory_equal(buf, "abc", 3);
	/* Beyond EOF, then growing over it: preallocated bytes read as zero. */
	assert_ok(fallocate(fd, FALLOC_FL_KEEP_SIZE, 2 * MiB, MiB));
	assert_ok(fstat(fd, &st));
	assert_int_equal(st.st_size, 3);
	assert_blocks_about(fd, 2 * MiB / BS);
	assert_ok(ftruncate(fd, 4 * MiB));
	assert_int_equal(pread(fd, buf, sizeof(buf), 2 * MiB + 100), (ssize_t)sizeof(buf));
	assert_true(all_zero(buf, sizeof(buf)));
	assert_int_equal(pread(fd, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
	assert_memory_equal(buf, "abc", 3);
	assert_true(all_zero(buf + 3, sizeof(buf) - 3));
	/* Shrinking frees preallocated blocks beyond the new EOF too. */
	assert_ok(ftruncate(fd, 3));
	assert_ok(fstat(fd, &st));
	assert_int_equal(st.st_blocks, 8);
	close(fd);
}

/*
 * Truncating to the current size drops blocks preallocated beyond EOF, as ext4 and xfs do
 * ("ftruncate(fd, st_size)" is the usual way to give back a KEEP_SIZE preallocation).
 */
static void test_truncate_drops_prealloc(void **state)
{
	(void)state;
	struct stat st;

	tdir("fdrop");
	int fd = open_new(P(&M, "fdrop/f"));
	assert_int_equal(write(fd, "abc", 3), 3);
	uint64_t bfree = sfs_of(M.dir).f_bfree;
	assert_ok(fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, MiB));
	assert_ok(fstat(fd, &st));
	assert_int_equal(st.st_size, 3);
	assert_true(st.st_blocks > 8);
	assert_ok(ftruncate(fd, 3));
	assert_ok(fstat(fd, &st));
	assert_int_equal(st.st_size, 3);
	assert_int_equal(st.st_blocks, 8);
	assert_int_equal(sfs_of(M.dir).f_bfree, bfree);
	close(fd);
}

static void test_fallocate_punch(void **state)
{
	(void)state;
	char buf[64 * 1024], got[64 * 1024];
	struct stat st;

	tdir("punch");
	int fd = open_new(P(&M, "punch/f"));
	memset(buf, 0xab, sizeof(buf));
	assert_int_equal(write(fd, buf, sizeof(buf)), (ssize_t)sizeof(buf));
	assert_ok(fstat(fd, &st));
	assert_int_equal(st.st_blocks, 128);
	uint64_t bfree0 = sfs_of(M.dir).f_bfree;
	/* [1000, 21000): blocks 1-4 are freed, the partial ends at 1000 and 20480 are zeroed. */
	assert_ok(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 1000, 20000));
	assert_ok(fstat(fd, &st));
	assert_int_equal(st.st_size, sizeof(buf));
	assert_int_equal(st.st_blocks, 128 - 32);
	assert_int_equal(sfs_of(M.dir).f_bfree - bfree0, 4);
	memset(buf + 1000, 0, 20000);
	assert_int_equal(pread(fd, got, sizeof(got), 0), (ssize_t)sizeof(got));
	assert_memory_equal(got, buf, sizeof(buf));
	assert_int_equal(lseek(fd, 0, SEEK_HOLE), BS);
	assert_int_equal(lseek(fd, BS, SEEK_DATA), 5 * BS);
	/* Inside one block: zeroed, nothing freed. */
	assert_ok(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 40000, 10));
	memset(buf + 40000, 0, 10);
	assert_ok(fstat(fd, &st));
	assert_int_equal(st.st_blocks, 128 - 32);
	/* Past EOF: size unchanged. */
	assert_ok(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 60 * 1024, MiB));
	memset(buf + 60 * 1024, 0, 4 * 1024);
	assert_ok(fstat(fd, &st));
	assert_int_equal(st.st_size, sizeof(buf));
	assert_int_equal(st.st_blocks, 128 - 40);
	assert_int_equal(pread(fd, got, sizeof(got), 0), (ssize_t)sizeof(got));
	assert_memory_equal(got, buf, sizeof(buf));
	/* Writing into a punched hole allocates again; the rest of that block reads as zero. */
	assert_int_equal(pwrite(fd, "Q", 1, 2 * BS + 7), 1);
	buf[2 * BS + 7] = 'Q';
	assert_int_equal(pread(fd, got, sizeof(got), 0), (ssize_t)sizeof(got));
	assert_memory_equal(got, buf, sizeof(buf));
	/* Punching everything leaves a sparse file of the same size. */
	assert_ok(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, sizeof(buf)));
	assert_ok(fstat(fd, &st));
	assert_int_equal(st.st_size, sizeof(buf));
	assert_int_equal(st.st_blocks, 0);
	assert_int_equal(pread(fd, got, sizeof(got), 0), (ssize_t)sizeof(got));
	assert_true(all_zero(got, sizeof(got)));
	/* Punch without KEEP_SIZE is refused. */
	assert_errno(fallocate(fd, FALLOC_FL_PUNCH_HOLE, 0, BS), EOPNOTSUPP);
	close(fd);
}

static void test_fallocate_zero_range(void **state)
{
	(void)state;
	char buf[32 * 1024], got[48 * 1024];
	struct stat st;

	tdir("zero");
	int fd = open_new(P(&M, "zero/f"));
	memset(buf, 0xcd, sizeof(buf));
	assert_int_equal(write(fd, buf, sizeof(buf)), (ssize_t)sizeof(buf));
	assert_ok(fallocate(fd, FALLOC_FL_ZERO_RANGE, 5000, 3000));
	memset(buf + 5000, 0, 3000);
	assert_ok(fstat(fd, &st));
	assert_int_equal(st.st_size, sizeof(buf));
	assert_int_equal(st.st_blocks, sizeof(buf) / 512);
	assert_int_equal(pread(fd, got, sizeof(got), 0), (ssize_t)sizeof(buf));
	assert_memory_equal(got, buf, sizeof(buf));
	/* With KEEP_SIZE beyond EOF: allocated, size unchanged. */
	assert_ok(fallocate(fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, 30000, 10000));
	memset(buf + 30000, 0, sizeof(buf) - 30000);
	assert_ok(fstat(fd, &st));
	assert_int_equal(st.st_size, sizeof(buf));
	assert_int_equal(st.st_blocks, 40 * 1024 / 512);
	/* Without KEEP_SIZE the file grows to the end of the range. */
	assert_ok(fallocate(fd, FALLOC_FL_ZERO_RANGE, 30000, 16000));
	assert_ok(fstat(fd, &st));
	assert_int_equal(st.st_size, 46000);
	assert_int_equal(pread(fd, got, sizeof(got), 0), 46000);
	assert_memory_equal(got, buf, 30000);
	assert_true(all_zero(got + 30000, 16000));
	close(fd);
}

static void test_fallocate_unsupported(void **state)
{
	(void)state;
	tdir("funsup");
	int fd = open_new(P(&M, "funsup/f"));
	char buf[4 * BS] = { 0 };
	assert_int_equal(write(fd, buf, sizeof(buf)), (ssize_t)sizeof(buf));
	assert_errno(fallocate(fd, FALLOC_FL_COLLAPSE_RANGE, 0, BS), EOPNOTSUPP);
	assert_errno(fallocate(fd, FALLOC_FL_INSERT_RANGE, 0, BS), EOPNOTSUPP);
	assert_errno(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, 0, BS),
		     EOPNOTSUPP);
	struct stat st;
	assert_ok(fstat(fd, &st));
	assert_int_equal(st.st_size, sizeof(buf));
	close(fd);
	/* A directory cannot be opened for writing, so fallocate on it is EBADF. */
	fd = open(P(&M, "funsup"), O_RDONLY);
	assert_errno(fallocate(fd, 0, 0, BS), EBADF);
	close(fd);
}

/*
 * Run `fn` on file "f" of a fresh 256 MiB image, then unmount, fsck and remount: the file must
 * still open and hold what `check` expects, and the checker must find nothing.  A fresh image makes
 * the block layout, and so the extent maps these cases depend on, the same in every run.
 */
static void on_fresh_image(const char *name, void (*fn)(int fd), void (*check)(int fd))
{
	struct mnt m;
	char out[8192];

	h_init(&m, name);
	assert_int_equal(h_mkfs(&m, "-s 256M"), 0);
	assert_int_equal(h_mount(&m, NULL), 0);
	int fd = open(P(&m, "f"), O_RDWR | O_CREAT | O_EXCL, 0644);
	assert_true(fd >= 0);
	fn(fd);
	uint64_t bfree = sfs_of(m.dir).f_bfree;
	close(fd);
	assert_int_equal(h_umount(&m), 0);
	/* Check only: the image is this test's own, nothing after it depends on a repair. */
	int rc = h_run(out, sizeof(out), "%s -n %s 2>&1", h_fsck_bin(), m.image);
	assert_int_equal(h_mount(&m, NULL), 0);
	fd = open(P(&m, "f"), O_RDONLY);
	if (fd < 0)
		fail_msg("after remount, open: %s; fsck said (exit %d):\n%s", strerror(errno), rc, out);
	check(fd);
	close(fd);
	if (rc != 0)
		fail_msg("fsck.daxfs -n exited %d:\n%s", rc, out);
	assert_int_equal(sfs_of(m.dir).f_bfree, bfree);
	assert_int_equal(h_umount(&m), 0);
	h_destroy(&m);
}

/* Five extents fill the inode's extent slots; the truncate cuts the last one in two. */
static void five_extents_cut_last(int fd)
{
	char buf[8192];

	for (int i = 0; i < 5; i++) {
		memset(buf, 'a' + i, sizeof(buf));
		assert_int_equal(pwrite(fd, buf, sizeof(buf), (off_t)i * MiB), (ssize_t)sizeof(buf));
	}
	assert_ok(ftruncate(fd, 4 * MiB + BS));
}

static void five_extents_check(int fd)
{
	char buf[8192];
	struct stat st;

	assert_ok(fstat(fd, &st));
	assert_int_equal(st.st_size, 4 * MiB + BS);
	assert_int_equal(st.st_blocks, 9 * 8);
	for (int i = 0; i < 5; i++) {
		size_t n = i < 4 ? sizeof(buf) : BS;
		assert_int_equal(pread(fd, buf, n, (off_t)i * MiB), (ssize_t)n);
		for (size_t k = 0; k < n; k++)
			if (buf[k] != 'a' + i)
				fail_msg("extent %d byte %zu is %d", i, k, buf[k]);
	}
}

static void test_truncate_full_inline_map(void **state)
{
	(void)state;
	on_fresh_image("cut5", five_extents_cut_last, five_extents_check);
}

/* A short sequence (found by shrinking a random workload) that leaves blocks marked in use. */
static void prealloc_write_truncate(int fd)
{
	char *buf = malloc(65536);

	memset(buf, 'c', 65536);
	assert_ok(fallocate(fd, 0, 1767959, 56186));
	assert_int_equal(pwrite(fd, buf, 50069, 2110806), 50069);
	assert_ok(fallocate(fd, FALLOC_FL_KEEP_SIZE, 1973245, 27925));
	assert_int_equal(pwrite(fd, buf, 59785, 1497642), 59785);
	assert_ok(ftruncate(fd, 82283));
	struct stat st;
	assert_ok(fstat(fd, &st));
	assert_int_equal(st.st_blocks, 0);
	free(buf);
}

static void prealloc_check(int fd)
{
	struct stat st;

	assert_ok(fstat(fd, &st));
	assert_int_equal(st.st_size, 82283);
	assert_int_equal(st.st_blocks, 0);
}

static void test_prealloc_write_truncate(void **state)
{
	(void)state;
	on_fresh_image("pwt", prealloc_write_truncate, prealloc_check);
}

/* ---- concurrency ---- */

#define NAPPENDERS 4
#define NRECORDS 300
#define RECLEN 64

/* O_APPEND writes from several processes: each record lands whole, none is lost or overwritten. */
static void test_concurrent_append(void **state)
{
	(void)state;
	pid_t pids[NAPPENDERS];
	char path[PATH_MAX];

	tdir("capp");
	snprintf(path, sizeof(path), "%s", P(&M, "capp/log"));
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
	assert_true(fd >= 0);
	close(fd);
	for (int p = 0; p < NAPPENDERS; p++) {
		pids[p] = fork();
		if (pids[p] == 0) {
			int afd = open(path, O_WRONLY | O_APPEND);
			char rec[RECLEN + 1];

			for (int i = 0; i < NRECORDS; i++) {
				snprintf(rec, sizeof(rec), "P%d-%05d-%0*d\n", p, i, RECLEN - 10, 0);
				if (write(afd, rec, RECLEN) != RECLEN)
					_exit(1);
			}
			_exit(0);
		}
	}
	for (int p = 0; p < NAPPENDERS; p++) {
		int st;
		assert_int_equal(waitpid(pids[p], &st, 0), pids[p]);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	size_t total = (size_t)NAPPENDERS * NRECORDS * RECLEN;
	char *buf = malloc(total + 1);
	fd = open(path, O_RDONLY);
	assert_int_equal(read(fd, buf, total + 1), (ssize_t)total);
	close(fd);
	int next[NAPPENDERS] = { 0 };
	for (size_t off = 0; off < total; off += RECLEN) {
		int p, i;
		if (sscanf(buf + off, "P%d-%d-", &p, &i) != 2 || p < 0 || p >= NAPPENDERS || buf[off + RECLEN - 1] != '\n')
			fail_msg("torn record at %zu: %.64s", off, buf + off);
		if (i != next[p])
			fail_msg("writer %d: record %d where %d was due", p, i, next[p]);
		next[p]++;
	}
	free(buf);
}

struct striper {
	int fd;
	int id;
	int nthreads;
	size_t len;
};

static void *stripe_writer(void *arg)
{
	struct striper *s = arg;
	char blk[4096];

	for (size_t off = (size_t)s->id * sizeof(blk); off < s->len; off += (size_t)s->nthreads * sizeof(blk)) {
		pat_fill(blk, sizeof(blk), off, 41);
		if (pwrite(s->fd, blk, sizeof(blk), (off_t)off) != (ssize_t)sizeof(blk))
			return (void *)1;
	}
	return NULL;
}

/* Threads writing interleaved blocks of one file (allocation races): every block ends up right. */
static void test_concurrent_pwrite(void **state)
{
	(void)state;
	enum { NT = 4 };
	const size_t len = 8u << 20;
	pthread_t t[NT];
	struct striper s[NT];

	tdir("cpw");
	int fd = open_new(P(&M, "cpw/f"));
	for (int i = 0; i < NT; i++) {
		s[i] = (struct striper){ fd, i, NT, len };
		assert_int_equal(pthread_create(&t[i], NULL, stripe_writer, &s[i]), 0);
	}
	for (int i = 0; i < NT; i++) {
		void *r;
		pthread_join(t[i], &r);
		assert_null(r);
	}
	struct stat st;
	assert_ok(fstat(fd, &st));
	assert_int_equal(st.st_size, len);
	assert_true((uint64_t)st.st_blocks * 512 >= len && (uint64_t)st.st_blocks * 512 <= len + 64 * 4096);
	char *buf = malloc(len);
	assert_int_equal(pread(fd, buf, len, 0), (ssize_t)len);
	long d = pat_diff(buf, len, 0, 41);
	if (d >= 0)
		fail_msg("interleaved writes: byte %ld wrong", d);
	close(fd);
	free(buf);
}

struct chaos {
	int fd;
	unsigned seed;
	int err;	/* first unexpected errno */
	int op;
};

/* Random writes, truncates, punches and preallocations on one shared file. */
static void *chaos_thread(void *arg)
{
	struct chaos *c = arg;
	char buf[64 * 1024];
	struct timespec end = now_rt();

	end.tv_sec += 2;
	memset(buf, 'c', sizeof(buf));
	while (ts_cmp(now_rt(), end) < 0 && !c->err) {
		int op = (int)(rand_r(&c->seed) % 5);
		off_t off = (off_t)(rand_r(&c->seed) % (4096 * 1024));
		size_t len = 1 + rand_r(&c->seed) % sizeof(buf);
		int r = 0;

		switch (op) {
		case 0: case 1: r = pwrite(c->fd, buf, len, off) == (ssize_t)len ? 0 : -1; break;
		case 2: r = ftruncate(c->fd, off); break;
		case 3: r = fallocate(c->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, (off_t)len); break;
		case 4: r = fallocate(c->fd, rand_r(&c->seed) % 2 ? FALLOC_FL_KEEP_SIZE : 0, off, (off_t)len); break;
		}
		if (r < 0) {
			c->err = errno;
			c->op = op;
		}
	}
	return NULL;
}

/*
 * Threads racing writes, truncates, hole punches and fallocate on one file: no errors, and the
 * result is a consistent file (checked here by reading it and by statfs, and by fsck at the end).
 */
static void test_data_stress(void **state)
{
	(void)state;
	enum { NT = 4 };
	pthread_t t[NT];
	struct chaos c[NT];

	tdir("chaos");
	write_str(P(&M, "chaos/keep"), "");
	uint64_t bfree0 = sfs_of(M.dir).f_bfree;
	int fd = open_new(P(&M, "chaos/f"));
	for (int i = 0; i < NT; i++) {
		c[i] = (struct chaos){ .fd = fd, .seed = 77u + (unsigned)i };
		assert_int_equal(pthread_create(&t[i], NULL, chaos_thread, &c[i]), 0);
	}
	for (int i = 0; i < NT; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < NT; i++)
		if (c[i].err)
			fail_msg("thread %d: op %d failed: %s", i, c[i].op, strerror(c[i].err));
	/* Every byte is either written data or zero; the block count matches statfs. */
	struct stat st;
	assert_ok(fstat(fd, &st));
	char *buf = malloc((size_t)st.st_size + 1);
	assert_int_equal(pread(fd, buf, (size_t)st.st_size + 1, 0), st.st_size);
	for (off_t i = 0; i < st.st_size; i++)
		if (buf[i] != 0 && buf[i] != 'c')
			fail_msg("byte %ld is %d", (long)i, buf[i]);
	assert_int_equal(bfree0 - sfs_of(M.dir).f_bfree, (uint64_t)st.st_blocks / 8);
	free(buf);
	close(fd);
	assert_ok(unlink(P(&M, "chaos/f")));
	assert_int_equal(wait_bfree(M.dir, bfree0), bfree0);
}

static void test_fsync(void **state)
{
	(void)state;
	tdir("sync");
	int fd = open_new(P(&M, "sync/f"));
	assert_int_equal(write(fd, "abc", 3), 3);
	assert_ok(fsync(fd));
	assert_ok(fdatasync(fd));
	assert_ok(syncfs(fd));
	assert_ok(sync_file_range(fd, 0, 3, SYNC_FILE_RANGE_WRITE));
	close(fd);
	fd = open(P(&M, "sync/f"), O_RDONLY);
	assert_ok(fsync(fd));	/* a read-only descriptor may be fsync'ed */
	close(fd);
	int dfd = open(P(&M, "sync"), O_RDONLY | O_DIRECTORY);
	assert_true(dfd >= 0);
	assert_ok(fsync(dfd));
	assert_ok(fdatasync(dfd));
	close(dfd);
	dfd = open(M.dir, O_RDONLY | O_DIRECTORY);
	assert_ok(fsync(dfd));
	close(dfd);
	sync();
}

/* Last: a clean unmount, and a remount that sees what the tests left. */
static void test_remount(void **state)
{
	(void)state;
	char buf[150];

	/* An overwrite in place: only lazy timestamps change, which must be written at unmount. */
	tick_past(st_of(P(&M, "rw/f")).st_mtim);
	int wfd = open(P(&M, "rw/f"), O_WRONLY);
	assert_int_equal(pwrite(wfd, "\x01", 1, 0), 1);
	close(wfd);
	struct timespec rw_mtime = st_of(P(&M, "rw/f")).st_mtim;
	assert_int_equal(h_umount(&M), 0);
	fsck_clean(&M);
	assert_int_equal(h_mount(&M, NULL), 0);
	check_str(P(&M, "append/f"), "abcdefXYZghi");
	for (int i = 0; i < 50; i++)
		memcpy(buf + i * 3, "aab", 3);
	check_file(P(&M, "append/g"), buf, sizeof(buf));
	check_str(P(&M, "truncerr/f"), "data");
	struct stat st = st_of(P(&M, "times/l"));
	assert_int_equal(st.st_mtim.tv_sec, 1000000000);
	assert_int_equal(st.st_mtim.tv_nsec, 999999999);
	st = st_of(P(&M, "attr/f"));
	assert_int_equal(st.st_mode, S_IFREG | 0604);
	st = st_of(P(&M, "attr/l"));
	assert_int_equal(st.st_uid, 99);
	st = st_of(P(&M, "fkeep/f"));
	assert_int_equal(st.st_size, 3);
	assert_int_equal(st.st_blocks, 8);
	st = st_of(P(&M, "punch/f"));
	assert_int_equal(st.st_size, 64 * 1024);
	assert_int_equal(st.st_blocks, 0);
	assert_int_equal(st_of(P(&M, "zero/f")).st_size, 46000);
	assert_errno(access(P(&M, "large/f"), F_OK), ENOENT);
	/* The fragmented file, read back from its extent blocks. */
	char *frag = malloc(3000 * BS);
	int fd = open(P(&M, "frag/other"), O_RDONLY);
	assert_int_equal(read(fd, frag, 3000 * BS), 2999 * BS);
	close(fd);
	for (int b = 0; b < 2999; b++)
		if (b % 2 ? !all_zero(frag + (size_t)b * BS, BS) : pat_diff(frag + (size_t)b * BS, BS, (uint64_t)b * BS, 51) >= 0)
			fail_msg("fragmented file block %d wrong after remount", b);
	free(frag);
	/* Timestamps of an in-place overwrite (no size change) survived the unmount. */
	st = st_of(P(&M, "rw/f"));
	assert_int_equal(ts_cmp(st.st_mtim, rw_mtime), 0);
	assert_int_equal(h_umount(&M), 0);
}

static int run(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_create_excl, settled),
		cmocka_unit_test_setup(test_open_errors, settled),
		cmocka_unit_test_setup(test_o_trunc, settled),
		cmocka_unit_test_setup(test_o_append, settled),
		cmocka_unit_test_setup(test_rw_offsets, settled),
		cmocka_unit_test_setup(test_readv_writev, settled),
		cmocka_unit_test_setup(test_large_file, settled),
		cmocka_unit_test_setup(test_truncate, settled),
		cmocka_unit_test_setup(test_truncate_errors, settled),
		cmocka_unit_test_setup(test_chmod_chown, settled),
		cmocka_unit_test_setup(test_utimens, settled),
		cmocka_unit_test_setup(test_ctime_updates, settled),
		cmocka_unit_test_setup(test_truncate_times, settled),
		cmocka_unit_test_setup(test_atime_relatime, settled),
		cmocka_unit_test_setup(test_sparse, settled),
		cmocka_unit_test_setup(test_seek_data_hole, settled),
		cmocka_unit_test_setup(test_fragmented, settled),
		cmocka_unit_test_setup(test_fallocate_default, settled),
		cmocka_unit_test_setup(test_fallocate_keep_size, settled),
		cmocka_unit_test_setup(test_truncate_drops_prealloc, settled),
		cmocka_unit_test_setup(test_fallocate_punch, settled),
		cmocka_unit_test_setup(test_fallocate_zero_range, settled),
		cmocka_unit_test_setup(test_fallocate_unsupported, settled),
		cmocka_unit_test_setup(test_truncate_full_inline_map, settled),
		cmocka_unit_test_setup(test_prealloc_write_truncate, settled),
		cmocka_unit_test_setup(test_concurrent_append, settled),
		cmocka_unit_test_setup(test_concurrent_pwrite, settled),
		cmocka_unit_test_setup(test_data_stress, settled),
		cmocka_unit_test_setup(test_fsync, settled),
		cmocka_unit_test_setup(test_remount, settled),
	};
	return cmocka_run_group_tests_name("files", tests, setup, teardown);
}

int main(void)
{
	return h_main(run);
}
