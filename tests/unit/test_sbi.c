/* SPDX-License-Identifier: MIT */
/*
 * sbi.c: the mounted image below the inode layer.  A commit that fails marks the image aborted:
 * sbi_writable says -EIO from then on (-EROFS on a read-only one), the failure is said once, and
 * nothing of the transaction reaches the media.  Corruption reports go to the report callback (or
 * stderr) and are counted.  Allocation: blocks are the caller's until used in a transaction or
 * given back; freed blocks return to the allocator only when the freeing transaction commits.  The
 * clean flag, open flags (read-only with a journal to replay, no replay, private, shared, the
 * superblock copy).
 */
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

#include "unit_common.h"
#include "sbi.h"

#define IMG (16 * MiB)	/* the smallest journal: 256 KiB */

static int setup(void **state)
{
	struct image *img;

	if (image_setup(state, "sbi"))
		return -1;
	img = *state;
	image_format(img, IMG, NULL);
	return 0;
}

static bool all_bytes_zero(const void *p, size_t n)
{
	const char *c = p;

	for (size_t i = 0; i < n; i++)
		if (c[i])
			return false;
	return true;
}

static void open_ok(struct sbi *s, const struct image *img, int flags)
{
	char err[256] = "";

	if (sbi_open(s, img->path, flags, err, sizeof(err)))
		fail_msg("sbi_open(%#x): %s", flags, err);
}

static void test_open_close(void **state)
{
	struct image *img = *state;
	struct sbi s;

	open_ok(&s, img, 0);
	assert_int_equal(s.bs, 4096);
	assert_int_equal(1u << s.bshift, s.bs);
	assert_int_equal(s.data_blocks, s.sb.backup_sb - s.sb.data_start);
	assert_int_equal(s.replayed, 0);
	assert_false(s.was_dirty);
	assert_false(s.readonly);
	assert_false(sbi_aborted(&s));
	assert_int_equal(s.corruptions, 0);
	assert_int_equal(sbi_writable(&s), 0);
	/* Every data block is free but the heads of the three slot lists (the root has no block yet). */
	assert_int_equal(alloc_free_blocks(&s.alloc), s.data_blocks - 3);
	assert_ptr_equal(sbi_block(&s, 1), s.media.base + s.bs);
	assert_int_equal(sbi_block_off(&s, 3), 3 * s.bs);
	assert_true(sbi_data_block(&s, s.sb.data_start, 1));
	assert_false(sbi_data_block(&s, s.sb.data_start - 1, 1));
	assert_false(sbi_data_block(&s, s.sb.backup_sb - 1, 2));
	assert_false(sbi_data_block(&s, s.sb.data_start, UINT64_MAX));	/* no wrap-around */
	sbi_close(&s);
}

static void test_writable(void **state)
{
	struct sbi s = { 0 };

	(void)state;
	assert_int_equal(sbi_writable(&s), 0);
	s.aborted = true;
	assert_int_equal(sbi_writable(&s), -EIO);
	s.readonly = true;
	assert_int_equal(sbi_writable(&s), -EROFS);	/* read-only says so first */
	s.aborted = false;
	assert_int_equal(sbi_writable(&s), -EROFS);
}

/*
 * A transaction larger than the journal cannot commit: sbi_commit returns -EIO, the image is
 * aborted (no more changes), one message says so, and nothing of it reached the media.
 */
