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
 * Dropping a pin (unpin, release, revocation) first fences the daemon's DMA engine: when the call
 * returns, no DMA ioctl still writes through that pin.
 *
 * When pinned blocks are about to leave their file (truncate, punch hole, O_TRUNC, unlink) the
 * mount's policy decides what happens (see daxfs-ioctl(7) and include/daxfs/policy.h); it may tell
 * the holder through events (lease break, revocation, invalidate-range), queued on the open file and
 * optionally signalled.
 *
 * Errors: EINVAL malformed arguments (wrong size, reserved fields not zero, range outside the file or
 * the pin, a signal that is not allowed); ENOTTY unknown command; ENOENT no such pin; EBADF the pin
 * belongs to another open file, or a write pin on a file not open for writing; EOPNOTSUPP a pin the
 * admission rule refuses; EPERM a pin that could stall the owner's truncate, taken by someone who
 * neither owns the file nor has CAP_LEASE, or changing the policy without privilege; EDQUOT the
 * per-user pinned-bytes limit; EMFILE / ENFILE the per-file / total pin limit; ENOLINK the pin was
 * revoked; EACCES a write DMA through a read-only pin; EINTR a waiting request was interrupted.
 */
#ifndef DAXFS_IOCTL_H
#define DAXFS_IOCTL_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define DAXFS_IOC_MAGIC 0xDF

/* ---- pins ---- */

#define DAXFS_PIN_WRITE		0x1	/* the holder will write (DMA to the media) */
#define DAXFS_PIN_LONGTERM	0x2	/* FOLL_LONGTERM: held indefinitely, like an RDMA registration */
#define DAXFS_PIN_REVOCABLE	0x4	/* its device stops when the pin is revoked (dma-buf's revocable
					   importers): revoked blocks may be reused at once */
#define DAXFS_PIN_ODP		0x8	/* the holder takes invalidate-range events and refaults (RDMA
					   on-demand paging) */
#define DAXFS_PIN_FLAGS		0xf

/* media_off of a hole under a read pin: nothing is pinned there, the device reads zeroes. */
#define DAXFS_MEDIA_ZERO	(~0ULL)

/* A contiguous piece of a pin: file bytes [file_off, file_off + len) live at media bytes [media_off, ...). */
struct daxfs_pin_extent {
	__u64 file_off;
	__u64 media_off;		/* or DAXFS_MEDIA_ZERO */
	__u64 len;
};

#define DAXFS_PIN_EXT_MAX 128	/* extents per reply; more with DAXFS_IOC_PIN_EXTENTS */

/*
 * Pin [offset, offset + length) of the open file, which must lie inside the file (beyond EOF:
 * EINVAL).  The range is widened to whole blocks.  Under a write pin, holes are allocated and
 * zeroed, as a DAX write fault would; under a read pin they stay holes (DAXFS_MEDIA_ZERO), as a DAX
 * read fault maps the zero page.  signo, when not 0, is sent (sigqueue, the pin id in si_value) to
 * the pinning process with each of the pin's events: SIGUSR1, SIGUSR2, SIGIO, SIGURG or a real-time
 * signal.
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
	__u32 signo;			/* in: signal for events, 0 = none */
	__u32 reserved0;		/* zero */
	__u64 reserved1;		/* zero */
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
	__u32 gen;			/* out: generation, bumped by every refault */
	__u32 invalidated;		/* out: ODP: ranges of the pin invalidated and not refaulted since
					   (the gaps between its extents) */
};

/*
 * ODP: resolve [offset, offset + length) of the pin's file range again, after an invalidation took
 * blocks away: the pin now holds what the file maps there (a write pin allocates holes), and the
 * reply gives those extents (the first DAXFS_PIN_EXT_MAX; the rest with DAXFS_IOC_PIN_EXTENTS).
 * ENXIO when the range now lies beyond EOF.  The pin's generation goes up.
 */
struct daxfs_ioc_pin_fault {
	__u32 size;
	__u32 gen;			/* out: the pin's new generation */
	__u64 pin_id;			/* in */
	__u64 offset;			/* in: bytes from the start of the pin */
	__u64 length;			/* in */
	__u32 nextents;			/* out: extents of the whole pin */
	__u32 nreturned;		/* out: extents of the refaulted range in ext[] */
	__u64 reserved;
	struct daxfs_pin_extent ext[DAXFS_PIN_EXT_MAX];
};

/* ---- events: the file system tells a holder ---- */

