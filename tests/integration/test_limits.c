/* SPDX-License-Identifier: MIT */
/*
 * Limits: name length, maximum file size, a directory of 100 000 entries, many hard links, deep
 * nesting.  The image has enough inodes for the big directory (the default is one per 16 KiB).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "itest.h"

#define MAX_FILE (1ll << 44)	/* DAXFS_MAX_FILE_SIZE */
#define NBIG 100000
#define NLINKS 1000

static struct mnt M;

static int setup(void **state)
{
	(void)state;
	return h_group_up(&M, "limits", "-s 512M -N 120000", NULL);
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

static char *name_of_len(char c, size_t n)
{
	static char buf[512];

	memset(buf, c, n);
	buf[n] = 0;
	return buf;
}

static void test_name_length(void **state)
{
	(void)state;
	char n255[256], n256[257], path[1024];
	struct stat st;

	assert_ok(mkdir(P(&M, "names"), 0755));
	memcpy(n255, name_of_len('a', 255), sizeof(n255));
	memcpy(n256, name_of_len('b', 256), sizeof(n256));

	/* 255 bytes: every kind of entry, and readdir gives the whole name back. */
	snprintf(path, sizeof(path), "names/%s", n255);
	write_str(P(&M, "%s", path), "long");
	check_str(P(&M, "%s", path), "long");
	DIR *d = opendir(P(&M, "names"));
	struct dirent *e;
	int found = 0;
	while ((e = readdir(d)))
		found += strcmp(e->d_name, n255) == 0;
	closedir(d);
	assert_int_equal(found, 1);
	n255[0] = 'd';
	assert_ok(mkdir(P(&M, "names/%s", n255), 0755));
	n255[0] = 's';
	assert_ok(symlink(n255, P(&M, "names/%s", n255)));
	n255[0] = 'l';
	snprintf(path, sizeof(path), "names/%s", name_of_len('a', 255));
	assert_ok(link(P(&M, "%s", path), P(&M, "names/%s", n255)));
	n255[0] = 'f';
	assert_ok(mkfifo(P(&M, "names/%s", n255), 0644));
	n255[0] = 'r';
	assert_ok(rename(P(&M, "names/%s", name_of_len('a', 255)), P(&M, "names/%s", n255)));
	check_str(P(&M, "names/%s", n255), "long");
	/* A multi-byte name of 255 bytes (85 three-byte characters). */
	char utf[256] = "";
	for (int i = 0; i < 85; i++)
		strcat(utf, "\xe2\x82\xac");
	write_str(P(&M, "names/%s", utf), "euro");
	check_str(P(&M, "names/%s", utf), "euro");

	/* 256 bytes: ENAMETOOLONG from every call, nothing created. */
	assert_errno(open(P(&M, "names/%s", n256), O_WRONLY | O_CREAT, 0644), ENAMETOOLONG);
	assert_errno(stat(P(&M, "names/%s", n256), &st), ENAMETOOLONG);
	assert_errno(mkdir(P(&M, "names/%s", n256), 0755), ENAMETOOLONG);
	assert_errno(symlink("x", P(&M, "names/%s", n256)), ENAMETOOLONG);
	assert_errno(mkfifo(P(&M, "names/%s", n256), 0644), ENAMETOOLONG);
	assert_errno(link(P(&M, "names/%s", n255), P(&M, "names/%s", n256)), ENAMETOOLONG);
	assert_errno(rename(P(&M, "names/%s", n255), P(&M, "names/%s", n256)), ENAMETOOLONG);
	assert_errno(unlink(P(&M, "names/%s", n256)), ENAMETOOLONG);
	assert_errno(rmdir(P(&M, "names/%s", n256)), ENAMETOOLONG);
	check_str(P(&M, "names/%s", n255), "long");
	/* A symlink target may hold components longer than NAME_MAX; resolving it fails. */
	assert_ok(symlink(n256, P(&M, "names/longtarget")));
	assert_errno(stat(P(&M, "names/longtarget"), &st), ENAMETOOLONG);

	int n = 0;
	d = opendir(P(&M, "names"));
	while ((e = readdir(d)))
		n++;
	closedir(d);
	assert_int_equal(n, 2 + 7);
}

static void test_max_file_size(void **state)
{
	(void)state;
	char buf[100];
	struct stat st;

	assert_ok(mkdir(P(&M, "max"), 0755));
	int fd = open(P(&M, "max/f"), O_RDWR | O_CREAT | O_EXCL, 0644);
	assert_true(fd >= 0);
	/* The last byte that may exist. */
	assert_int_equal(pwrite(fd, "L", 1, MAX_FILE - 1), 1);
	assert_ok(fstat(fd, &st));
	assert_int_equal(st.st_size, MAX_FILE);
	assert_int_equal(st.st_blocks, 8);
	assert_int_equal(pread(fd, buf, 10, MAX_FILE - 1), 1);
	assert_int_equal(buf[0], 'L');
	assert_int_equal(pread(fd, buf, 10, MAX_FILE - 10), 10);
	assert_true(all_zero(buf, 9) && buf[9] == 'L');
	assert_int_equal(lseek(fd, 0, SEEK_DATA), MAX_FILE - 4096);
	/* At or beyond it: EFBIG, and a write that crosses it is cut short. */
	assert_errno(pwrite(fd, "X", 1, MAX_FILE), EFBIG);
	assert_errno(pwrite(fd, "X", 1, MAX_FILE + 4096), EFBIG);
	memset(buf, 'Y', sizeof(buf));
	assert_int_equal(pwrite(fd, buf, 100, MAX_FILE - 10), 10);
	assert_ok(fstat(fd, &st));
	assert_int_equal(st.st_size, MAX_FILE);
	assert_errno(ftruncate(fd, MAX_FILE + 1), EFBIG);
	assert_errno(fallocate(fd, 0, MAX_FILE - 4096, 8192), EFBIG);
	assert_errno(fallocate(fd, FALLOC_FL_KEEP_SIZE, MAX_FILE, 4096), EFBIG);
	/* Appending at the limit. */
	int afd = open(P(&M, "max/f"), O_WRONLY | O_APPEND);
	assert_errno(write(afd, "Z", 1), EFBIG);
	close(afd);
	assert_ok(fstat(fd, &st));
	assert_int_equal(st.st_size, MAX_FILE);
	assert_int_equal(st.st_blocks, 8);
	/* Truncating it back frees the block at the top. */
	assert_ok(ftruncate(fd, 0));
	assert_ok(fstat(fd, &st));
	assert_int_equal(st.st_blocks, 0);
	close(fd);
}

static void test_big_directory(void **state)
{
	(void)state;
	static unsigned char seen[NBIG];
	char name[32];
	struct timespec t0 = now_rt();

	assert_ok(mkdir(P(&M, "big"), 0755));
	struct statvfs s0 = sfs_of(M.dir);
	assert_true(s0.f_ffree > NBIG);
	for (int i = 0; i < NBIG; i++) {
		snprintf(name, sizeof(name), "big/entry-%06d", i);
		if (mknod(P(&M, "%s", name), S_IFREG | 0644, 0) < 0)
			fail_msg("mknod %s: %s", name, strerror(errno));
	}
	struct statvfs s1 = sfs_of(M.dir);
	assert_int_equal(s0.f_ffree - s1.f_ffree, NBIG);
	print_message("created %d entries in %.1f s\n", NBIG, (double)(ts_ns(now_rt()) - ts_ns(t0)) / 1e9);

	/* A sample by name, present and absent. */
	for (int i = 0; i < NBIG; i += 997) {
		snprintf(name, sizeof(name), "big/entry-%06d", i);
		struct stat st = st_of(P(&M, "%s", name));
		assert_true(S_ISREG(st.st_mode));
		assert_int_equal(st.st_nlink, 1);
	}
	struct stat st;
	assert_errno(stat(P(&M, "big/entry-%06d", NBIG), &st), ENOENT);
	assert_errno(mknod(P(&M, "big/entry-%06d", 4242), S_IFREG | 0644, 0), EEXIST);

	/* Every entry exactly once. */
	DIR *d = opendir(P(&M, "big"));
	struct dirent *e;
	int n = 0, dots = 0;
	while ((e = readdir(d))) {
		int i;
		if (sscanf(e->d_name, "entry-%d", &i) == 1 && i >= 0 && i < NBIG) {
			if (seen[i]++)
				fail_msg("%s seen twice", e->d_name);
			n++;
		} else if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
			dots++;
		} else {
			fail_msg("unexpected %s", e->d_name);
		}
	}
	closedir(d);
	assert_int_equal(n, NBIG);
	assert_int_equal(dots, 2);

	for (int i = 0; i < NBIG; i++) {
		snprintf(name, sizeof(name), "big/entry-%06d", i);
		if (unlink(P(&M, "%s", name)) < 0)
			fail_msg("unlink %s: %s", name, strerror(errno));
	}
	assert_int_equal(wait_ffree(M.dir, s0.f_ffree), s0.f_ffree);
	d = opendir(P(&M, "big"));
	n = 0;
	while ((e = readdir(d)))
		n++;
	closedir(d);
	assert_int_equal(n, 2);
	assert_ok(rmdir(P(&M, "big")));
	print_message("whole big-directory test: %.1f s\n", (double)(ts_ns(now_rt()) - ts_ns(t0)) / 1e9);
}

