/* SPDX-License-Identifier: MIT */
/*
 * The daxfs control ABI: ioctls on any file or directory of a daxfs mount.
 *
 * FUSE passes only "restricted" ioctls from an ordinary file system: the kernel takes the sizes of
 * the argument from the command number, copies at most 16383 bytes each way, and cannot follow
 * pointers.  So every argument is one fixed-size structure, encoded in the command with _IOR, _IOW
 * or _IOWR, starting with a `size` field the caller sets to sizeof(the structure); results that may
 * be long come in pages (a start index in, a count out).
 *
 * A pin is a long-term reference to the media blocks behind a range of a file, what get_user_pages
 * or ibv_reg_mr takes on a DAX mapping.  It belongs to the open file it was taken on: only that file
 * may use or drop it (another file's pin id gives EBADF), and all its pins drop when it is released.
 *
 * Errors: EINVAL malformed arguments (wrong size, reserved fields not zero, range outside the file or
 * the pin); ENOTTY unknown command; ENOENT no such pin; EBADF the pin belongs to another open file,
 * or a write pin on a file not open for writing; EOPNOTSUPP long-term pin refused by the admission
 * policy; EMFILE / ENFILE the per-file / total pin limit; ENOLINK the pin was revoked; EACCES a
 * write DMA through a read-only pin; EPERM changing the policy without privilege.
 */
#ifndef DAXFS_IOCTL_H
#define DAXFS_IOCTL_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define DAXFS_IOC_MAGIC 0xDF

/* ---- pins ---- */

#define DAXFS_PIN_WRITE		0x1	/* the holder will write (DMA to the media) */
#define DAXFS_PIN_LONGTERM	0x2	/* FOLL_LONGTERM: held indefinitely, like an RDMA registration */

/* A contiguous piece of a pin: file bytes [file_off, file_off + len) live at media bytes [media_off, ...). */
struct daxfs_pin_extent {
	__u64 file_off;
	__u64 media_off;
	__u64 len;
};

#define DAXFS_PIN_EXT_MAX 128	/* extents per reply; more with DAXFS_IOC_PIN_EXTENTS */

/*
 * Pin [offset, offset + length) of the open file, which must lie inside the file (beyond EOF:
 * EINVAL).  The range is widened to whole blocks; holes in it are allocated and zeroed, as a DAX
 * write fault would.
 */
struct daxfs_ioc_pin {
	__u32 size;			/* in: sizeof(struct daxfs_ioc_pin) */
	__u32 flags;			/* in: DAXFS_PIN_* */
	__u64 offset;			/* in */
	__u64 length;			/* in */
	__u64 pin_id;			/* out */
	__u64 pin_offset;		/* out: the pinned range, block aligned */
	__u64 pin_length;		/* out */
	__u32 nextents;			/* out: extents of the whole pin */
	__u32 nreturned;		/* out: extents in ext[] (the first ones) */
	__u64 reserved[2];		/* zero */
	struct daxfs_pin_extent ext[DAXFS_PIN_EXT_MAX];
};

struct daxfs_ioc_unpin {
	__u32 size;
	__u32 reserved;			/* zero */
	__u64 pin_id;
};

/* The extents of a pin from index `start`. */
struct daxfs_ioc_pin_extents {
	__u32 size;
	__u32 start;			/* in */
	__u64 pin_id;			/* in */
	__u32 nextents;			/* out: extents of the whole pin */
	__u32 nreturned;		/* out */
	struct daxfs_pin_extent ext[DAXFS_PIN_EXT_MAX];
};

#define DAXFS_PIN_ACTIVE	1
#define DAXFS_PIN_REVOKING	2	/* lease broken: unpin before the deadline or lose the pin */
#define DAXFS_PIN_REVOKED	3	/* the blocks were taken back; only DAXFS_IOC_UNPIN is allowed */

struct daxfs_ioc_pin_status {
	__u32 size;
	__u32 state;			/* out: DAXFS_PIN_* state */
	__u64 pin_id;			/* in */
	__u64 offset;			/* out: the pinned file range */
	__u64 length;			/* out */
	__u32 flags;			/* out */
	__u32 nextents;			/* out */
	__u64 deadline_ns;		/* out: REVOKING: nanoseconds left before revocation */
};

/* ---- simulated device access through a pin ---- */

#define DAXFS_DMA_WRITE_PATTERN	1	/* fill with pattern units */
#define DAXFS_DMA_VERIFY_PATTERN 2	/* count units that do not hold the expected pattern */
#define DAXFS_DMA_ZERO		3

