/* SPDX-License-Identifier: MIT */
/*
 * dir.c: directories.  20000 entries added, half removed, looked up and listed (in one go and in
 * chunks resumed from cookies) before and after a remount, freed room reused; a long churn of
 * creates and deletes in one directory; cookies that survive changes between readdir calls.
 */
#include "fs_fixture.h"

#define NENT 20000

static void test_big_directory(void **state)
{
	struct fixture *f = *state;
	struct fs *fs = f->fs;
	uint64_t *ino = calloc(NENT, sizeof(*ino));
	char name[32];
	struct entry e;
	struct names nm;

	assert_non_null(ino);
	uint64_t ff0 = ffree(fs);
	uint64_t d = mkdir_(fs, ROOT, "big");
	for (int i = 0; i < NENT; i++) {
		snprintf(name, sizeof(name), "file-%05d", i);
		ino[i] = mkfile(fs, d, name);
	}
	assert_int_equal(ffree(fs), ff0 - 1 - NENT);
	/* The directory grew to whole blocks and holds every name. */
	struct stat st = stat_of(fs, d);
	assert_true(st.st_size >= (off_t)(NENT * DAXFS_DIRENT_LEN(10)));
	assert_int_equal(st.st_size % BS, 0);
	for (int i = 0; i < NENT; i++) {
		snprintf(name, sizeof(name), "file-%05d", i);
		assert_int_equal(lookup(fs, d, name), ino[i]);
	}
	/* Remove the even ones. */
	for (int i = 0; i < NENT; i += 2) {
		snprintf(name, sizeof(name), "file-%05d", i);
		assert_int_equal(namei_unlink(fs, d, name), 0);
	}
	assert_int_equal(ffree(fs), ff0 - 1 - NENT / 2);

	for (int pass = 0; pass < 2; pass++) {
		for (int i = 0; i < NENT; i++) {
			snprintf(name, sizeof(name), "file-%05d", i);
			int ret = namei_lookup(fs, d, name, &e);

			if (i % 2) {
				assert_int_equal(ret, 0);
				assert_int_equal(e.ino, ino[i]);
				forget(fs, e.ino);
			} else if (ret != -ENOENT) {
				fail_msg("pass %d: removed %s still found (%d)", pass, name, ret);
			}
		}
		/* readdir: ".", "..", then exactly the survivors, each once; in one go and in chunks. */
		for (int chunk = 0; chunk < 2; chunk++) {
			uint8_t *seen = calloc(NENT, 1);

			assert_non_null(seen);
			list_dir(fs, d, chunk ? 97 : 0, &nm);
			assert_int_equal(nm.n, 2 + NENT / 2);
			assert_string_equal(nm.name[0], ".");
			assert_int_equal(nm.ino[0], d);
			assert_string_equal(nm.name[1], "..");
			assert_int_equal(nm.ino[1], ROOT);
			for (size_t k = 2; k < nm.n; k++) {
				int i;

				if (sscanf(nm.name[k], "file-%05d", &i) != 1 || i < 0 || i >= NENT)
					fail_msg("unexpected name %s", nm.name[k]);
				if (i % 2 == 0)
					fail_msg("removed name %s listed", nm.name[k]);
				if (seen[i])
					fail_msg("%s listed twice", nm.name[k]);
				seen[i] = 1;
				assert_int_equal(nm.ino[k], ino[i]);
			}
			free_names(&nm);
			free(seen);
		}
		if (pass == 0) {
			remount(f);
			fs = f->fs;
			assert_int_equal(ffree(fs), ff0 - 1 - NENT / 2);
			/* Look the directory up again and keep the reference, as the kernel would. */
			assert_int_equal(namei_lookup(fs, ROOT, "big", &e), 0);
			assert_int_equal(e.ino, d);
		}
	}
	/* Freed room is reused: adding back as many names does not grow the directory. */
	off_t size = stat_of(fs, d).st_size;
	for (int i = 0; i < NENT; i += 2) {
		snprintf(name, sizeof(name), "file-%05d", i);
		ino[i] = mkfile(fs, d, name);
	}
	assert_int_equal(stat_of(fs, d).st_size, size);
	free(ino);
}

