/* SPDX-License-Identifier: MIT */
/*
 * fail: the truncate of pinned blocks fails with EBUSY and changes nothing, one of the answers
 * argued in the 2017 thread (and in the layout-lease RFC, for holders that cannot be revoked).
 */
#include "builtin.h"

#include <errno.h>

static int fail_before_free(struct daxfs_policy *pol, struct daxfs_free *f)
{
	(void)pol;
	return daxfs_free_pinned_bytes(f) ? -EBUSY : DAXFS_PROCEED;
}

const struct daxfs_policy_ops policy_fail_ops = {
	.abi = DAXFS_POLICY_ABI,
	.name = "fail",
	.summary = "the truncate fails with EBUSY while any of its blocks is pinned",
	.before_free = fail_before_free,
};
