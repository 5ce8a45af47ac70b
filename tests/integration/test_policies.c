/* SPDX-License-Identifier: MIT */
/*
 * Every policy, one table: pinned blocks leave their file by truncate, punch hole and O_TRUNC while
 * the daemon's DMA engine writes through the pin, and each policy must do what it promises (a new
 * policy gets these tests by adding a row); and the file is unlinked under the pin, which no policy
 * is asked about.  Then the machinery of waiting: waits that cost no
 * thread (a thousand truncates waiting on a single-threaded daemon), interrupts, new pins during a
 * break (the 2017 get_user_pages vs punch deadlock under wait, and none under the others), broken
 * leases that stay broken, the DMA fence (unpin and revocation stop DMA in flight), events by
 * signal, and what readers and other users may do: read pins allocate nothing, failed pins undo
 * their allocation, pins that can stall the owner need ownership or CAP_LEASE, per-user limits.
 *
 * Timing is never asserted except as generous upper bounds that catch hangs; "it is waiting" is
 * read from the daemon's own count of waiting requests.  Anything that could block for ever runs
 * under pu_guard, so a deadlock fails the test instead of hanging the suite.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pins_fx.h"
#include "pins_util.h"

#define W DAXFS_PIN_WRITE
#define LT DAXFS_PIN_LONGTERM

/* ---- a free running in a thread ---- */

/*
 * C_UNLINK: the holder's file is unlinked, and its open file is the last reference: the frees come at
 * its last close, and cannot wait.
 */
enum cause { C_TRUNCATE, C_PUNCH, C_OTRUNC, C_UNLINK };
static const char *const cause_name[] = { "truncate", "punch", "O_TRUNC", "unlink" };

struct free_job {
	const char *path;
	int fd;
	enum cause cause;
	int err;	/* 0 or errno */
	int done;	/* atomic */
};

