/* SPDX-License-Identifier: MIT */
/*
 * Pins: long-term references to media blocks, as get_user_pages or ibv_reg_mr hold them on DAX
 * pages.  Each pin belongs to an owner (an open file) and records the media extents it holds.  The
 * table keeps an exact reference count for every media block range, as a tree of non-overlapping
 * segments, so overlapping pins from many holders add up and "which of these blocks are pinned?"
 * costs O(log n + k).
 *
 * Everything named *_locked expects tab->lock; the rest take it.
 */
#ifndef DAXFS_MMAP_PIN_H
#define DAXFS_MMAP_PIN_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>

#include "rbtree.h"

struct pin_ext {
	uint64_t lblk;		/* file block */
	uint64_t pblk;		/* media block */
	uint64_t len;		/* blocks */
};

struct pin {
	RB_ENTRY(pin) by_id;
	TAILQ_ENTRY(pin) owner_link;
	struct pin_owner *owner;
	uint64_t id;
	uint64_t ino;
	uint64_t lblk;		/* pinned file range, in blocks */
	uint64_t nblocks;
	uint32_t flags;		/* DAXFS_PIN_* */
	uint32_t state;		/* DAXFS_PIN_ACTIVE, _REVOKING, _REVOKED */
	pid_t pid;
	uint64_t created_ns;
	uint64_t deadline_ns;	/* REVOKING: when it will be revoked */
	struct pin_ext *ext;
	uint32_t next;
};

/* The pins of one open file. */
struct pin_owner {
	TAILQ_HEAD(, pin) pins;
	uint32_t npins;
};

struct pin_seg {
	RB_ENTRY(pin_seg) node;
	uint64_t start;
	uint64_t len;
	uint32_t count;
};

RB_HEAD(pin_ids, pin);
RB_HEAD(pin_segs, pin_seg);

/*
 * A lease break in progress: while an operation waits for the blocks in `ranges` to be given up,
 * every pin on them (including one taken meanwhile) is REVOKING with this deadline.
 */
struct lease_break {
	LIST_ENTRY(lease_break) link;
	const struct pin_ext *ranges;
	uint32_t n;
	uint64_t deadline_ns;
};

/* Called, with the table locked, for each media range whose pin count dropped to zero. */
typedef void (*pin_unpinned_fn)(void *ctx, uint64_t start, uint64_t len);

struct pin_table {
	pthread_mutex_t lock;
	pthread_cond_t changed;		/* broadcast whenever blocks are unpinned */
	struct pin_ids ids;
	struct pin_segs segs;
	uint64_t next_id;
	uint64_t npins;
	uint64_t pinned_blocks;		/* blocks with a count above zero */
	uint32_t max_total;
	uint32_t max_per_owner;
	pin_unpinned_fn unpinned;
	void *ctx;
	LIST_HEAD(, lease_break) breaks;
	uint64_t next_deadline_ns;	/* earliest deadline of a REVOKING pin, 0 = none */
	/* statistics */
	uint64_t created;
	uint64_t released;
	uint64_t revoked;
	uint64_t refused;
};

void pin_table_init(struct pin_table *tab, uint32_t max_total, uint32_t max_per_owner, pin_unpinned_fn unpinned,
		    void *ctx);
void pin_table_destroy(struct pin_table *tab);
void pin_owner_init(struct pin_owner *o);

/* Register a pin over `ext` (copied).  -EMFILE / -ENFILE at the per-owner / total limit. */
int pin_add_locked(struct pin_table *tab, struct pin_owner *o, uint64_t ino, uint64_t lblk, uint64_t nblocks,
		   uint32_t flags, pid_t pid, const struct pin_ext *ext, uint32_t next, struct pin **out);
/* The owner's pin `id`: -ENOENT if there is none, -EBADF if another owner has it. */
int pin_lookup_locked(struct pin_table *tab, const struct pin_owner *o, uint64_t id, struct pin **out);
/* Drop a pin (its references, unless revoked) and free it. */
void pin_remove_locked(struct pin_table *tab, struct pin *p);
int pin_remove(struct pin_table *tab, struct pin_owner *o, uint64_t id);
/* Drop every pin of an owner (the open file was released). */
void pin_release_owner(struct pin_table *tab, struct pin_owner *o);
/* Drop every pin (unmount). */
void pin_release_all(struct pin_table *tab);

/* Pins in id order. */
struct pin *pin_first_locked(struct pin_table *tab);
struct pin *pin_next_locked(struct pin_table *tab, struct pin *p);

/* Add or remove one reference over a media range (tests and the pin paths). */
int pin_ref_locked(struct pin_table *tab, uint64_t start, uint64_t len);
void pin_unref_locked(struct pin_table *tab, uint64_t start, uint64_t len);

/* Walk [start, start + len) as runs of equal pin count (count 0 for unpinned runs). */
typedef void (*pin_run_fn)(void *arg, uint64_t start, uint64_t len, uint32_t count);
void pin_runs_locked(struct pin_table *tab, uint64_t start, uint64_t len, pin_run_fn fn, void *arg);
bool pin_any_locked(struct pin_table *tab, uint64_t start, uint64_t len);
/* Segments in the reference tree (equal neighbours are always merged). */
size_t pin_segments_locked(struct pin_table *tab);
uint32_t pin_max_count_locked(struct pin_table *tab, uint64_t start, uint64_t len);

/*
 * Lease break: every active pin holding a block of [start, start + len) becomes REVOKING with the
 * given deadline.  Returns how many pins were affected.
 */
uint32_t pin_break_locked(struct pin_table *tab, uint64_t start, uint64_t len, uint64_t deadline_ns);
/* Start a lease break over lb->ranges (the caller keeps lb alive until it ends the break). */
void pin_break_begin_locked(struct pin_table *tab, struct lease_break *lb);
/*
 * End it: new pins on those blocks are no longer born REVOKING.  Pins already told keep their
 * deadline whether or not the operation waited it out: a broken lease stays broken, and the pin is
 * revoked when its deadline passes (checked whenever pins are looked up or listed).
 */
void pin_break_end_locked(struct pin_table *tab, struct lease_break *lb);
/* Revoke REVOKING pins whose deadline has passed: their blocks are no longer theirs.  Returns the count. */
uint32_t pin_revoke_expired_locked(struct pin_table *tab, uint64_t now_ns);

#endif
