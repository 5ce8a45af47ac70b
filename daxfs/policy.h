/* SPDX-License-Identifier: MIT */
/*
 * Policy dispatch: the pins of a mount and the policy that rules them.
 *
 * A policy (include/daxfs/policy.h) is an ops table, built in (daxfs/policies/) or loaded from a
 * shared object.  This layer runs it: it asks it before pinned blocks leave a file, parks the
 * requests it makes wait and resumes them when pins change (continuations, not threads: any
 * number of waiting truncates costs memory, never a request-loop thread), applies its answer to
 * the blocks that go, and enforces what is the mount's, not the policy's: the admission rule,
 * ownership for pins that can stall others, per-user and per-file limits, and the fence between a
 * pin and the daemon's DMA engine.
 *
 * Locks: everything here is under pol->pins.lock (the pin table's), including the policy in force,
 * the waiting requests and the hooks' calls.  Functions take it themselves; callers may hold an
 * inode lock (which comes first), never the busy tree's.
 */
#ifndef DAXFS_POLICY_INTERNAL_H
#define DAXFS_POLICY_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>
#include <unistd.h>

#include "daxfs/ioctl.h"
#include "daxfs/policy.h"
#include "mmap_pin.h"
#include "slots.h"

struct fs;
struct inode;
struct tx;
struct file_free_sink;

/* Returned (negated) by operations that must wait: the caller parks the request (policy_park). */
#define POLICY_EPARK 4096

/* The common parameters every policy has (daxfs_policy_param finds them too). */
#define POLICY_COMMON_PARAMS "pins", "grace_ms", "wait_timeout_ms"

#define POLICY_PARAMS_MAX 32

/* A policy instance: struct daxfs_policy of the public header. */
struct daxfs_policy {
	const struct daxfs_policy_ops *ops;
	struct policy *owner;
	void *handle;			/* dlopen handle of a loaded policy, or NULL */
	char path[256];			/* where it was loaded from */
	uint32_t nparams;
	char *keys[POLICY_PARAMS_MAX];
	char *values[POLICY_PARAMS_MAX];
	void *priv;
	uint64_t timer_ns;
};

/* The decision about one free, as policies see it (struct daxfs_free of the public header). */
struct daxfs_free {
	struct policy *pol;
	enum daxfs_free_cause cause;
	uint64_t ino;
	uint64_t lblk;			/* file blocks [lblk, lblk + n) leave the file */
	uint64_t n;
	struct pin_ext *ranges;		/* their media, refreshed at every attempt */
	uint32_t nranges;
	uint32_t attempt;
	uint64_t started_ns;
	uint64_t wait_until;
	enum daxfs_break_scope scope;
	uint64_t id;			/* also the request's wait id */
	uint64_t scratch[DAXFS_FREE_SCRATCH / 8];
};

/*
 * A request that may wait: a free (truncate, punch, O_TRUNC) or a pin on a range being broken.  The
 * caller owns it from policy_op_init to policy_op_finish, across any number of parkings.
 */
struct policy_op {
	struct daxfs_free f;
	uint32_t kind;			/* DAXFS_WAIT_* */
	pid_t pid;			/* who asked */
	bool registered;		/* on pol->ops: a change may wake it */
	bool ready;			/* something it waits for changed */
	bool interrupted;
	bool parked;			/* resume is set: the worker may run it */
	bool waited;			/* has waited at least once (statistics) */
	uint64_t blocker_wait;		/* pin requests: the free it waits behind */
	struct pin_break brk;		/* while it waits: new pins on its range wait too */
	bool brk_active;
	void (*resume)(void *arg);
	void *arg;
	TAILQ_ENTRY(policy_op) link;
};

/* A holder that outlived a daemon crash: its pins' blocks stay out of reuse until it exits. */
struct policy_ghost {
	LIST_ENTRY(policy_ghost) link;
	struct pin_owner owner;		/* ghost: its pins cover what the holder may still write */
	struct holder_id holder;
	int pidfd;			/* readable when the holder exits */
	uint64_t slot;			/* its record on the holder list */
	uint64_t ino;
	uint64_t blocks;
};

struct policy_user {
	uint32_t uid;
	uint64_t blocks;		/* pinned by this user, counted per pin */
};

