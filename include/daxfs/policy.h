/* SPDX-License-Identifier: MIT */
/*
 * Writing a daxfs policy: what the file system does when blocks a device has pinned leave their
 * file (truncate, punch hole, O_TRUNC, the last close of an unlinked file).
 *
 * A policy is one `const struct daxfs_policy_ops` table.  Built-in policies live in
 * daxfs/policies/; a loadable one is a shared object exporting the table under the name
 * DAXFS_POLICY_SYMBOL, built against this header (pkg-config --cflags daxfs-policy) and loaded with
 * `-o policy=/path/to/policy.so` or `daxfsctl policy PATH /path/to/policy.so`.
 *
 * How a free goes:
 *   1. before_free(f) looks at the ranges leaving the file and the pins holding them, and answers
 *      DAXFS_PROCEED, DAXFS_WAIT or a negative errno (the operation fails, the file unchanged).  It
 *      may act on the pins first: break their lease, revoke them, send invalidations.
 *   2. DAXFS_WAIT parks the request (no thread waits, the inode is not locked: the holder keeps
 *      using the file) until a pin on the ranges changes, the time given to daxfs_free_wait passes,
 *      the policy changes or the caller is interrupted (then it fails with EINTR).  before_free is
 *      then called again with the same f: its scratch area keeps what the policy noted.
 *   3. DAXFS_PROCEED: the blocks are detached in one transaction.  Unpinned ones are free at once;
 *      for pinned ones pinned_freed() says DAXFS_KEEP_BUSY (a busy extent, reclaimed when the last
 *      pin drops) or DAXFS_FREE_NOW (back to the allocator while a device may still write them: the
 *      corruption the 2017 thread was about).
 * Frees that cannot wait (the last close of an unlinked file, rename over a file) skip before_free.
 *
 * Rules for hooks: they run with the pin table locked and must not block or call back into the file
 * system; they may use every function below.  Times are CLOCK_MONOTONIC nanoseconds (daxfs_now_ns).
 * Pins are seen through `struct daxfs_pin_view`, valid only during the hook.
 */
#ifndef DAXFS_POLICY_H_PUBLIC
#define DAXFS_POLICY_H_PUBLIC

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daxfs/ioctl.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DAXFS_POLICY_ABI	1	/* bumped on any incompatible change of this header */
#define DAXFS_POLICY_SYMBOL	"daxfs_policy"

struct daxfs_policy;		/* a policy instance: the ops, its parameters, its private state */
struct daxfs_free;		/* one decision: blocks about to leave a file */
struct daxfs_pin_view;		/* a pin, as a hook sees it */

/* before_free answers (or a negative errno) */
#define DAXFS_PROCEED		0
#define DAXFS_WAIT		1

/* pinned_freed answers */
#define DAXFS_KEEP_BUSY		0
#define DAXFS_FREE_NOW		1

/* What frees the blocks. */
enum daxfs_free_cause {
	DAXFS_CAUSE_TRUNCATE = 1,	/* truncate(2), ftruncate(2) */
	DAXFS_CAUSE_PUNCH = 2,		/* fallocate(PUNCH_HOLE) */
	DAXFS_CAUSE_OTRUNC = 3,		/* open(O_TRUNC) */
	DAXFS_CAUSE_UNLINK = 4,		/* last close of an unlinked file, rename over: cannot wait */
};

/* What a DAXFS_WAIT blocks while it waits: new pins on the ranges being freed, or on the whole file. */
enum daxfs_break_scope {
	DAXFS_BREAK_RANGE = 0,		/* an mmu-notifier invalidation: other ranges pin freely */
	DAXFS_BREAK_FILE = 1,		/* the kernel's invalidate_lock held across dax_break_layout */
};

/* A pin about to be taken, for admit(). */
struct daxfs_pin_request {
	uint64_t ino;
	uint64_t offset;		/* bytes, block aligned */
	uint64_t length;
	uint32_t flags;			/* DAXFS_PIN_* */
	uint32_t uid;			/* who pins */
	int32_t pid;
	uint32_t file_uid;		/* who owns the file */
	bool privileged;		/* root, the file's owner, or CAP_LEASE */
};

