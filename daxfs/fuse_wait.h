/* SPDX-License-Identifier: MIT */
/*
 * Requests that wait for the policy, on the FUSE side.  A truncate, punch, O_TRUNC open or pin that
 * the policy makes wait is parked (policy_park) instead of blocking a request-loop thread; the
 * policy worker runs it again when something it waits for changes, and the reply comes from there.
 * A FUSE interrupt (the caller got a signal) makes it fail with EINTR, the file unchanged.
 */
#ifndef DAXFS_FUSE_WAIT_H
#define DAXFS_FUSE_WAIT_H

#include <stdbool.h>

#include "daemon.h"
#include "policy.h"

struct fuse_waiter {
	struct policy_op op;
	fuse_req_t req;
	struct fs *fs;
	bool interruptible;		/* the interrupt callback is registered */
	void (*run)(struct fuse_waiter *w);	/* runs (again) the operation, replies or parks */
};

/* Set up w for a request of kind DAXFS_WAIT_*; run does the operation (called again on resume). */
void fuse_wait_init(struct fuse_waiter *w, fuse_req_t req, uint32_t kind, void (*run)(struct fuse_waiter *w));
/* The operation returned -POLICY_EPARK: park the request.  Its thread returns at once. */
void fuse_wait_park(struct fuse_waiter *w);
/* The operation is over: call before replying (after this, w may be freed). */
void fuse_wait_done(struct fuse_waiter *w);

#endif
