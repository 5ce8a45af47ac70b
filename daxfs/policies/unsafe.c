/* SPDX-License-Identifier: MIT */
/*
 * unsafe: free pinned blocks anyway.  The allocator may hand them to another file while a device
 * still writes them: the silent corruption the 2017 thread set out to prevent.  The baseline.
 */
#include "builtin.h"

static int unsafe_before_free(struct daxfs_policy *pol, struct daxfs_free *f)
{
	(void)pol;
	(void)f;
	return DAXFS_PROCEED;
}

static int unsafe_pinned_freed(struct daxfs_policy *pol, struct daxfs_free *f, uint64_t media_off, uint64_t len)
{
	daxfs_policy_trace(pol, "freed %llu pinned bytes at media %llu of inode %llu", (unsigned long long)len,
			   (unsigned long long)media_off, (unsigned long long)daxfs_free_ino(f));
	return DAXFS_FREE_NOW;
}

const struct daxfs_policy_ops policy_unsafe_ops = {
	.abi = DAXFS_POLICY_ABI,
	.name = "unsafe",
	.summary = "pinned blocks are freed anyway: the corruption baseline",
	.before_free = unsafe_before_free,
	.pinned_freed = unsafe_pinned_freed,
};
