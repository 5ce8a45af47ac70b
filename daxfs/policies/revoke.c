/* SPDX-License-Identifier: MIT */
/*
 * revoke: break the holders' lease, as the layout-lease RFC proposed.  Every pin on the blocks
 * becomes REVOKING and its holder gets a LEASE_BREAK event with the deadline (grace_ms away); the
 * truncate waits until the pins are gone or the deadline revokes them, then proceeds.  New pins on
 * the range wait meanwhile.  wait_timeout_ms makes the truncate give up earlier with EBUSY, but a
 * broken lease stays broken: the pins are revoked at their deadline all the same.
 *
 * Revoked pins that declared DAXFS_PIN_REVOCABLE let go of their blocks at once: their devices stop
 * when told.  Others keep them out of reuse (as busy extents, after the truncate) until their file is
 * released, since nothing stops a device that ignores the revocation.
 */
#include "builtin.h"

#include <errno.h>

struct revoke_note {
	uint64_t deadline_ns;
};

static int break_lease(void *arg, const struct daxfs_pin_view *p)
{
	struct daxfs_policy *pol = ((void **)arg)[0];
	const uint64_t *deadline = ((void **)arg)[1];

	if (daxfs_pin_state(p) != DAXFS_PIN_REVOKED)
		daxfs_pin_break_lease(pol, p, *deadline);
	return 0;
}

static int revoke_before_free(struct daxfs_policy *pol, struct daxfs_free *f)
{
	struct revoke_note *note = daxfs_free_scratch(f);
	uint64_t timeout_ms = daxfs_policy_param_u64(pol, "wait_timeout_ms", 0);
	uint64_t now = daxfs_now_ns(), until;

	if (daxfs_free_live_pins(f) == 0)
		return DAXFS_PROCEED;
	if (!note->deadline_ns)
		note->deadline_ns = now + daxfs_policy_param_u64(pol, "grace_ms", 1000) * 1000000ull;
	void *arg[2] = { pol, &note->deadline_ns };
	daxfs_free_for_each_pin(f, break_lease, arg);
	until = note->deadline_ns;
	if (timeout_ms) {
		uint64_t give_up = daxfs_free_started_ns(f) + timeout_ms * 1000000ull;

		if (now >= give_up)
			return -EBUSY;
		if (give_up < until)
			until = give_up;
	}
	daxfs_free_wait(f, until, DAXFS_BREAK_RANGE);
	return DAXFS_WAIT;
}

const struct daxfs_policy_ops policy_revoke_ops = {
	.abi = DAXFS_POLICY_ABI,
	.flags = DAXFS_POLICY_F_STALLS,
	.name = "revoke",
	.summary = "break the lease; pins still there after grace_ms are revoked, then the blocks go",
	.before_free = revoke_before_free,
};
