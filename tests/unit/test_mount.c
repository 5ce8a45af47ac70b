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

/* ---- failures, read-only, aborted ---- */

/* Mounts that fail say why, and leave the image as it was: it mounts afterwards. */
static void test_open_errors(void **state)
{
	struct fixture *f = *state;
	struct mount_config cfg = { 0 };
	struct fs *fs;
	char err[256];
	static const struct {
		const char *policy, *params, *trace, *says;
	} bad[] = {
		{ "no-such-policy", NULL, NULL, "unknown policy" },
		{ "busy", "grace_ms=never", NULL, "milliseconds" },
		{ NULL, NULL, "/nonexistent-dir/trace", "trace file" },
	};

	/* Held by the mount of the fixture: a second one is refused. */
	err[0] = 0;
	assert_int_equal(mount_open(&fs, f->img.path, &cfg, err, sizeof(err)), -EBUSY);
	assert_non_null(strstr(err, "in use"));
	mount_close(f->fs);
	f->fs = NULL;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct mount_config c = { .policy = bad[i].policy, .policy_params = bad[i].params, .trace = bad[i].trace };

		err[0] = 0;
		assert_true(mount_open(&fs, f->img.path, &c, err, sizeof(err)) < 0);
		if (!strstr(err, bad[i].says))
			fail_msg("case %zu: \"%s\"", i, err);
	}
	err[0] = 0;
	assert_int_equal(mount_open(&fs, "/nonexistent/daxfs.img", &cfg, err, sizeof(err)), -ENOENT);
	assert_true(err[0] != 0);
	/* Not a daxfs. */
	struct image other;
	image_name(&other, "mount-zeroes");
	image_create(&other, 16 * MiB);
	err[0] = 0;
	int ret = mount_open(&fs, other.path, &cfg, err, sizeof(err));
	image_remove(&other);
	assert_true(ret < 0);
	assert_true(err[0] != 0);
	/* Nothing was left locked or half-done. */
	assert_int_equal(mount_open(&f->fs, f->img.path, &cfg, err, sizeof(err)), 0);
	assert_false(f->fs->sbi.was_dirty);
}

/* A read-only mount reads, changes nothing, and leaves the clean flag alone. */
static void test_readonly(void **state)
{
	struct fixture *f = *state;
	struct mount_config cfg = { .readonly = true };
	struct entry e;
	struct inode *ip;
	char err[256], back[8];

	uint64_t ino = mkfile(f->fs, ROOT, "ro");
	ip = openi(f->fs, ino);
	wr(f->fs, ip, 0, "content", 7);
	closei(f->fs, ip);
	mount_close(f->fs);
	f->fs = NULL;
	assert_int_equal(mount_open(&f->fs, f->img.path, &cfg, err, sizeof(err)), 0);
	assert_int_equal(mount_start(f->fs), 0);
	struct fs *fs = f->fs;
	assert_true(fs->sbi.readonly);
	assert_int_equal(sbi_writable(&fs->sbi), -EROFS);
	assert_int_equal(((struct daxfs_super *)fs->sbi.media.base)->state, DAXFS_STATE_CLEAN);
	assert_int_equal(lookup(fs, ROOT, "ro"), ino);
	assert_int_equal(namei_open(fs, ino, O_RDONLY, &ip, NULL), 0);
	assert_int_equal(rd(fs, ip, 0, back, sizeof(back)), 7);
	assert_memory_equal(back, "content", 7);
	struct iovec iov = { "x", 1 };
	assert_int_equal(file_write(fs, ip, 0, &iov, 1), -EROFS);
	closei(fs, ip);
	assert_int_equal(namei_mknod(fs, &root_cred, ROOT, "new", S_IFREG | 0644, 0, &e), -EROFS);
	assert_int_equal(namei_unlink(fs, ROOT, "ro"), -EROFS);
	struct stat attr = { .st_size = 0 };
	assert_int_equal(namei_setattr(fs, ino, &attr, NAMEI_SET_SIZE, NULL, NULL), -EROFS);
	struct statvfs sv;
	assert_int_equal(namei_statfs(fs, &sv), 0);
	assert_true(sv.f_flag & ST_RDONLY);
	mount_close(fs);
	f->fs = NULL;
	assert_int_equal(mount_open(&f->fs, f->img.path, &(struct mount_config){ 0 }, err, sizeof(err)), 0);
	assert_false(f->fs->sbi.was_dirty);
}