/*
 * Pattern unit, DAXFS_DMA_UNIT bytes at every unit-aligned media offset: a write through a pin can be
 * traced back to its pin, tag and media location wherever it lands.
 */
#define DAXFS_DMA_UNIT		32
#define DAXFS_DMA_MAGIC		0x414d44534658414cULL	/* "LAXFSDMA" */
struct daxfs_dma_unit {
	__u64 magic;
	__u64 pin_id;
	__u64 tag;
	__u64 media_off;
};

/*
 * The simulated device reads or writes the media blocks the pin holds, whatever the file maps there
 * now.  offset and length are bytes within the pin, multiples of DAXFS_DMA_UNIT.
 */
struct daxfs_ioc_dma {
	__u32 size;
	__u32 op;			/* in: DAXFS_DMA_* */
	__u64 pin_id;			/* in */
	__u64 offset;			/* in */
	__u64 length;			/* in */
	__u64 tag;			/* in: recorded in (or expected from) every unit */
	__u64 mismatches;		/* out (verify): units that differ */
	__u64 first_mismatch;		/* out (verify): pin offset of the first, or ~0 */
	__u64 reserved[2];
};

/* ---- information ---- */

#define DAXFS_MEDIA_FILE	1
#define DAXFS_MEDIA_DEVDAX	2
#define DAXFS_MEDIA_BLOCKDEV	3

struct daxfs_ioc_info {
	__u32 size;
	__u32 block_size;		/* out */
	__u64 media_size;		/* out: bytes */
	__u64 data_offset;		/* out: first byte of the data area */
	__u8 uuid[16];			/* out */
	__u32 is_pmem;			/* out: 1 when persistence uses cache flushes, 0 msync */
	__u32 media_kind;		/* out: DAXFS_MEDIA_* */
	char media_path[256];		/* out: NUL-terminated */
	char label[64];			/* out */
};

struct daxfs_ioc_stats {
	__u32 size;
	__u32 reserved;
	__u64 blocks;			/* data-area blocks */
	__u64 free_blocks;
	__u64 pins_active;
	__u64 pins_created;
	__u64 pins_released;
	__u64 pins_revoked;
	__u64 pins_refused;		/* admission policy and limits */
	__u64 pinned_blocks;		/* distinct media blocks with a pin */
	__u64 busy_extents;
	__u64 busy_blocks;
	__u64 busy_created;		/* extents ever made busy */
	__u64 reclaim_queued;		/* extents waiting for or in reclaim */
	__u64 reclaimed_extents;
	__u64 reclaimed_blocks;
	__u64 reclaim_latency_ns_total;	/* last unpin to space back in the allocator, summed */
	__u64 reclaim_latency_ns_max;
	__u64 frees_waited;		/* wait/revoke: frees that waited for pins */
	__u64 free_wait_ns_total;
	__u64 frees_failed;		/* fail: operations refused with EBUSY */
	__u64 unsafe_frees;		/* unsafe: pinned blocks freed anyway */
	__u64 unsafe_blocks;
	__u64 dma_ops;
	__u64 dma_bytes;
	__u64 enospc_waits;		/* allocations that waited for reclaim */
	__u64 reserved2[8];
};

/* ---- listings, paged ---- */

struct daxfs_pin_info {
	__u64 pin_id;
	__u64 ino;
	__u64 offset;
	__u64 length;
	__u32 flags;
	__u32 state;
	__s32 pid;			/* the process that took the pin */
	__u32 nextents;
	__u64 age_ns;
};

#define DAXFS_LIST_PINS_MAX 200
struct daxfs_ioc_list_pins {
	__u32 size;
	__u32 start;			/* in: index of the first pin (in pin id order) */
	__u32 count;			/* out: entries in pins[] */
	__u32 total;			/* out: pins in the table */
	struct daxfs_pin_info pins[DAXFS_LIST_PINS_MAX];
};

#define DAXFS_BUSY_PENDING	1	/* detached, transaction not yet committed */
#define DAXFS_BUSY_PINNED	2	/* waiting for its pins to drop */
#define DAXFS_BUSY_RECLAIMING	3	/* queued for or in reclaim */

struct daxfs_busy_info {
	__u64 media_off;
	__u64 len;
	__u64 ino;			/* the file it was detached from */
	__u32 state;			/* DAXFS_BUSY_* */
	__u32 pins;			/* highest pin count over the range */
	__u64 age_ns;
};

