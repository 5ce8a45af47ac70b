/* SPDX-License-Identifier: MIT */
/*
 * A policy object that breaks one rule of <daxfs/policy.h>: its name has a '_' where only
 * [a-z0-9-] is allowed.  The daemon must refuse to load it, and say why (test_policies).
 */
#include <daxfs/policy.h>

static int proceed(struct daxfs_policy *pol, struct daxfs_free *f)
{
	(void)pol;
	(void)f;
	return DAXFS_PROCEED;
}

const struct daxfs_policy_ops daxfs_policy = {
	.abi = DAXFS_POLICY_ABI,
	.name = "bad_name",
	.summary = "a policy whose name breaks the rule",
	.before_free = proceed,
};
