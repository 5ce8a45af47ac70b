/* SPDX-License-Identifier: MIT */
/*
 * devbench: the simulated RDMA device on a mounted daxfs, against references measured in the same
 * run.
 *
 *   devbench MOUNTPOINT
 *
 *   write_qd1, write_qd32   device WRITE bandwidth (64 KiB tagged payloads, one registration of
 *                           64 MiB, sequential) against a plain io_uring write loop over the same
 *                           media file, at the same media offsets, same size and depth.  Target at
 *                           QD 32: >= 0.8x.
 *   rps_4k                  requests per second with 4 KiB payloads at QD 32, against the loop.
 *   event latency           from the call of a truncate that breaks the lease (policy revoke) to
 *                           the device's event handler, delivered by a signal and by polling
 *                           (every 2 ms).  Target with the signal: p99 < 1 ms.
 * Bandwidth figures: the median of RUNS runs of RUN_S seconds each, device and loop alternating,
 * after a warm-up; the spread is (max - min) / median.  Output: "metric=... value=... unit=...".
 */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench.h"
#include "daxfs/device.h"

#define RUNS 5
#define RUN_S 0.4
#define MiB (1ull << 20)
#define REG_LEN (64 * MiB)
#define EVENT_ROUNDS 200

/* ---- the reference: a plain io_uring write loop over the same media offsets ---- */

struct loop_ctx {
	int media_fd;
	const struct daxfs_pin_extent *ext;
	uint32_t next;
	uint64_t len;
};

/* The media offset of byte off of the registration (extents tile it). */
static uint64_t media_of(const struct loop_ctx *l, uint64_t off)
{
	for (uint32_t i = 0; i < l->next; i++) {
		uint64_t s = l->ext[i].file_off - l->ext[0].file_off;
		if (off >= s && off < s + l->ext[i].len)
			return l->ext[i].media_off + (off - s);
	}
	return l->ext[0].media_off;
}

/* Requests completed per second by the loop: size bytes each, qd in flight. */
static double loop_run(const struct loop_ctx *l, uint64_t size, uint32_t qd, double secs)
{
	struct io_uring ring;
	char *buf = aligned_alloc(4096, size);
	uint64_t pos = 0, done = 0;
	uint32_t inflight = 0;

	if (!buf || io_uring_queue_init(qd * 2 < 8 ? 8 : qd * 2, &ring, 0))
		bench_die("io_uring", ENOMEM);
	memset(buf, 0xa5, size);
	double t0 = bench_now(), end = t0 + secs;
	for (;;) {
		bool more = bench_now() < end;
		while (more && inflight < qd) {
			struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);

			io_uring_prep_write(sqe, l->media_fd, buf, (unsigned)size, media_of(l, pos));
			pos = pos + size >= l->len ? 0 : pos + size;
			inflight++;
		}
		io_uring_submit(&ring);
		if (!inflight)
			break;
		struct io_uring_cqe *cqe;
		if (io_uring_wait_cqe(&ring, &cqe))
			bench_die("wait", EIO);
		unsigned head, n = 0;
		io_uring_for_each_cqe(&ring, head, cqe) {
			if (cqe->res != (int)size)
				bench_die("loop write", cqe->res < 0 ? -cqe->res : EIO);
			n++;
		}
		io_uring_cq_advance(&ring, n);
		inflight -= n;
		done += n;
	}
	double t = bench_now() - t0;
	io_uring_queue_exit(&ring);
	free(buf);
	return (double)done / t;
}

/* ---- the device ---- */

