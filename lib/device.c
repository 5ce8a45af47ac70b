/* SPDX-License-Identifier: MIT */
/*
 * The simulated RDMA device (include/daxfs/device.h).
 *
 * Objects: a device (the media, the mount, the event thread), sources (the open files pins were
 * taken through: their event queues), registrations (a pin and the extents the device writes) and
 * queue pairs (an io_uring each, a slot per outstanding work request, a software completion queue).
 *
 * Locks, in the order they nest:
 *   mr->mu     a registration's state, extents, invalidations; held by a poster from the state check
 *              until its request is submitted and linked, so a fence that changes the state under it
 *              sees every request posted before it in mr->inflight
 *   dev->mu    the lists of sources, registrations and queue pairs
 *   qp->mu     a queue pair's ring, slots and completions; reaping happens under it
 *   mr->ifl    a leaf: mr->inflight, the requests in flight on the registration
 * A fence (deregistration, or an event) sets the state under mr->mu, drops it, and drives every
 * queue pair (dev->mu, qp->mu) until the requests it waits for are reaped.
 *
 * Completions: a request's SQEs complete in the kernel; whoever holds qp->mu reaps them (the user's
 * poll, or a fence) and moves the finished requests to the software completion queue, which holds
 * at most `depth` (a request counts against the depth until its completion is polled).
 */
#include "daxfs/device.h"

#include <errno.h>
#include <fcntl.h>
#include <libpmem.h>
#include <liburing.h>
#include <linux/fs.h>
#include <linux/kcmp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/queue.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "daxfs/format.h"

#define MAX_WR_LIMIT (4u << 20)
#define RING_SQ 256u
#define RING_CQ 4096u
#define DRIVE_WAIT_MS 1

/* ---- errors ---- */

static __thread char errmsg[512];

const char *daxfs_dev_errmsg(void)
{
	return errmsg;
}

__attribute__((format(printf, 2, 3))) static int fail(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(errmsg, sizeof(errmsg), fmt, ap);
	va_end(ap);
	return err;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#define ADD(p, v) __atomic_add_fetch((p), (v), __ATOMIC_RELAXED)
#define LOAD(p) __atomic_load_n((p), __ATOMIC_RELAXED)

/* ---- objects ---- */

struct src {
	struct src *next;
	int fd;			/* our duplicate of the caller's descriptor */
	uint64_t next_seq;	/* of the next event to read */
	uint32_t refs;		/* registrations on it, and the event thread while it reads */
};

/* A range of a registration given up by an invalidation: pending until acknowledged. */
struct inval {
	uint64_t off;		/* bytes of the registration */
	uint64_t len;
	bool acked;
};

struct wr_slot {
	TAILQ_ENTRY(wr_slot) link;	/* in mr->inflight */
	struct daxfs_mr *mr;
	uint64_t wr_id, seq, off, len, posted_ns, bytes;
	uint32_t opcode, gen;
	uint32_t pieces;		/* SQEs not yet completed */
	int32_t status;
	char *buf;			/* payload (WRITE) or bounce (READ without a buffer) */
	size_t cap;
	uint64_t gate_val;
	bool used;
	bool defer;			/* a list post: submitted with the last request of the list */
};

struct daxfs_mr {
	struct daxfs_dev *dev;
	struct daxfs_mr *next;		/* dev->mrs */
	struct src *src;		/* NULL: raw */
	uint32_t refs;			/* atomic: the caller's, and the event thread's while it acts */
	pthread_mutex_t mu;
	pthread_cond_t cond;		/* an invalidation finished, or the state changed */
	uint32_t state;
	bool pinned;
	uint32_t flags;
	uint64_t ino;
	struct daxfs_pin pin;
	struct inval *inv;
	uint32_t ninv, capinv;
	uint32_t lost_event;
	uint64_t lost_ns;
	uint64_t last_seq;		/* of the last event handled (a duplicate read is ignored) */
	uint64_t events, faults, refaults, acks;
	pthread_mutex_t ifl;
	TAILQ_HEAD(, wr_slot) inflight;
	uint32_t ninflight;
};

struct daxfs_qp {
	struct daxfs_dev *dev;
	struct daxfs_qp *next;
	pthread_mutex_t mu;
	struct io_uring ring;
	bool has_ring;
	uint32_t depth;
	struct wr_slot *slots;
	uint32_t *free;			/* stack of free slot indices */
	uint32_t nfree;
	uint32_t outstanding;		/* posted, completion not polled */
	uint32_t hw;			/* requests with SQEs in flight */
	uint32_t pieces;		/* SQEs in flight */
	struct daxfs_wc *cq;		/* depth entries, a ring */
	uint32_t cq_head, cq_len;
};

struct deferred {
	struct deferred *next;
	uint64_t due_ns;
	struct daxfs_mr *mr;
	struct daxfs_event ev;
};

struct daxfs_dev {
	pthread_mutex_t mu;
	struct daxfs_dev_attr attr;
	enum daxfs_dev_access access;
	int mount_fd;
	dev_t mount_dev;
	struct daxfs_ioc_info info;
	int media_fd;
	char media_path[256];
	char *map;
	size_t map_len;
	int is_pmem;
	uint64_t media_size, lo, hi;
	uint32_t bs;
	struct src *srcs;
	struct daxfs_mr *mrs;
	struct daxfs_qp *qps;
	uint64_t next_seq;
	uint64_t raw_ids;
	/* the event thread */
	pthread_t thr;
	bool thr_running;
	int efd;
	bool stop;
	int sig_slot;
	struct deferred *deferred;	/* by due time; the event thread's own */
	/*
	 * Events for pins no registration has (yet): a registration is linked just after its pin
	 * ioctl returns, and an event for it may be read in between.  Kept a while (dev->mu); those a
	 * new registration claims are replayed by the event thread.
	 */
	struct daxfs_event unclaimed[32];
	uint32_t nunclaimed;
	struct daxfs_event replay[32];
	uint32_t nreplay;
	struct daxfs_dev_stats st;	/* atomics */
};

/* ---- signals: the handler wakes every device waiting for that signal ---- */

#define SIG_SLOTS 64
static struct {
	int signo;		/* 0: free */
	int efd;
	uint64_t *counter;
} sig_slots[SIG_SLOTS];
static int sig_active;		/* handlers running now */
static pthread_mutex_t sig_mu = PTHREAD_MUTEX_INITIALIZER;
static int sig_users[_NSIG];
static struct sigaction sig_old[_NSIG];

static void sig_handler(int sig, siginfo_t *si, void *uc)
{
	int saved = errno;

	(void)si;
	(void)uc;
	__atomic_add_fetch(&sig_active, 1, __ATOMIC_SEQ_CST);
	for (int i = 0; i < SIG_SLOTS; i++) {
		if (__atomic_load_n(&sig_slots[i].signo, __ATOMIC_ACQUIRE) != sig)
			continue;
		uint64_t one = 1;
		uint64_t *c = __atomic_load_n(&sig_slots[i].counter, __ATOMIC_ACQUIRE);
		if (c)
			__atomic_add_fetch(c, 1, __ATOMIC_RELAXED);
		if (write(__atomic_load_n(&sig_slots[i].efd, __ATOMIC_ACQUIRE), &one, sizeof(one)) < 0) {
			/* full or closing: the event thread polls anyway */
		}
	}
	__atomic_sub_fetch(&sig_active, 1, __ATOMIC_SEQ_CST);
	errno = saved;
}

static int sig_register(int signo, int efd, uint64_t *counter)
{
	int slot = -1;

	pthread_mutex_lock(&sig_mu);
	for (int i = 0; i < SIG_SLOTS && slot < 0; i++)
		if (sig_slots[i].signo == 0)
			slot = i;
	if (slot < 0) {
		pthread_mutex_unlock(&sig_mu);
		return -ENOSPC;
	}
	if (sig_users[signo] == 0) {
		struct sigaction sa = { .sa_sigaction = sig_handler, .sa_flags = SA_SIGINFO | SA_RESTART };

		sigemptyset(&sa.sa_mask);
		if (sigaction(signo, &sa, &sig_old[signo]) < 0) {
			int e = -errno;
			pthread_mutex_unlock(&sig_mu);
			return e;
		}
	}
	sig_users[signo]++;
	__atomic_store_n(&sig_slots[slot].efd, efd, __ATOMIC_RELEASE);
	__atomic_store_n(&sig_slots[slot].counter, counter, __ATOMIC_RELEASE);
	__atomic_store_n(&sig_slots[slot].signo, signo, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&sig_mu);
	return slot;
}

static void sig_unregister(int slot)
{
	pthread_mutex_lock(&sig_mu);
	int signo = sig_slots[slot].signo;
	__atomic_store_n(&sig_slots[slot].signo, 0, __ATOMIC_RELEASE);
	/* A handler that saw the slot may still be writing to its eventfd: let it finish. */
	while (__atomic_load_n(&sig_active, __ATOMIC_SEQ_CST))
		sched_yield();
	__atomic_store_n(&sig_slots[slot].counter, NULL, __ATOMIC_RELEASE);
	/*
	 * The last user: give the signal back to whoever had it.  If that was the default action, our
	 * (now inert) handler stays: an event signalled just before the last unpin may still be on its
	 * way, and the default action of most allowed signals would end the process.
	 */
	if (--sig_users[signo] == 0 && sig_old[signo].sa_handler != SIG_DFL)
		sigaction(signo, &sig_old[signo], NULL);
	pthread_mutex_unlock(&sig_mu);
}

bool daxfs_dev_signal_allowed(int signo)
{
	return signo == SIGUSR1 || signo == SIGUSR2 || signo == SIGIO || signo == SIGURG ||
	       (signo >= SIGRTMIN && signo <= SIGRTMAX);
}

/* ---- names ---- */

const char *daxfs_dev_access_str(enum daxfs_dev_access a)
{
	return a == DAXFS_DEV_ACCESS_URING ? "uring" : a == DAXFS_DEV_ACCESS_MMAP ? "mmap"
	       : a == DAXFS_DEV_ACCESS_IOCTL ? "ioctl" : a == DAXFS_DEV_ACCESS_AUTO ? "auto" : "?";
}

const char *daxfs_mr_state_str(uint32_t s)
{
	return s == DAXFS_MR_ACTIVE ? "active" : s == DAXFS_MR_STOPPING ? "stopping" : s == DAXFS_MR_LOST ? "lost"
	       : s == DAXFS_MR_DEREG ? "deregistering" : "?";
}

int daxfs_dev_parse_behaviour(const char *s, struct daxfs_dev_attr *attr)
{
	if (strcmp(s, "cooperative") == 0) {
		attr->behaviour = DAXFS_DEV_COOPERATIVE;
		return 0;
	}
	if (strcmp(s, "ignore") == 0) {
		attr->behaviour = DAXFS_DEV_IGNORE;
		return 0;
	}
	if (strncmp(s, "slow:", 5) == 0 && s[5] >= '0' && s[5] <= '9') {
		char *end;
		unsigned long ms = strtoul(s + 5, &end, 10);

		if (*end || ms > 3600000)
			return -EINVAL;
		attr->behaviour = DAXFS_DEV_SLOW;
		attr->slow_ms = (uint32_t)ms;
		return 0;
	}
	return -EINVAL;
}

int daxfs_dev_parse_access(const char *s, enum daxfs_dev_access *out)
{
	static const enum daxfs_dev_access all[] = { DAXFS_DEV_ACCESS_AUTO, DAXFS_DEV_ACCESS_URING,
						     DAXFS_DEV_ACCESS_MMAP, DAXFS_DEV_ACCESS_IOCTL };

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		if (strcmp(s, daxfs_dev_access_str(all[i])) == 0) {
			*out = all[i];
			return 0;
		}
	}
	return -EINVAL;
}

