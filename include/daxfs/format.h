/* SPDX-License-Identifier: MIT */
/*
 * daxfs on-media format, version 1.
 *
 * The image is an array of blocks.  Block 0 holds the superblock; the last block holds a copy of it.
 * Between them, in this order: the journal, the inode bitmap, the block bitmap, the inode table and the
 * data area.  Every metadata structure carries a crc32c; all integers are little-endian (the format is
 * only defined for little-endian hosts, like the persistent-memory platforms it targets).
 *
 * Metadata only ever changes through the journal (a redo log: records are written and checksummed in
 * the journal, then applied in place), so after a crash the image is the state of the last committed
 * transaction.  A structure reads as empty when it is all zeroes: a fresh sparse image needs only the
 * superblock, the root inode and a few bitmap bits written.
 */
#ifndef DAXFS_FORMAT_H
#define DAXFS_FORMAT_H

#include <stdint.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "daxfs images are little-endian; big-endian hosts are not supported"
#endif

#define DAXFS_SB_MAGIC		0x0031765346584144ULL	/* "DAXFSv1\0" */
#define DAXFS_VERSION_MAJOR	1	/* incompatible format changes */
#define DAXFS_VERSION_MINOR	1	/* compatible additions: 1 added the holder list */

#define DAXFS_MIN_BLOCK_SIZE	4096u
#define DAXFS_MAX_BLOCK_SIZE	32768u	/* directory record lengths are 16 bits */
#define DAXFS_INODE_SIZE	256u
#define DAXFS_ROOT_INO		1u	/* inode numbers start at 1, like FUSE's root id */
#define DAXFS_NAME_MAX		255u
#define DAXFS_LINK_MAX		65000u
#define DAXFS_MAX_FILE_SIZE	(1ULL << 44)	/* 16 TiB */
#define DAXFS_HUGE_ALIGN	(2u << 20)	/* large files are placed 2 MiB aligned */

/* superblock state */
#define DAXFS_STATE_CLEAN	1u	/* unmounted cleanly: journal empty, no orphans */
#define DAXFS_STATE_DIRTY	2u	/* mounted, or the daemon died */

/*
 * Superblock, at byte 0 of block 0 and of the last block.  crc covers the structure after the crc field.
 */
struct daxfs_super {
	uint64_t magic;
	uint32_t crc;
	uint16_t version_major;
	uint16_t version_minor;
	uint32_t block_size;
	uint32_t inode_size;
	uint64_t nblocks;		/* blocks in the file system, superblock copies included */
	uint64_t ninodes;
	uint64_t journal_start;		/* first block of each region, and its length in blocks */
	uint64_t journal_blocks;
	uint64_t ibitmap_start;
	uint64_t ibitmap_blocks;
	uint64_t bbitmap_start;
	uint64_t bbitmap_blocks;
	uint64_t itable_start;
	uint64_t itable_blocks;
	uint64_t data_start;
	uint64_t backup_sb;		/* block of the superblock copy (the last block) */
	uint64_t root_ino;
	uint64_t orphan_head;		/* first block of the orphan slot list (inodes unlinked while open) */
	uint64_t busy_head;		/* first block of the busy-extent slot list */
	uint32_t state;			/* DAXFS_STATE_* */
	uint32_t mount_count;
	int64_t mkfs_time;
	int64_t mount_time;
	int64_t write_time;
	uint32_t feature_compat;
	uint32_t feature_incompat;	/* a set bit we do not know: refuse to mount */
	uint32_t feature_ro_compat;	/* a set bit we do not know: mount read-only only */
	uint32_t reserved0;
	uint8_t uuid[16];
	char label[64];			/* NUL-padded */
	uint64_t holder_head;		/* with DAXFS_FEATURE_COMPAT_HOLDERS: the holder slot list */
	uint8_t reserved[232];
};

/* feature_compat bits: an image without them mounts, without what they add */
#define DAXFS_FEATURE_COMPAT_HOLDERS	0x1	/* holder_head: who held write pins, for crash quarantine */
_Static_assert(sizeof(struct daxfs_super) == 512, "superblock is 512 bytes");

/*
 * Extent: blocks [lblk, lblk + len) of a file live at media blocks [pblk, pblk + len).
 */
struct daxfs_extent {
	uint64_t lblk;
	uint64_t pblk;
	uint32_t len;
	uint32_t flags;			/* reserved, 0 */
};
_Static_assert(sizeof(struct daxfs_extent) == 24, "extent is 24 bytes");

#define DAXFS_INLINE_EXTENTS	5
#define DAXFS_INLINE_SYMLINK	120	/* longer targets live in one data block */

/* inode flags */
#define DAXFS_IF_INLINE_SYMLINK	0x0001

/*
 * Inode, DAXFS_INODE_SIZE bytes in the inode table; inode n is at index n - 1.  A free inode's
 * record is meaningless (the inode bitmap says which are in use).  crc covers bytes [0, 252) and is
 * seeded with the file-system seed and the inode number, so a record written to the wrong slot is
 * caught.
 */
