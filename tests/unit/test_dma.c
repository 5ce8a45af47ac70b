/* SPDX-License-Identifier: MIT */
/*
 * dma.c: the daemon's DMA engine (policy_dma), through pins on a mounted file system.  It writes
 * tags that name their pin, file and media offsets and sequence; verify counts the units that do
 * not hold them (holes included) and says where the first is; zero clears them; it works on the
 * blocks the pin holds, also once they are busy extents out of the file.  Refusals: bad ranges and
 * ops, unknown or foreign pins, writes through read pins, revoked pins, an image that cannot change.
 * The fence: an unpin from another thread returns only when the engine has stopped, between two
 * units, and nothing is written through the pin after that.
 */
#include <pthread.h>

#include "fs_fixture.h"

#define UNIT DAXFS_TAG_UNIT

struct dfix {
	struct image img;
	struct fs *fs;
	struct inode *ip;	/* "f", 64 blocks of 0x33 */
	struct pin_owner o, o2;
};

static int dfix_setup(void **state)
{
	struct dfix *x = calloc(1, sizeof(*x));

	if (!x)
		return -1;
	image_name(&x->img, "dma");
	*state = x;
	image_format(&x->img, 64 * MiB, NULL);
	x->fs = fx_mount(x->img.path, NULL);
	x->ip = fx_file(x->fs, "f", 64, 0x33);
	pin_owner_init(&x->o);
	pin_owner_init(&x->o2);
	return 0;
}

static int dfix_teardown(void **state)
{
	struct dfix *x = *state;

	policy_release_owner(x->fs, &x->o);
	policy_release_owner(x->fs, &x->o2);
	namei_release(x->fs, x->ip);
	mount_close(x->fs);
	image_remove(&x->img);
	free(x);
	return 0;
}

static struct daxfs_ioc_dma dma_req(uint32_t op, uint64_t id, uint64_t off, uint64_t len, uint64_t seq)
{
	return (struct daxfs_ioc_dma){ .size = sizeof(struct daxfs_ioc_dma), .op = op, .pin_id = id, .offset = off,
				       .length = len, .seq = seq };
}

static int dma(struct dfix *x, struct pin_owner *o, struct daxfs_ioc_dma *d)
{
	return policy_dma(x->fs, o, d);
}

static const struct daxfs_tag *tag_at(struct dfix *x, uint64_t media_off)
{
	return media_ptr(fs_media(x->fs), media_off);
}

