/* SPDX-License-Identifier: MIT */
/*
 * The simulated RDMA device's engine without a mount: a plain file in /dev/shm is the media and
 * registrations are given their extents.  Tags encode and decode; writes land exactly at the
 * registration's media offsets and nowhere else; reads return the media, holes as zeroes; bad work
 * requests are refused before anything is posted; the queue depth holds (a request counts until its
 * completion is polled), for list posts too; completions account for every request; and
 * deregistration fences: with requests held in flight (the gate), it refuses new ones and returns
 * only after they completed.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "daxfs/device.h"

#define KiB 1024ull
#define MiB (1024ull * 1024)
#define MEDIA_SIZE (16 * MiB)
#define INO 77
#define PIN_ID 4242
#define REG_OFF (1 * MiB)	/* the registration's file range */
#define REG_LEN (256 * KiB)

static char media_path[128];

/* Three pieces, out of order on the media, as a fragmented file would be. */
static struct daxfs_pin_extent ext3[] = {
	{ REG_OFF, 8 * MiB, 64 * KiB },
	{ REG_OFF + 64 * KiB, 2 * MiB, 128 * KiB },
	{ REG_OFF + 192 * KiB, 12 * MiB + 4 * KiB, 64 * KiB },
};

static struct daxfs_pin reg_desc(struct daxfs_pin_extent *ext, uint32_t n)
{
	uint64_t len = 0;

	for (uint32_t i = 0; i < n; i++)
		len += ext[i].len;
	return (struct daxfs_pin){ .id = PIN_ID, .offset = ext[0].file_off, .length = len, .nextents = n, .ext = ext };
}

static int setup_media(void **state)
{
	(void)state;
	snprintf(media_path, sizeof(media_path), "/dev/shm/utest-device-%d.img", (int)getpid());
	int fd = open(media_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || ftruncate(fd, MEDIA_SIZE) < 0)
		return -1;
	close(fd);
	return 0;
}

static int teardown_media(void **state)
{
	(void)state;
	unlink(media_path);
	return 0;
}

/* Zero the media between tests. */
static void wipe_media(void)
{
	int fd = open(media_path, O_RDWR);

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 0), 0);
	assert_int_equal(ftruncate(fd, MEDIA_SIZE), 0);
	close(fd);
}

static char *read_media(uint64_t off, uint64_t len)
{
	char *buf = malloc(len);
	int fd = open(media_path, O_RDONLY);

	assert_non_null(buf);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, buf, len, (off_t)off), (ssize_t)len);
	close(fd);
	return buf;
}

static struct daxfs_dev *open_dev(enum daxfs_dev_access access, uint32_t flags, int gate)
{
	struct daxfs_dev_attr a = { .access = access, .flags = flags, .gate_fd = gate };
	struct daxfs_dev *d;
	int ret = daxfs_dev_open(-1, media_path, &a, &d);

	if (ret)
		fail_msg("daxfs_dev_open: %s (%s)", strerror(-ret), daxfs_dev_errmsg());
	return d;
}

/* Wait (at most 10 s) for n completions into wc. */
static void wait_n(struct daxfs_qp *qp, struct daxfs_wc *wc, int n)
{
	int got = 0;
	struct timespec t0, t;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (got < n) {
		got += daxfs_wait_cq(qp, wc + got, n - got, 100);
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (t.tv_sec - t0.tv_sec > 10)
			fail_msg("only %d of %d completions after 10 s", got, n);
	}
}

/* Every unit of [off, off + len) of the registration holds the tag of seq at its own place. */
static void check_units(const struct daxfs_pin *p, uint64_t off, uint64_t len, uint64_t seq)
{
	for (uint64_t pos = off; pos < off + len;) {
		uint64_t m, run;

		assert_int_equal(daxfs_pin_map(p, pos, &m, &run), 0);
		if (run > off + len - pos)
			run = off + len - pos;
		char *buf = read_media(m, run);
		for (uint64_t i = 0; i < run; i += DAXFS_TAG_UNIT) {
			struct daxfs_tag t;

			if (!daxfs_tag_decode(buf + i, &t))
				fail_msg("media %llu (registration offset %llu): no tag", (unsigned long long)(m + i),
					 (unsigned long long)(pos + i));
			assert_int_equal(t.pin_id, PIN_ID);
			assert_int_equal(t.ino, INO);
			assert_int_equal(t.file_off, p->offset + pos + i);
			assert_int_equal(t.media_off, m + i);
			assert_int_equal(t.seq, seq);
			assert_int_equal(t.gen, 0);
			assert_int_equal(t.source, DAXFS_TAG_SRC_DEVICE);
			assert_true(t.time_ns > 0);
		}
		free(buf);
		pos += run;
	}
}

