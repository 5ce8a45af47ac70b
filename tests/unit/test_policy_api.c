/* SPDX-License-Identifier: MIT */
/*
 * policy_api.c: what a policy sees and may do (include/daxfs/policy.h), called here directly as a
 * hook would, with the pin table locked, on a mounted file system with real pins: numbers with
 * suffixes, parameters and private state, a decision's ranges, pinned bytes and live pins, the pin
 * views, lease breaks (an earlier deadline stands), revocation, invalidations (once per free), busy
 * bytes overall and per holder, the timer, and trace records with their escapes.
 */
#include <pthread.h>

#include "fs_fixture.h"
#include "jsonl.h"

struct afix {
	struct image img;
	struct image trace;
	struct fs *fs;
	struct inode *ip;	/* "f": 32 blocks, open */
	struct pin_owner o1, o2;
	uint64_t pblk;		/* its media, one extent */
};

static int afix_setup(void **state)
{
	struct afix *x = calloc(1, sizeof(*x));

	if (!x)
		return -1;
	image_name(&x->img, "policy-api");
	image_name(&x->trace, "policy-api-trace");
	*state = x;
	image_format(&x->img, 64 * MiB, NULL);
	struct mount_config cfg = { .enospc_wait_ms = 1000, .trace = x->trace.path, .policy_params = "grace_ms=2K" };
	x->fs = fx_mount(x->img.path, &cfg);
	x->ip = fx_file(x->fs, "f", 32, 0x11);
	struct emap_cursor c;
	struct daxfs_extent e;
	assert_true(emap_seek(x->ip, 0, &c, &e));
	assert_int_equal(e.len, 32);
	x->pblk = e.pblk;
	pin_owner_init(&x->o1);
	pin_owner_init(&x->o2);
	return 0;
}

static int afix_teardown(void **state)
{
	struct afix *x = *state;

	if (x->fs) {
		policy_release_owner(x->fs, &x->o1);
		policy_release_owner(x->fs, &x->o2);
		namei_release(x->fs, x->ip);
		mount_close(x->fs);
	}
	image_remove(&x->img);
	image_remove(&x->trace);
	free(x);
	return 0;
}

static void lock_pins(struct fs *fs)
{
	lock_take(&fs->pol->pins.lock);
}

static void unlock_pins(struct fs *fs)
{
	lock_drop(&fs->pol->pins.lock);
}

static void test_parse_u64(void **state)
{
	static const struct {
		const char *s;
		int ret;
		uint64_t v;
	} cases[] = {
		{ "0", 0, 0 },
		{ "42", 0, 42 },
		{ "10k", 0, 10240 },
		{ "10K", 0, 10240 },
		{ "3M", 0, 3ull << 20 },
		{ "2g", 0, 2ull << 30 },
		{ "16T", 0, 16ull << 40 },
		{ "18446744073709551615", 0, UINT64_MAX },
		{ "16777215T", 0, 16777215ull << 40 },
		{ "16777216T", -EINVAL, 0 },	/* overflows */
		{ "18446744073709551616", -EINVAL, 0 },
		{ "", -EINVAL, 0 },
		{ "-1", -EINVAL, 0 },
		{ "K", -EINVAL, 0 },
		{ "12x", -EINVAL, 0 },
		{ "12KB", -EINVAL, 0 },
		{ "1.5M", -EINVAL, 0 },
	};
	uint64_t v;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		v = 12345;
		int ret = policy_parse_u64(cases[i].s, &v);

		if (ret != cases[i].ret || (ret == 0 && v != cases[i].v))
			fail_msg("\"%s\": %d, %llu", cases[i].s, ret, (unsigned long long)v);
	}
	assert_int_equal(policy_parse_u64(NULL, &v), -EINVAL);
}

