/* SPDX-License-Identifier: MIT */
/*
 * libdaxfs: the daxfs control ioctls for C callers.  Every call takes a descriptor open on the
 * daxfs mount (a file for the pin calls; any file or directory for the others) and returns 0 or
 * -errno.  Paged results are gathered into one malloc'd array the caller frees.
 */
#ifndef LIBDAXFS_H
#define LIBDAXFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daxfs/ioctl.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- pins ---- */

struct daxfs_pin {
	uint64_t id;
	uint64_t offset;		/* the pinned range (block aligned) */
	uint64_t length;
	uint32_t nextents;
	uint32_t gen;			/* bumped by every refault */
	struct daxfs_pin_extent *ext;	/* malloc'd, in file order; daxfs_pin_free */
};

/* Pin [offset, offset + length) of the file open on fd; flags: DAXFS_PIN_*; signo 0 or a signal for events. */
int daxfs_pin(int fd, uint64_t offset, uint64_t length, uint32_t flags, struct daxfs_pin *pin);
int daxfs_pin_signal(int fd, uint64_t offset, uint64_t length, uint32_t flags, int signo, struct daxfs_pin *pin);
void daxfs_pin_free(struct daxfs_pin *pin);
int daxfs_unpin(int fd, uint64_t pin_id);
int daxfs_pin_status(int fd, uint64_t pin_id, struct daxfs_ioc_pin_status *st);
/* Fetch every extent of the pin again (after a refault). */
int daxfs_pin_refresh(int fd, struct daxfs_pin *pin);
/* ODP: resolve [offset, offset + length) of the pin again after an invalidation; pin is refreshed. */
int daxfs_pin_fault(int fd, struct daxfs_pin *pin, uint64_t offset, uint64_t length);
/*
 * Where pin byte `off` lives on the media, and how many bytes from there are contiguous: 0, or
 * -EFAULT when that part was invalidated (refault it).  *media_off is DAXFS_MEDIA_ZERO for a hole.
 */
int daxfs_pin_map(const struct daxfs_pin *pin, uint64_t off, uint64_t *media_off, uint64_t *run);

/*
 * The daemon's DMA engine; mismatches and first_mismatch (verify) may be NULL.  0 when all of
 * length was done; -errno otherwise, also when a fence stopped it part-way (daxfs_dma_run says
 * how far it got).
 */
int daxfs_dma(int fd, uint64_t pin_id, uint32_t op, uint64_t offset, uint64_t length, uint64_t seq,
	      uint64_t *mismatches, uint64_t *first_mismatch);
/*
 * The same, with the whole request: d->op, pin_id, offset, length and seq in (size and the rest are
 * set here).  0 when any of it was done: d->done bytes from offset, and d->result 0, or why it
 * stopped short (-ENOENT unpinned, -ENOLINK revoked, -EFAULT invalidated); -errno when none was.
 */
int daxfs_dma_run(int fd, struct daxfs_ioc_dma *d);

/* ---- events ---- */

/*
 * Up to max events with seq >= from_seq (consuming older ones), *n of them; *next_seq (may be NULL)
 * is where to read on: a reader that asks from it each time reads every event once.
 */
int daxfs_events(int fd, uint64_t from_seq, struct daxfs_event *ev, uint32_t max, uint32_t *n, uint64_t *next_seq);
int daxfs_event_ack(int fd, uint64_t pin_id, uint64_t seq);

/* ---- the mount ---- */

int daxfs_info(int fd, struct daxfs_ioc_info *info);
int daxfs_stats(int fd, struct daxfs_ioc_stats *st);
int daxfs_list_pins(int fd, struct daxfs_pin_info **pins, uint32_t *n);
int daxfs_list_busy(int fd, struct daxfs_busy_info **busy, uint32_t *n);
int daxfs_list_waits(int fd, struct daxfs_wait_info **waits, uint32_t *n);
int daxfs_list_policies(int fd, struct daxfs_policy_desc **policies, uint32_t *n);
int daxfs_policy_get(int fd, struct daxfs_ioc_policy *p);
/*
 * Switch to policy `name` (built in, or a .so path) with params "key=value,...", or with name NULL
 * change the current policy's params.  -errno when the request failed (-EPERM: the caller may not
 * change the policy); 0 when the daemon answered, with the answer in *out: out->result 0 and the
 * policy now in force, or out->result the -errno why the change was refused (the reason in
 * out->message; nothing changed).
 */
int daxfs_policy_change(int fd, const char *name, const char *params, struct daxfs_ioc_policy *out);
/*
 * The same in one number: 0, or -errno either way, with the daemon's reason for a refused change in
 * msg ("" when the request itself failed).  daxfs_policy_change tells the two apart.
 */
int daxfs_policy_set(int fd, const char *name, const char *params, char *msg, size_t msglen);
/* Start (path), stop or query the event trace: op DAXFS_TRACE_*; out may be NULL. */
int daxfs_trace(int fd, uint32_t op, const char *path, struct daxfs_ioc_trace *out);

/* ---- tags: what devices write ---- */

/*
 * Fill buf (len bytes, a multiple of DAXFS_TAG_UNIT) with tags: the first is *t, each next one
 * DAXFS_TAG_UNIT further in the file and on the media.
 */
void daxfs_tag_fill(void *buf, uint64_t len, const struct daxfs_tag *t);
/* Is this unit a tag?  If so, out gets it. */
bool daxfs_tag_decode(const void *unit, struct daxfs_tag *out);

#ifdef __cplusplus
}
#endif

#endif
