/* SPDX-License-Identifier: MIT */
/*
 * Extended attributes through the kernel: the user, trusted and security namespaces, create and
 * replace semantics, buffer sizes, special files, space, and persistence.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "itest.h"

static struct mnt M;

static int setup(void **state)
{
	(void)state;
	return h_group_up(&M, "xattr", "-s 64M", NULL);
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

static void get_equal(const char *path, const char *name, const void *val, size_t len)
{
	char buf[70000];

	ssize_t n = lgetxattr(path, name, buf, sizeof(buf));
	if (n < 0)
		fail_msg("getxattr %s %s: %s", path, name, strerror(errno));
	assert_int_equal(n, (ssize_t)len);
	assert_memory_equal(buf, val, len);
}

/* The list as a sorted, '|'-joined string, for exact comparison. */
static int cmpstr(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static const char *list_of(const char *path)
{
	static char out[8192];
	char buf[8192], *names[256];
	ssize_t n = llistxattr(path, buf, sizeof(buf));
	int k = 0;

	if (n < 0)
		fail_msg("listxattr %s: %s", path, strerror(errno));
	for (ssize_t off = 0; off < n; off += (ssize_t)strlen(buf + off) + 1)
		names[k++] = buf + off;
	assert_true(n == 0 || buf[n - 1] == 0);
	qsort(names, (size_t)k, sizeof(names[0]), cmpstr);
	out[0] = 0;
	for (int i = 0; i < k; i++) {
		strcat(out, names[i]);
		if (i + 1 < k)
			strcat(out, "|");
	}
	return out;
}

static void test_namespaces(void **state)
{
	(void)state;
	const char *f = P(&M, "ns");

	write_str(f, "data");
	assert_string_equal(list_of(f), "");
	assert_ok(setxattr(f, "user.color", "blue", 4, 0));
	assert_ok(setxattr(f, "trusted.level", "9", 1, 0));
	assert_ok(setxattr(f, "security.label", "top\0secret", 10, 0));
	assert_ok(setxattr(f, "user.empty", "", 0, 0));
	get_equal(f, "user.color", "blue", 4);
	get_equal(f, "trusted.level", "9", 1);
	get_equal(f, "security.label", "top\0secret", 10);
	get_equal(f, "user.empty", "", 0);
	assert_string_equal(list_of(f), "security.label|trusted.level|user.color|user.empty");
	/* The same suffix in different namespaces is a different attribute. */
	assert_ok(setxattr(f, "trusted.color", "red", 3, 0));
	get_equal(f, "user.color", "blue", 4);
	get_equal(f, "trusted.color", "red", 3);
	/* Replace with a longer and a shorter value. */
	assert_ok(setxattr(f, "user.color", "ultramarine", 11, 0));
	get_equal(f, "user.color", "ultramarine", 11);
	assert_ok(setxattr(f, "user.color", "ok", 2, 0));
	get_equal(f, "user.color", "ok", 2);
	/* Remove. */
	assert_ok(removexattr(f, "trusted.color"));
	assert_errno(getxattr(f, "trusted.color", NULL, 0), ENODATA);
	get_equal(f, "user.color", "ok", 2);
	assert_ok(removexattr(f, "user.empty"));
	assert_string_equal(list_of(f), "security.label|trusted.level|user.color");
	/* File data is untouched by all this. */
	check_str(f, "data");
	/* Directories carry them too. */
	assert_ok(mkdir(P(&M, "nsdir"), 0755));
	assert_ok(setxattr(P(&M, "nsdir"), "user.d", "dir", 3, 0));
	get_equal(P(&M, "nsdir"), "user.d", "dir", 3);
	/* And the root. */
	assert_ok(setxattr(M.dir, "trusted.root", "r", 1, 0));
	get_equal(M.dir, "trusted.root", "r", 1);
	assert_ok(removexattr(M.dir, "trusted.root"));
}

static void test_flags(void **state)
{
	(void)state;
	const char *f = P(&M, "flags");

	write_str(f, "");
	assert_ok(setxattr(f, "user.a", "1", 1, XATTR_CREATE));
	assert_errno(setxattr(f, "user.a", "2", 1, XATTR_CREATE), EEXIST);
	get_equal(f, "user.a", "1", 1);
	assert_errno(setxattr(f, "user.b", "2", 1, XATTR_REPLACE), ENODATA);
	assert_errno(getxattr(f, "user.b", NULL, 0), ENODATA);
	assert_ok(setxattr(f, "user.a", "22", 2, XATTR_REPLACE));
	get_equal(f, "user.a", "22", 2);
	assert_errno(getxattr(f, "user.missing", NULL, 0), ENODATA);
	assert_errno(removexattr(f, "user.missing"), ENODATA);
	assert_errno(removexattr(f, "trusted.a"), ENODATA);
	/* Invalid names: unknown namespace, empty suffix, too long (more than 255 bytes). */
	assert_errno(setxattr(f, "nonsense.a", "x", 1, 0), EOPNOTSUPP);
	assert_errno(getxattr(f, "nonsense.a", NULL, 0), EOPNOTSUPP);
	assert_errno(setxattr(f, "user.", "x", 1, 0), EINVAL);
	char name[300];
	snprintf(name, sizeof(name), "user.%0250d", 0);	/* 255 bytes in all */
	assert_ok(setxattr(f, name, "long", 4, 0));
	get_equal(f, name, "long", 4);
	assert_ok(removexattr(f, name));
	snprintf(name, sizeof(name), "user.%0251d", 0);	/* 256 */
	assert_errno(setxattr(f, name, "x", 1, 0), ERANGE);
	/* Too large for any namespace (64 KiB + 1). */
	char *big = calloc(1, 65537);
	assert_errno(setxattr(f, "user.big", big, 65537, 0), E2BIG);
	free(big);
	assert_string_equal(list_of(f), "user.a");
}

static void test_sizes(void **state)
{
	(void)state;
	const char *f = P(&M, "sizes");
	char buf[4096];

	write_str(f, "");
	assert_ok(setxattr(f, "user.ten", "0123456789", 10, 0));
	assert_ok(setxattr(f, "trusted.three", "abc", 3, 0));
	/* Size queries. */
	assert_int_equal(getxattr(f, "user.ten", NULL, 0), 10);
	assert_int_equal(getxattr(f, "user.ten", buf, 0), 10);
	assert_int_equal(listxattr(f, NULL, 0), (ssize_t)(sizeof("user.ten") + sizeof("trusted.three")));
	/* Exact and too-small buffers. */
	assert_int_equal(getxattr(f, "user.ten", buf, 10), 10);
	assert_errno(getxattr(f, "user.ten", buf, 9), ERANGE);
	assert_errno(getxattr(f, "user.ten", buf, 1), ERANGE);
	ssize_t total = listxattr(f, NULL, 0);
	assert_int_equal(listxattr(f, buf, (size_t)total), total);
	assert_errno(listxattr(f, buf, (size_t)total - 1), ERANGE);
	assert_errno(listxattr(f, buf, 1), ERANGE);
	/* An empty list. */
	write_str(P(&M, "sizes-none"), "");
	assert_int_equal(listxattr(P(&M, "sizes-none"), NULL, 0), 0);
	assert_int_equal(listxattr(P(&M, "sizes-none"), buf, sizeof(buf)), 0);
}

static void test_values(void **state)
{
	(void)state;
	const char *f = P(&M, "values");
	static const size_t sizes[] = { 1, 100, 255, 256, 1000, 2048, 3000 };
	char val[3000];

	write_str(f, "");
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		pat_fill(val, sizes[i], 0, (unsigned)i);
		assert_ok(setxattr(f, "user.v", val, sizes[i], 0));
		get_equal(f, "user.v", val, sizes[i]);
	}
	/* Binary values with NULs and high bytes. */
	for (int i = 0; i < 256; i++)
		val[i] = (char)i;
	assert_ok(setxattr(f, "trusted.bin", val, 256, 0));
	get_equal(f, "trusted.bin", val, 256);
	/* Through a descriptor. */
	int fd = open(f, O_RDONLY);
	assert_ok(fsetxattr(fd, "user.fd", "via-fd", 6, 0));
	char buf[16];
	assert_int_equal(fgetxattr(fd, "user.fd", buf, sizeof(buf)), 6);
	assert_memory_equal(buf, "via-fd", 6);
	assert_true(flistxattr(fd, buf, sizeof(buf)) < 0 && errno == ERANGE);
	assert_ok(fremovexattr(fd, "user.fd"));
	close(fd);
}

