/* SPDX-License-Identifier: MIT */
/*
 * The simulated RDMA device: a verbs-like engine that writes and reads the media blocks behind
 * pinned ranges of daxfs files, asynchronously, as a NIC does after ibv_reg_mr on a DAX mapping.
 *
 *   daxfs_dev_open    a device on a mount: the media the mount's daemon serves (DAXFS_IOC_INFO),
 *                     opened only after its superblock's UUID matches the mount's
 *   daxfs_reg_mr      register memory: pin a range of an open daxfs file (DAXFS_PIN_*), keep its
 *                     media extents (ibv_reg_mr)
 *   daxfs_qp_create   a queue pair: an io_uring of its own and a completion queue of `depth` entries
 *   daxfs_post        post a work request: RDMA WRITE of a tagged payload, or RDMA READ, at an offset
 *                     of a registration; the engine writes the media offsets the registration was
 *                     given, never through the file
 *   daxfs_poll_cq     completions: wr_id, status, bytes, latency (ibv_poll_cq)
 *   daxfs_dereg_mr    fence (no new work request on it, wait for every one in flight), then unpin
 *
 * Every 64-byte unit a WRITE puts on the media is a struct daxfs_tag naming the registration's pin,
 * inode, file offset, media offset, sequence number, pin generation and the time the request was
 * posted, so the detector (daxfs/detect.h) can attribute any stray unit to its source.
 *
 * Events.  The file system tells the holder of a pin about lease breaks, revocations and
 * invalidations (DAXFS_IOC_EVENTS, per open file, optionally signalled).  A thread of the device
 * reads them on the descriptor each registration was pinned through and reacts by the device's
 * behaviour:
 *   cooperative  LEASE_BREAK, REVOKED, DROPPED: stop posting on the registration, wait for its work
 *                requests in flight, unpin.  INVALIDATE: stop using the range, wait for the work
 *                requests in flight that touch it, acknowledge; a later request that touches the
 *                range re-resolves it first (DAXFS_IOC_PIN_FAULT) and fails with ENXIO past EOF.
 *   slow:MS      the same, MS milliseconds after each event; meanwhile it keeps going.
 *   ignore       a misbehaving device: it keeps using the media offsets it was given, never
 *                acknowledges, never unpins (until its own user deregisters).
 *
 * Concurrency: any number of threads may post and poll, one queue pair per thread being the
 * intended use (a queue pair is locked, so sharing one is correct but serialises).  Registrations
 * may be shared by all queue pairs.  Functions return 0 or -errno unless said otherwise; the calls
 * that set up (daxfs_dev_open, daxfs_reg_mr) leave a message for the failure in
 * daxfs_dev_errmsg().
 */
#ifndef DAXFS_DEVICE_H
#define DAXFS_DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daxfs/libdaxfs.h"

