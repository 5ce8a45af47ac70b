/* SPDX-License-Identifier: MIT */
/*
 * A loadable policy for test_policy: it records what every hook sees through the policy API and
 * answers what the test tells it (struct probe, exported as probe_state: the test reaches it with
 * dlopen(RTLD_NOLOAD) + dlsym on the same object).  Built only against include/daxfs/policy.h, as an
 * out-of-tree policy is.  Built three more times with -DPROBE_BROKEN=N as objects the loader must
 * refuse: 1 exports its table under another name, 2 has another ABI, 3 has a malformed name.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "daxfs/policy.h"
#include "probe_policy.h"

#ifndef PROBE_BROKEN
#define PROBE_BROKEN 0
#endif

extern struct probe probe_state;
struct probe probe_state;

#define P (&probe_state)
#define ADD(field) __atomic_add_fetch(&P->field, 1, __ATOMIC_SEQ_CST)

struct probe_revoke {
	struct daxfs_policy *pol;
	int ret;
};

static int probe_revoke_pin(void *arg, const struct daxfs_pin_view *p)
{
	struct probe_revoke *r = arg;

	r->ret = daxfs_pin_revoke(r->pol, p);
	return 1;	/* the first one only */
}

static int probe_init(struct daxfs_policy *pol)
{
	const char *color = daxfs_policy_param(pol, "color");

	ADD(inits);
	snprintf(P->color, sizeof(P->color), "%s", color ? color : "(null)");
	snprintf(P->grace, sizeof(P->grace), "%s", daxfs_policy_param(pol, "grace_ms"));
	P->size = daxfs_policy_param_u64(pol, "size", 1);
	P->unknown_param = daxfs_policy_param(pol, "no-such-param") != NULL;
	if (daxfs_policy_param_u64(pol, "fail_init", 0))
		return -ENOTRECOVERABLE;
	daxfs_policy_set_priv(pol, P);
	P->priv_ok = daxfs_policy_priv(pol) == P;
	uint64_t timer_ms = daxfs_policy_param_u64(pol, "timer_ms", 0);
	if (timer_ms)
		daxfs_policy_timer(pol, daxfs_now_ns() + timer_ms * 1000000ull);
	P->builtin_wait = daxfs_policy_builtin("wait") != NULL && daxfs_policy_builtin("no-such") == NULL;
	return 0;
}

static void probe_fini(struct daxfs_policy *pol)
{
	(void)pol;
	ADD(finis);
}

static int probe_admit(struct daxfs_policy *pol, const struct daxfs_pin_request *req)
{
	(void)pol;
	ADD(admits);
	P->req = *req;
	return P->admit_answer;
}

static int see_pin(void *arg, const struct daxfs_pin_view *p)
{
	struct probe *pr = arg;

	if (pr->npins < PROBE_PINS)
		pr->pins[pr->npins++] = (struct probe_pin){
			.id = daxfs_pin_id(p), .ino = daxfs_pin_ino(p), .flags = daxfs_pin_flags(p),
			.state = daxfs_pin_state(p), .pid = daxfs_pin_pid(p), .uid = daxfs_pin_uid(p),
			.bytes = daxfs_pin_bytes(p),
		};
	return 0;
}

static int probe_before_free(struct daxfs_policy *pol, struct daxfs_free *f)
{
	uint32_t *count = daxfs_free_scratch(f);

	ADD(before_frees);
	(*count)++;
	P->scratch_count = *count;
	P->cause = daxfs_free_cause(f);
	P->ino = daxfs_free_ino(f);
	P->nranges = daxfs_free_nranges(f);
	if (P->nranges)
		daxfs_free_range(f, 0, &P->range_file_off, &P->range_media_off, &P->range_len);
	P->pinned_bytes = daxfs_free_pinned_bytes(f);
	P->live_pins = daxfs_free_live_pins(f);
	P->attempt = daxfs_free_attempt(f);
	P->started_ns = daxfs_free_started_ns(f);
	P->busy_bytes = daxfs_policy_busy_bytes(pol);
	P->holder_busy_bytes = daxfs_policy_holder_busy_bytes(pol, P->holder_pid);
	P->npins = 0;
	daxfs_free_for_each_pin(f, see_pin, P);
	daxfs_policy_trace(pol, "attempt %u: a \"quoted\" word, a back\\slash,\na newline and a\ttab", P->attempt);
	if (P->revoke_first && P->npins && P->pins[0].state != 3 /* DAXFS_PIN_REVOKED */) {
		struct probe_revoke r = { pol, 0 };

		daxfs_free_for_each_pin(f, probe_revoke_pin, &r);
		P->revoke_ret = r.ret;
	}
	if (P->answer == DAXFS_WAIT && P->attempt >= P->wait_attempts)
		return DAXFS_PROCEED;
	if (P->answer == DAXFS_WAIT)
		daxfs_free_wait(f, P->wait_ns ? daxfs_now_ns() + P->wait_ns : 0, (enum daxfs_break_scope)P->scope);
	return P->answer;
}

static int probe_pinned_freed(struct daxfs_policy *pol, struct daxfs_free *f, uint64_t media_off, uint64_t len)
{
	(void)pol;
	(void)f;
	ADD(pinned_freeds);
	P->freed_media_off = media_off;
	P->freed_len += len;
	return P->pinned_answer;
}

static void probe_on_unpin(struct daxfs_policy *pol, const struct daxfs_pin_view *p)
{
	(void)pol;
	ADD(unpins);
	P->unpinned_id = daxfs_pin_id(p);
}

static void probe_on_timer(struct daxfs_policy *pol, uint64_t now_ns)
{
	(void)pol;
	P->timer_now = now_ns;
	ADD(timers);
}

static const struct daxfs_policy_param probe_params[] = {
	{ "color", "red", "any text" },
	{ "size", "4K", "a number with a suffix" },
	{ "timer_ms", "0", "ask for on_timer this many ms after init (0: never)" },
	{ "fail_init", "0", "1: init refuses the parameters" },
	{ NULL, NULL, NULL },
};

#if PROBE_BROKEN == 1
#define daxfs_policy probe_ops	/* exported under another name than DAXFS_POLICY_SYMBOL */
#endif
const struct daxfs_policy_ops daxfs_policy = {
#if PROBE_BROKEN == 2
	.abi = DAXFS_POLICY_ABI + 1,
#else
	.abi = DAXFS_POLICY_ABI,
#endif
	.flags = 0,
#if PROBE_BROKEN == 3
	.name = "Probe Policy",
#else
	.name = "probe",
#endif
	.summary = "records what its hooks see (unit tests)",
	.params = probe_params,
	.init = probe_init,
	.fini = probe_fini,
	.admit = probe_admit,
	.before_free = probe_before_free,
	.pinned_freed = probe_pinned_freed,
	.on_unpin = probe_on_unpin,
	.on_timer = probe_on_timer,
};
