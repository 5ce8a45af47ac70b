/* SPDX-License-Identifier: MIT */
/*
 * reclaim.c: the reclaim worker and reclaim_alloc, on a mounted file system (test_busy covers the
 * zeroing path and reclaim at mount).  reclaim=discard punches the extents out of the image file;
 * the statistics and trace records of a reclaim; a full device whose space live pins hold is ENOSPC
 * at once, one with reclaim in flight waits for it up to enospc_wait_ms; a reclaim that cannot
 * commit leaves its extents busy; reclaim_stop drains what is queued.
 */
#include <pthread.h>
#include <sys/stat.h>

#include "fs_fixture.h"
#include "jsonl.h"

struct rfix {
	struct image img, trace;
	struct fs *fs;
	struct pin_owner o;
};

static int rfix_setup(void **state)
{
	struct rfix *x = calloc(1, sizeof(*x));

	if (!x)
		return -1;
	image_name(&x->img, "reclaim");
	image_name(&x->trace, "reclaim-trace");
	pin_owner_init(&x->o);
	*state = x;
	return 0;
}

static int rfix_teardown(void **state)
{
	struct rfix *x = *state;

	if (x->fs) {
		policy_release_owner(x->fs, &x->o);
		mount_close(x->fs);
	}
	image_remove(&x->img);
	image_remove(&x->trace);
	free(x);
	return 0;
}

/* A file of `blocks` blocks with a read pin on [0, pinned) truncated to 0: `pinned` blocks busy. */
static uint64_t make_busy(struct rfix *x, const char *name, uint64_t blocks, uint64_t pinned, uint64_t *media)
{
	struct inode *ip = fx_file(x->fs, name, blocks, 0x99);
	uint64_t id = fx_pin(x->fs, &x->o, ip, 0, pinned * BS, 0);

	if (media)
		*media = fx_pin_media(x->fs, &x->o, id);
	assert_int_equal(fx_truncate(x->fs, ip->ino, 0, NULL), 0);
	namei_release(x->fs, ip);
	return id;
}

static uint64_t image_bytes_allocated(const struct image *img)
{
	struct stat st;

	assert_int_equal(stat(img->path, &st), 0);
	return (uint64_t)st.st_blocks * 512;
}

/* reclaim=discard: the blocks are punched out of the image (and read as zeroes). */
static void test_discard(void **state)
{
	struct rfix *x = *state;
	struct mount_config cfg = { .enospc_wait_ms = 1000, .reclaim_discard = true };
	uint64_t media;

	image_format(&x->img, 64 * MiB, NULL);
	x->fs = fx_mount(x->img.path, &cfg);
	if (!x->fs->reclaim.discard) {
		print_message("io_uring unavailable: reclaim zeroes instead, nothing to check here\n");
		skip();
	}
	uint64_t id = make_busy(x, "f", 512, 512, &media);
	assert_int_equal(fx_busy_blocks(x->fs), 512);
	uint64_t before = image_bytes_allocated(&x->img);
	assert_int_equal(policy_unpin(x->fs, &x->o, id), 0);
	fx_wait_reclaimed(x->fs);
	uint64_t after = image_bytes_allocated(&x->img);
	print_message("image: %llu KiB allocated before the reclaim, %llu after\n", (unsigned long long)before >> 10,
		      (unsigned long long)after >> 10);
	assert_true(before - after >= 512 * BS);
	assert_int_equal(x->fs->reclaim.discard_errors, 0);
	assert_int_equal(x->fs->reclaim.extents, 1);
	assert_int_equal(x->fs->reclaim.blocks, 512);
	const char *p = media_ptr(fs_media(x->fs), media);
	for (uint64_t i = 0; i < 512 * BS; i += 512)
		assert_int_equal(p[i], 0);
}

static bool queue_empty(void *arg)
{
	struct fs *fs = arg;

	lock_take(&fs->busy.lock);
	bool empty = fs->busy.queued_extents == 0;
	lock_drop(&fs->busy.lock);
	return empty;
}

