/* SPDX-License-Identifier: MIT */
/*
 * Holders: the processes that take pins.  A pid alone is not an identity (it is reused), so a holder
 * is its thread-group id and the time it started (in clock ticks since boot, from /proc): the pair
 * names one process for the life of the machine.  Signals go through a pidfd checked against it, so
 * an event never reaches a stranger that inherited the pid.
 *
 * No locks: the functions read /proc and make system calls; callers keep them off hot paths.
 */
#ifndef DAXFS_HOLDER_H
#define DAXFS_HOLDER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct holder_id {
	int32_t pid;		/* thread-group id; 0 = unknown */
	uint64_t start;		/* start time, clock ticks since boot */
};

/* The process of thread tid (a FUSE request's pid).  0, or -ESRCH when it is gone. */
int holder_identify(pid_t tid, struct holder_id *out);
/* Is that very process still running?  (A zombie is not.) */
bool holder_alive(const struct holder_id *h);
/*
 * A pidfd on the process, or -errno: -ESRCH once it has been reaped (the pid is gone) or its pid
 * was reused.  It becomes readable (POLLIN) when the process exits, so an exited process not yet
 * reaped (a zombie, which holder_alive calls dead) gets a pidfd readable at once, as does one that
 * exits just after the call: watchers poll it rather than trust this call to say the process lives.
 * The caller closes it.
 */
int holder_pidfd(const struct holder_id *h);
/* Queue signal signo with value to the process (sigqueue through a checked pidfd).  0 or -errno. */
int holder_signal(const struct holder_id *h, int signo, uint64_t value);
/* May a pin ask for signal signo?  Only notification signals: SIGUSR1/2, SIGIO, SIGURG, real-time ones. */
bool holder_signal_allowed(int signo);
/* Does thread tid have CAP_LEASE in its effective set (what a file lease on another's file needs)? */
bool holder_has_cap_lease(pid_t tid);

#endif