struct policy {
	struct fs *fs;
	struct pin_table pins;		/* its lock guards all of struct policy */
	struct daxfs_policy *cur;	/* in force */
	uint64_t generation;		/* bumped by every change of policy or parameters */
	uint32_t admission;		/* POLICY_ADMIT_* from the pins parameter */
	uint64_t grace_ns;
	uint64_t wait_timeout_ns;
	uint64_t max_user_blocks;	/* pinned blocks per user other than root, UINT64_MAX = unlimited */
	struct policy_user *users;
	uint32_t nusers;
	TAILQ_HEAD(, policy_op) ops;	/* registered requests, parked or deciding */
	struct slotlist holders;	/* who holds write pins, persistently (crash quarantine) */
	bool holders_loaded;
	LIST_HEAD(, policy_ghost) ghosts;
	uint32_t nghosts;
	uint64_t quarantined_blocks;
	uint64_t next_op_id;
	uint32_t nwaiting;
	/* the worker: resumes parked requests, revokes at deadlines, runs timers */
	pthread_t worker;
	int wake_fd;			/* eventfd */
	bool started;
	bool stopping;
	struct policy_stats {
		uint64_t frees_waited;
		uint64_t free_wait_ns;
		uint64_t frees_failed;
		uint64_t unsafe_frees;
		uint64_t unsafe_blocks;
		uint64_t dma_ops;
		uint64_t dma_bytes;
		uint64_t waits_interrupted;
	} stats;			/* updated with atomic adds */
};

#define POLICY_ADMIT_ALL		1
#define POLICY_ADMIT_DENY_LONGTERM	2	/* FOLL_LONGTERM refused, as Linux does on fsdax */
#define POLICY_ADMIT_REVOCABLE_ONLY	3	/* long-term pins must be revocable */

/* Wake the policy worker (any lock may be held). */
static inline void policy_kick(struct policy *pol)
{
	uint64_t one = 1;

	if (pol->wake_fd >= 0 && write(pol->wake_fd, &one, sizeof(one)) < 0) {
		/* The counter is saturated: the worker has a wake-up coming anyway. */
	}
}

/* A pin as policies see it, and back. */
#define VIEW(p) ((const struct daxfs_pin_view *)(p))
#define PIN(v) ((const struct pin *)(v))

/* A number with an optional K, M, G or T suffix (parameters).  0 or -EINVAL. */
int policy_parse_u64(const char *s, uint64_t *out);

/* ---- set up ---- */

/* Limits of the mount, outside any policy. */
struct policy_limits {
	uint32_t max_pins;		/* 0 = unlimited */
	uint32_t max_pins_per_file;
	uint64_t max_user_bytes;	/* pinned bytes per user other than root, 0 = unlimited */
};
#define POLICY_USER_LIMIT_DEFAULT UINT64_MAX	/* an eighth of the data area */

/*
 * Set up the pin table and the policy `name` (built in, or an absolute path to a .so) with params
 * "key=value,...".  fs->pol is then pol.  Returns 0, or -errno with a message in err.
 */
int policy_init(struct policy *pol, struct fs *fs, const char *name, const char *params,
		const struct policy_limits *lim, char *err, size_t errlen);
/*
 * After a daemon crash (mount, after the busy list is loaded, before orphans are freed): holders
 * recorded on the holder list that are still alive may still be writing what they pinned.  With
 * quarantine, their files' blocks and busy extents stay pinned until they exit (watched with
 * pidfds); without, or for holders that are gone, their records are dropped.  Then every busy
 * extent nothing pins is queued for reclaim.  Returns 0, or -errno with err.
 */
int policy_recover(struct fs *fs, bool quarantine, char *err, size_t errlen);
/* Start the worker (after the daemon forked).  0 or -errno. */
int policy_start(struct fs *fs);
/* Stop it: requests still waiting are resumed interrupted (they fail with EINTR). */
void policy_stop(struct fs *fs);
/* Drop every pin (unmount), telling each holder: what they held becomes reclaimable. */
void policy_release_all(struct fs *fs);
void policy_destroy(struct policy *pol);

/* ---- the policy in force ---- */

/* The ops of `name` (built in, or a .so path: loaded, *handle set).  0, or -errno with err. */
int policy_find(const char *name, const struct daxfs_policy_ops **ops, void **handle, char *err, size_t errlen);
/* Switch to policy `name` with params.  Waiting requests decide again.  0, or -errno with err. */
int policy_set(struct fs *fs, const char *name, const char *params, char *err, size_t errlen);
/* Change parameters of the policy in force. */
int policy_set_params(struct fs *fs, const char *params, char *err, size_t errlen);
void policy_describe(struct fs *fs, struct daxfs_ioc_policy *out);
/* The built-in policies (and the loaded one in force): entries from start into out[max]. */
uint32_t policy_list(struct fs *fs, uint32_t start, struct daxfs_policy_desc *out, uint32_t max, uint32_t *total);
/* The built-in policies, NULL-terminated (for --help). */
extern const struct daxfs_policy_ops *const policy_builtins[];

