/* SPDX-License-Identifier: MIT */
#include "csum.h"

#include <isa-l/crc.h>
#include <limits.h>

/* ISA-L's crc32_iscsi works on the raw register: invert in and out to get the standard crc32c. */
uint32_t csum_crc32c(uint32_t crc, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	uint32_t reg = ~crc;

	while (len > 0) {
		int chunk = len > INT_MAX ? INT_MAX : (int)len;

		reg = crc32_iscsi((unsigned char *)p, chunk, reg);
		p += chunk;
		len -= (size_t)chunk;
	}
	return ~reg;
}

static uint32_t crc_u64(uint32_t crc, uint64_t v)
{
	return csum_crc32c(crc, &v, sizeof(v));
}

uint32_t csum_fs_seed(const struct daxfs_super *sb)
{
	return csum_crc32c(0, sb->uuid, sizeof(sb->uuid));
}

uint32_t csum_super(const struct daxfs_super *sb)
{
	size_t start = offsetof(struct daxfs_super, crc) + sizeof(sb->crc);

	return csum_crc32c(0, (const char *)sb + start, sizeof(*sb) - start);
}

uint32_t csum_inode(uint32_t seed, uint64_t ino, const struct daxfs_inode *di)
{
	return csum_crc32c(crc_u64(seed, ino), di, offsetof(struct daxfs_inode, crc));
}

uint32_t csum_extent_block(uint32_t seed, uint64_t blk, const struct daxfs_extent_block *eb)
{
	size_t len = sizeof(*eb) + (size_t)eb->count * sizeof(struct daxfs_extent);

	return csum_crc32c(crc_u64(seed, blk), (const char *)eb + 4, len - 4);
}

uint32_t csum_dirent(uint32_t seed, uint64_t dir_ino, const struct daxfs_dirent *de)
{
	size_t len = DAXFS_DIRENT_HDR + (de->ino ? de->name_len : 0);

	return csum_crc32c(crc_u64(seed, dir_ino), (const char *)de + 4, len - 4);
}

uint32_t csum_xattr(uint32_t seed, uint64_t ino, const struct daxfs_xattr_block *xb)
{
	return csum_crc32c(crc_u64(seed, ino), (const char *)xb + 4, xb->used - 4);
}

uint32_t csum_slot_block(uint32_t seed, uint64_t blk, const struct daxfs_slot_block *sb)
{
	return csum_crc32c(crc_u64(seed, blk), (const char *)sb + 4, sizeof(*sb) - 4);
}

uint32_t csum_slot(uint32_t seed, uint64_t blk, uint32_t index, const struct daxfs_slot *s)
{
	return csum_crc32c(crc_u64(crc_u64(seed, blk), index), (const char *)s + 4, sizeof(*s) - 4);
}

uint32_t csum_journal(const struct daxfs_journal_header *jh, const void *records)
{
	uint32_t crc = csum_crc32c(0, (const char *)jh + 4, sizeof(*jh) - 4);

	return csum_crc32c(crc, records, jh->len);
}
