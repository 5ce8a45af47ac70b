/* SPDX-License-Identifier: MIT */
/*
 * inode.c: the inode cache and inode numbers.  The root stays cached for the life of the mount (FUSE
 * never looks it up); inodes leave DRAM when nothing refers to them; an unlinked inode keeps its
 * number until the kernel forgets it; lookups of numbers not in use are ESTALE; a corrupt inode
 * record is EIO and reported; running out of inodes is ENOSPC; lazy timestamps reach the media.
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

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_root_dir_stays_cached),
	};

	/* UNIT_FILTER=test_name (cmocka's glob) runs a subset while debugging. */
	if (getenv("UNIT_FILTER"))
		cmocka_set_test_filter(getenv("UNIT_FILTER"));
	return cmocka_run_group_tests_name("inode", tests, NULL, NULL);
}