/* A parameter a policy takes: -o policy=NAME,key=value or daxfsctl policy PATH NAME key=value. */
struct daxfs_policy_param {
	const char *name;
	const char *def;		/* default value, as text */
	const char *help;
};

struct daxfs_policy_ops {
	uint32_t abi;			/* DAXFS_POLICY_ABI */
	uint32_t flags;			/* DAXFS_POLICY_F_STALLS when before_free may wait for pins */
	const char *name;		/* lower case, [a-z0-9-] */
	const char *summary;		/* one line */
	const struct daxfs_policy_param *params;	/* its own parameters, ending with {NULL}; may be NULL */

	/* Optional.  Check parameters, set up private state.  0 or -errno (the policy is refused). */
	int (*init)(struct daxfs_policy *pol);
	void (*fini)(struct daxfs_policy *pol);
	/* Optional.  0 to admit a pin, or -errno to refuse it (after the mount's admission rule). */
	int (*admit)(struct daxfs_policy *pol, const struct daxfs_pin_request *req);
	/* Required.  DAXFS_PROCEED, DAXFS_WAIT (after daxfs_free_wait) or -errno. */
	int (*before_free)(struct daxfs_policy *pol, struct daxfs_free *f);
	/* Optional (default DAXFS_KEEP_BUSY).  For each pinned media range leaving the file. */
	int (*pinned_freed)(struct daxfs_policy *pol, struct daxfs_free *f, uint64_t media_off, uint64_t len);
	/*
	 * Optional.  A pin is going away (unpinned, its file released, or revoked): from now on it
	 * cannot be broken, revoked or invalidated (those calls return -EINVAL).
	 */
	void (*on_unpin)(struct daxfs_policy *pol, const struct daxfs_pin_view *p);
	/* Optional.  The holder acknowledged an invalidation of [file_off, file_off + len). */
	void (*on_ack)(struct daxfs_policy *pol, const struct daxfs_pin_view *p, uint64_t file_off, uint64_t len);
	/* Optional.  The time asked with daxfs_policy_timer has come. */
	void (*on_timer)(struct daxfs_policy *pol, uint64_t now_ns);
};

/* ---- the policy instance ---- */

/* A parameter's value as text (the policy's own or a common one: pins, grace_ms, wait_timeout_ms). */
const char *daxfs_policy_param(const struct daxfs_policy *pol, const char *name);
/* The same as an unsigned number with an optional K/M/G/T suffix; def when unset or malformed. */
uint64_t daxfs_policy_param_u64(const struct daxfs_policy *pol, const char *name, uint64_t def);
void daxfs_policy_set_priv(struct daxfs_policy *pol, void *priv);
void *daxfs_policy_priv(const struct daxfs_policy *pol);
/* Bytes of busy extents now, in the file system / held by the pins of process pid. */
uint64_t daxfs_policy_busy_bytes(const struct daxfs_policy *pol);
uint64_t daxfs_policy_holder_busy_bytes(const struct daxfs_policy *pol, int32_t pid);
/* Call on_timer at when_ns (one pending time; 0 cancels). */
void daxfs_policy_timer(struct daxfs_policy *pol, uint64_t when_ns);
/* A built-in policy's ops, to delegate to (busy-quota falls back to wait, fail or revoke). */
const struct daxfs_policy_ops *daxfs_policy_builtin(const char *name);
/*
 * A "policy_note" record in the event trace (when tracing is on), {"ev":"policy_note","policy":NAME,
 * "msg":TEXT}: a free-form message (printf format, up to 511 bytes; cut shorter, at a whole character,
 * where escaping it for JSON would take more than the record leaves it).  Not "policy": that record is
 * the daemon's, for a change of policy.
 */