#define DAXFS_EV_LEASE_BREAK	1	/* unpin before deadline_ns or the pin is revoked */
#define DAXFS_EV_REVOKED	2	/* the pin is dead: its device must stop; only UNPIN works */
#define DAXFS_EV_INVALIDATE	3	/* [file_off, file_off + len) leaves the pin: stop using it, then
					   DAXFS_IOC_EVENT_ACK; not acked by deadline_ns: revoked */
#define DAXFS_EV_DROPPED	4	/* the daemon dropped the pin, stopping with its file open: the
					   file answers nothing more, so only the pin's signal tells */

struct daxfs_event {
	__u64 seq;			/* per open file, from 1, no gaps */
	__u32 type;			/* DAXFS_EV_* */
	__u32 reserved;
	__u64 pin_id;
	__u64 file_off;			/* the range concerned (the whole pin unless INVALIDATE) */
	__u64 len;
	__u64 deadline_ns;		/* CLOCK_MONOTONIC, absolute; 0 = none */
	__u64 time_ns;			/* CLOCK_MONOTONIC when it was raised */
	__u64 reserved2;
};

/*
 * The open file's events with seq >= from_seq, oldest first; the events before from_seq are
 * consumed (forgotten).  Events stay queued until consumed: a holder that asks from next_seq each
 * time reads every event once, in order, however many there are.
 */
#define DAXFS_EVENTS_MAX 200
struct daxfs_ioc_events {
	__u32 size;
	__u32 count;			/* out: events in ev[] */
	__u64 from_seq;			/* in */
	__u64 next_seq;			/* out: where to read on: ev[count - 1].seq + 1 (more may be
					   queued), or with count 0 the seq the next event will get */
	__u64 reserved;
	struct daxfs_event ev[DAXFS_EVENTS_MAX];
};

/* The holder's device no longer uses the range of INVALIDATE event seq of pin pin_id. */
struct daxfs_ioc_event_ack {
	__u32 size;
	__u32 reserved;
	__u64 pin_id;
	__u64 seq;
};

/* ---- tagged payloads: every word a device writes names its source ---- */

#define DAXFS_TAG_UNIT		64
#define DAXFS_TAG_MAGIC		0x4741545346584144ULL	/* "DAXFSTAG" */
#define DAXFS_TAG_SRC_IOCTL	1	/* written by the daemon's DMA engine (DAXFS_IOC_DMA) */
#define DAXFS_TAG_SRC_DEVICE	2	/* written by a simulated device at the media */
struct daxfs_tag {
	__u64 magic;
	__u64 pin_id;
	__u64 ino;			/* the file the pin was taken on */
	__u64 file_off;			/* where in that file the device meant to write */
	__u64 media_off;		/* where on the media it wrote */
	__u64 seq;			/* the work request's sequence number */
	__u32 gen;			/* the pin's generation when the request was posted */
	__u32 source;			/* DAXFS_TAG_SRC_* */
	__u64 time_ns;			/* CLOCK_MONOTONIC when the request was posted */
};

/* ---- the daemon's DMA engine: a device for callers who cannot open the media ---- */

#define DAXFS_DMA_WRITE_PATTERN	1	/* fill with tags */
#define DAXFS_DMA_VERIFY_PATTERN 2	/* count units that do not hold the tags of seq */
#define DAXFS_DMA_ZERO		3

/*
 * The engine reads or writes the media blocks the pin holds, whatever the file maps there now, as a
 * device would.  offset and length are bytes within the pin, multiples of DAXFS_TAG_UNIT.  Unpin,
 * release and revocation stop it between two units of work (64 KiB) before they return; so does a
 * range invalidated and not refaulted.  Stopped after some of the work, the request succeeds, short
 * (done < length, result says why), as a device's completion would; stopped before any, it fails
 * with that error.
 */
struct daxfs_ioc_dma {
	__u32 size;
	__u32 op;			/* in: DAXFS_DMA_* */
	__u64 pin_id;			/* in */
	__u64 offset;			/* in */
	__u64 length;			/* in */
	__u64 seq;			/* in: recorded in (or expected from) every tag */
	__u64 mismatches;		/* out (verify): units that differ, of those done */
	__u64 first_mismatch;		/* out (verify): pin offset of the first, or ~0 */
	__u64 done;			/* out: bytes done from offset */
	__s32 result;			/* out: 0, or why it stopped short: -ENOENT unpinned, -ENOLINK
					   revoked, -EFAULT invalidated; in: zero */
	__u32 reserved;			/* zero */
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
	__u64 frees_waited;		/* frees that waited for pins */
	__u64 free_wait_ns_total;
	__u64 frees_failed;		/* operations refused (EBUSY, or the policy's errno) */
	__u64 unsafe_frees;		/* pinned blocks freed anyway */
	__u64 unsafe_blocks;
	__u64 dma_ops;
	__u64 dma_bytes;
	__u64 enospc_waits;		/* allocations that waited for reclaim */
	__u64 waiting;			/* requests waiting now (truncates, punches, pins) */
	__u64 waits_interrupted;	/* waits ended by a signal (EINTR) */
	__u64 invalidations;		/* invalidate-range events sent */
	__u64 invalidations_acked;
	__u64 events;			/* events queued, all kinds */
	__u64 quarantined_blocks;	/* blocks held for holders that outlived a daemon crash */
	__u64 revoked_held_blocks;	/* blocks of revoked, non-revocable pins, held until release */
	__u64 reserved2;
};