/* Counters and trace records of reclaims; several extents unpinned at once go in one batch. */
static void test_statistics_and_trace(void **state)
{
	struct rfix *x = *state;
	struct mount_config cfg = { .enospc_wait_ms = 1000, .trace = x->trace.path };
	size_t len;

	image_format(&x->img, 64 * MiB, NULL);
	x->fs = fx_mount(x->img.path, &cfg);
	make_busy(x, "a", 64, 16, NULL);
	make_busy(x, "b", 64, 8, NULL);
	assert_int_equal(fx_busy_blocks(x->fs), 24);
	policy_release_owner(x->fs, &x->o);
	pin_owner_init(&x->o);
	fx_wait_reclaimed(x->fs);
	assert_true(unit_wait(queue_empty, x->fs, 5000));
	struct daxfs_ioc_stats st = fx_stats(x->fs);
	assert_int_equal(st.reclaimed_extents, 2);
	assert_int_equal(st.reclaimed_blocks, 24);
	assert_int_equal(st.busy_extents, 0);
	assert_int_equal(st.reclaim_queued, 0);
	assert_true(st.reclaim_latency_ns_max > 0);
	assert_true(st.reclaim_latency_ns_total >= st.reclaim_latency_ns_max);
	trace_stop(&x->fs->trace);
	char *buf = unit_read_file(x->trace.path, &len);
	int starts = 0, reclaims = 0;
	uint64_t bytes = 0;
	for (const char *p = buf; p < buf + len;) {
		const char *nl = strchr(p, '\n');
		char ev[64];

		assert_non_null(nl);
		assert_true(json_object_line(p, (size_t)(nl - p)));
		assert_true(json_field(p, (size_t)(nl - p), "ev", ev, sizeof(ev)));
		if (!strcmp(ev, "\"reclaim_start\""))
			starts++;
		if (!strcmp(ev, "\"reclaim\"")) {
			reclaims++;
			bytes += json_u64(p, (size_t)(nl - p), "len", 0);
		}
		p = nl + 1;
	}
	free(buf);
	assert_true(starts >= 1 && starts <= 2);
	assert_int_equal(reclaims, 2);
	assert_int_equal(bytes, 24 * BS);
}

/* Fill the device with "filler" until ENOSPC; returns how long the failing write took (ms). */
static uint64_t fill(struct rfix *x)
{
	struct entry e;
	struct inode *ip;
	static char chunk[256 * 1024];
	uint64_t off = 0, t0;
	ssize_t w;

	assert_int_equal(namei_mknod(x->fs, &root_cred, ROOT, "filler", S_IFREG | 0644, 0, &e), 0);
	forget(x->fs, e.ino);
	assert_int_equal(namei_open(x->fs, e.ino, O_RDWR, &ip, NULL), 0);
	for (;;) {
		struct iovec iov = { chunk, sizeof(chunk) };

		t0 = unit_now_ms();
		w = file_write(x->fs, ip, off, &iov, 1);
		if (w <= 0)
			break;
		off += (uint64_t)w;
	}
	uint64_t took = unit_now_ms() - t0;
	assert_int_equal(w, -ENOSPC);
	namei_release(x->fs, ip);
	return took;
}

struct allocator_thread {
	struct fs *fs;
	int ret;
	uint64_t start, len, ms;
	bool done;
	pthread_t th;
};

static void *alloc_main(void *arg)
{
	struct allocator_thread *a = arg;
	struct alloc_req req = { .want = 16 };
	uint64_t t0 = unit_now_ms();

	a->ret = reclaim_alloc(&a->fs->reclaim, &req, &a->start, &a->len);
	a->ms = unit_now_ms() - t0;
	__atomic_store_n(&a->done, true, __ATOMIC_RELEASE);
	return NULL;
}

/*
 * A full device.  Space that live pins hold is not coming back: ENOSPC at once.  With an extent
 * queued for reclaim, an allocation waits for it up to enospc_wait_ms: here the reclaim is held up
 * (its commit waits for the journal, which the test holds), so the wait runs out and says ENOSPC,
 * counted as an ENOSPC wait; once the reclaim commits, the space is there.
 */
