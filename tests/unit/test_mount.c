/* SPDX-License-Identifier: MIT */
/*
 * mount.c: the life cycle of a mounted file system below FUSE.  A fresh image mounts with its root and
 * statfs right and is clean again after an unmount; a child killed at every durability point of a
 * mixed workload leaves an image that mounts, reads and frees everything (journal replay and orphan
 * recovery at mount).  Mount failures, read-only mounts, unmount with pins and busy extents, and the
 * crash quarantine of busy extents whose holder outlived the daemon (the holder list).
 */
#include <signal.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <linux/falloc.h>

#include "fs_fixture.h"
#include "xattr.h"

static void test_mount_fresh(void **state)
{
	struct fixture *f = *state;
	struct statvfs sv;
	struct names nm;

	struct stat st = stat_of(f->fs, ROOT);
	assert_int_equal(st.st_mode, S_IFDIR | 0755);
	assert_int_equal(st.st_nlink, 2);
	assert_int_equal(st.st_ino, ROOT);
	assert_int_equal(namei_statfs(f->fs, &sv), 0);
	assert_int_equal(sv.f_bsize, BS);
	assert_int_equal(sv.f_blocks, f->fs->sbi.data_blocks);
	assert_int_equal(sv.f_bfree, f->fs->sbi.data_blocks - 3);	/* the three slot list heads */
	assert_int_equal(sv.f_files, 32768);
	assert_int_equal(sv.f_ffree, 32767);
	assert_int_equal(sv.f_namemax, 255);
	struct entry e;
	assert_int_equal(namei_lookup(f->fs, ROOT, "nope", &e), -ENOENT);
	assert_int_equal(namei_lookup(f->fs, 999, "x", &e), -ESTALE);	/* not an allocated inode */
	list_dir(f->fs, ROOT, 0, &nm);
	assert_int_equal(nm.n, 2);
	assert_string_equal(nm.name[0], ".");
	assert_string_equal(nm.name[1], "..");
	assert_int_equal(nm.ino[1], ROOT);
	free_names(&nm);
	/* A mounted image is dirty; a clean unmount marks it clean again. */
	assert_int_equal(((struct daxfs_super *)f->fs->sbi.media.base)->state, DAXFS_STATE_DIRTY);
	remount(f);
	assert_false(f->fs->sbi.was_dirty);
}

#define CHILD_CHECK(cond, code)            \
	do {                               \
		if (!(cond))               \
			_exit(code);       \
	} while (0)

static uint64_t child_create(struct fs *fs, uint64_t parent, const char *name, mode_t mode, int code)
{
	struct entry e;
	int ret = S_ISDIR(mode) ? namei_mkdir(fs, &root_cred, parent, name, mode & 07777, &e)
				: namei_mknod(fs, &root_cred, parent, name, mode, 0, &e);

	CHILD_CHECK(ret == 0, code);
	inode_forget(fs, e.ino, 1);
	return e.ino;
}

static void child_write(struct fs *fs, struct inode *ip, uint64_t off, size_t len, unsigned tag, int code)
{
	static char buf[512 * BS];

	for (size_t i = 0; i < len; i += BS)
		block_pattern(buf + i, (off + i) / BS, tag);
	struct iovec iov = { buf, len };
	CHILD_CHECK(file_write(fs, ip, off, &iov, 1) == (ssize_t)len, code);
}

/*
 * The crash child: mount and run a mix of operations (several of which commit more than one
 * transaction), dying at the n-th drain.  Exits 0 only if it got through without reaching it.
 */
static void crash_child(const char *path, int n)
{
	struct mount_config cfg = { 0 };
	struct fs *fs;
	struct inode *f1, *x, *g;
	char err[256], num[32], target[2000];

	snprintf(num, sizeof(num), "%d", n);
	setenv("DAXFS_CRASH_AT", num, 1);
	CHILD_CHECK(mount_open(&fs, path, &cfg, err, sizeof(err)) == 0, 10);
	uint64_t i1 = child_create(fs, ROOT, "f1", S_IFREG | 0644, 11);
	CHILD_CHECK(namei_open(fs, i1, O_RDWR, &f1, NULL) == 0, 12);
	child_write(fs, f1, 0, 4 * BS, 1, 13);
	child_write(fs, f1, 4 * BS, 4 * BS, 1, 14);
	uint64_t d = child_create(fs, ROOT, "d", S_IFDIR | 0755, 15);
	uint64_t ix = child_create(fs, d, "x", S_IFREG | 0644, 16);
	CHILD_CHECK(namei_open(fs, ix, O_RDWR, &x, NULL) == 0, 17);
	child_write(fs, x, 0, 3 * BS, 2, 18);
	CHILD_CHECK(namei_release(fs, x) == 0, 19);
	CHILD_CHECK(xattr_set(fs, f1, "user.k", "v", 1, 0) == 0, 20);
	CHILD_CHECK(namei_rename(fs, ROOT, "f1", d, "x", 0) == 0, 21);	/* frees the old x */
	CHILD_CHECK(namei_fallocate(fs, f1, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 2 * BS, 3 * BS, NULL) == 0, 22);
	CHILD_CHECK(namei_unlink(fs, d, "x") == 0, 23);	/* open: an orphan */
	child_write(fs, f1, 8 * BS, 2 * BS, 3, 24);
	CHILD_CHECK(namei_release(fs, f1) == 0, 25);	/* the orphan is freed */
	uint64_t ig = child_create(fs, d, "g", S_IFREG | 0644, 26);
	CHILD_CHECK(namei_open(fs, ig, O_RDWR, &g, NULL) == 0, 27);
	child_write(fs, g, 0, 300 * BS, 4, 28);
	struct stat attr = { .st_size = 10 * BS + 100 };
	CHILD_CHECK(namei_setattr(fs, ig, &attr, NAMEI_SET_SIZE, NULL, NULL) == 0, 29);
	CHILD_CHECK(namei_release(fs, g) == 0, 30);
	memset(target, 's', sizeof(target) - 1);
	target[sizeof(target) - 1] = 0;
	struct entry e;
	CHILD_CHECK(namei_symlink(fs, &root_cred, d, "link", target, &e) == 0, 31);
	CHILD_CHECK(namei_rmdir(fs, ROOT, "d") == -ENOTEMPTY, 32);
	mount_close(fs);
	_exit(0);
}