/* All of an inode's attributes share one block: a second 3 KiB value does not fit. */
static void test_enospc(void **state)
{
	(void)state;
	const char *f = P(&M, "full");
	char a[3000], b[3000];

	write_str(f, "");
	pat_fill(a, sizeof(a), 0, 1);
	pat_fill(b, sizeof(b), 0, 2);
	assert_ok(setxattr(f, "user.a", a, sizeof(a), 0));
	assert_errno(setxattr(f, "user.b", b, sizeof(b), 0), ENOSPC);
	char *huge = calloc(1, 10000);
	assert_errno(setxattr(f, "user.c", huge, 10000, 0), ENOSPC);
	free(huge);
	/* The failure changed nothing; replacing the big one in place still works. */
	get_equal(f, "user.a", a, sizeof(a));
	assert_errno(getxattr(f, "user.b", NULL, 0), ENODATA);
	assert_ok(setxattr(f, "user.a", b, sizeof(b), 0));
	get_equal(f, "user.a", b, sizeof(b));
	/* Many small ones until full, then every one is still there. */
	write_str(P(&M, "many"), "");
	int n = 0;
	for (;; n++) {
		char name[32], v[32];
		snprintf(name, sizeof(name), "user.n%d", n);
		snprintf(v, sizeof(v), "value-%d", n);
		if (setxattr(P(&M, "many"), name, v, strlen(v), 0) < 0) {
			assert_int_equal(errno, ENOSPC);
			break;
		}
		assert_true(n < 1000);
	}
	assert_true(n > 50);
	for (int i = 0; i < n; i++) {
		char name[32], v[32];
		snprintf(name, sizeof(name), "user.n%d", i);
		snprintf(v, sizeof(v), "value-%d", i);
		get_equal(P(&M, "many"), name, v, strlen(v));
	}
	assert_int_equal(listxattr(P(&M, "many"), NULL, 0) > 0, 1);
	/* Removing one makes room for one. */
	assert_ok(removexattr(P(&M, "many"), "user.n0"));
	assert_ok(setxattr(P(&M, "many"), "user.again", "x", 1, 0));
}

