/* SPDX-License-Identifier: MIT */
/*
 * policy.c: the dispatcher, with the built-in policies and a loaded one, on a mounted file system
 * driven through namei (no FUSE).  Listing and describing policies; switching and parameters, and
 * the errors that leave the policy in force alone.  A free over pinned blocks under `wait`: with no
 * request to park (op NULL) the call blocks with the inode unlocked until the unpin, and pins on the
 * file wait for it; with an op it returns -POLICY_EPARK, is parked and resumed by the policy worker,
 * or fails with EINTR when interrupted; a policy switch makes waiters decide again.  `fail`,
 * `unsafe`, `revoke` (unpin in grace, revocation at its end, revocable pins), `odp` (invalidate and
 * acknowledge), `busy-quota`, admission and limits.  A loaded test policy (probe_policy.c) records what each hook
 * sees and answers what the test says; broken objects are refused.
 */
#include <dlfcn.h>
#include <limits.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <signal.h>

#include "fs_fixture.h"
#include "jsonl.h"
#include "probe_policy.h"

#define FILE_BLOCKS 64

struct pfix {
	struct image img;
	struct image trace;
	struct image other;	/* a scratch file: not-a-policy objects */
	struct fs *fs;
	struct inode *ip;	/* "f": FILE_BLOCKS blocks, open */
	struct pin_owner o, o2;
	void *probe_handle;
};

static int pfix_setup(void **state)
{
	struct pfix *x = calloc(1, sizeof(*x));

	if (!x)
		return -1;
	image_name(&x->img, "policy");
	image_name(&x->trace, "policy-trace");
	image_name(&x->other, "policy-notanobject");
	image_format(&x->img, 64 * MiB, NULL);
	pin_owner_init(&x->o);
	pin_owner_init(&x->o2);
	*state = x;
	return 0;
}

static void close_fs(struct pfix *x)
{
	if (!x->fs)
		return;
	policy_release_owner(x->fs, &x->o);
	policy_release_owner(x->fs, &x->o2);
	pin_owner_init(&x->o);
	pin_owner_init(&x->o2);
	if (x->ip)
		namei_release(x->fs, x->ip);
	x->ip = NULL;
	mount_close(x->fs);
	x->fs = NULL;
}

static int pfix_teardown(void **state)
{
	struct pfix *x = *state;

	close_fs(x);
	if (x->probe_handle)
		dlclose(x->probe_handle);
	image_remove(&x->img);
	image_remove(&x->trace);
	image_remove(&x->other);
	free(x);
	return 0;
}

/* Mount with policy and params (NULL: busy, none), tracing, and make "f". */
static void pmount(struct pfix *x, const char *policy, const char *params)
{
	struct mount_config cfg = { .enospc_wait_ms = 1000, .policy = policy, .policy_params = params,
				    .trace = x->trace.path };

	x->fs = fx_mount(x->img.path, &cfg);
	x->ip = fx_file(x->fs, "f", FILE_BLOCKS, 0x33);
}

static uint64_t size_of(struct pfix *x)
{
	return (uint64_t)stat_of(x->fs, x->ip->ino).st_size;
}

static uint32_t waits_listed(struct fs *fs, struct daxfs_wait_info *out, uint32_t max)
{
	struct daxfs_wait_info dummy[1];
	uint32_t total;

	policy_list_waits(fs, 0, out ? out : dummy, out ? max : 0, &total);
	return total;
}

static bool one_waiting(void *arg)
{
	return waits_listed(arg, NULL, 0) >= 1;
}

static uint32_t pin_state(struct fs *fs, struct pin_owner *o, uint64_t id)
{
	struct daxfs_ioc_pin_status st = { .size = sizeof(st), .pin_id = id };

	assert_int_equal(policy_pin_status(fs, o, &st), 0);
	return st.state;
}

/* ---- a truncate on a thread of its own (op NULL: it blocks while it waits) ---- */

struct bg {
	struct fs *fs;
	uint64_t ino, size;
	int ret;
	bool done;
	pthread_t th;
};

static void *bg_main(void *arg)
{
	struct bg *b = arg;

	b->ret = fx_truncate(b->fs, b->ino, b->size, NULL);
	__atomic_store_n(&b->done, true, __ATOMIC_RELEASE);
	return NULL;
}

static void bg_start(struct bg *b, struct fs *fs, uint64_t ino, uint64_t size)
{
	*b = (struct bg){ .fs = fs, .ino = ino, .size = size };
	assert_int_equal(pthread_create(&b->th, NULL, bg_main, b), 0);
}

static bool bg_done(void *arg)
{
	return __atomic_load_n(&((struct bg *)arg)->done, __ATOMIC_ACQUIRE);
}

/* Wait up to ms for the truncate to return; if it does not, let its pins go so it can, and fail. */
static int bg_join(struct pfix *x, struct bg *b, uint64_t ms)
{
	bool done = unit_wait(bg_done, b, ms);

	if (!done) {
		policy_release_owner(x->fs, &x->o);
		policy_release_owner(x->fs, &x->o2);
		pin_owner_init(&x->o);
		pin_owner_init(&x->o2);
	}
	pthread_join(b->th, NULL);
	if (!done)
		fail_msg("the truncate was still waiting after %llu ms", (unsigned long long)ms);
	return b->ret;
}

/* ---- listing, describing, switching ---- */

static void test_list_and_describe(void **state)
{
	struct pfix *x = *state;
	struct daxfs_policy_desc d[16];
	struct daxfs_ioc_policy p;
	uint32_t total, nb = 0;

	pmount(x, NULL, NULL);
	while (policy_builtins[nb])
		nb++;
	assert_true(nb >= 8);
	assert_int_equal(policy_list(x->fs, 0, d, 16, &total), nb + 1);
	assert_int_equal(total, nb + 1);	/* the built-ins, then the common parameters */
	for (uint32_t i = 0; i < nb; i++) {
		assert_string_equal(d[i].name, policy_builtins[i]->name);
		assert_true(d[i].summary[0] != 0);
		assert_int_equal(d[i].flags, policy_builtins[i]->flags & DAXFS_POLICY_F_STALLS);
		assert_ptr_equal(daxfs_policy_builtin(d[i].name), policy_builtins[i]);
	}
	assert_string_equal(d[nb].name, "(common)");
	assert_non_null(strstr(d[nb].params, "grace_ms=1000"));
	assert_non_null(strstr(d[nb].params, "wait_timeout_ms=0"));
	assert_non_null(strstr(d[nb].params, "pins=allow"));
	/* Pages. */
	assert_int_equal(policy_list(x->fs, 2, d, 3, &total), 3);
	assert_string_equal(d[0].name, policy_builtins[2]->name);
	assert_int_equal(policy_list(x->fs, nb + 1, d, 3, &total), 0);

	policy_describe(x->fs, &p);
	assert_string_equal(p.name, "busy");
	assert_string_equal(p.params, "pins=allow,grace_ms=1000,wait_timeout_ms=0");
	assert_int_equal(p.flags, 0);
	assert_true(p.summary[0] != 0);
	uint64_t gen = p.generation;
	char err[256] = "";
	assert_int_equal(policy_set(x->fs, "wait", NULL, err, sizeof(err)), 0);
	policy_describe(x->fs, &p);
	assert_string_equal(p.name, "wait");
	assert_int_equal(p.flags, DAXFS_POLICY_F_STALLS);
	assert_int_equal(p.generation, gen + 1);
}

