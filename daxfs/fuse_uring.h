/* SPDX-License-Identifier: MIT */
/*
 * FUSE over io_uring: how requests reach the daemon when the kernel offers it (Linux 6.14+,
 * fs/fuse/dev_uring.c, switched on by /sys/module/fuse/parameters/enable_uring).
 *
 * Over /dev/fuse a request made on one CPU is read by whichever loop thread the scheduler wakes,
 * often on the other CPU, and on these VMs that wake-up is most of a pin's or a stat's cost.  Over
 * io_uring the kernel keeps one queue per CPU and hands each request to the queue of the CPU its
 * caller runs on, by completing an io_uring command of the daemon thread pinned to that CPU; the
 * reply goes back, and the next request comes, with one more command (COMMIT_AND_FETCH).  Nothing
 * leaves the caller's CPU and nothing reads or writes /dev/fuse.
 *
 * libfuse 3.14 has no API for it, so this module speaks the ring protocol itself and hands each
 * request to libfuse as if it had been read from /dev/fuse (fuse_session_process_buf): the same
 * low-level ops (fuse_ops.c) serve both transports.  Their replies come back through the custom-I/O
 * writev hook (fuse_io.c), which offers each to fuse_uring_reply first: a reply to a ring request is
 * written into that request's ring entry and committed, whichever thread sends it (the policy
 * worker finishing a parked truncate or pin does, long after the request's handler returned).
 *
 * What stays on /dev/fuse: INIT, requests made before the queues are up, and what the kernel never
 * sends over io_uring (FORGET, INTERRUPT); libfuse's own loop keeps serving those.
 *
 * Threads: each queue has an owner thread, pinned to its CPU, that waits for requests and runs
 * them.  A handler that blocks (an allocation waiting for reclaim, a release waiting for the
 * policy) would stop every request of that CPU behind it, the unpin it may be waiting for among
 * them; a watchdog notices a handler that has run for a tick and gives the queue to another thread
 * of the same CPU, as the Go runtime hands a processor on when a system call blocks.  The blocked
 * thread becomes a spare when its handler returns.
 *
 * Not the default yet (main.c): a queue whose held requests are all directory operations (an
 * unlink or rename waiting for a pin) has no file to kick with, and a request the kernel queued
 * behind them waits until some other request of that CPU is answered (kick_failures counts it);
 * and no test of its own covers the watchdog handing a queue on from a blocked handler.
 *
 * Locks: each queue's lock is a leaf (replies are sent with inode locks held, and nothing is called
 * with a queue lock held but io_uring itself).
 */
#ifndef DAXFS_FUSE_URING_H
#define DAXFS_FUSE_URING_H

#include <linux/fuse.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "daemon.h"
#include "daxfs/ioctl.h"

enum transport {
	TRANSPORT_AUTO = DAXFS_TRANSPORT_AUTO,	/* io_uring when the kernel offers it, else /dev/fuse */
	TRANSPORT_DEV = DAXFS_TRANSPORT_DEV,
	TRANSPORT_URING = DAXFS_TRANSPORT_URING,
};

/*
 * Can FUSE over io_uring be used here?  0, or -1 with the reason in why (the kernel lacks it, the
 * module parameter is off, io_uring cannot be set up).  Looks, changes nothing.
 */
int fuse_uring_probe(char *why, size_t len);

/*
 * Set up d->uring for session se (no thread starts until INIT): mode is what -o transport= asked
 * for; reason, when not NULL, why it is /dev/fuse regardless (the probe failed).  0 or -ENOMEM.
 */
int fuse_uring_setup(struct daemon *d, struct fuse_session *se, enum transport mode, const char *reason);

/* The kernel's INIT request (fuse_io.c's read hook): does it offer FUSE_OVER_IO_URING? */
void fuse_uring_init_request(struct daemon *d, const struct fuse_init_in *in);
/* Our INIT reply, before it is written: ask for io_uring if we go that way.  True if out changed. */
bool fuse_uring_init_reply(struct daemon *d, struct fuse_init_out *out);
/*
 * The INIT reply has been written (the connection is initialised): register the queues and start
 * their threads, or fall back to /dev/fuse with one log line (auto), or end the session (uring).
 * Returns when the queues are registered or have failed.
 */
void fuse_uring_init_done(struct daemon *d);

/*
 * A reply libfuse is sending (iov[0] is its fuse_out_header): if it answers a ring request, commit
 * it there and return true with *ret what writev would have returned; false: not ours, send it to
 * /dev/fuse.  Any thread; takes the queue's lock.
 */
bool fuse_uring_reply(struct daemon *d, const struct iovec *iov, int count, ssize_t *ret);

/* One request was read from /dev/fuse (statistics). */
void fuse_uring_count_dev(struct daemon *d);

/* The transport in use and the queues' counters (DAXFS_IOC_TRANSPORT). */
void fuse_uring_stats(struct daemon *d, struct daxfs_ioc_transport *out);

/* True when -o transport=uring could not be honoured and the session was ended for it. */
bool fuse_uring_failed(struct daemon *d);

/*
 * Stop the queues' threads (after the session loop and the policy's waiters have finished: a
 * handler still running is waited for) and free everything.  Safe when nothing was set up.
 */
void fuse_uring_free(struct daemon *d);

#endif