static void test_special_files(void **state)
{
	(void)state;
	char buf[16];

	assert_ok(symlink("target", P(&M, "sym")));
	assert_ok(mkfifo(P(&M, "fifo"), 0644));
	/* user.* only on regular files and directories. */
	assert_errno(lsetxattr(P(&M, "sym"), "user.x", "1", 1, 0), EPERM);
	assert_errno(setxattr(P(&M, "fifo"), "user.x", "1", 1, 0), EPERM);
	assert_errno(lgetxattr(P(&M, "sym"), "user.x", buf, sizeof(buf)), ENODATA);
	/* trusted.* works on them. */
	assert_ok(lsetxattr(P(&M, "sym"), "trusted.x", "link", 4, 0));
	assert_ok(setxattr(P(&M, "fifo"), "trusted.x", "fifo", 4, 0));
	get_equal(P(&M, "sym"), "trusted.x", "link", 4);
	get_equal(P(&M, "fifo"), "trusted.x", "fifo", 4);
	assert_string_equal(list_of(P(&M, "sym")), "trusted.x");
	/* setxattr (not l-) follows the link to its target. */
	write_str(P(&M, "target"), "");
	assert_ok(setxattr(P(&M, "sym"), "user.t", "followed", 8, 0));
	get_equal(P(&M, "target"), "user.t", "followed", 8);
	assert_errno(lgetxattr(P(&M, "sym"), "user.t", buf, sizeof(buf)), ENODATA);
}