static void *free_thread(void *arg)
{
	struct free_job *j = arg;
	int r = 0;

	switch (j->cause) {
	case C_TRUNCATE:
		r = truncate(j->path, 0);
		break;
	case C_PUNCH:
		r = fallocate(j->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, PIN_OFF, PIN_LEN);
		break;
	case C_OTRUNC: {
		int t = open(j->path, O_WRONLY | O_TRUNC);

		r = t < 0 ? -1 : close(t);
		break;
	}
	case C_UNLINK:
		r = unlink(j->path);
		break;
	}
	j->err = r ? errno : 0;
	__atomic_store_n(&j->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static bool job_done(struct free_job *j)
{
	return __atomic_load_n(&j->done, __ATOMIC_ACQUIRE);
}

/* Wait (bounded: a hang fails) for the job to finish. */
static void join_job(struct fx *x, pthread_t t, struct free_job *j, const char *what)
{
	if (!PU_POLL(job_done(j), PU_WAIT_MS))
		fail_msg("%s: still running after 20 s (%llu requests waiting in the daemon)", what,
			 (unsigned long long)pu_stats(x->dfd).waiting);
	assert_int_equal(pthread_join(t, NULL), 0);
}

/* The daemon counts n requests parked on its policy. */
static void wait_parked(struct fx *x, uint64_t n, const char *what)
{
	if (!PU_POLL(pu_stats(x->dfd).waiting >= n, PU_WAIT_MS))
		fail_msg("%s: the daemon never had %llu requests waiting (it has %llu)", what, (unsigned long long)n,
			 (unsigned long long)pu_stats(x->dfd).waiting);
}

/* ---- a holder that acknowledges invalidations, as an ODP device driver would ---- */

struct acker {
	int fd;
	uint64_t pin_id;
	volatile int stop;
	uint64_t acked;
};

static void *acker_thread(void *arg)
{
	struct acker *a = arg;
	uint64_t next = 1;

	while (!a->stop) {
		struct daxfs_event ev[16];
		uint32_t n = 0;

		if (daxfs_events(a->fd, next, ev, 16, &n, &next) == 0)
			for (uint32_t i = 0; i < n; i++)
				if (ev[i].type == DAXFS_EV_INVALIDATE && ev[i].pin_id == a->pin_id &&
				    daxfs_event_ack(a->fd, a->pin_id, ev[i].seq) == 0)
					a->acked++;
		usleep(1000);
	}
	return NULL;
}

/* ---- the table ---- */

enum outcome {
	OUT_BUSY,		/* at once; the pinned blocks become busy until the unpin */
	OUT_WAIT,		/* waits until the holder unpins, then frees everything */
	OUT_FAIL,		/* EBUSY, the file unchanged */
	OUT_REVOKE,		/* after the grace period: the pin revoked, its blocks held until its file closes */
	OUT_INVALIDATE,		/* once the holder acknowledges: freed at once, no busy space; the pin faults there */
	OUT_UNSAFE,		/* at once, the pinned blocks freed: another file gets them and the DMA's tags */
	OUT_REFUSED,		/* the long-term pin is refused */
	/*
	 * Unlink: at once, nothing freed while the holder's file is open (the pin and its DMA go on,
	 * into the file's own blocks); its last close drops the pins, fenced, before it frees the
	 * blocks, so nothing becomes busy and nothing pinned is freed, not even under unsafe.
	 */
	OUT_KEPT,
};

struct row {
	const char *name;
	const char *opts;	/* "%s" stands for the loadable example policy's path */
	uint32_t pin_flags;
	enum outcome out;	/* truncate, punch and O_TRUNC */
	enum outcome unlink;	/* unlink */
};

static const struct row rows[] = {
	{ "busy", "policy=busy", W | LT, OUT_BUSY, OUT_KEPT },
	{ "wait", "policy=wait", W | LT, OUT_WAIT, OUT_KEPT },
	{ "fail", "policy=fail", W | LT, OUT_FAIL, OUT_KEPT },
	{ "revoke", "policy=revoke,grace_ms=200", W | LT, OUT_REVOKE, OUT_KEPT },
	{ "unsafe", "policy=unsafe", W | LT, OUT_UNSAFE, OUT_KEPT },
	{ "deny-longterm", "policy=deny-longterm", W | LT, OUT_REFUSED, OUT_REFUSED },
	{ "deny-longterm-short", "policy=deny-longterm", W, OUT_WAIT, OUT_KEPT },
	{ "odp", "policy=odp,ack_ms=20000", W | LT | DAXFS_PIN_ODP, OUT_INVALIDATE, OUT_KEPT },
	{ "odp-refuses", "policy=odp", W | LT, OUT_REFUSED, OUT_REFUSED },
	{ "busy-quota", "policy=busy-quota,quota=64M", W | LT, OUT_BUSY, OUT_KEPT },
	{ "busy-quota-over", "policy=busy-quota,quota=1M,fallback=fail", W | LT, OUT_FAIL, OUT_KEPT },
	{ "busy-quota-holder", "policy=busy-quota,quota=64M,holder_quota=1M,fallback=revoke,grace_ms=100", W | LT,
	  OUT_REVOKE, OUT_KEPT },
	{ "revocable-only", "policy=busy,pins=revocable-only", W | LT, OUT_REFUSED, OUT_REFUSED },
	/* examples/policy-quota, loaded from its .so: within the holder's quota busy, past it a wait */
	{ "quota.so", "policy=%s,per_holder=64M", W | LT, OUT_BUSY, OUT_KEPT },
	{ "quota.so-over", "policy=%s,per_holder=1M,wait_ms=60000", W | LT, OUT_WAIT, OUT_KEPT },
};

static const char *quota_so(void)
{
	const char *p = getenv("POLICY_QUOTA_SO");

	if (!p)
		fail_msg("POLICY_QUOTA_SO is not set: run through meson test");
	return p;
}

static void check_file_after(struct fx *x, enum cause c, bool freed)
{
	struct stat st;

	if (c == C_UNLINK) {
		/* Gone from the namespace; its open file keeps all of it until the last close. */
		assert_false(freed);
		assert_errno(stat(x->f, &st), ENOENT);
		assert_ok(fstat(x->fd, &st));
		assert_int_equal(st.st_nlink, 0);
	} else {
		assert_ok(stat(x->f, &st));
	}
	if (!freed) {
		assert_int_equal(st.st_size, FSIZE);
		assert_int_equal((uint64_t)st.st_blocks * 512 / BS, x->blocks);
		return;
	}
	if (c == C_PUNCH) {
		assert_int_equal(st.st_size, FSIZE);
		assert_true(pu_file_zero(x->f, PIN_OFF, PIN_LEN));
		assert_true(pu_check_file(x->f, 0, PIN_OFF, 1));
	} else {
		assert_int_equal(st.st_size, 0);
	}
}

/*
 * The unlinked file's last close: the holder closes without unpinning, and its pin goes with the open
 * file before the file's blocks are freed.  The frees cannot wait, and would make pinned blocks busy
 * (or free them, under unsafe) if any were still pinned: none is, under every policy.  bfull is
 * f_bfree before the close.
 */
static void last_close(struct fx *x, const struct daxfs_ioc_stats *s0, uint64_t bfull, const char *what)
{
	assert_ok(close(x->fd));
	x->fd = -1;
	if (!PU_POLL(pu_npins(x->dfd) == 0 && pu_bfree(&x->m) >= bfull + x->blocks, PU_WAIT_MS))
		fail_msg("%s: %d s after the last close: %u pins, %llu blocks free, expected at least %llu", what,
			 PU_WAIT_MS / 1000, pu_npins(x->dfd), (unsigned long long)pu_bfree(&x->m),
			 (unsigned long long)(bfull + x->blocks));
	struct daxfs_ioc_stats s = pu_stats(x->dfd);
	if (s.busy_created != s0->busy_created || s.busy_blocks || s.unsafe_blocks != s0->unsafe_blocks)
		fail_msg("%s: the last close freed blocks still pinned: %llu extents made busy (%llu blocks busy now), "
			 "%llu blocks freed unsafely; its pins must go first", what,
			 (unsigned long long)(s.busy_created - s0->busy_created), (unsigned long long)s.busy_blocks,
			 (unsigned long long)(s.unsafe_blocks - s0->unsafe_blocks));
}

/* One free of the pinned range under one row's policy. */
static void run_case(struct fx *x, const struct row *r, enum cause c)
{
	enum outcome out = c == C_UNLINK ? r->unlink : r->out;
	char what[128];
	pthread_t t, at;

	snprintf(what, sizeof(what), "policy %s, %s under DMA", r->name, cause_name[c]);
	pu_write_file(x->f, FSIZE, 1);
	x->fd = open(x->f, O_RDWR);
	assert_true(x->fd >= 0);
	struct stat st;
	assert_ok(fstat(x->fd, &st));
	x->ino = st.st_ino;
	x->blocks = (uint64_t)st.st_blocks * 512 / BS;
	if (out == OUT_REFUSED) {
		assert_int_equal(daxfs_pin(x->fd, PIN_OFF, PIN_LEN, r->pin_flags, &x->p), -EOPNOTSUPP);
		close(x->fd);
		x->fd = -1;
		return;
	}
	x->p = pu_pin(x->fd, PIN_OFF, PIN_LEN, r->pin_flags);
	dma_write_checked(x, 0x100 + c);
	struct acker ack = { .fd = x->fd, .pin_id = x->p.id };
	if (out == OUT_INVALIDATE)
		assert_int_equal(pthread_create(&at, NULL, acker_thread, &ack), 0);
	struct daxfs_ioc_stats s0 = pu_stats(x->dfd);

	struct free_job j = { .path = x->f, .fd = x->fd, .cause = c };
	pu_guard(&x->m, what, PU_TEST_TIMEOUT);
	assert_int_equal(pthread_create(&t, NULL, free_thread, &j), 0);
	if (out == OUT_WAIT) {
		wait_parked(x, 1, what);
		assert_false(job_done(&j));
		/* The holder still works with its file while the free waits. */
		dma_write_checked(x, 0x200 + c);
		assert_int_equal(daxfs_unpin(x->fd, x->p.id), 0);
	}
	join_job(x, t, &j, what);
	if (out == OUT_INVALIDATE) {
		ack.stop = 1;
		assert_int_equal(pthread_join(at, NULL), 0);
		assert_true(ack.acked >= 1);
	}
	pu_guard(&x->m, "checking", PU_TEST_TIMEOUT);
	struct daxfs_ioc_stats s = pu_stats(x->dfd);
	struct daxfs_ioc_pin_status ps;
	bool pinned = out != OUT_WAIT;

	switch (out) {
	case OUT_FAIL:
		assert_int_equal(j.err, EBUSY);
		check_file_after(x, c, false);
		assert_true(pu_check_file(x->f, 0, PIN_OFF, 1));
		assert_int_equal(s.busy_blocks, 0);
		assert_int_equal(s.frees_failed, s0.frees_failed + 1);
		break;
	case OUT_BUSY:
		assert_int_equal(j.err, 0);
		check_file_after(x, c, true);
		check_busy_is_pin(x);
		assert_int_equal(s.frees_waited, s0.frees_waited);
		break;
	case OUT_WAIT:
		assert_int_equal(j.err, 0);
		check_file_after(x, c, true);
		assert_int_equal(s.busy_blocks, 0);
		assert_int_equal(s.frees_waited, s0.frees_waited + 1);
		break;
	case OUT_REVOKE:
		assert_int_equal(j.err, 0);
		check_file_after(x, c, true);
		assert_int_equal(daxfs_pin_status(x->fd, x->p.id, &ps), 0);
		assert_int_equal(ps.state, DAXFS_PIN_REVOKED);
		assert_int_equal(s.pins_revoked, s0.pins_revoked + 1);
		/* Its device might not have stopped: the blocks stay out of reuse, as busy, until release. */
		check_busy_is_pin(x);
		assert_int_equal(s.revoked_held_blocks, PIN_BLOCKS);
		assert_int_equal(daxfs_dma(x->fd, x->p.id, DAXFS_DMA_WRITE_PATTERN, 0, PIN_LEN, 1, NULL, NULL), -ENOLINK);
		break;
	case OUT_INVALIDATE:
		assert_int_equal(j.err, 0);
		check_file_after(x, c, true);
		assert_int_equal(s.busy_blocks, 0);	/* freed at once */
		assert_int_equal(s.invalidations_acked, s0.invalidations_acked + 1);
		assert_int_equal(daxfs_pin_status(x->fd, x->p.id, &ps), 0);
		assert_int_equal(ps.state, DAXFS_PIN_ACTIVE);
		assert_true(ps.invalidated > 0);
		/* The device touching the range faults; past EOF it cannot refault. */
		assert_int_equal(daxfs_dma(x->fd, x->p.id, DAXFS_DMA_WRITE_PATTERN, 0, PIN_LEN, 1, NULL, NULL), -EFAULT);
		if (c == C_PUNCH) {
			assert_int_equal(daxfs_pin_fault(x->fd, &x->p, 0, PIN_LEN), 0);
			assert_int_equal(x->p.gen, 1);
			dma_write_checked(x, 0x300);	/* the new blocks, now F's again */
			char *buf = malloc(PIN_LEN);
			assert_non_null(buf);
			assert_int_equal(pread(x->fd, buf, PIN_LEN, PIN_OFF), (ssize_t)PIN_LEN);
			assert_int_equal(pu_count_units(buf, PIN_LEN, x->p.id, 0x300), PIN_UNITS);
			free(buf);
		} else {
			assert_int_equal(daxfs_pin_fault(x->fd, &x->p, 0, PIN_LEN), -ENXIO);
		}
		break;
	case OUT_UNSAFE:
		assert_int_equal(j.err, 0);
		check_file_after(x, c, true);
		assert_int_equal(s.busy_blocks, 0);
		assert_int_equal(s.unsafe_blocks, s0.unsafe_blocks + PIN_BLOCKS);
		break;
	case OUT_KEPT:
		assert_int_equal(j.err, 0);
		check_file_after(x, c, false);
		assert_int_equal(s.busy_blocks, 0);
		assert_int_equal(s.busy_created, s0.busy_created);
		assert_int_equal(s.unsafe_frees, s0.unsafe_frees);
		assert_int_equal(s.frees_waited, s0.frees_waited);
		assert_int_equal(s.frees_failed, s0.frees_failed);
		assert_int_equal(daxfs_pin_status(x->fd, x->p.id, &ps), 0);
		assert_int_equal(ps.state, DAXFS_PIN_ACTIVE);
		assert_int_equal(verify_mismatches(x, 0x100 + c), 0);	/* its blocks are still its own */
		break;
	case OUT_REFUSED:
		break;
	}

	/*
	 * Another file takes every free block, and the device writes through its pin again (where the
	 * policy still lets it).  Only unsafe lets those writes reach the other file.
	 */
	if (out != OUT_FAIL) {
		uint64_t glen = pu_fill(x->g);
		int dr = pinned ? daxfs_dma(x->fd, x->p.id, DAXFS_DMA_WRITE_PATTERN, 0, PIN_LEN, 0x400, NULL, NULL) : 0;
		struct scan sc = pu_scan(x->g);

		if (out == OUT_REVOKE)
			assert_int_equal(dr, -ENOLINK);
		else if (out == OUT_INVALIDATE)
			assert_int_equal(dr, c == C_PUNCH ? 0 : -EFAULT);	/* refaulted, or nothing left */
		else
			assert_int_equal(dr, 0);
		if (out == OUT_UNSAFE) {
			/* The baseline: G got the pinned blocks, and with them the device's writes. */
			assert_int_equal(g_overlap_with_pin(x, glen), PIN_LEN);
			assert_int_equal(sc.units, PIN_UNITS);
			assert_int_equal(sc.first.pin_id, x->p.id);
			assert_int_equal(sc.first.seq, 0x400);
		} else {
			if (sc.units || sc.foreign)
				fail_msg("%s: the filler got %llu tags (first of pin %llu) and %llu foreign bytes", what,
					 (unsigned long long)sc.units, (unsigned long long)sc.first.pin_id,
					 (unsigned long long)sc.foreign);
			/* What the pin holds now: an acknowledged invalidation gave some blocks up, legitimately. */
			if (pinned)
				assert_int_equal(daxfs_pin_refresh(x->fd, &x->p), 0);
			uint64_t shared = pinned ? g_overlap_with_pin(x, glen) : 0;
			if (shared)
				fail_msg("%s: the filler maps %llu bytes the pin holds", what, (unsigned long long)shared);
		}
		if (out == OUT_KEPT) {
			/* The DMA went to the unlinked file, which reads it through its open file. */
			char *buf = malloc(PIN_LEN);
			assert_non_null(buf);
			assert_int_equal(pread(x->fd, buf, PIN_LEN, PIN_OFF), (ssize_t)PIN_LEN);
			assert_int_equal(pu_count_units(buf, PIN_LEN, x->p.id, 0x400), PIN_UNITS);
			free(buf);
			/* G still holds the rest of the space: what comes back now is the file's. */
			last_close(x, &s0, pu_bfree(&x->m), what);
			pinned = false;
		}
		assert_ok(unlink(x->g));
	}
	if (pinned) {
		int ur = daxfs_unpin(x->fd, x->p.id);
		assert_int_equal(ur, 0);
	}
	daxfs_pin_free(&x->p);
	if (x->fd >= 0)
		close(x->fd);
	x->fd = -1;
	if (c != C_UNLINK)
		assert_ok(unlink(x->f));
	if (!PU_POLL(pu_stats(x->dfd).busy_blocks == 0 && pu_npins(x->dfd) == 0, PU_WAIT_MS))
		fail_msg("%s: busy blocks or pins left after the file closed", what);
}

static void test_every_policy(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct row *r = &rows[i];
		struct fx x;
		char name[64], opts[1024];

		snprintf(name, sizeof(name), "pol-%s", r->name);
		const char *so = strstr(r->opts, "%s");
		if (so)
			snprintf(opts, sizeof(opts), "%.*s%s%s", (int)(so - r->opts), r->opts, quota_so(), so + 2);
		else
			snprintf(opts, sizeof(opts), "%s", r->opts);
		pu_setup(&x.m, name, "64M", opts);
		snprintf(x.f, sizeof(x.f), "%s", P(&x.m, "F"));
		snprintf(x.g, sizeof(x.g), "%s", P(&x.m, "G"));
		x.dfd = pu_dirfd(&x.m);
		x.fd = -1;
		for (enum cause c = C_TRUNCATE; c <= C_UNLINK; c++)
			run_case(&x, r, c);
		close(x.dfd);
		pu_finish(&x.m);
	}
}

/* ---- the machinery of waiting ---- */

/*
 * The 2017 deadlock.  The holder has block A pinned; a punch of A starts waiting; the holder then
 * needs a new pin on block B of the same file before it can unpin A.  Under wait the file is off
 * limits while the punch waits (as the kernel's invalidate_lock), so the new pin waits behind the
 * punch: a deadlock, which the daemon's list of waits shows as a chain.  Under revoke and odp only
 * the range being freed is, so the pin on B goes through at once.  The second variant: the holder
 * needs to write B.  That write never reaches the daemon: the kernel's FUSE client holds the file's
 * i_rwsem across the punch request, as XFS holds its iolock across dax_break_layout.
 */
struct pin_job {
	int fd;
	uint64_t off;
	bool write;			/* pwrite B instead of pinning it */
	int ret;
	struct daxfs_pin p;
	int done;
	pid_t tid;
};

/* Whether thread *tid is inside system call nr (it may be blocked there). */
static bool in_syscall(const pid_t *tid, long nr)
{
	char path[64], buf[64] = "";
	pid_t t = __atomic_load_n(tid, __ATOMIC_ACQUIRE);

	if (!t)
		return false;
	snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", t);
	FILE *f = fopen(path, "r");
	if (!f)
		return false;
	bool in = fgets(buf, sizeof(buf), f) && strtol(buf, NULL, 10) == nr;
	fclose(f);
	return in;
}

static void *pin_thread(void *arg)
{
	struct pin_job *j = arg;

	__atomic_store_n(&j->tid, gettid(), __ATOMIC_RELEASE);
	if (j->write) {
		static const char block[BS] = { 'w' };

		j->ret = pwrite(j->fd, block, BS, (off_t)j->off) == BS ? 0 : -errno;
	} else {
		j->ret = daxfs_pin(j->fd, j->off, BS, 0, &j->p);
	}
	__atomic_store_n(&j->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void gup_vs_punch(const char *opts, bool deadlocks, bool write)
{
	struct fx x;
	pthread_t pt, bt;

	fx_setup(&x, deadlocks ? "gupwait" : "gupother", opts);
	struct free_job punch = { .path = x.f, .fd = x.fd, .cause = C_PUNCH };
	pu_guard(&x.m, "gup vs punch", PU_TEST_TIMEOUT);
	assert_int_equal(pthread_create(&pt, NULL, free_thread, &punch), 0);
	wait_parked(&x, 1, "the punch of A");
	struct pin_job b = { .fd = x.fd, .off = 8 * MiB, .write = write };
	assert_int_equal(pthread_create(&bt, NULL, pin_thread, &b), 0);
	if (deadlocks && write) {
		/* The write waits in the kernel, behind the punch: only the punch is on the daemon's list. */
		if (!PU_POLL(in_syscall(&b.tid, SYS_pwrite64), PU_WAIT_MS))
			fail_msg("the write of B never entered pwrite");
		struct daxfs_wait_info *w;
		uint32_t n;
		assert_int_equal(daxfs_list_waits(x.dfd, &w, &n), 0);
		assert_int_equal(n, 1);
		assert_int_equal(w[0].kind, DAXFS_WAIT_PUNCH);
		assert_int_equal(w[0].blocker_pin, x.p.id);
		assert_int_equal(w[0].blocker_pid, getpid());
		free(w);
		assert_false(__atomic_load_n(&b.done, __ATOMIC_ACQUIRE));
		assert_int_equal(daxfs_unpin(x.fd, x.p.id), 0);
		join_job(&x, pt, &punch, "the punch after A's unpin");
		if (!PU_POLL(__atomic_load_n(&b.done, __ATOMIC_ACQUIRE), PU_WAIT_MS))
			fail_msg("the write of B still waiting after the punch finished");
		assert_int_equal(pthread_join(bt, NULL), 0);
		assert_int_equal(b.ret, 0);
	} else if (deadlocks) {
		/* The pin of B parks behind the punch, which waits for A's pin: each waits for the other. */
		wait_parked(&x, 2, "the pin of B");
		struct daxfs_wait_info *w;
		uint32_t n;
		assert_int_equal(daxfs_list_waits(x.dfd, &w, &n), 0);
		assert_int_equal(n, 2);
		const struct daxfs_wait_info *pw = w[0].kind == DAXFS_WAIT_PIN ? &w[0] : &w[1];
		const struct daxfs_wait_info *fw = pw == &w[0] ? &w[1] : &w[0];
		assert_int_equal(fw->kind, DAXFS_WAIT_PUNCH);
		assert_int_equal(fw->blocker_pin, x.p.id);
		assert_int_equal(fw->blocker_pid, getpid());
		assert_int_equal(pw->kind, DAXFS_WAIT_PIN);
		assert_int_equal(pw->ino, x.ino);
		assert_int_equal(pw->blocker_wait, fw->wait_id);
		assert_int_equal(pw->pid, fw->blocker_pid);	/* the chain closes: a deadlock */
		free(w);
		assert_false(__atomic_load_n(&b.done, __ATOMIC_ACQUIRE));
		/* Break it as a user would: the holder gives up A (here from another thread). */
		assert_int_equal(daxfs_unpin(x.fd, x.p.id), 0);
		join_job(&x, pt, &punch, "the punch after A's unpin");
		if (!PU_POLL(__atomic_load_n(&b.done, __ATOMIC_ACQUIRE), PU_WAIT_MS))
			fail_msg("B still waiting after the punch finished");
		assert_int_equal(pthread_join(bt, NULL), 0);
		assert_int_equal(b.ret, 0);
	} else {
		/* Only the range being freed is off limits: B pins at once while the punch waits. */
		if (!PU_POLL(__atomic_load_n(&b.done, __ATOMIC_ACQUIRE), PU_WAIT_MS))
			fail_msg("B waited behind a punch of A under %s", opts);
		assert_int_equal(pthread_join(bt, NULL), 0);
		assert_int_equal(b.ret, 0);
		assert_false(job_done(&punch));
		assert_int_equal(daxfs_unpin(x.fd, x.p.id), 0);
		join_job(&x, pt, &punch, "the punch after A's unpin");
	}
	assert_int_equal(punch.err, 0);
	if (write) {
		char got = 0;

		assert_int_equal(pread(x.fd, &got, 1, 8 * MiB), 1);
		assert_int_equal(got, 'w');
	} else {
		assert_int_equal(daxfs_unpin(x.fd, b.p.id), 0);
		daxfs_pin_free(&b.p);
	}
	pu_guard(&x.m, "the rest", PU_TEST_TIMEOUT);
	fx_done(&x);
}

static void test_gup_vs_punch_wait(void **state)
{
	(void)state;
	gup_vs_punch("policy=wait", true, false);
}

static void test_gup_vs_punch_write_wait(void **state)
{
	(void)state;
	gup_vs_punch("policy=wait", true, true);
}


static void test_gup_vs_punch_revoke(void **state)
{
	(void)state;
	gup_vs_punch("policy=revoke,grace_ms=20000", false, false);
}

/* A pin on the very range being broken waits for the free, then finds the range gone. */
static void test_new_pin_waits_for_break(void **state)
{
	struct fx x;
	pthread_t tt, pt;

	(void)state;
	fx_setup(&x, "newpin", "policy=revoke,grace_ms=20000");
	int fd2 = open(x.f, O_RDWR);
	assert_true(fd2 >= 0);
	struct free_job tr = { .path = x.f, .fd = x.fd, .cause = C_TRUNCATE };
	pu_guard(&x.m, "new pin during a lease break", PU_TEST_TIMEOUT);
	assert_int_equal(pthread_create(&tt, NULL, free_thread, &tr), 0);
	wait_parked(&x, 1, "the truncate");
	struct pin_job q = { .fd = fd2, .off = PIN_OFF };
	assert_int_equal(pthread_create(&pt, NULL, pin_thread, &q), 0);
	wait_parked(&x, 2, "the new pin");
	assert_false(__atomic_load_n(&q.done, __ATOMIC_ACQUIRE));
	assert_int_equal(daxfs_unpin(x.fd, x.p.id), 0);	/* the holder answers the lease break */
	join_job(&x, tt, &tr, "the truncate");
	assert_int_equal(tr.err, 0);
	if (!PU_POLL(__atomic_load_n(&q.done, __ATOMIC_ACQUIRE), PU_WAIT_MS))
		fail_msg("the new pin still waiting after the truncate finished");
	assert_int_equal(pthread_join(pt, NULL), 0);
	assert_int_equal(q.ret, -EINVAL);	/* the file is empty now: nothing to pin */
	close(fd2);
	pu_guard(&x.m, "the rest", PU_TEST_TIMEOUT);
	fx_done(&x);
}

/* A waiting truncate interrupted by a signal fails with EINTR and leaves the file as it was. */
static void on_alarm(int sig)
{
	(void)sig;
}

static void test_wait_interrupted(void **state)
{
	struct fx x;
	struct stat st;

	(void)state;
	fx_setup(&x, "waitintr", "policy=wait");
	pu_guard(&x.m, "an interrupted truncate", PU_TEST_TIMEOUT);
	pid_t c = pu_fork();
	if (c == 0) {
		struct sigaction sa = { .sa_handler = on_alarm };	/* no SA_RESTART: EINTR comes back */
		sigaction(SIGUSR1, &sa, NULL);
		_exit(truncate(x.f, 0) == 0 ? 0 : errno == EINTR ? 4 : 5);
	}
	wait_parked(&x, 1, "the truncate");
	uint64_t intr0 = pu_stats(x.dfd).waits_interrupted;
	assert_ok(kill(c, SIGUSR1));
	int st2;
	if (!PU_POLL(waitpid(c, &st2, WNOHANG) == c, PU_WAIT_MS))
		fail_msg("the interrupted truncate did not return");
	assert_true(WIFEXITED(st2));
	assert_int_equal(WEXITSTATUS(st2), 4);
	assert_int_equal(pu_stats(x.dfd).waits_interrupted, intr0 + 1);
	assert_true(PU_POLL(pu_stats(x.dfd).waiting == 0, PU_WAIT_MS));
	assert_ok(fstat(x.fd, &st));
	assert_int_equal(st.st_size, FSIZE);
	assert_true(pu_check_file(x.f, 0, FSIZE, 1));
	assert_int_equal(pu_stats(x.dfd).busy_created, 0);
	pu_guard(&x.m, "the rest", PU_TEST_TIMEOUT);
	fx_done(&x);
}

/* Processor time (user + system) process pid has used, in clock ticks. */
static uint64_t cpu_ticks(pid_t pid)
{
	char path[64], buf[1024];
	unsigned long long ut, st;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		fail_msg("%s: %s", path, strerror(errno));
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	/* After the command name (which may hold anything but ends with the last ')'): fields 3 on. */
	const char *p = strrchr(buf, ')');
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		fail_msg("%s: cannot parse: %s", path, buf);
	return ut + st;
}

/*
 * The share of one processor m's daemon uses over the next ms milliseconds, and the share a thread
 * that never stops gets over the same time: what a daemon looping without rest would get on this
 * machine, however loaded it is.  The window is the measurement: there is no condition to wait for.
 */
struct cpu_shares {
	double daemon;
	double spinner;
};

static struct cpu_shares daemon_cpu_share(const struct mnt *m, unsigned ms)
{
	struct timespec s0, s1;
	uint64_t c0 = cpu_ticks(m->daemon), t0 = pu_now_ms(), t1;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &s0);
	while ((t1 = pu_now_ms()) < t0 + ms)
		;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &s1);
	uint64_t c1 = cpu_ticks(m->daemon);
	double wall = (double)(t1 - t0) / 1000.0;
	return (struct cpu_shares){
		.daemon = (double)(c1 - c0) / (double)sysconf(_SC_CLK_TCK) / wall,
		.spinner = ((double)(s1.tv_sec - s0.tv_sec) + (double)(s1.tv_nsec - s0.tv_nsec) / 1e9) / wall,
	};
}

/*
 * A waiting request costs the daemon no processor time: less than 30% of one, and less than a
 * quarter of what a busy loop gets (on a loaded machine a busy loop may get less than 30%).
 */
static void check_idle(struct cpu_shares c, const char *what)
{
	print_message("daemon CPU %s: %.1f%% (a busy loop got %.1f%%)\n", what, c.daemon * 100, c.spinner * 100);
	if (c.daemon >= 0.3 || c.daemon >= c.spinner / 4)
		fail_msg("the daemon used %.1f%% of a processor %s", c.daemon * 100, what);
}

/* How long the oldest request waiting for the policy has waited (0: none waits). */
static uint64_t oldest_wait_ns(int dfd)
{
	struct daxfs_wait_info *w;
	uint64_t oldest = 0;
	uint32_t n;

	assert_int_equal(daxfs_list_waits(dfd, &w, &n), 0);
	for (uint32_t i = 0; i < n; i++)
		oldest = w[i].age_ns > oldest ? w[i].age_ns : oldest;
	free(w);
	return oldest;
}

/*
 * A pin waiting behind a truncate is a parked request like the truncate: a signal to its caller
 * makes it fail with EINTR, and while it waits it is run again only when something it waits for
 * changes, so the daemon stays idle.
 */
static void test_pin_wait_interrupted(void **state)
{
	struct fx x;
	pthread_t tt;

	(void)state;
	fx_setup(&x, "pinintr", "policy=revoke,grace_ms=20000");
	int fd2 = open(x.f, O_RDWR);
	assert_true(fd2 >= 0);
	struct free_job tr = { .path = x.f, .fd = x.fd, .cause = C_TRUNCATE };
	pu_guard(&x.m, "an interrupted pin", 40);
	assert_int_equal(pthread_create(&tt, NULL, free_thread, &tr), 0);
	wait_parked(&x, 1, "the truncate");
	pid_t c = pu_fork();
	if (c == 0) {
		struct sigaction sa = { .sa_handler = on_alarm };	/* no SA_RESTART: EINTR comes back */
		struct daxfs_pin p;

		sigaction(SIGUSR1, &sa, NULL);
		int r = daxfs_pin(fd2, PIN_OFF, BS, 0, &p);
		_exit(r == -EINTR ? 4 : r == 0 ? 0 : 5);
	}
	wait_parked(&x, 2, "the pin");
	check_idle(daemon_cpu_share(&x.m, 1000), "while a pin waits");
	uint64_t intr0 = pu_stats(x.dfd).waits_interrupted;
	assert_ok(kill(c, SIGUSR1));
	/* Its wait is over: nothing of it may go on running in the daemon. */
	check_idle(daemon_cpu_share(&x.m, 1000), "after the pin was interrupted");
	int st;
	if (!PU_POLL(waitpid(c, &st, WNOHANG) == c, 10000))
		fail_msg("the interrupted pin did not return");
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 4);
	assert_int_equal(pu_stats(x.dfd).waits_interrupted, intr0 + 1);
	assert_true(PU_POLL(pu_stats(x.dfd).waiting == 1, 10000));
	assert_false(job_done(&tr));
	assert_int_equal(daxfs_unpin(x.fd, x.p.id), 0);
	join_job(&x, tt, &tr, "the truncate");
	assert_int_equal(tr.err, 0);
	close(fd2);
	pu_guard(&x.m, "the rest", PU_TEST_TIMEOUT);
	fx_done(&x);
}