/* ---- opening the media ---- */

static int media_size_of(int fd, const struct stat *st, uint64_t *size)
{
	if (S_ISREG(st->st_mode)) {
		*size = (uint64_t)st->st_size;
		return 0;
	}
	if (S_ISBLK(st->st_mode))
		return ioctl(fd, BLKGETSIZE64, size) < 0 ? -errno : 0;
	if (S_ISCHR(st->st_mode)) {
		char p[96];
		unsigned long long sz;

		snprintf(p, sizeof(p), "/sys/dev/char/%u:%u/size", major(st->st_rdev), minor(st->st_rdev));
		FILE *f = fopen(p, "r");
		if (!f)
			return -ENODEV;
		int ok = fscanf(f, "%llu", &sz) == 1;
		fclose(f);
		if (!ok)
			return -ENODEV;
		*size = sz;
		return 0;
	}
	return -EINVAL;
}

static bool same_file(const struct stat *a, const struct stat *b)
{
	if (S_ISBLK(a->st_mode) || S_ISCHR(a->st_mode))
		return a->st_mode == b->st_mode && a->st_rdev == b->st_rdev;
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

static void format_uuid(const uint8_t *u, char *out)
{
	for (int i = 0, k = 0; i < 16; i++) {
		k += sprintf(out + k, "%02x", u[i]);
		if (i == 3 || i == 5 || i == 7 || i == 9)
			out[k++] = '-';
	}
}

/*
 * Open the media: the right file (the very one the daemon serves, when its path is visible here)
 * holding the right file system (the mount's UUID), or nothing is ever written.
 */
static int open_media(struct daxfs_dev *d, const char *path)
{
	struct stat st, served;
	struct daxfs_super sb;
	int ret;

	snprintf(d->media_path, sizeof(d->media_path), "%s", path);
	d->media_fd = open(path, O_RDWR | O_CLOEXEC);
	if (d->media_fd < 0) {
		ret = -errno;
		return fail(ret, "cannot open the media %s: %s%s", path, strerror(errno),
			    errno == EACCES || errno == EPERM ? " (a user who cannot open the media can use access ioctl)" : "");
	}
	if (fstat(d->media_fd, &st) < 0 || (ret = media_size_of(d->media_fd, &st, &d->media_size)))
		return fail(-EINVAL, "%s: not a regular file, block device or DAX device", path);
	if (S_ISCHR(st.st_mode) && d->access == DAXFS_DEV_ACCESS_URING)
		return fail(-EINVAL, "%s: a device DAX character device has no read/write: use access mmap", path);
	if (S_ISCHR(st.st_mode) && d->access == DAXFS_DEV_ACCESS_AUTO)
		d->access = DAXFS_DEV_ACCESS_MMAP;
	if (d->access == DAXFS_DEV_ACCESS_AUTO)
		d->access = DAXFS_DEV_ACCESS_URING;
	if (d->media_size < sizeof(sb))
		return fail(-EMEDIUMTYPE, "%s: too small to hold a daxfs", path);
	if (d->access == DAXFS_DEV_ACCESS_MMAP) {
		void *p = mmap(NULL, d->media_size, PROT_READ | PROT_WRITE, MAP_SHARED, d->media_fd, 0);

		if (p == MAP_FAILED)
			return fail(-errno, "%s: mmap: %s", path, strerror(errno));
		d->map = p;
		d->map_len = d->media_size;
		d->is_pmem = pmem_is_pmem(p, d->map_len);
	}
	if (d->mount_fd < 0) {
		/* Raw media: no file system to check against; the whole media is the window. */
		d->lo = 0;
		d->hi = d->media_size;
		d->bs = 4096;
		return 0;
	}
	if (d->map)
		memcpy(&sb, d->map, sizeof(sb));
	else if (pread(d->media_fd, &sb, sizeof(sb), 0) != (ssize_t)sizeof(sb))
		return fail(-EIO, "%s: cannot read the superblock", path);
	char want[40] = "", got[40] = "";
	format_uuid(d->info.uuid, want);
	if (sb.magic != DAXFS_SB_MAGIC)
		return fail(-EMEDIUMTYPE, "%s does not hold a daxfs (no superblock): refusing to write to it", path);
	format_uuid(sb.uuid, got);
	if (memcmp(sb.uuid, d->info.uuid, sizeof(sb.uuid)) != 0)
		return fail(-EMEDIUMTYPE, "%s holds another daxfs (uuid %s), not the mounted one (uuid %s): refusing to write to it",
			    path, got, want);
	/* A copy of the image has the same UUID: where the daemon's media is visible, it must be this file. */
	if (stat(d->info.media_path, &served) == 0 && !same_file(&st, &served))
		return fail(-EMEDIUMTYPE, "%s is not the media the daemon serves (%s), though it has the same uuid %s: refusing to write to it",
			    path, d->info.media_path, want);
	if (sb.block_size != d->info.block_size || sb.nblocks < 2 ||
	    (sb.nblocks - 1) * (uint64_t)sb.block_size > d->media_size)
		return fail(-EMEDIUMTYPE, "%s: superblock geometry disagrees with the mount", path);
	d->bs = sb.block_size;
	d->lo = d->info.data_offset;
	d->hi = (sb.nblocks - 1) * (uint64_t)sb.block_size;	/* the last block holds the superblock copy */
	return 0;
}

/* ---- registrations: references, sources ---- */

static void src_put_locked(struct daxfs_dev *d, struct src *s)
{
	if (--s->refs)
		return;
	for (struct src **pp = &d->srcs; *pp; pp = &(*pp)->next) {
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	}
	close(s->fd);
	free(s);
}

/* The source for the open file behind fd: ours if we already pin through it, else a new one. */
static int src_get_locked(struct daxfs_dev *d, int fd, struct src **out)
{
	pid_t me = getpid();

	for (struct src *s = d->srcs; s; s = s->next) {
		long r = syscall(SYS_kcmp, me, me, KCMP_FILE, fd, s->fd);

		if (r == 0 || (r < 0 && fd == s->fd)) {
			s->refs++;
			*out = s;
			return 0;
		}
	}
	struct src *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (s->fd < 0) {
		int e = -errno;
		free(s);
		return e;
	}
	s->next_seq = 1;
	s->refs = 1;
	s->next = d->srcs;
	d->srcs = s;
	*out = s;
	return 0;
}

static void mr_get(struct daxfs_mr *mr)
{
	__atomic_add_fetch(&mr->refs, 1, __ATOMIC_ACQ_REL);
}

static void mr_put(struct daxfs_mr *mr)
{
	if (__atomic_sub_fetch(&mr->refs, 1, __ATOMIC_ACQ_REL))
		return;
	struct daxfs_dev *d = mr->dev;
	if (mr->src) {
		pthread_mutex_lock(&d->mu);
		src_put_locked(d, mr->src);
		pthread_mutex_unlock(&d->mu);
	}
	daxfs_pin_free(&mr->pin);
	free(mr->inv);
	pthread_mutex_destroy(&mr->mu);
	pthread_cond_destroy(&mr->cond);
	pthread_mutex_destroy(&mr->ifl);
	free(mr);
}

static struct daxfs_mr *mr_new(struct daxfs_dev *d)
{
	struct daxfs_mr *mr = calloc(1, sizeof(*mr));

	if (!mr)
		return NULL;
	mr->dev = d;
	mr->refs = 1;
	mr->state = DAXFS_MR_ACTIVE;
	pthread_mutex_init(&mr->mu, NULL);
	pthread_cond_init(&mr->cond, NULL);
	pthread_mutex_init(&mr->ifl, NULL);
	TAILQ_INIT(&mr->inflight);
	return mr;
}

static void mr_link(struct daxfs_dev *d, struct daxfs_mr *mr)
{
	bool kick = false;

	pthread_mutex_lock(&d->mu);
	mr->next = d->mrs;
	d->mrs = mr;
	/* Events that came for this pin before it was linked: the event thread replays them. */
	for (uint32_t i = 0; mr->src && i < d->nunclaimed;) {
		if (d->unclaimed[i].pin_id == mr->pin.id && d->nreplay < sizeof(d->replay) / sizeof(d->replay[0])) {
			d->replay[d->nreplay++] = d->unclaimed[i];
			d->unclaimed[i] = d->unclaimed[--d->nunclaimed];
			kick = true;
		} else {
			i++;
		}
	}
	pthread_mutex_unlock(&d->mu);
	if (kick) {
		uint64_t one = 1;
		if (write(d->efd, &one, sizeof(one)) < 0) {
			/* the thread polls anyway */
		}
	}
}

/* ---- completions ---- */

#define UD_SLOT_BITS 16
#define UD_KIND_GATE 1ull
#define UD_KIND_DATA 2ull
/* user_data: slot index, kind, and the bytes the SQE must move. */
static uint64_t ud_make(uint32_t slot, uint64_t kind, uint64_t len)
{
	return (uint64_t)slot | kind << UD_SLOT_BITS | len << (UD_SLOT_BITS + 2);
}

static void wc_push(struct daxfs_qp *qp, const struct daxfs_wc *wc)
{
	qp->cq[(qp->cq_head + qp->cq_len) % qp->depth] = *wc;
	qp->cq_len++;
}

/* The request in slot is done: queue its completion, unlink it, free the slot. */
static void slot_complete(struct daxfs_qp *qp, struct wr_slot *s, bool was_hw)
{
	struct daxfs_dev *d = qp->dev;
	uint64_t t = now_ns();
	struct daxfs_wc wc = { .wr_id = s->wr_id, .status = s->status, .opcode = s->opcode,
			       .bytes = s->status ? 0 : s->bytes, .latency_ns = t - s->posted_ns,
			       .seq = s->seq, .gen = s->gen };

	wc_push(qp, &wc);
	if (was_hw) {
		pthread_mutex_lock(&s->mr->ifl);
		TAILQ_REMOVE(&s->mr->inflight, s, link);
		s->mr->ninflight--;
		pthread_mutex_unlock(&s->mr->ifl);
		qp->hw--;
	}
	ADD(&d->st.completed, 1);
	if (s->status)
		ADD(&d->st.errors, 1);
	else if (s->opcode == DAXFS_WR_WRITE)
		ADD(&d->st.bytes_written, s->bytes);
	else
		ADD(&d->st.bytes_read, s->bytes);
	s->used = false;
	s->mr = NULL;
	qp->free[qp->nfree++] = (uint32_t)(s - qp->slots);
}

/* Move what the kernel completed to the completion queue.  qp->mu held.  Returns requests finished. */
static unsigned qp_reap(struct daxfs_qp *qp)
{
	struct io_uring_cqe *cqe;
	unsigned head, seen = 0, done = 0;

	if (!qp->has_ring || !qp->pieces)
		return 0;
	io_uring_for_each_cqe(&qp->ring, head, cqe) {
		seen++;
		if (cqe->user_data == LIBURING_UDATA_TIMEOUT)
			continue;
		struct wr_slot *s = &qp->slots[cqe->user_data & ((1u << UD_SLOT_BITS) - 1)];
		uint64_t kind = (cqe->user_data >> UD_SLOT_BITS) & 3, want = cqe->user_data >> (UD_SLOT_BITS + 2);

		qp->pieces--;
		if (cqe->res < 0) {
			if (!s->status)
				s->status = cqe->res;
		} else if ((uint64_t)cqe->res != want) {
			if (!s->status)
				s->status = -EIO;	/* a short transfer */
		} else if (kind == UD_KIND_DATA) {
			s->bytes += want;
		}
		if (--s->pieces == 0) {
			slot_complete(qp, s, true);
			done++;
		}
	}
	io_uring_cq_advance(&qp->ring, seen);
	return done;
}

/* Reap; if nothing finished and requests are in flight, wait up to ms for one.  qp->mu held. */
static void qp_progress(struct daxfs_qp *qp, int ms)
{
	/* Requests queued by a list post still being built: let them go, a fence may wait for them. */
	if (qp->has_ring && io_uring_sq_ready(&qp->ring))
		io_uring_submit(&qp->ring);
	if (qp_reap(qp) || !qp->pieces || ms == 0)
		return;
	struct io_uring_cqe *cqe;
	struct __kernel_timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 };

	io_uring_wait_cqe_timeout(&qp->ring, &cqe, &ts);
	qp_reap(qp);
}