/* Refusals: each leaves the policy in force, its parameters and its generation alone. */
static void test_set_errors(void **state)
{
	struct pfix *x = *state;
	struct daxfs_ioc_policy before, after;
	char err[256];
	static const struct {
		const char *name, *params;
		int ret;
		const char *says;
	} cases[] = {
		{ "no-such-policy", NULL, -ENOENT, "unknown policy" },
		{ "relative.so", NULL, -ENOENT, "absolute path" },
		{ "/nonexistent/policy.so", NULL, -ENOENT, "/nonexistent/policy.so" },
		{ "/dev/null", NULL, -EPERM, "regular file" },
		{ "busy", "grace_ms", -EINVAL, "key=value" },
		{ "busy", "color=red", -EINVAL, "no parameter 'color'" },
		{ "busy", "pins=sometimes", -EINVAL, "pins=sometimes" },
		{ "busy", "grace_ms=soon", -EINVAL, "milliseconds" },
		{ "busy", "wait_timeout_ms=-5", -EINVAL, "milliseconds" },
		{ "busy", "grace_ms=400000000000", -EINVAL, "milliseconds" },
		{ "odp", "ack_ms=x", -EINVAL, "ack_ms=x" },
	};

	pmount(x, "revoke", "grace_ms=250");
	policy_describe(x->fs, &before);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err[0] = 0;
		int ret = policy_set(x->fs, cases[i].name, cases[i].params, err, sizeof(err));

		if (ret != cases[i].ret || !strstr(err, cases[i].says))
			fail_msg("policy_set(%s, %s): %d \"%s\"", cases[i].name, cases[i].params ? cases[i].params : "",
				 ret, err);
		policy_describe(x->fs, &after);
		assert_string_equal(after.name, before.name);
		assert_string_equal(after.params, before.params);
		assert_int_equal(after.generation, before.generation);
	}
	err[0] = 0;
	assert_int_equal(policy_set_params(x->fs, "nokey=1", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "nokey"));
	char *huge = malloc(DAXFS_POLICY_PARAMS_MAX * 2 + 10);
	assert_non_null(huge);
	memset(huge, 'g', DAXFS_POLICY_PARAMS_MAX * 2 + 9);
	memcpy(huge, "grace_ms=", 9);
	huge[DAXFS_POLICY_PARAMS_MAX * 2 + 9] = 0;
	assert_int_equal(policy_set_params(x->fs, huge, err, sizeof(err)), -E2BIG);
	free(huge);
	policy_describe(x->fs, &after);
	assert_string_equal(after.params, before.params);
	assert_int_equal(after.generation, before.generation);
}

/* Parameters change by a new instance; the common ones carry over a switch of policy. */
static void test_params_and_switch(void **state)
{
	struct pfix *x = *state;
	struct daxfs_ioc_policy p;
	char err[256] = "";

	pmount(x, NULL, NULL);
	assert_int_equal(policy_set_params(x->fs, "grace_ms=250,pins=deny-longterm", err, sizeof(err)), 0);
	policy_describe(x->fs, &p);
	assert_string_equal(p.name, "busy");
	assert_non_null(strstr(p.params, "grace_ms=250"));
	assert_int_equal(x->fs->pol->grace_ns, 250 * 1000000ull);
	assert_int_equal(x->fs->pol->admission, POLICY_ADMIT_DENY_LONGTERM);
	assert_int_equal(policy_set_params(x->fs, "", err, sizeof(err)), 0);	/* nothing changes but the instance */
	assert_int_equal(policy_set(x->fs, "odp", "ack_ms=5K", err, sizeof(err)), 0);
	policy_describe(x->fs, &p);
	assert_string_equal(p.name, "odp");
	assert_non_null(strstr(p.params, "grace_ms=250"));
	assert_non_null(strstr(p.params, "pins=deny-longterm"));
	assert_non_null(strstr(p.params, "ack_ms=5K"));
	assert_int_equal(p.flags, DAXFS_POLICY_F_STALLS);
	/* The policy's own parameters do not carry over. */
	assert_int_equal(policy_set(x->fs, "busy", NULL, err, sizeof(err)), 0);
	policy_describe(x->fs, &p);
	assert_null(strstr(p.params, "ack_ms"));
	assert_non_null(strstr(p.params, "grace_ms=250"));
}

/* ---- wait: blocking, parking, interrupting, re-deciding ---- */

/*
 * With no request to park (op NULL) the truncate blocks until the blocks are unpinned, with the
 * inode unlocked; meanwhile new pins on the file wait behind it (the whole file: wait breaks with
 * DAXFS_BREAK_FILE) and the wait is listed with the pin it waits for.
 */
static void test_wait_blocks_then_resumes(void **state)
{
	struct pfix *x = *state;
	struct daxfs_wait_info w[4];
	struct bg b;
	char buf[64];

	pmount(x, "wait", NULL);
	uint64_t id = fx_pin(x->fs, &x->o, x->ip, 16 * BS, 16 * BS, DAXFS_PIN_WRITE);
	bg_start(&b, x->fs, x->ip->ino, 0);
	assert_true(unit_wait(one_waiting, x->fs, 5000));
	assert_int_equal(waits_listed(x->fs, w, 4), 1);
	assert_int_equal(w[0].kind, DAXFS_WAIT_TRUNCATE);
	assert_int_equal(w[0].ino, x->ip->ino);
	assert_int_equal(w[0].npins, 1);
	assert_int_equal(w[0].blocker_pin, id);
	assert_int_equal(w[0].blocker_pid, getpid());
	assert_false(bg_done(&b));
	assert_int_equal(size_of(x), FILE_BLOCKS * BS);
	/* The inode is not locked: the holder may read it, pin elsewhere (waits), and unpin. */
	assert_int_equal(pthread_rwlock_tryrdlock(&x->ip->lock), 0);
	pthread_rwlock_unlock(&x->ip->lock);
	assert_int_equal(rd(x->fs, x->ip, 0, buf, sizeof(buf)), sizeof(buf));
	struct policy_op pop;
	struct policy_pin_args a = fx_pin_args(0, 4 * BS, 0);
	uint64_t id2;
	policy_op_init(&pop, DAXFS_WAIT_PIN, getpid());
	assert_int_equal(policy_pin(x->fs, &x->o2, x->ip, &a, &pop, &id2), -POLICY_EPARK);
	assert_int_equal(waits_listed(x->fs, w, 4), 2);
	assert_int_equal(w[1].kind, DAXFS_WAIT_PIN);
	assert_int_equal(w[1].blocker_wait, w[0].wait_id);	/* it waits behind the truncate */
	policy_op_finish(x->fs, &pop);
	assert_int_equal(waits_listed(x->fs, NULL, 0), 1);

	assert_int_equal(policy_unpin(x->fs, &x->o, id), 0);
	assert_int_equal(bg_join(x, &b, 5000), 0);
	assert_int_equal(size_of(x), 0);
	assert_int_equal(fx_busy_blocks(x->fs), 0);	/* waited for: nothing pinned was freed */
	assert_int_equal(waits_listed(x->fs, NULL, 0), 0);
	struct daxfs_ioc_stats st = fx_stats(x->fs);
	assert_int_equal(st.frees_waited, 1);
	assert_int_equal(st.waiting, 0);
}

/* A parked request: run again by the policy worker when what it waits for changes. */
struct parked {
	struct fs *fs;
	struct policy_op op;
	uint64_t ino, size;
	int ret;
	int runs;
	bool done;
};

