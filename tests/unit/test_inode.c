/* SPDX-License-Identifier: MIT */
/*
 * inode.c: the inode cache and inode numbers.  The root stays cached for the life of the mount (FUSE
 * never looks it up); inodes leave DRAM when nothing refers to them (references, lookups, opens);
 * an unlinked inode keeps its number until the kernel forgets it, and new inodes get new
 * generations; numbers not in use are ESTALE; a corrupt record is EIO and reported; running out of
 * inodes is ENOSPC; owners and setgid directories; lazy timestamps reach the media when written
 * back; the cache grows.
 */
#include <pthread.h>

#include "fs_fixture.h"

static bool cached(struct fs *fs, uint64_t ino)
{
	bool found = false;

	pthread_mutex_lock(&fs->icache_lock);
	for (size_t b = 0; b < fs->nbuckets && !found; b++)
		for (struct inode *ip = fs->buckets[b]; ip; ip = ip->hnext)
			found |= ip->ino == ino;
	pthread_mutex_unlock(&fs->icache_lock);
	return found;
}

/*
 * FUSE never sends a LOOKUP for the root (node id 1), so nothing holds a lookup reference on it.
 * If the root inode is dropped from DRAM when an operation ends, every operation in the root
 * directory reloads and re-checksums all of it: creating n files there costs O(n^2).  (An
 * unreferenced 20k-entry directory took 52 s to fill here; a referenced one 0.12 s.)
 */
static void test_root_dir_stays_cached(void **state)
{
	struct fixture *f = *state;

	mkfile(f->fs, ROOT, "a");
	assert_int_equal(stat_of(f->fs, ROOT).st_nlink, 2);
	if (!cached(f->fs, ROOT))
		fail_msg("the root directory was evicted once its operation ended (%zu inodes cached)",
			 f->fs->ncached);
}

/* Numbers not in use, or out of range, are ESTALE; references keep an inode cached. */
static void test_get_and_put(void **state)
{
	struct fixture *f = *state;
	struct fs *fs = f->fs;
	struct inode *ip, *ip2;

	assert_int_equal(inode_get(fs, 0, &ip), -ESTALE);
	assert_int_equal(inode_get(fs, fs->sbi.sb.ninodes + 1, &ip), -ESTALE);
	assert_int_equal(inode_get(fs, 500, &ip), -ESTALE);	/* free */
	assert_int_equal(inode_read(fs, 500, &ip), -ESTALE);
	assert_int_equal(inode_read(fs, 0, &ip), -ESTALE);

	uint64_t ino = mkfile(fs, ROOT, "a");	/* mkfile forgets it: nothing holds it */
	assert_false(cached(fs, ino));
	assert_int_equal(inode_get(fs, ino, &ip), 0);
	assert_true(cached(fs, ino));
	assert_int_equal(ip->refs, 1);
	assert_int_equal(inode_get(fs, ino, &ip2), 0);
	assert_ptr_equal(ip, ip2);	/* one inode in DRAM per number */
	assert_int_equal(ip->refs, 2);
	inode_hold(fs, ip);
	assert_int_equal(ip->refs, 3);
	inode_put(fs, ip);
	inode_put(fs, ip);
	assert_true(cached(fs, ino));
	inode_put(fs, ip);
	assert_false(cached(fs, ino));
	inode_put(fs, NULL);	/* nothing */

	/* A lookup reference keeps it until forgotten; so does an open file. */
	struct entry e;
	assert_int_equal(namei_lookup(fs, ROOT, "a", &e), 0);
	assert_true(cached(fs, ino));
	inode_forget(fs, ino, 1);
	assert_false(cached(fs, ino));
	ip = openi(fs, ino);
	assert_true(cached(fs, ino));
	closei(fs, ip);
	assert_false(cached(fs, ino));
	/* Forgetting more than was looked up, or an inode not cached, is harmless. */
	assert_int_equal(namei_lookup(fs, ROOT, "a", &e), 0);
	inode_forget(fs, ino, 5);
	assert_false(cached(fs, ino));
	inode_forget(fs, ino, 1);
	/* inode_read gives a private copy, outside the cache. */
	assert_int_equal(inode_read(fs, ino, &ip), 0);
	assert_false(cached(fs, ino));
	assert_int_equal(ip->ino, ino);
	assert_true(S_ISREG(ip->d.mode));
	inode_free(ip);
}