/* Drive every queue pair once (reaping, waiting a little where nothing completed). */
static void drive_all(struct daxfs_dev *d)
{
	pthread_mutex_lock(&d->mu);
	for (struct daxfs_qp *qp = d->qps; qp; qp = qp->next) {
		pthread_mutex_lock(&qp->mu);
		qp_progress(qp, DRIVE_WAIT_MS);
		pthread_mutex_unlock(&qp->mu);
	}
	pthread_mutex_unlock(&d->mu);
}

/* Does a request of mr in flight touch [off, off + len) of it? */
static bool mr_busy(struct daxfs_mr *mr, uint64_t off, uint64_t len)
{
	struct wr_slot *s;
	bool busy = false;

	pthread_mutex_lock(&mr->ifl);
	TAILQ_FOREACH(s, &mr->inflight, link) {
		if (s->off < off + len && off < s->off + s->len) {
			busy = true;
			break;
		}
	}
	pthread_mutex_unlock(&mr->ifl);
	return busy;
}

/* Wait until no request of mr in flight touches [off, off + len).  No lock held. */
static void mr_drain(struct daxfs_mr *mr, uint64_t off, uint64_t len)
{
	while (mr_busy(mr, off, len))
		drive_all(mr->dev);
}

/* ---- the device ---- */

static void *event_thread(void *arg);

