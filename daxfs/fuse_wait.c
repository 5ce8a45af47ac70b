/* SPDX-License-Identifier: MIT */
#include "fuse_wait.h"

#include "holder.h"

static void on_interrupt(fuse_req_t req, void *data)
{
	struct fuse_waiter *w = data;

	(void)req;
	policy_interrupt(w->fs, &w->op);
}

static void resume(void *arg)
{
	struct fuse_waiter *w = arg;

	w->run(w);
}

void fuse_wait_init(struct fuse_waiter *w, fuse_req_t req, uint32_t kind, void (*run)(struct fuse_waiter *w))
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct daemon *d = fuse_req_userdata(req);

	policy_op_init(&w->op, kind, ctx->pid);
	w->req = req;
	w->fs = d->fs;
	w->interruptible = false;
	w->run = run;
}

void fuse_wait_park(struct fuse_waiter *w)
{
	/*
	 * Registered on first parking, not before: most requests never wait.  libfuse calls on_interrupt
	 * at once if the interrupt came already, which policy_park then sees.
	 */
	if (!w->interruptible) {
		struct holder_id h;

		w->interruptible = true;
		/* Listed waits name processes, not threads (FUSE gives the thread): the chain of a deadlock joins up. */
		if (holder_identify(w->op.pid, &h) == 0)
			w->op.pid = h.pid;
		fuse_req_interrupt_func(w->req, on_interrupt, w);
	}
	policy_park(w->fs, &w->op, resume, w);
}

void fuse_wait_done(struct fuse_waiter *w)
{
	/* Unregister first: libfuse holds the request's lock while a callback runs, so none is left after. */
	if (w->interruptible)
		fuse_req_interrupt_func(w->req, NULL, NULL);
	policy_op_finish(w->fs, &w->op);
}