/*
 * An unlinked inode is freed on the media at once (not open), but its number stays taken while the
 * kernel still holds a lookup reference: a new file never gets a number the kernel may still use
 * for the old one.  Once forgotten, the number is free; a new inode always has a new generation.
 */
static void test_number_kept_until_forgotten(void **state)
{
	struct fixture *f = *state;
	struct fs *fs = f->fs;
	struct entry a, b;

	assert_int_equal(namei_mknod(fs, &root_cred, ROOT, "a", S_IFREG | 0644, 0, &a), 0);	/* referenced */
	uint64_t taken = fs->ino_taken, ff = ffree(fs);
	assert_int_equal(namei_unlink(fs, ROOT, "a"), 0);
	assert_false(journal_bitmap_test(&fs->sbi.ibm, a.ino - 1));	/* free on the media */
	assert_int_equal(fs->ino_taken, taken);		/* but not to be handed out */
	assert_int_equal(ffree(fs), ff);		/* nor counted as free */
	for (int i = 0; i < 100; i++) {
		char name[16];

		snprintf(name, sizeof(name), "n%d", i);
		assert_int_equal(namei_mknod(fs, &root_cred, ROOT, name, S_IFREG | 0644, 0, &b), 0);
		forget(fs, b.ino);
		if (b.ino == a.ino)
			fail_msg("inode %llu handed out again while the kernel still knows it",
				 (unsigned long long)a.ino);
	}
	taken = fs->ino_taken;
	forget(fs, a.ino);
	assert_int_equal(fs->ino_taken, taken - 1);
	assert_int_equal(ffree(fs), ff - 100 + 1);
	bool reused = false;
	for (int i = 0; i < 200 && !reused; i++) {
		char name[16];

		snprintf(name, sizeof(name), "m%d", i);
		assert_int_equal(namei_mknod(fs, &root_cred, ROOT, name, S_IFREG | 0644, 0, &b), 0);
		forget(fs, b.ino);
		assert_true(b.generation != a.generation);
		reused = b.ino == a.ino;
	}
	print_message("inode %llu %s\n", (unsigned long long)a.ino, reused ? "reused, with a new generation"
									   : "not reused within 200 creates");
}

/* A damaged inode record: EIO when loaded, reported as corruption, and the rest goes on. */
static void test_corrupt_record(void **state)
{
	struct fixture *f = *state;
	struct fs *fs = f->fs;
	struct unit_reports r = { 0 };
	struct inode *ip;
	struct entry e;
	char want[64];

	uint64_t ino = mkfile(fs, ROOT, "victim");
	uint64_t other = mkfile(fs, ROOT, "other");
	assert_false(cached(fs, ino));
	struct daxfs_inode *di = media_ptr(fs_media(fs), sbi_block_off(&fs->sbi, fs->sbi.sb.itable_start) +
							   (ino - 1) * DAXFS_INODE_SIZE);
	di->uid ^= 1;
	media_persist(fs_media(fs), di, sizeof(*di));
	fs->sbi.report = unit_report;
	fs->sbi.report_arg = &r;
	assert_int_equal(inode_get(fs, ino, &ip), -EIO);
	assert_int_equal(namei_lookup(fs, ROOT, "victim", &e), -EIO);
	assert_int_equal(inode_read(fs, ino, &ip), -EIO);
	assert_int_equal(r.n, 3);
	assert_int_equal(fs->sbi.corruptions, 3);
	snprintf(want, sizeof(want), "inode %llu", (unsigned long long)ino);
	assert_non_null(strstr(r.last, want));
	assert_int_equal(lookup(fs, ROOT, "other"), other);
	assert_int_equal(sbi_writable(&fs->sbi), 0);
	/* Put back, it loads again. */
	di->uid ^= 1;
	media_persist(fs_media(fs), di, sizeof(*di));
	assert_int_equal(inode_get(fs, ino, &ip), 0);
	inode_put(fs, ip);
	fs->sbi.report = NULL;
}

