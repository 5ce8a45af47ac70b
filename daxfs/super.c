/* SPDX-License-Identifier: MIT */
#include "super.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

#include "csum.h"
#include "util.h"

#define MIN_JOURNAL (256u << 10)
#define MAX_JOURNAL (8u << 20)
#define MIN_DATA_BLOCKS 64

int super_layout(struct daxfs_super *sb, uint64_t bytes, const struct mkfs_params *p, char *err, size_t errlen)
{
	uint32_t bs = p->block_size ? p->block_size : DAXFS_MIN_BLOCK_SIZE;

	memset(sb, 0, sizeof(*sb));
	if (!IS_POW2(bs) || bs < DAXFS_MIN_BLOCK_SIZE || bs > DAXFS_MAX_BLOCK_SIZE) {
		snprintf(err, errlen, "block size %u: must be a power of two from %u to %u", bs,
			 DAXFS_MIN_BLOCK_SIZE, DAXFS_MAX_BLOCK_SIZE);
		return -EINVAL;
	}
	uint64_t nblocks = bytes / bs;
	uint64_t ipb = bs / DAXFS_INODE_SIZE;
	uint64_t ninodes = p->ninodes ? p->ninodes : MAX(bytes / 16384, 64);
	uint64_t jbytes = p->journal_bytes ? p->journal_bytes : MIN(MAX(bytes / 256, MIN_JOURNAL), MAX_JOURNAL);

	ninodes = ROUND_UP(ninodes, ipb);
	if (ninodes > UINT32_MAX) {
		snprintf(err, errlen, "%llu inodes: at most %u", (unsigned long long)ninodes, UINT32_MAX);
		return -EINVAL;
	}
	if (jbytes < MIN_JOURNAL || jbytes > (1u << 30)) {
		snprintf(err, errlen, "journal of %llu bytes: must be from %u KiB to 1 GiB",
			 (unsigned long long)jbytes, MIN_JOURNAL >> 10);
		return -EINVAL;
	}
	sb->magic = DAXFS_SB_MAGIC;
	sb->version_major = DAXFS_VERSION_MAJOR;
	sb->version_minor = DAXFS_VERSION_MINOR;
	sb->block_size = bs;
	sb->inode_size = DAXFS_INODE_SIZE;
	sb->nblocks = nblocks;
	sb->ninodes = ninodes;
	sb->journal_start = 1;
	sb->journal_blocks = DIV_ROUND_UP(jbytes, bs);
	sb->ibitmap_start = sb->journal_start + sb->journal_blocks;
	sb->ibitmap_blocks = DIV_ROUND_UP(ninodes, 8ull * bs);
	sb->bbitmap_start = sb->ibitmap_start + sb->ibitmap_blocks;
	sb->bbitmap_blocks = DIV_ROUND_UP(nblocks, 8ull * bs);
	sb->itable_start = sb->bbitmap_start + sb->bbitmap_blocks;
	sb->itable_blocks = ninodes / ipb;
	sb->data_start = sb->itable_start + sb->itable_blocks;
	sb->backup_sb = nblocks - 1;
	sb->root_ino = DAXFS_ROOT_INO;
	sb->state = DAXFS_STATE_CLEAN;
	if (nblocks < 2 || sb->data_start + MIN_DATA_BLOCKS > sb->backup_sb) {
		uint64_t need = (sb->data_start + MIN_DATA_BLOCKS + 1) * bs;

		snprintf(err, errlen, "image of %llu bytes is too small: %llu inodes and a %llu KiB journal need at least %llu bytes",
			 (unsigned long long)bytes, (unsigned long long)ninodes,
			 (unsigned long long)(sb->journal_blocks * bs >> 10), (unsigned long long)need);
		return -EINVAL;
	}
	if (p->label)
		strncpy(sb->label, p->label, sizeof(sb->label) - 1);
	return 0;
}

void super_seal(struct daxfs_super *sb)
{
	sb->crc = csum_super(sb);
}