static void test_write_verify_zero(void **state)
{
	struct dfix *x = *state;
	const uint64_t len = 32 * BS;	/* two units of 64 KiB */
	struct daxfs_ioc_dma d;

	uint64_t id = fx_pin(x->fs, &x->o, x->ip, 8 * BS, len, DAXFS_PIN_WRITE);
	uint64_t media = fx_pin_media(x->fs, &x->o, id);
	uint64_t t0 = util_now_ns();
	d = dma_req(DAXFS_DMA_WRITE_PATTERN, id, 0, len, 7);
	assert_int_equal(dma(x, &x->o, &d), 0);
	assert_int_equal(d.done, len);
	/* Every unit names its source. */
	for (uint64_t u = 0; u < len / UNIT; u++) {
		const struct daxfs_tag *t = tag_at(x, media + u * UNIT);

		if (t->magic != DAXFS_TAG_MAGIC || t->pin_id != id || t->ino != x->ip->ino ||
		    t->file_off != 8 * BS + u * UNIT || t->media_off != media + u * UNIT || t->seq != 7 ||
		    t->source != DAXFS_TAG_SRC_IOCTL || t->time_ns < t0 || t->time_ns > util_now_ns())
			fail_msg("unit %llu: wrong tag", (unsigned long long)u);
	}
	/* The file shows them: the pin's blocks are the file's. */
	struct daxfs_tag back;
	assert_int_equal(rd(x->fs, x->ip, 8 * BS + 5 * UNIT, &back, sizeof(back)), sizeof(back));
	assert_memory_equal(&back, tag_at(x, media + 5 * UNIT), sizeof(back));

	d = dma_req(DAXFS_DMA_VERIFY_PATTERN, id, 0, len, 7);
	assert_int_equal(dma(x, &x->o, &d), 0);
	assert_int_equal(d.mismatches, 0);
	assert_int_equal(d.first_mismatch, ~0ull);
	assert_int_equal(d.done, len);
	d = dma_req(DAXFS_DMA_VERIFY_PATTERN, id, 0, len, 8);	/* another sequence: nothing matches */
	assert_int_equal(dma(x, &x->o, &d), 0);
	assert_int_equal(d.mismatches, len / UNIT);
	assert_int_equal(d.first_mismatch, 0);

	/* Bytes written through the file over units 3 * BS / UNIT + 1 and + 2: two mismatches. */
	char junk[100];
	memset(junk, 'j', sizeof(junk));
	wr(x->fs, x->ip, 8 * BS + 3 * BS + UNIT + 10, junk, sizeof(junk));
	d = dma_req(DAXFS_DMA_VERIFY_PATTERN, id, 0, len, 7);
	assert_int_equal(dma(x, &x->o, &d), 0);
	assert_int_equal(d.mismatches, 2);
	assert_int_equal(d.first_mismatch, 3 * BS + UNIT);
	/* A part of the pin: offsets are the pin's. */
	d = dma_req(DAXFS_DMA_VERIFY_PATTERN, id, 4 * BS, 4 * BS, 7);
	assert_int_equal(dma(x, &x->o, &d), 0);
	assert_int_equal(d.mismatches, 0);
	assert_int_equal(d.done, 4 * BS);

	d = dma_req(DAXFS_DMA_ZERO, id, 16 * BS, 16 * BS, 0);
	assert_int_equal(dma(x, &x->o, &d), 0);
	char *z = media_ptr(fs_media(x->fs), media + 16 * BS);
	for (uint64_t i = 0; i < 16 * BS; i++)
		if (z[i])
			fail_msg("byte %llu not zeroed", (unsigned long long)i);
	assert_int_equal(tag_at(x, media + 16 * BS - UNIT)->magic, DAXFS_TAG_MAGIC);	/* before the range: kept */
	d = dma_req(DAXFS_DMA_VERIFY_PATTERN, id, 0, len, 7);
	assert_int_equal(dma(x, &x->o, &d), 0);
	assert_int_equal(d.mismatches, 2 + 16 * BS / UNIT);

	struct daxfs_ioc_stats st = fx_stats(x->fs);
	assert_int_equal(st.dma_ops, 7);
	assert_int_equal(st.dma_bytes, 5 * len + 4 * BS + 16 * BS);
}