static void test_many_links(void **state)
{
	(void)state;
	assert_ok(mkdir(P(&M, "links"), 0755));
	write_str(P(&M, "links/f"), "linked");
	ino_t ino = st_of(P(&M, "links/f")).st_ino;
	for (int i = 0; i < NLINKS; i++)
		assert_ok(link(P(&M, "links/f"), P(&M, "links/l%d", i)));
	assert_int_equal(st_of(P(&M, "links/f")).st_nlink, NLINKS + 1);
	for (int i = 0; i < NLINKS; i += 111) {
		struct stat st = st_of(P(&M, "links/l%d", i));
		assert_int_equal(st.st_ino, ino);
		assert_int_equal(st.st_nlink, NLINKS + 1);
	}
	check_str(P(&M, "links/l999"), "linked");
	/* Remove half, including the original name. */
	assert_ok(unlink(P(&M, "links/f")));
	for (int i = 0; i < NLINKS; i += 2)
		assert_ok(unlink(P(&M, "links/l%d", i)));
	assert_int_equal(st_of(P(&M, "links/l1")).st_nlink, NLINKS / 2);
	check_str(P(&M, "links/l1"), "linked");
}

static void test_deep_nesting(void **state)
{
	(void)state;
	enum { DEPTH = 300 };
	int fd = open(M.dir, O_RDONLY | O_DIRECTORY);

	assert_ok(mkdirat(fd, "deep", 0755));
	for (int i = 0; i < DEPTH; i++) {
		int next;

		if (i > 0)
			assert_ok(mkdirat(fd, "d", 0755));
		next = openat(fd, i > 0 ? "d" : "deep", O_RDONLY | O_DIRECTORY);
		assert_true(next >= 0);
		close(fd);
		fd = next;
	}
	int f = openat(fd, "bottom", O_WRONLY | O_CREAT, 0644);
	assert_true(f >= 0);
	assert_int_equal(write(f, "down", 4), 4);
	close(f);
	/* ".." leads back up, one level at a time. */
	struct stat top, st;
	assert_ok(stat(P(&M, "deep"), &top));
	int up = dup(fd);
	for (int i = 0; i < DEPTH - 1; i++) {
		int next = openat(up, "..", O_RDONLY | O_DIRECTORY);
		assert_true(next >= 0);
		close(up);
		up = next;
	}
	assert_ok(fstat(up, &st));
	assert_int_equal(st.st_ino, top.st_ino);
	close(up);
	close(fd);
	/* The top cannot move below itself, however deep. */
	char path[4096] = "deep";
	for (int i = 1; i < DEPTH; i++)
		strcat(path, "/d");
	assert_errno(rename(P(&M, "deep"), P(&M, "%s/x", path)), EINVAL);
	check_str(P(&M, "%s/bottom", path), "down");
}

static void test_remount(void **state)
{
	(void)state;
	close_leaked(&M);
	assert_int_equal(h_umount(&M), 0);
	fsck_clean(&M);
	assert_int_equal(h_mount(&M, NULL), 0);
	assert_int_equal(st_of(P(&M, "links/l1")).st_nlink, NLINKS / 2);
	assert_int_equal(st_of(P(&M, "links/l999")).st_nlink, NLINKS / 2);
	check_str(P(&M, "names/r%s", name_of_len('a', 254)), "long");
	assert_errno(access(P(&M, "big"), F_OK), ENOENT);
	assert_int_equal(st_of(P(&M, "max/f")).st_size, 0);
	assert_int_equal(h_umount(&M), 0);
}

static int run(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_name_length, settled),
		cmocka_unit_test_setup(test_max_file_size, settled),
		cmocka_unit_test_setup(test_big_directory, settled),
		cmocka_unit_test_setup(test_many_links, settled),
		cmocka_unit_test_setup(test_deep_nesting, settled),
		cmocka_unit_test_setup(test_remount, settled),
	};
	return cmocka_run_group_tests_name("limits", tests, setup, teardown);
}

int main(void)
{
	return h_main(run);
}