static void test_commit_failure_aborts(void **state)
{
	struct image *img = *state;
	struct sbi s;
	struct tx tx;
	struct capture cap;
	const size_t big = 512 * KiB;
	char *bytes = malloc(big);

	assert_non_null(bytes);
	open_ok(&s, img, 0);
	uint64_t off = sbi_block_off(&s, s.sb.data_start + 100), commits = s.journal.commits;
	memset(bytes, 0xee, big);

	capture_begin(&cap);
	tx_init(&tx, &s.journal);
	tx_log(&tx, off, bytes, big);
	int ret = sbi_commit(&s, &tx);
	tx_free(&tx);
	/* A second failure: still -EIO, no second message. */
	tx_init(&tx, &s.journal);
	tx_log(&tx, off, bytes, big);
	int ret2 = sbi_commit(&s, &tx);
	tx_free(&tx);
	char *said = capture_end(&cap);

	assert_int_equal(ret, -EIO);
	assert_int_equal(ret2, -EIO);
	assert_true(sbi_aborted(&s));
	assert_int_equal(sbi_writable(&s), -EIO);
	assert_int_equal(s.journal.commits, commits);
	assert_true(all_bytes_zero(media_ptr(&s.media, off), big));
	char *line = strstr(said, "read-only");
	if (!line)
		fail_msg("no message about the failed commit: \"%s\"", said);
	assert_null(strstr(line + 1, "read-only"));
	free(said);
	sbi_close(&s);

	/* The next open starts afresh. */
	open_ok(&s, img, 0);
	assert_false(sbi_aborted(&s));
	assert_int_equal(sbi_writable(&s), 0);
	assert_true(all_bytes_zero(media_ptr(&s.media, off), big));
	sbi_close(&s);
	free(bytes);
}

/*
 * Once a commit has failed the image must not change any more (sbi.h: like errors=remount-ro).
 * The namespace checks sbi_writable first, but other committers (the reclaim worker, the holder
 * list) rely on sbi_commit itself refusing: even a small transaction that would fit fails with
 * -EIO and nothing of it reaches the media.
 */
static void test_no_commit_after_abort(void **state)
{
	struct image *img = *state;
	struct capture cap;
	struct sbi s;
	struct tx tx;
	uint64_t v = 0x1234;

	char *big = calloc(1, 512 * KiB);
	assert_non_null(big);
	open_ok(&s, img, 0);
	uint64_t off = sbi_block_off(&s, s.sb.data_start + 100);
	capture_begin(&cap);
	tx_init(&tx, &s.journal);
	tx_log(&tx, off, big, 512 * KiB);
	int ret = sbi_commit(&s, &tx);
	tx_free(&tx);
	free(capture_end(&cap));
	assert_int_equal(ret, -EIO);
	uint64_t commits = s.journal.commits;
	tx_init(&tx, &s.journal);
	tx_log(&tx, off, &v, sizeof(v));
	ret = sbi_commit(&s, &tx);
	tx_free(&tx);
	uint64_t on_media = *(uint64_t *)media_ptr(&s.media, off), commits_after = s.journal.commits;
	sbi_close(&s);
	free(big);
	print_message("after the abort: sbi_commit %d, %llu more commits, %#llx on the media\n", ret,
		      (unsigned long long)(commits_after - commits), (unsigned long long)on_media);
	assert_int_equal(ret, -EIO);
	assert_int_equal(commits_after, commits);
	assert_int_equal(on_media, 0);
}

static void test_corrupt_reports(void **state)
{
	struct image *img = *state;
	struct unit_reports r = { 0 };
	struct capture cap;
	struct sbi s;

	open_ok(&s, img, 0);
	/* To stderr, with the image and advice, when nobody collects them. */
	capture_begin(&cap);
	sbi_corrupt(&s, "inode %d: bad %s", 42, "checksum");
	char *said = capture_end(&cap);
	assert_non_null(strstr(said, img->path));
	assert_non_null(strstr(said, "inode 42: bad checksum"));
	assert_non_null(strstr(said, "fsck"));
	free(said);
	assert_int_equal(s.corruptions, 1);
	/* To the callback (the checker), formatted, and nothing on stderr. */
	s.report = unit_report;
	s.report_arg = &r;
	capture_begin(&cap);
	sbi_corrupt(&s, "block %llu: %s", 1234ull, "torn");
	sbi_corrupt(&s, "%s", "second");
	said = capture_end(&cap);
	assert_string_equal(said, "");
	free(said);
	assert_int_equal(r.n, 2);
	assert_string_equal(r.last, "second");
	assert_int_equal(s.corruptions, 3);
	/* Reports do not stop changes: the operation that found it fails, the image stays writable. */
	assert_int_equal(sbi_writable(&s), 0);
	sbi_close(&s);
}