struct daxfs_inode {
	uint16_t mode;
	uint16_t flags;			/* DAXFS_IF_* */
	uint32_t nlink;
	uint32_t uid;
	uint32_t gid;
	uint64_t size;
	uint64_t blocks;		/* blocks owned: data, extent and xattr blocks */
	int64_t atime_sec;
	int64_t mtime_sec;
	int64_t ctime_sec;
	int64_t btime_sec;
	uint32_t atime_nsec;
	uint32_t mtime_nsec;
	uint32_t ctime_nsec;
	uint32_t btime_nsec;
	uint64_t rdev;
	uint64_t parent;		/* directories: the inode of ".." */
	uint64_t xattr_blk;		/* 0 when the inode has no extended attributes */
	uint64_t ext_next;		/* first extent block after the inline extents, 0 when none */
	uint64_t reserved2;
	uint32_t generation;
	uint16_t ext_count;		/* inline extents in use */
	uint16_t reserved0;
	union {
		struct daxfs_extent ext[DAXFS_INLINE_EXTENTS];
		char symlink[DAXFS_INLINE_SYMLINK];
	} u;
	uint32_t reserved1;
	uint32_t crc;
};
_Static_assert(sizeof(struct daxfs_inode) == DAXFS_INODE_SIZE, "inode size");

/*
 * Extent block: more extents of one file, chained from inode.ext_next in logical order.  crc covers
 * bytes [4, 32 + 24 * count), seeded with the file-system seed and the block number.
 */
#define DAXFS_EXTENT_MAGIC	0x42455844u	/* "DXEB" */
struct daxfs_extent_block {
	uint32_t crc;
	uint32_t magic;
	uint64_t ino;			/* owner, for the checker */
	uint64_t next;			/* next extent block, 0 at the end */
	uint32_t count;
	uint32_t reserved;
	struct daxfs_extent ext[];
};
#define DAXFS_EXTENTS_PER_BLOCK(bs) (((bs) - sizeof(struct daxfs_extent_block)) / sizeof(struct daxfs_extent))

/*
 * Directory data: each block of a directory is a chain of records that covers it exactly (rec_len
 * leads to the next one).  A record with ino 0 is free space.  crc covers bytes [4, 16 + name_len)
 * and is seeded with the file-system seed and the directory's inode number.
 */
struct daxfs_dirent {
	uint32_t crc;
	uint16_t rec_len;		/* multiple of 8 */
	uint8_t name_len;
	uint8_t type;			/* DT_* from <dirent.h> */
	uint64_t ino;
	char name[];			/* name_len bytes, not NUL-terminated */
};
#define DAXFS_DIRENT_HDR	16u
#define DAXFS_DIRENT_LEN(name_len) ((DAXFS_DIRENT_HDR + (name_len) + 7u) & ~7u)

/*
 * Extended attributes of one inode live in one block: a header, then entries packed on 4-byte
 * boundaries.  crc covers bytes [4, used), seeded with the file-system seed and the inode number.
 */
#define DAXFS_XATTR_MAGIC	0x41585844u	/* "DXXA" */
#define DAXFS_XATTR_USER	1
#define DAXFS_XATTR_TRUSTED	2
#define DAXFS_XATTR_SECURITY	3
struct daxfs_xattr_block {
	uint32_t crc;
	uint32_t magic;
	uint64_t ino;
	uint32_t used;			/* bytes, header included */
	uint32_t count;
	uint64_t reserved;
};
struct daxfs_xattr_entry {
	uint8_t name_index;		/* DAXFS_XATTR_* namespace; the prefix is not stored */
	uint8_t name_len;
	uint16_t value_len;
	char name[];			/* then the value */
};
#define DAXFS_XATTR_ENTRY_LEN(name_len, value_len) \
	((sizeof(struct daxfs_xattr_entry) + (name_len) + (value_len) + 3u) & ~3u)

/*
 * Slot lists: persistent sets of small records (orphan inodes, busy extents, pin holders).  Blocks are chained
 * from a head block that mkfs places and that never moves.  The block header's crc covers its bytes
 * [4, 32); each slot's crc covers the slot's bytes [4, 32), seeded with the file-system seed, the
 * block number and the slot index.  An all-zero slot is free.
 */
#define DAXFS_SLOT_MAGIC	0x4c535844u	/* "DXSL" */
#define DAXFS_SLOTS_ORPHAN	1u	/* v[0]: inode number */
#define DAXFS_SLOTS_BUSY	2u	/* v[0]: first block, v[1]: blocks, v[2]: the inode it left */
#define DAXFS_SLOTS_HOLDER	3u	/* v[0]: inode, v[1]: the holder's start time (clock ticks since
					   boot), v[2]: its pid: a process holding write pins on the inode */
struct daxfs_slot_block {
	uint32_t crc;
	uint32_t magic;
	uint32_t kind;			/* DAXFS_SLOTS_* */
	uint32_t reserved0;
	uint64_t next;			/* next block of the list, 0 at the end */
	uint64_t reserved1;
};
struct daxfs_slot {
	uint32_t crc;
	uint32_t reserved;
	uint64_t v[3];
};
#define DAXFS_SLOTS_PER_BLOCK(bs) (((bs) - sizeof(struct daxfs_slot_block)) / sizeof(struct daxfs_slot))

/*
 * Journal: one header block followed by the log area.  A committed transaction is the header plus
 * `len` bytes of records, covered by one crc; records are (offset, length, bytes) redo images.  A
 * header with len 0, a bad crc or a wrong sequence is an empty journal: nothing to replay.
 */
#define DAXFS_JOURNAL_MAGIC	0x4c4a5844u	/* "DXJL" */
struct daxfs_journal_header {
	uint32_t crc;			/* over bytes [4, 32) of the header and the len bytes of records */
	uint32_t magic;
	uint64_t seq;
	uint32_t nrec;
	uint32_t len;
	uint64_t reserved;
};
struct daxfs_journal_record {
	uint64_t off;			/* byte offset in the image */
	uint32_t len;
	uint32_t reserved;
	/* len bytes, padded to 8 */
};
#define DAXFS_JREC_LEN(len) (sizeof(struct daxfs_journal_record) + (((len) + 7u) & ~7u))

#endif /* DAXFS_FORMAT_H */