int daxfs_dev_open(int mount_fd, const char *media, const struct daxfs_dev_attr *attr, struct daxfs_dev **out)
{
	struct daxfs_dev_attr def = { 0 };
	struct daxfs_dev *d;
	int ret;

	errmsg[0] = 0;
	*out = NULL;
	if (!attr)
		attr = &def;
	if (attr->access > DAXFS_DEV_ACCESS_IOCTL || attr->behaviour > DAXFS_DEV_IGNORE ||
	    (attr->flags & ~(uint32_t)(DAXFS_DEV_F_REVOCABLE | DAXFS_DEV_F_GATE)))
		return fail(-EINVAL, "bad device attributes");
	if (attr->signo && !daxfs_dev_signal_allowed(attr->signo))
		return fail(-EINVAL, "signal %d is not allowed for events: use SIGUSR1, SIGUSR2, SIGIO, SIGURG or a real-time signal (%d-%d)",
			    attr->signo, SIGRTMIN, SIGRTMAX);
	if (attr->max_wr > MAX_WR_LIMIT || (attr->max_wr && attr->max_wr % DAXFS_TAG_UNIT))
		return fail(-EINVAL, "max_wr must be a multiple of %u of at most %u bytes", DAXFS_TAG_UNIT, MAX_WR_LIMIT);
	if (mount_fd < 0 && (!media || attr->access == DAXFS_DEV_ACCESS_IOCTL))
		return fail(-EINVAL, "a device without a mount needs a media file and uring or mmap access");
	if (!(d = calloc(1, sizeof(*d))))
		return fail(-ENOMEM, "out of memory");
	pthread_mutex_init(&d->mu, NULL);
	d->attr = *attr;
	if (!d->attr.max_wr)
		d->attr.max_wr = MAX_WR_LIMIT;
	if (!d->attr.poll_ms)
		d->attr.poll_ms = attr->signo ? 100 : 2;
	d->access = attr->access;
	d->mount_fd = -1;
	d->media_fd = -1;
	d->efd = -1;
	d->sig_slot = -1;
	d->next_seq = 1;
	d->raw_ids = 1ull << 62;
	if (mount_fd >= 0) {
		struct stat st;

		ret = daxfs_info(mount_fd, &d->info);
		if (ret) {
			ret = fail(ret, "%s", ret == -ENOTTY ? "not a daxfs mount (DAXFS_IOC_INFO is unknown there)"
							     : strerror(-ret));
			goto fail;
		}
		if (fstat(mount_fd, &st) < 0 || (d->mount_fd = fcntl(mount_fd, F_DUPFD_CLOEXEC, 3)) < 0) {
			ret = fail(-errno, "mount descriptor: %s", strerror(errno));
			goto fail;
		}
		d->mount_dev = st.st_dev;
		d->bs = d->info.block_size;
	}
	if (d->access != DAXFS_DEV_ACCESS_IOCTL) {
		if ((ret = open_media(d, media ? media : d->info.media_path)))
			goto fail;
	} else {
		d->media_size = d->info.media_size;
		d->lo = d->info.data_offset;
		d->hi = d->info.media_size;
	}
	if (mount_fd >= 0) {
		if ((d->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
			ret = fail(-errno, "eventfd: %s", strerror(errno));
			goto fail;
		}
		if (attr->signo && (d->sig_slot = sig_register(attr->signo, d->efd, &d->st.signals)) < 0) {
			ret = fail(d->sig_slot, "cannot handle signal %d: %s", attr->signo, strerror(-d->sig_slot));
			d->sig_slot = -1;
			goto fail;
		}
		if ((ret = -pthread_create(&d->thr, NULL, event_thread, d))) {
			ret = fail(ret, "event thread: %s", strerror(-ret));
			goto fail;
		}
		d->thr_running = true;
	}
	*out = d;
	return 0;
fail:
	daxfs_dev_close(d);
	return ret;
}

void daxfs_dev_query(struct daxfs_dev *d, struct daxfs_dev_info *in)
{
	memset(in, 0, sizeof(*in));
	in->access = d->access;
	in->behaviour = d->attr.behaviour;
	snprintf(in->media_path, sizeof(in->media_path), "%s", d->access == DAXFS_DEV_ACCESS_IOCTL ? "" : d->media_path);
	in->media_size = d->media_size;
	in->window_start = d->lo;
	in->window_end = d->hi;
	in->block_size = d->bs;
	in->is_pmem = (uint32_t)d->is_pmem;
	memcpy(in->uuid, d->info.uuid, sizeof(in->uuid));
}

void daxfs_dev_stats(struct daxfs_dev *d, struct daxfs_dev_stats *st)
{
	const uint64_t *src = (const uint64_t *)&d->st;
	uint64_t *dst = (uint64_t *)st;

	for (size_t i = 0; i < sizeof(*st) / sizeof(uint64_t); i++)
		dst[i] = LOAD(&src[i]);
}

void daxfs_dev_close(struct daxfs_dev *d)
{
	if (!d)
		return;
	if (d->thr_running) {
		__atomic_store_n(&d->stop, true, __ATOMIC_RELEASE);
		uint64_t one = 1;
		if (write(d->efd, &one, sizeof(one)) < 0) {
			/* the thread polls its stop flag anyway */
		}
		pthread_join(d->thr, NULL);
	}
	while (d->deferred) {
		struct deferred *f = d->deferred;

		d->deferred = f->next;
		mr_put(f->mr);
		free(f);
	}
	for (;;) {
		pthread_mutex_lock(&d->mu);
		struct daxfs_mr *mr = d->mrs;
		pthread_mutex_unlock(&d->mu);
		if (!mr)
			break;
		daxfs_dereg_mr(mr);
	}
	for (;;) {
		pthread_mutex_lock(&d->mu);
		struct daxfs_qp *qp = d->qps;
		pthread_mutex_unlock(&d->mu);
		if (!qp)
			break;
		daxfs_qp_destroy(qp);
	}
	if (d->sig_slot >= 0)
		sig_unregister(d->sig_slot);
	if (d->efd >= 0)
		close(d->efd);
	if (d->map)
		munmap(d->map, d->map_len);
	if (d->media_fd >= 0)
		close(d->media_fd);
	if (d->mount_fd >= 0)
		close(d->mount_fd);
	pthread_mutex_destroy(&d->mu);
	free(d);
}

/* ---- registering ---- */

/* Why a pin was refused, as a sentence. */
static int explain_pin(int ret, int fd, uint64_t off, uint64_t len, uint32_t flags, int signo)
{
	struct stat st;
	int acc = fcntl(fd, F_GETFL);

	switch (-ret) {
	case EINVAL:
		if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (off >= (uint64_t)st.st_size || len > (uint64_t)st.st_size - off))
			return fail(ret, "range [%llu, +%llu) is not inside the file (%llu bytes)", (unsigned long long)off,
				    (unsigned long long)len, (unsigned long long)st.st_size);
		if (len == 0)
			return fail(ret, "empty range");
		if (signo)
			return fail(ret, "the daemon refused the pin (EINVAL): signal %d is not one it allows for events", signo);
		return fail(ret, "the daemon refused the pin: invalid argument (flags %#x)", flags);
	case EBADF:
		return fail(ret, "a write registration needs the file open for writing%s",
			    acc >= 0 && (acc & O_ACCMODE) == O_RDONLY ? " (it is open read-only)" : "");
	case EOPNOTSUPP:
		return fail(ret, "the mount's admission rule refuses this pin (flags %#x%s)", flags,
			    (flags & DAXFS_PIN_LONGTERM) ? ", long-term" : "");
	case EPERM:
		return fail(ret, "not allowed to take a pin that can stall the owner's truncate (own the file, or CAP_LEASE)");
	case EDQUOT:
		return fail(ret, "over the per-user pinned-bytes limit");
	case EMFILE:
	case ENFILE:
		return fail(ret, "too many pins (%s limit)", ret == -EMFILE ? "per-file" : "mount");
	case ENOSPC:
		return fail(ret, "no space to fill the holes of the range");
	default:
		return fail(ret, "pin [%llu, +%llu): %s", (unsigned long long)off, (unsigned long long)len, strerror(-ret));
	}
}

int daxfs_reg_mr(struct daxfs_dev *d, int fd, uint64_t offset, uint64_t length, uint32_t flags, struct daxfs_mr **out)
{
	struct stat st;
	struct daxfs_mr *mr;
	int ret;

	errmsg[0] = 0;
	*out = NULL;
	if (d->mount_fd < 0)
		return fail(-EINVAL, "a device without a mount takes raw registrations only");
	if (flags & ~(uint32_t)DAXFS_PIN_FLAGS)
		return fail(-EINVAL, "unknown pin flags %#x", flags & ~(uint32_t)DAXFS_PIN_FLAGS);
	if (d->attr.flags & DAXFS_DEV_F_REVOCABLE)
		flags |= DAXFS_PIN_REVOCABLE;
	if (fstat(fd, &st) < 0)
		return fail(-errno, "fstat: %s", strerror(errno));
	if (st.st_dev != d->mount_dev) {
		struct daxfs_ioc_info other;

		ret = daxfs_info(fd, &other);
		if (ret == -ENOTTY || ret == -ENOSYS || ret == -EINVAL)
			return fail(-ENOTTY, "not a file on a daxfs mount (the pin ioctls are unknown there)");
		if (ret)
			return fail(ret, "DAXFS_IOC_INFO: %s", strerror(-ret));
		if (memcmp(other.uuid, d->info.uuid, sizeof(other.uuid)))
			return fail(-EXDEV, "the file is on another daxfs mount than the device's");
	}
	if (!S_ISREG(st.st_mode))
		return fail(-EINVAL, "only regular files can be registered");
	if (!(mr = mr_new(d)))
		return fail(-ENOMEM, "out of memory");
	ret = daxfs_pin_signal(fd, offset, length, flags, d->attr.signo, &mr->pin);
	if (ret) {
		mr->refs = 0;
		free(mr);
		return explain_pin(ret, fd, offset, length, flags, d->attr.signo);
	}
	mr->pinned = true;
	mr->flags = flags;
	mr->ino = st.st_ino;
	pthread_mutex_lock(&d->mu);
	ret = src_get_locked(d, fd, &mr->src);
	pthread_mutex_unlock(&d->mu);
	if (ret) {
		daxfs_unpin(fd, mr->pin.id);
		mr_put(mr);
		return fail(ret, "%s", strerror(-ret));
	}
	/* Defensive: every extent inside the data area (never the metadata, whatever the daemon said). */
	for (uint32_t i = 0; i < mr->pin.nextents; i++) {
		const struct daxfs_pin_extent *e = &mr->pin.ext[i];

		if (e->media_off != DAXFS_MEDIA_ZERO && (e->media_off < d->lo || e->media_off > d->hi || e->len > d->hi - e->media_off)) {
			daxfs_unpin(mr->src->fd, mr->pin.id);
			mr_put(mr);
			return fail(-EIO, "pin extent at media %llu (+%llu) lies outside the data area: not the media the device opened?",
				    (unsigned long long)e->media_off, (unsigned long long)e->len);
		}
	}
	mr_link(d, mr);
	*out = mr;
	return 0;
}