static void test_params_and_priv(void **state)
{
	struct afix *x = *state;
	struct daxfs_policy *pol = x->fs->pol->cur;
	int dummy;

	lock_pins(x->fs);
	assert_string_equal(daxfs_policy_param(pol, "pins"), "allow");
	assert_string_equal(daxfs_policy_param(pol, "grace_ms"), "2K");
	assert_string_equal(daxfs_policy_param(pol, "wait_timeout_ms"), "0");
	assert_null(daxfs_policy_param(pol, "nothing"));
	assert_int_equal(daxfs_policy_param_u64(pol, "grace_ms", 7), 2048);
	assert_int_equal(daxfs_policy_param_u64(pol, "pins", 7), 7);	/* not a number: the default */
	assert_int_equal(daxfs_policy_param_u64(pol, "nothing", 9), 9);
	assert_null(daxfs_policy_priv(pol));
	daxfs_policy_set_priv(pol, &dummy);
	assert_ptr_equal(daxfs_policy_priv(pol), &dummy);
	daxfs_policy_set_priv(pol, NULL);
	unlock_pins(x->fs);
	/* The mount derived its grace period from the same parameter. */
	assert_int_equal(x->fs->pol->grace_ns, 2048 * 1000000ull);
	uint64_t a = daxfs_now_ns(), b = util_now_ns(), c = daxfs_now_ns();
	assert_true(a <= b && b <= c);
	assert_non_null(daxfs_policy_builtin("busy"));
	assert_string_equal(daxfs_policy_builtin("revoke")->name, "revoke");
	assert_null(daxfs_policy_builtin("no-such-policy"));
}

/* A decision over all 32 blocks of f, as the dispatcher builds it. */
static struct daxfs_free free_of(struct afix *x, struct pin_ext *range)
{
	*range = (struct pin_ext){ .lblk = 0, .pblk = x->pblk, .len = 32 };
	return (struct daxfs_free){ .pol = x->fs->pol, .cause = DAXFS_CAUSE_PUNCH, .ino = x->ip->ino, .lblk = 0,
				    .n = 32, .ranges = range, .nranges = 1, .attempt = 2, .started_ns = 1234,
				    .id = 777 };
}

struct views {
	int n, stop_at;
	uint64_t id[8];
	uint32_t flags[8], state[8], uid[8];
	int32_t pid[8];
	uint64_t ino[8], bytes[8];
};

static int see(void *arg, const struct daxfs_pin_view *p)
{
	struct views *v = arg;

	v->id[v->n] = daxfs_pin_id(p);
	v->ino[v->n] = daxfs_pin_ino(p);
	v->flags[v->n] = daxfs_pin_flags(p);
	v->state[v->n] = daxfs_pin_state(p);
	v->pid[v->n] = daxfs_pin_pid(p);
	v->uid[v->n] = daxfs_pin_uid(p);
	v->bytes[v->n] = daxfs_pin_bytes(p);
	v->n++;
	return v->n == v->stop_at;
}

/* Pins A [4, 8) write, B [6, 12) read by uid 1000, C [20, 24) ODP. */
static void three_pins(struct afix *x, uint64_t id[3])
{
	struct policy_pin_args b = fx_pin_args(6 * BS, 6 * BS, 0);

	id[0] = fx_pin(x->fs, &x->o1, x->ip, 4 * BS, 4 * BS, DAXFS_PIN_WRITE);
	b.uid = 1000;
	assert_int_equal(policy_pin(x->fs, &x->o2, x->ip, &b, NULL, &id[1]), 0);
	id[2] = fx_pin(x->fs, &x->o1, x->ip, 20 * BS, 4 * BS, DAXFS_PIN_ODP);
}

