/* SPDX-License-Identifier: MIT */
/*
 * libdaxfs: the daxfs control ioctls for C callers.  Every call takes a descriptor open on the
 * daxfs mount (a file for the pin calls; any file or directory for the others) and returns 0 or
 * -errno.  Paged results are gathered into one malloc'd array the caller frees.
 */
#ifndef LIBDAXFS_H
#define LIBDAXFS_H

#include <stdint.h>

#include "daxfs/ioctl.h"

struct daxfs_pin {
	uint64_t id;
	uint64_t offset;		/* the pinned range (block aligned) */
	uint64_t length;
	uint32_t nextents;
	struct daxfs_pin_extent *ext;	/* malloc'd; daxfs_pin_free */
};

/* Pin [offset, offset + length) of the file open on fd; flags: DAXFS_PIN_*. */
int daxfs_pin(int fd, uint64_t offset, uint64_t length, uint32_t flags, struct daxfs_pin *pin);
void daxfs_pin_free(struct daxfs_pin *pin);
int daxfs_unpin(int fd, uint64_t pin_id);
int daxfs_pin_status(int fd, uint64_t pin_id, struct daxfs_ioc_pin_status *st);
/* Simulated device access; mismatches (verify) may be NULL. */
int daxfs_dma(int fd, uint64_t pin_id, uint32_t op, uint64_t offset, uint64_t length, uint64_t tag,
	      uint64_t *mismatches, uint64_t *first_mismatch);

int daxfs_info(int fd, struct daxfs_ioc_info *info);
int daxfs_stats(int fd, struct daxfs_ioc_stats *st);
int daxfs_list_pins(int fd, struct daxfs_pin_info **pins, uint32_t *n);
int daxfs_list_busy(int fd, struct daxfs_busy_info **busy, uint32_t *n);
int daxfs_policy_get(int fd, struct daxfs_ioc_policy *p);
/* Set policy and admission (DAXFS_POLICY_*, DAXFS_ADMIT_*) and the two timeouts. */
int daxfs_policy_set(int fd, uint32_t policy, uint32_t admission, uint64_t grace_ms, uint64_t wait_timeout_ms);

/* Fill buf (len bytes, a multiple of DAXFS_DMA_UNIT) with the pattern a pin would write at media_off. */
void daxfs_pattern_fill(void *buf, uint64_t len, uint64_t pin_id, uint64_t tag, uint64_t media_off);
/* Is this unit a pattern unit (any pin)?  If so, out gets its fields. */
int daxfs_pattern_decode(const void *unit, struct daxfs_dma_unit *out);

#endif