int daxfs_reg_mr_raw(struct daxfs_dev *d, uint64_t ino, const struct daxfs_pin *pin, uint32_t flags,
		     struct daxfs_mr **out)
{
	struct daxfs_mr *mr;
	uint64_t at = pin->offset;

	errmsg[0] = 0;
	*out = NULL;
	if (pin->length == 0 || pin->nextents == 0)
		return fail(-EINVAL, "empty registration");
	for (uint32_t i = 0; i < pin->nextents; i++) {
		const struct daxfs_pin_extent *e = &pin->ext[i];

		if (e->file_off != at || e->len == 0 || e->len % DAXFS_TAG_UNIT ||
		    (e->media_off != DAXFS_MEDIA_ZERO && (e->media_off % DAXFS_TAG_UNIT || e->media_off < d->lo ||
							  e->media_off > d->hi || e->len > d->hi - e->media_off)))
			return fail(-EINVAL, "extent %u does not tile the range inside the media", i);
		at += e->len;
	}
	if (at != pin->offset + pin->length)
		return fail(-EINVAL, "the extents do not cover the range");
	if (!(mr = mr_new(d)))
		return fail(-ENOMEM, "out of memory");
	mr->pin = *pin;
	mr->pin.id = pin->id ? pin->id : ADD(&d->raw_ids, 1);
	mr->pin.ext = malloc(pin->nextents * sizeof(*pin->ext));
	if (!mr->pin.ext) {
		free(mr);
		return fail(-ENOMEM, "out of memory");
	}
	memcpy(mr->pin.ext, pin->ext, pin->nextents * sizeof(*pin->ext));
	mr->flags = flags;
	mr->ino = ino;
	mr_link(d, mr);
	*out = mr;
	return 0;
}

/* Let go of the pin, once, whoever asks first (the event thread or the deregistration). */
static int mr_unpin(struct daxfs_mr *mr)
{
	pthread_mutex_lock(&mr->mu);
	bool was = mr->pinned;
	mr->pinned = false;
	pthread_mutex_unlock(&mr->mu);
	if (!was || !mr->src)
		return 0;
	int ret = daxfs_unpin(mr->src->fd, mr->pin.id);
	return ret == -ENOENT ? 0 : ret;
}

int daxfs_dereg_mr(struct daxfs_mr *mr)
{
	struct daxfs_dev *d = mr->dev;

	pthread_mutex_lock(&d->mu);
	for (struct daxfs_mr **pp = &d->mrs; *pp; pp = &(*pp)->next) {
		if (*pp == mr) {
			*pp = mr->next;
			break;
		}
	}
	pthread_mutex_unlock(&d->mu);
	/* No new request from here (posters check the state under mr->mu); then the fence. */
	pthread_mutex_lock(&mr->mu);
	mr->state = DAXFS_MR_DEREG;
	pthread_cond_broadcast(&mr->cond);
	pthread_mutex_unlock(&mr->mu);
	mr_drain(mr, 0, UINT64_MAX);
	int ret = mr_unpin(mr);
	mr_put(mr);
	return ret;
}

void daxfs_mr_query(struct daxfs_mr *mr, struct daxfs_mr_info *in)
{
	memset(in, 0, sizeof(*in));
	pthread_mutex_lock(&mr->mu);
	in->pin_id = mr->pin.id;
	in->ino = mr->ino;
	in->offset = mr->pin.offset;
	in->length = mr->pin.length;
	in->flags = mr->flags;
	in->state = mr->state;
	in->gen = mr->pin.gen;
	in->nextents = mr->pin.nextents;
	in->invalidated = mr->ninv;
	in->lost_event = mr->lost_event;
	in->lost_ns = mr->lost_ns;
	in->events = mr->events;
	in->faults = mr->faults;
	in->refaults = mr->refaults;
	in->acks = mr->acks;
	pthread_mutex_unlock(&mr->mu);
	pthread_mutex_lock(&mr->ifl);
	in->inflight = mr->ninflight;
	pthread_mutex_unlock(&mr->ifl);
}

int daxfs_mr_extents(struct daxfs_mr *mr, struct daxfs_pin_extent **ext, uint32_t *n)
{
	pthread_mutex_lock(&mr->mu);
	*n = mr->pin.nextents;
	*ext = malloc((*n ? *n : 1) * sizeof(**ext));
	if (*ext)
		memcpy(*ext, mr->pin.ext, *n * sizeof(**ext));
	pthread_mutex_unlock(&mr->mu);
	return *ext ? 0 : -ENOMEM;
}

/* ---- queue pairs ---- */

int daxfs_qp_create(struct daxfs_dev *d, uint32_t depth, struct daxfs_qp **out)
{
	struct daxfs_qp *qp;

	*out = NULL;
	if (depth == 0 || depth > 4096)
		return -EINVAL;
	if (!(qp = calloc(1, sizeof(*qp))))
		return -ENOMEM;
	qp->dev = d;
	qp->depth = depth;
	pthread_mutex_init(&qp->mu, NULL);
	qp->slots = calloc(depth, sizeof(*qp->slots));
	qp->free = calloc(depth, sizeof(*qp->free));
	qp->cq = calloc(depth, sizeof(*qp->cq));
	if (!qp->slots || !qp->free || !qp->cq)
		goto nomem;
	for (uint32_t i = 0; i < depth; i++)
		qp->free[i] = depth - 1 - i;
	qp->nfree = depth;
	if (d->access == DAXFS_DEV_ACCESS_URING) {
		struct io_uring_params p = { .flags = IORING_SETUP_CQSIZE, .cq_entries = RING_CQ };
		int ret = io_uring_queue_init_params(RING_SQ, &qp->ring, &p);

		if (ret) {
			free(qp->slots);
			free(qp->free);
			free(qp->cq);
			free(qp);
			return ret;
		}
		qp->has_ring = true;
	}
	pthread_mutex_lock(&d->mu);
	qp->next = d->qps;
	d->qps = qp;
	pthread_mutex_unlock(&d->mu);
	*out = qp;
	return 0;
nomem:
	free(qp->slots);
	free(qp->free);
	free(qp->cq);
	free(qp);
	return -ENOMEM;
}

void daxfs_qp_destroy(struct daxfs_qp *qp)
{
	struct daxfs_dev *d = qp->dev;

	for (;;) {
		pthread_mutex_lock(&qp->mu);
		qp_progress(qp, 10);
		bool idle = qp->hw == 0;
		pthread_mutex_unlock(&qp->mu);
		if (idle)
			break;
	}
	pthread_mutex_lock(&d->mu);
	for (struct daxfs_qp **pp = &d->qps; *pp; pp = &(*pp)->next) {
		if (*pp == qp) {
			*pp = qp->next;
			break;
		}
	}
	pthread_mutex_unlock(&d->mu);
	if (qp->has_ring)
		io_uring_queue_exit(&qp->ring);
	for (uint32_t i = 0; i < qp->depth; i++)
		free(qp->slots[i].buf);
	free(qp->slots);
	free(qp->free);
	free(qp->cq);
	pthread_mutex_destroy(&qp->mu);
	free(qp);
}

uint32_t daxfs_qp_outstanding(struct daxfs_qp *qp)
{
	pthread_mutex_lock(&qp->mu);
	uint32_t n = qp->outstanding;
	pthread_mutex_unlock(&qp->mu);
	return n;
}