static void test_free_view(void **state)
{
	struct afix *x = *state;
	struct pin_ext range;
	struct daxfs_free f = free_of(x, &range);
	uint64_t id[3], file_off, media_off, len;
	struct views v = { 0 };

	three_pins(x, id);
	lock_pins(x->fs);
	assert_int_equal(daxfs_free_cause(&f), DAXFS_CAUSE_PUNCH);
	assert_int_equal(daxfs_free_ino(&f), x->ip->ino);
	assert_int_equal(daxfs_free_nranges(&f), 1);
	daxfs_free_range(&f, 0, &file_off, &media_off, &len);
	assert_int_equal(file_off, 0);
	assert_int_equal(media_off, x->pblk * BS);
	assert_int_equal(len, 32 * BS);
	daxfs_free_range(&f, 1, &file_off, &media_off, &len);	/* out of range: zeroes */
	assert_true(file_off == 0 && media_off == 0 && len == 0);
	/* [4, 12) and [20, 24): 12 blocks, counted once where A and B overlap. */
	assert_int_equal(daxfs_free_pinned_bytes(&f), 12 * BS);
	assert_int_equal(daxfs_free_live_pins(&f), 3);
	assert_int_equal(daxfs_free_attempt(&f), 2);
	assert_int_equal(daxfs_free_started_ns(&f), 1234);
	uint8_t *scratch = daxfs_free_scratch(&f);
	assert_ptr_equal(scratch, (void *)f.scratch);
	scratch[DAXFS_FREE_SCRATCH - 1] = 0x5a;	/* all of it is the policy's */
	daxfs_free_wait(&f, 999, DAXFS_BREAK_FILE);
	assert_int_equal(f.wait_until, 999);
	assert_int_equal(f.scope, DAXFS_BREAK_FILE);

	/* The pins, in file order, as views. */
	assert_int_equal(daxfs_free_for_each_pin(&f, see, &v), 0);
	assert_int_equal(v.n, 3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(v.id[i], id[i]);
		assert_int_equal(v.ino[i], x->ip->ino);
		assert_int_equal(v.state[i], DAXFS_PIN_ACTIVE);
		assert_int_equal(v.pid[i], getpid());
		assert_int_equal(v.bytes[i], 4 * BS + (i == 1) * 2 * BS);
	}
	assert_int_equal(v.flags[0], DAXFS_PIN_WRITE);
	assert_int_equal(v.flags[1], 0);
	assert_int_equal(v.flags[2], DAXFS_PIN_ODP);
	assert_int_equal(v.uid[0], 0);
	assert_int_equal(v.uid[1], 1000);
	/* A non-zero answer stops the walk and is returned. */
	v = (struct views){ .stop_at = 2 };
	assert_int_equal(daxfs_free_for_each_pin(&f, see, &v), 1);
	assert_int_equal(v.n, 2);
	/* A decision over blocks [12, 20) meets no pin. */
	range = (struct pin_ext){ .lblk = 12, .pblk = x->pblk + 12, .len = 8 };
	assert_int_equal(daxfs_free_pinned_bytes(&f), 0);
	assert_int_equal(daxfs_free_live_pins(&f), 0);
	v = (struct views){ 0 };
	assert_int_equal(daxfs_free_for_each_pin(&f, see, &v), 0);
	assert_int_equal(v.n, 0);
	unlock_pins(x->fs);
}

/* The events of owner o from seq 1. */
static struct daxfs_ioc_events *events_of(struct fs *fs, struct pin_owner *o)
{
	struct daxfs_ioc_events *ev = calloc(1, sizeof(*ev));

	assert_non_null(ev);
	ev->from_seq = 1;
	policy_events(fs, o, ev);
	return ev;
}

static uint64_t ns_left(struct afix *x, struct pin_owner *o, uint64_t id, uint32_t *state)
{
	struct daxfs_ioc_pin_status st = { .size = sizeof(st), .pin_id = id };

	assert_int_equal(policy_pin_status(x->fs, o, &st), 0);
	*state = st.state;
	return st.deadline_ns;
}

static void test_pin_actions(void **state)
{
	struct afix *x = *state;
	struct daxfs_policy *pol = x->fs->pol->cur;
	struct pin_ext range;
	struct daxfs_free f = free_of(x, &range);
	struct views v = { 0 };
	uint64_t id[3], now = daxfs_now_ns();
	uint32_t st;

	three_pins(x, id);
	lock_pins(x->fs);
	daxfs_free_for_each_pin(&f, see, &v);
	assert_int_equal(v.n, 3);
	/* Views are valid only inside a "hook": fetch them again for each step. */
	struct pin *pa, *pb, *pc;
	assert_int_equal(pin_lookup_locked(&x->fs->pol->pins, &x->o1, id[0], &pa), 0);
	assert_int_equal(pin_lookup_locked(&x->fs->pol->pins, &x->o2, id[1], &pb), 0);
	assert_int_equal(pin_lookup_locked(&x->fs->pol->pins, &x->o1, id[2], &pc), 0);
	/*
	 * Lease break: REVOKING with a deadline, which a later break does not extend.  (A later break
	 * with an earlier deadline: see test_policy's test_revoke_earlier_deadline.)
	 */
	assert_int_equal(daxfs_pin_break_lease(pol, VIEW(pb), now + 60 * 1000000000ull), 0);
	assert_int_equal(daxfs_pin_break_lease(pol, VIEW(pb), now + 120 * 1000000000ull), 0);
	unlock_pins(x->fs);
	uint64_t left = ns_left(x, &x->o2, id[1], &st);
	assert_int_equal(st, DAXFS_PIN_REVOKING);
	assert_true(left > 50 * 1000000000ull && left <= 60 * 1000000000ull);
	struct daxfs_ioc_events *ev = events_of(x->fs, &x->o2);
	assert_true(ev->count >= 1);
	assert_int_equal(ev->ev[0].type, DAXFS_EV_LEASE_BREAK);
	assert_int_equal(ev->ev[0].pin_id, id[1]);
	free(ev);

	/* Revoke: once; a revoked pin's lease cannot be broken. */
	lock_pins(x->fs);
	assert_int_equal(daxfs_pin_revoke(pol, VIEW(pa)), 0);
	assert_int_equal(daxfs_pin_state(VIEW(pa)), DAXFS_PIN_REVOKED);
	assert_int_equal(daxfs_pin_revoke(pol, VIEW(pa)), -EINVAL);
	assert_int_equal(daxfs_pin_break_lease(pol, VIEW(pa), now + 1000000000ull), -EINVAL);
	assert_int_equal(daxfs_free_live_pins(&f), 2);
	/* A revoked pin that is not DAXFS_PIN_REVOCABLE keeps its blocks until released. */
	assert_int_equal(daxfs_free_pinned_bytes(&f), 12 * BS);

	/* Invalidate: only ODP pins; once per free. */
	assert_int_equal(daxfs_pin_invalidate(pol, &f, VIEW(pb), now + 60 * 1000000000ull), -EINVAL);
	assert_int_equal(daxfs_pin_invalidate(pol, &f, VIEW(pc), now + 60 * 1000000000ull), 0);
	assert_int_equal(daxfs_pin_invalidate(pol, &f, VIEW(pc), now + 60 * 1000000000ull), 0);
	unlock_pins(x->fs);
	ev = events_of(x->fs, &x->o1);
	int revoked = 0, invalidates = 0;
	for (uint32_t i = 0; i < ev->count; i++) {
		revoked += ev->ev[i].type == DAXFS_EV_REVOKED && ev->ev[i].pin_id == id[0];
		invalidates += ev->ev[i].type == DAXFS_EV_INVALIDATE && ev->ev[i].pin_id == id[2];
	}
	assert_int_equal(revoked, 1);
	assert_int_equal(invalidates, 1);
	free(ev);
	ns_left(x, &x->o1, id[0], &st);
	assert_int_equal(st, DAXFS_PIN_REVOKED);
}