/* The attribute block is counted in st_blocks and statfs, and freed with the last attribute or the file. */
static void test_space(void **state)
{
	(void)state;
	const char *f = P(&M, "space");

	write_str(f, "");
	uint64_t bfree = sfs_of(M.dir).f_bfree;
	assert_int_equal(st_of(f).st_blocks, 0);
	assert_ok(setxattr(f, "user.a", "1", 1, 0));
	assert_ok(setxattr(f, "user.b", "2", 1, 0));
	assert_int_equal(st_of(f).st_blocks, 8);
	assert_int_equal(sfs_of(M.dir).f_bfree, bfree - 1);
	assert_ok(removexattr(f, "user.a"));
	assert_int_equal(sfs_of(M.dir).f_bfree, bfree - 1);
	assert_ok(removexattr(f, "user.b"));
	assert_int_equal(st_of(f).st_blocks, 0);
	assert_int_equal(sfs_of(M.dir).f_bfree, bfree);
	assert_ok(setxattr(f, "user.a", "1", 1, 0));
	assert_ok(unlink(f));
	assert_int_equal(wait_bfree(M.dir, bfree), bfree);
	/* Replaced by a rename: the victim's attribute block goes too. */
	write_str(f, "");
	write_str(P(&M, "space2"), "");
	bfree = sfs_of(M.dir).f_bfree;
	assert_ok(setxattr(f, "user.a", "1", 1, 0));
	assert_ok(rename(P(&M, "space2"), f));
	assert_int_equal(wait_bfree(M.dir, bfree), bfree);
	assert_errno(getxattr(f, "user.a", NULL, 0), ENODATA);
}

static void test_ctime(void **state)
{
	(void)state;
	const char *f = P(&M, "ctime");

	write_str(f, "");
	struct stat a = st_of(f);
	tick_past(a.st_ctim);
	assert_ok(setxattr(f, "user.a", "1", 1, 0));
	struct stat b = st_of(f);
	assert_true(ts_cmp(b.st_ctim, a.st_ctim) > 0);
	assert_int_equal(ts_cmp(b.st_mtim, a.st_mtim), 0);
	tick_past(b.st_ctim);
	assert_ok(removexattr(f, "user.a"));
	struct stat c = st_of(f);
	assert_true(ts_cmp(c.st_ctim, b.st_ctim) > 0);
	/* A failed change does not touch it (a new stamp would now differ). */
	tick_past(c.st_ctim);
	assert_errno(removexattr(f, "user.a"), ENODATA);
	assert_int_equal(ts_cmp(st_of(f).st_ctim, c.st_ctim), 0);
}

/* An unlinked but open file keeps its attributes. */
static void test_unlinked_open(void **state)
{
	(void)state;
	char buf[8];
	int fd;

	write_str(P(&M, "gone"), "");
	assert_ok(setxattr(P(&M, "gone"), "user.k", "kept", 4, 0));
	fd = open(P(&M, "gone"), O_RDONLY);
	assert_ok(unlink(P(&M, "gone")));
	assert_int_equal(fgetxattr(fd, "user.k", buf, sizeof(buf)), 4);
	assert_memory_equal(buf, "kept", 4);
	close(fd);
}

static void test_remount(void **state)
{
	(void)state;
	char b[3000], val[256];

	close_leaked(&M);
	assert_int_equal(h_umount(&M), 0);
	fsck_clean(&M);
	assert_int_equal(h_mount(&M, NULL), 0);
	const char *f = P(&M, "ns");
	assert_string_equal(list_of(f), "security.label|trusted.level|user.color");
	get_equal(f, "user.color", "ok", 2);
	get_equal(f, "security.label", "top\0secret", 10);
	get_equal(P(&M, "nsdir"), "user.d", "dir", 3);
	pat_fill(b, sizeof(b), 0, 2);
	get_equal(P(&M, "full"), "user.a", b, sizeof(b));
	for (int i = 0; i < 256; i++)
		val[i] = (char)i;
	get_equal(P(&M, "values"), "trusted.bin", val, 256);
	get_equal(P(&M, "sym"), "trusted.x", "link", 4);
	get_equal(P(&M, "many"), "user.again", "x", 1);
	assert_int_equal(h_umount(&M), 0);
}

static int run(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_namespaces, settled),
		cmocka_unit_test_setup(test_flags, settled),
		cmocka_unit_test_setup(test_sizes, settled),
		cmocka_unit_test_setup(test_values, settled),
		cmocka_unit_test_setup(test_enospc, settled),
		cmocka_unit_test_setup(test_special_files, settled),
		cmocka_unit_test_setup(test_space, settled),
		cmocka_unit_test_setup(test_ctime, settled),
		cmocka_unit_test_setup(test_unlinked_open, settled),
		cmocka_unit_test_setup(test_remount, settled),
	};
	return cmocka_run_group_tests_name("xattr", tests, setup, teardown);
}

int main(void)
{
	return h_main(run);
}
