/* SPDX-License-Identifier: MIT */
/*
 * xattr.c: extended attributes in one block per inode: get, list, set with CREATE and REPLACE,
 * remove, the namespaces and sizes refused, the block freed with the last attribute or the inode.
 */
#include <sys/xattr.h>

#include "fs_fixture.h"
#include "xattr.h"

static void test_xattrs(void **state)
{
	struct fixture *f = *state;
	struct fs *fs = f->fs;
	char buf[256];

	uint64_t ino = mkfile(fs, ROOT, "attrs");
	uint64_t free0 = bfree(fs);
	struct inode *ip = openi(fs, ino);
	assert_int_equal(xattr_get(fs, ip, "user.a", buf, sizeof(buf)), -ENODATA);
	assert_int_equal(xattr_list(fs, ip, buf, sizeof(buf)), 0);
	assert_int_equal(xattr_set(fs, ip, "user.a", "hello", 5, 0), 0);
	assert_int_equal(bfree(fs), free0 - 1);
	assert_int_equal(stat_of(fs, ino).st_blocks, BS / 512);
	assert_int_equal(xattr_get(fs, ip, "user.a", buf, sizeof(buf)), 5);
	assert_memory_equal(buf, "hello", 5);
	assert_int_equal(xattr_get(fs, ip, "user.a", NULL, 0), 5);	/* size query */
	assert_int_equal(xattr_get(fs, ip, "user.a", buf, 3), -ERANGE);
	assert_int_equal(xattr_get(fs, ip, "trusted.a", buf, sizeof(buf)), -ENODATA);	/* other namespace */
	/* Create and replace semantics. */
	assert_int_equal(xattr_set(fs, ip, "user.a", "x", 1, XATTR_CREATE), -EEXIST);
	assert_int_equal(xattr_set(fs, ip, "user.b", "x", 1, XATTR_REPLACE), -ENODATA);
	assert_int_equal(xattr_set(fs, ip, "user.a", "world!", 6, XATTR_REPLACE), 0);
	assert_int_equal(xattr_set(fs, ip, "trusted.t", "T", 1, 0), 0);
	assert_int_equal(xattr_set(fs, ip, "security.s", "", 0, 0), 0);
	assert_int_equal(bfree(fs), free0 - 1);	/* still one block */
	int n = xattr_list(fs, ip, buf, sizeof(buf));
	assert_int_equal(n, sizeof("user.a") + sizeof("trusted.t") + sizeof("security.s"));
	assert_int_equal(xattr_list(fs, ip, NULL, 0), n);
	assert_int_equal(xattr_list(fs, ip, buf, 5), -ERANGE);
	/* Each name once, NUL-separated. */
	int found = 0;
	for (char *p = buf; p < buf + n; p += strlen(p) + 1)
		found |= (!strcmp(p, "user.a") ? 1 : 0) | (!strcmp(p, "trusted.t") ? 2 : 0) |
			 (!strcmp(p, "security.s") ? 4 : 0);
	assert_int_equal(found, 7);

	/* Names and sizes we refuse. */
	assert_int_equal(xattr_set(fs, ip, "system.posix_acl_access", "x", 1, 0), -EOPNOTSUPP);
	assert_int_equal(xattr_set(fs, ip, "user.", "x", 1, 0), -EINVAL);
	assert_int_equal(xattr_set(fs, ip, "nonsense", "x", 1, 0), -EOPNOTSUPP);
	char *big = calloc(1, 5000);
	assert_non_null(big);
	assert_int_equal(xattr_set(fs, ip, "user.big", big, 5000, 0), -ENOSPC);
	free(big);
	assert_int_equal(xattr_set(fs, ip, "user.x", "x", 1, 0x100), -EINVAL);
	closei(fs, ip);

	remount(f);
	fs = f->fs;
	ip = openi(fs, ino);
	assert_int_equal(xattr_get(fs, ip, "user.a", buf, sizeof(buf)), 6);
	assert_memory_equal(buf, "world!", 6);
	assert_int_equal(xattr_get(fs, ip, "trusted.t", buf, sizeof(buf)), 1);
	assert_int_equal(xattr_get(fs, ip, "security.s", buf, sizeof(buf)), 0);
	assert_int_equal(xattr_remove(fs, ip, "user.a"), 0);
	assert_int_equal(xattr_remove(fs, ip, "user.a"), -ENODATA);
	assert_int_equal(xattr_get(fs, ip, "user.a", buf, sizeof(buf)), -ENODATA);
	assert_int_equal(xattr_remove(fs, ip, "trusted.t"), 0);
	assert_int_equal(bfree(fs), free0 - 1);
	/* The last attribute gone: the block goes too. */
	assert_int_equal(xattr_remove(fs, ip, "security.s"), 0);
	assert_int_equal(bfree(fs), free0);
	assert_int_equal(stat_of(fs, ino).st_blocks, 0);
	assert_int_equal(xattr_list(fs, ip, buf, sizeof(buf)), 0);
	/* An inode with attributes frees its block when deleted. */
	assert_int_equal(xattr_set(fs, ip, "user.k", "v", 1, 0), 0);
	closei(fs, ip);
	assert_int_equal(namei_unlink(fs, ROOT, "attrs"), 0);
	assert_int_equal(bfree(fs), free0);

	/* user.* only on files and directories. */
	struct entry e;
	assert_int_equal(namei_symlink(fs, &root_cred, ROOT, "lnk", "t", &e), 0);
	forget(fs, e.ino);
	assert_int_equal(namei_open(fs, e.ino, O_RDONLY, &ip, NULL), 0);
	assert_int_equal(xattr_set(fs, ip, "user.a", "x", 1, 0), -EPERM);
	assert_int_equal(xattr_set(fs, ip, "trusted.a", "x", 1, 0), 0);
	closei(fs, ip);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_xattrs),
	};

	/* UNIT_FILTER=test_name (cmocka's glob) runs a subset while debugging. */
	if (getenv("UNIT_FILTER"))
		cmocka_set_test_filter(getenv("UNIT_FILTER"));
	return cmocka_run_group_tests_name("xattr", tests, NULL, NULL);
}
