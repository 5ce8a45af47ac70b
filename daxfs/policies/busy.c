/* SPDX-License-Identifier: MIT */
/*
 * busy: what Jan Kara and Dave Chinner proposed in the 2017 thread, after XFS's busy extents.  The
 * free never waits: pinned blocks leave the file at once but stay out of reuse, as busy extents,
 * until their last pin drops; then the reclaim worker scrubs them and gives them back.  Nobody
 * waits and nothing is corrupted; the price is space held for as long as the pins live.
 */
#include "builtin.h"

static int busy_before_free(struct daxfs_policy *pol, struct daxfs_free *f)
{
	(void)pol;
	(void)f;
	return DAXFS_PROCEED;	/* pinned_freed's default keeps the pinned blocks busy */
}

const struct daxfs_policy_ops policy_busy_ops = {
	.abi = DAXFS_POLICY_ABI,
	.name = "busy",
	.summary = "pinned blocks leave the file at once as busy extents, reclaimed after the last unpin",
	.before_free = busy_before_free,
};