/*
 * A commit that fails aborts the mount: changes are refused with EIO, reads go on, and the unmount
 * leaves the image marked dirty for the next mount (and fsck) to look at.
 */
static void test_aborted(void **state)
{
	struct fixture *f = *state;
	struct fs *fs = f->fs;
	struct capture cap;
	struct entry e;
	struct tx tx;

	uint64_t ino = mkfile(fs, ROOT, "before");
	char *big = calloc(1, 4 * MiB);
	assert_non_null(big);
	capture_begin(&cap);
	tx_init(&tx, &fs->sbi.journal);
	tx_log(&tx, sbi_block_off(&fs->sbi, fs->sbi.sb.data_start), big, 4 * MiB);
	int ret = sbi_commit(&fs->sbi, &tx);
	tx_free(&tx);
	char *said = capture_end(&cap);
	free(big);
	assert_int_equal(ret, -EIO);
	assert_non_null(strstr(said, "read-only"));
	free(said);
	assert_int_equal(namei_mknod(fs, &root_cred, ROOT, "after", S_IFREG | 0644, 0, &e), -EIO);
	assert_int_equal(namei_unlink(fs, ROOT, "before"), -EIO);
	assert_int_equal(lookup(fs, ROOT, "before"), ino);
	remount(f);
	assert_true(f->fs->sbi.was_dirty);
	assert_false(sbi_aborted(&f->fs->sbi));
	assert_int_equal(lookup(f->fs, ROOT, "before"), ino);
	assert_int_equal(namei_mknod(f->fs, &root_cred, ROOT, "after", S_IFREG | 0644, 0, &e), 0);
	forget(f->fs, e.ino);
}

/* ---- unmount with pins; the crash quarantine ---- */

static int setup_unmounted(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	image_name(&f->img, "mount-holders");
	*state = f;
	image_format(&f->img, 64 * MiB, NULL);
	return 0;
}

/*
 * mount_close with pins and busy extents: the pins go, reclaim is drained, nothing is left busy.
 * An owner never released is left what mount.h says: no pins, a DROPPED event per pin for the
 * caller to free with pin_owner_destroy (the ASan build's leak check holds it to that); one
 * released first is left nothing.
 */
