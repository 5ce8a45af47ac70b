/* SPDX-License-Identifier: MIT */
/*
 * dir.c: directories.  20000 entries added, half removed, looked up and listed (in one go and in
 * chunks resumed from cookies) before and after a remount, freed room reused; a long churn of
 * creates and deletes in one directory; cookies that survive changes between readdir calls; names
 * of every length and byte; a damaged record makes the directory EIO (reported), not garbage.
 */
#include "fs_fixture.h"
#include "dir.h"

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

struct long_names {
	char (*name)[256];
	size_t n;
};

static int collect_long(void *arg, const char *name, size_t len, uint64_t ino, uint8_t type, uint64_t next)
{
	struct long_names *ln = arg;

	(void)ino, (void)type, (void)next;
	assert_true(ln->n < 300);
	memcpy(ln->name[ln->n], name, len);
	ln->name[ln->n][len] = 0;
	ln->n++;
	return 0;
}

/* Names of every length, with any byte but '/' and NUL: created, found, listed, removed. */
static void test_name_lengths(void **state)
{
	struct fixture *f = *state;
	struct fs *fs = f->fs;
	struct long_names ln = { calloc(300, 256), 0 };
	char name[256];
	struct entry e;
	struct inode *dp;

	assert_non_null(ln.name);
	uint64_t d = mkdir_(fs, ROOT, "lengths");
	for (int len = 1; len <= 255; len++) {
		for (int i = 0; i < len; i++)
			name[i] = (char)(1 + (len * 7 + i * 13) % 255);	/* 1..255 */
		for (int i = 0; i < len; i++)
			if (name[i] == '/')
				name[i] = 'x';
		name[len] = 0;
		if (len <= 2 && name[0] == '.' && (len == 1 || name[1] == '.'))
			name[0] = 'y';
		assert_int_equal(namei_mknod(fs, &root_cred, d, name, S_IFREG | 0644, 0, &e), 0);
		forget(fs, e.ino);
	}
	remount(f);
	fs = f->fs;
	assert_int_equal(namei_lookup(fs, ROOT, "lengths", &e), 0);
	assert_int_equal(namei_open(fs, d, O_RDONLY, &dp, NULL), 0);
	assert_int_equal(dir_entries(dp), 255);
	assert_int_equal(namei_readdir(fs, dp, 0, collect_long, &ln), 0);
	assert_int_equal(ln.n, 2 + 255);
	bool seen[256] = { false };
	for (size_t k = 2; k < ln.n; k++) {
		size_t len = strlen(ln.name[k]);

		assert_true(len >= 1 && len <= 255 && !seen[len]);
		seen[len] = true;
		assert_true(lookup(fs, d, ln.name[k]) != 0);
		assert_int_equal(namei_unlink(fs, d, ln.name[k]), 0);
	}
	assert_int_equal(dir_entries(dp), 0);
	closei(fs, dp);
	free(ln.name);
}

static struct unit_reports reports;

/* A damaged directory record: the directory does not load (EIO, reported); put back, it does. */
static void test_corrupt_record(void **state)
{
	struct fixture *f = *state;
	struct fs *fs = f->fs;
	struct inode *dp;
	struct entry e;

	uint64_t d = mkdir_(fs, ROOT, "damaged");
	mkfile(fs, d, "before");
	mkfile(fs, d, "corrupt-me-please");
	mkfile(fs, d, "after");
	forget(fs, d);	/* out of DRAM: the next access loads it from the media */
	assert_int_equal(inode_read(fs, d, &dp), 0);
	struct emap_cursor c;
	struct daxfs_extent x;
	assert_true(emap_seek(dp, 0, &c, &x));
	inode_free(dp);
	char *blk = sbi_block(&fs->sbi, x.pblk);
	char *at = memmem(blk, BS, "corrupt-me-please", 17);
	assert_non_null(at);
	at[3] ^= 0x01;
	media_persist(fs_media(fs), at, 1);
	reports = (struct unit_reports){ 0 };
	fs->sbi.report = unit_report;
	fs->sbi.report_arg = &reports;
	assert_int_equal(namei_lookup(fs, ROOT, "damaged", &e), -EIO);
	assert_int_equal(namei_lookup(fs, d, "before", &e), -EIO);
	assert_true(reports.n >= 1);
	assert_true(fs->sbi.corruptions >= 1);
	at[3] ^= 0x01;
	media_persist(fs_media(fs), at, 1);
	assert_int_equal(namei_lookup(fs, ROOT, "damaged", &e), 0);
	assert_int_equal(lookup(fs, d, "corrupt-me-please") != 0, 1);
	fs->sbi.report = NULL;
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_big_directory),
		T(test_dir_churn),
		T(test_readdir_cookies),
		T(test_name_lengths),
		T(test_corrupt_record),
	};

	/* UNIT_FILTER=test_name (cmocka's glob) runs a subset while debugging. */
	if (getenv("UNIT_FILTER"))
		cmocka_set_test_filter(getenv("UNIT_FILTER"));
	return cmocka_run_group_tests_name("dir", tests, NULL, NULL);
}