/*
 * odp and a short-term pin without DAXFS_PIN_ODP: it takes no invalidation, so the free waits for it
 * as wait does, past ack_ms, without spinning the policy worker; the unpin lets it finish, and
 * wait_timeout_ms makes it give up.
 */
static void test_odp_waits_for_plain_pin(void **state)
{
	struct fx x;
	pthread_t tt;

	(void)state;
	fx_setup_flags(&x, "odpplain", "policy=odp,ack_ms=100", W);
	struct free_job tr = { .path = x.f, .fd = x.fd, .cause = C_TRUNCATE };
	pu_guard(&x.m, "a truncate under odp waiting for a plain pin", 40);
	assert_int_equal(pthread_create(&tt, NULL, free_thread, &tr), 0);
	wait_parked(&x, 1, "the truncate");
	/* Past ack_ms: the deadline for invalidations has come and gone. */
	assert_true(PU_POLL(oldest_wait_ns(x.dfd) > 300000000ull, 10000));
	check_idle(daemon_cpu_share(&x.m, 1500), "while the truncate waits past ack_ms");
	assert_false(job_done(&tr));
	assert_int_equal(daxfs_unpin(x.fd, x.p.id), 0);
	join_job(&x, tt, &tr, "the truncate");
	assert_int_equal(tr.err, 0);
	assert_int_equal(pu_stats(x.dfd).busy_blocks, 0);
	/* wait_timeout_ms bounds that wait, as under wait: EBUSY, the file unchanged. */
	assert_int_equal(daxfs_policy_set(x.dfd, NULL, "wait_timeout_ms=200", NULL, 0), 0);
	pu_write_file(x.f, FSIZE, 2);
	struct daxfs_pin q = pu_pin(x.fd, PIN_OFF, BS, W);
	assert_errno(truncate(x.f, 0), EBUSY);
	assert_true(pu_check_file(x.f, 0, FSIZE, 2));
	assert_int_equal(daxfs_unpin(x.fd, q.id), 0);
	daxfs_pin_free(&q);
	pu_guard(&x.m, "the rest", PU_TEST_TIMEOUT);
	fx_done(&x);
}

