/* SPDX-License-Identifier: MIT */
/*
 * Pins: long-term references to media blocks, as get_user_pages or ibv_reg_mr hold them on DAX
 * pages.  Each pin belongs to an owner (an open file) and records the media extents it holds.  The
 * table keeps an exact reference count for every media block range, as a tree of non-overlapping
 * segments, so overlapping pins from many holders add up and "which of these blocks are pinned?"
 * costs O(log n + k).  Pins are also indexed by file, for "who pins this file's blocks?".
 *
 * The table carries what a file system tells a pin holder: lease breaks (REVOKING with a deadline),
 * revocation, invalidate-range requests and their acknowledgements, as events queued on the owner
 * (and signalled when the pin asked for it); the breaks in progress, which new pins must wait for;
 * and the fence between the daemon's DMA engine and a pin that goes away.
 *
 * Lock: tab->lock guards everything here (struct lock: asserted in debug builds).  Functions named
 * *_locked expect it held; the others take it.  It sits below the inode locks and above the busy
 * tree's lock in the lock order (fs.h).
 */
#ifndef DAXFS_MMAP_PIN_H
#define DAXFS_MMAP_PIN_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>

#include "holder.h"
#include "rbtree.h"
#include "trace.h"
#include "util.h"

#define PIN_HOLE UINT64_MAX	/* pblk of a hole under a read pin: nothing pinned, the zero page */

struct pin_ext {
	uint64_t lblk;		/* file block */
	uint64_t pblk;		/* media block, or PIN_HOLE */
	uint64_t len;		/* blocks */
};

/* An invalidation sent and not yet acknowledged. */
struct pin_inval {
	TAILQ_ENTRY(pin_inval) link;
	uint64_t seq;		/* the event's sequence number on the owner */
	uint64_t lblk;		/* the file blocks it covers */
	uint64_t n;
	uint64_t deadline_ns;	/* revoked then, if still pending */
	uint64_t free_id;	/* the free that sent it */
};

struct pin {
	RB_ENTRY(pin) by_id;
	RB_ENTRY(pin) by_ino;
	TAILQ_ENTRY(pin) owner_link;
	struct pin_owner *owner;
	uint64_t id;
	uint64_t ino;
	uint64_t lblk;		/* pinned file range, in blocks */
	uint64_t nblocks;
	uint32_t flags;		/* DAXFS_PIN_* */
	uint32_t state;		/* DAXFS_PIN_ACTIVE, _REVOKING, _REVOKED */
	pid_t pid;		/* the thread that pinned (the request's pid) */
	uint32_t uid;
	int signo;		/* signal for events, 0 = none */
	uint32_t gen;		/* bumped by every refault */
	uint8_t bshift;		/* the table's block size, for byte views of the pin */
	uint64_t created_ns;
	uint64_t deadline_ns;	/* REVOKING: when it will be revoked */
	bool holds_refs;	/* its extents' blocks are counted (false once revoked and let go) */
	bool removing;		/* unlinked from the table, waiting for its users to leave */
	bool fenced;		/* DMA through it must stop */
	bool drop_when_idle;	/* revoked while a DMA unit was in flight: let go of the blocks after it */
	uint32_t users;		/* threads using it outside the lock (DMA ioctls) */
	uint32_t units_inflight;	/* DMA units being copied now, mapped through ext */
	struct pin_ext *deferred;	/* ranges let go of (acknowledged) while units were in flight */
	uint32_t ndeferred;
	uint64_t charged;	/* blocks counted against its user (the policy layer's accounting) */
	struct pin_ext *ext;	/* in file order; holes (PIN_HOLE) and invalidated gaps have no ref */
	uint32_t next;
	TAILQ_HEAD(, pin_inval) invals;
};

struct pin_event_rec {
	TAILQ_ENTRY(pin_event_rec) link;
	uint64_t seq;
	uint32_t type;
	uint64_t pin_id;
	uint64_t file_off;
	uint64_t len;
	uint64_t deadline_ns;
	uint64_t time_ns;
};