static void test_close_with_pins(void **state)
{
	struct fixture *f = *state;
	struct pin_owner o, released;

	f->fs = fx_mount(f->img.path, NULL);
	uint64_t free0 = alloc_free_blocks(&f->fs->sbi.alloc);
	struct inode *ip = fx_file(f->fs, "f", 64, 0x21);
	pin_owner_init(&o);
	pin_owner_init(&released);
	uint64_t id = fx_pin(f->fs, &o, ip, 16 * BS, 16 * BS, 0);	/* a read pin: no holder record */
	uint64_t id2 = fx_pin(f->fs, &o, ip, 40 * BS, 8 * BS, 0);
	fx_pin(f->fs, &released, ip, 0, 8 * BS, 0);
	assert_int_equal(fx_truncate(f->fs, ip->ino, 0, NULL), 0);
	assert_int_equal(fx_busy_blocks(f->fs), 32);
	uint64_t ino = ip->ino;
	namei_release(f->fs, ip);
	assert_int_equal(namei_unlink(f->fs, ROOT, "f"), 0);
	policy_release_owner(f->fs, &released);
	assert_int_equal(released.nevents, 0);
	uint32_t before = o.nevents;
	mount_close(f->fs);	/* the owner was never released: the unmount drops its pins */
	assert_int_equal(o.npins, 0);
	assert_true(TAILQ_EMPTY(&o.pins));
	assert_int_equal(released.npins, 0);
	assert_int_equal(released.nevents, 0);
	/* The events the unmount added: one DROPPED per pin, for the range it pinned. */
	assert_int_equal(o.nevents, before + 2);
	uint64_t seen = 0;
	struct pin_event_rec *ev;
	TAILQ_FOREACH(ev, &o.events, link) {
		if (ev->type != DAXFS_EV_DROPPED)
			continue;
		if (ev->pin_id == id && ev->file_off == 16 * BS && ev->len == 16 * BS)
			seen |= 1;
		else if (ev->pin_id == id2 && ev->file_off == 40 * BS && ev->len == 8 * BS)
			seen |= 2;
		else
			fail_msg("DROPPED event for pin %llu at %llu", (unsigned long long)ev->pin_id,
				 (unsigned long long)ev->file_off);
	}
	assert_int_equal(seen, 3);
	pin_owner_destroy(&o);	/* the owner's to free */
	assert_int_equal(o.nevents, 0);
	assert_true(TAILQ_EMPTY(&o.events));
	f->fs = fx_mount(f->img.path, NULL);
	assert_int_equal(f->fs->busy.nextents, 0);
	assert_int_equal(fx_stats(f->fs).quarantined_blocks, 0);
	assert_int_equal(alloc_free_blocks(&f->fs->sbi.alloc), free0 - 1);	/* the root's new block */
	struct entry e;
	assert_int_equal(namei_lookup(f->fs, ROOT, "f", &e), -ENOENT);
	(void)ino;
}

/*
 * A daemon (a child) mounts, writes "held" (64 blocks), lets `holder` write-pin blocks [16, 32),
 * truncates the file to 8 blocks (16 busy), and dies without unmounting.
 */
static void daemon_dies_with_holder(const char *path, pid_t holder)
{
	int status;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		struct mount_config cfg = { .enospc_wait_ms = 1000 };
		struct fs *fs;
		struct inode *ip;
		struct pin_owner o;
		char err[256];
		static char buf[64 * BS];
		uint64_t id;

		CHILD_CHECK(mount_open(&fs, path, &cfg, err, sizeof(err)) == 0, 2);
		CHILD_CHECK(mount_start(fs) == 0, 3);
		uint64_t ino = child_create(fs, ROOT, "held", S_IFREG | 0644, 4);
		CHILD_CHECK(namei_open(fs, ino, O_RDWR, &ip, NULL) == 0, 5);
		memset(buf, 0x48, sizeof(buf));
		struct iovec iov = { buf, sizeof(buf) };
		CHILD_CHECK(file_write(fs, ip, 0, &iov, 1) == (ssize_t)sizeof(buf), 6);
		pin_owner_init(&o);
		struct policy_pin_args a = { .offset = 16 * BS, .length = 16 * BS, .flags = DAXFS_PIN_WRITE,
					     .pid = holder, .writable = true };
		CHILD_CHECK(policy_pin(fs, &o, ip, &a, NULL, &id) == 0, 7);
		CHILD_CHECK(fs->pol->holders.used == 1, 8);
		struct stat st = { .st_size = 8 * BS };
		CHILD_CHECK(namei_setattr(fs, ino, &st, NAMEI_SET_SIZE, NULL, NULL) == 0, 9);
		CHILD_CHECK(fs->busy.nblocks == 16, 10);
		_exit(0);	/* every commit is durable: this is a crash */
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("the daemon child failed (status %#x)", status);
}

/*
 * The worker ends a quarantine in steps: it lets go of the pins (their blocks then go to the reclaim
 * worker) and then drops the holder's record, which may come after the blocks are reclaimed: over
 * when all of it is seen.
 */
static bool quarantine_over(void *arg)
{
	struct fs *fs = arg;
	struct slotlist *sl = &fs->pol->holders;

	pthread_mutex_lock(&sl->lock);
	uint64_t records = sl->used;
	pthread_mutex_unlock(&sl->lock);
	return fx_stats(fs).quarantined_blocks == 0 && fx_busy_blocks(fs) == 0 && records == 0;
}