static void resume_truncate(void *arg)
{
	struct parked *p = arg;
	int ret;

	p->runs++;
	ret = fx_truncate(p->fs, p->ino, p->size, &p->op);
	if (ret == -POLICY_EPARK) {
		policy_park(p->fs, &p->op, resume_truncate, p);
		return;
	}
	p->ret = ret;
	__atomic_store_n(&p->done, true, __ATOMIC_RELEASE);
}

static bool parked_done(void *arg)
{
	return __atomic_load_n(&((struct parked *)arg)->done, __ATOMIC_ACQUIRE);
}

static void park_truncate(struct pfix *x, struct parked *p, uint64_t size)
{
	*p = (struct parked){ .fs = x->fs, .ino = x->ip->ino, .size = size };
	policy_op_init(&p->op, DAXFS_WAIT_TRUNCATE, getpid());
	assert_int_equal(fx_truncate(x->fs, x->ip->ino, size, &p->op), -POLICY_EPARK);
	assert_int_equal(size_of(x), FILE_BLOCKS * BS);	/* nothing changed */
	policy_park(x->fs, &p->op, resume_truncate, p);
}

static void test_park_and_resume(void **state)
{
	struct pfix *x = *state;
	struct daxfs_wait_info w[2];
	struct parked p;

	pmount(x, "wait", NULL);
	uint64_t id = fx_pin(x->fs, &x->o, x->ip, 16 * BS, 16 * BS, DAXFS_PIN_WRITE);
	park_truncate(x, &p, 4 * BS);
	assert_int_equal(waits_listed(x->fs, w, 2), 1);
	assert_int_equal(w[0].kind, DAXFS_WAIT_TRUNCATE);
	assert_int_equal(w[0].pid, getpid());
	assert_int_equal(w[0].offset, 4 * BS);
	assert_int_equal(fx_stats(x->fs).waiting, 1);
	/* No thread waits for it: this one goes on, and the unpin wakes the worker. */
	assert_int_equal(policy_unpin(x->fs, &x->o, id), 0);
	assert_true(unit_wait(parked_done, &p, 5000));
	assert_int_equal(p.ret, 0);
	assert_true(p.runs >= 1);
	policy_op_finish(x->fs, &p.op);
	assert_int_equal(size_of(x), 4 * BS);
	struct daxfs_ioc_stats st = fx_stats(x->fs);
	assert_int_equal(st.waiting, 0);
	assert_int_equal(st.frees_waited, 1);
	assert_true(st.free_wait_ns_total > 0);
	assert_int_equal(waits_listed(x->fs, NULL, 0), 0);
}

/* Interrupted while parked: it runs again at once and fails with EINTR, the file unchanged. */
static void test_interrupt_parked(void **state)
{
	struct pfix *x = *state;
	struct parked p;

	pmount(x, "wait", NULL);
	fx_pin(x->fs, &x->o, x->ip, 16 * BS, 16 * BS, DAXFS_PIN_WRITE);
	park_truncate(x, &p, 0);
	policy_interrupt(x->fs, &p.op);
	assert_true(unit_wait(parked_done, &p, 5000));
	assert_int_equal(p.ret, -EINTR);
	policy_op_finish(x->fs, &p.op);
	assert_int_equal(size_of(x), FILE_BLOCKS * BS);
	assert_int_equal(fx_stats(x->fs).waits_interrupted, 1);
	assert_int_equal(waits_listed(x->fs, NULL, 0), 0);
}

/* The mount goes away under a parked request: it is resumed interrupted. */
static void test_stop_interrupts_parked(void **state)
{
	struct pfix *x = *state;
	struct parked p;

	pmount(x, "wait", NULL);
	fx_pin(x->fs, &x->o, x->ip, 16 * BS, 16 * BS, DAXFS_PIN_WRITE);
	park_truncate(x, &p, 0);
	policy_stop(x->fs);
	assert_true(parked_done(&p));	/* policy_stop returns once it has run */
	assert_int_equal(p.ret, -EINTR);
	policy_op_finish(x->fs, &p.op);
}

/* A switch of policy makes waiting requests decide again, under the new one. */
static void test_switch_wakes_waiter(void **state)
{
	struct pfix *x = *state;
	char err[256] = "";
	struct bg b;

	pmount(x, "wait", NULL);
	fx_pin(x->fs, &x->o, x->ip, 16 * BS, 16 * BS, DAXFS_PIN_WRITE);
	bg_start(&b, x->fs, x->ip->ino, 0);
	assert_true(unit_wait(one_waiting, x->fs, 5000));
	assert_int_equal(policy_set(x->fs, "busy", NULL, err, sizeof(err)), 0);
	assert_int_equal(bg_join(x, &b, 5000), 0);
	assert_int_equal(size_of(x), 0);
	assert_int_equal(fx_busy_blocks(x->fs), 16);	/* busy: the pinned blocks left the file as busy extents */
}

/* wait_timeout_ms: the truncate gives up with EBUSY, the file unchanged. */
static void test_wait_timeout(void **state)
{
	struct pfix *x = *state;

	pmount(x, "wait", "wait_timeout_ms=50");
	fx_pin(x->fs, &x->o, x->ip, 16 * BS, 16 * BS, DAXFS_PIN_WRITE);
	uint64_t t0 = unit_now_ms();
	assert_int_equal(fx_truncate(x->fs, x->ip->ino, 0, NULL), -EBUSY);
	assert_true(unit_now_ms() - t0 >= 50);
	assert_int_equal(size_of(x), FILE_BLOCKS * BS);
	assert_int_equal(fx_stats(x->fs).frees_failed, 1);
	/* Unpinned blocks still go at once. */
	assert_int_equal(fx_truncate(x->fs, x->ip->ino, 32 * BS, NULL), 0);
	assert_int_equal(size_of(x), 32 * BS);
}

/* ---- policy_before_free itself ---- */

struct direct {
	struct fs *fs;
	struct inode *ip;
	int ret;
	bool locked_after;	/* the inode was write-locked again when the call returned */
	bool done;
	pthread_t th;
};

static void *direct_main(void *arg)
{
	struct direct *d = arg;

	pthread_rwlock_wrlock(&d->ip->lock);
	d->ret = policy_before_free(d->fs, NULL, d->ip, 0, FILE_BLOCKS);
	d->locked_after = pthread_rwlock_tryrdlock(&d->ip->lock) != 0;	/* we hold it for writing */
	__atomic_store_n(&d->done, true, __ATOMIC_RELEASE);
	pthread_rwlock_unlock(&d->ip->lock);
	return NULL;
}

static bool direct_done(void *arg)
{
	return __atomic_load_n(&((struct direct *)arg)->done, __ATOMIC_ACQUIRE);
}

/*
 * Called as the namespace calls it, with the inode write-locked.  With an op: -POLICY_EPARK at once,
 * the inode still locked, nothing waiting until the op is parked.  With op NULL: the call waits,
 * with the inode unlocked, and returns 0 with it locked again once the blocks are unpinned.
 */