static int cq_pop(struct daxfs_qp *qp, struct daxfs_wc *wc, int max)
{
	int n = 0;

	while (n < max && qp->cq_len) {
		wc[n++] = qp->cq[qp->cq_head];
		qp->cq_head = (qp->cq_head + 1) % qp->depth;
		qp->cq_len--;
		qp->outstanding--;
	}
	return n;
}

int daxfs_poll_cq(struct daxfs_qp *qp, struct daxfs_wc *wc, int max)
{
	pthread_mutex_lock(&qp->mu);
	qp_reap(qp);
	int n = cq_pop(qp, wc, max);
	pthread_mutex_unlock(&qp->mu);
	return n;
}

int daxfs_wait_cq(struct daxfs_qp *qp, struct daxfs_wc *wc, int max, int timeout_ms)
{
	uint64_t deadline = timeout_ms < 0 ? UINT64_MAX : now_ns() + (uint64_t)timeout_ms * 1000000ull;

	for (;;) {
		pthread_mutex_lock(&qp->mu);
		qp_reap(qp);
		int n = cq_pop(qp, wc, max);
		/*
		 * Requests outstanding and not in the completion queue are in the ring (mmap and ioctl
		 * requests complete as they are posted).
		 */
		if (n || qp->outstanding == 0 || max <= 0) {
			pthread_mutex_unlock(&qp->mu);
			return n;
		}
		uint64_t t = now_ns();
		if (t >= deadline) {
			pthread_mutex_unlock(&qp->mu);
			return 0;
		}
		/* Bounded, so a fence on another thread is never kept from this queue pair for long. */
		uint64_t left = deadline - t;
		qp_progress(qp, left > 10000000ull ? 10 : (int)(left / 1000000ull) + 1);
		pthread_mutex_unlock(&qp->mu);
	}
}

/* ---- invalidated ranges (mr->mu held) ---- */

static bool inval_pending(const struct daxfs_mr *mr, uint64_t off, uint64_t len)
{
	for (uint32_t i = 0; i < mr->ninv; i++)
		if (!mr->inv[i].acked && mr->inv[i].off < off + len && off < mr->inv[i].off + mr->inv[i].len)
			return true;
	return false;
}