/*
 * More waiting truncates than a daemon has threads, on a single-threaded daemon: waits are parked
 * requests, not threads, so the holder's unpins are served and every truncate completes.
 */
#define NWAITERS 1100

static void *child_trunc(void *arg)
{
	return (void *)(intptr_t)(truncate((const char *)arg, 0) ? errno : 0);
}

static void test_many_waiters_single_thread(void **state)
{
	static char path[NWAITERS][256];
	static int fd[NWAITERS];
	static uint64_t id[NWAITERS];
	struct fx x;
	int st;

	(void)state;
	struct rlimit rl = { 4096, 4096 };
	setrlimit(RLIMIT_NOFILE, &rl);
	/* -s: one request-loop thread.  The waits must not take it. */
	pu_setup(&x.m, "manywait", "64M", "policy=wait");
	assert_int_equal(h_umount(&x.m), 0);
	assert_int_equal(h_mount(&x.m, "-s -o policy=wait,attr_timeout=0"), 0);
	x.dfd = pu_dirfd(&x.m);
	for (int i = 0; i < NWAITERS; i++) {
		snprintf(path[i], sizeof(path[i]), "%s", P(&x.m, "f%d", i));
		pu_write_file(path[i], 8 * KiB, 1);
		fd[i] = open(path[i], O_RDWR);
		assert_true(fd[i] >= 0);
		struct daxfs_pin p = pu_pin(fd[i], 0, BS, W);
		id[i] = p.id;
		daxfs_pin_free(&p);
	}
	pu_guard(&x.m, "1100 waiting truncates on a single-threaded daemon", 120);
	pid_t tr = pu_fork();
	if (tr == 0) {
		static pthread_t t[NWAITERS];
		pthread_attr_t a;
		int bad = 0;

		pthread_attr_init(&a);
		pthread_attr_setstacksize(&a, 64 * 1024);
		for (int i = 0; i < NWAITERS; i++)
			if (pthread_create(&t[i], &a, child_trunc, path[i]))
				_exit(100);
		for (int i = 0; i < NWAITERS; i++) {
			void *r;
			pthread_join(t[i], &r);
			bad += r != NULL;
		}
		_exit(bad ? 1 : 0);
	}
	wait_parked(&x, NWAITERS, "every truncate");
	/* The loop thread is free: statfs, reads and unpins are served. */
	struct statvfs sv;
	assert_ok(statvfs(x.m.dir, &sv));
	char b[16];
	assert_int_equal(pread(fd[0], b, sizeof(b), 0), (ssize_t)sizeof(b));
	for (int i = 0; i < NWAITERS; i++)
		assert_int_equal(daxfs_unpin(fd[i], id[i]), 0);
	if (!PU_POLL(waitpid(tr, &st, WNOHANG) == tr, 60000))
		fail_msg("truncates still waiting 60 s after every pin was dropped (%llu waiting)",
			 (unsigned long long)pu_stats(x.dfd).waiting);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_int_equal(pu_stats(x.dfd).waiting, 0);
	for (int i = 0; i < NWAITERS; i++) {
		struct stat sb;
		assert_ok(fstat(fd[i], &sb));
		assert_int_equal(sb.st_size, 0);
		close(fd[i]);
	}
	pu_guard(&x.m, "the rest", PU_TEST_TIMEOUT);
	close(x.dfd);
	pu_finish(&x.m);
}

