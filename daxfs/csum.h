/* SPDX-License-Identifier: MIT */
/*
 * Checksums of the on-media structures (crc32c, from ISA-L).  Daemon, mkfs and fsck all compute them
 * here, so the format has one definition of "valid".
 */
#ifndef DAXFS_CSUM_H
#define DAXFS_CSUM_H

#include <stddef.h>
#include <stdint.h>

#include "daxfs/format.h"

uint32_t csum_crc32c(uint32_t crc, const void *buf, size_t len);

/* The per-image seed: a crc of the uuid, so metadata copied from another image does not verify. */
uint32_t csum_fs_seed(const struct daxfs_super *sb);

uint32_t csum_super(const struct daxfs_super *sb);
uint32_t csum_inode(uint32_t seed, uint64_t ino, const struct daxfs_inode *di);
uint32_t csum_extent_block(uint32_t seed, uint64_t blk, const struct daxfs_extent_block *eb);
uint32_t csum_dirent(uint32_t seed, uint64_t dir_ino, const struct daxfs_dirent *de);
uint32_t csum_xattr(uint32_t seed, uint64_t ino, const struct daxfs_xattr_block *xb);
uint32_t csum_slot_block(uint32_t seed, uint64_t blk, const struct daxfs_slot_block *sb);
uint32_t csum_slot(uint32_t seed, uint64_t blk, uint32_t index, const struct daxfs_slot *s);
uint32_t csum_journal(const struct daxfs_journal_header *jh, const void *records);

#endif
