/* SPDX-License-Identifier: MIT */
/*
 * wait: what Linux does (dax_break_layout): the truncate waits until nothing pins the blocks.
 * While it waits the whole file is off limits to new pins, as the kernel holds the file's
 * invalidate_lock across the wait: a holder that needs another pin on that file before it can
 * unpin deadlocks with the truncate (the get_user_pages vs hole punch deadlock of the thread).
 * wait_timeout_ms bounds the wait (EBUSY after it; 0 waits for ever).
 */
#include "builtin.h"

#include <errno.h>

static int wait_before_free(struct daxfs_policy *pol, struct daxfs_free *f)
{
	uint64_t timeout_ms = daxfs_policy_param_u64(pol, "wait_timeout_ms", 0);
	uint64_t until = 0;

	if (daxfs_free_pinned_bytes(f) == 0)
		return DAXFS_PROCEED;
	if (timeout_ms) {
		until = daxfs_free_started_ns(f) + timeout_ms * 1000000ull;
		if (daxfs_now_ns() >= until)
			return -EBUSY;
	}
	daxfs_free_wait(f, until, DAXFS_BREAK_FILE);
	return DAXFS_WAIT;
}

const struct daxfs_policy_ops policy_wait_ops = {
	.abi = DAXFS_POLICY_ABI,
	.flags = DAXFS_POLICY_F_STALLS,
	.name = "wait",
	.summary = "the truncate waits until the blocks are unpinned (Linux's dax_break_layout)",
	.before_free = wait_before_free,
};