/* The pins of one open file, and the events for its holder. */
struct pin_owner {
	TAILQ_HEAD(, pin) pins;
	uint32_t npins;
	TAILQ_HEAD(, pin_event_rec) events;
	uint64_t next_seq;		/* of the next event, from 1 */
	uint32_t nevents;
	struct holder_id holder;	/* the process that holds the file's pins (its first pinner) */
	pid_t holder_tid;		/* the thread holder was resolved from (a cache) */
	bool ghost;			/* quarantine: pins of a holder that outlived a daemon crash */
	bool recorded;			/* the policy layer: on the persistent holder list, as slot */
	uint64_t holder_slot;
};

struct pin_seg {
	RB_ENTRY(pin_seg) node;
	uint64_t start;
	uint64_t len;
	uint32_t count;
};

RB_HEAD(pin_ids, pin);
RB_HEAD(pin_inos, pin);
RB_HEAD(pin_segs, pin_seg);

/*
 * A break in progress: a free that waits for the pins over file blocks [lblk, lblk + n) of ino
 * (n = UINT64_MAX: the whole file).  New pins there wait until it ends.
 */
struct pin_break {
	LIST_ENTRY(pin_break) link;
	uint64_t ino;
	uint64_t lblk;
	uint64_t n;
	uint64_t wait_id;	/* the waiting request, for waiters behind it */
};

/* Upcalls, with the table locked.  Any may be NULL. */
struct pin_callbacks {
	/* The media range's pin count dropped to zero. */
	void (*unpinned)(void *ctx, uint64_t start, uint64_t len);
	/* A pin of ino changed: removed, revoked, an invalidation acknowledged, or a break ended. */
	void (*changed)(void *ctx, uint64_t ino);
	/*
	 * A pin is about to go: unpin or release (p->removing already set), or revocation (p->state
	 * already DAXFS_PIN_REVOKED).  Either way nothing can break, revoke or invalidate it any more.
	 */
	void (*removing)(void *ctx, const struct pin *p);
	void *ctx;
};

struct pin_table {
	struct lock lock;
	pthread_cond_t changed;		/* broadcast whenever blocks are unpinned or pins change */
	pthread_cond_t dma_idle;	/* a pin's DMA count dropped to zero */
	struct pin_ids ids;
	struct pin_inos inos;
	struct pin_segs segs;
	uint64_t next_id;
	uint64_t npins;
	uint64_t pinned_blocks;		/* blocks with a count above zero */
	uint64_t held_revoked_blocks;	/* blocks of revoked pins that keep their refs until release */
	uint32_t max_total;
	uint32_t max_per_owner;
	unsigned bshift;		/* log2 of the block size */
	struct trace *trace;		/* every state change of a pin is a record (may be NULL) */
	struct pin_callbacks cb;
	LIST_HEAD(, pin_break) breaks;
	uint64_t next_deadline_ns;	/* earliest lease or invalidation deadline, 0 = none */
	/* statistics */
	uint64_t created;
	uint64_t released;
	uint64_t revoked;
	uint64_t refused;
	uint64_t events;
	uint64_t invalidations;
	uint64_t acks;
};

void pin_table_init(struct pin_table *tab, unsigned bshift, uint32_t max_total, uint32_t max_per_owner,
		    const struct pin_callbacks *cb);
void pin_table_destroy(struct pin_table *tab);
void pin_owner_init(struct pin_owner *o);
/* Forget the owner's queued events (its file was released, after pin_release_owner). */
void pin_owner_destroy(struct pin_owner *o);

/* ---- pins ---- */

/*
 * Register a pin over `ext` (copied; PIN_HOLE pieces take no reference).  Returns 0 with *out,
 * -EMFILE / -ENFILE at the per-owner / total limit, -ENOMEM.  Does not check breaks (pin_break_find).
 */
