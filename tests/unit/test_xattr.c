/* SPDX-License-Identifier: MIT */
/*
 * xattr.c: extended attributes in one block per inode: get, list, set with CREATE and REPLACE,
 * remove, the namespaces and sizes refused, the block freed with the last attribute or the inode;
 * directories, a full block, name and value limits, lists of exactly the size asked; read-only.
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

/* Directories take user.* too; one block per inode bounds the values; name and value limits. */
static void test_limits_and_directories(void **state)
{
	struct fixture *f = *state;
	struct fs *fs = f->fs;
	char name[300], *val = malloc(70000), *back = malloc(BS);

	assert_non_null(val);
	assert_non_null(back);
	memset(val, 'v', 70000);
	uint64_t d = mkdir_(fs, ROOT, "withattrs");
	struct inode *dp = openi(fs, d);
	uint64_t free0 = bfree(fs);
	assert_int_equal(xattr_set(fs, dp, "user.dir", "yes", 3, 0), 0);
	assert_int_equal(bfree(fs), free0 - 1);
	/* A value that fills most of the block, then one that does not fit next to it. */
	assert_int_equal(xattr_set(fs, dp, "user.big", val, 3900, 0), 0);
	assert_int_equal(xattr_set(fs, dp, "user.more", val, 200, 0), -ENOSPC);
	assert_int_equal(xattr_get(fs, dp, "user.more", back, BS), -ENODATA);
	assert_int_equal(xattr_get(fs, dp, "user.big", back, BS), 3900);
	assert_memory_equal(back, val, 3900);
	/* Replacing with a smaller value makes room. */
	assert_int_equal(xattr_set(fs, dp, "user.big", val, 100, XATTR_REPLACE), 0);
	assert_int_equal(xattr_set(fs, dp, "user.more", val, 200, 0), 0);
	assert_int_equal(bfree(fs), free0 - 1);
	/* Names: up to 255 bytes after the prefix. */
	memcpy(name, "user.", 5);
	memset(name + 5, 'n', 255);
	name[260] = 0;
	assert_int_equal(xattr_set(fs, dp, name, "x", 1, 0), 0);
	assert_int_equal(xattr_get(fs, dp, name, back, BS), 1);
	name[5 + 255] = 'n';
	name[5 + 256] = 0;
	assert_int_equal(xattr_set(fs, dp, name, "x", 1, 0), -ERANGE);
	assert_int_equal(xattr_get(fs, dp, name, back, BS), -ERANGE);
	/*
	 * Values beyond what an attribute can hold at all (64 KiB, like Linux): -E2BIG (xattr.h), not
	 * the -ENOSPC of one that only does not fit this block, from exactly 64 KiB on.
	 */
	assert_int_equal(xattr_set(fs, dp, "user.huge", val, 70000, 0), -E2BIG);
	assert_int_equal(xattr_set(fs, dp, "user.huge", val, 65536, 0), -E2BIG);
	assert_int_equal(xattr_set(fs, dp, "user.huge", val, 65535, 0), -ENOSPC);
	assert_int_equal(xattr_set(fs, dp, "user.huge", val, 65536, XATTR_REPLACE), -E2BIG);
	/* A list exactly the size asked for. */
	int n = xattr_list(fs, dp, NULL, 0);
	assert_true(n > 0);
	assert_int_equal(xattr_list(fs, dp, back, (size_t)n), n);
	assert_int_equal(xattr_list(fs, dp, back, (size_t)n - 1), -ERANGE);
	closei(fs, dp);
	remount(f);
	dp = openi(f->fs, d);
	assert_int_equal(xattr_get(f->fs, dp, "user.dir", back, BS), 3);
	assert_int_equal(xattr_get(f->fs, dp, "user.more", back, BS), 200);
	closei(f->fs, dp);
	/* The attributes go with the directory. */
	assert_int_equal(namei_rmdir(f->fs, ROOT, "withattrs"), 0);
	assert_int_equal(bfree(f->fs), free0);
	free(val);
	free(back);
}

/* Changes are refused on an image that cannot change (read-only or aborted); reads go on. */
static void test_readonly(void **state)
{
	struct fixture *f = *state;
	char back[8];

	uint64_t ino = mkfile(f->fs, ROOT, "ro");
	struct inode *ip = openi(f->fs, ino);
	assert_int_equal(xattr_set(f->fs, ip, "user.k", "v", 1, 0), 0);
	f->fs->sbi.readonly = true;
	assert_int_equal(xattr_set(f->fs, ip, "user.k2", "v", 1, 0), -EROFS);
	assert_int_equal(xattr_remove(f->fs, ip, "user.k"), -EROFS);
	assert_int_equal(xattr_get(f->fs, ip, "user.k", back, sizeof(back)), 1);
	f->fs->sbi.readonly = false;
	/* An aborted image (a commit failed) says -EIO instead. */
	f->fs->sbi.aborted = true;
	assert_int_equal(xattr_set(f->fs, ip, "user.k2", "v", 1, 0), -EIO);
	assert_int_equal(xattr_remove(f->fs, ip, "user.k"), -EIO);
	assert_int_equal(xattr_get(f->fs, ip, "user.k", back, sizeof(back)), 1);
	f->fs->sbi.aborted = false;
	closei(f->fs, ip);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_xattrs),
		T(test_limits_and_directories),
		T(test_readonly),
	};

	/* UNIT_FILTER=test_name (cmocka's glob) runs a subset while debugging. */
	if (getenv("UNIT_FILTER"))
		cmocka_set_test_filter(getenv("UNIT_FILTER"));
	return cmocka_run_group_tests_name("xattr", tests, NULL, NULL);
}
