/* SPDX-License-Identifier: MIT */
/*
 * policy-quota: an out-of-tree daxfs policy, in one file.
 *
 * Pinned blocks that leave a file become busy extents (as the built-in `busy` policy does), but each
 * pinning process may keep at most `per_holder` bytes busy.  A free that would take a holder past
 * its quota waits (the request is parked: no thread is held) until that holder unpins enough, for
 * at most `wait_ms`; then it fails with EBUSY and the file is unchanged.  Every `report_ms` it
 * writes the busy bytes of the file system to the event trace.
 *
 * Build against an installed daxfs:
 *	cc -shared -fPIC $(pkg-config --cflags daxfs-policy) quota.c -o quota.so
 * and load it:
 *	daxfs -o policy=/abs/path/quota.so,per_holder=8M IMAGE MOUNTPOINT
 *	daxfsctl policy MOUNTPOINT /abs/path/quota.so per_holder=8M
 */
#include <daxfs/policy.h>
#include <errno.h>
#include <stdlib.h>

static const struct daxfs_policy_param quota_params[] = {
	{ "per_holder", "8M", "busy bytes one pinning process may hold" },
	{ "wait_ms", "1000", "how long a free waits for the holder to unpin before EBUSY" },
	{ "report_ms", "1000", "how often the busy bytes go to the event trace (0: never)" },
	{ NULL, NULL, NULL },
};

struct quota {
	uint64_t per_holder;
	uint64_t wait_ns;
	uint64_t report_ns;
};

static int quota_init(struct daxfs_policy *pol)
{
	struct quota *q = calloc(1, sizeof(*q));

	if (!q)
		return -ENOMEM;
	q->per_holder = daxfs_policy_param_u64(pol, "per_holder", 8 << 20);
	q->wait_ns = daxfs_policy_param_u64(pol, "wait_ms", 1000) * 1000000ull;
	q->report_ns = daxfs_policy_param_u64(pol, "report_ms", 1000) * 1000000ull;
	if (q->per_holder == 0) {
		free(q);
		return -EINVAL;	/* a zero quota is the fail policy: say so instead */
	}
	daxfs_policy_set_priv(pol, q);
	if (q->report_ns)
		daxfs_policy_timer(pol, daxfs_now_ns() + q->report_ns);
	return 0;
}

static void quota_fini(struct daxfs_policy *pol)
{
	free(daxfs_policy_priv(pol));
}

struct over_ctx {
	struct daxfs_policy *pol;
	uint64_t adding;
	int32_t holder;		/* the first holder over its quota, or 0 */
};

static int check_holder(void *arg, const struct daxfs_pin_view *p)
{
	struct over_ctx *c = arg;
	const struct quota *q = daxfs_policy_priv(c->pol);

	if (daxfs_pin_state(p) != DAXFS_PIN_REVOKED &&
	    daxfs_policy_holder_busy_bytes(c->pol, daxfs_pin_pid(p)) + c->adding > q->per_holder)
		c->holder = daxfs_pin_pid(p);
	return c->holder != 0;	/* stop at the first */
}

static int quota_before_free(struct daxfs_policy *pol, struct daxfs_free *f)
{
	const struct quota *q = daxfs_policy_priv(pol);
	struct over_ctx c = { pol, daxfs_free_pinned_bytes(f), 0 };
	uint64_t until = daxfs_free_started_ns(f) + q->wait_ns;

	daxfs_free_for_each_pin(f, check_holder, &c);
	if (!c.holder)
		return DAXFS_PROCEED;	/* within every holder's quota: the pinned blocks go busy */
	if (daxfs_now_ns() >= until)
		return -EBUSY;
	if (daxfs_free_attempt(f) == 1)
		daxfs_policy_trace(pol, "inode %llu: holder %d over its %llu-byte quota: waiting",
				   (unsigned long long)daxfs_free_ino(f), c.holder, (unsigned long long)q->per_holder);
	daxfs_free_wait(f, until, DAXFS_BREAK_RANGE);
	return DAXFS_WAIT;
}

static void quota_on_unpin(struct daxfs_policy *pol, const struct daxfs_pin_view *p)
{
	daxfs_policy_trace(pol, "pin %llu of holder %d gone; it holds %llu busy bytes", (unsigned long long)daxfs_pin_id(p),
			   daxfs_pin_pid(p), (unsigned long long)daxfs_policy_holder_busy_bytes(pol, daxfs_pin_pid(p)));
}

static void quota_on_timer(struct daxfs_policy *pol, uint64_t now_ns)
{
	const struct quota *q = daxfs_policy_priv(pol);

	daxfs_policy_trace(pol, "busy bytes %llu", (unsigned long long)daxfs_policy_busy_bytes(pol));
	daxfs_policy_timer(pol, now_ns + q->report_ns);
}

/* The one symbol the daemon looks for. */
const struct daxfs_policy_ops daxfs_policy = {
	.abi = DAXFS_POLICY_ABI,
	.flags = DAXFS_POLICY_F_STALLS,
	.name = "quota",
	.summary = "busy extents within a per-holder quota; past it, the free waits for that holder",
	.params = quota_params,
	.init = quota_init,
	.fini = quota_fini,
	.before_free = quota_before_free,
	.on_unpin = quota_on_unpin,
	.on_timer = quota_on_timer,
};