int pin_add_locked(struct pin_table *tab, struct pin_owner *o, uint64_t ino, uint64_t lblk, uint64_t nblocks,
		   uint32_t flags, pid_t pid, uint32_t uid, int signo, const struct pin_ext *ext, uint32_t next,
		   struct pin **out);
/* The owner's pin `id`: 0, -ENOENT if there is none, -EBADF if another owner has it. */
int pin_lookup_locked(struct pin_table *tab, const struct pin_owner *o, uint64_t id, struct pin **out);
/*
 * Drop a pin: fence its DMA (waits, with the lock released, for DMA ioctls in flight through it to
 * stop), drop its references, free it.
 */
void pin_remove_locked(struct pin_table *tab, struct pin *p);
/* Drop every pin of an owner (the open file was released). */
void pin_release_owner(struct pin_table *tab, struct pin_owner *o);
/* The same on the file system's own account (the daemon stops with the file open): DROPPED first. */
void pin_drop_owner(struct pin_table *tab, struct pin_owner *o);
/*
 * Drop every pin (unmount), telling each holder (DROPPED).  Ghost owners' pins stay: what they hold
 * must not be reclaimed while their holder may still write (pin_table_destroy frees them silently).
 */
void pin_release_all(struct pin_table *tab);

/* Pins in id order; the pins of ino in file order. */
struct pin *pin_first_locked(struct pin_table *tab);
struct pin *pin_next_locked(struct pin_table *tab, struct pin *p);
struct pin *pin_first_of_ino_locked(struct pin_table *tab, uint64_t ino);
struct pin *pin_next_of_ino_locked(struct pin_table *tab, struct pin *p);
/* Does p hold a reference to any block of media range [start, start + len)? */
bool pin_holds_locked(const struct pin *p, uint64_t start, uint64_t len);
/* Media blocks p holds references to. */
uint64_t pin_held_blocks(const struct pin *p);
/* Ranges of p's file range that acknowledged invalidations took away and no refault gave back. */
uint32_t pin_invalidated_ranges(const struct pin *p);

/* ---- reference counts ---- */

/* Add or remove one reference over a media range (tests and the pin paths).  0 or -ENOMEM. */
int pin_ref_locked(struct pin_table *tab, uint64_t start, uint64_t len);
void pin_unref_locked(struct pin_table *tab, uint64_t start, uint64_t len);
/* Walk [start, start + len) as runs of equal pin count (count 0 for unpinned runs). */
typedef void (*pin_run_fn)(void *arg, uint64_t start, uint64_t len, uint32_t count);
void pin_runs_locked(struct pin_table *tab, uint64_t start, uint64_t len, pin_run_fn fn, void *arg);
bool pin_any_locked(struct pin_table *tab, uint64_t start, uint64_t len);
/* Segments in the reference tree (equal neighbours are always merged). */
size_t pin_segments_locked(struct pin_table *tab);
uint32_t pin_max_count_locked(struct pin_table *tab, uint64_t start, uint64_t len);

/* ---- telling holders ---- */

/* Queue an event on p's owner (and signal it if p asked for a signal). */
void pin_event_locked(struct pin_table *tab, struct pin *p, uint32_t type, uint64_t lblk, uint64_t n,
		      uint64_t deadline_ns, unsigned bshift);
/*
 * Events of owner o with seq >= from: consume the older ones, copy up to max into out (struct
 * daxfs_event).  Returns the count; *next_seq is where to read on: the seq after the last one
 * copied, or the one the next event will get when none was.
 */
struct daxfs_event;
uint32_t pin_events_read_locked(struct pin_owner *o, uint64_t from, struct daxfs_event *out, uint32_t max,
				uint64_t *next_seq);
/*
 * Break p's lease: REVOKING until deadline (an earlier one stands), with a LEASE_BREAK event when
 * the deadline is new or nearer.  0, or -EINVAL if revoked or going away.
 */