static void test_refusals(void **state)
{
	struct dfix *x = *state;
	struct daxfs_ioc_dma d;

	uint64_t w = fx_pin(x->fs, &x->o, x->ip, 0, 16 * BS, DAXFS_PIN_WRITE);
	uint64_t r = fx_pin(x->fs, &x->o, x->ip, 16 * BS, 16 * BS, 0);
	static const struct {
		uint32_t op;
		uint64_t off, len;
	} bad[] = {
		{ 0, 0, BS }, { 4, 0, BS },				/* no such op */
		{ DAXFS_DMA_WRITE_PATTERN, 0, 0 },			/* nothing */
		{ DAXFS_DMA_WRITE_PATTERN, 32, BS },			/* not a multiple of a unit */
		{ DAXFS_DMA_WRITE_PATTERN, 0, BS + 1 },
		{ DAXFS_DMA_WRITE_PATTERN, 15 * BS, 2 * BS },		/* past the pin */
		{ DAXFS_DMA_VERIFY_PATTERN, 16 * BS, UNIT },
		{ DAXFS_DMA_VERIFY_PATTERN, UINT64_MAX - UNIT + 1, UNIT },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		d = dma_req(bad[i].op, w, bad[i].off, bad[i].len, 1);
		if (dma(x, &x->o, &d) != -EINVAL)
			fail_msg("case %zu accepted", i);
	}
	d = dma_req(DAXFS_DMA_WRITE_PATTERN, 9999, 0, BS, 1);
	assert_int_equal(dma(x, &x->o, &d), -ENOENT);
	d = dma_req(DAXFS_DMA_WRITE_PATTERN, w, 0, BS, 1);
	assert_int_equal(dma(x, &x->o2, &d), -EBADF);	/* another open file's pin */
	/* Writes need a write pin; verify does not. */
	d = dma_req(DAXFS_DMA_WRITE_PATTERN, r, 0, BS, 1);
	assert_int_equal(dma(x, &x->o, &d), -EACCES);
	d = dma_req(DAXFS_DMA_ZERO, r, 0, BS, 1);
	assert_int_equal(dma(x, &x->o, &d), -EACCES);
	d = dma_req(DAXFS_DMA_VERIFY_PATTERN, r, 0, BS, 1);
	assert_int_equal(dma(x, &x->o, &d), 0);
	assert_int_equal(d.mismatches, BS / UNIT);	/* 0x33 bytes are no tags */
	/* A revoked pin: ENOLINK for anything. */
	struct pin *p;
	lock_take(&x->fs->pol->pins.lock);
	assert_int_equal(pin_lookup_locked(&x->fs->pol->pins, &x->o, r, &p), 0);
	pin_revoke_locked(&x->fs->pol->pins, p, x->fs->sbi.bshift);
	lock_drop(&x->fs->pol->pins.lock);
	d = dma_req(DAXFS_DMA_VERIFY_PATTERN, r, 0, BS, 1);
	assert_int_equal(dma(x, &x->o, &d), -ENOLINK);
	/* An image that can no longer change (a commit failed): no writes, verify still works. */
	struct tx tx;
	char *big = calloc(1, 16 * MiB);
	assert_non_null(big);
	struct capture cap;
	capture_begin(&cap);
	tx_init(&tx, &x->fs->sbi.journal);
	tx_log(&tx, sbi_block_off(&x->fs->sbi, x->fs->sbi.sb.data_start), big, 16 * MiB);
	int ret = sbi_commit(&x->fs->sbi, &tx);
	tx_free(&tx);
	free(capture_end(&cap));
	free(big);
	assert_int_equal(ret, -EIO);
	d = dma_req(DAXFS_DMA_WRITE_PATTERN, w, 0, BS, 1);
	assert_int_equal(dma(x, &x->o, &d), -EIO);
	d = dma_req(DAXFS_DMA_VERIFY_PATTERN, w, 0, BS, 1);
	assert_int_equal(dma(x, &x->o, &d), 0);
}

/* Write the tags a device would for pin id over file bytes [off, off + len) at media media_off. */
static void device_tags(struct dfix *x, uint64_t id, uint64_t off, uint64_t media_off, uint64_t len, uint64_t seq)
{
	struct daxfs_tag *t = calloc(len / UNIT, sizeof(*t));

	assert_non_null(t);
	for (uint64_t u = 0; u < len / UNIT; u++)
		t[u] = (struct daxfs_tag){ .magic = DAXFS_TAG_MAGIC, .pin_id = id, .ino = x->ip->ino,
					   .file_off = off + u * UNIT, .media_off = media_off + u * UNIT, .seq = seq,
					   .source = DAXFS_TAG_SRC_DEVICE };
	wr(x->fs, x->ip, off, t, len);
	free(t);
}

/*
 * A read pin over a hole maps no block there: verify counts the hole's units as mismatches (and
 * only them, when the rest holds the pin's tags); a write pin over it allocates the hole, as a DAX
 * write fault would, and its DMA reaches the file there.
 */