/* wait_timeout_ms: a holder that never lets go makes the truncate fail with EBUSY, the file unchanged. */
static void test_wait_timeout(void **state)
{
	struct fx x;
	struct stat st;

	(void)state;
	fx_setup(&x, "waitto", "policy=wait,wait_timeout_ms=200");
	pu_guard(&x.m, "truncate with wait_timeout_ms=200", PU_TEST_TIMEOUT);
	assert_errno(truncate(x.f, 0), EBUSY);
	pu_guard(&x.m, "the rest", PU_TEST_TIMEOUT);
	assert_ok(fstat(x.fd, &st));
	assert_int_equal(st.st_size, FSIZE);
	assert_true(pu_check_file(x.f, 0, FSIZE, 1));
	struct daxfs_ioc_stats s = pu_stats(x.dfd);
	assert_int_equal(s.frees_failed, 1);
	assert_int_equal(s.busy_created, 0);
	assert_true(s.free_wait_ns_total >= 200000000ull);	/* the daemon's own clock: it did wait */
	assert_int_equal(daxfs_unpin(x.fd, x.p.id), 0);
	assert_ok(truncate(x.f, 0));
	fx_done(&x);
}

/*
 * revoke with wait_timeout_ms shorter than the grace period: the truncate gives up with EBUSY, but a
 * broken lease stays broken: at its deadline the pin is revoked, and its holder is told.
 */