/* Create and delete names in one directory for a long time: the index and the blocks are reused. */
static void test_dir_churn(void **state)
{
	struct fixture *f = *state;
	struct fs *fs = f->fs;
	char name[64];
	struct entry e;

	uint64_t d = mkdir_(fs, ROOT, "churn");
	for (int i = 0; i < 8000; i++) {
		snprintf(name, sizeof(name), "churn-entry-with-a-longish-name-%06d", i);
		mkfile(fs, d, name);
		if (i >= 8) {
			snprintf(name, sizeof(name), "churn-entry-with-a-longish-name-%06d", i - 8);
			assert_int_equal(namei_unlink(fs, d, name), 0);
		}
	}
	/* Eight live names: one block, not one block per thousand creates. */
	assert_int_equal(stat_of(fs, d).st_size, BS);
	for (int i = 0; i < 8000; i++) {
		snprintf(name, sizeof(name), "churn-entry-with-a-longish-name-%06d", i);
		int ret = namei_lookup(fs, d, name, &e);

		if (i >= 8000 - 8) {
			assert_int_equal(ret, 0);
			forget(fs, e.ino);
		} else if (ret != -ENOENT) {
			fail_msg("%s: %d after its removal", name, ret);
		}
	}
	struct names nm;
	list_dir(fs, d, 0, &nm);
	assert_int_equal(nm.n, 2 + 8);
	free_names(&nm);
	remount(f);
	list_dir(f->fs, d, 0, &nm);
	assert_int_equal(nm.n, 2 + 8);
	free_names(&nm);
}

/* readdir cookies survive changes between calls: nothing repeats, nothing removed reappears. */
static void test_readdir_cookies(void **state)
{
	struct fixture *f = *state;
	struct fs *fs = f->fs;
	char name[32];
	struct inode *dp;
	struct names nm = { 0 };
	uint8_t seen[600] = { 0 };

	uint64_t d = mkdir_(fs, ROOT, "cookies");
	for (int i = 0; i < 600; i++) {
		snprintf(name, sizeof(name), "n%03d", i);
		mkfile(fs, d, name);
	}
	assert_int_equal(namei_open(fs, d, O_RDONLY, &dp, NULL), 0);
	nm.limit = 100;
	assert_int_equal(namei_readdir(fs, dp, 0, collect, &nm), 0);
	assert_int_equal(nm.n, 100);
	/* Between calls: remove every third name (listed or not) and add new ones. */
	for (int i = 0; i < 600; i += 3) {
		snprintf(name, sizeof(name), "n%03d", i);
		assert_int_equal(namei_unlink(fs, d, name), 0);
	}
	for (int i = 0; i < 50; i++) {
		snprintf(name, sizeof(name), "new%02d", i);
		mkfile(fs, d, name);
	}
	uint64_t pos = nm.next;
	for (;;) {
		size_t before = nm.n;

		nm.this_call = 0;
		assert_int_equal(namei_readdir(fs, dp, pos, collect, &nm), 0);
		if (nm.n == before)
			break;
		pos = nm.next;
	}
	closei(fs, dp);
	for (size_t k = 2; k < nm.n; k++) {
		int i;

		if (sscanf(nm.name[k], "n%03d", &i) != 1)
			continue;	/* a new name: may or may not be listed */
		if (seen[i])
			fail_msg("%s listed twice", nm.name[k]);
		seen[i] = 1;
		if (i % 3 == 0 && k >= 100)
			fail_msg("%s listed after its removal", nm.name[k]);
	}
	/* Every name that existed throughout was listed. */
	for (int i = 0; i < 600; i++)
		if (i % 3 && !seen[i])
			fail_msg("n%03d never listed", i);
	free_names(&nm);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_big_directory),
		T(test_dir_churn),
		T(test_readdir_cookies),
	};

	/* UNIT_FILTER=test_name (cmocka's glob) runs a subset while debugging. */
	if (getenv("UNIT_FILTER"))
		cmocka_set_test_filter(getenv("UNIT_FILTER"));
	return cmocka_run_group_tests_name("dir", tests, NULL, NULL);
}