static int setup_few_inodes(void **state)
{
	return mount_fixture(state, "inode-few", 16 * MiB, &(struct mkfs_params){ .ninodes = 64 });
}

/* Running out of inodes: ENOSPC, nothing half-made, and a freed number makes room again. */
static void test_out_of_inodes(void **state)
{
	struct fixture *f = *state;
	struct fs *fs = f->fs;
	struct entry e;
	char name[16];
	int n = 0;

	assert_int_equal(fs->sbi.sb.ninodes, 64);
	for (;; n++) {
		snprintf(name, sizeof(name), "f%d", n);
		int ret = namei_mknod(fs, &root_cred, ROOT, name, S_IFREG | 0644, 0, &e);

		if (ret == -ENOSPC)
			break;
		assert_int_equal(ret, 0);
		forget(fs, e.ino);
		assert_true(n < 64);
	}
	assert_int_equal(n, 63);	/* all but the root */
	assert_int_equal(ffree(fs), 0);
	assert_int_equal(namei_lookup(fs, ROOT, name, &e), -ENOENT);	/* the failed name is not there */
	assert_int_equal(namei_mkdir(fs, &root_cred, ROOT, "d", 0755, &e), -ENOSPC);
	assert_int_equal(namei_symlink(fs, &root_cred, ROOT, "s", "t", &e), -ENOSPC);
	assert_int_equal(namei_unlink(fs, ROOT, "f7"), 0);
	assert_int_equal(namei_mknod(fs, &root_cred, ROOT, name, S_IFREG | 0644, 0, &e), 0);
	forget(fs, e.ino);
	remount(f);
	assert_int_equal(ffree(f->fs), 0);
}

/* New inodes: the caller's owner, or in a setgid directory its group (and the bit for directories). */
static void test_create_owner(void **state)
{
	struct fixture *f = *state;
	struct fs *fs = f->fs;
	const struct cred user = { .uid = 1000, .gid = 100 };
	struct entry e;

	assert_int_equal(namei_mknod(fs, &user, ROOT, "plain", S_IFREG | 0640, 0, &e), 0);
	forget(fs, e.ino);
	assert_int_equal(e.st.st_uid, 1000);
	assert_int_equal(e.st.st_gid, 100);
	assert_int_equal(e.st.st_nlink, 1);
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	assert_true(e.st.st_mtim.tv_sec <= now.tv_sec && e.st.st_mtim.tv_sec >= now.tv_sec - 5);
	assert_int_equal(e.st.st_ctim.tv_sec, e.st.st_mtim.tv_sec);
	uint64_t d = mkdir_(fs, ROOT, "sgid");
	struct stat attr = { .st_mode = 02775, .st_gid = 7 };
	assert_int_equal(namei_setattr(fs, d, &attr, NAMEI_SET_MODE | NAMEI_SET_GID, NULL, NULL), 0);
	assert_int_equal(namei_mknod(fs, &user, d, "file", S_IFREG | 0644, 0, &e), 0);
	forget(fs, e.ino);
	assert_int_equal(e.st.st_gid, 7);
	assert_int_equal(e.st.st_mode, S_IFREG | 0644);
	assert_int_equal(namei_mkdir(fs, &user, d, "sub", 0755, &e), 0);
	assert_int_equal(e.st.st_gid, 7);
	assert_int_equal(e.st.st_mode, S_IFDIR | S_ISGID | 0755);
	assert_int_equal(e.st.st_nlink, 2);
	remount(f);
	assert_int_equal(stat_of(f->fs, e.ino).st_mode, S_IFDIR | S_ISGID | 0755);
}

/*
 * Lazy timestamps: a read updates atime in DRAM only (relatime), and it reaches the media when the
 * inode is written back (the kernel forgets it, fsync, unmount); inode_sync writes it at once.
 */