/* Blocks are the caller's until used or given back; freed ones come back when the free commits. */
static void test_alloc_use_free(void **state)
{
	struct image *img = *state;
	struct alloc_req req = { .want = 10 };
	uint64_t start, len, start2, len2;
	struct sbi s;
	struct tx tx;

	open_ok(&s, img, 0);
	uint64_t free0 = alloc_free_blocks(&s.alloc);
	assert_int_equal(sbi_alloc(&s, &req, &start, &len), 0);
	assert_int_equal(len, 10);
	assert_true(sbi_data_block(&s, start, len));
	assert_int_equal(alloc_free_blocks(&s.alloc), free0 - 10);
	assert_false(journal_bitmap_test(&s.bbm, start));	/* allocated, not yet used */
	/* Given back unused: at once. */
	assert_int_equal(sbi_alloc(&s, &req, &start2, &len2), 0);
	sbi_unalloc(&s, start2, len2);
	assert_int_equal(alloc_free_blocks(&s.alloc), free0 - 10);

	tx_init(&tx, &s.journal);
	sbi_use(&s, &tx, start, len);
	assert_false(journal_bitmap_test(&s.bbm, start));	/* at commit */
	assert_int_equal(sbi_commit(&s, &tx), 0);
	assert_true(journal_bitmap_all_set(&s.bbm, start, len));
	sbi_close(&s);

	/* Used blocks stay used across an open; the allocator does not offer them. */
	open_ok(&s, img, 0);
	assert_int_equal(alloc_free_blocks(&s.alloc), free0 - 10);
	assert_true(journal_bitmap_all_set(&s.bbm, start, len));
	tx_init(&tx, &s.journal);
	sbi_free(&s, &tx, start, 4);
	assert_int_equal(alloc_free_blocks(&s.alloc), free0 - 10);	/* not before the commit */
	assert_true(journal_bitmap_test(&s.bbm, start));
	assert_int_equal(sbi_commit(&s, &tx), 0);
	assert_int_equal(alloc_free_blocks(&s.alloc), free0 - 6);
	assert_false(journal_bitmap_test(&s.bbm, start));
	assert_true(journal_bitmap_all_set(&s.bbm, start + 4, 6));
	/* A free abandoned with its transaction never happens. */
	tx_init(&tx, &s.journal);
	sbi_free(&s, &tx, start + 4, 6);
	tx_free(&tx);
	assert_int_equal(alloc_free_blocks(&s.alloc), free0 - 6);
	assert_true(journal_bitmap_all_set(&s.bbm, start + 4, 6));
	sbi_close(&s);
}

static void test_clean_flag(void **state)
{
	struct image *img = *state;
	struct sbi s;

	open_ok(&s, img, 0);
	uint32_t mounts = s.sb.mount_count;
	sbi_set_state(&s, DAXFS_STATE_DIRTY);
	sbi_close(&s);
	open_ok(&s, img, 0);
	assert_true(s.was_dirty);
	assert_int_equal(s.sb.state, DAXFS_STATE_DIRTY);
	assert_int_equal(s.sb.mount_count, mounts + 1);
	sbi_set_state(&s, DAXFS_STATE_CLEAN);
	sbi_close(&s);
	open_ok(&s, img, 0);
	assert_false(s.was_dirty);
	assert_int_equal(s.sb.mount_count, mounts + 1);	/* counted when mounted, not when cleaned */
	sbi_close(&s);
}

/* The label in the superblock, changed by a committed transaction. */
static void set_label(struct sbi *s, const char *label)
{
	struct daxfs_super sb = s->sb;
	struct tx tx;

	memset(sb.label, 0, sizeof(sb.label));
	snprintf(sb.label, sizeof(sb.label), "%s", label);
	super_seal(&sb);
	tx_init(&tx, &s->journal);
	tx_log(&tx, 0, &sb, sizeof(sb));
	assert_int_equal(sbi_commit(s, &tx), 0);
}

