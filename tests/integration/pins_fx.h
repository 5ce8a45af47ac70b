/* SPDX-License-Identifier: MIT */
/*
 * The fixture of the pin and policy tests (test_busy_extents.c, test_policies.c): a mounted file
 * system with a file F of FSIZE bytes open read-write and [PIN_OFF, PIN_OFF + PIN_LEN) write-pinned,
 * and the checks they share: DMA through the pin lands where its extents say, the filler file G
 * never gets a pinned block nor the pin's tags, busy extents are exactly the pin, reclaim after the
 * unpin.
 */
#ifndef DAXFS_PINS_FX_H
#define DAXFS_PINS_FX_H

#include "pins_util.h"

#define FSIZE (16 * MiB)
#define PIN_OFF (1 * MiB)
#define PIN_LEN (2 * MiB)
#define PIN_BLOCKS (PIN_LEN / BS)
#define PIN_UNITS (PIN_LEN / DAXFS_TAG_UNIT)

struct fx {
	struct mnt m;
	char f[512], g[512];
	int dfd, fd;
	uint64_t ino;
	uint64_t blocks;	/* F's st_blocks / 8 before anything was freed */
	struct daxfs_pin p;
};

/* Mount (opts) a fresh 64 MiB image, write F, open it and pin [PIN_OFF, +PIN_LEN) with pin_flags. */
void fx_setup_flags(struct fx *x, const char *name, const char *opts, uint32_t pin_flags);
void fx_setup(struct fx *x, const char *name, const char *opts);
void fx_done(struct fx *x);
/* DMA tags of seq through the pin and check they reached the media its extents name. */
void dma_write_checked(struct fx *x, uint64_t seq);
/* Tags of seq the pin's blocks do not hold. */
uint64_t verify_mismatches(struct fx *x, uint64_t seq);
/* Bytes of media the extent lists a and b share. */
uint64_t overlap_bytes(const struct daxfs_pin_extent *a, uint32_t na, const struct daxfs_pin_extent *b,
		       uint32_t nb);
/* Media bytes G maps that the pin holds. */
uint64_t g_overlap_with_pin(struct fx *x, uint64_t glen);
/* The busy list is exactly the pin's media, detached from F and still pinned. */
void check_busy_is_pin(struct fx *x);
/* Fill the file system with G; G must own none of the pinned blocks nor ever see the pin's DMA. */
void fill_and_check_isolation(struct fx *x);
/* Unpin: the busy blocks come back to the allocator, scrubbed, and the list empties. */
void unpin_and_check_reclaim(struct fx *x);

#endif