static double dev_run(struct daxfs_dev *dev, struct daxfs_mr *mr, uint64_t len, uint64_t size, uint32_t qd, double secs)
{
	struct daxfs_qp *qp;
	struct daxfs_wc wc[64];
	uint64_t pos = 0, done = 0;
	int ret;

	if ((ret = daxfs_qp_create(dev, qd, &qp)))
		bench_die("qp", -ret);
	double t0 = bench_now(), end = t0 + secs;
	struct daxfs_wr wr[64];
	for (;;) {
		bool more = bench_now() < end;
		int room = more ? (int)(qd - daxfs_qp_outstanding(qp)) : 0, posted;
		if (room > 64)
			room = 64;
		for (int i = 0; i < room; i++) {
			wr[i] = (struct daxfs_wr){ .opcode = DAXFS_WR_WRITE, .mr = mr, .offset = pos, .length = size };
			pos = pos + size >= len ? 0 : pos + size;
		}
		if (room && (ret = daxfs_post_list(qp, wr, room, &posted)) && ret != -EAGAIN)
			bench_die("post", -ret);
		if (!more && daxfs_qp_outstanding(qp) == 0)
			break;
		int n = daxfs_wait_cq(qp, wc, 64, 100);
		for (int i = 0; i < n; i++)
			if (wc[i].status)
				bench_die("device write", -wc[i].status);
		done += (uint64_t)n;
	}
	double t = bench_now() - t0;
	daxfs_qp_destroy(qp);
	return (double)done / t;
}

static void spread_report(const char *metric, double *v, int n, const char *unit)
{
	double lo = v[0], hi = v[0];

	for (int i = 1; i < n; i++) {
		lo = v[i] < lo ? v[i] : lo;
		hi = v[i] > hi ? v[i] : hi;
	}
	double med = bench_median(v, n);
	char m[128];
	bench_report(metric, med, unit);
	snprintf(m, sizeof(m), "%s_spread", metric);
	bench_report(m, med > 0 ? (hi - lo) / med : 0, "ratio");
}

/* Device against loop, alternating, RUNS times after a warm-up of each: rates in requests/s. */
static void compare(const char *name, struct daxfs_dev *dev, struct daxfs_mr *mr, const struct loop_ctx *l,
		    uint64_t size, uint32_t qd, bool bytes)
{
	double d[RUNS], r[RUNS], ratio[RUNS];
	char m[128];

	dev_run(dev, mr, l->len, size, qd, RUN_S / 2);
	loop_run(l, size, qd, RUN_S / 2);
	for (int i = 0; i < RUNS; i++) {
		r[i] = loop_run(l, size, qd, RUN_S);
		d[i] = dev_run(dev, mr, l->len, size, qd, RUN_S);
		ratio[i] = d[i] / r[i];
		if (bytes) {
			d[i] = d[i] * (double)size / (double)(1ull << 30);
			r[i] = r[i] * (double)size / (double)(1ull << 30);
		}
	}
	snprintf(m, sizeof(m), "%s_device", name);
	spread_report(m, d, RUNS, bytes ? "GiB/s" : "req/s");
	snprintf(m, sizeof(m), "%s_loop", name);
	spread_report(m, r, RUNS, bytes ? "GiB/s" : "req/s");
	snprintf(m, sizeof(m), "%s_ratio", name);
	spread_report(m, ratio, RUNS, "x");
}

/* ---- event latency ---- */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

struct ev_clock {
	uint64_t at;	/* atomic: when the handler ran */
};

static void on_event(void *arg, struct daxfs_mr *mr, const struct daxfs_event *ev)
{
	struct ev_clock *c = arg;

	(void)mr;
	if (ev->type == DAXFS_EV_LEASE_BREAK)
		__atomic_store_n(&c->at, now_ns(), __ATOMIC_RELEASE);
}

struct trunc_job {
	const char *path;
	uint64_t called;
	int err;
};