/* ---- how requests reach the daemon ---- */

#define DAXFS_TRANSPORT_AUTO	0	/* (requested only) io_uring when the kernel offers it */
#define DAXFS_TRANSPORT_DEV	1	/* read() and writev() on /dev/fuse by a pool of threads */
#define DAXFS_TRANSPORT_URING	2	/* FUSE over io_uring: a queue and a pinned thread per CPU */

#define DAXFS_TRANSPORT_QUEUES_MAX 256

/* One io_uring queue: the requests made by tasks running on one CPU. */
struct daxfs_transport_queue {
	__u32 cpu;			/* the CPU of the tasks it serves; its threads are pinned there */
	__u32 entries;			/* ring entries registered (request buffers) */
	__u64 requests;			/* requests served */
	__u64 deferred;			/* of those, replied to later from another thread (waits) */
	__u32 threads;			/* threads that served it: 1, more after a request blocked */
	__u32 kicks;			/* retrieves the queue sent itself, so that no request waits
					   behind entries held by parked ones (fuse_uring.c) */
	__u32 kick_failures;		/* kicks no node could be named for (requests may be stranded) */
	__u32 reserved;
	__u64 reserved2;
};

struct daxfs_ioc_transport {
	__u32 size;
	__u32 transport;		/* out: DAXFS_TRANSPORT_DEV or _URING, the one in use */
	__u32 requested;		/* out: what -o transport= asked for (DAXFS_TRANSPORT_*) */
	__u32 nqueues;			/* out: io_uring queues, one per possible CPU (0 with /dev/fuse) */
	__u64 dev_requests;		/* out: requests read from /dev/fuse (with io_uring: those before
					   the queues were up, forgets and interrupts) */
	char reason[128];		/* out: why /dev/fuse when io_uring was asked for, else "" */
	struct daxfs_transport_queue queues[DAXFS_TRANSPORT_QUEUES_MAX];	/* the first nqueues */
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
	__u32 uid;			/* who took it */
	__u32 gen;
	__u64 deadline_ns;		/* REVOKING: nanoseconds left */
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

/* Requests waiting for the policy: what each waits for, so a deadlock's chain can be printed. */
#define DAXFS_WAIT_TRUNCATE	1
#define DAXFS_WAIT_PUNCH	2
#define DAXFS_WAIT_OTRUNC	3
#define DAXFS_WAIT_PIN		4	/* a pin on a range being broken */

struct daxfs_wait_info {
	__u64 wait_id;
	__u32 kind;			/* DAXFS_WAIT_* */
	__s32 pid;			/* the waiting process */
	__u64 ino;
	__u64 offset;			/* the file range concerned */
	__u64 length;
	__u64 age_ns;			/* waiting since */
	__u64 deadline_ns;		/* nanoseconds left before it gives up or decides again; 0 = none */
	__u64 blocker_pin;		/* a pin it waits for (0 when it waits for another request) */
	__s32 blocker_pid;		/* that pin's holder */
	__u32 npins;			/* pins it waits for */
	__u64 blocker_wait;		/* a request it waits behind (a pin waiting for a break), or 0 */
};

#define DAXFS_LIST_WAITS_MAX 200
struct daxfs_ioc_list_waits {
	__u32 size;
	__u32 start;
	__u32 count;
	__u32 total;
	struct daxfs_wait_info waits[DAXFS_LIST_WAITS_MAX];
};

/* ---- policy ---- */

#define DAXFS_POLICY_NAME_MAX	64
#define DAXFS_POLICY_PARAMS_MAX	1024

#define DAXFS_POLICY_GET	0
#define DAXFS_POLICY_SET	1	/* switch to name (built in, or a .so path) with params */
#define DAXFS_POLICY_PARAMS	2	/* change parameters of the current policy */

/*
 * The mount's policy.  params is "key=value,key=value"; on output it lists every parameter of the
 * current policy with its value.  Setting needs root or the daemon's user (EPERM).  Loading a .so
 * needs an absolute path to a file owned by root or the daemon's user and not writable by others.
 * A well-formed request always succeeds as an ioctl: a refused change comes back as a negative
 * errno in `result` with the reason in `message`, and the policy in force unchanged.
 */
struct daxfs_ioc_policy {
	__u32 size;
	__u32 op;			/* in: DAXFS_POLICY_* */
	char name[DAXFS_POLICY_NAME_MAX + 192];	/* in/out: the policy's name (set: or a .so path) */
	char params[DAXFS_POLICY_PARAMS_MAX];	/* in/out */
	char summary[128];		/* out: what the policy does */
	__u32 flags;			/* out: DAXFS_POLICY_F_* */
	__s32 result;			/* out: 0, or why the change was refused (-errno) */
	__u64 generation;		/* out: bumped by every change */
	char message[256];		/* out: the reason, when result < 0 */
};
#define DAXFS_POLICY_F_STALLS	0x1	/* truncates may wait for pins */
#define DAXFS_POLICY_F_LOADED	0x2	/* from a shared object */

/* The policies this daemon knows, with their parameters ("key=default: help" lines). */
struct daxfs_policy_desc {
	char name[DAXFS_POLICY_NAME_MAX];
	char summary[128];
	char params[1024];
	__u32 flags;
	__u32 reserved;
};
#define DAXFS_LIST_POLICIES_MAX 10
struct daxfs_ioc_list_policies {
	__u32 size;
	__u32 start;
	__u32 count;
	__u32 total;
	struct daxfs_policy_desc policies[DAXFS_LIST_POLICIES_MAX];
};

/* ---- names of the constants above, for tools and logs ---- */

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

static inline const char *daxfs_event_str(__u32 t)
{
	return t == DAXFS_EV_LEASE_BREAK ? "lease-break" : t == DAXFS_EV_REVOKED ? "revoked"
	       : t == DAXFS_EV_INVALIDATE ? "invalidate" : t == DAXFS_EV_DROPPED ? "dropped" : "?";
}

static inline const char *daxfs_transport_str(__u32 t)
{
	return t == DAXFS_TRANSPORT_AUTO ? "auto" : t == DAXFS_TRANSPORT_DEV ? "dev"
	       : t == DAXFS_TRANSPORT_URING ? "uring" : "?";
}

static inline const char *daxfs_wait_str(__u32 k)
{
	return k == DAXFS_WAIT_TRUNCATE ? "truncate" : k == DAXFS_WAIT_PUNCH ? "punch"
	       : k == DAXFS_WAIT_OTRUNC ? "o_trunc" : k == DAXFS_WAIT_PIN ? "pin" : "?";
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
#define DAXFS_IOC_EVENTS	_IOWR(DAXFS_IOC_MAGIC, 11, struct daxfs_ioc_events)
#define DAXFS_IOC_EVENT_ACK	_IOW(DAXFS_IOC_MAGIC, 12, struct daxfs_ioc_event_ack)
#define DAXFS_IOC_PIN_FAULT	_IOWR(DAXFS_IOC_MAGIC, 13, struct daxfs_ioc_pin_fault)
#define DAXFS_IOC_LIST_WAITS	_IOWR(DAXFS_IOC_MAGIC, 14, struct daxfs_ioc_list_waits)
#define DAXFS_IOC_LIST_POLICIES	_IOWR(DAXFS_IOC_MAGIC, 15, struct daxfs_ioc_list_policies)
#define DAXFS_IOC_TRACE		_IOWR(DAXFS_IOC_MAGIC, 16, struct daxfs_ioc_trace)
#define DAXFS_IOC_TRANSPORT	_IOR(DAXFS_IOC_MAGIC, 17, struct daxfs_ioc_transport)

/* ---- the event trace ---- */

#define DAXFS_TRACE_GET		0
#define DAXFS_TRACE_START	1	/* to path (truncated), or keep the current file */
#define DAXFS_TRACE_STOP	2

struct daxfs_ioc_trace {
	__u32 size;
	__u32 op;			/* in: DAXFS_TRACE_* */
	char path[4096];		/* in (start) / out: the trace file, "" when off */
	__u64 records;			/* out: records written */
	__u64 dropped;			/* out: records lost to a full buffer */
	__u32 on;			/* out */
	__u32 reserved;
};

#endif /* DAXFS_IOCTL_H */