/* Bytes of the media outside the extents that are not zero. */
static uint64_t dirt_outside(const struct daxfs_pin_extent *ext, uint32_t n)
{
	char *buf = read_media(0, MEDIA_SIZE);
	uint64_t dirt = 0;

	for (uint64_t i = 0; i < MEDIA_SIZE; i++) {
		bool inside = false;

		for (uint32_t k = 0; k < n && !inside; k++)
			inside = ext[k].media_off != DAXFS_MEDIA_ZERO && i >= ext[k].media_off &&
				 i < ext[k].media_off + ext[k].len;
		dirt += !inside && buf[i];
	}
	free(buf);
	return dirt;
}

/* ---- tags ---- */

static void test_tag_roundtrip(void **state)
{
	char buf[8 * DAXFS_TAG_UNIT];
	struct daxfs_tag t = { .pin_id = 9, .ino = 5, .file_off = 4096, .media_off = 1 << 20, .seq = 77, .gen = 3,
			       .source = DAXFS_TAG_SRC_DEVICE, .time_ns = 123456789 };

	(void)state;
	daxfs_tag_fill(buf, sizeof(buf), &t);
	for (int i = 0; i < 8; i++) {
		struct daxfs_tag u;

		assert_true(daxfs_tag_decode(buf + i * DAXFS_TAG_UNIT, &u));
		assert_int_equal(u.magic, DAXFS_TAG_MAGIC);
		assert_int_equal(u.pin_id, 9);
		assert_int_equal(u.ino, 5);
		assert_int_equal(u.file_off, 4096 + i * DAXFS_TAG_UNIT);
		assert_int_equal(u.media_off, (1 << 20) + i * DAXFS_TAG_UNIT);
		assert_int_equal(u.seq, 77);
		assert_int_equal(u.gen, 3);
		assert_int_equal(u.source, DAXFS_TAG_SRC_DEVICE);
		assert_int_equal(u.time_ns, 123456789);
	}
	/* Anything without the magic is not a tag. */
	memset(buf, 0, DAXFS_TAG_UNIT);
	struct daxfs_tag u;
	assert_false(daxfs_tag_decode(buf, &u));
	buf[0] = 1;
	assert_false(daxfs_tag_decode(buf, &u));
}

/* ---- writes land at the registration's media offsets, and only there ---- */

static void write_whole(enum daxfs_dev_access access)
{
	struct daxfs_pin desc = reg_desc(ext3, 3);
	struct daxfs_dev *d = open_dev(access, 0, -1);
	struct daxfs_mr *mr;
	struct daxfs_qp *qp;
	struct daxfs_wc wc[64];

	wipe_media();
	assert_int_equal(daxfs_reg_mr_raw(d, INO, &desc, DAXFS_PIN_WRITE, &mr), 0);
	assert_int_equal(daxfs_qp_create(d, 8, &qp), 0);
	/* 48 KiB requests: some cross from one extent into the next. */
	const uint64_t sz = 48 * KiB;
	int n = 0;
	for (uint64_t off = 0; off < REG_LEN; off += sz, n++) {
		struct daxfs_wr wr = { .wr_id = 100 + (uint64_t)n, .opcode = DAXFS_WR_WRITE, .mr = mr, .offset = off,
				       .length = off + sz > REG_LEN ? REG_LEN - off : sz, .seq = 5 };
		int r;

		while ((r = daxfs_post(qp, &wr)) == -EAGAIN)
			wait_n(qp, wc, 1);
		assert_int_equal(r, 0);
	}
	while (daxfs_qp_outstanding(qp))
		wait_n(qp, wc, 1);
	check_units(&desc, 0, REG_LEN, 5);
	assert_int_equal(dirt_outside(ext3, 3), 0);
	struct daxfs_dev_stats st;
	daxfs_dev_stats(d, &st);
	assert_int_equal(st.posted, (uint64_t)n);
	assert_int_equal(st.completed, (uint64_t)n);
	assert_int_equal(st.errors, 0);
	assert_int_equal(st.bytes_written, REG_LEN);
	assert_int_equal(daxfs_dereg_mr(mr), 0);
	daxfs_qp_destroy(qp);
	daxfs_dev_close(d);
}