static void test_lazy_times(void **state)
{
	struct fixture *f = *state;
	struct fs *fs = f->fs;
	char buf[4];

	uint64_t ino = mkfile(fs, ROOT, "t");
	struct inode *ip = openi(fs, ino);
	wr(fs, ip, 0, "abcd", 4);
	struct stat attr = { .st_atim = { 1000, 1 } };
	assert_int_equal(namei_setattr(fs, ino, &attr, NAMEI_SET_ATIME, NULL, NULL), 0);
	const struct daxfs_inode *di = media_ptr(fs_media(fs), sbi_block_off(&fs->sbi, fs->sbi.sb.itable_start) +
								 (ino - 1) * DAXFS_INODE_SIZE);
	assert_int_equal(di->atime_sec, 1000);
	assert_int_equal(rd(fs, ip, 0, buf, 4), 4);
	assert_true(ip->times_dirty);
	assert_true(stat_of(fs, ino).st_atim.tv_sec > 1000);	/* what stat says */
	assert_int_equal(di->atime_sec, 1000);			/* not yet on the media */
	assert_int_equal(inode_sync(fs, ip), 0);
	assert_false(ip->times_dirty);
	assert_true(di->atime_sec > 1000);
	/* A second read does not write again (relatime: atime is after mtime now). */
	assert_int_equal(rd(fs, ip, 0, buf, 4), 4);
	assert_false(ip->times_dirty);
	/* inode_touch marks, the last close and forget write back. */
	pthread_rwlock_wrlock(&ip->lock);
	inode_touch(ip, T_MTIME);
	int64_t mtime = ip->d.mtime_sec;
	uint32_t mtime_ns = ip->d.mtime_nsec;
	pthread_rwlock_unlock(&ip->lock);
	assert_true(ip->times_dirty);
	closei(fs, ip);
	assert_false(cached(fs, ino));
	assert_int_equal(di->mtime_sec, mtime);
	assert_int_equal(di->mtime_nsec, mtime_ns);
	/* Nothing is written for a read-only or aborted file system. */
	ip = openi(fs, ino);
	pthread_rwlock_wrlock(&ip->lock);
	inode_touch(ip, T_CTIME);
	pthread_rwlock_unlock(&ip->lock);
	fs->sbi.readonly = true;
	uint64_t commits = fs->sbi.journal.commits;
	assert_int_equal(inode_sync(fs, ip), 0);
	assert_int_equal(fs->sbi.journal.commits, commits);
	assert_true(ip->times_dirty);
	fs->sbi.readonly = false;
	closei(fs, ip);
}

/* The cache grows its hash table as it fills, and every inode stays findable. */
static void test_cache_grows(void **state)
{
	struct fixture *f = *state;
	struct fs *fs = f->fs;
	const int n = 5000;
	uint64_t *ino = calloc(n, sizeof(*ino));
	struct entry e;
	char name[16];

	assert_non_null(ino);
	size_t buckets0 = fs->nbuckets;
	for (int i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "c%d", i);
		assert_int_equal(namei_mknod(fs, &root_cred, ROOT, name, S_IFREG | 0644, 0, &e), 0);
		ino[i] = e.ino;	/* the lookup reference is kept: all stay cached */
	}
	assert_true(fs->ncached >= (size_t)n);
	assert_true(fs->nbuckets > buckets0);
	for (int i = 0; i < n; i += 97)
		assert_true(cached(fs, ino[i]));
	for (int i = 0; i < n; i++) {
		struct stat st = stat_of(fs, ino[i]);

		assert_int_equal(st.st_ino, ino[i]);
		forget(fs, ino[i]);
	}
	assert_true(fs->ncached < 10);
	free(ino);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_root_dir_stays_cached),
		T(test_get_and_put),
		T(test_number_kept_until_forgotten),
		T(test_corrupt_record),
		cmocka_unit_test_setup_teardown(test_out_of_inodes, setup_few_inodes, teardown),
		T(test_create_owner),
		T(test_lazy_times),
		T(test_cache_grows),
	};

	/* UNIT_FILTER=test_name (cmocka's glob) runs a subset while debugging. */
	if (getenv("UNIT_FILTER"))
		cmocka_set_test_filter(getenv("UNIT_FILTER"));
	return cmocka_run_group_tests_name("inode", tests, NULL, NULL);
}
