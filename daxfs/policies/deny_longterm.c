/* SPDX-License-Identifier: MIT */
/*
 * deny-longterm: what Linux merged for fsdax: long-term pins (FOLL_LONGTERM, RDMA registrations)
 * are refused with EOPNOTSUPP, and a truncate waits for the short-term ones as `wait` does.
 */
#include "builtin.h"

#include <errno.h>

static int deny_admit(struct daxfs_policy *pol, const struct daxfs_pin_request *req)
{
	(void)pol;
	return (req->flags & DAXFS_PIN_LONGTERM) ? -EOPNOTSUPP : 0;
}

static int deny_before_free(struct daxfs_policy *pol, struct daxfs_free *f)
{
	return policy_wait_ops.before_free(pol, f);
}

const struct daxfs_policy_ops policy_deny_longterm_ops = {
	.abi = DAXFS_POLICY_ABI,
	.flags = DAXFS_POLICY_F_STALLS,
	.name = "deny-longterm",
	.summary = "long-term pins are refused (Linux fsdax); truncates wait for short-term ones",
	.admit = deny_admit,
	.before_free = deny_before_free,
};