static void test_before_free_direct(void **state)
{
	struct pfix *x = *state;
	struct policy_op op;

	pmount(x, "wait", NULL);
	uint64_t id = fx_pin(x->fs, &x->o, x->ip, 16 * BS, 16 * BS, DAXFS_PIN_WRITE);
	/* Nothing pinned in the range: 0 at once, whatever the policy. */
	pthread_rwlock_wrlock(&x->ip->lock);
	assert_int_equal(policy_before_free(x->fs, NULL, x->ip, 0, 16), 0);
	assert_int_equal(policy_before_free(x->fs, NULL, x->ip, 32, 32), 0);
	policy_op_init(&op, DAXFS_WAIT_PUNCH, getpid());
	assert_int_equal(policy_before_free(x->fs, &op, x->ip, 0, FILE_BLOCKS), -POLICY_EPARK);
	assert_int_equal(op.f.cause, DAXFS_CAUSE_PUNCH);
	assert_int_equal(pthread_rwlock_tryrdlock(&x->ip->lock), EBUSY);	/* still ours */
	pthread_rwlock_unlock(&x->ip->lock);
	policy_op_finish(x->fs, &op);
	assert_int_equal(waits_listed(x->fs, NULL, 0), 0);

	struct direct d = { .fs = x->fs, .ip = x->ip };
	assert_int_equal(pthread_create(&d.th, NULL, direct_main, &d), 0);
	assert_true(unit_wait(one_waiting, x->fs, 5000));
	assert_int_equal(pthread_rwlock_trywrlock(&x->ip->lock), 0);	/* released while it waits */
	pthread_rwlock_unlock(&x->ip->lock);
	assert_false(direct_done(&d));
	assert_int_equal(policy_unpin(x->fs, &x->o, id), 0);
	bool done = unit_wait(direct_done, &d, 5000);
	pthread_join(d.th, NULL);
	assert_true(done);
	assert_int_equal(d.ret, 0);
	assert_true(d.locked_after);
	assert_int_equal(size_of(x), FILE_BLOCKS * BS);	/* it only decides: nothing was freed */
}

/* ---- fail, unsafe ---- */

static void test_fail_policy(void **state)
{
	struct pfix *x = *state;
	const int punch = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
	struct inode *ip2;

	pmount(x, "fail", NULL);
	uint64_t id = fx_pin(x->fs, &x->o, x->ip, 16 * BS, 16 * BS, DAXFS_PIN_WRITE);
	assert_int_equal(fx_truncate(x->fs, x->ip->ino, 0, NULL), -EBUSY);
	assert_int_equal(namei_fallocate(x->fs, x->ip, punch, 20 * BS, BS, NULL), -EBUSY);
	assert_int_equal(namei_open(x->fs, x->ip->ino, O_RDWR | O_TRUNC, &ip2, NULL), -EBUSY);
	assert_int_equal(size_of(x), FILE_BLOCKS * BS);
	assert_int_equal(x->ip->d.blocks, FILE_BLOCKS);
	assert_int_equal(fx_stats(x->fs).frees_failed, 3);
	/* What is not pinned goes. */
	assert_int_equal(namei_fallocate(x->fs, x->ip, punch, 4 * BS, 4 * BS, NULL), 0);
	assert_int_equal(fx_truncate(x->fs, x->ip->ino, 32 * BS, NULL), 0);
	assert_int_equal(x->ip->d.blocks, 28);
	assert_int_equal(policy_unpin(x->fs, &x->o, id), 0);
	assert_int_equal(fx_truncate(x->fs, x->ip->ino, 0, NULL), 0);
	assert_int_equal(x->ip->d.blocks, 0);
	assert_int_equal(fx_busy_blocks(x->fs), 0);
}

/* unsafe: pinned blocks go back to the allocator at once; the pin still points at them. */
static void test_unsafe_policy(void **state)
{
	struct pfix *x = *state;
	size_t len;
	int unsafe_records = 0, notes = 0;

	pmount(x, "unsafe", NULL);
	fx_pin(x->fs, &x->o, x->ip, 16 * BS, 16 * BS, DAXFS_PIN_WRITE);
	uint64_t free0 = alloc_free_blocks(&x->fs->sbi.alloc);
	assert_int_equal(fx_truncate(x->fs, x->ip->ino, 0, NULL), 0);
	assert_int_equal(alloc_free_blocks(&x->fs->sbi.alloc), free0 + FILE_BLOCKS);
	assert_int_equal(fx_busy_blocks(x->fs), 0);
	struct daxfs_ioc_stats st = fx_stats(x->fs);
	assert_int_equal(st.unsafe_frees, 1);
	assert_int_equal(st.unsafe_blocks, 16);
	assert_int_equal(st.pinned_blocks, 16);
	/* The trace says so: the dispatcher's record and the policy's note. */
	trace_stop(&x->fs->trace);
	char *buf = unit_read_file(x->trace.path, &len);
	for (const char *p = buf; p < buf + len;) {
		const char *nl = strchr(p, '\n');
		char ev[64];

		assert_non_null(nl);
		assert_true(json_object_line(p, (size_t)(nl - p)));
		assert_true(json_field(p, (size_t)(nl - p), "ev", ev, sizeof(ev)));
		if (strcmp(ev, "\"unsafe_free\"") == 0) {
			unsafe_records++;
			assert_int_equal(json_u64(p, (size_t)(nl - p), "len", 0), 16 * BS);
		}
		notes += strcmp(ev, "\"policy_note\"") == 0;
		p = nl + 1;
	}
	free(buf);
	assert_int_equal(unsafe_records, 1);
	assert_int_equal(notes, 1);
}

/* ---- revoke ---- */

static bool pin_is(struct pfix *x, struct pin_owner *o, uint64_t id, uint32_t state)
{
	return pin_state(x->fs, o, id) == state;
}

struct pin_wait {
	struct pfix *x;
	uint64_t id;
	uint32_t state;
};

static bool pin_reached(void *arg)
{
	struct pin_wait *w = arg;

	return pin_is(w->x, &w->x->o, w->id, w->state);
}

static uint32_t count_events(struct fs *fs, struct pin_owner *o, uint32_t type, uint64_t id)
{
	struct daxfs_ioc_events *ev = calloc(1, sizeof(*ev));
	uint32_t n = 0;

	assert_non_null(ev);
	ev->from_seq = 1;
	policy_events(fs, o, ev);
	for (uint32_t i = 0; i < ev->count; i++)
		n += ev->ev[i].type == type && ev->ev[i].pin_id == id;
	free(ev);
	return n;
}

/* The holder unpins within the grace period: the truncate goes on, nothing revoked or busy. */
static void test_revoke_unpin_in_grace(void **state)
{
	struct pfix *x = *state;
	struct bg b;

	pmount(x, "revoke", "grace_ms=60000");
	uint64_t id = fx_pin(x->fs, &x->o, x->ip, 16 * BS, 16 * BS, DAXFS_PIN_WRITE);
	bg_start(&b, x->fs, x->ip->ino, 0);
	struct pin_wait pw = { x, id, DAXFS_PIN_REVOKING };
	assert_true(unit_wait(pin_reached, &pw, 5000));
	struct daxfs_ioc_pin_status st = { .size = sizeof(st), .pin_id = id };
	assert_int_equal(policy_pin_status(x->fs, &x->o, &st), 0);
	assert_true(st.deadline_ns > 50 * 1000000000ull && st.deadline_ns <= 60 * 1000000000ull);
	assert_int_equal(count_events(x->fs, &x->o, DAXFS_EV_LEASE_BREAK, id), 1);
	assert_int_equal(policy_unpin(x->fs, &x->o, id), 0);
	assert_int_equal(bg_join(x, &b, 5000), 0);
	assert_int_equal(size_of(x), 0);
	assert_int_equal(fx_busy_blocks(x->fs), 0);
	assert_int_equal(fx_stats(x->fs).pins_revoked, 0);
}

/*
 * Nobody unpins: at the end of the grace period the pin is revoked and the truncate goes on.  A pin
 * that is not DAXFS_PIN_REVOCABLE keeps its blocks (busy) until it is unpinned; DMA through it fails
 * with ENOLINK.  A revocable one lets go at once.
 */