static void test_revoke_after_timeout(void **state)
{
	struct fx x;
	struct daxfs_ioc_pin_status ps;

	(void)state;
	fx_setup(&x, "revto", "policy=revoke,grace_ms=400,wait_timeout_ms=100");
	pu_guard(&x.m, "truncate under revoke with wait_timeout_ms=100", PU_TEST_TIMEOUT);
	assert_errno(truncate(x.f, 0), EBUSY);
	if (!PU_POLL(daxfs_pin_status(x.fd, x.p.id, &ps) == 0 && ps.state == DAXFS_PIN_REVOKED, PU_WAIT_MS))
		fail_msg("pin %llu not revoked after its lease-break deadline (state %s)", (unsigned long long)x.p.id,
			 daxfs_pin_state_str(ps.state));
	struct daxfs_event ev[4];
	uint32_t n;
	uint64_t next;
	assert_int_equal(daxfs_events(x.fd, 1, ev, 4, &n, &next), 0);
	assert_int_equal(n, 2);
	assert_int_equal(ev[0].type, DAXFS_EV_LEASE_BREAK);
	assert_int_equal(ev[1].type, DAXFS_EV_REVOKED);
	assert_int_equal(ev[0].pin_id, x.p.id);
	assert_true(ev[0].deadline_ns > ev[0].time_ns);
	assert_int_equal(daxfs_dma(x.fd, x.p.id, DAXFS_DMA_VERIFY_PATTERN, 0, PIN_LEN, 1, NULL, NULL), -ENOLINK);
	/* The lease is gone, so the truncate goes through now; the blocks wait for the file's release. */
	assert_ok(truncate(x.f, 0));
	assert_int_equal(pu_stats(x.dfd).busy_blocks, PIN_BLOCKS);
	pu_guard(&x.m, "the rest", PU_TEST_TIMEOUT);
	fx_done(&x);
}

/* Events by signal: a lease break reaches the holder as the signal it asked for, with the pin id. */
static void test_events_by_signal(void **state)
{
	struct fx x;
	sigset_t set;
	siginfo_t si;
	int sig = SIGRTMIN + 2;

	(void)state;
	sigemptyset(&set);
	sigaddset(&set, sig);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	fx_setup(&x, "evsig", "policy=revoke,grace_ms=20000");
	struct daxfs_pin q;
	int fd2 = open(x.f, O_RDWR);
	assert_true(fd2 >= 0);
	assert_int_equal(daxfs_pin_signal(fd2, 4 * MiB, BS, W, sig, &q), 0);
	struct free_job tr = { .path = x.f, .fd = x.fd, .cause = C_TRUNCATE };
	pthread_t t;
	pu_guard(&x.m, "events by signal", PU_TEST_TIMEOUT);
	assert_int_equal(pthread_create(&t, NULL, free_thread, &tr), 0);
	struct timespec to = { 20, 0 };
	int got = sigtimedwait(&set, &si, &to);
	assert_int_equal(got, sig);
	assert_int_equal(si.si_code, SI_QUEUE);
	assert_int_equal((uint64_t)(uintptr_t)si.si_value.sival_ptr, q.id);
	/* The same event is queued on the file, for a holder that polls. */
	struct daxfs_event ev[4];
	uint32_t n;
	uint64_t next;
	assert_int_equal(daxfs_events(fd2, 1, ev, 4, &n, &next), 0);
	assert_int_equal(n, 1);
	assert_int_equal(ev[0].type, DAXFS_EV_LEASE_BREAK);
	assert_int_equal(ev[0].pin_id, q.id);
	/* Events of one open file are not another's. */
	assert_int_equal(daxfs_events(x.fd, 1, ev, 4, &n, &next), 0);
	assert_int_equal(n, 1);
	assert_int_equal(ev[0].pin_id, x.p.id);
	assert_int_equal(daxfs_unpin(fd2, q.id), 0);
	assert_int_equal(daxfs_unpin(x.fd, x.p.id), 0);
	join_job(&x, t, &tr, "the truncate");
	assert_int_equal(tr.err, 0);
	daxfs_pin_free(&q);
	close(fd2);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	pu_guard(&x.m, "the rest", PU_TEST_TIMEOUT);
	fx_done(&x);
}

/* ---- the DMA fence ---- */

struct dma_loop {
	int fd;
	uint64_t pin_id;
	uint64_t len;
	int last;		/* the error that ended it */
	uint64_t runs;		/* atomic */
	volatile int stop;
};

static void *dma_loop_thread(void *arg)
{
	struct dma_loop *d = arg;

	while (!d->stop) {
		int r = daxfs_dma(d->fd, d->pin_id, DAXFS_DMA_WRITE_PATTERN, 0, d->len, 0xfe, NULL, NULL);

		__atomic_add_fetch(&d->runs, 1, __ATOMIC_RELEASE);
		if (r) {
			d->last = r;
			break;
		}
	}
	return NULL;
}

/*
 * Unpin while a long DMA runs through the pin on another thread: after the unpin returns, the engine
 * writes nothing more.  The blocks are freed (truncate), another file fills the device, and none of
 * the pin's tags may ever show up in it.
 */