/* Busy bytes: the file system's, and those under the pins of one process. */
static void test_busy_bytes(void **state)
{
	struct afix *x = *state;
	struct daxfs_policy *pol = x->fs->pol->cur;
	uint64_t id[3];

	three_pins(x, id);
	lock_pins(x->fs);
	assert_int_equal(daxfs_policy_busy_bytes(pol), 0);
	assert_int_equal(daxfs_policy_holder_busy_bytes(pol, getpid()), 0);
	unlock_pins(x->fs);
	/* Truncating to 8 blocks leaves [8, 12) and [20, 24) pinned: busy. */
	assert_int_equal(fx_truncate(x->fs, x->ip->ino, 8 * BS, NULL), 0);
	assert_int_equal(fx_busy_blocks(x->fs), 8);
	lock_pins(x->fs);
	assert_int_equal(daxfs_policy_busy_bytes(pol), 8 * BS);
	assert_int_equal(daxfs_policy_holder_busy_bytes(pol, getpid()), 8 * BS);
	assert_int_equal(daxfs_policy_holder_busy_bytes(pol, 1), 0);
	unlock_pins(x->fs);
	/* B's owner lets go: [8, 12) is no one's any more, reclaimed; C still holds [20, 24). */
	policy_release_owner(x->fs, &x->o2);
	pin_owner_init(&x->o2);
	lock_pins(x->fs);
	assert_int_equal(daxfs_policy_holder_busy_bytes(pol, getpid()), 4 * BS);
	unlock_pins(x->fs);
}

static bool timer_cleared(void *arg)
{
	struct fs *fs = arg;

	lock_take(&fs->pol->pins.lock);
	bool done = fs->pol->cur->timer_ns == 0;
	lock_drop(&fs->pol->pins.lock);
	return done;
}

/* The timer: due, the worker clears it (busy has no on_timer); 0 cancels one pending. */
static void test_timer(void **state)
{
	struct afix *x = *state;
	struct daxfs_policy *pol = x->fs->pol->cur;

	lock_pins(x->fs);
	daxfs_policy_timer(pol, daxfs_now_ns() + 3600 * 1000000000ull);
	assert_true(pol->timer_ns != 0);
	daxfs_policy_timer(pol, 0);
	assert_int_equal(pol->timer_ns, 0);
	daxfs_policy_timer(pol, daxfs_now_ns() + 1000000);
	unlock_pins(x->fs);
	assert_true(unit_wait(timer_cleared, x->fs, 5000));
}

struct note_find {
	int found;
	char msg[2048];		/* the last one's */
	char msgs[4][2048];	/* the first four's */
};