void daxfs_policy_trace(struct daxfs_policy *pol, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
uint64_t daxfs_now_ns(void);

/* ---- the decision ---- */

enum daxfs_free_cause daxfs_free_cause(const struct daxfs_free *f);
uint64_t daxfs_free_ino(const struct daxfs_free *f);
/* The file ranges leaving, as byte offsets, and where they live on the media. */
uint32_t daxfs_free_nranges(const struct daxfs_free *f);
void daxfs_free_range(const struct daxfs_free *f, uint32_t i, uint64_t *file_off, uint64_t *media_off,
		      uint64_t *len);
/* Bytes of those ranges some pin holds (they become busy unless pinned_freed frees them). */
uint64_t daxfs_free_pinned_bytes(const struct daxfs_free *f);
/* Pins that hold any of those blocks and are not revoked. */
uint32_t daxfs_free_live_pins(const struct daxfs_free *f);
/* Call fn for every pin holding any of those blocks (revoked ones too); stops at fn's non-zero. */
int daxfs_free_for_each_pin(const struct daxfs_free *f, int (*fn)(void *arg, const struct daxfs_pin_view *p),
			    void *arg);
/* How many times before_free has been asked about this free (1 the first time), and since when. */
uint32_t daxfs_free_attempt(const struct daxfs_free *f);
uint64_t daxfs_free_started_ns(const struct daxfs_free *f);
/* Scratch space for the policy, zero at the first attempt, kept across attempts. */
#define DAXFS_FREE_SCRATCH 64
void *daxfs_free_scratch(struct daxfs_free *f);
/* Before returning DAXFS_WAIT: decide again at until_ns at the latest (0 = only when pins change). */
void daxfs_free_wait(struct daxfs_free *f, uint64_t until_ns, enum daxfs_break_scope scope);

/* ---- pins ---- */

uint64_t daxfs_pin_id(const struct daxfs_pin_view *p);
uint64_t daxfs_pin_ino(const struct daxfs_pin_view *p);
uint32_t daxfs_pin_flags(const struct daxfs_pin_view *p);
uint32_t daxfs_pin_state(const struct daxfs_pin_view *p);	/* DAXFS_PIN_ACTIVE, _REVOKING, _REVOKED */
int32_t daxfs_pin_pid(const struct daxfs_pin_view *p);
uint32_t daxfs_pin_uid(const struct daxfs_pin_view *p);
uint64_t daxfs_pin_bytes(const struct daxfs_pin_view *p);	/* media bytes it holds */
/*
 * Break the pin's lease: it becomes REVOKING and its holder gets a LEASE_BREAK event; at deadline_ns
 * it is revoked unless unpinned.  An earlier deadline stands (one earlier than the pin's replaces it,
 * with a new event).  0, or -EINVAL on a revoked pin or one going away.
 */
int daxfs_pin_break_lease(struct daxfs_policy *pol, const struct daxfs_pin_view *p, uint64_t deadline_ns);
/*
 * Revoke the pin now: REVOKED event; the daemon's DMA through it is fenced.  A DAXFS_PIN_REVOCABLE
 * pin lets go of its blocks at once; any other keeps them out of reuse until its file is released,
 * since its device may not have stopped.  0, or -EINVAL on a revoked pin or one going away.
 */
int daxfs_pin_revoke(struct daxfs_policy *pol, const struct daxfs_pin_view *p);
/*
 * ODP: ask the holder to stop using the blocks of this free under pin p (an INVALIDATE event per
 * range).  When it acknowledges, the pin lets go of them; at deadline_ns unacknowledged, the pin is
 * revoked.  Once per pin and free: calling again for the same free does nothing.  0, or -EINVAL when
 * the pin is not DAXFS_PIN_ODP, is revoked or is going away.
 */
int daxfs_pin_invalidate(struct daxfs_policy *pol, struct daxfs_free *f, const struct daxfs_pin_view *p,
			 uint64_t deadline_ns);

#ifdef __cplusplus
}
#endif

#endif /* DAXFS_POLICY_H_PUBLIC */