int super_validate(const struct daxfs_super *sb, uint64_t bytes, char *err, size_t errlen)
{
	if (sb->magic != DAXFS_SB_MAGIC) {
		snprintf(err, errlen, "no daxfs superblock (bad magic %016llx)", (unsigned long long)sb->magic);
		return -EINVAL;
	}
	uint32_t crc = csum_super(sb);
	if (crc != sb->crc) {
		snprintf(err, errlen, "superblock checksum mismatch (stored %08x, computed %08x)", sb->crc, crc);
		return -EUCLEAN;
	}
	if (sb->version_major != DAXFS_VERSION_MAJOR) {
		snprintf(err, errlen, "format version %u.%u is not supported (this daxfs reads %u.x)",
			 sb->version_major, sb->version_minor, DAXFS_VERSION_MAJOR);
		return -EPROTONOSUPPORT;
	}
	if (sb->feature_incompat) {
		snprintf(err, errlen, "unknown incompatible features %#x", sb->feature_incompat);
		return -EPROTONOSUPPORT;
	}
	uint32_t bs = sb->block_size;
	if (!IS_POW2(bs) || bs < DAXFS_MIN_BLOCK_SIZE || bs > DAXFS_MAX_BLOCK_SIZE ||
	    sb->inode_size != DAXFS_INODE_SIZE) {
		snprintf(err, errlen, "bad block size %u or inode size %u", bs, sb->inode_size);
		return -EUCLEAN;
	}
	if (sb->nblocks < 2 || sb->nblocks > bytes / bs) {
		snprintf(err, errlen, "superblock says %llu blocks of %u bytes but the image has %llu bytes (truncated?)",
			 (unsigned long long)sb->nblocks, bs, (unsigned long long)bytes);
		return -EUCLEAN;
	}
	/* Regions in order, each the size its contents need, all before the backup superblock. */
	uint64_t ipb = bs / DAXFS_INODE_SIZE;
	const char *bad = NULL;
	if (sb->journal_start != 1 || sb->journal_blocks * bs < MIN_JOURNAL)
		bad = "journal";
	else if (sb->ibitmap_start != sb->journal_start + sb->journal_blocks ||
		 sb->ibitmap_blocks != DIV_ROUND_UP(sb->ninodes, 8ull * bs))
		bad = "inode bitmap";
	else if (sb->bbitmap_start != sb->ibitmap_start + sb->ibitmap_blocks ||
		 sb->bbitmap_blocks != DIV_ROUND_UP(sb->nblocks, 8ull * bs))
		bad = "block bitmap";
	else if (sb->ninodes == 0 || sb->ninodes > UINT32_MAX || sb->ninodes % ipb ||
		 sb->itable_start != sb->bbitmap_start + sb->bbitmap_blocks || sb->itable_blocks != sb->ninodes / ipb)
		bad = "inode table";
	else if (sb->data_start != sb->itable_start + sb->itable_blocks || sb->data_start >= sb->nblocks - 1)
		bad = "data area";
	else if (sb->backup_sb != sb->nblocks - 1)
		bad = "backup superblock";
	else if (sb->root_ino != DAXFS_ROOT_INO)
		bad = "root inode";
	else if (sb->orphan_head < sb->data_start || sb->orphan_head >= sb->backup_sb)
		bad = "orphan list";
	else if (sb->busy_head < sb->data_start || sb->busy_head >= sb->backup_sb || sb->busy_head == sb->orphan_head)
		bad = "busy extent list";
	else if ((sb->feature_compat & DAXFS_FEATURE_COMPAT_HOLDERS) &&
		 (sb->holder_head < sb->data_start || sb->holder_head >= sb->backup_sb ||
		  sb->holder_head == sb->orphan_head || sb->holder_head == sb->busy_head))
		bad = "holder list";
	if (bad) {
		snprintf(err, errlen, "superblock geometry is inconsistent (%s)", bad);
		return -EUCLEAN;
	}
	return 0;
}

static void set_bits(uint8_t *map, uint64_t first, uint64_t n)
{
	for (uint64_t b = first; b < first + n; b++)
		map[b / 8] |= (uint8_t)(1u << (b % 8));
}