static void test_holes(void **state)
{
	struct dfix *x = *state;
	struct daxfs_ioc_dma d;
	const int punch = 0x02 | 0x01;	/* FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE */
	struct daxfs_pin_extent ext[4];
	uint32_t n;

	assert_int_equal(namei_fallocate(x->fs, x->ip, punch, 4 * BS, 4 * BS, NULL), 0);
	uint64_t r = fx_pin(x->fs, &x->o, x->ip, 0, 16 * BS, 0);
	assert_int_equal(emap_count(x->ip), 2);	/* a read pin allocates nothing */
	assert_int_equal(policy_pin_extents(x->fs, &x->o, r, 0, ext, 4, &n, NULL, NULL), 3);
	assert_int_equal(ext[1].file_off, 4 * BS);
	assert_int_equal(ext[1].media_off, DAXFS_MEDIA_ZERO);
	device_tags(x, r, 0, ext[0].media_off, 4 * BS, 1);
	device_tags(x, r, 8 * BS, ext[2].media_off, 8 * BS, 1);
	d = dma_req(DAXFS_DMA_VERIFY_PATTERN, r, 0, 16 * BS, 1);
	assert_int_equal(dma(x, &x->o, &d), 0);
	assert_int_equal(d.done, 16 * BS);
	assert_int_equal(d.mismatches, 4 * BS / UNIT);
	assert_int_equal(d.first_mismatch, 4 * BS);

	uint64_t w = fx_pin(x->fs, &x->o, x->ip, 0, 16 * BS, DAXFS_PIN_WRITE);
	assert_int_equal(x->ip->d.blocks, 64);	/* the hole was filled */
	d = dma_req(DAXFS_DMA_WRITE_PATTERN, w, 0, 16 * BS, 2);
	assert_int_equal(dma(x, &x->o, &d), 0);
	d = dma_req(DAXFS_DMA_VERIFY_PATTERN, w, 0, 16 * BS, 2);
	assert_int_equal(dma(x, &x->o, &d), 0);
	assert_int_equal(d.mismatches, 0);
	struct daxfs_tag back;
	assert_int_equal(rd(x->fs, x->ip, 5 * BS, &back, sizeof(back)), sizeof(back));
	assert_int_equal(back.magic, DAXFS_TAG_MAGIC);
	assert_int_equal(back.pin_id, w);
	assert_int_equal(back.file_off, 5 * BS);
}

/* Busy extents: the pin still holds the blocks that left the file, and DMA goes there. */
static void test_busy_blocks(void **state)
{
	struct dfix *x = *state;
	struct daxfs_ioc_dma d;

	uint64_t id = fx_pin(x->fs, &x->o, x->ip, 8 * BS, 16 * BS, DAXFS_PIN_WRITE);
	uint64_t media = fx_pin_media(x->fs, &x->o, id);
	assert_int_equal(fx_truncate(x->fs, x->ip->ino, 0, NULL), 0);
	assert_int_equal(fx_busy_blocks(x->fs), 16);
	d = dma_req(DAXFS_DMA_WRITE_PATTERN, id, 0, 16 * BS, 3);
	assert_int_equal(dma(x, &x->o, &d), 0);
	d = dma_req(DAXFS_DMA_VERIFY_PATTERN, id, 0, 16 * BS, 3);
	assert_int_equal(dma(x, &x->o, &d), 0);
	assert_int_equal(d.mismatches, 0);
	assert_int_equal(tag_at(x, media)->file_off, 8 * BS);	/* where the device meant to write */
	/* Unpinned: reclaimed, scrubbed. */
	assert_int_equal(policy_unpin(x->fs, &x->o, id), 0);
	fx_wait_reclaimed(x->fs);
	const char *p = media_ptr(fs_media(x->fs), media);
	for (uint64_t i = 0; i < 16 * BS; i++)
		if (p[i])
			fail_msg("reclaimed byte %llu still holds DMA data", (unsigned long long)i);
}

/* ---- the fence ---- */

struct dma_thread {
	struct dfix *x;
	struct daxfs_ioc_dma d;
	int ret;
	bool done;
	pthread_t th;
};

static void *dma_main(void *arg)
{
	struct dma_thread *t = arg;

	t->ret = policy_dma(t->x->fs, &t->x->o, &t->d);
	__atomic_store_n(&t->done, true, __ATOMIC_RELEASE);
	return NULL;
}

/* The engine holds the pin (it is in flight), or is already done. */
static bool engine_in_pin(void *arg)
{
	struct dma_thread *t = arg;
	struct pin *p;
	bool in;

	lock_take(&t->x->fs->pol->pins.lock);
	in = pin_lookup_locked(&t->x->fs->pol->pins, &t->x->o, t->d.pin_id, &p) == 0 && p->users > 0;
	lock_drop(&t->x->fs->pol->pins.lock);
	return in || __atomic_load_n(&t->done, __ATOMIC_ACQUIRE);
}