static void test_revoke_after_grace(void **state)
{
	struct pfix *x = *state;
	struct bg b;

	pmount(x, "revoke", "grace_ms=50");
	uint64_t id = fx_pin(x->fs, &x->o, x->ip, 16 * BS, 16 * BS, DAXFS_PIN_WRITE);
	bg_start(&b, x->fs, x->ip->ino, 8 * BS);
	assert_int_equal(bg_join(x, &b, 5000), 0);
	assert_int_equal(size_of(x), 8 * BS);
	assert_int_equal(pin_state(x->fs, &x->o, id), DAXFS_PIN_REVOKED);
	assert_int_equal(count_events(x->fs, &x->o, DAXFS_EV_LEASE_BREAK, id), 1);
	assert_int_equal(count_events(x->fs, &x->o, DAXFS_EV_REVOKED, id), 1);
	assert_int_equal(fx_busy_blocks(x->fs), 16);
	struct daxfs_ioc_stats st = fx_stats(x->fs);
	assert_int_equal(st.pins_revoked, 1);
	assert_int_equal(st.revoked_held_blocks, 16);
	struct daxfs_ioc_dma d = { .size = sizeof(d), .op = DAXFS_DMA_WRITE_PATTERN, .pin_id = id, .length = BS };
	assert_int_equal(policy_dma(x->fs, &x->o, &d), -ENOLINK);
	/* Unpinned (allowed on a revoked pin): reclaimed. */
	assert_int_equal(policy_unpin(x->fs, &x->o, id), 0);
	fx_wait_reclaimed(x->fs);

	/* A revocable pin lets go of its blocks when revoked: nothing stays busy. */
	id = fx_pin(x->fs, &x->o, x->ip, 0, 8 * BS, DAXFS_PIN_WRITE | DAXFS_PIN_REVOCABLE);
	bg_start(&b, x->fs, x->ip->ino, 0);
	assert_int_equal(bg_join(x, &b, 5000), 0);
	assert_int_equal(pin_state(x->fs, &x->o, id), DAXFS_PIN_REVOKED);
	assert_int_equal(fx_busy_blocks(x->fs), 0);
	assert_int_equal(fx_stats(x->fs).pinned_blocks, 0);
}

/*
 * A lease already broken with a far deadline, broken again with an earlier one: the earlier one
 * stands (policy.h), and the holder is told it.  Keeping the first made a truncate asked with a
 * shorter grace period wait for the older, longer one, while revoke's before_free kept answering
 * DAXFS_WAIT with a wait_until in the past: the waiter spun.
 */
static void test_revoke_earlier_deadline(void **state)
{
	struct pfix *x = *state;
	char err[256] = "";
	struct bg b;

	pmount(x, "revoke", "grace_ms=60000,wait_timeout_ms=100");
	uint64_t id = fx_pin(x->fs, &x->o, x->ip, 16 * BS, 16 * BS, DAXFS_PIN_WRITE);
	/* Gives up after 100 ms; the lease stays broken, revoked in 60 s. */
	assert_int_equal(fx_truncate(x->fs, x->ip->ino, 16 * BS, NULL), -EBUSY);
	assert_int_equal(pin_state(x->fs, &x->o, id), DAXFS_PIN_REVOKING);
	assert_int_equal(policy_set_params(x->fs, "grace_ms=50,wait_timeout_ms=0", err, sizeof(err)), 0);
	struct timespec c0, c1;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
	bg_start(&b, x->fs, x->ip->ino, 16 * BS);
	bool done = unit_wait(bg_done, &b, 2000);
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
	if (!done)
		fail_msg("after 2 s the truncate still waits (for the first deadline), %.2f s of CPU used meanwhile",
			 (double)(c1.tv_sec - c0.tv_sec) + (double)(c1.tv_nsec - c0.tv_nsec) / 1e9);
	assert_int_equal(bg_join(x, &b, 1), 0);
	assert_int_equal(pin_state(x->fs, &x->o, id), DAXFS_PIN_REVOKED);
	/* The holder heard of both deadlines: the first break, then the earlier one. */
	assert_int_equal(count_events(x->fs, &x->o, DAXFS_EV_LEASE_BREAK, id), 2);
}

/* ---- odp ---- */

struct inval_wait {
	struct fs *fs;
	struct pin_owner *o;
	uint64_t id, seq;
};

static bool got_invalidate(void *arg)
{
	struct inval_wait *w = arg;
	struct daxfs_ioc_events *ev = calloc(1, sizeof(*ev));
	bool found = false;

	if (!ev)
		return false;
	ev->from_seq = 1;
	policy_events(w->fs, w->o, ev);
	for (uint32_t i = 0; i < ev->count; i++)
		if (ev->ev[i].type == DAXFS_EV_INVALIDATE && ev->ev[i].pin_id == w->id) {
			w->seq = ev->ev[i].seq;
			found = true;
		}
	free(ev);
	return found;
}

/* odp: the holder is asked to stop using the range, acknowledges, and the free completes at once. */
static void test_odp_invalidate_ack(void **state)
{
	struct pfix *x = *state;
	struct policy_pin_args a = fx_pin_args(0, 4 * BS, DAXFS_PIN_LONGTERM);
	uint64_t unused;
	struct bg b;

	pmount(x, "odp", "ack_ms=60000");
	assert_int_equal(policy_pin(x->fs, &x->o2, x->ip, &a, NULL, &unused), -EOPNOTSUPP);
	uint64_t id = fx_pin(x->fs, &x->o, x->ip, 16 * BS, 16 * BS, DAXFS_PIN_WRITE | DAXFS_PIN_LONGTERM | DAXFS_PIN_ODP);
	bg_start(&b, x->fs, x->ip->ino, 8 * BS);
	struct inval_wait w = { x->fs, &x->o, id, 0 };
	assert_true(unit_wait(got_invalidate, &w, 5000));
	assert_false(bg_done(&b));
	assert_int_equal(policy_ack(x->fs, &x->o, id, w.seq + 100), -ENOENT);
	assert_int_equal(policy_ack(x->fs, &x->o2, id, w.seq), -EBADF);
	assert_int_equal(policy_ack(x->fs, &x->o, id, w.seq), 0);
	assert_int_equal(bg_join(x, &b, 5000), 0);
	assert_int_equal(size_of(x), 8 * BS);
	assert_int_equal(fx_busy_blocks(x->fs), 0);	/* let go of: nothing busy */
	struct daxfs_ioc_pin_status st = { .size = sizeof(st), .pin_id = id };
	assert_int_equal(policy_pin_status(x->fs, &x->o, &st), 0);
	assert_int_equal(st.state, DAXFS_PIN_ACTIVE);
	assert_true(st.invalidated > 0);
	assert_int_equal(policy_ack(x->fs, &x->o, id, w.seq), -ENOENT);	/* once */
	/* Refaulting the range now past EOF: ENXIO. */
	struct daxfs_ioc_pin_fault *fl = calloc(1, sizeof(*fl));
	assert_non_null(fl);
	*fl = (struct daxfs_ioc_pin_fault){ .size = sizeof(*fl), .pin_id = id, .offset = 0, .length = 4 * BS };
	assert_int_equal(policy_fault(x->fs, &x->o, x->ip, fl), -ENXIO);
	free(fl);
	struct daxfs_ioc_stats s = fx_stats(x->fs);
	assert_int_equal(s.invalidations, 1);
	assert_int_equal(s.invalidations_acked, 1);
}