static void fence_case(const char *name, const char *opts, uint32_t flags, bool revoke)
{
	struct mnt m;
	char f[512], g[512];
	const uint64_t len = 64 * MiB;

	pu_setup(&m, name, "256M", opts);
	snprintf(f, sizeof(f), "%s", P(&m, "F"));
	snprintf(g, sizeof(g), "%s", P(&m, "G"));
	int dfd = pu_dirfd(&m);
	pu_write_file(f, len, 3);
	int fd = open(f, O_RDWR);
	assert_true(fd >= 0);
	struct daxfs_pin p = pu_pin(fd, 0, len, flags);
	struct dma_loop d = { .fd = fd, .pin_id = p.id, .len = len };
	pthread_t t;
	pu_guard(&m, name, 120);
	assert_int_equal(pthread_create(&t, NULL, dma_loop_thread, &d), 0);
	/* The engine is running: the daemon has counted a DMA and another one is under way. */
	assert_true(PU_POLL(__atomic_load_n(&d.runs, __ATOMIC_ACQUIRE) >= 1, PU_WAIT_MS));
	if (revoke) {
		/* The lease break's deadline revokes the pin in the middle of a DMA. */
		assert_ok(truncate(f, 0));
		struct daxfs_ioc_pin_status ps;
		assert_int_equal(daxfs_pin_status(fd, p.id, &ps), 0);
		assert_int_equal(ps.state, DAXFS_PIN_REVOKED);
	} else {
		assert_int_equal(daxfs_unpin(fd, p.id), 0);
		assert_ok(truncate(f, 0));
	}
	/* Everything free goes to G now; the DMA thread may still be in the kernel, but not writing. */
	pu_fill(g);
	d.stop = 1;
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(d.last, revoke ? -ENOLINK : -ENOENT);
	struct scan sc = pu_scan(g);
	if (sc.units)
		fail_msg("%s: %llu tags of pin %llu landed in the filler after the pin was %s", name,
			 (unsigned long long)sc.units, (unsigned long long)p.id, revoke ? "revoked" : "unpinned");
	assert_int_equal(sc.foreign, 0);
	pu_guard(&m, "the rest", PU_TEST_TIMEOUT);
	daxfs_pin_free(&p);
	close(fd);
	close(dfd);
	pu_finish(&m);
}

static void test_fence_unpin(void **state)
{
	(void)state;
	fence_case("fenceunpin", NULL, W | LT, false);
}

static void test_fence_revoke(void **state)
{
	(void)state;
	/* A revocable pin: its blocks are free the moment it is revoked, so the fence is all there is. */
	fence_case("fencerevoke", "policy=revoke,grace_ms=100", W | LT | DAXFS_PIN_REVOCABLE, true);
}

/* ---- EOF: bytes a device wrote past the end of a file never appear when it grows ---- */