int super_format(struct media *m, const struct mkfs_params *p, char *err, size_t errlen)
{
	struct daxfs_super sb;
	struct timespec now;
	int ret;

	ret = super_layout(&sb, m->size, p, err, errlen);
	if (ret)
		return ret;
	uint32_t bs = sb.block_size;
	if (p->uuid) {
		memcpy(sb.uuid, p->uuid, sizeof(sb.uuid));
	} else if (getrandom(sb.uuid, sizeof(sb.uuid), 0) != sizeof(sb.uuid)) {
		snprintf(err, errlen, "getrandom: %s", strerror(errno));
		return -errno;
	}
	sb.uuid[6] = (uint8_t)((sb.uuid[6] & 0x0f) | 0x40);	/* RFC 4122 version 4 */
	sb.uuid[8] = (uint8_t)((sb.uuid[8] & 0x3f) | 0x80);
	clock_gettime(CLOCK_REALTIME, &now);
	sb.mkfs_time = now.tv_sec;
	sb.write_time = now.tv_sec;

	/* Zero the regions whose zero state means "empty"; the inode table and data need not be. */
	char *base = m->base;
	media_fill(m, base, 0, bs);
	media_fill(m, base + sb.journal_start * bs, 0, bs);
	size_t bitmaps = (sb.ibitmap_blocks + sb.bbitmap_blocks) * (size_t)bs;	/* 40 MiB for 1 TiB */
	for (size_t off = 0, n; off < bitmaps; off += n) {
		n = MIN(bitmaps - off, (size_t)4 << 20);
		media_fill(m, base + sb.ibitmap_start * bs + off, 0, n);
		if (p->progress)
			p->progress(p->progress_arg, "zeroing bitmaps", off + n, bitmaps);
	}

	/* Metadata, the three slot-list heads and the backup superblock are in use; so is the root inode. */
	uint8_t *bbm = (uint8_t *)base + sb.bbitmap_start * bs;
	uint8_t *ibm = (uint8_t *)base + sb.ibitmap_start * bs;
	sb.orphan_head = sb.data_start;
	sb.busy_head = sb.data_start + 1;
	sb.holder_head = sb.data_start + 2;
	sb.feature_compat |= DAXFS_FEATURE_COMPAT_HOLDERS;
	set_bits(bbm, 0, sb.data_start + 3);
	set_bits(bbm, sb.backup_sb, 1);
	media_flush(m, bbm, DIV_ROUND_UP(sb.data_start + 3, 8));
	media_flush(m, bbm + sb.backup_sb / 8, 1);
	set_bits(ibm, 0, 1);
	media_flush(m, ibm, 1);

	uint32_t seed = csum_fs_seed(&sb);
	uint32_t kinds[3] = { DAXFS_SLOTS_ORPHAN, DAXFS_SLOTS_BUSY, DAXFS_SLOTS_HOLDER };
	for (int i = 0; i < 3; i++) {
		uint64_t blk = sb.data_start + (uint64_t)i;
		char *dst = base + blk * bs;
		struct daxfs_slot_block hdr = { .magic = DAXFS_SLOT_MAGIC, .kind = kinds[i] };

		media_fill(m, dst, 0, bs);
		hdr.crc = csum_slot_block(seed, blk, &hdr);
		media_copy(m, dst, &hdr, sizeof(hdr));
	}
	struct daxfs_inode root = {
		.mode = S_IFDIR | 0755,
		.nlink = 2,
		.uid = p->root_uid,
		.gid = p->root_gid,
		.atime_sec = now.tv_sec, .mtime_sec = now.tv_sec, .ctime_sec = now.tv_sec, .btime_sec = now.tv_sec,
		.atime_nsec = (uint32_t)now.tv_nsec, .mtime_nsec = (uint32_t)now.tv_nsec,
		.ctime_nsec = (uint32_t)now.tv_nsec, .btime_nsec = (uint32_t)now.tv_nsec,
		.parent = DAXFS_ROOT_INO,
		.generation = 1,
	};
	root.crc = csum_inode(seed, DAXFS_ROOT_INO, &root);
	media_copy(m, base + sb.itable_start * bs, &root, sizeof(root));

	struct daxfs_journal_header jh = { .magic = DAXFS_JOURNAL_MAGIC };
	jh.crc = csum_journal(&jh, NULL);
	media_copy(m, base + sb.journal_start * bs, &jh, sizeof(jh));

	/* The superblocks go last: until they are durable the image is not a daxfs. */
	media_drain(m);
	super_seal(&sb);
	media_copy(m, base + sb.backup_sb * bs, &sb, sizeof(sb));
	media_copy(m, base, &sb, sizeof(sb));
	media_drain(m);
	return 0;
}