static void *trunc_thread(void *arg)
{
	struct trunc_job *j = arg;
	sigset_t set;

	sigemptyset(&set);
	for (int s = SIGRTMIN; s <= SIGRTMAX; s++)
		sigaddset(&set, s);
	pthread_sigmask(SIG_BLOCK, &set, NULL);	/* the event signal is for the device, not for us */
	j->called = now_ns();
	j->err = truncate(j->path, 0) ? errno : 0;
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void event_latency(const char *mnt, int mfd, int signo, const char *name)
{
	struct ev_clock clk = { 0 };
	struct daxfs_dev_attr a = { .signo = signo, .on_event = on_event, .arg = &clk };
	struct daxfs_dev *dev;
	uint64_t lat[EVENT_ROUNDS];
	char path[512], m[128];
	int ret;

	if ((ret = daxfs_dev_open(mfd, NULL, &a, &dev)))
		bench_die(daxfs_dev_errmsg(), -ret);
	snprintf(path, sizeof(path), "%s/devbench-ev", mnt);
	int fd = bench_make_file(mnt, "devbench-ev", 64 << 10);
	for (int i = -10; i < EVENT_ROUNDS; i++) {	/* ten rounds of warm-up */
		struct daxfs_mr *mr;
		pthread_t t;
		struct trunc_job j = { .path = path };

		if (ftruncate(fd, 64 << 10))
			bench_die("ftruncate", errno);
		if ((ret = daxfs_reg_mr(dev, fd, 0, 64 << 10, DAXFS_PIN_WRITE | DAXFS_PIN_LONGTERM, &mr)))
			bench_die(daxfs_dev_errmsg(), -ret);
		__atomic_store_n(&clk.at, 0, __ATOMIC_RELEASE);
		pthread_create(&t, NULL, trunc_thread, &j);
		pthread_join(t, NULL);	/* returns once the device let go */
		if (j.err)
			bench_die("truncate", j.err);
		uint64_t at = __atomic_load_n(&clk.at, __ATOMIC_ACQUIRE);
		if (!at)
			bench_die("no lease-break event", EPROTO);
		if (i >= 0)
			lat[i] = at - j.called;
		daxfs_dereg_mr(mr);
	}
	close(fd);
	unlink(path);
	daxfs_dev_close(dev);
	qsort(lat, EVENT_ROUNDS, sizeof(lat[0]), cmp_u64);
	snprintf(m, sizeof(m), "event_latency_%s_p50", name);
	bench_report(m, (double)lat[EVENT_ROUNDS / 2] / 1e3, "us");
	snprintf(m, sizeof(m), "event_latency_%s_p99", name);
	bench_report(m, (double)lat[EVENT_ROUNDS * 99 / 100] / 1e3, "us");
	snprintf(m, sizeof(m), "event_latency_%s_max", name);
	bench_report(m, (double)lat[EVENT_ROUNDS - 1] / 1e3, "us");
}

int main(int argc, char **argv)
{
	struct daxfs_dev *dev;
	struct daxfs_mr *mr;
	struct daxfs_dev_info di;
	struct daxfs_ioc_policy pol;
	int ret;

	if (argc != 2) {
		fprintf(stderr, "usage: devbench MOUNTPOINT (a daxfs mount; as root)\n");
		return 2;
	}
	const char *mnt = argv[1];
	int mfd = open(mnt, O_RDONLY | O_DIRECTORY);
	if (mfd < 0)
		bench_die(mnt, errno);
	if ((ret = daxfs_dev_open(mfd, NULL, NULL, &dev)))
		bench_die(daxfs_dev_errmsg(), -ret);
	daxfs_dev_query(dev, &di);
	int fd = bench_make_file(mnt, "devbench-data", REG_LEN);
	if ((ret = daxfs_reg_mr(dev, fd, 0, REG_LEN, DAXFS_PIN_WRITE | DAXFS_PIN_LONGTERM, &mr)))
		bench_die(daxfs_dev_errmsg(), -ret);
	struct daxfs_pin_extent *ext;
	uint32_t next;
	daxfs_mr_extents(mr, &ext, &next);
	struct loop_ctx l = { .media_fd = open(di.media_path, O_RDWR), .ext = ext, .next = next, .len = REG_LEN };
	if (l.media_fd < 0)
		bench_die(di.media_path, errno);

	compare("write_qd1", dev, mr, &l, 64 << 10, 1, true);
	compare("write_qd32", dev, mr, &l, 64 << 10, 32, true);
	compare("rps_4k_qd32", dev, mr, &l, 4 << 10, 32, false);

	free(ext);
	close(l.media_fd);
	daxfs_dev_close(dev);
	close(fd);
	char p[512];
	snprintf(p, sizeof(p), "%s/devbench-data", mnt);
	unlink(p);

	/* Event latency under revoke (a long grace period: the device's unpin ends each wait). */
	daxfs_policy_get(mfd, &pol);
	if ((ret = daxfs_policy_set(mfd, "revoke", "grace_ms=20000", NULL, 0)))
		bench_die("policy revoke", -ret);
	event_latency(mnt, mfd, SIGRTMIN + 1, "signal");
	event_latency(mnt, mfd, 0, "polled");
	daxfs_policy_set(mfd, pol.name, NULL, NULL, 0);
	close(mfd);
	return 0;
}