/*
 * A DMA over 16 MiB runs on a thread; the pin is unpinned from here while it is in flight.  When
 * policy_unpin returns the engine has stopped: the media never changes after that, the engine
 * completes short (done, with result ENOENT; failing with it if it had done nothing), and exactly
 * those bytes hold tags.
 */
static void test_fence_unpin(void **state)
{
	struct dfix *x = *state;
	const uint64_t nblk = 4096, len = nblk * BS;
	char *snap = malloc(len);
	int stopped = 0;

	assert_non_null(snap);
	struct inode *big = fx_file(x->fs, "big", nblk, 0x5c);
	for (int round = 0; round < 5; round++) {
		struct dma_thread t = { .x = x };
		uint64_t id = fx_pin(x->fs, &x->o, big, 0, len, DAXFS_PIN_WRITE);
		struct daxfs_pin_extent ext[16];
		uint32_t n;

		int next = policy_pin_extents(x->fs, &x->o, id, 0, ext, 16, &n, NULL, NULL);
		assert_true(next >= 1 && next <= 16);
		t.d = dma_req(DAXFS_DMA_WRITE_PATTERN, id, 0, len, 100 + (uint64_t)round);
		assert_int_equal(pthread_create(&t.th, NULL, dma_main, &t), 0);
		assert_true(unit_wait(engine_in_pin, &t, 5000));
		bool in_flight = !__atomic_load_n(&t.done, __ATOMIC_ACQUIRE);
		assert_int_equal(policy_unpin(x->fs, &x->o, id), 0);
		/* The pin's media (in pin order) as it is when the unpin has returned. */
		for (uint32_t i = 0, at = 0; i < n; at += (uint32_t)ext[i].len, i++)
			memcpy(snap + at, media_ptr(fs_media(x->fs), ext[i].media_off), ext[i].len);
		pthread_join(t.th, NULL);
		for (uint32_t i = 0, at = 0; i < n; at += (uint32_t)ext[i].len, i++)
			if (memcmp(snap + at, media_ptr(fs_media(x->fs), ext[i].media_off), ext[i].len))
				fail_msg("round %d: the media changed after the unpin returned", round);
		/* Stopped part-way: a short completion (result says why); before any work: ENOENT. */
		if (t.d.result == -ENOENT) {
			stopped++;
			assert_true(in_flight);
			assert_true(t.d.done < len);
			assert_int_equal(t.ret, t.d.done ? 0 : -ENOENT);
		} else {
			assert_int_equal(t.ret, 0);
			assert_int_equal(t.d.result, 0);
			assert_int_equal(t.d.done, len);
		}
		/* Tags exactly over what it did, the file's bytes after. */
		for (uint64_t off = 0; off < len; off += UNIT) {
			const struct daxfs_tag *tg = (const void *)(snap + off);
			bool tagged = tg->magic == DAXFS_TAG_MAGIC && tg->seq == t.d.seq && tg->pin_id == id;

			if (tagged != (off < t.d.done))
				fail_msg("round %d: unit at %llu %s, %llu bytes done", round, (unsigned long long)off,
					 tagged ? "tagged" : "not tagged", (unsigned long long)t.d.done);
		}
		/* Back to the file's bytes for the next round. */
		char *buf = malloc(len);
		assert_non_null(buf);
		memset(buf, 0x5c, len);
		wr(x->fs, big, 0, buf, len);
		free(buf);
	}
	print_message("unpinned while in flight: %d of 5 rounds stopped the engine mid-way\n", stopped);
	namei_release(x->fs, big);
	free(snap);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, dfix_setup, dfix_teardown)
	const struct CMUnitTest tests[] = {
		T(test_write_verify_zero),
		T(test_refusals),
		T(test_holes),
		T(test_busy_blocks),
		T(test_fence_unpin),
	};

	if (getenv("UNIT_FILTER"))
		cmocka_set_test_filter(getenv("UNIT_FILTER"));
	return cmocka_run_group_tests_name("dma", tests, NULL, NULL);
}