int pin_break_lease_locked(struct pin_table *tab, struct pin *p, uint64_t deadline_ns, unsigned bshift);
/*
 * Revoke p now: REVOKED, event, DMA fenced (waits, lock released, for DMA in flight).  A revocable
 * pin lets go of its blocks; another keeps them until it is removed.
 */
void pin_revoke_locked(struct pin_table *tab, struct pin *p, unsigned bshift);
/*
 * Ask p's holder to stop using file blocks [lblk, lblk + n): an INVALIDATE event, pending until
 * acknowledged (pin_ack_locked) or revoked at deadline.  Once per free_id.  0, -EINVAL (not ODP,
 * revoked), or 1 when this free already asked.
 */
int pin_invalidate_locked(struct pin_table *tab, struct pin *p, uint64_t lblk, uint64_t n, uint64_t deadline_ns,
			  uint64_t free_id, unsigned bshift);
/*
 * The holder acknowledges invalidation seq: p lets go of those blocks (after the DMA unit in
 * flight, if any).  0 with the range in *lblk and *n, or -ENOENT (no such pending invalidation).
 */
int pin_ack_locked(struct pin_table *tab, struct pin *p, uint64_t seq, uint64_t *lblk, uint64_t *n);
/*
 * ODP refault: p holds ext now over file blocks [lblk, lblk + n) of its range (replacing what it had
 * there); its generation goes up.  0 or -ENOMEM.
 */
int pin_refault_locked(struct pin_table *tab, struct pin *p, uint64_t lblk, uint64_t n, const struct pin_ext *ext,
		       uint32_t next);
/* Revoke pins whose lease or invalidation deadline has passed.  Returns how many. */
uint32_t pin_expire_locked(struct pin_table *tab, uint64_t now_ns, unsigned bshift);

/* ---- breaks: frees waiting for pins ---- */

void pin_break_begin_locked(struct pin_table *tab, struct pin_break *b);
/* End a break: pins waiting for it may go ahead (changed() is called for its inode). */
void pin_break_end_locked(struct pin_table *tab, struct pin_break *b);
/* A break over any of file blocks [lblk, lblk + n) of ino, or NULL. */
struct pin_break *pin_break_find_locked(struct pin_table *tab, uint64_t ino, uint64_t lblk, uint64_t n);

/* ---- the DMA fence ----
 *
 * A DMA ioctl holds the pin (pin_get_locked) while it works and maps one unit at a time under the
 * lock (pin_unit_begin_locked), copying it with the lock released.  Removal fences: it unlinks the
 * pin, marks it fenced and waits until every user has left, so after unpin returns nothing writes
 * through it.  Revocation and acknowledged invalidations never wait: blocks a unit in flight may
 * still write are let go of when that unit ends.
 */

void pin_get_locked(struct pin *p);
/* Drop a hold; frees the pin if it was removed meanwhile. */
void pin_put_locked(struct pin_table *tab, struct pin *p);
/*
 * Map pin bytes [off, off + len) (inside one extent) to a media byte offset for one unit of DMA:
 * 0 with *media_off (or PIN_HOLE << bshift for a hole), -ENOLINK (revoked), -ESHUTDOWN (fenced:
 * unpinned), -EFAULT (invalidated, not refaulted).  On 0 the unit is in flight until
 * pin_unit_end_locked.  *run: bytes from off that map contiguously.
 */
int pin_unit_begin_locked(struct pin *p, uint64_t off, uint64_t len, unsigned bshift, uint64_t *media_off,
			  uint64_t *run);
void pin_unit_end_locked(struct pin_table *tab, struct pin *p);
/* Must DMA through p stop?  Read without the lock between units. */
static inline bool pin_dma_fenced(const struct pin *p)
{
	return __atomic_load_n(&p->fenced, __ATOMIC_ACQUIRE);
}

#endif