static void test_write_uring(void **state)
{
	(void)state;
	write_whole(DAXFS_DEV_ACCESS_URING);
}

static void test_write_mmap(void **state)
{
	(void)state;
	write_whole(DAXFS_DEV_ACCESS_MMAP);
}

/* ---- reads: the media, and zeroes for holes; never a write on a read registration ---- */

static void test_read_holes(void **state)
{
	struct daxfs_pin_extent ext[] = {
		{ 0, 3 * MiB, 8 * KiB },
		{ 8 * KiB, DAXFS_MEDIA_ZERO, 8 * KiB },
		{ 16 * KiB, 5 * MiB, 8 * KiB },
	};
	struct daxfs_pin desc = reg_desc(ext, 3);
	struct daxfs_mr *mr;
	struct daxfs_qp *qp;
	struct daxfs_wc wc;
	char buf[24 * KiB];

	(void)state;
	wipe_media();
	int fd = open(media_path, O_RDWR);
	assert_true(fd >= 0);
	char pat[8 * KiB];
	memset(pat, 0xa1, sizeof(pat));
	assert_int_equal(pwrite(fd, pat, sizeof(pat), 3 * MiB), (ssize_t)sizeof(pat));
	memset(pat, 0xb2, sizeof(pat));
	assert_int_equal(pwrite(fd, pat, sizeof(pat), 5 * MiB), (ssize_t)sizeof(pat));
	close(fd);
	for (int access = DAXFS_DEV_ACCESS_URING; access <= DAXFS_DEV_ACCESS_MMAP; access++) {
		struct daxfs_dev *d = open_dev((enum daxfs_dev_access)access, 0, -1);

		assert_int_equal(daxfs_reg_mr_raw(d, INO, &desc, 0, &mr), 0);
		assert_int_equal(daxfs_qp_create(d, 4, &qp), 0);
		memset(buf, 0x77, sizeof(buf));
		struct daxfs_wr wr = { .wr_id = 1, .opcode = DAXFS_WR_READ, .mr = mr, .offset = 0, .length = sizeof(buf),
				       .buf = buf };
		assert_int_equal(daxfs_post(qp, &wr), 0);
		wait_n(qp, &wc, 1);
		assert_int_equal(wc.status, 0);
		assert_int_equal(wc.wr_id, 1);
		assert_int_equal(wc.bytes, sizeof(buf));
		for (size_t i = 0; i < sizeof(buf); i++)
			assert_int_equal((uint8_t)buf[i], i < 8 * KiB ? 0xa1 : i < 16 * KiB ? 0 : 0xb2);
		/* A read registration takes no write. */
		wr.opcode = DAXFS_WR_WRITE;
		assert_int_equal(daxfs_post(qp, &wr), -EACCES);
		assert_int_equal(daxfs_dereg_mr(mr), 0);
		daxfs_qp_destroy(qp);
		daxfs_dev_close(d);
	}
}

/* ---- bad work requests are refused before anything is posted ---- */

