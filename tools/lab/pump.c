/* SPDX-License-Identifier: MIT */
/*
 * A DMA stream: the device writing one registration over and over at a set rate, as a NIC serving
 * incoming RDMA WRITEs into a registered buffer.  Completions are counted (and binned for the
 * timeline); the first failure ends the stream, as an application stops using a buffer that errs.
 */
#include "lab.h"

#include <errno.h>
#include <string.h>

static void account(struct lab_pump *p, const struct daxfs_wc *wc, int n, bool *failed)
{
	for (int i = 0; i < n; i++) {
		if (wc[i].status) {
			lab_errs_add(&p->errs, wc[i].status, 1);
			*failed = true;
			continue;
		}
		p->bytes += wc[i].bytes;
		p->wrs++;
		if (p->bins) {
			uint64_t b = (lab_now_ns() - p->t0) / p->bin_ns;

			if (b < p->nbins)
				__atomic_add_fetch(&p->bins[b], wc[i].bytes, __ATOMIC_RELAXED);
		}
	}
	if (n > 0)
		__atomic_add_fetch(&p->completed, (uint64_t)n, __ATOMIC_RELEASE);
}

static void *pump_main(void *arg)
{
	struct lab_pump *p = arg;
	struct daxfs_mr_info info;
	struct daxfs_qp *qp;
	struct daxfs_wc wc[32];
	uint64_t start = lab_now_ns(), posted_bytes = 0, off = 0;
	bool failed = false;
	int ret;

	daxfs_mr_query(p->mr, &info);
	uint64_t len = p->wr_size < info.length ? p->wr_size : info.length;
	len -= len % DAXFS_TAG_UNIT;
	if ((ret = daxfs_qp_create(p->dev, p->depth, &qp))) {
		lab_errs_add(&p->errs, ret, 1);
		__atomic_store_n(&p->stop, 1, __ATOMIC_RELEASE);
		return NULL;
	}
	while (!__atomic_load_n(&p->stop, __ATOMIC_ACQUIRE) && !failed && len) {
		/* How far ahead of the rate we are: post only what the rate allows by now. */
		uint64_t now = lab_now_ns();
		uint64_t allowed = p->rate ? (uint64_t)((double)(now - start) * (double)p->rate / 1e9) + len : UINT64_MAX;

		if (daxfs_qp_outstanding(qp) < p->depth && posted_bytes < allowed) {
			if (off + len > info.length)
				off = 0;
			struct daxfs_wr wr = { .opcode = DAXFS_WR_WRITE, .mr = p->mr, .offset = off, .length = len };

			ret = daxfs_post(qp, &wr);
			if (ret == 0) {
				posted_bytes += len;
				off += len;
				account(p, wc, daxfs_poll_cq(qp, wc, 32), &failed);
				continue;
			}
			if (ret != -EAGAIN) {
				lab_errs_add(&p->errs, ret, 1);
				p->lost = ret == -ENOLINK || ret == -ESHUTDOWN;
				break;
			}
		}
		if (daxfs_qp_outstanding(qp)) {
			account(p, wc, daxfs_wait_cq(qp, wc, 32, 2), &failed);
		} else {
			uint64_t due = p->rate ? start + (uint64_t)((double)posted_bytes * 1e9 / (double)p->rate) : now;

			lab_sleep_ns(due > now ? (due - now < 2000000 ? due - now : 2000000) : 100000);
		}
	}
	/* What is in flight completes, whatever happens to the registration. */
	while (daxfs_qp_outstanding(qp))
		account(p, wc, daxfs_wait_cq(qp, wc, 32, 1000), &failed);
	daxfs_qp_destroy(qp);
	struct daxfs_mr_info after;
	daxfs_mr_query(p->mr, &after);
	if (after.state == DAXFS_MR_LOST)
		p->lost = true;
	__atomic_store_n(&p->stop, 1, __ATOMIC_RELEASE);
	return NULL;
}

int lab_pump_start(struct lab_pump *p)
{
	int ret;

	p->stop = 0;
	p->completed = 0;
	if (!p->depth)
		p->depth = 8;
	if (!p->wr_size)
		p->wr_size = 64 * 1024;
	if ((ret = pthread_create(&p->thread, NULL, pump_main, p)))
		return -ret;
	p->running = true;
	return 0;
}

bool lab_pump_wait_completed(struct lab_pump *p, uint64_t n, uint32_t timeout_ms)
{
	uint64_t deadline = lab_now_ns() + (uint64_t)timeout_ms * 1000000ull;

	while (__atomic_load_n(&p->completed, __ATOMIC_ACQUIRE) < n) {
		if (__atomic_load_n(&p->stop, __ATOMIC_ACQUIRE) || lab_now_ns() >= deadline)
			return false;
		lab_sleep_ns(1000000);
	}
	return true;
}

void lab_pump_stop(struct lab_pump *p)
{
	if (!p->running)
		return;
	__atomic_store_n(&p->stop, 1, __ATOMIC_RELEASE);
	pthread_join(p->thread, NULL);
	p->running = false;
}