static void test_enospc_wait(void **state)
{
	struct rfix *x = *state;
	struct mount_config cfg = { .enospc_wait_ms = 300 };

	image_format(&x->img, 16 * MiB, NULL);
	x->fs = fx_mount(x->img.path, &cfg);
	uint64_t id = make_busy(x, "pinned", 64, 64, NULL);
	assert_int_equal(fx_busy_blocks(x->fs), 64);
	uint64_t took = fill(x);
	assert_int_equal(fx_stats(x->fs).enospc_waits, 0);	/* nothing queued: no wait */
	print_message("ENOSPC with nothing queued for reclaim: %llu ms\n", (unsigned long long)took);

	pthread_mutex_lock(&x->fs->sbi.journal.lock);
	assert_int_equal(policy_unpin(x->fs, &x->o, id), 0);	/* queued; its commit will wait for us */
	struct allocator_thread a = { .fs = x->fs };
	assert_int_equal(pthread_create(&a.th, NULL, alloc_main, &a), 0);
	pthread_join(a.th, NULL);
	pthread_mutex_unlock(&x->fs->sbi.journal.lock);
	assert_int_equal(a.ret, -ENOSPC);
	assert_true(a.ms >= 300);
	assert_int_equal(x->fs->reclaim.enospc_waits, 1);

	fx_wait_reclaimed(x->fs);
	a = (struct allocator_thread){ .fs = x->fs };
	alloc_main(&a);
	assert_int_equal(a.ret, 0);
	assert_true(a.len >= 1 && a.len <= 16);
	assert_int_equal(x->fs->reclaim.enospc_waits, 1);	/* the space was there: no wait */
	sbi_unalloc(&x->fs->sbi, a.start, a.len);
}

/*
 * A reclaim on an image that can no longer change (a commit failed) abandons its extents: busy,
 * unqueued, for the next mount.  Nothing of the image changes, neither the bitmap nor the blocks
 * (they are not scrubbed either), and the next mount reclaims them.
 */
static void test_abandoned(void **state)
{
	struct rfix *x = *state;
	struct capture cap;
	uint64_t media;

	image_format(&x->img, 64 * MiB, NULL);
	x->fs = fx_mount(x->img.path, NULL);
	uint64_t id = make_busy(x, "f", 64, 16, &media);
	/* Make the image abort: a commit that cannot fit the journal. */
	char *big = calloc(1, 4 * MiB);
	struct tx tx;
	assert_non_null(big);
	capture_begin(&cap);
	tx_init(&tx, &x->fs->sbi.journal);
	tx_log(&tx, sbi_block_off(&x->fs->sbi, x->fs->sbi.sb.data_start), big, 4 * MiB);
	int ret = sbi_commit(&x->fs->sbi, &tx);
	tx_free(&tx);
	assert_int_equal(policy_unpin(x->fs, &x->o, id), 0);
	assert_true(unit_wait(queue_empty, x->fs, 5000));
	free(capture_end(&cap));
	free(big);
	assert_int_equal(ret, -EIO);
	assert_int_equal(fx_busy_blocks(x->fs), 16);	/* still busy: not given back */
	lock_take(&x->fs->busy.lock);
	struct busy_ext *be = busy_first_locked(&x->fs->busy);
	assert_non_null(be);
	assert_int_equal(be->state, DAXFS_BUSY_PINNED);
	lock_drop(&x->fs->busy.lock);
	assert_int_equal(x->fs->reclaim.extents, 0);
	const unsigned char *p = media_ptr(&x->fs->sbi.media, media);
	for (size_t i = 0; i < 16 * BS; i++)
		if (p[i] != 0x99)
			fail_msg("byte %zu of the abandoned extent is %#x: scrubbed after the abort", i, p[i]);
	/* The next mount reclaims them. */
	mount_close(x->fs);
	x->fs = fx_mount(x->img.path, NULL);
	fx_wait_reclaimed(x->fs);
}

/* reclaim_stop finishes what is queued before the worker goes. */
static void test_stop_drains(void **state)
{
	struct rfix *x = *state;

	image_format(&x->img, 64 * MiB, NULL);
	x->fs = fx_mount(x->img.path, NULL);
	for (int i = 0; i < 20; i++) {
		char name[16];

		snprintf(name, sizeof(name), "f%d", i);
		make_busy(x, name, 8, 4, NULL);
	}
	assert_int_equal(fx_busy_blocks(x->fs), 80);
	policy_release_owner(x->fs, &x->o);
	pin_owner_init(&x->o);
	reclaim_stop(&x->fs->reclaim);
	assert_int_equal(fx_busy_blocks(x->fs), 0);
	assert_int_equal(x->fs->reclaim.extents, 20);
	assert_false(x->fs->reclaim.started);
	reclaim_stop(&x->fs->reclaim);	/* twice: nothing */
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, rfix_setup, rfix_teardown)
	const struct CMUnitTest tests[] = {
		T(test_discard),
		T(test_statistics_and_trace),
		T(test_enospc_wait),
		T(test_abandoned),
		T(test_stop_drains),
	};

	if (getenv("UNIT_FILTER"))
		cmocka_set_test_filter(getenv("UNIT_FILTER"));
	return cmocka_run_group_tests_name("reclaim", tests, NULL, NULL);
}