#define DAXFS_LIST_BUSY_MAX 300
struct daxfs_ioc_list_busy {
	__u32 size;
	__u32 start;			/* in: index of the first extent (in media order) */
	__u32 count;			/* out */
	__u32 total;			/* out */
	struct daxfs_busy_info busy[DAXFS_LIST_BUSY_MAX];
};

/* ---- policy ---- */

#define DAXFS_POLICY_BUSY	1	/* detach pinned blocks, keep them busy, reclaim after the last unpin */
#define DAXFS_POLICY_WAIT	2	/* truncate waits until the blocks are unpinned */
#define DAXFS_POLICY_FAIL	3	/* truncate fails with EBUSY */
#define DAXFS_POLICY_REVOKE	4	/* break the lease; revoke the pins after the grace period */
#define DAXFS_POLICY_UNSAFE	5	/* free pinned blocks anyway: the corruption baseline */

#define DAXFS_ADMIT_ALL		1
#define DAXFS_ADMIT_DENY_LONGTERM 2	/* refuse DAXFS_PIN_LONGTERM (what Linux does for fsdax) */

#define DAXFS_POLICY_GET	0
#define DAXFS_POLICY_SET	1

struct daxfs_ioc_policy {
	__u32 size;
	__u32 op;			/* in: DAXFS_POLICY_GET or _SET */
	__u32 policy;			/* in (set) / out: DAXFS_POLICY_* */
	__u32 admission;		/* in (set) / out: DAXFS_ADMIT_* */
	__u64 grace_ms;			/* revoke: lease-break grace period */
	__u64 wait_timeout_ms;		/* wait, revoke: 0 = wait for ever */
	__u64 reserved[4];
};

/* Names of the constants above, for tools and logs. */
static inline const char *daxfs_policy_str(__u32 p)
{
	switch (p) {
	case DAXFS_POLICY_BUSY: return "busy";
	case DAXFS_POLICY_WAIT: return "wait";
	case DAXFS_POLICY_FAIL: return "fail";
	case DAXFS_POLICY_REVOKE: return "revoke";
	case DAXFS_POLICY_UNSAFE: return "unsafe";
	}
	return "?";
}

static inline const char *daxfs_admission_str(__u32 a)
{
	return a == DAXFS_ADMIT_DENY_LONGTERM ? "deny-longterm" : a == DAXFS_ADMIT_ALL ? "allow" : "?";
}

static inline const char *daxfs_pin_state_str(__u32 s)
{
	return s == DAXFS_PIN_ACTIVE ? "active" : s == DAXFS_PIN_REVOKING ? "revoking"
	       : s == DAXFS_PIN_REVOKED ? "revoked" : "?";
}

static inline const char *daxfs_busy_state_str(__u32 s)
{
	return s == DAXFS_BUSY_PENDING ? "pending" : s == DAXFS_BUSY_PINNED ? "pinned"
	       : s == DAXFS_BUSY_RECLAIMING ? "reclaiming" : "?";
}

#define DAXFS_IOC_PIN		_IOWR(DAXFS_IOC_MAGIC, 1, struct daxfs_ioc_pin)
#define DAXFS_IOC_UNPIN		_IOW(DAXFS_IOC_MAGIC, 2, struct daxfs_ioc_unpin)
#define DAXFS_IOC_PIN_EXTENTS	_IOWR(DAXFS_IOC_MAGIC, 3, struct daxfs_ioc_pin_extents)
#define DAXFS_IOC_PIN_STATUS	_IOWR(DAXFS_IOC_MAGIC, 4, struct daxfs_ioc_pin_status)
#define DAXFS_IOC_DMA		_IOWR(DAXFS_IOC_MAGIC, 5, struct daxfs_ioc_dma)
#define DAXFS_IOC_INFO		_IOR(DAXFS_IOC_MAGIC, 6, struct daxfs_ioc_info)
#define DAXFS_IOC_STATS		_IOR(DAXFS_IOC_MAGIC, 7, struct daxfs_ioc_stats)
#define DAXFS_IOC_LIST_PINS	_IOWR(DAXFS_IOC_MAGIC, 8, struct daxfs_ioc_list_pins)
#define DAXFS_IOC_LIST_BUSY	_IOWR(DAXFS_IOC_MAGIC, 9, struct daxfs_ioc_list_busy)
#define DAXFS_IOC_POLICY	_IOWR(DAXFS_IOC_MAGIC, 10, struct daxfs_ioc_policy)

#endif /* DAXFS_IOCTL_H */
