/* SPDX-License-Identifier: MIT */
/*
 * orphan.c: inodes whose last link is gone.  An open unlinked file stays readable and writable and is
 * freed at its last close; one left open when the daemon goes away is freed by the next mount, also
 * hundreds of them with blocks and attributes; the last close frees pinned blocks as busy extents
 * without waiting, whatever the policy.
 */
#include <pthread.h>
#include <sys/wait.h>

#include "fs_fixture.h"
#include "xattr.h"

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

#define NORPHANS 300	/* more than one block of the orphan slot list holds */

/*
 * A daemon (a child) leaves hundreds of open unlinked files, each with blocks and an extended
 * attribute, and dies: the next mount frees them all (the list spans several blocks), and the one
 * after finds nothing left to do.
 */
static void test_many_orphans_at_mount(void **state)
{
	struct fixture *f = *state;
	uint64_t free0 = bfree(f->fs), ff0 = ffree(f->fs);
	int status;

	mount_close(f->fs);
	f->fs = NULL;
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct mount_config cfg = { 0 };
		struct fs *fs;
		struct entry e;
		struct inode *ip;
		char err[256], name[32], data[2 * BS];

		memset(data, 0x6f, sizeof(data));
		if (mount_open(&fs, f->img.path, &cfg, err, sizeof(err)))
			_exit(2);
		for (int i = 0; i < NORPHANS; i++) {
			struct iovec iov = { data, sizeof(data) };

			snprintf(name, sizeof(name), "o%d", i);
			if (namei_mknod(fs, &root_cred, ROOT, name, S_IFREG | 0644, 0, &e) ||
			    namei_open(fs, e.ino, O_RDWR, &ip, NULL) || file_write(fs, ip, 0, &iov, 1) != sizeof(data) ||
			    xattr_set(fs, ip, "user.k", "v", 1, 0) || namei_unlink(fs, ROOT, name))
				_exit(3);
		}
		_exit(fs->orphans.used == NORPHANS && fs->orphans.nblocks > 1 ? 0 : 4);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("the child failed (status %#x)", status);
	struct mount_config cfg = { 0 };
	char err[256];
	assert_int_equal(mount_open(&f->fs, f->img.path, &cfg, err, sizeof(err)), 0);
	assert_int_equal(f->fs->orphans_recovered, NORPHANS);
	assert_int_equal(f->fs->orphans.used, 0);
	/*
	 * Only the root directory's blocks for the names and the orphan list's grown chain stay used
	 * (neither shrinks).
	 */
	uint64_t root_blocks = (uint64_t)stat_of(f->fs, ROOT).st_blocks / (BS / 512);
	uint64_t chain = f->fs->orphans.nblocks - 1;
	assert_true(chain >= 2);
	assert_int_equal(bfree(f->fs), free0 - root_blocks - chain);
	assert_int_equal(ffree(f->fs), ff0);
	remount(f);
	assert_int_equal(f->fs->orphans_recovered, 0);
	assert_int_equal(bfree(f->fs), free0 - root_blocks - chain);
}

struct closer {
	struct fs *fs;
	struct inode *ip;
	int ret;
	bool done;
};

static void *close_main(void *arg)
{
	struct closer *c = arg;

	c->ret = namei_release(c->fs, c->ip);
	__atomic_store_n(&c->done, true, __ATOMIC_RELEASE);
	return NULL;
}

static bool closed(void *arg)
{
	return __atomic_load_n(&((struct closer *)arg)->done, __ATOMIC_ACQUIRE);
}

/*
 * The last close of an unlinked file frees its blocks without asking the policy (it cannot wait,
 * even under `wait`): the pinned ones become busy extents, the rest is free at once.
 */
static void test_last_close_of_pinned_orphan(void **state)
{
	struct fixture *f = *state;
	struct mount_config cfg = { .enospc_wait_ms = 1000, .policy = "wait" };
	struct pin_owner o;

	mount_close(f->fs);
	f->fs = fx_mount(f->img.path, &cfg);
	uint64_t free0 = alloc_free_blocks(&f->fs->sbi.alloc);
	struct inode *ip = fx_file(f->fs, "pinned", 32, 0x70);
	uint64_t root_blocks = (uint64_t)stat_of(f->fs, ROOT).st_blocks / (BS / 512);
	pin_owner_init(&o);
	uint64_t id = fx_pin(f->fs, &o, ip, 8 * BS, 8 * BS, DAXFS_PIN_WRITE);
	assert_int_equal(namei_unlink(f->fs, ROOT, "pinned"), 0);
	assert_int_equal(f->fs->orphans.used, 1);
	struct closer c = { f->fs, ip, -1, false };
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, close_main, &c), 0);
	bool done = unit_wait(closed, &c, 5000);
	if (!done)
		policy_release_owner(f->fs, &o);	/* let it finish before failing */
	pthread_join(th, NULL);
	assert_true(done);
	assert_int_equal(c.ret, 0);
	assert_int_equal(f->fs->orphans.used, 0);
	assert_int_equal(fx_busy_blocks(f->fs), 8);
	assert_int_equal(alloc_free_blocks(&f->fs->sbi.alloc), free0 - root_blocks - 8);
	assert_int_equal(policy_unpin(f->fs, &o, id), 0);
	fx_wait_reclaimed(f->fs);
	assert_int_equal(alloc_free_blocks(&f->fs->sbi.alloc), free0 - root_blocks);
	policy_release_owner(f->fs, &o);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_orphans),
		T(test_many_orphans_at_mount),
		T(test_last_close_of_pinned_orphan),
	};

	/* UNIT_FILTER=test_name (cmocka's glob) runs a subset while debugging. */
	if (getenv("UNIT_FILTER"))
		cmocka_set_test_filter(getenv("UNIT_FILTER"));
	return cmocka_run_group_tests_name("orphan", tests, NULL, NULL);
}
