/* SPDX-License-Identifier: MIT */
/*
 * odp: what RDMA on-demand paging does with MMU notifiers.  A device that registered with
 * DAXFS_PIN_ODP takes invalidations: before the blocks go, each such holder gets an INVALIDATE event
 * for the range; its device stops using it and acknowledges (DAXFS_IOC_EVENT_ACK), and the pin lets
 * go of those blocks.  The free then completes at once with no busy space.  A device that touches
 * the range again faults and re-resolves it through the file (DAXFS_IOC_PIN_FAULT): it gets the new
 * blocks, or ENXIO past EOF.  A holder that does not acknowledge within ack_ms is revoked.
 *
 * Long-term pins that cannot take invalidations are refused, as the kernel refuses FOLL_LONGTERM on
 * fsdax unless the registration is ODP.  Short-term ones cannot take them either: the free waits for
 * them as `wait` does (until they are unpinned; wait_timeout_ms bounds it with EBUSY).
 */
#include "builtin.h"

#include <errno.h>

static const struct daxfs_policy_param odp_params[] = {
	{ "ack_ms", "1000", "how long a holder has to acknowledge an invalidation before it is revoked" },
	{ NULL, NULL, NULL },
};

static int odp_admit(struct daxfs_policy *pol, const struct daxfs_pin_request *req)
{
	(void)pol;
	if ((req->flags & DAXFS_PIN_LONGTERM) && !(req->flags & DAXFS_PIN_ODP))
		return -EOPNOTSUPP;
	return 0;
}

struct odp_walk {
	struct daxfs_policy *pol;
	struct daxfs_free *f;
	uint64_t deadline_ns;
	uint32_t odp;		/* live ODP pins: asked to let go, revoked at deadline_ns */
	uint32_t plain;		/* live pins that cannot take invalidations */
};

static int invalidate(void *arg, const struct daxfs_pin_view *p)
{
	struct odp_walk *w = arg;

	if (daxfs_pin_state(p) == DAXFS_PIN_REVOKED)
		return 0;
	if (daxfs_pin_flags(p) & DAXFS_PIN_ODP) {
		daxfs_pin_invalidate(w->pol, w->f, p, w->deadline_ns);
		w->odp++;
	} else {
		w->plain++;
	}
	return 0;
}

static int odp_before_free(struct daxfs_policy *pol, struct daxfs_free *f)
{
	struct odp_walk w = { pol, f, daxfs_free_started_ns(f) + daxfs_policy_param_u64(pol, "ack_ms", 1000) * 1000000ull,
			      0, 0 };
	uint64_t timeout_ms = daxfs_policy_param_u64(pol, "wait_timeout_ms", 0), until = 0;

	/* Once per pin and free: asking again on a later attempt does nothing. */
	daxfs_free_for_each_pin(f, invalidate, &w);
	if (!w.odp && !w.plain)
		return DAXFS_PROCEED;
	/*
	 * An acknowledgement or a revocation at the deadline wakes the free; so does an unpin.  Only
	 * the plain pins' wait may have an end of its own: a time already passed here would have the
	 * free decided again and again until they go.
	 */
	if (w.plain && timeout_ms) {
		until = daxfs_free_started_ns(f) + timeout_ms * 1000000ull;
		if (daxfs_now_ns() >= until)
			return -EBUSY;
	}
	daxfs_free_wait(f, until, DAXFS_BREAK_RANGE);
	return DAXFS_WAIT;
}

const struct daxfs_policy_ops policy_odp_ops = {
	.abi = DAXFS_POLICY_ABI,
	.flags = DAXFS_POLICY_F_STALLS,
	.name = "odp",
	.summary = "invalidate the range in ODP holders, free at once once they acknowledge (RDMA ODP)",
	.params = odp_params,
	.admit = odp_admit,
	.before_free = odp_before_free,
};