/*
 * The holder is alive at the next mount: its file's blocks and the busy extent that left the file
 * stay pinned (quarantined), not reclaimed, until it exits; then they are, and its record goes.
 */
static void test_quarantine_live_holder(void **state)
{
	struct fixture *f = *state;
	struct mount_config cfg = { .enospc_wait_ms = 1000 };
	char err[256];
	int release, status;

	pid_t holder = unit_waiting_child(&release, 0);
	daemon_dies_with_holder(f->img.path, holder);
	assert_int_equal(mount_open(&f->fs, f->img.path, &cfg, err, sizeof(err)), 0);
	struct fs *fs = f->fs;
	assert_true(fs->sbi.was_dirty);
	assert_int_equal(fs->pol->holders.used, 1);
	assert_int_equal(fs->pol->nghosts, 1);
	struct daxfs_ioc_stats st = fx_stats(fs);
	assert_int_equal(st.quarantined_blocks, 8 + 16);	/* the file's 8 blocks and the busy extent */
	assert_int_equal(fs->busy.nextents, 1);
	assert_int_equal(fs->busy.queued_extents, 0);	/* held, not queued for reclaim */
	assert_int_equal(mount_start(fs), 0);
	/* A truncate of the quarantined file makes its blocks busy, not free. */
	uint64_t ino = lookup(fs, ROOT, "held");
	uint64_t free0 = alloc_free_blocks(&fs->sbi.alloc);
	assert_int_equal(fx_truncate(fs, ino, 0, NULL), 0);
	assert_int_equal(fx_busy_blocks(fs), 24);
	assert_int_equal(alloc_free_blocks(&fs->sbi.alloc), free0);
	/* The holder exits: the worker sees its pidfd, the blocks are reclaimed, the record dropped. */
	close(release);
	assert_true(unit_wait(quarantine_over, fs, 10000));
	assert_int_equal(alloc_free_blocks(&fs->sbi.alloc), free0 + 24);
	assert_int_equal(fs->pol->holders.used, 0);
	assert_int_equal(fs->pol->nghosts, 0);
	assert_int_equal(waitpid(holder, &status, 0), holder);
	remount(f);
	assert_int_equal(fx_stats(f->fs).quarantined_blocks, 0);
	assert_int_equal(f->fs->pol->holders.used, 0);
}

/*
 * The mount ends with a holder still quarantined, with an event queued on its pin: the ghost goes,
 * its record stays for the next mount, and its events are freed with it (LeakSanitizer, in the
 * sanitized build, finds them lost otherwise).  The next mount quarantines the holder again.
 */
static void test_unmount_with_quarantine(void **state)
{
	struct fixture *f = *state;
	struct mount_config cfg = { .enospc_wait_ms = 1000 };
	char err[256];
	int release, status;

	pid_t holder = unit_waiting_child(&release, 0);
	daemon_dies_with_holder(f->img.path, holder);
	assert_int_equal(mount_open(&f->fs, f->img.path, &cfg, err, sizeof(err)), 0);
	assert_int_equal(mount_start(f->fs), 0);
	assert_int_equal(f->fs->pol->nghosts, 1);
	struct pin_table *tab = &f->fs->pol->pins;
	lock_take(&tab->lock);
	struct pin *p = pin_first_locked(tab);
	assert_non_null(p);
	assert_true(p->owner->ghost);
	pin_event_locked(tab, p, DAXFS_EV_LEASE_BREAK, p->lblk, p->nblocks, 0, tab->bshift);
	assert_int_equal(p->owner->nevents, 1);
	lock_drop(&tab->lock);
	remount(f);
	assert_int_equal(f->fs->pol->nghosts, 1);
	assert_int_equal(f->fs->pol->holders.used, 1);
	assert_int_equal(fx_stats(f->fs).quarantined_blocks, 8 + 16);
	assert_int_equal(mount_start(f->fs), 0);	/* the worker that watches the holder */
	close(release);
	assert_true(unit_wait(quarantine_over, f->fs, 10000));
	assert_int_equal(waitpid(holder, &status, 0), holder);
}