static int inval_add(struct daxfs_mr *mr, uint64_t off, uint64_t len, bool acked)
{
	if (mr->ninv == mr->capinv) {
		uint32_t cap = mr->capinv ? mr->capinv * 2 : 4;
		struct inval *v = realloc(mr->inv, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		mr->inv = v;
		mr->capinv = cap;
	}
	mr->inv[mr->ninv++] = (struct inval){ .off = off, .len = len, .acked = acked };
	return 0;
}

/* [off, off + len) was re-resolved: no acknowledged invalidation covers it any more. */
static void inval_remove(struct daxfs_mr *mr, uint64_t off, uint64_t len)
{
	for (uint32_t i = 0; i < mr->ninv;) {
		struct inval *v = &mr->inv[i];
		uint64_t end = v->off + v->len;

		if (!v->acked || end <= off || v->off >= off + len) {
			i++;
			continue;
		}
		if (v->off < off && end > off + len) {
			/* Split: the tail becomes an entry of its own. */
			uint64_t tail = off + len;

			v->len = off - v->off;
			if (inval_add(mr, tail, end - tail, true))
				v->len = end - v->off;	/* out of memory: keep it whole, it refaults again */
			i++;
		} else if (v->off < off) {
			v->len = off - v->off;
			i++;
		} else if (end > off + len) {
			v->len = end - (off + len);
			v->off = off + len;
			i++;
		} else {
			mr->inv[i] = mr->inv[--mr->ninv];
		}
	}
}

/*
 * The first part of [off, off + len) of mr the device may not use as it stands: under an
 * acknowledged invalidation, or missing from the extents.  false if none.  mr->mu held.
 */
static bool needs_fault(const struct daxfs_mr *mr, uint64_t off, uint64_t len, uint64_t *foff, uint64_t *flen)
{
	uint64_t best = UINT64_MAX, best_end = 0;

	for (uint32_t i = 0; i < mr->ninv; i++) {
		const struct inval *v = &mr->inv[i];
		uint64_t s = v->off > off ? v->off : off, e = v->off + v->len < off + len ? v->off + v->len : off + len;

		if (v->acked && s < e && s < best) {
			best = s;
			best_end = e;
		}
	}
	for (uint64_t pos = off; pos < off + len && pos < best;) {
		uint64_t m, run;

		if (daxfs_pin_map(&mr->pin, pos, &m, &run) == 0) {
			pos += run;
			continue;
		}
		/* A gap: up to the next extent or the end of the range. */
		uint64_t end = off + len;
		for (uint32_t i = 0; i < mr->pin.nextents; i++) {
			uint64_t s = mr->pin.ext[i].file_off - mr->pin.offset;
			if (s > pos && s < end)
				end = s;
		}
		best = pos;
		best_end = end;
		break;
	}
	if (best == UINT64_MAX)
		return false;
	*foff = best;
	*flen = best_end - best;
	return true;
}

/*
 * Is a free (truncate, punch, O_TRUNC) over file bytes [start, end) of ino still in progress?  Its
 * blocks are still in the file until it completes: a refault now would pin them again, and the free
 * would have to invalidate them once more.
 */
static bool break_in_progress(struct daxfs_dev *d, uint64_t ino, uint64_t start, uint64_t end)
{
	struct daxfs_wait_info *w;
	uint32_t n;
	bool busy = false;

	if (daxfs_list_waits(d->mount_fd, &w, &n))
		return false;
	for (uint32_t i = 0; i < n && !busy; i++)
		busy = w[i].kind != DAXFS_WAIT_PIN && w[i].ino == ino && w[i].offset < end &&
		       (w[i].length == UINT64_MAX || start < w[i].offset + w[i].length);
	free(w);
	return busy;
}

#define BREAK_WAIT_NS 1000000000ull

/*
 * Make [off, off + len) usable: re-resolve (DAXFS_IOC_PIN_FAULT) the parts invalidations took.
 * Like the kernel's ODP fault path, which waits for invalidate_range_end, it first waits (a bounded
 * time) for the free that invalidated them to finish.
 * 0, or the fault's error: -ENXIO past EOF, -ENOLINK revoked, -EFAULT without a mount.  mr->mu held.
 */
static int fault_in(struct daxfs_mr *mr, uint64_t off, uint64_t len)
{
	struct daxfs_dev *d = mr->dev;
	uint64_t foff, flen;

	while (needs_fault(mr, off, len, &foff, &flen)) {
		mr->faults++;
		ADD(&d->st.faults, 1);
		if (!mr->src)
			return -EFAULT;
		/* Whole blocks: a pin is made of them. */
		uint64_t bs = d->bs, s = foff / bs * bs, e = (foff + flen + bs - 1) / bs * bs;
		if (e > mr->pin.length)
			e = mr->pin.length;
		for (uint64_t until = now_ns() + BREAK_WAIT_NS;
		     break_in_progress(d, mr->ino, mr->pin.offset + s, mr->pin.offset + e) && now_ns() < until;) {
			struct timespec ts = { 0, 200000 };
			nanosleep(&ts, NULL);
		}
		int ret = daxfs_pin_fault(mr->src->fd, &mr->pin, s, e - s);
		if (ret)
			return ret;
		mr->refaults++;
		ADD(&d->st.refaults, 1);
		inval_remove(mr, s, e - s);
	}
	return 0;
}

/* ---- posting ---- */


/* Is every media piece of [off, off + len) inside the device's window?  mr->mu held. */
static int check_window(struct daxfs_dev *d, const struct daxfs_mr *mr, uint64_t off, uint64_t len)
{
	for (uint64_t pos = off; pos < off + len;) {
		uint64_t m, run;

		if (daxfs_pin_map(&mr->pin, pos, &m, &run))
			return -EFAULT;
		if (run > off + len - pos)
			run = off + len - pos;
		if (m != DAXFS_MEDIA_ZERO && (m < d->lo || m > d->hi || run > d->hi - m))
			return -EFAULT;
		pos += run;
	}
	return 0;
}

static struct io_uring_sqe *get_sqe(struct daxfs_qp *qp)
{
	struct io_uring_sqe *sqe;

	while (!(sqe = io_uring_get_sqe(&qp->ring)))
		io_uring_submit(&qp->ring);
	return sqe;
}

/* Submit what is queued; a full completion ring is drained first.  qp->mu held. */
static void submit_all(struct daxfs_qp *qp)
{
	for (int tries = 0; tries < 1000; tries++) {
		int r = io_uring_submit(&qp->ring);

		if (r >= 0 || (r != -EBUSY && r != -EAGAIN && r != -EINTR))
			return;
		qp_progress(qp, 1);
	}
}

/*
 * Issue slot s: [s->off, s->off + s->len) of its registration, piece by piece at the media offsets
 * the registration holds.  Both locks held.  Returns true when it is in the ring (its completion
 * comes from there), false when it is done already.
 */
static bool issue(struct daxfs_qp *qp, struct wr_slot *s, void *dst)
{
	struct daxfs_dev *d = qp->dev;
	struct daxfs_mr *mr = s->mr;
	bool write = s->opcode == DAXFS_WR_WRITE;
	bool gate = d->access == DAXFS_DEV_ACCESS_URING && (d->attr.flags & DAXFS_DEV_F_GATE);
	uint32_t idx = (uint32_t)(s - qp->slots), n = 0;
	struct io_uring_sqe *last = NULL;

	if (d->access == DAXFS_DEV_ACCESS_IOCTL) {
		/* The daemon's engine writes its own tags through the pin (fenced by it). */
		s->status = daxfs_dma(mr->src->fd, mr->pin.id, DAXFS_DMA_WRITE_PATTERN, s->off, s->len, s->seq, NULL, NULL);
		s->bytes = s->status ? 0 : s->len;
		return false;
	}
	if (d->access == DAXFS_DEV_ACCESS_URING) {
		/* Room for every piece's completion. */
		uint64_t need = s->len / d->bs + 3;
		while (qp->pieces + need > RING_CQ && qp->pieces)
			qp_progress(qp, 1);
		if (gate) {
			if (io_uring_sq_space_left(&qp->ring) < need)
				io_uring_submit(&qp->ring);
			struct io_uring_sqe *sqe = get_sqe(qp);
			io_uring_prep_read(sqe, d->attr.gate_fd, &s->gate_val, sizeof(s->gate_val), (__u64)-1);
			sqe->user_data = ud_make(idx, UD_KIND_GATE, sizeof(s->gate_val));
			sqe->flags |= IOSQE_IO_LINK;
			last = sqe;
			n++;
		}
	}
	for (uint64_t pos = s->off, end = s->off + s->len; pos < end;) {
		uint64_t m, run;

		daxfs_pin_map(&mr->pin, pos, &m, &run);	/* check_window made sure it maps */
		if (run > end - pos)
			run = end - pos;
		char *buf = (write ? s->buf : (char *)dst) + (pos - s->off);
		if (m == DAXFS_MEDIA_ZERO) {
			/* A hole of a read registration: zeroes, and nothing is ever written there. */
			if (!write) {
				memset(buf, 0, run);
				s->bytes += run;
			}
			pos += run;
			continue;
		}
		if (write) {
			struct daxfs_tag t = { .pin_id = mr->pin.id, .ino = mr->ino, .file_off = mr->pin.offset + pos,
					       .media_off = m, .seq = s->seq, .gen = s->gen,
					       .source = DAXFS_TAG_SRC_DEVICE, .time_ns = s->posted_ns };
			daxfs_tag_fill(buf, run, &t);
		}
		if (d->access == DAXFS_DEV_ACCESS_MMAP) {
			if (write && d->is_pmem)
				pmem_memcpy_nodrain(d->map + m, buf, run);
			else if (write)
				memcpy(d->map + m, buf, run);
			else
				memcpy(buf, d->map + m, run);
			s->bytes += run;
		} else {
			struct io_uring_sqe *sqe = get_sqe(qp);

			if (write)
				io_uring_prep_write(sqe, d->media_fd, buf, (unsigned)run, m);
			else
				io_uring_prep_read(sqe, d->media_fd, buf, (unsigned)run, m);
			sqe->user_data = ud_make(idx, UD_KIND_DATA, run);
			if (gate)
				sqe->flags |= IOSQE_IO_LINK;
			last = sqe;
			n++;
		}
		pos += run;
	}
	if (d->access == DAXFS_DEV_ACCESS_MMAP) {
		if (write && d->is_pmem)
			pmem_drain();
		return false;
	}
	if (n == 0 || (gate && n == 1)) {
		/* Nothing to move (holes only); a lone gate read is consumed like any. */
		if (gate) {
			last->flags &= (__u8)~IOSQE_IO_LINK;
			s->pieces = 1;
			goto submit;
		}
		return false;
	}
	last->flags &= (__u8)~IOSQE_IO_LINK;
	s->pieces = n;
submit:
	pthread_mutex_lock(&mr->ifl);
	TAILQ_INSERT_TAIL(&mr->inflight, s, link);
	mr->ninflight++;
	pthread_mutex_unlock(&mr->ifl);
	qp->hw++;
	qp->pieces += s->pieces;
	if (!s->defer)
		submit_all(qp);
	return true;
}

static int post_one(struct daxfs_qp *qp, const struct daxfs_wr *wr, bool defer)
{
	struct daxfs_dev *d = qp->dev;
	struct daxfs_mr *mr = wr->mr;
	int ret = 0, status = 0;

	if (!mr || mr->dev != d || wr->reserved || (wr->opcode != DAXFS_WR_WRITE && wr->opcode != DAXFS_WR_READ))
		return -EINVAL;
	/* The registration's range never changes: checked without its lock. */
	if (wr->length == 0 || wr->length > d->attr.max_wr || wr->offset % DAXFS_TAG_UNIT ||
	    wr->length % DAXFS_TAG_UNIT || wr->offset >= mr->pin.length || wr->length > mr->pin.length - wr->offset)
		return -EINVAL;
	if (wr->opcode == DAXFS_WR_WRITE && !(mr->flags & DAXFS_PIN_WRITE))
		return -EACCES;
	if (wr->opcode == DAXFS_WR_READ && d->access == DAXFS_DEV_ACCESS_IOCTL)
		return -EOPNOTSUPP;

	mr_get(mr);	/* a deregistration racing with us fails us (ESHUTDOWN) but frees nothing under us */
	pthread_mutex_lock(&mr->mu);
	for (;;) {
		if (mr->state == DAXFS_MR_DEREG) {
			ret = -ESHUTDOWN;
			goto out;
		}
		if (mr->state != DAXFS_MR_ACTIVE) {
			ret = -ENOLINK;
			goto out;
		}
		/* An invalidation of this range is being processed: wait for its acknowledgement. */
		if (!inval_pending(mr, wr->offset, wr->length))
			break;
		pthread_cond_wait(&mr->cond, &mr->mu);
	}
	pthread_mutex_lock(&qp->mu);
	if (qp->outstanding >= qp->depth) {
		pthread_mutex_unlock(&qp->mu);
		ret = -EAGAIN;
		goto out;
	}
	pthread_mutex_unlock(&qp->mu);
	/* A fault is a round trip to the daemon: done before the queue pair is locked. */
	status = fault_in(mr, wr->offset, wr->length);
	if (status == 0)
		status = check_window(d, mr, wr->offset, wr->length);

	pthread_mutex_lock(&qp->mu);
	if (qp->outstanding >= qp->depth) {	/* another thread posted on this queue pair meanwhile */
		pthread_mutex_unlock(&qp->mu);
		ret = -EAGAIN;
		goto out;
	}
	struct wr_slot *s = &qp->slots[qp->free[--qp->nfree]];
	*s = (struct wr_slot){ .mr = mr, .wr_id = wr->wr_id, .opcode = wr->opcode, .off = wr->offset, .len = wr->length,
			       .seq = wr->seq ? wr->seq : __atomic_fetch_add(&d->next_seq, 1, __ATOMIC_RELAXED),
			       .gen = mr->pin.gen, .posted_ns = now_ns(), .status = status, .buf = s->buf, .cap = s->cap,
			       .used = true, .defer = defer };
	qp->outstanding++;
	ADD(&d->st.posted, 1);
	void *dst = wr->buf;
	if (status == 0 && (wr->opcode == DAXFS_WR_WRITE || !dst) && s->cap < wr->length) {
		free(s->buf);
		s->cap = 0;
		s->buf = malloc(wr->length);
		if (s->buf)
			s->cap = wr->length;
		else
			s->status = status = -ENOMEM;
	}
	if (!dst)
		dst = s->buf;
	if (status || !issue(qp, s, dst))
		slot_complete(qp, s, false);
	pthread_mutex_unlock(&qp->mu);
out:
	pthread_mutex_unlock(&mr->mu);
	mr_put(mr);
	return ret;
}

int daxfs_post(struct daxfs_qp *qp, const struct daxfs_wr *wr)
{
	return post_one(qp, wr, false);
}

int daxfs_post_list(struct daxfs_qp *qp, const struct daxfs_wr *wr, int n, int *posted)
{
	int ret = 0, i;

	for (i = 0; i < n; i++)
		if ((ret = post_one(qp, &wr[i], i + 1 < n)))
			break;
	if (i && qp->has_ring) {
		/* One doorbell for the list (those before a refused one too). */
		pthread_mutex_lock(&qp->mu);
		if (io_uring_sq_ready(&qp->ring))
			submit_all(qp);
		pthread_mutex_unlock(&qp->mu);
	}
	if (posted)
		*posted = i;
	return ret;
}

/* ---- events ---- */

/* Cooperative answer to a lease break, a revocation or a drop: stop, drain, unpin. */
static void mr_stop(struct daxfs_mr *mr, uint32_t why)
{
	struct daxfs_dev *d = mr->dev;

	pthread_mutex_lock(&mr->mu);
	if (mr->state != DAXFS_MR_ACTIVE) {
		pthread_mutex_unlock(&mr->mu);
		return;
	}
	mr->state = DAXFS_MR_STOPPING;
	mr->lost_event = why;
	pthread_cond_broadcast(&mr->cond);
	pthread_mutex_unlock(&mr->mu);
	mr_drain(mr, 0, UINT64_MAX);
	mr_unpin(mr);
	ADD(&d->st.lost, 1);	/* counted before it shows LOST: who sees LOST sees the count */
	pthread_mutex_lock(&mr->mu);
	if (mr->state == DAXFS_MR_STOPPING) {
		mr->state = DAXFS_MR_LOST;
		mr->lost_ns = now_ns();
	}
	pthread_cond_broadcast(&mr->cond);
	pthread_mutex_unlock(&mr->mu);
}

/* Cooperative answer to an invalidation: stop using the range, drain it, acknowledge. */
static void mr_invalidate(struct daxfs_mr *mr, const struct daxfs_event *ev)
{
	struct daxfs_dev *d = mr->dev;

	pthread_mutex_lock(&mr->mu);
	if (mr->state != DAXFS_MR_ACTIVE) {
		pthread_mutex_unlock(&mr->mu);
		return;
	}
	uint64_t s = ev->file_off > mr->pin.offset ? ev->file_off : mr->pin.offset;
	uint64_t e = mr->pin.offset + mr->pin.length;
	if (ev->len != UINT64_MAX && ev->file_off + ev->len < e)
		e = ev->file_off + ev->len;
	uint64_t off = s - mr->pin.offset, len = e > s ? e - s : 0;
	bool added = len && inval_add(mr, off, len, false) == 0;
	pthread_mutex_unlock(&mr->mu);
	if (len)
		mr_drain(mr, off, len);
	int ret = daxfs_event_ack(mr->src->fd, mr->pin.id, ev->seq);
	pthread_mutex_lock(&mr->mu);
	for (uint32_t i = 0; added && i < mr->ninv; i++) {
		if (!mr->inv[i].acked && mr->inv[i].off == off && mr->inv[i].len == len) {
			/* Acknowledged (or refused, the pin revoked): either way it must refault before use. */
			mr->inv[i].acked = true;
			break;
		}
	}
	if (ret == 0) {
		mr->acks++;
		ADD(&d->st.acks, 1);
	}
	pthread_cond_broadcast(&mr->cond);
	pthread_mutex_unlock(&mr->mu);
}

static void act(struct daxfs_mr *mr, const struct daxfs_event *ev)
{
	switch (ev->type) {
	case DAXFS_EV_LEASE_BREAK:
	case DAXFS_EV_REVOKED:
	case DAXFS_EV_DROPPED:
		mr_stop(mr, ev->type);
		break;
	case DAXFS_EV_INVALIDATE:
		if (mr->src)
			mr_invalidate(mr, ev);
		break;
	}
}

static void defer(struct daxfs_dev *d, struct daxfs_mr *mr, const struct daxfs_event *ev, uint64_t due)
{
	struct deferred *f = malloc(sizeof(*f)), **pp = &d->deferred;

	if (!f) {
		act(mr, ev);	/* out of memory: cooperate at once rather than never */
		mr_put(mr);
		return;
	}
	*f = (struct deferred){ .due_ns = due, .mr = mr, .ev = *ev };
	while (*pp && (*pp)->due_ns <= due)
		pp = &(*pp)->next;
	f->next = *pp;
	*pp = f;
}

static void handle_event(struct daxfs_dev *d, const struct daxfs_event *ev)
{
	struct daxfs_mr *mr;

	pthread_mutex_lock(&d->mu);
	for (mr = d->mrs; mr && mr->pin.id != ev->pin_id; mr = mr->next)
		;
	if (mr) {
		mr_get(mr);
	} else {
		/*
		 * A registration already gone, a pin someone else took on that file, or one being
		 * registered: kept a second in case it is the last.
		 */
		uint32_t keep = 0;
		for (uint32_t i = 0; i < d->nunclaimed; i++)
			if (d->unclaimed[i].time_ns + 1000000000ull > ev->time_ns)
				d->unclaimed[keep++] = d->unclaimed[i];
		d->nunclaimed = keep;
		if (keep == sizeof(d->unclaimed) / sizeof(d->unclaimed[0]))
			memmove(d->unclaimed, d->unclaimed + 1, --d->nunclaimed * sizeof(d->unclaimed[0]));
		d->unclaimed[d->nunclaimed++] = *ev;
	}
	pthread_mutex_unlock(&d->mu);
	if (!mr)
		return;
	pthread_mutex_lock(&mr->mu);
	bool dup = ev->seq <= mr->last_seq;
	if (!dup) {
		mr->last_seq = ev->seq;
		mr->events++;
	}
	pthread_mutex_unlock(&mr->mu);
	if (dup) {
		mr_put(mr);
		return;
	}
	ADD(&d->st.events[ev->type <= DAXFS_EV_DROPPED ? ev->type : 0], 1);
	__atomic_store_n(&d->st.last_event_ns, now_ns(), __ATOMIC_RELAXED);
	if (d->attr.on_event)
		d->attr.on_event(d->attr.arg, mr, ev);
	switch (d->attr.behaviour) {
	case DAXFS_DEV_COOPERATIVE:
		act(mr, ev);
		break;
	case DAXFS_DEV_SLOW:
		defer(d, mr, ev, now_ns() + (uint64_t)d->attr.slow_ms * 1000000ull);
		return;	/* the deferred action keeps the reference */
	case DAXFS_DEV_IGNORE:
		break;
	}
	mr_put(mr);
}

/* Read the events of every open file the device pins through, and handle them. */
static void read_events(struct daxfs_dev *d)
{
	struct daxfs_event ev[DAXFS_EVENTS_MAX];
	struct src **v = NULL;
	uint32_t n = 0;

	pthread_mutex_lock(&d->mu);
	for (struct src *s = d->srcs; s; s = s->next)
		n++;
	if (n && (v = malloc(n * sizeof(*v)))) {
		n = 0;
		for (struct src *s = d->srcs; s; s = s->next) {
			s->refs++;
			v[n++] = s;
		}
	}
	pthread_mutex_unlock(&d->mu);
	if (!v)
		return;
	for (uint32_t i = 0; i < n; i++) {
		struct src *s = v[i];

		for (;;) {
			uint32_t got = 0;
			uint64_t next;

			if (daxfs_events(s->fd, s->next_seq, ev, DAXFS_EVENTS_MAX, &got, &next) || got == 0)
				break;
			s->next_seq = ev[got - 1].seq + 1;
			for (uint32_t k = 0; k < got; k++)
				handle_event(d, &ev[k]);
			if (got < DAXFS_EVENTS_MAX)
				break;
		}
	}
	pthread_mutex_lock(&d->mu);
	for (uint32_t i = 0; i < n; i++)
		src_put_locked(d, v[i]);
	pthread_mutex_unlock(&d->mu);
	free(v);
}

static void *event_thread(void *arg)
{
	struct daxfs_dev *d = arg;

	while (!__atomic_load_n(&d->stop, __ATOMIC_ACQUIRE)) {
		uint64_t t = now_ns(), wait = (uint64_t)d->attr.poll_ms * 1000000ull;
		struct pollfd pfd = { .fd = d->efd, .events = POLLIN };
		uint64_t drained;

		if (d->deferred)
			wait = d->deferred->due_ns <= t ? 0 : d->deferred->due_ns - t < wait ? d->deferred->due_ns - t : wait;
		poll(&pfd, 1, (int)((wait + 999999) / 1000000));
		if (read(d->efd, &drained, sizeof(drained)) < 0) {
			/* nothing signalled: a poll period passed */
		}
		if (__atomic_load_n(&d->stop, __ATOMIC_ACQUIRE))
			break;
		read_events(d);
		pthread_mutex_lock(&d->mu);
		struct daxfs_event replay[sizeof(d->replay) / sizeof(d->replay[0])];
		uint32_t nreplay = d->nreplay;
		memcpy(replay, d->replay, nreplay * sizeof(replay[0]));
		d->nreplay = 0;
		pthread_mutex_unlock(&d->mu);
		for (uint32_t i = 0; i < nreplay; i++)
			handle_event(d, &replay[i]);
		t = now_ns();
		while (d->deferred && d->deferred->due_ns <= t) {
			struct deferred *f = d->deferred;

			d->deferred = f->next;
			act(f->mr, &f->ev);
			mr_put(f->mr);
			free(f);
		}
	}
	return NULL;
}