/* Read every file below dir and remove everything: returns the number of objects removed. */
static uint64_t read_and_remove_all(struct fs *fs, uint64_t dir)
{
	struct names nm;
	uint64_t removed = 0;

	list_dir(fs, dir, 0, &nm);
	for (size_t k = 2; k < nm.n; k++) {
		struct stat st = stat_of(fs, nm.ino[k]);

		if (S_ISDIR(st.st_mode)) {
			removed += read_and_remove_all(fs, nm.ino[k]);
			assert_int_equal(namei_rmdir(fs, dir, nm.name[k]), 0);
		} else {
			if (S_ISREG(st.st_mode)) {
				struct inode *ip = openi(fs, nm.ino[k]);
				char *buf = malloc((size_t)st.st_size + 1);

				assert_non_null(buf);
				assert_int_equal(rd(fs, ip, 0, buf, (size_t)st.st_size), st.st_size);
				free(buf);
				closei(fs, ip);
			} else if (S_ISLNK(st.st_mode)) {
				char buf[4096];

				assert_int_equal(namei_readlink(fs, nm.ino[k], buf, sizeof(buf)), st.st_size);
			}
			assert_int_equal(namei_unlink(fs, dir, nm.name[k]), 0);
		}
		removed++;
	}
	free_names(&nm);
	return removed;
}

/* Whatever the crash point: the image mounts, every file reads, and deleting everything leaks nothing. */
static void check_after_crash(struct fixture *f, int n)
{
	struct mount_config cfg = { 0 };
	char err[256] = "";

	for (int round = 0; round < 2; round++) {
		if (mount_open(&f->fs, f->img.path, &cfg, err, sizeof(err)))
			fail_msg("crash point %d: mount failed: %s", n, err);
		struct fs *fs = f->fs;
		if (round == 0)
			read_and_remove_all(fs, ROOT);
		/* In use: the slot list heads and the root directory's blocks (directories never shrink). */
		uint64_t root_blocks = (uint64_t)stat_of(fs, ROOT).st_blocks / (BS / 512);
		uint64_t want_free = fs->sbi.data_blocks - 3 - root_blocks;
		if (bfree(fs) != want_free || ffree(fs) != fs->sbi.sb.ninodes - 1)
			fail_msg("crash point %d, %s: %lld blocks and %lld inodes leaked", n,
				 round ? "after a remount" : "after deleting everything",
				 (long long)(want_free - bfree(fs)), (long long)(fs->sbi.sb.ninodes - 1 - ffree(fs)));
		assert_int_equal(fs->orphans.used, 0);
		assert_int_equal(stat_of(fs, ROOT).st_nlink, 2);
		/* The bitmap agrees with the allocator. */
		assert_int_equal(fs->sbi.bbm.nset, fs->sbi.sb.data_start + 4 + root_blocks);
		mount_close(fs);
		f->fs = NULL;
	}
}

static int setup_crash(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	image_name(&f->img, "fs-crash");
	*state = f;
	return 0;
}

static void test_crash_recovery(void **state)
{
	struct fixture *f = *state;
	int n, survived = 0;

	for (n = 1; n < 2000; n++) {
		int status;

		image_format(&f->img, 32 * MiB, NULL);
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0)
			crash_child(f->img.path, n);
		assert_int_equal(waitpid(pid, &status, 0), pid);
		if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
			survived = 1;
			break;	/* past the last drain: every crash point was tried */
		}
		if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
			fail_msg("crash point %d: the child failed at step %d instead", n,
				 WIFEXITED(status) ? WEXITSTATUS(status) : -1);
		check_after_crash(f, n);
	}
	assert_true(survived);
	/* The full run, cleanly unmounted, checks out too. */
	check_after_crash(f, n);
	print_message("crash recovery: %d crash points\n", n - 1);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_mount_fresh),
		cmocka_unit_test_setup_teardown(test_crash_recovery, setup_crash, teardown),
	};

	/* UNIT_FILTER=test_name (cmocka's glob) runs a subset while debugging. */
	if (getenv("UNIT_FILTER"))
		cmocka_set_test_filter(getenv("UNIT_FILTER"));
	return cmocka_run_group_tests_name("mount", tests, NULL, NULL);
}