/* recover=reclaim (reclaim_at_mount): no quarantine, the record dropped, everything reclaimed. */
static void test_reclaim_at_mount(void **state)
{
	struct fixture *f = *state;
	struct mount_config cfg = { .enospc_wait_ms = 1000, .reclaim_at_mount = true };
	int release, status;

	pid_t holder = unit_waiting_child(&release, 0);
	daemon_dies_with_holder(f->img.path, holder);
	f->fs = fx_mount(f->img.path, &cfg);
	assert_int_equal(fx_stats(f->fs).quarantined_blocks, 0);
	assert_int_equal(f->fs->pol->holders.used, 0);
	fx_wait_reclaimed(f->fs);
	close(release);
	assert_int_equal(waitpid(holder, &status, 0), holder);
}

/* A holder already gone at mount: nothing to quarantine, its record dropped. */
static void test_dead_holder(void **state)
{
	struct fixture *f = *state;
	int release, status;

	pid_t holder = unit_waiting_child(&release, 0);
	daemon_dies_with_holder(f->img.path, holder);
	close(release);
	assert_int_equal(waitpid(holder, &status, 0), holder);
	f->fs = fx_mount(f->img.path, NULL);
	assert_int_equal(fx_stats(f->fs).quarantined_blocks, 0);
	assert_int_equal(f->fs->pol->holders.used, 0);
	assert_int_equal(f->fs->pol->nghosts, 0);
	fx_wait_reclaimed(f->fs);
}

/*
 * A clean unmount drops every pin (mount_close: policy_release_all), so no holder can still be
 * writing through the daemon's pins: the holder records of owners not released first go too.  Kept,
 * the next mount quarantined the files of those holders still alive, until they exit, as after a
 * crash.
 */
static void test_clean_unmount_forgets_holders(void **state)
{
	struct fixture *f = *state;
	struct pin_owner o;

	f->fs = fx_mount(f->img.path, NULL);
	struct inode *ip = fx_file(f->fs, "f", 64, 0x21);
	pin_owner_init(&o);
	fx_pin(f->fs, &o, ip, 16 * BS, 16 * BS, DAXFS_PIN_WRITE);	/* this process: alive */
	assert_int_equal(f->fs->pol->holders.used, 1);
	namei_release(f->fs, ip);
	mount_close(f->fs);
	pin_owner_destroy(&o);
	f->fs = fx_mount(f->img.path, NULL);
	assert_false(f->fs->sbi.was_dirty);
	assert_int_equal(f->fs->pol->holders.used, 0);
	assert_int_equal(fx_stats(f->fs).quarantined_blocks, 0);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_mount_fresh),
		cmocka_unit_test_setup_teardown(test_crash_recovery, setup_crash, teardown),
		T(test_open_errors),
		T(test_readonly),
		T(test_aborted),
		cmocka_unit_test_setup_teardown(test_close_with_pins, setup_unmounted, teardown),
		cmocka_unit_test_setup_teardown(test_quarantine_live_holder, setup_unmounted, teardown),
		cmocka_unit_test_setup_teardown(test_unmount_with_quarantine, setup_unmounted, teardown),
		cmocka_unit_test_setup_teardown(test_reclaim_at_mount, setup_unmounted, teardown),
		cmocka_unit_test_setup_teardown(test_dead_holder, setup_unmounted, teardown),
		cmocka_unit_test_setup_teardown(test_clean_unmount_forgets_holders, setup_unmounted, teardown),
	};

	/* UNIT_FILTER=test_name (cmocka's glob) runs a subset while debugging. */
	if (getenv("UNIT_FILTER"))
		cmocka_set_test_filter(getenv("UNIT_FILTER"));
	return cmocka_run_group_tests_name("mount", tests, NULL, NULL);
}