static void test_bad_requests(void **state)
{
	struct daxfs_pin desc = reg_desc(ext3, 3);
	struct daxfs_dev *d = open_dev(DAXFS_DEV_ACCESS_URING, 0, -1);
	struct daxfs_mr *mr;
	struct daxfs_qp *qp;
	struct daxfs_wc wc;

	(void)state;
	wipe_media();
	assert_int_equal(daxfs_reg_mr_raw(d, INO, &desc, DAXFS_PIN_WRITE, &mr), 0);
	assert_int_equal(daxfs_qp_create(d, 4, &qp), 0);
	const struct { uint64_t off, len; uint32_t op; } bad[] = {
		{ REG_LEN, 64, DAXFS_WR_WRITE },		/* past the end */
		{ REG_LEN - 64, 128, DAXFS_WR_WRITE },		/* straddles the end */
		{ UINT64_MAX - 63, 128, DAXFS_WR_WRITE },	/* wraps */
		{ 32, 64, DAXFS_WR_WRITE },			/* not a whole unit */
		{ 0, 100, DAXFS_WR_WRITE },
		{ 0, 0, DAXFS_WR_WRITE },
		{ 0, 64, 7 },					/* no such opcode */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct daxfs_wr wr = { .opcode = bad[i].op, .mr = mr, .offset = bad[i].off, .length = bad[i].len };

		assert_int_equal(daxfs_post(qp, &wr), -EINVAL);
	}
	/* More than max_wr. */
	struct daxfs_pin_extent big[] = { { 0, 0, 8 * MiB } };
	struct daxfs_pin bdesc = reg_desc(big, 1);
	struct daxfs_mr *bmr;
	assert_int_equal(daxfs_reg_mr_raw(d, INO, &bdesc, DAXFS_PIN_WRITE, &bmr), 0);
	struct daxfs_wr wr = { .opcode = DAXFS_WR_WRITE, .mr = bmr, .offset = 0, .length = 8 * MiB };
	assert_int_equal(daxfs_post(qp, &wr), -EINVAL);
	/* Extents outside the media are refused at registration. */
	struct daxfs_pin_extent out[] = { { 0, MEDIA_SIZE - 4 * KiB, 8 * KiB } };
	struct daxfs_pin odesc = reg_desc(out, 1);
	struct daxfs_mr *omr;
	assert_int_equal(daxfs_reg_mr_raw(d, INO, &odesc, DAXFS_PIN_WRITE, &omr), -EINVAL);
	assert_int_equal(daxfs_poll_cq(qp, &wc, 1), 0);
	struct daxfs_dev_stats st;
	daxfs_dev_stats(d, &st);
	assert_int_equal(st.posted, 0);
	assert_int_equal(dirt_outside(NULL, 0), 0);	/* nothing written anywhere */
	assert_int_equal(daxfs_dereg_mr(bmr), 0);
	assert_int_equal(daxfs_dereg_mr(mr), 0);
	daxfs_qp_destroy(qp);
	daxfs_dev_close(d);

	/* Devices that cannot be. */
	struct daxfs_dev_attr a = { .signo = SIGSEGV };
	assert_int_equal(daxfs_dev_open(-1, media_path, &a, &d), -EINVAL);
	assert_non_null(strstr(daxfs_dev_errmsg(), "signal"));
	a = (struct daxfs_dev_attr){ .access = DAXFS_DEV_ACCESS_IOCTL };
	assert_int_equal(daxfs_dev_open(-1, media_path, &a, &d), -EINVAL);
	assert_int_equal(daxfs_dev_open(-1, NULL, NULL, &d), -EINVAL);
	assert_int_equal(daxfs_dev_open(-1, "/dev/shm/no-such-media", NULL, &d), -ENOENT);
	assert_non_null(strstr(daxfs_dev_errmsg(), "no-such-media"));
}

/* ---- queue depth and completion accounting, with requests held in flight ---- */

static void gate_open(int gate, uint64_t n)
{
	assert_int_equal(write(gate, &n, sizeof(n)), (ssize_t)sizeof(n));
}