/* A child that sets the label and dies at its n-th drain after opening: 0 if it lived. */
static int label_crash(const struct image *img, int n)
{
	int status;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		struct sbi s;
		char err[256], num[16];

		snprintf(num, sizeof(num), "%d", n);
		setenv("DAXFS_CRASH_AT", num, 1);
		if (sbi_open(&s, img->path, 0, err, sizeof(err)))
			_exit(2);
		struct daxfs_super sb = s.sb;
		memset(sb.label, 0, sizeof(sb.label));
		snprintf(sb.label, sizeof(sb.label), "%s", "replayed");
		super_seal(&sb);
		struct tx tx;
		tx_init(&tx, &s.journal);
		tx_log(&tx, 0, &sb, sizeof(sb));
		if (sbi_commit(&s, &tx))
			_exit(3);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
		return 1;
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	return 0;
}

/*
 * An image whose journal holds a committed transaction (the writer died before applying it): a
 * read-only open refuses it, SBI_NOREPLAY leaves it alone, a normal open replays it.
 */
static void test_journal_to_replay(void **state)
{
	struct image *img = *state;
	char err[256] = "";
	struct sbi s;
	int n, found = 0;

	for (n = 1; n < 10 && !found; n++) {
		image_format(img, IMG, NULL);
		if (!label_crash(img, n))
			break;
		err[0] = 0;
		int ret = sbi_open(&s, img->path, SBI_RDONLY, err, sizeof(err));
		if (ret == 0) {
			sbi_close(&s);
			continue;
		}
		assert_int_equal(ret, -EROFS);
		assert_non_null(strstr(err, "replay"));
		found = n;
	}
	if (!found)
		fail_msg("no crash point left a transaction to replay");
	print_message("the transaction is committed but not applied at drain %d\n", found);
	open_ok(&s, img, SBI_NOREPLAY | SBI_RDONLY);
	assert_int_equal(s.replayed, 0);
	assert_string_not_equal(s.sb.label, "replayed");
	assert_true(s.media.readonly);
	sbi_close(&s);
	open_ok(&s, img, 0);
	assert_true(s.replayed > 0);
	assert_string_equal(s.sb.label, "replayed");
	sbi_close(&s);
	/* Replayed and emptied: read-only is fine now. */
	open_ok(&s, img, SBI_RDONLY);
	assert_int_equal(s.replayed, 0);
	assert_string_equal(s.sb.label, "replayed");
	sbi_close(&s);
}

/* Private opens change nothing on the image; shared ones coexist with a private reader only. */
static void test_private_and_shared(void **state)
{
	struct image *img = *state;
	struct sbi a, b;
	char err[256];

	open_ok(&a, img, SBI_PRIVATE);
	assert_true(a.media.private_map);
	set_label(&a, "private");
	assert_string_equal(((struct daxfs_super *)a.media.base)->label, "private");
	sbi_close(&a);
	open_ok(&a, img, 0);
	assert_string_not_equal(a.sb.label, "private");
	/* Held (a daemon): a second exclusive or shared open is refused, a private shared one allowed. */
	assert_int_equal(sbi_open(&b, img->path, 0, err, sizeof(err)), -EBUSY);
	assert_int_equal(sbi_open(&b, img->path, SBI_SHARED, err, sizeof(err)), -EBUSY);
	open_ok(&b, img, SBI_SHARED | SBI_PRIVATE | SBI_NOREPLAY);
	assert_true(b.media.in_use);
	sbi_close(&b);
	sbi_close(&a);
}

/* XOR a byte of the primary superblock's label, without resealing it. */
static void damage_primary(struct sbi *s)
{
	struct daxfs_super *sb = (struct daxfs_super *)s->media.base;

	sb->label[0] ^= 0x20;
	media_persist(&s->media, sb, sizeof(*sb));
}

/*
 * A damaged primary superblock.  While the journal still holds the transaction that last wrote it
 * (a crash mid-write), a plain open repairs it by replay.  Once the journal is empty (a clean
 * unmount) it is refused, unless the copy in the last block is asked for.
 */