/* ---- frees ---- */

/* Start a request (kind DAXFS_WAIT_*, from process pid). */
void policy_op_init(struct policy_op *op, uint32_t kind, pid_t pid);
/*
 * Before the blocks behind file blocks [lblk, lblk + n) of ip (write-locked) leave it: 0 when they
 * may go, -errno (the policy refused, or -EINTR), or -POLICY_EPARK: the caller unlocks, gives up its
 * inode reference, and parks the request (policy_park), to run it again from the start when woken.
 * With op NULL the caller cannot park: the wait happens here, with ip unlocked (tests and tools).
 */
int policy_before_free(struct fs *fs, struct policy_op *op, struct inode *ip, uint64_t lblk, uint64_t n);
/* Where the blocks of a free go; op may be NULL (frees that cannot wait: unlink, rename over). */
struct file_free_sink policy_sink(struct fs *fs, struct policy_op *op);
/* Park a request that got -POLICY_EPARK: resume(arg) runs on the policy worker when it is woken. */
void policy_park(struct fs *fs, struct policy_op *op, void (*resume)(void *arg), void *arg);
/* The request's caller was interrupted (FUSE_INTERRUPT): it fails with EINTR when it runs again. */
void policy_interrupt(struct fs *fs, struct policy_op *op);
/* The request is over (replied): forget it. */
void policy_op_finish(struct fs *fs, struct policy_op *op);

/* ---- pins ---- */

struct policy_pin_args {
	uint64_t offset;
	uint64_t length;
	uint32_t flags;			/* DAXFS_PIN_* */
	int signo;
	uint32_t uid;			/* the caller */
	pid_t pid;
	bool writable;			/* the open file allows writing */
};

/*
 * Pin a range of the open regular file ip for owner.  0 with *pin_id, -errno, or -POLICY_EPARK (a
 * free is breaking that range: park op and try again when woken; op NULL: wait here).
 */
int policy_pin(struct fs *fs, struct pin_owner *owner, struct inode *ip, const struct policy_pin_args *a,
	       struct policy_op *op, uint64_t *pin_id);
/* Copy extents [start, ...) of a pin as byte ranges; returns the pin's total extent count or -errno. */
int policy_pin_extents(struct fs *fs, struct pin_owner *owner, uint64_t pin_id, uint32_t start,
		       struct daxfs_pin_extent *out, uint32_t max, uint32_t *nreturned, uint64_t *off, uint64_t *len);
int policy_pin_status(struct fs *fs, struct pin_owner *owner, struct daxfs_ioc_pin_status *st);
/* Unpin: the DMA engine is fenced first.  0, -ENOENT, -EBADF. */
int policy_unpin(struct fs *fs, struct pin_owner *owner, uint64_t pin_id);
/* Drop every pin of an owner (its open file was released) and its events. */
void policy_release_owner(struct fs *fs, struct pin_owner *owner);
/*
 * The same when the daemon lets go of an open file on its own (it stops while the file is open):
 * every pin's holder is told, DROPPED (by the pin's signal: nobody reads the events any more).
 */
void policy_drop_owner(struct fs *fs, struct pin_owner *owner);
/* The owner's events from seq ev->from_seq (consuming older ones), and where to read on. */
void policy_events(struct fs *fs, struct pin_owner *owner, struct daxfs_ioc_events *ev);
/* Acknowledge an invalidation.  0, -ENOENT, -EBADF. */
int policy_ack(struct fs *fs, struct pin_owner *owner, uint64_t pin_id, uint64_t seq);
/* ODP refault of part of a pin (ip is the pinned file, the owner's).  0 or -errno (-ENXIO past EOF). */
int policy_fault(struct fs *fs, struct pin_owner *owner, struct inode *ip, struct daxfs_ioc_pin_fault *a);

/*
 * The DMA engine behind DAXFS_IOC_DMA (dma.c).  0 when some of d was done (d->done; d->result is
 * why it stopped short, or 0), -errno when none was.
 */
int policy_dma(struct fs *fs, struct pin_owner *owner, struct daxfs_ioc_dma *d);

/* ---- state for the control ioctls ---- */

void policy_stats(struct fs *fs, struct daxfs_ioc_stats *st);
uint32_t policy_list_pins(struct fs *fs, uint32_t start, struct daxfs_pin_info *out, uint32_t max, uint32_t *total);
uint32_t policy_list_busy(struct fs *fs, uint32_t start, struct daxfs_busy_info *out, uint32_t max, uint32_t *total);
uint32_t policy_list_waits(struct fs *fs, uint32_t start, struct daxfs_wait_info *out, uint32_t max,
			   uint32_t *total);

#endif
