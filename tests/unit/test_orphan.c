/* SPDX-License-Identifier: MIT */
/*
 * orphan.c: inodes whose last link is gone.  An open unlinked file stays readable and writable and is
 * freed at its last close; one left open when the daemon goes away is freed by the next mount.
 */
#include <sys/wait.h>

#include "fs_fixture.h"

static void test_orphans(void **state)
{
	struct fixture *f = *state;
	struct fs *fs = f->fs;
	char data[10 * BS], back[10 * BS];
	struct entry e;

	memset(data, 0x3c, sizeof(data));
	uint64_t ff0 = ffree(fs);
	uint64_t ino = mkfile(fs, ROOT, "open-unlinked");
	uint64_t free0 = bfree(fs);	/* after the root directory got its first block */
	struct inode *ip = openi(fs, ino);
	wr(fs, ip, 0, data, sizeof(data));
	assert_int_equal(namei_unlink(fs, ROOT, "open-unlinked"), 0);
	assert_int_equal(namei_lookup(fs, ROOT, "open-unlinked", &e), -ENOENT);
	/* Still open: data readable, blocks and inode kept, the inode on the orphan list. */
	assert_int_equal(fs->orphans.used, 1);
	assert_int_equal(stat_of(fs, ino).st_nlink, 0);
	assert_int_equal(rd(fs, ip, 0, back, sizeof(back)), sizeof(back));
	assert_memory_equal(back, data, sizeof(back));
	wr(fs, ip, sizeof(data), "more", 4);
	assert_int_equal(bfree(fs), free0 - 11);
	assert_int_equal(ffree(fs), ff0 - 1);
	/* The last close frees everything. */
	closei(fs, ip);
	assert_int_equal(fs->orphans.used, 0);
	assert_int_equal(bfree(fs), free0);
	assert_int_equal(ffree(fs), ff0);

	/* Unlinked while open, then the daemon goes away without closing: mount finishes the job. */
	ino = mkfile(fs, ROOT, "left-behind");
	ip = openi(fs, ino);
	wr(fs, ip, 0, data, sizeof(data));
	assert_int_equal(namei_unlink(fs, ROOT, "left-behind"), 0);
	assert_int_equal(fs->orphans.used, 1);
	assert_int_equal(bfree(fs), free0 - 10);
	remount(f);	/* the open file is never released */
	fs = f->fs;
	assert_int_equal(fs->orphans_recovered, 1);
	assert_int_equal(fs->orphans.used, 0);
	assert_int_equal(bfree(fs), free0);
	assert_int_equal(ffree(fs), ff0);
	/* And the list stays empty on the next mount. */
	remount(f);
	assert_int_equal(f->fs->orphans_recovered, 0);
	assert_int_equal(f->fs->orphans.used, 0);
	assert_int_equal(bfree(f->fs), free0);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_orphans),
	};

	/* UNIT_FILTER=test_name (cmocka's glob) runs a subset while debugging. */
	if (getenv("UNIT_FILTER"))
		cmocka_set_test_filter(getenv("UNIT_FILTER"));
	return cmocka_run_group_tests_name("orphan", tests, NULL, NULL);
}
