/* SPDX-License-Identifier: MIT */
/* Superblock geometry: computed by mkfs, validated by mount and fsck. */
#ifndef DAXFS_SUPER_H
#define DAXFS_SUPER_H

#include <stddef.h>
#include <stdint.h>

#include "daxfs/format.h"
#include "media.h"

struct mkfs_params {
	uint32_t block_size;	/* 0 = 4096 */
	uint64_t ninodes;	/* 0 = one per 16 KiB */
	uint64_t journal_bytes;	/* 0 = about 1/256 of the image, 256 KiB to 8 MiB */
	const char *label;
	uint32_t root_uid, root_gid;
	const uint8_t *uuid;	/* NULL = random */
	/* Called as the bitmaps are zeroed, the one step that grows with the image; may be NULL. */
	void (*progress)(void *arg, const char *what, uint64_t done, uint64_t total);
	void *progress_arg;
};

/* Lay out a superblock for an image of `bytes`; -EINVAL with a message when it cannot fit. */
int super_layout(struct daxfs_super *sb, uint64_t bytes, const struct mkfs_params *p, char *err, size_t errlen);

/* Check magic, checksum, version and geometry against an image of `bytes`.  -errno with a message. */
int super_validate(const struct daxfs_super *sb, uint64_t bytes, char *err, size_t errlen);

/* Seal the checksum. */
void super_seal(struct daxfs_super *sb);

/*
 * Write a new, empty file system onto the mapped media: superblock and its copy, empty journal,
 * bitmaps with the metadata blocks marked, and the root directory.  Only metadata is touched, so the
 * time does not grow with the data area.
 */
int super_format(struct media *m, const struct mkfs_params *p, char *err, size_t errlen);

#endif