static void find_note(struct note_find *nf, const char *buf, size_t len)
{
	nf->found = 0;
	for (const char *p = buf, *end = buf + len; p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));

		assert_non_null(nl);
		if (!json_object_line(p, (size_t)(nl - p)))
			fail_msg("not a JSON line: %.*s", (int)(nl - p), p);
		char ev[64];
		if (json_field(p, (size_t)(nl - p), "ev", ev, sizeof(ev)) && strcmp(ev, "\"policy_note\"") == 0) {
			char pol[64];

			assert_true(json_field(p, (size_t)(nl - p), "policy", pol, sizeof(pol)));
			assert_string_equal(pol, "\"busy\"");
			assert_true(json_field(p, (size_t)(nl - p), "msg", nf->msg, sizeof(nf->msg)));
			if (nf->found < 4)
				memcpy(nf->msgs[nf->found], nf->msg, sizeof(nf->msg));
			nf->found++;
		}
		p = nl + 1;
	}
}

/* policy_note records: the message escaped into a JSON string; nothing while tracing is off. */
static void test_trace_escapes(void **state)
{
	struct afix *x = *state;
	struct daxfs_policy *pol = x->fs->pol->cur;
	struct note_find nf;
	size_t len;

	lock_pins(x->fs);
	daxfs_policy_trace(pol, "a \"q\" b\\c\nd\te %d \x01", 5);
	unlock_pins(x->fs);
	trace_stop(&x->fs->trace);
	lock_pins(x->fs);
	daxfs_policy_trace(pol, "after the trace stopped");
	unlock_pins(x->fs);
	char *buf = unit_read_file(x->trace.path, &len);
	find_note(&nf, buf, len);
	assert_int_equal(nf.found, 1);
	assert_string_equal(nf.msg, "\"a \\\"q\\\" b\\\\c\\u000ad\\u0009e 5 \\u0001\"");
	free(buf);
}

/* A JSON string of escaped newlines, then whole "é": at least min bytes of it. */
static void expect_whole(const char *json, size_t min)
{
	size_t n = strlen(json), i = 1;

	assert_true(n >= min);
	assert_int_equal(json[0], '"');
	assert_int_equal(json[n - 1], '"');
	while (i + 6 < n && memcmp(json + i, "\\u000a", 6) == 0)
		i += 6;
	for (; i + 1 < n; i += 2)
		if (memcmp(json + i, "\xc3\xa9", 2))
			fail_msg("byte %zu of %s is %#x, not a whole \"\xc3\xa9\"", i, json, (unsigned char)json[i]);
}

/*
 * Long messages, escaped past what a record holds: each is still written, cut to fit at a whole
 * escape and a whole character, not dropped.  (The escaped text used to reach ~1100 bytes, and
 * trace_emit refuses records over 1 KiB whole: the note was lost.)
 */
static void test_trace_long_message(void **state)
{
	struct afix *x = *state;
	struct daxfs_policy *pol = x->fs->pol->cur;
	struct note_find nf;
	char nl[301], e[511];
	size_t len;

	memset(nl, '\n', 300);
	nl[300] = 0;
	for (int i = 0; i < 510; i += 2)
		memcpy(e + i, "\xc3\xa9", 2);	/* é */
	e[510] = 0;
	lock_pins(x->fs);
	/* Escaped to 1800 bytes: cut by the record. */
	daxfs_policy_trace(pol, "%s", nl);
	/* 1020 bytes: cut to 511 in the middle of an é. */
	daxfs_policy_trace(pol, "%s%s", e, e);
	/* 100 newlines, then 205 é: 1010 bytes escaped, cut by the record in the middle of an é. */
	daxfs_policy_trace(pol, "%.100s%.410s", nl, e);
	unlock_pins(x->fs);
	trace_stop(&x->fs->trace);
	char *buf = unit_read_file(x->trace.path, &len);
	find_note(&nf, buf, len);
	assert_int_equal(nf.found, 3);
	expect_whole(nf.msgs[0], 800);
	expect_whole(nf.msgs[1], 2 + 510);
	expect_whole(nf.msgs[2], 800);
	free(buf);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, afix_setup, afix_teardown)
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_u64),
		T(test_params_and_priv),
		T(test_free_view),
		T(test_pin_actions),
		T(test_busy_bytes),
		T(test_timer),
		T(test_trace_escapes),
		T(test_trace_long_message),
	};

	if (getenv("UNIT_FILTER"))
		cmocka_set_test_filter(getenv("UNIT_FILTER"));
	return cmocka_run_group_tests_name("policy_api", tests, NULL, NULL);
}