/* busy-quota: busy extents within the quota, the fallback beyond it; a fallback it lacks is refused. */
static void test_busy_quota(void **state)
{
	struct pfix *x = *state;
	char err[256] = "";

	pmount(x, "busy-quota", "quota=64K,fallback=fail");
	fx_pin(x->fs, &x->o, x->ip, 16 * BS, 8 * BS, DAXFS_PIN_WRITE);
	assert_int_equal(fx_truncate(x->fs, x->ip->ino, 0, NULL), 0);
	assert_int_equal(fx_busy_blocks(x->fs), 8);	/* 32 KiB busy: within 64 KiB */
	struct inode *g = fx_file(x->fs, "g", 32, 0x44);
	fx_pin(x->fs, &x->o2, g, 0, 16 * BS, 0);
	assert_int_equal(fx_truncate(x->fs, g->ino, 0, NULL), -EBUSY);	/* 32 + 64 KiB: past it, fail */
	assert_int_equal(stat_of(x->fs, g->ino).st_size, 32 * BS);
	assert_int_equal(fx_truncate(x->fs, g->ino, 20 * BS, NULL), 0);	/* unpinned blocks: no question */
	assert_int_equal(policy_set_params(x->fs, "quota=1M", err, sizeof(err)), 0);
	assert_int_equal(fx_truncate(x->fs, g->ino, 0, NULL), 0);
	assert_int_equal(fx_busy_blocks(x->fs), 24);
	err[0] = 0;
	assert_int_equal(policy_set_params(x->fs, "fallback=unsafe", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "refused its parameters"));
	namei_release(x->fs, g);
}

/* ---- admission, limits, arguments ---- */

static int try_pin(struct pfix *x, struct pin_owner *o, uint64_t off, uint64_t len, uint32_t flags, uint32_t uid,
		   pid_t pid)
{
	struct policy_pin_args a = fx_pin_args(off, len, flags);
	uint64_t id;

	a.uid = uid;
	a.pid = pid;
	return policy_pin(x->fs, o, x->ip, &a, NULL, &id);
}

static void test_admission(void **state)
{
	struct pfix *x = *state;
	char err[256] = "";
	const uint32_t LT = DAXFS_PIN_LONGTERM;

	pmount(x, "busy", "pins=deny-longterm");
	uint64_t refused0 = fx_stats(x->fs).pins_refused;
	assert_int_equal(try_pin(x, &x->o, 0, BS, LT, 0, getpid()), -EOPNOTSUPP);
	assert_int_equal(try_pin(x, &x->o, 0, BS, 0, 0, getpid()), 0);
	assert_int_equal(fx_stats(x->fs).pins_refused, refused0 + 1);
	assert_int_equal(policy_set_params(x->fs, "pins=revocable-only", err, sizeof(err)), 0);
	assert_int_equal(try_pin(x, &x->o, 0, BS, LT, 0, getpid()), -EOPNOTSUPP);
	assert_int_equal(try_pin(x, &x->o, 0, BS, LT | DAXFS_PIN_REVOCABLE, 0, getpid()), 0);
	/* The policy's own rule: deny-longterm refuses long-term pins in admit. */
	assert_int_equal(policy_set(x->fs, "deny-longterm", "pins=allow", err, sizeof(err)), 0);
	assert_int_equal(try_pin(x, &x->o, 0, BS, LT | DAXFS_PIN_REVOCABLE, 0, getpid()), -EOPNOTSUPP);
	assert_int_equal(try_pin(x, &x->o, 0, BS, 0, 0, getpid()), 0);
	/*
	 * A policy that stalls truncates: pins on someone else's file need ownership or CAP_LEASE.
	 * (pid INT_MAX: no such process, so no CAP_LEASE.)
	 */
	assert_int_equal(try_pin(x, &x->o2, 0, BS, 0, 1000, INT_MAX), -EPERM);
	assert_int_equal(try_pin(x, &x->o2, 0, BS, 0, 1000, getpid()), 0);	/* we have CAP_LEASE (root) */
	assert_int_equal(policy_set(x->fs, "busy", NULL, err, sizeof(err)), 0);
	assert_int_equal(try_pin(x, &x->o2, 0, BS, 0, 1000, INT_MAX), 0);	/* busy never stalls anyone */
	assert_int_equal(policy_set(x->fs, "wait", NULL, err, sizeof(err)), 0);
	struct stat attr = { .st_uid = 1000 };
	assert_int_equal(namei_setattr(x->fs, x->ip->ino, &attr, NAMEI_SET_UID, NULL, NULL), 0);
	assert_int_equal(try_pin(x, &x->o2, 0, BS, 0, 1000, INT_MAX), 0);	/* the owner's own file */

	/* Arguments. */
	assert_int_equal(try_pin(x, &x->o, 0, BS, 0x100, 0, getpid()), -EINVAL);
	assert_int_equal(try_pin(x, &x->o, 0, 0, 0, 0, getpid()), -EINVAL);
	assert_int_equal(try_pin(x, &x->o, FILE_BLOCKS * BS, BS, 0, 0, getpid()), -EINVAL);	/* at EOF */
	assert_int_equal(try_pin(x, &x->o, (FILE_BLOCKS - 1) * BS, 2 * BS, 0, 0, getpid()), -EINVAL);
	struct policy_pin_args a = fx_pin_args(0, BS, 0);
	uint64_t id;
	a.signo = SIGKILL;
	assert_int_equal(policy_pin(x->fs, &x->o, x->ip, &a, NULL, &id), -EINVAL);
	a.signo = SIGUSR1;
	assert_int_equal(policy_pin(x->fs, &x->o, x->ip, &a, NULL, &id), 0);
	a = fx_pin_args(0, BS, DAXFS_PIN_WRITE);
	a.writable = false;
	assert_int_equal(policy_pin(x->fs, &x->o, x->ip, &a, NULL, &id), -EBADF);
	a = fx_pin_args(0, BS, 0);
	assert_int_equal(policy_pin(x->fs, &x->o, x->fs->root, &a, NULL, &id), -EINVAL);	/* a directory */
}

/* Limits of the mount: pins per file (EMFILE), in all (ENFILE), pinned bytes per user (EDQUOT). */
static void test_limits(void **state)
{
	struct pfix *x = *state;
	struct mount_config cfg = { .enospc_wait_ms = 1000,
				    .limits = { .max_pins = 3, .max_pins_per_file = 2, .max_user_bytes = 8 * BS } };

	x->fs = fx_mount(x->img.path, &cfg);
	x->ip = fx_file(x->fs, "f", FILE_BLOCKS, 0x33);
	assert_int_equal(try_pin(x, &x->o, 0, BS, 0, 0, getpid()), 0);
	assert_int_equal(try_pin(x, &x->o, 0, BS, 0, 0, getpid()), 0);
	assert_int_equal(try_pin(x, &x->o, 0, BS, 0, 0, getpid()), -EMFILE);
	assert_int_equal(try_pin(x, &x->o2, 0, 8 * BS, 0, 1000, getpid()), 0);	/* 8 blocks: the quota */
	assert_int_equal(try_pin(x, &x->o2, 0, BS, 0, 0, getpid()), -ENFILE);
	policy_release_owner(x->fs, &x->o);
	pin_owner_init(&x->o);
	assert_int_equal(try_pin(x, &x->o, 8 * BS, BS, 0, 1000, getpid()), -EDQUOT);
	assert_int_equal(try_pin(x, &x->o, 8 * BS, 16 * BS, 0, 0, getpid()), 0);	/* root: no quota */
	/* The quota counts per pin: the same blocks pinned twice count twice. */
	policy_release_owner(x->fs, &x->o2);
	pin_owner_init(&x->o2);
	assert_int_equal(try_pin(x, &x->o2, 0, 4 * BS, 0, 1000, getpid()), 0);
	assert_int_equal(try_pin(x, &x->o2, 0, 4 * BS, 0, 1000, getpid()), 0);
	policy_release_owner(x->fs, &x->o);
	pin_owner_init(&x->o);
	assert_int_equal(try_pin(x, &x->o, 0, BS, 0, 1000, getpid()), -EDQUOT);
}

