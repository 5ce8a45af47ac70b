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

/* "busy", "wait", ...; "deny-longterm" sets wait + deny-longterm.  -EINVAL if unknown. */
int policy_parse(const char *name, struct policy_config *pc);

void policy_get(struct fs *fs, struct policy_config *pc);
int policy_set(struct fs *fs, const struct policy_config *pc);

/* Wire the pin table's unpin notifications to busy-extent reclaim. */
void policy_init(struct fs *fs);

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
/* The simulated device: a pattern write, verify or zero through a pin. */
int policy_dma(struct fs *fs, struct pin_owner *owner, struct daxfs_ioc_dma *d);

#endif