static void test_backup_superblock(void **state)
{
	struct image *img = *state;
	char err[256] = "";
	struct sbi s;

	open_ok(&s, img, 0);
	set_label(&s, "mine");
	damage_primary(&s);
	sbi_close(&s);
	open_ok(&s, img, 0);
	assert_true(s.replayed > 0);
	assert_string_equal(s.sb.label, "mine");

	sbi_set_state(&s, DAXFS_STATE_CLEAN);	/* empties the journal */
	damage_primary(&s);
	struct daxfs_super copy;
	assert_int_equal(sbi_find_backup(&s.media, &copy), 0);
	assert_int_equal(copy.block_size, s.bs);
	assert_int_equal(copy.nblocks, s.sb.nblocks);
	sbi_close(&s);

	assert_int_equal(sbi_open(&s, img->path, 0, err, sizeof(err)), -EUCLEAN);
	assert_true(err[0] != 0);
	assert_int_equal(sbi_open(&s, img->path, SBI_BACKUP_SB | SBI_RDONLY, err, sizeof(err)), -EUCLEAN);
	assert_non_null(strstr(err, "copy"));
	open_ok(&s, img, SBI_BACKUP_SB);
	sbi_close(&s);
	/* The copy was written over the primary: it opens plainly now. */
	open_ok(&s, img, 0);
	sbi_close(&s);

	/* An image with no valid copy anywhere. */
	struct media m;
	image_create(img, IMG);
	assert_int_equal(media_open(&m, img->path, 0, err, sizeof(err)), 0);
	assert_int_equal(sbi_find_backup(&m, &copy), -ENOENT);
	media_close(&m);
}

struct aborter {
	struct sbi *s;
	pthread_barrier_t *go;
	int writable_after;
};

static void *aborter_main(void *arg)
{
	struct aborter *a = arg;

	pthread_barrier_wait(a->go);
	sbi_abort(a->s, "test abort");
	a->writable_after = sbi_writable(a->s);
	return NULL;
}

/*
 * sbi_abort from several threads at once, as the namespace aborts on a failure a commit does not
 * see: one message in all, and every thread sees the image aborted once its call has returned.
 * (The namespace used to set the flag with a plain store, racing the atomic reads of committers on
 * other threads, and without a word on standard error.)
 */
static void test_abort_from_threads(void **state)
{
	struct image *img = *state;
	struct aborter a[4];
	pthread_t th[4];
	pthread_barrier_t go;
	struct capture cap;
	struct sbi s;

	open_ok(&s, img, 0);
	assert_false(sbi_aborted(&s));
	assert_int_equal(pthread_barrier_init(&go, NULL, 4), 0);
	capture_begin(&cap);
	for (int i = 0; i < 4; i++) {
		a[i] = (struct aborter){ .s = &s, .go = &go };
		assert_int_equal(pthread_create(&th[i], NULL, aborter_main, &a[i]), 0);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	char *said = capture_end(&cap);
	pthread_barrier_destroy(&go);
	for (int i = 0; i < 4; i++)
		assert_int_equal(a[i].writable_after, -EIO);
	assert_true(sbi_aborted(&s));
	char *line = strstr(said, "daxfs: test abort; the file system is now read-only");
	if (!line)
		fail_msg("no message about the abort: \"%s\"", said);
	assert_null(strstr(line + strlen("daxfs: test abort"), "test abort"));
	free(said);
	sbi_close(&s);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, image_teardown)
	const struct CMUnitTest tests[] = {
		T(test_open_close),
		cmocka_unit_test(test_writable),
		T(test_commit_failure_aborts),
		T(test_no_commit_after_abort),
		T(test_abort_from_threads),
		T(test_corrupt_reports),
		T(test_alloc_use_free),
		T(test_clean_flag),
		T(test_journal_to_replay),
		T(test_private_and_shared),
		T(test_backup_superblock),
	};

	if (getenv("UNIT_FILTER"))
		cmocka_set_test_filter(getenv("UNIT_FILTER"));
	return cmocka_run_group_tests_name("sbi", tests, NULL, NULL);
}