/* A read-only mount refuses write pins; read pins are fine. */
static void test_readonly_pins(void **state)
{
	struct pfix *x = *state;
	struct mount_config cfg = { .readonly = true };
	uint64_t ino;

	pmount(x, NULL, NULL);
	ino = x->ip->ino;
	close_fs(x);
	x->fs = fx_mount(x->img.path, &cfg);
	assert_int_equal(namei_open(x->fs, ino, O_RDONLY, &x->ip, NULL), 0);
	assert_int_equal(try_pin(x, &x->o, 0, BS, DAXFS_PIN_WRITE, 0, getpid()), -EROFS);
	assert_int_equal(try_pin(x, &x->o, 0, BS, 0, 0, getpid()), 0);
}

/* ---- a loaded policy ---- */

/* Where the probe objects were built: next to this program. */
static void probe_path(const char *name, char *out, size_t size)
{
	char self[2048];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	assert_true(n > 0);
	self[n] = 0;
	char *slash = strrchr(self, '/');
	assert_non_null(slash);
	*slash = 0;
	snprintf(out, size, "%s/%s", self, name);
}

/* Load the probe with params; returns its state (the object stays loaded until teardown). */
static struct probe *load_probe(struct pfix *x, const char *params)
{
	char path[4096], err[256] = "";

	probe_path("probe-policy.so", path, sizeof(path));
	if (policy_set(x->fs, path, params, err, sizeof(err)))
		fail_msg("loading %s: %s", path, err);
	if (!x->probe_handle)
		x->probe_handle = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
	assert_non_null(x->probe_handle);
	struct probe *p = dlsym(x->probe_handle, "probe_state");
	assert_non_null(p);
	return p;
}

static void test_loaded_refused(void **state)
{
	struct pfix *x = *state;
	struct daxfs_ioc_policy before, after;
	char path[4096], err[256];
	static const struct {
		const char *object, *says;
	} broken[] = {
		{ "probe-noops.so", "exports no" },
		{ "probe-badabi.so", "ABI" },
		{ "probe-badname.so", "[a-z0-9-]" },	/* the rule, in the message */
	};

	pmount(x, NULL, NULL);
	policy_describe(x->fs, &before);
	for (size_t i = 0; i < sizeof(broken) / sizeof(broken[0]); i++) {
		probe_path(broken[i].object, path, sizeof(path));
		err[0] = 0;
		assert_int_equal(policy_set(x->fs, path, NULL, err, sizeof(err)), -ENOEXEC);
		if (!strstr(err, broken[i].says))
			fail_msg("%s: \"%s\"", broken[i].object, err);
	}
	/* Not an object at all; writable by others. */
	image_create(&x->other, 4096);
	assert_int_equal(chmod(x->other.path, 0644), 0);
	assert_int_equal(policy_set(x->fs, x->other.path, NULL, err, sizeof(err)), -ENOEXEC);
	assert_int_equal(chmod(x->other.path, 0666), 0);
	err[0] = 0;
	assert_int_equal(policy_set(x->fs, x->other.path, NULL, err, sizeof(err)), -EPERM);
	assert_non_null(strstr(err, "writable by nobody else"));
	/* Its init refuses; its parameters are checked like a built-in's. */
	probe_path("probe-policy.so", path, sizeof(path));
	err[0] = 0;
	assert_int_equal(policy_set(x->fs, path, "fail_init=1", err, sizeof(err)), -ENOTRECOVERABLE);
	assert_non_null(strstr(err, "refused its parameters"));
	assert_int_equal(policy_set(x->fs, path, "size=big", err, sizeof(err)), -EINVAL);
	assert_int_equal(policy_set(x->fs, path, "colour=blue", err, sizeof(err)), -EINVAL);
	policy_describe(x->fs, &after);
	assert_string_equal(after.name, before.name);
	assert_int_equal(after.generation, before.generation);
	assert_int_equal(after.flags & DAXFS_POLICY_F_LOADED, 0);
}

static bool busy_is_16(void *arg)
{
	return fx_busy_blocks(arg) == 16;
}

