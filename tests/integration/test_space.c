/* SPDX-License-Identifier: MIT */
/*
 * Space accounting and running out of it: statfs block and inode counts, ENOSPC for data, metadata
 * and inodes, recovery after deleting, and a clean unmount of a full file system.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "itest.h"

#define MiB (1u << 20)
#define BS 4096
#define FUSE_SUPER_MAGIC 0x65735546

static struct mnt M;	/* 64 MiB, 2048 inodes: statfs checks */

static int setup(void **state)
{
	(void)state;
	return h_group_up(&M, "space", "-s 64M -N 2048", NULL);
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

static void test_statfs_counts(void **state)
{
	(void)state;
	struct statfs sf;
	struct statvfs sv = sfs_of(M.dir);

	assert_ok(statfs(M.dir, &sf));
	assert_int_equal(sf.f_type, FUSE_SUPER_MAGIC);
	assert_int_equal(sv.f_bsize, BS);
	assert_int_equal(sv.f_frsize, BS);
	assert_int_equal(sv.f_namemax, 255);
	/* Data blocks: most of the 64 MiB, less the inode table (2048 * 256 = 512 KiB) and journal. */
	assert_true(sv.f_blocks <= 64 * MiB / BS);
	assert_true(sv.f_blocks >= 64 * MiB / BS - 512);
	assert_true(sv.f_bfree <= sv.f_blocks && sv.f_bavail <= sv.f_bfree);
	assert_true(sv.f_bfree >= sv.f_blocks - 16);	/* a fresh file system is nearly empty */
	assert_int_equal(sv.f_files, 2048);
	assert_true(sv.f_ffree <= sv.f_files - 1 && sv.f_ffree >= sv.f_files - 4);	/* the root at least */
	assert_int_equal(sv.f_favail, sv.f_ffree);
	assert_int_equal(sv.f_flag & ST_RDONLY, 0);
	/* The same from any path in the mount, and from an open file. */
	write_str(P(&M, "anyfile"), "");
	struct statvfs sv2 = sfs_of(P(&M, "anyfile"));
	assert_int_equal(sv2.f_blocks, sv.f_blocks);
	assert_int_equal(sv2.f_files, sv.f_files);
	assert_int_equal(sv2.f_fsid, sv.f_fsid);
	int fd = open(P(&M, "anyfile"), O_RDONLY);
	struct statvfs sv3;
	assert_ok(fstatvfs(fd, &sv3));
	assert_int_equal(sv3.f_blocks, sv.f_blocks);
	close(fd);
	assert_ok(unlink(P(&M, "anyfile")));
}

/* f_ffree: one inode per created object of any type, back on removal. */
static void test_statfs_inodes(void **state)
{
	(void)state;
	assert_ok(mkdir(P(&M, "ino"), 0755));
	uint64_t f0 = sfs_of(M.dir).f_ffree;
	write_str(P(&M, "ino/file"), "");
	assert_int_equal(sfs_of(M.dir).f_ffree, f0 - 1);
	assert_ok(mkdir(P(&M, "ino/dir"), 0755));
	assert_int_equal(sfs_of(M.dir).f_ffree, f0 - 2);
	assert_ok(symlink("x", P(&M, "ino/sym")));
	assert_int_equal(sfs_of(M.dir).f_ffree, f0 - 3);
	assert_ok(mkfifo(P(&M, "ino/fifo"), 0644));
	assert_int_equal(sfs_of(M.dir).f_ffree, f0 - 4);
	/* A hard link is no new inode. */
	assert_ok(link(P(&M, "ino/file"), P(&M, "ino/link")));
	assert_int_equal(sfs_of(M.dir).f_ffree, f0 - 4);
	for (int i = 0; i < 20; i++)
		write_str(P(&M, "ino/n%d", i), "");
	assert_int_equal(sfs_of(M.dir).f_ffree, f0 - 24);
	for (int i = 0; i < 20; i++)
		assert_ok(unlink(P(&M, "ino/n%d", i)));
	assert_ok(unlink(P(&M, "ino/file")));
	/* Every removed inode is back, and "file", still linked as "link", is not. */
	settle(&M);
	assert_int_equal(sfs_of(M.dir).f_ffree, f0 - 4);
	assert_ok(unlink(P(&M, "ino/link")));
	assert_ok(rmdir(P(&M, "ino/dir")));
	assert_ok(unlink(P(&M, "ino/sym")));
	assert_ok(unlink(P(&M, "ino/fifo")));
	settle(&M);
	assert_int_equal(sfs_of(M.dir).f_ffree, f0);
}

/* f_bfree: exactly the blocks a file owns (st_blocks), back after unlink. */
static void test_statfs_blocks(void **state)
{
	(void)state;
	char *buf = malloc(MiB);

	assert_ok(mkdir(P(&M, "blk"), 0755));
	write_str(P(&M, "blk/placeholder"), "");	/* the directory's first block */
	int fd = open(P(&M, "blk/f"), O_RDWR | O_CREAT | O_EXCL, 0644);
	assert_true(fd >= 0);
	struct statvfs s0 = sfs_of(M.dir);
	pat_fill(buf, MiB, 0, 5);
	assert_int_equal(write(fd, buf, MiB), MiB);
	struct stat st;
	assert_ok(fstat(fd, &st));
	assert_int_equal(st.st_blocks, MiB / 512);
	assert_int_equal(s0.f_bfree - sfs_of(M.dir).f_bfree, MiB / BS);
	/* One more byte costs one more block; rewriting costs nothing. */
	assert_int_equal(write(fd, "x", 1), 1);
	assert_int_equal(s0.f_bfree - sfs_of(M.dir).f_bfree, MiB / BS + 1);
	assert_int_equal(pwrite(fd, buf, MiB, 0), MiB);
	assert_int_equal(s0.f_bfree - sfs_of(M.dir).f_bfree, MiB / BS + 1);
	/* Several small files: one block each. */
	for (int i = 0; i < 10; i++)
		write_str(P(&M, "blk/s%d", i), "small");
	assert_int_equal(s0.f_bfree - sfs_of(M.dir).f_bfree, MiB / BS + 11);
	close(fd);
	assert_ok(unlink(P(&M, "blk/f")));
	for (int i = 0; i < 10; i++)
		assert_ok(unlink(P(&M, "blk/s%d", i)));
	settle(&M);
	assert_int_equal(sfs_of(M.dir).f_bfree, s0.f_bfree);
	free(buf);
}

/*
 * Fill a small file system with data until ENOSPC: everything written is intact, the file system
 * stays usable, deleting gives the space back, and the daemon unmounts cleanly.
 */
static void test_enospc_data(void **state)
{
	(void)state;
	struct mnt m;
	char *buf = malloc(MiB);

	h_init(&m, "full");
	assert_int_equal(h_mkfs(&m, "-s 32M"), 0);
	assert_int_equal(h_mount(&m, NULL), 0);
	write_str(P(&m, "small"), "survivor");
	assert_ok(setxattr(P(&m, "small"), "user.a", "1", 1, 0));
	assert_ok(mkdir(P(&m, "dir"), 0755));
	write_str(P(&m, "dir/keep"), "");
	struct statvfs s0 = sfs_of(m.dir);

	int fd = open(P(&m, "big"), O_WRONLY | O_CREAT | O_EXCL, 0644);
	assert_true(fd >= 0);
	uint64_t written = 0;
	int err = 0;
	for (int i = 0; i < 64; i++) {
		pat_fill(buf, MiB, written, 7);
		ssize_t n = write(fd, buf, MiB);
		if (n < 0) {
			err = errno;
			break;
		}
		written += (uint64_t)n;
	}
	assert_int_equal(err, ENOSPC);
	assert_true(written > 20 * MiB && written < 32 * MiB);
	/* Nothing allocatable is left; f_bfree may keep a reserve. */
	struct statvfs s1 = sfs_of(m.dir);
	assert_true(s1.f_bavail < MiB / BS);
	struct stat st;
	assert_ok(fstat(fd, &st));
	assert_int_equal(st.st_size, written);
	/* A further write fails the same way and changes nothing. */
	assert_errno(write(fd, "x", 1), ENOSPC);
	assert_errno(pwrite(fd, "x", 1, 100 * MiB), ENOSPC);
	assert_ok(fstat(fd, &st));
	assert_int_equal(st.st_size, written);
	/* Preallocation that cannot be satisfied allocates nothing. */
	assert_errno(fallocate(fd, 0, (off_t)written, 8 * MiB), ENOSPC);
	assert_ok(fstat(fd, &st));
	assert_int_equal(st.st_size, written);
	assert_int_equal(sfs_of(m.dir).f_bfree, s1.f_bfree);
	close(fd);

	/* Still usable: reads, metadata that needs no block, failure without leaks for what does. */
	check_str(P(&m, "small"), "survivor");
	fd = open(P(&m, "big"), O_RDONLY);
	uint64_t off = 0;
	for (;;) {
		ssize_t n = read(fd, buf, MiB);
		assert_true(n >= 0);
		if (n == 0)
			break;
		long d = pat_diff(buf, (size_t)n, off, 7);
		if (d >= 0)
			fail_msg("data differs at %lu", (unsigned long)(off + (uint64_t)d));
		off += (uint64_t)n;
	}
	assert_int_equal(off, written);
	close(fd);
	assert_ok(chmod(P(&m, "small"), 0600));
	assert_ok(rename(P(&m, "small"), P(&m, "small2")));
	assert_ok(setxattr(P(&m, "small2"), "user.a", "2", 1, 0));	/* its block exists */
	uint64_t ffree = sfs_of(m.dir).f_ffree, bfree = sfs_of(m.dir).f_bfree;
	/* Each of these needs a new block: ENOSPC, and no inode or block leaks. */
	write_str(P(&m, "dir/empty"), "");
	assert_errno(setxattr(P(&m, "dir/empty"), "user.x", "1", 1, 0), ENOSPC);
	fd = open(P(&m, "dir/empty"), O_WRONLY);
	assert_errno(write(fd, "x", 1), ENOSPC);
	close(fd);
	assert_int_equal(st_of(P(&m, "dir/empty")).st_size, 0);
	assert_ok(unlink(P(&m, "dir/empty")));
	char target[2000];
	memset(target, 't', sizeof(target) - 1);
	target[sizeof(target) - 1] = 0;
	assert_errno(symlink(target, P(&m, "dir/longlink")), ENOSPC);
	assert_ok(mkdir(P(&m, "newdir"), 0755));
	assert_errno(open(P(&m, "newdir/f"), O_WRONLY | O_CREAT, 0644), ENOSPC);
	assert_ok(rmdir(P(&m, "newdir")));
	settle(&m);
	assert_int_equal(sfs_of(m.dir).f_ffree, ffree);
	assert_int_equal(sfs_of(m.dir).f_bfree, bfree);
	assert_errno(access(P(&m, "dir/longlink"), F_OK), ENOENT);

	/* Deleting gives it all back, and the space can be used again. */
	assert_ok(unlink(P(&m, "big")));
	settle(&m);
	assert_int_equal(sfs_of(m.dir).f_bfree, s0.f_bfree);
	fd = open(P(&m, "again"), O_WRONLY | O_CREAT | O_EXCL, 0644);
	for (int i = 0; i < 16; i++) {
		pat_fill(buf, MiB, (uint64_t)i * MiB, 8);
		assert_int_equal(write(fd, buf, MiB), MiB);
	}
	close(fd);

	/* Fill it up again and unmount while full. */
	fd = open(P(&m, "filler"), O_WRONLY | O_CREAT | O_EXCL, 0644);
	while (write(fd, buf, MiB) > 0)
		;
	assert_int_equal(errno, ENOSPC);
	close(fd);
	assert_int_equal(h_umount(&m), 0);
	assert_int_equal(h_mount(&m, NULL), 0);
	check_str(P(&m, "small2"), "survivor");
	char v[4];
	assert_int_equal(getxattr(P(&m, "small2"), "user.a", v, sizeof(v)), 1);
	assert_int_equal(v[0], '2');
	fd = open(P(&m, "again"), O_RDONLY);
	for (int i = 0; i < 16; i++) {
		assert_int_equal(read(fd, buf, MiB), MiB);
		assert_int_equal(pat_diff(buf, MiB, (uint64_t)i * MiB, 8), -1);
	}
	close(fd);
	assert_true(sfs_of(m.dir).f_bavail < MiB / BS);
	assert_ok(unlink(P(&m, "filler")));
	assert_true(sfs_of(m.dir).f_bavail > 4 * MiB / BS);
	assert_int_equal(h_umount(&m), 0);
	fsck_clean(&m);
	h_destroy(&m);
	free(buf);
}

/* A short write at the edge: what fits is written, the rest fails with ENOSPC next time. */
static void test_enospc_short_write(void **state)
{
	(void)state;
	struct mnt m;
	char *buf = malloc(8 * MiB);

	h_init(&m, "short");
	assert_int_equal(h_mkfs(&m, "-s 32M"), 0);
	assert_int_equal(h_mount(&m, NULL), 0);
	/* Use all but about 1 MiB with preallocation, then write 8 MiB at once. */
	uint64_t avail = sfs_of(m.dir).f_bavail;
	int pfd = open(P(&m, "prealloc"), O_WRONLY | O_CREAT | O_EXCL, 0644);
	assert_ok(fallocate(pfd, 0, 0, (off_t)(avail - 256 - 2) * BS));
	close(pfd);
	avail = sfs_of(m.dir).f_bavail;
	assert_true(avail > 100 && avail < 300);
	int fd = open(P(&m, "f"), O_RDWR | O_CREAT | O_EXCL, 0644);
	pat_fill(buf, 8 * MiB, 0, 9);
	ssize_t n = write(fd, buf, 8 * MiB);
	assert_true(n > 0 && n < (ssize_t)(8 * MiB));
	assert_errno(write(fd, buf + n, 8 * MiB - (size_t)n), ENOSPC);
	struct stat st;
	assert_ok(fstat(fd, &st));
	assert_int_equal(st.st_size, n);
	char *got = malloc((size_t)n);
	assert_int_equal(pread(fd, got, (size_t)n, 0), n);
	assert_memory_equal(got, buf, (size_t)n);
	close(fd);
	assert_int_equal(h_umount(&m), 0);
	assert_int_equal(h_mount(&m, NULL), 0);
	assert_int_equal(st_of(P(&m, "f")).st_size, n);
	check_file(P(&m, "f"), buf, (size_t)n);
	assert_int_equal(h_umount(&m), 0);
	fsck_clean(&m);
	h_destroy(&m);
	free(got);
	free(buf);
}

/* Out of inodes: ENOSPC from every kind of create; one removal makes room for one. */
static void test_enospc_inodes(void **state)
{
	(void)state;
	struct mnt m;

	h_init(&m, "inodes");
	assert_int_equal(h_mkfs(&m, "-s 16M -N 64"), 0);
	assert_int_equal(h_mount(&m, NULL), 0);
	assert_int_equal(sfs_of(m.dir).f_files, 64);
	int n = 0;
	for (;; n++) {
		int fd = open(P(&m, "f%d", n), O_WRONLY | O_CREAT | O_EXCL, 0644);
		if (fd < 0) {
			assert_int_equal(errno, ENOSPC);
			break;
		}
		close(fd);
		assert_true(n < 64);
	}
	assert_true(n >= 60);
	assert_int_equal(sfs_of(m.dir).f_ffree, 0);
	assert_errno(mkdir(P(&m, "d"), 0755), ENOSPC);
	assert_errno(symlink("x", P(&m, "s")), ENOSPC);
	assert_errno(mkfifo(P(&m, "p"), 0644), ENOSPC);
	/* Links need no inode. */
	assert_ok(link(P(&m, "f0"), P(&m, "f0-link")));
	assert_ok(unlink(P(&m, "f1")));
	assert_int_equal(wait_ffree(m.dir, 1), 1);
	assert_ok(mkdir(P(&m, "d"), 0755));
	assert_errno(mkdir(P(&m, "d2"), 0755), ENOSPC);
	assert_int_equal(h_umount(&m), 0);
	assert_int_equal(h_mount(&m, NULL), 0);
	assert_int_equal(sfs_of(m.dir).f_ffree, 0);
	assert_true(S_ISDIR(st_of(P(&m, "d")).st_mode));
	assert_int_equal(st_of(P(&m, "f0")).st_nlink, 2);
	assert_int_equal(h_umount(&m), 0);
	fsck_clean(&m);
	h_destroy(&m);
}

/*
 * Unlinked-but-open files: truncating one frees space at once; if the daemon is killed while one
 * is open, the next mount frees it (the orphan list) and fsck finds nothing amiss.
 */
static void test_orphans(void **state)
{
	(void)state;
	struct mnt m;
	char *buf = malloc(MiB);

	h_init(&m, "orphan");
	assert_int_equal(h_mkfs(&m, "-s 32M"), 0);
	assert_int_equal(h_mount(&m, NULL), 0);
	write_str(P(&m, "placeholder"), "");
	struct statvfs s0 = sfs_of(m.dir);
	pat_fill(buf, MiB, 0, 13);
	int fd = open(P(&m, "a"), O_RDWR | O_CREAT | O_EXCL, 0644);
	int fd2 = open(P(&m, "b"), O_RDWR | O_CREAT | O_EXCL, 0644);
	assert_int_equal(write(fd, buf, MiB), MiB);
	assert_int_equal(write(fd2, buf, MiB), MiB);
	assert_int_equal(s0.f_bfree - sfs_of(m.dir).f_bfree, 2 * MiB / BS);
	assert_ok(unlink(P(&m, "a")));
	assert_ok(unlink(P(&m, "b")));
	/* Attributes and size of an unlinked file can still change; shrinking frees blocks now. */
	assert_ok(fchmod(fd, 0600));
	assert_ok(ftruncate(fd, MiB / 2));
	struct stat st;
	assert_ok(fstat(fd, &st));
	assert_int_equal(st.st_mode, S_IFREG | 0600);
	assert_int_equal(st.st_blocks, MiB / 2 / 512);
	assert_int_equal(s0.f_bfree - sfs_of(m.dir).f_bfree, 3 * MiB / 2 / BS);
	assert_ok(fsync(fd));
	/* One is closed normally, the other is still open when the daemon dies. */
	close(fd2);
	assert_int_equal(wait_bfree(m.dir, s0.f_bfree - MiB / 2 / BS), s0.f_bfree - MiB / 2 / BS);
	h_crash(&m);
	close(fd);
	char out[8192];
	int rc = h_run(out, sizeof(out), "%s -n %s 2>&1", h_fsck_bin(), m.image);
	/* Before recovery the image holds one orphan: fsck may report it but must not call it damage. */
	assert_true(rc == 0 || rc == 1 || rc == 4);
	assert_int_equal(h_mount(&m, NULL), 0);
	struct statvfs s1 = sfs_of(m.dir);
	assert_int_equal(s1.f_bfree, s0.f_bfree);
	assert_int_equal(s1.f_ffree, s0.f_ffree);
	assert_int_equal(h_umount(&m), 0);
	fsck_clean(&m);
	h_destroy(&m);
	free(buf);
}

static void test_remount(void **state)
{
	(void)state;
	close_leaked(&M);
	struct statvfs s0 = sfs_of(M.dir);
	assert_int_equal(h_umount(&M), 0);
	fsck_clean(&M);
	assert_int_equal(h_mount(&M, NULL), 0);
	struct statvfs s1 = sfs_of(M.dir);
	/* The counts are rebuilt from the media exactly as they were. */
	assert_int_equal(s1.f_bfree, s0.f_bfree);
	assert_int_equal(s1.f_ffree, s0.f_ffree);
	assert_int_equal(s1.f_blocks, s0.f_blocks);
	assert_int_equal(h_umount(&M), 0);
}

static int run(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_statfs_counts, settled),
		cmocka_unit_test_setup(test_statfs_inodes, settled),
		cmocka_unit_test_setup(test_statfs_blocks, settled),
		cmocka_unit_test(test_enospc_data),
		cmocka_unit_test(test_enospc_short_write),
		cmocka_unit_test(test_enospc_inodes),
		cmocka_unit_test(test_orphans),
		cmocka_unit_test_setup(test_remount, settled),
	};
	return cmocka_run_group_tests_name("space", tests, setup, teardown);
}

int main(void)
{
	return h_main(run);
}
