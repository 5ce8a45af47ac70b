/* SPDX-License-Identifier: MIT */
/*
 * The control ABI where a holder depends on its exact words: a DMA request a fence stopped part-way
 * completes short and says how far it got and why; PIN_STATUS counts the ranges an ODP pin lost to
 * acknowledged invalidations; the events of an open file read in pages smaller than the queue lose
 * none; pins the daemon drops on its own when it stops reach their holders as DROPPED, by signal.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pins_fx.h"
#include "pins_util.h"

#define W DAXFS_PIN_WRITE
#define LT DAXFS_PIN_LONGTERM
#define ODP DAXFS_PIN_ODP

/* ---- an ODP holder giving up part of its pin ---- */

struct punch_job {
	int fd;
	uint64_t off, len;
	int err;
	int done;	/* atomic */
};

static void *punch_thread(void *arg)
{
	struct punch_job *j = arg;

	j->err = fallocate(j->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)j->off, (off_t)j->len) ? errno
													     : 0;
	__atomic_store_n(&j->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* The first INVALIDATE event of pin id at or after *from, or 0 (*from moves past what was read). */
static uint64_t find_invalidation(int fd, uint64_t pin_id, uint64_t *from)
{
	struct daxfs_event ev[8];
	uint32_t n = 0;
	uint64_t seq = 0;

	if (daxfs_events(fd, *from, ev, 8, &n, from))
		return 0;
	for (uint32_t i = 0; i < n && !seq; i++)
		if (ev[i].type == DAXFS_EV_INVALIDATE && ev[i].pin_id == pin_id)
			seq = ev[i].seq;
	return seq;
}

/*
 * Punch file bytes [off, off + len) under the odp policy while x's ODP pin holds them: acknowledge
 * the invalidation as the holder's driver would, and let the punch finish.  *from: where the
 * holder's reading of its events is (1 at first).
 */
static void punch_and_ack(struct fx *x, uint64_t off, uint64_t len, uint64_t *from)
{
	struct punch_job j = { .fd = x->fd, .off = off, .len = len };
	uint64_t seq = 0;
	pthread_t t;

	assert_int_equal(pthread_create(&t, NULL, punch_thread, &j), 0);
	if (!PU_POLL((seq = find_invalidation(x->fd, x->p.id, from)) != 0, 20000))
		fail_msg("no invalidation of pin %llu for a punch of [%llu, +%llu)", (unsigned long long)x->p.id,
			 (unsigned long long)off, (unsigned long long)len);
	assert_int_equal(daxfs_event_ack(x->fd, x->p.id, seq), 0);
	if (!PU_POLL(__atomic_load_n(&j.done, __ATOMIC_ACQUIRE), 20000))
		fail_msg("the punch still waits after its invalidation was acknowledged");
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(j.err, 0);
}

/* ---- DMA stopped part-way ---- */

static struct daxfs_ioc_dma dma_req(uint64_t pin_id, uint32_t op, uint64_t off, uint64_t len, uint64_t seq)
{
	return (struct daxfs_ioc_dma){ .op = op, .pin_id = pin_id, .offset = off, .length = len, .seq = seq };
}

/*
 * The second half of an ODP pin is invalidated: a request over the whole pin does the first half
 * and succeeds short (done, and result -EFAULT: why it stopped); one that starts in the second half
 * does nothing and fails.  daxfs_dma, all or an error, fails with the reason.  After a refault the
 * whole pin goes through again.
 */
static void test_dma_short(void **state)
{
	struct fx x;
	const uint64_t half = PIN_LEN / 2;
	uint64_t from = 1;

	(void)state;
	fx_setup_flags(&x, "dmashort", "policy=odp,ack_ms=20000", W | LT | ODP);
	punch_and_ack(&x, PIN_OFF + half, half, &from);

	struct daxfs_ioc_dma d = dma_req(x.p.id, DAXFS_DMA_WRITE_PATTERN, 0, PIN_LEN, 7);
	assert_int_equal(daxfs_dma_run(x.fd, &d), 0);
	assert_int_equal(d.done, half);
	assert_int_equal(d.result, -EFAULT);
	/* What it did, it did: the first half of the file holds its tags. */
	char *buf = malloc(half);
	assert_non_null(buf);
	assert_int_equal(pread(x.fd, buf, half, PIN_OFF), (ssize_t)half);
	assert_int_equal(pu_count_units(buf, half, x.p.id, 7), half / DAXFS_TAG_UNIT);
	free(buf);
	d = dma_req(x.p.id, DAXFS_DMA_VERIFY_PATTERN, 0, PIN_LEN, 7);
	assert_int_equal(daxfs_dma_run(x.fd, &d), 0);
	assert_int_equal(d.done, half);
	assert_int_equal(d.mismatches, 0);
	assert_int_equal(d.result, -EFAULT);
	/* Nothing done: the request fails. */
	d = dma_req(x.p.id, DAXFS_DMA_WRITE_PATTERN, half, half, 7);
	assert_int_equal(daxfs_dma_run(x.fd, &d), -EFAULT);
	assert_int_equal(daxfs_dma(x.fd, x.p.id, DAXFS_DMA_WRITE_PATTERN, 0, PIN_LEN, 7, NULL, NULL), -EFAULT);
	/* Refaulted, the whole pin is the device's again. */
	assert_int_equal(daxfs_pin_fault(x.fd, &x.p, half, half), 0);
	d = dma_req(x.p.id, DAXFS_DMA_WRITE_PATTERN, 0, PIN_LEN, 8);
	assert_int_equal(daxfs_dma_run(x.fd, &d), 0);
	assert_int_equal(d.done, PIN_LEN);
	assert_int_equal(d.result, 0);
	dma_write_checked(&x, 9);
	fx_done(&x);
}

/* ---- what PIN_STATUS says an ODP pin has lost ---- */

static uint32_t invalidated(struct fx *x)
{
	struct daxfs_ioc_pin_status st;

	assert_int_equal(daxfs_pin_status(x->fd, x->p.id, &st), 0);
	return st.invalidated;
}

/* invalidated counts the ranges acknowledged and not faulted in again, whatever their size. */
static void test_invalidated_ranges(void **state)
{
	struct fx x;
	uint64_t from = 1;

	(void)state;
	fx_setup_flags(&x, "invalranges", "policy=odp,ack_ms=20000", W | LT | ODP);
	assert_int_equal(invalidated(&x), 0);
	punch_and_ack(&x, PIN_OFF + PIN_LEN / 2, PIN_LEN / 2, &from);	/* 1 MiB: 256 blocks, one range */
	assert_int_equal(invalidated(&x), 1);
	punch_and_ack(&x, PIN_OFF + BS, BS, &from);
	assert_int_equal(invalidated(&x), 2);
	assert_int_equal(daxfs_pin_fault(x.fd, &x.p, BS, BS), 0);
	assert_int_equal(invalidated(&x), 1);
	assert_int_equal(daxfs_pin_fault(x.fd, &x.p, 0, PIN_LEN), 0);
	assert_int_equal(invalidated(&x), 0);
	fx_done(&x);
}

/* ---- events in pages ---- */

#define NPINS 150	/* a lease break and a revocation each: more events than one page of the ioctl */

/* Read every event of fd, max at a time, asking from next_seq each time, into ev[]: their number. */
static uint32_t read_all_events(int fd, uint32_t max, struct daxfs_event *ev, uint32_t cap)
{
	uint64_t from = 1;
	uint32_t total = 0, n;

	do {
		assert_true(total + max <= cap);
		assert_int_equal(daxfs_events(fd, from, ev + total, max, &n, &from), 0);
		total += n;
	} while (n > 0);
	return total;
}

/*
 * 300 events queued on each of two open files (each of their 150 pins broken, then revoked): read
 * with a buffer of 7, and with the ioctl's own pages of 200, asking from next_seq each time, every
 * one arrives once, in order.
 */
static void test_events_paged(void **state)
{
	struct mnt m;
	char f[512];
	static struct daxfs_event ev[3 * NPINS];
	uint64_t id[2][NPINS];
	int fd[2];

	(void)state;
	pu_setup(&m, "evpaged", "64M", "policy=revoke,grace_ms=50");
	snprintf(f, sizeof(f), "%s", P(&m, "F"));
	pu_write_file(f, NPINS * BS, 1);
	for (int k = 0; k < 2; k++) {
		fd[k] = open(f, O_RDWR);
		assert_true(fd[k] >= 0);
		for (uint32_t i = 0; i < NPINS; i++) {
			struct daxfs_pin p = pu_pin(fd[k], i * BS, BS, W | LT);
			id[k][i] = p.id;
			daxfs_pin_free(&p);
		}
	}
	assert_ok(truncate(f, 0));	/* breaks every lease, revokes every pin at the deadline */
	/* A buffer of 7: next_seq is past each page, and reading on from it loses nothing. */
	uint32_t n = read_all_events(fd[0], 7, ev, 3 * NPINS);
	assert_int_equal(n, 2 * NPINS);
	for (uint32_t i = 0; i < n; i++)
		assert_int_equal(ev[i].seq, i + 1);
	for (uint32_t i = 0; i < NPINS; i++) {
		assert_int_equal(ev[i].type, DAXFS_EV_LEASE_BREAK);
		assert_int_equal(ev[i].pin_id, id[0][i]);
		assert_int_equal(ev[NPINS + i].type, DAXFS_EV_REVOKED);
		assert_int_equal(ev[NPINS + i].pin_id, id[0][i]);
	}
	/* The ioctl itself, 200 a page. */
	struct daxfs_ioc_events *a = calloc(1, sizeof(*a));
	assert_non_null(a);
	uint64_t from = 1, seen = 0;
	for (int page = 0;; page++) {
		memset(a, 0, sizeof(*a));
		a->size = sizeof(*a);
		a->from_seq = from;
		assert_ok(ioctl(fd[1], DAXFS_IOC_EVENTS, a));
		if (a->count == 0)
			break;
		assert_true(page < 2);
		for (uint32_t i = 0; i < a->count; i++)
			assert_int_equal(a->ev[i].seq, seen + 1 + i);
		seen += a->count;
		assert_int_equal(a->next_seq, seen + 1);
		from = a->next_seq;
	}
	assert_int_equal(seen, 2 * NPINS);
	assert_int_equal(a->next_seq, seen + 1);	/* nothing returned: the seq the next event will get */
	free(a);
	for (int k = 0; k < 2; k++) {
		for (uint32_t i = 0; i < NPINS; i++)
			assert_int_equal(daxfs_unpin(fd[k], id[k][i]), 0);
		close(fd[k]);
	}
	pu_finish(&m);
}

/* ---- pins the daemon drops on its own ---- */

static uint64_t dropped_ids[4];
static int ndropped;	/* atomic */

static void on_pin_signal(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	int i = __atomic_load_n(&ndropped, __ATOMIC_RELAXED);

	if (si->si_code == SI_QUEUE && i < 4) {
		dropped_ids[i] = (uint64_t)(uintptr_t)si->si_value.sival_ptr;
		__atomic_store_n(&ndropped, i + 1, __ATOMIC_RELEASE);
	}
}

/*
 * The daemon stops (SIGTERM) while a holder keeps its file open with two pins: the daemon drops
 * them itself, and raises DROPPED for each.  The holder cannot read its events any more (nothing
 * answers on that file: ENOTCONN), so it learns of it by the pins' signal, one each.  The image is
 * left clean.
 */
static void test_dropped_at_shutdown(void **state)
{
	struct mnt m;
	char f[512], out[4096];
	struct daxfs_pin p, q;
	struct sigaction sa = { .sa_sigaction = on_pin_signal, .sa_flags = SA_SIGINFO | SA_RESTART }, old;
	int sig = SIGRTMIN + 3, st;

	(void)state;
	sigaction(sig, &sa, &old);
	pu_setup(&m, "dropped", "64M", NULL);
	snprintf(f, sizeof(f), "%s", P(&m, "F"));
	pu_write_file(f, 1 * MiB, 1);
	int fd = open(f, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(daxfs_pin_signal(fd, 0, 64 * KiB, W, sig, &p), 0);
	assert_int_equal(daxfs_pin_signal(fd, 64 * KiB, 64 * KiB, 0, sig, &q), 0);
	assert_int_equal(__atomic_load_n(&ndropped, __ATOMIC_ACQUIRE), 0);
	pu_guard(NULL, NULL, 0);	/* the daemon is meant to go */
	assert_ok(kill(m.daemon, SIGTERM));
	if (!PU_POLL(waitpid(m.daemon, &st, WNOHANG) == m.daemon, 20000))
		fail_msg("the daemon did not exit within 20 s of SIGTERM");
	m.daemon = 0;
	assert_true(WIFEXITED(st));	/* 1: stopped by a signal, not unmounted */
	if (!PU_POLL(__atomic_load_n(&ndropped, __ATOMIC_ACQUIRE) == 2, 10000))
		fail_msg("%d DROPPED signals, not 2", __atomic_load_n(&ndropped, __ATOMIC_ACQUIRE));
	assert_true((dropped_ids[0] == p.id && dropped_ids[1] == q.id) ||
		    (dropped_ids[0] == q.id && dropped_ids[1] == p.id));
	struct daxfs_event ev[4];
	uint32_t n;
	int ret = daxfs_events(fd, 1, ev, 4, &n, NULL);
	/*
	 * Over io_uring the kernel lets go of the connection a moment after the daemon exits (its
	 * rings are torn down by a kernel worker): a request made in that moment is aborted instead.
	 */
	if (!(ret == -ENOTCONN || (strcmp(h_transport(), "uring") == 0 && ret == -ECONNABORTED)))
		fail_msg("daxfs_events after the daemon stopped: %d, not -ENOTCONN", ret);
	close(fd);
	daxfs_pin_free(&p);
	daxfs_pin_free(&q);
	sigaction(sig, &old, NULL);
	if (pu_fsck(&m, out, sizeof(out)) != 0)
		fail_msg("fsck -n after the daemon stopped: %s", out);
	h_destroy(&m);
}

static int run(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dma_short),
		cmocka_unit_test(test_invalidated_ranges),
		cmocka_unit_test(test_events_paged),
		cmocka_unit_test(test_dropped_at_shutdown),
	};
	return cmocka_run_group_tests_name("abi", tests, NULL, NULL);
}

int main(void)
{
	return h_main(run);
}