static void test_eof_tail_zeroed(void **state)
{
	struct mnt m;
	char f[512];
	char buf[3 * BS];

	(void)state;
	pu_setup(&m, "eoftail", "64M", NULL);
	snprintf(f, sizeof(f), "%s", P(&m, "F"));
	for (int how = 0; how < 3; how++) {
		pu_write_file(f, 10000, 4);	/* the last block is partly file, partly past EOF */
		int fd = open(f, O_RDWR);
		assert_true(fd >= 0);
		struct daxfs_pin p = pu_pin(fd, 8192, 10000 - 8192, W);	/* widened to the whole block */
		assert_int_equal(p.length, BS);
		/* The device writes the whole block, past EOF included. */
		assert_int_equal(daxfs_dma(fd, p.id, DAXFS_DMA_WRITE_PATTERN, 0, BS, 9, NULL, NULL), 0);
		if (how == 0) {
			assert_ok(ftruncate(fd, 3 * BS));
		} else if (how == 1) {
			char c = 'x';
			assert_int_equal(pwrite(fd, &c, 1, 3 * BS - 1), 1);
		} else {
			assert_ok(fallocate(fd, 0, 0, 3 * BS));
		}
		assert_int_equal(pread(fd, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
		/* Up to the old EOF: what the device wrote (the pin covered those bytes of the file). */
		assert_int_equal(pu_count_units(buf + 8192, 10000 - 8192 - (10000 - 8192) % DAXFS_TAG_UNIT, p.id, 9),
				 (10000 - 8192) / DAXFS_TAG_UNIT);
		/* From the old EOF on: zero, as if the device's tail writes had never happened. */
		for (size_t i = 10000; i < 3 * BS - (how == 1); i++)
			if (buf[i])
				fail_msg("extension %d: byte %zu past the old EOF is %#x, not zero", how, i,
					 (unsigned char)buf[i]);
		assert_int_equal(daxfs_unpin(fd, p.id), 0);
		daxfs_pin_free(&p);
		close(fd);
	}
	pu_finish(&m);
}

/* ---- what readers and other users may do ---- */

/* Run fn(arg) in a child as uid/gid 1000; returns its exit status. */
static int as_user(int (*fn)(void *), void *arg)
{
	pid_t pid = pu_fork();
	int st;

	if (pid == 0) {
		if (setgroups(0, NULL) || setgid(1000) || setuid(1000))
			_exit(100);
		_exit(fn(arg));
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* The child gets descriptors opened here: the mount point's parent is not the user's to walk. */
struct user_job {
	int fd;
	uint64_t off, len;
	uint32_t flags;
	int expect;	/* -errno, or 0 */
	bool hold;	/* keep the pin and report its uid */
	int dfd;
};

static int user_pin(void *arg)
{
	struct user_job *j = arg;
	int fd = j->fd;
	struct daxfs_pin p;

	int r = daxfs_pin(fd, j->off, j->len, j->flags, &p);
	if (r != j->expect)
		return 60 + (r < 0 ? -r : 0) % 60;
	if (r == 0) {
		struct daxfs_pin_info *pi;
		uint32_t n;
		if (daxfs_list_pins(j->dfd, &pi, &n) || n != 1 || pi[0].uid != 1000)
			return 40;
		free(pi);
		daxfs_unpin(fd, p.id);
		daxfs_pin_free(&p);
	}
	return 0;
}

/*
 * A reader of someone else's sparse file: its read pin allocates nothing (the zero page) under any
 * policy.  Under a policy where pins stall truncates, a pin on someone else's file needs CAP_LEASE:
 * EPERM.  And a user may pin only so many bytes (EDQUOT), root exempt.
 */
static void test_readers_and_users(void **state)
{
	struct mnt m;
	char f[512], own[512];

	(void)state;
	pu_setup(&m, "readers", "64M", "allow_other,max_pinned_per_user=1M");
	snprintf(f, sizeof(f), "%s", P(&m, "sparse"));
	snprintf(own, sizeof(own), "%s", P(&m, "own"));
	int dfd = pu_dirfd(&m);
	int fd = open(f, O_RDWR | O_CREAT, 0644);
	assert_true(fd >= 0);
	assert_ok(ftruncate(fd, 1024 * MiB));	/* far beyond the device */
	uint64_t bfree = pu_bfree(&m);

	/* Busy: a read pin over holes pins nothing and allocates nothing. */
	int rfd = open(f, O_RDONLY);
	assert_true(rfd >= 0);
	struct user_job rj = { .fd = rfd, .off = 0, .len = 512 * KiB, .flags = 0, .expect = 0, .dfd = dfd };
	assert_int_equal(as_user(user_pin, &rj), 0);
	assert_int_equal(pu_bfree(&m), bfree);
	struct stat st;
	assert_ok(fstat(fd, &st));
	assert_int_equal(st.st_blocks, 0);
	/*
	 * The user's limit counts what a pin holds, as the charge does: 2 MiB of holes under a read pin
	 * hold nothing and pass a limit of 1 MiB; 2 MiB of data do not (EDQUOT).
	 */
	rj.len = 2 * MiB;
	assert_int_equal(as_user(user_pin, &rj), 0);
	pu_write_file(own, 2 * MiB, 6);
	int dfd2 = open(own, O_RDONLY);
	assert_true(dfd2 >= 0);
	struct user_job dj = { .fd = dfd2, .off = 0, .len = 2 * MiB, .flags = 0, .expect = -EDQUOT, .dfd = dfd };
	assert_int_equal(as_user(user_pin, &dj), 0);
	dj.len = 1 * MiB;	/* up to the limit: fine */
	dj.expect = 0;
	assert_int_equal(as_user(user_pin, &dj), 0);
	close(dfd2);
	assert_ok(unlink(own));
	/* Root is exempt; a write pin by root over more than the device fails with ENOSPC and undoes itself. */
	struct daxfs_pin p;
	assert_int_equal(daxfs_pin(fd, 0, 1024 * MiB, W, &p), -ENOSPC);
	assert_int_equal(pu_bfree(&m), bfree);
	assert_ok(fstat(fd, &st));
	assert_int_equal(st.st_blocks, 0);

	/* Under wait, pins stall truncates: someone else's file needs CAP_LEASE; one's own does not. */
	assert_int_equal(daxfs_policy_set(dfd, "wait", NULL, NULL, 0), 0);
	rj.len = 512 * KiB;
	rj.expect = -EPERM;
	assert_int_equal(as_user(user_pin, &rj), 0);
	rj.flags = LT;
	assert_int_equal(as_user(user_pin, &rj), 0);
	pu_write_file(own, 64 * KiB, 5);
	assert_ok(chown(own, 1000, 1000));
	int ofd = open(own, O_RDONLY);
	assert_true(ofd >= 0);
	struct user_job oj = { .fd = ofd, .off = 0, .len = 64 * KiB, .flags = LT, .expect = 0, .dfd = dfd };
	assert_int_equal(as_user(user_pin, &oj), 0);
	assert_int_equal(pu_stats(dfd).pins_active, 0);

	close(ofd);
	close(rfd);
	close(fd);
	close(dfd);
	pu_finish(&m);
}

/*
 * max_pinned_per_user below one block is a limit all the same: a user may then hold no block
 * pinned.  A read pin over holes holds none and passes; one over data does not.  Root is exempt.
 */
static void test_user_limit_below_a_block(void **state)
{
	struct mnt m;
	char f[512];

	(void)state;
	pu_setup(&m, "tinylimit", "64M", "allow_other,max_pinned_per_user=1000");
	snprintf(f, sizeof(f), "%s", P(&m, "F"));
	int dfd = pu_dirfd(&m);
	pu_write_file(f, 64 * KiB, 1);
	int fd = open(f, O_RDWR);
	assert_true(fd >= 0);
	assert_ok(ftruncate(fd, 1 * MiB));	/* [64 KiB, 1 MiB) a hole */
	struct user_job j = { .fd = fd, .off = 0, .len = BS, .flags = 0, .expect = -EDQUOT, .dfd = dfd };
	assert_int_equal(as_user(user_pin, &j), 0);
	j.off = 512 * KiB;
	j.expect = 0;
	assert_int_equal(as_user(user_pin, &j), 0);
	struct daxfs_pin p = pu_pin(fd, 0, 64 * KiB, W);
	assert_int_equal(daxfs_unpin(fd, p.id), 0);
	daxfs_pin_free(&p);
	assert_int_equal(pu_stats(dfd).pins_active, 0);
	close(fd);
	close(dfd);
	pu_finish(&m);
}

/* A policy loaded at run time, and the checks on what may be loaded. */
static void test_loadable_policy(void **state)
{
	struct daxfs_ioc_policy pol;
	struct mnt m;
	char msg[256], copy[] = "/tmp/daxfs-policy-XXXXXX";

	(void)state;
	pu_setup(&m, "loadable", "64M", NULL);
	int dfd = pu_dirfd(&m);
	assert_int_equal(daxfs_policy_set(dfd, quota_so(), "per_holder=2M,report_ms=0", msg, sizeof(msg)), 0);
	assert_int_equal(daxfs_policy_get(dfd, &pol), 0);
	assert_string_equal(pol.name, "quota");
	assert_true(pol.flags & DAXFS_POLICY_F_LOADED);
	assert_true(pol.flags & DAXFS_POLICY_F_STALLS);
	assert_non_null(strstr(pol.params, "per_holder=2M"));
	assert_non_null(strstr(pol.params, "wait_ms=1000"));
	/* Its parameters change like a built-in's; its own init refuses a zero quota. */
	assert_int_equal(daxfs_policy_set(dfd, NULL, "per_holder=4M", msg, sizeof(msg)), 0);
	assert_int_equal(daxfs_policy_get(dfd, &pol), 0);
	assert_non_null(strstr(pol.params, "per_holder=4M"));
	assert_int_equal(daxfs_policy_set(dfd, NULL, "per_holder=0", msg, sizeof(msg)), -EINVAL);
	assert_non_null(strstr(msg, "refused"));
	assert_int_equal(daxfs_policy_set(dfd, NULL, "colour=blue", msg, sizeof(msg)), -EINVAL);
	/* Listed with the built-ins while in force. */
	struct daxfs_policy_desc *d;
	uint32_t n;
	bool listed = false;
	assert_int_equal(daxfs_list_policies(dfd, &d, &n), 0);
	for (uint32_t i = 0; i < n; i++)
		listed |= strcmp(d[i].name, "quota") == 0 && (d[i].flags & DAXFS_POLICY_F_LOADED) &&
			  strstr(d[i].params, "per_holder=8M") != NULL;
	free(d);
	assert_true(listed);
	/* A copy anyone could have written is refused, whatever it contains. */
	int cfd = mkstemp(copy);
	assert_true(cfd >= 0);
	int sfd = open(quota_so(), O_RDONLY);
	assert_true(sfd >= 0);
	char buf[65536];
	ssize_t r;
	while ((r = read(sfd, buf, sizeof(buf))) > 0)
		assert_int_equal(write(cfd, buf, (size_t)r), r);
	close(sfd);
	assert_ok(fchmod(cfd, 0666));
	close(cfd);
	assert_int_equal(daxfs_policy_set(dfd, copy, NULL, msg, sizeof(msg)), -EPERM);
	assert_non_null(strstr(msg, "writable by nobody else"));
	assert_ok(chmod(copy, 0644));
	assert_int_equal(daxfs_policy_set(dfd, copy, "per_holder=1M", msg, sizeof(msg)), 0);
	unlink(copy);
	/* A name outside [a-z0-9-], as policy.h has it: refused, with the rule. */
	const char *bad = getenv("POLICY_BAD_NAME_SO");
	assert_non_null(bad);
	assert_int_equal(daxfs_policy_set(dfd, bad, NULL, msg, sizeof(msg)), -ENOEXEC);
	assert_non_null(strstr(msg, "'bad_name'"));
	assert_non_null(strstr(msg, "[a-z0-9-]"));
	assert_int_equal(daxfs_policy_get(dfd, &pol), 0);
	assert_string_equal(pol.name, "quota");
	/* Back to a built-in: the object is unloaded. */
	assert_int_equal(daxfs_policy_set(dfd, "busy", NULL, msg, sizeof(msg)), 0);
	assert_int_equal(daxfs_policy_get(dfd, &pol), 0);
	assert_string_equal(pol.name, "busy");
	assert_false(pol.flags & DAXFS_POLICY_F_LOADED);
	close(dfd);
	pu_finish(&m);
}

static int run(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_policy),
		cmocka_unit_test(test_loadable_policy),
		cmocka_unit_test(test_gup_vs_punch_wait),
		cmocka_unit_test(test_gup_vs_punch_revoke),
		cmocka_unit_test(test_gup_vs_punch_write_wait),
		cmocka_unit_test(test_new_pin_waits_for_break),
		cmocka_unit_test(test_wait_interrupted),
		cmocka_unit_test(test_pin_wait_interrupted),
		cmocka_unit_test(test_odp_waits_for_plain_pin),
		cmocka_unit_test(test_many_waiters_single_thread),
		cmocka_unit_test(test_wait_timeout),
		cmocka_unit_test(test_revoke_after_timeout),
		cmocka_unit_test(test_events_by_signal),
		cmocka_unit_test(test_fence_unpin),
		cmocka_unit_test(test_fence_revoke),
		cmocka_unit_test(test_eof_tail_zeroed),
		cmocka_unit_test(test_readers_and_users),
		cmocka_unit_test(test_user_limit_below_a_block),
	};
	return cmocka_run_group_tests_name("policies", tests, NULL, NULL);
}

int main(void)
{
	return h_main(run);
}