static void test_queue_depth(void **state)
{
	int gate = eventfd(0, EFD_SEMAPHORE | EFD_CLOEXEC);
	struct daxfs_pin desc = reg_desc(ext3, 3);
	struct daxfs_mr *mr;
	struct daxfs_qp *qp;
	struct daxfs_wc wc[8];
	bool seen[16] = { false };

	(void)state;
	assert_true(gate >= 0);
	wipe_media();
	struct daxfs_dev *d = open_dev(DAXFS_DEV_ACCESS_URING, DAXFS_DEV_F_GATE, gate);
	assert_int_equal(daxfs_reg_mr_raw(d, INO, &desc, DAXFS_PIN_WRITE, &mr), 0);
	assert_int_equal(daxfs_qp_create(d, 4, &qp), 0);
	uint64_t id = 0;
	struct daxfs_wr wr = { .opcode = DAXFS_WR_WRITE, .mr = mr, .length = 16 * KiB, .seq = 9 };
#define POST() (wr.wr_id = id, wr.offset = (id % 16) * 16 * KiB, daxfs_post(qp, &wr) == 0 ? (id++, 0) : -1)
	for (int i = 0; i < 4; i++)
		assert_int_equal(POST(), 0);
	/* Four outstanding at depth 4: the fifth waits for a polled completion. */
	assert_int_equal(daxfs_post(qp, &wr), -EAGAIN);
	assert_int_equal(daxfs_poll_cq(qp, wc, 8), 0);
	assert_int_equal(daxfs_qp_outstanding(qp), 4);
	struct daxfs_mr_info mi;
	daxfs_mr_query(mr, &mi);
	assert_int_equal(mi.inflight, 4);
	/* Let two go. */
	gate_open(gate, 2);
	wait_n(qp, wc, 2);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(wc[i].status, 0);
		assert_int_equal(wc[i].bytes, 16 * KiB);
		assert_int_equal(wc[i].opcode, DAXFS_WR_WRITE);
		assert_int_equal(wc[i].seq, 9);
		assert_true(wc[i].wr_id < 4 && !seen[wc[i].wr_id]);
		seen[wc[i].wr_id] = true;
	}
	assert_int_equal(daxfs_qp_outstanding(qp), 2);
	/* Completed but not polled still counts: two may be posted, not three. */
	assert_int_equal(POST(), 0);
	assert_int_equal(POST(), 0);
	assert_int_equal(daxfs_post(qp, &wr), -EAGAIN);
	gate_open(gate, 4);
	wait_n(qp, wc, 4);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(wc[i].status, 0);
		assert_true(wc[i].wr_id < 6 && !seen[wc[i].wr_id]);
		seen[wc[i].wr_id] = true;
	}
	for (int i = 0; i < 6; i++)
		assert_true(seen[i]);
	assert_int_equal(daxfs_qp_outstanding(qp), 0);
	assert_int_equal(daxfs_wait_cq(qp, wc, 8, 1000), 0);	/* nothing outstanding: returns at once */
	struct daxfs_dev_stats st;
	daxfs_dev_stats(d, &st);
	assert_int_equal(st.posted, 6);
	assert_int_equal(st.completed, 6);
	assert_int_equal(st.errors, 0);
	assert_int_equal(st.bytes_written, 6 * 16 * KiB);
	check_units(&desc, 0, 6 * 16 * KiB, 9);
#undef POST
	assert_int_equal(daxfs_dereg_mr(mr), 0);
	daxfs_qp_destroy(qp);
	daxfs_dev_close(d);
	close(gate);
}

/* A list post: everything up to the first refused request is posted, with one doorbell. */
static void test_post_list(void **state)
{
	int gate = eventfd(0, EFD_SEMAPHORE | EFD_CLOEXEC);
	struct daxfs_pin desc = reg_desc(ext3, 3);
	struct daxfs_mr *mr;
	struct daxfs_qp *qp;
	struct daxfs_wc wc[8];
	struct daxfs_wr wr[6];
	int posted = -1;

	(void)state;
	wipe_media();
	struct daxfs_dev *d = open_dev(DAXFS_DEV_ACCESS_URING, DAXFS_DEV_F_GATE, gate);
	assert_int_equal(daxfs_reg_mr_raw(d, INO, &desc, DAXFS_PIN_WRITE, &mr), 0);
	assert_int_equal(daxfs_qp_create(d, 4, &qp), 0);
	for (int i = 0; i < 6; i++)
		wr[i] = (struct daxfs_wr){ .wr_id = (uint64_t)i, .opcode = DAXFS_WR_WRITE, .mr = mr,
					   .offset = (uint64_t)i * 32 * KiB, .length = 32 * KiB, .seq = 11 };
	/* Six at depth four: four go, the fifth is refused for room. */
	assert_int_equal(daxfs_post_list(qp, wr, 6, &posted), -EAGAIN);
	assert_int_equal(posted, 4);
	struct daxfs_mr_info mi;
	daxfs_mr_query(mr, &mi);
	assert_int_equal(mi.inflight, 4);
	gate_open(gate, 4);
	wait_n(qp, wc, 4);
	for (int i = 0; i < 4; i++)
		assert_int_equal(wc[i].status, 0);
	/* A bad one in the middle: those before it are posted, none after. */
	wr[2].offset = REG_LEN;
	assert_int_equal(daxfs_post_list(qp, wr, 4, &posted), -EINVAL);
	assert_int_equal(posted, 2);
	gate_open(gate, 2);
	wait_n(qp, wc, 2);
	assert_int_equal(daxfs_qp_outstanding(qp), 0);
	check_units(&desc, 0, 4 * 32 * KiB, 11);
	struct daxfs_dev_stats st;
	daxfs_dev_stats(d, &st);
	assert_int_equal(st.posted, 6);
	assert_int_equal(st.completed, 6);
	daxfs_dev_close(d);
	close(gate);
}

