/* SPDX-License-Identifier: MIT */
/*
 * Policy: what happens when blocks a pin holds leave their file (truncate, punch hole, O_TRUNC,
 * unlink, rename over), and which pins are admitted at all.
 *
 *   busy    detach the blocks at once, keep them busy, reclaim them after the last unpin (default)
 *   wait    the operation waits, with the inode unlocked, until the blocks are unpinned
 *   fail    the operation fails with EBUSY
 *   revoke  break the lease: pins become REVOKING, and after the grace period are revoked (their
 *           blocks taken back; the holder's DMA then fails with ENOLINK)
 *   unsafe  free the blocks anyway: the baseline that shows the corruption
 * Admission: allow, or deny-longterm (long-term pins get EOPNOTSUPP, as on Linux fsdax).
 *
 * Frees made under the namespace lock (unlink, rename over, orphans) never wait: there, pinned
 * blocks become busy unless the policy is unsafe.  In practice those files have no pins of their
 * own (a file's pins drop when it is closed, before it can be freed); only blocks that an unsafe free
 * let another file reuse can be pinned there.
 */
#ifndef DAXFS_POLICY_H
#define DAXFS_POLICY_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <pthread.h>

#include "daxfs/ioctl.h"
#include "mmap_pin.h"

struct fs;
struct inode;
struct tx;

struct policy_config {
	uint32_t kind;			/* DAXFS_POLICY_* */
	uint32_t admission;		/* DAXFS_ADMIT_* */
	uint64_t grace_ms;		/* revoke */
	uint64_t wait_timeout_ms;	/* wait, revoke; 0 = for ever */
};

/* The pins of a mount and the policy that rules them.  fs->pol points here. */
struct policy {
	struct fs *fs;
	struct pin_table pins;
	pthread_mutex_t lock;		/* cfg (a leaf: taken inside pins.lock) */
	struct policy_config cfg;
	struct policy_stats {
		uint64_t frees_waited;
		uint64_t free_wait_ns;
		uint64_t frees_failed;
		uint64_t unsafe_frees;
		uint64_t unsafe_blocks;
		uint64_t dma_ops;
		uint64_t dma_bytes;
	} stats;			/* updated with atomic adds */
};

/* Set up the pin table and the policy of fs (mount); fs->pol is then pol.  Returns 0 or -errno. */
int policy_init(struct policy *pol, struct fs *fs, const struct policy_config *cfg, uint32_t max_pins,
		uint32_t max_pins_per_file);
/* Drop every pin (unmount): what they held becomes reclaimable. */
void policy_release_all(struct fs *fs);
void policy_destroy(struct policy *pol);

/* "busy", "wait", ...; "deny-longterm" sets wait + deny-longterm.  -EINVAL if unknown. */
int policy_parse(const char *name, struct policy_config *pc);

void policy_get(struct fs *fs, struct policy_config *pc);
int policy_set(struct fs *fs, const struct policy_config *pc);


/*
 * Before freeing the blocks behind file blocks [lblk, lblk + n) of ip (write-locked): returns 0
 * when they may go, -EBUSY (fail, or wait timed out).  wait and revoke block here with ip unlocked,
 * so the holder can still use the file and unpin; the caller must re-read the inode afterwards.
 */
int policy_before_free(struct fs *fs, struct inode *ip, uint64_t lblk, uint64_t n);
/*
 * Where freed blocks go: unpinned parts back to the allocator, pinned ones per policy (busy, or free
 * under unsafe).  The sink of every truncate, punch and inode free.
 */
struct file_free_sink policy_sink(struct fs *fs);

/* Pin [off, off + len) of the open regular file ip for owner. */
int policy_pin(struct fs *fs, struct pin_owner *owner, struct inode *ip, bool writable, uint64_t off, uint64_t len,
	       uint32_t flags, pid_t pid, uint64_t *pin_id);
/* Copy extents [start, ...) of a pin as byte ranges; returns the pin's total extent count or -errno. */
int policy_pin_extents(struct fs *fs, struct pin_owner *owner, uint64_t pin_id, uint32_t start,
		       struct daxfs_pin_extent *out, uint32_t max, uint32_t *nreturned, uint64_t *off, uint64_t *len);
int policy_pin_status(struct fs *fs, struct pin_owner *owner, struct daxfs_ioc_pin_status *st);
int policy_unpin(struct fs *fs, struct pin_owner *owner, uint64_t pin_id);
/* Drop every pin of an owner (its open file was released). */
void policy_release_owner(struct fs *fs, struct pin_owner *owner);
/* The simulated device: a pattern write, verify or zero through a pin. */
int policy_dma(struct fs *fs, struct pin_owner *owner, struct daxfs_ioc_dma *d);

/* The counters of the pins, the busy extents, reclaim and the policy. */
void policy_stats(struct fs *fs, struct daxfs_ioc_stats *st);
/* Pins from index `start` (in id order) into out[max]: the count copied; *total the pins in all. */
uint32_t policy_list_pins(struct fs *fs, uint32_t start, struct daxfs_pin_info *out, uint32_t max, uint32_t *total);
/* Busy extents from index `start` (in media order), likewise. */
uint32_t policy_list_busy(struct fs *fs, uint32_t start, struct daxfs_busy_info *out, uint32_t max, uint32_t *total);

#endif