static void test_loaded_hooks(void **state)
{
	struct pfix *x = *state;
	struct daxfs_policy_desc d[16];
	struct daxfs_ioc_policy desc;
	uint32_t total, nb = 0;
	struct capture cap;

	pmount(x, NULL, NULL);
	struct probe *p = load_probe(x, "color=blue,size=2M,grace_ms=300");
	assert_int_equal(p->inits, 1);
	assert_string_equal(p->color, "blue");
	assert_string_equal(p->grace, "300");
	assert_int_equal(p->size, 2 * MiB);
	assert_false(p->unknown_param);
	assert_true(p->priv_ok);
	assert_true(p->builtin_wait);
	policy_describe(x->fs, &desc);
	assert_string_equal(desc.name, "probe");
	assert_int_equal(desc.flags, DAXFS_POLICY_F_LOADED);
	assert_non_null(strstr(desc.params, "color=blue"));
	assert_non_null(strstr(desc.params, "size=2M"));
	while (policy_builtins[nb])
		nb++;
	assert_int_equal(policy_list(x->fs, 0, d, 16, &total), nb + 2);
	assert_string_equal(d[nb].name, "probe");
	assert_int_equal(d[nb].flags, DAXFS_POLICY_F_LOADED);
	assert_non_null(strstr(d[nb].params, "color=red: any text"));

	/* admit sees the request; its answer stands (a positive one is EPERM). */
	uint64_t id = fx_pin(x->fs, &x->o, x->ip, 16 * BS, 16 * BS, DAXFS_PIN_WRITE);
	assert_int_equal(p->admits, 1);
	assert_int_equal(p->req.ino, x->ip->ino);
	assert_int_equal(p->req.offset, 16 * BS);
	assert_int_equal(p->req.length, 16 * BS);
	assert_int_equal(p->req.flags, DAXFS_PIN_WRITE);
	assert_int_equal(p->req.uid, 0);
	assert_int_equal(p->req.pid, getpid());
	assert_int_equal(p->req.file_uid, 0);
	assert_true(p->req.privileged);
	p->admit_answer = -EACCES;
	assert_int_equal(try_pin(x, &x->o2, 0, BS, 0, 0, getpid()), -EACCES);
	p->admit_answer = 3;
	assert_int_equal(try_pin(x, &x->o2, 0, BS, 0, 0, getpid()), -EPERM);
	p->admit_answer = 0;

	/* before_free sees the decision; PROCEED and KEEP_BUSY make the pinned blocks busy. */
	uint64_t media = fx_pin_media(x->fs, &x->o, id);
	p->holder_pid = getpid();
	assert_int_equal(fx_truncate(x->fs, x->ip->ino, 8 * BS, NULL), 0);
	assert_int_equal(p->before_frees, 1);
	assert_int_equal(p->cause, DAXFS_CAUSE_TRUNCATE);
	assert_int_equal(p->ino, x->ip->ino);
	assert_int_equal(p->nranges, 1);
	assert_int_equal(p->range_file_off, 8 * BS);
	assert_int_equal(p->range_media_off, media - 8 * BS);
	assert_int_equal(p->range_len, (FILE_BLOCKS - 8) * BS);
	assert_int_equal(p->pinned_bytes, 16 * BS);
	assert_int_equal(p->live_pins, 1);
	assert_int_equal(p->attempt, 1);
	assert_int_equal(p->scratch_count, 1);
	assert_int_equal(p->busy_bytes, 0);
	assert_int_equal(p->npins, 1);
	assert_int_equal(p->pins[0].id, id);
	assert_int_equal(p->pins[0].ino, x->ip->ino);
	assert_int_equal(p->pins[0].flags, DAXFS_PIN_WRITE);
	assert_int_equal(p->pins[0].state, DAXFS_PIN_ACTIVE);
	assert_int_equal(p->pins[0].pid, getpid());
	assert_int_equal(p->pins[0].uid, 0);
	assert_int_equal(p->pins[0].bytes, 16 * BS);
	assert_int_equal(p->pinned_freeds, 1);
	assert_int_equal(p->freed_media_off, media);
	assert_int_equal(p->freed_len, 16 * BS);
	assert_int_equal(fx_busy_blocks(x->fs), 16);

	/* The next decision sees the busy bytes, and those under this process's pins. */
	struct inode *g = fx_file(x->fs, "g", 16, 0x44);
	uint64_t gid = fx_pin(x->fs, &x->o2, g, 0, 4 * BS, 0);
	assert_int_equal(fx_truncate(x->fs, g->ino, 0, NULL), 0);
	assert_int_equal(p->busy_bytes, 16 * BS);
	assert_int_equal(p->holder_busy_bytes, 16 * BS);
	assert_int_equal(p->pinned_bytes, 4 * BS);

	/* Refusals: an errno fails the operation, the file unchanged; a positive answer is EIO. */
	policy_release_owner(x->fs, &x->o2);
	pin_owner_init(&x->o2);
	(void)gid;
	assert_true(unit_wait(busy_is_16, x->fs, 10000));	/* g's busy blocks reclaimed, f's stay */
	fx_pin(x->fs, &x->o2, x->ip, 0, 4 * BS, 0);
	p->answer = -EXDEV;
	assert_int_equal(fx_truncate(x->fs, x->ip->ino, 0, NULL), -EXDEV);
	assert_int_equal(size_of(x), 8 * BS);
	p->answer = 5;
	capture_begin(&cap);
	int ret = fx_truncate(x->fs, x->ip->ino, 0, NULL);
	char *said = capture_end(&cap);
	assert_int_equal(ret, -EIO);
	assert_non_null(strstr(said, "answered 5"));
	free(said);
	assert_int_equal(size_of(x), 8 * BS);
	assert_int_equal(fx_stats(x->fs).frees_failed, 2);

	/* FREE_NOW: the pinned blocks go straight back, counted as unsafe. */
	p->answer = DAXFS_PROCEED;
	p->pinned_answer = DAXFS_FREE_NOW;
	uint64_t busy = fx_busy_blocks(x->fs);
	assert_int_equal(fx_truncate(x->fs, x->ip->ino, 0, NULL), 0);
	assert_int_equal(fx_busy_blocks(x->fs), busy);
	assert_int_equal(fx_stats(x->fs).unsafe_blocks, 4);

	/* on_unpin, for unpins and released owners alike. */
	uint32_t unpins = p->unpins;
	assert_int_equal(policy_unpin(x->fs, &x->o, id), 0);
	assert_int_equal(p->unpins, unpins + 1);
	assert_int_equal(p->unpinned_id, id);
	namei_release(x->fs, g);
}

/* DAXFS_WAIT with a time: decided again then, scratch kept, same start, until it proceeds. */
static void test_loaded_wait_attempts(void **state)
{
	struct pfix *x = *state;

	pmount(x, NULL, NULL);
	struct probe *p = load_probe(x, NULL);
	fx_pin(x->fs, &x->o, x->ip, 16 * BS, 16 * BS, DAXFS_PIN_WRITE);
	p->answer = DAXFS_WAIT;
	p->wait_attempts = 3;
	p->wait_ns = 10 * 1000000ull;
	p->scope = DAXFS_BREAK_RANGE;
	uint64_t t0 = daxfs_now_ns();
	assert_int_equal(fx_truncate(x->fs, x->ip->ino, 0, NULL), 0);
	assert_int_equal(p->attempt, 3);
	assert_int_equal(p->scratch_count, 3);
	assert_true(p->started_ns >= t0 && p->started_ns < daxfs_now_ns());
	assert_true(daxfs_now_ns() - t0 >= 20 * 1000000ull);	/* two waits of 10 ms */
	assert_int_equal(fx_stats(x->fs).frees_waited, 1);
}

static bool timer_fired(void *arg)
{
	return __atomic_load_n(&((struct probe *)arg)->timers, __ATOMIC_ACQUIRE) > 0;
}

/* New parameters make a new instance (init, and fini for the old one); the timer fires on the worker. */
static void test_loaded_timer_and_switch(void **state)
{
	struct pfix *x = *state;
	char err[256] = "";

	pmount(x, NULL, NULL);
	struct probe *p = load_probe(x, NULL);
	assert_int_equal(p->inits, 1);
	uint64_t t0 = daxfs_now_ns();
	assert_int_equal(policy_set_params(x->fs, "timer_ms=5", err, sizeof(err)), 0);
	assert_int_equal(p->inits, 2);
	assert_int_equal(p->finis, 1);
	assert_true(unit_wait(timer_fired, p, 5000));
	assert_true(p->timer_now >= t0 + 5 * 1000000ull);
	/* A refused change keeps the instance in force (no fini of it). */
	assert_int_equal(policy_set_params(x->fs, "fail_init=1", err, sizeof(err)), -ENOTRECOVERABLE);
	assert_int_equal(p->finis, 1);
	/* Switching away finishes it. */
	assert_int_equal(policy_set(x->fs, "busy", NULL, err, sizeof(err)), 0);
	assert_int_equal(p->finis, 2);
	struct daxfs_ioc_policy d;
	policy_describe(x->fs, &d);
	assert_string_equal(d.name, "busy");
	assert_int_equal(d.flags, 0);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, pfix_setup, pfix_teardown)
	const struct CMUnitTest tests[] = {
		T(test_list_and_describe),
		T(test_set_errors),
		T(test_params_and_switch),
		T(test_wait_blocks_then_resumes),
		T(test_park_and_resume),
		T(test_interrupt_parked),
		T(test_stop_interrupts_parked),
		T(test_switch_wakes_waiter),
		T(test_wait_timeout),
		T(test_before_free_direct),
		T(test_fail_policy),
		T(test_unsafe_policy),
		T(test_revoke_unpin_in_grace),
		T(test_revoke_after_grace),
		T(test_revoke_earlier_deadline),
		T(test_odp_invalidate_ack),
		T(test_busy_quota),
		T(test_admission),
		T(test_limits),
		T(test_readonly_pins),
		T(test_loaded_refused),
		T(test_loaded_hooks),
		T(test_loaded_wait_attempts),
		T(test_loaded_timer_and_switch),
	};

	if (getenv("UNIT_FILTER"))
		cmocka_set_test_filter(getenv("UNIT_FILTER"));
	return cmocka_run_group_tests_name("policy", tests, NULL, NULL);
}