#ifdef __cplusplus
extern "C" {
#endif

struct daxfs_dev;
struct daxfs_mr;
struct daxfs_qp;

/* How the device reaches the media. */
enum daxfs_dev_access {
	DAXFS_DEV_ACCESS_AUTO = 0,	/* mmap for device DAX, uring otherwise */
	DAXFS_DEV_ACCESS_URING = 1,	/* io_uring pwrite/pread on the media descriptor */
	DAXFS_DEV_ACCESS_MMAP = 2,	/* memcpy through a shared mapping of the media (/dev/dax needs it) */
	DAXFS_DEV_ACCESS_IOCTL = 3,	/* DAXFS_IOC_DMA: the daemon writes (no media access needed; WRITE only) */
};

/* How the device answers the file system's events. */
enum daxfs_dev_behaviour {
	DAXFS_DEV_COOPERATIVE = 0,
	DAXFS_DEV_SLOW = 1,		/* cooperative, slow_ms late */
	DAXFS_DEV_IGNORE = 2,
};

/* Called on the device's event thread for every event, before the device reacts to it. */
typedef void (*daxfs_dev_event_fn)(void *arg, struct daxfs_mr *mr, const struct daxfs_event *ev);

#define DAXFS_DEV_F_REVOCABLE	0x1	/* every registration claims DAXFS_PIN_REVOCABLE */
#define DAXFS_DEV_F_GATE	0x2	/* tests: each uring request first reads one count from gate_fd */

struct daxfs_dev_attr {
	enum daxfs_dev_access access;
	enum daxfs_dev_behaviour behaviour;
	uint32_t slow_ms;		/* DAXFS_DEV_SLOW */
	uint32_t flags;			/* DAXFS_DEV_F_* */
	/*
	 * Events are signalled with signo (0: polled only): SIGUSR1, SIGUSR2, SIGIO, SIGURG or a
	 * real-time signal.  The device installs a handler for it while open (left in place, inert,
	 * after the last device closes if the previous action was the default).  The signal is
	 * process-directed: a thread of the process waiting in a file-system call on the mount (a
	 * truncate the policy holds) that receives it has its request interrupted (EINTR), so such
	 * threads should block it.
	 */
	int signo;
	uint32_t poll_ms;		/* how often events are polled (default 2 ms, 100 ms with a signal) */
	uint32_t max_wr;		/* largest work request in bytes (default and at most 4 MiB) */
	daxfs_dev_event_fn on_event;	/* may be NULL */
	void *arg;
	/*
	 * DAXFS_DEV_F_GATE: an eventfd (EFD_SEMAPHORE) the engine reads 8 bytes from before each uring
	 * work request touches the media, so a test can hold requests in flight and let them go.
	 */
	int gate_fd;
};

/*
 * Open a device on the daxfs mount that mount_fd (any file or directory of it) is on.  media: the
 * image file, /dev/pmemN or /dev/daxN.M the daemon serves, or NULL for the path DAXFS_IOC_INFO names.
 * Its superblock must carry the mount's UUID and be the very file the daemon serves, or the device
 * refuses it (-EMEDIUMTYPE) and writes nothing.  attr may be NULL (defaults: auto access,
 * cooperative, no signal).
 *
 * mount_fd < 0 opens a device on media alone: no pins, no events, raw registrations only (tests,
 * and devices given their extents by another agent).
 */
int daxfs_dev_open(int mount_fd, const char *media, const struct daxfs_dev_attr *attr, struct daxfs_dev **dev);
/* Deregister every registration (fenced), destroy every queue pair, stop the event thread. */
void daxfs_dev_close(struct daxfs_dev *dev);
/* Why the last daxfs_dev_open or daxfs_reg_mr of this thread failed ("" when it did not). */
const char *daxfs_dev_errmsg(void);

/* What the device uses. */
struct daxfs_dev_info {
	enum daxfs_dev_access access;	/* resolved: never AUTO */
	enum daxfs_dev_behaviour behaviour;
	char media_path[256];		/* "" with access ioctl */
	uint64_t media_size;
	uint64_t window_start;		/* the device writes only inside [window_start, window_end) */
	uint64_t window_end;
	uint32_t block_size;
	uint32_t is_pmem;		/* mmap access: stores are persisted with cache flushes */
	uint8_t uuid[16];
};
void daxfs_dev_query(struct daxfs_dev *dev, struct daxfs_dev_info *info);

/* Counters since the device opened. */
struct daxfs_dev_stats {
	uint64_t posted;		/* work requests accepted */
	uint64_t completed;		/* completions produced (errors included) */
	uint64_t errors;		/* completions with a status other than 0 */
	uint64_t bytes_written;
	uint64_t bytes_read;
	uint64_t events[5];		/* for its registrations, by DAXFS_EV_* (index 0: unknown types) */
	uint64_t signals;		/* event signals received */
	uint64_t faults;		/* work requests that hit an invalidated range */
	uint64_t refaults;		/* ranges re-resolved (DAXFS_IOC_PIN_FAULT) */
	uint64_t acks;			/* invalidations acknowledged */
	uint64_t lost;			/* registrations given up on an event (unpinned by the device) */
	uint64_t last_event_ns;		/* CLOCK_MONOTONIC of the last event handled */
};
void daxfs_dev_stats(struct daxfs_dev *dev, struct daxfs_dev_stats *st);

/* ---- memory registrations ---- */

/* A registration's state. */
#define DAXFS_MR_ACTIVE		1
#define DAXFS_MR_STOPPING	2	/* told to stop: draining work requests before it unpins */
#define DAXFS_MR_LOST		3	/* the device let go of it on an event (unpinned) */
#define DAXFS_MR_DEREG		4	/* being deregistered */

/*
 * Register [offset, offset + length) of the daxfs file open on fd: pin it with flags (DAXFS_PIN_*;
 * DAXFS_PIN_REVOCABLE is added when the device has DAXFS_DEV_F_REVOCABLE) and the device's signal,
 * and keep its extents.  A WRITE registration needs fd open for writing.  The device keeps its own
 * duplicate of fd: the pin and its events stay with that open file until deregistration, whatever
 * the caller does with fd.  The device reads that open file's events: do not read them yourself
 * (DAXFS_IOC_EVENTS consumes them).  Pins belong to the open file, not the process: a descriptor
 * inherited across fork is the same open file, and the pins live until its last holder closes it.
 * Errors (with a message): ENOTTY not a daxfs file; EXDEV a file of
 * another daxfs mount; EINVAL a range beyond EOF or bad flags; EBADF a write registration on a
 * descriptor not open for writing; and the pin ioctl's others (EOPNOTSUPP, EPERM, EDQUOT, ...).
 */
int daxfs_reg_mr(struct daxfs_dev *dev, int fd, uint64_t offset, uint64_t length, uint32_t flags,
		 struct daxfs_mr **mr);
/*
 * A registration over given extents (pin->offset, pin->length, pin->ext in file order; pin->id is
 * what the tags carry), with nothing pinned and no events: for devices without a mount.
 */
int daxfs_reg_mr_raw(struct daxfs_dev *dev, uint64_t ino, const struct daxfs_pin *pin, uint32_t flags,
		     struct daxfs_mr **mr);
/*
 * Deregister: no new work request on mr; wait for every one in flight on any queue pair (their
 * completions stay queued for daxfs_poll_cq); then unpin and free.  Returns the unpin's result
 * (0 when the pin was already gone).
 */
int daxfs_dereg_mr(struct daxfs_mr *mr);

struct daxfs_mr_info {
	uint64_t pin_id;
	uint64_t ino;
	uint64_t offset;		/* the pinned file range */
	uint64_t length;
	uint32_t flags;			/* DAXFS_PIN_* as pinned */
	uint32_t state;			/* DAXFS_MR_* */
	uint32_t gen;			/* the pin's generation as the device knows it */
	uint32_t nextents;
	uint32_t inflight;		/* work requests in flight */
	uint32_t invalidated;		/* ranges invalidated and not yet re-resolved */
	uint32_t lost_event;		/* DAXFS_EV_* that made the device let go (state LOST), else 0 */
	uint32_t reserved;
	uint64_t lost_ns;		/* CLOCK_MONOTONIC when the device let go of it (state LOST), else 0 */
	uint64_t events;		/* events received for it */
	uint64_t faults;
	uint64_t refaults;
	uint64_t acks;
};
void daxfs_mr_query(struct daxfs_mr *mr, struct daxfs_mr_info *info);
/* The extents the device uses now (malloc'd copy; *n of them). */
int daxfs_mr_extents(struct daxfs_mr *mr, struct daxfs_pin_extent **ext, uint32_t *n);

/* ---- queue pairs and work requests ---- */

int daxfs_qp_create(struct daxfs_dev *dev, uint32_t depth, struct daxfs_qp **qp);
/* Wait for the work requests in flight, drop completions not yet polled, free. */
void daxfs_qp_destroy(struct daxfs_qp *qp);

#define DAXFS_WR_WRITE	1	/* tagged payload to the media */
#define DAXFS_WR_READ	2	/* media to buf (holes of a read registration read as zeroes) */

struct daxfs_wr {
	uint64_t wr_id;			/* returned in the completion */
	uint32_t opcode;		/* DAXFS_WR_* */
	uint32_t reserved;		/* zero */
	struct daxfs_mr *mr;
	uint64_t offset;		/* bytes into the registration, a multiple of DAXFS_TAG_UNIT */
	uint64_t length;		/* a multiple of DAXFS_TAG_UNIT, at most max_wr */
	uint64_t seq;			/* written in the tags; 0: the device's next sequence number */
	void *buf;			/* READ: length bytes for the data, or NULL to discard it */
};

/*
 * Post a work request.  0: accepted, a completion will come (with an error status if it faulted
 * past EOF or the pin was revoked when it re-resolved).  Refused with nothing posted: -EINVAL (a
 * range outside the registration, a bad opcode or length), -EACCES (WRITE on a read registration),
 * -EOPNOTSUPP (READ with access ioctl), -EAGAIN (depth work requests outstanding: poll first),
 * -ENOLINK (the device let go of the registration on an event), -ESHUTDOWN (being deregistered).
 * A request touching a range whose invalidation is being processed waits for it.
 */
int daxfs_post(struct daxfs_qp *qp, const struct daxfs_wr *wr);
/*
 * Post wr[0..n) with one doorbell (one submission to the ring, as ibv_post_send of a chained list):
 * 0 with *posted = n, or the error of the first refused request with *posted the ones before it,
 * which are posted.
 */
int daxfs_post_list(struct daxfs_qp *qp, const struct daxfs_wr *wr, int n, int *posted);

struct daxfs_wc {
	uint64_t wr_id;
	int32_t status;			/* 0 or -errno */
	uint32_t opcode;
	uint64_t bytes;			/* moved */
	uint64_t latency_ns;		/* posted to completed */
	uint64_t seq;			/* in the tags (WRITE) */
	uint32_t gen;			/* the pin generation it was posted under */
	uint32_t reserved;
};

/* Up to max completions now; their count. */
int daxfs_poll_cq(struct daxfs_qp *qp, struct daxfs_wc *wc, int max);
/* The same, waiting up to timeout_ms (-1: for ever) for one; 0 at once when nothing is outstanding. */
int daxfs_wait_cq(struct daxfs_qp *qp, struct daxfs_wc *wc, int max, int timeout_ms);
/* Work requests posted whose completion has not been polled. */
uint32_t daxfs_qp_outstanding(struct daxfs_qp *qp);

/* ---- names ---- */

const char *daxfs_dev_access_str(enum daxfs_dev_access a);
const char *daxfs_mr_state_str(uint32_t state);
/* "cooperative", "slow:MS", "ignore" into attr; 0 or -EINVAL. */
int daxfs_dev_parse_behaviour(const char *s, struct daxfs_dev_attr *attr);
/* "uring", "mmap", "ioctl", "auto"; 0 or -EINVAL. */
int daxfs_dev_parse_access(const char *s, enum daxfs_dev_access *out);
/* The signals the daemon accepts for events (SIGUSR1, SIGUSR2, SIGIO, SIGURG, real-time). */
bool daxfs_dev_signal_allowed(int signo);

#ifdef __cplusplus
}
#endif

#endif