/* ---- deregistration fences ---- */

struct dereg_job {
	struct daxfs_mr *mr;
	int ret;
	int done;
};

static void *dereg_thread(void *arg)
{
	struct dereg_job *j = arg;

	j->ret = daxfs_dereg_mr(j->mr);
	__atomic_store_n(&j->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void test_dereg_fences(void **state)
{
	int gate = eventfd(0, EFD_SEMAPHORE | EFD_CLOEXEC);
	struct daxfs_pin desc = reg_desc(ext3, 3);
	struct daxfs_mr *mr;
	struct daxfs_qp *qp, *qp2;
	struct daxfs_wc wc[8];
	pthread_t t;

	(void)state;
	wipe_media();
	struct daxfs_dev *d = open_dev(DAXFS_DEV_ACCESS_URING, DAXFS_DEV_F_GATE, gate);
	assert_int_equal(daxfs_reg_mr_raw(d, INO, &desc, DAXFS_PIN_WRITE, &mr), 0);
	assert_int_equal(daxfs_qp_create(d, 8, &qp), 0);
	assert_int_equal(daxfs_qp_create(d, 8, &qp2), 0);
	/* Five requests held in flight, on two queue pairs. */
	for (uint64_t i = 0; i < 5; i++) {
		struct daxfs_wr wr = { .wr_id = i, .opcode = DAXFS_WR_WRITE, .mr = mr, .offset = i * 32 * KiB,
				       .length = 32 * KiB, .seq = 3 };
		assert_int_equal(daxfs_post(i % 2 ? qp2 : qp, &wr), 0);
	}
	struct dereg_job j = { .mr = mr };
	assert_int_equal(pthread_create(&t, NULL, dereg_thread, &j), 0);
	/* The deregistration has begun (it cannot end: the requests are held). */
	struct daxfs_mr_info mi;
	for (int i = 0; i < 10000; i++) {
		daxfs_mr_query(mr, &mi);
		if (mi.state == DAXFS_MR_DEREG)
			break;
		usleep(1000);
	}
	assert_int_equal(mi.state, DAXFS_MR_DEREG);
	assert_int_equal(mi.inflight, 5);
	/* No new request on it. */
	struct daxfs_wr wr = { .wr_id = 99, .opcode = DAXFS_WR_WRITE, .mr = mr, .offset = 0, .length = 64 };
	assert_int_equal(daxfs_post(qp, &wr), -ESHUTDOWN);
	assert_false(__atomic_load_n(&j.done, __ATOMIC_ACQUIRE));
	/* Let them finish: the deregistration returns, and their completions are there to poll. */
	gate_open(gate, 5);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(j.ret, 0);
	int n = daxfs_poll_cq(qp, wc, 8);
	n += daxfs_poll_cq(qp2, wc + n, 8 - n);
	assert_int_equal(n, 5);
	for (int i = 0; i < 5; i++)
		assert_int_equal(wc[i].status, 0);
	check_units(&desc, 0, 5 * 32 * KiB, 3);
	daxfs_qp_destroy(qp);
	daxfs_qp_destroy(qp2);
	daxfs_dev_close(d);
	close(gate);
}

/* Destroying a queue pair waits for its requests; closing the device deregisters and fences. */
static void test_close_waits(void **state)
{
	int gate = eventfd(0, EFD_SEMAPHORE | EFD_CLOEXEC);
	struct daxfs_pin desc = reg_desc(ext3, 3);
	struct daxfs_mr *mr;
	struct daxfs_qp *qp;

	(void)state;
	wipe_media();
	struct daxfs_dev *d = open_dev(DAXFS_DEV_ACCESS_URING, DAXFS_DEV_F_GATE, gate);
	assert_int_equal(daxfs_reg_mr_raw(d, INO, &desc, DAXFS_PIN_WRITE, &mr), 0);
	assert_int_equal(daxfs_qp_create(d, 8, &qp), 0);
	for (uint64_t i = 0; i < 3; i++) {
		struct daxfs_wr wr = { .wr_id = i, .opcode = DAXFS_WR_WRITE, .mr = mr, .offset = i * 64 * KiB,
				       .length = 64 * KiB, .seq = 8 };
		assert_int_equal(daxfs_post(qp, &wr), 0);
	}
	gate_open(gate, 3);
	daxfs_dev_close(d);	/* returns once they are on the media */
	check_units(&desc, 0, 3 * 64 * KiB, 8);
	close(gate);
}

/* Many requests of random sizes and places at depth 16: every byte accounted for. */
static void test_accounting(void **state)
{
	struct daxfs_pin desc = reg_desc(ext3, 3);
	struct daxfs_dev *d = open_dev(DAXFS_DEV_ACCESS_URING, 0, -1);
	struct daxfs_mr *mr;
	struct daxfs_qp *qp;
	struct daxfs_wc wc[16];
	uint64_t posted = 0, done = 0, bytes = 0, want = 0, ids = 0;

	(void)state;
	wipe_media();
	srand(7);
	assert_int_equal(daxfs_reg_mr_raw(d, INO, &desc, DAXFS_PIN_WRITE, &mr), 0);
	assert_int_equal(daxfs_qp_create(d, 16, &qp), 0);
	while (posted < 2000) {
		uint64_t len = (uint64_t)(rand() % 64 + 1) * DAXFS_TAG_UNIT * 4;
		uint64_t off = (uint64_t)(rand() % (int)((REG_LEN - len) / DAXFS_TAG_UNIT)) * DAXFS_TAG_UNIT;
		struct daxfs_wr wr = { .wr_id = posted, .opcode = rand() % 4 ? DAXFS_WR_WRITE : DAXFS_WR_READ, .mr = mr,
				       .offset = off, .length = len };
		int r = daxfs_post(qp, &wr);

		if (r == -EAGAIN) {
			int n = daxfs_wait_cq(qp, wc, 16, 1000);
			for (int i = 0; i < n; i++) {
				assert_int_equal(wc[i].status, 0);
				bytes += wc[i].bytes;
				ids += wc[i].wr_id;
			}
			done += (uint64_t)n;
			continue;
		}
		assert_int_equal(r, 0);
		want += len;
		posted++;
	}
	while (done < posted) {
		int n = daxfs_wait_cq(qp, wc, 16, 1000);
		for (int i = 0; i < n; i++) {
			assert_int_equal(wc[i].status, 0);
			bytes += wc[i].bytes;
			ids += wc[i].wr_id;
		}
		done += (uint64_t)n;
	}
	assert_int_equal(done, posted);
	assert_int_equal(bytes, want);
	assert_int_equal(ids, posted * (posted - 1) / 2);	/* each wr_id exactly once */
	struct daxfs_dev_stats st;
	daxfs_dev_stats(d, &st);
	assert_int_equal(st.completed, posted);
	assert_int_equal(st.bytes_written + st.bytes_read, want);
	assert_int_equal(dirt_outside(ext3, 3), 0);
	daxfs_dev_close(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tag_roundtrip),
		cmocka_unit_test(test_write_uring),
		cmocka_unit_test(test_write_mmap),
		cmocka_unit_test(test_read_holes),
		cmocka_unit_test(test_bad_requests),
		cmocka_unit_test(test_queue_depth),
		cmocka_unit_test(test_post_list),
		cmocka_unit_test(test_dereg_fences),
		cmocka_unit_test(test_close_waits),
		cmocka_unit_test(test_accounting),
	};
	return cmocka_run_group_tests_name("device", tests, setup_media, teardown_media);
}
