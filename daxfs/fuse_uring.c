/* SPDX-License-Identifier: MIT */
/*
 * FUSE over io_uring (see fuse_uring.h for what and why).  The protocol, from the kernel's side
 * (fs/fuse/dev_uring.c, include/uapi/linux/fuse.h 7.42):
 *
 *  - The INIT reply carries FUSE_OVER_IO_URING; only then, and only once INIT is done, does the
 *    kernel accept the ring commands: IORING_OP_URING_CMD on the /dev/fuse descriptor, 128-byte
 *    SQEs whose command area holds {flags, commit_id, qid}.
 *  - REGISTER gives the kernel an entry of queue qid: two buffers, a 288-byte header (the
 *    fuse_in_header, the opcode's fixed argument, and {commit_id, payload_sz}) and a payload buffer
 *    at least as large as the biggest request (max_write, max_pages).  The command completes when a
 *    request has been copied into the entry.  Once every CPU's queue has an entry, the kernel sends
 *    requests there and no longer to /dev/fuse.
 *  - COMMIT_AND_FETCH (commit_id = the request's unique, which the kernel put in the header) hands
 *    back the reply, written into the same entry (fuse_out_header in the header, the rest in the
 *    payload with its size), and makes the entry wait for the next request.
 *  - The kernel ends the commands with -ENOTCONN when the connection goes (unmount, abort).
 *
 * A request thus arrives in two pieces, header and payload.  libfuse wants one buffer, so the
 * payload buffer has a page of headroom in front: the header and the fixed argument are copied
 * there, before the payload, and a 1 MiB write is not copied at all.
 *
 * One property of the kernel's side shapes the rest: a request that finds no free entry on its
 * queue waits in the kernel, and only a commit fetches it; a new REGISTER does not.  libfuse's
 * fixed pool has the same trap.  Here a request that parks (a truncate waiting for a pin) holds its
 * entry without committing, and the entry registered in its place sits free while requests that
 * queued meanwhile wait behind it; with a thousand truncates parked at once the CPU's queue all but
 * stops.  So each REGISTER after the first ones is followed, once submitted, by a "kick": the
 * queue's thread asks the kernel to retrieve zero bytes of a file (FUSE_NOTIFY_RETRIEVE, written to
 * /dev/fuse).  The kernel sends the answer as a FUSE_NOTIFY_REPLY request on the queue of the
 * asking CPU: into a free entry if there is one (else it queues like any request, harmlessly), and
 * committing it fetches the request stranded behind, if any.  A kick with nothing stranded costs
 * one round trip.
 *
 * The kernel retrieves only from a regular file it has in its inode cache (6.18 refuses a
 * directory with EINVAL, an unknown node with ENOENT), and the daemon may neither hold a file of
 * its own mount open (the unmount would fail with EBUSY) nor make requests to itself (a daemon
 * killed in the middle of one never lets go of the connection).  The file of a parked request is
 * one the kernel has: its caller holds it.  So a kick names the node the last kick of the queue
 * named, else the nodes of the requests held now; a refused one is cheap and the next is tried.
 * When every one is refused (only directory operations parked, none of their files known) the
 * queue stays stranded until some request commits: counted in kick_failures.
 */
#include "fuse_uring.h"

#include <errno.h>
#include <liburing.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include "util.h"

#define ENABLE_PARAM "/sys/module/fuse/parameters/enable_uring"

/* ---- the protocol (7.42), under our own names: Debian 12's <linux/fuse.h> is 7.38 ---- */

#define URING_FLAG2		((uint32_t)(1ULL << (41 - 32)))	/* FUSE_OVER_IO_URING in flags2 */
#define RING_CMD_REGISTER	1
#define RING_CMD_COMMIT_AND_FETCH 2

struct ring_ent_in_out {
	uint64_t flags;
	uint64_t commit_id;		/* the request's unique: name it when committing */
	uint32_t payload_sz;		/* bytes in the payload buffer, each way */
	uint32_t padding;
	uint64_t reserved;
};

struct ring_header {
	char in_out[128];		/* fuse_in_header in, fuse_out_header out */
	char op_in[128];		/* the opcode's fixed argument (fuse_write_in, ...) */
	struct ring_ent_in_out ent;
};

struct ring_cmd {			/* the SQE's command area */
	uint64_t flags;
	uint64_t commit_id;
	uint16_t qid;
	uint8_t padding[6];
};

_Static_assert(sizeof(struct ring_header) == 288, "fuse_uring_req_header");
_Static_assert(sizeof(struct ring_cmd) == 24, "fuse_uring_cmd_req");

/* ---- sizes ---- */

#define DEPTH		4	/* entries each queue keeps with the kernel, waiting for requests */
#define ENTRIES_MAX	8192	/* per queue: one mapping each, far below vm.max_map_count */
#define SQ_ENTRIES	64
#define CQ_ENTRIES	4096
#define HEADROOM	4096	/* in front of the payload: room for the header and fixed argument */
#define TICK_MS		20	/* the watchdog's period; a handler seen on two ticks is blocked */
#define START_TIMEOUT_MS 10000

#define EVENT_TAG	((void *)1)	/* user_data of the eventfd read; entries are aligned */
/* notify_unique of a kick: even, as the kernel's own, and far above any it will hand out. */
#define KICK_UNIQUE	(1ULL << 62)
#define IS_KICK(unique)	(((unique) & ~((1ULL << 48) - 1)) == KICK_UNIQUE)
#define KICK_TRIES	16	/* candidate nodes tried per kick */

struct ring_queue;

/* A request buffer registered with the kernel, and the request it holds while we serve it. */
struct ring_ent {
	struct ring_queue *q;
	struct ring_header *hdr;
	char *map;			/* HEADROOM + payload_len bytes, anonymous, not reserved */
	char *payload;
	struct iovec iov[2];		/* what REGISTER names */
	uint64_t unique;		/* the request being served (its commit id) */
	uint64_t nodeid;		/* and its node: a kick may name it (see the top) */
	bool in_user;			/* on q->user: holds a request not yet replied to */
	struct ring_ent *prev, *next;	/* on q->user, or next on q->late */
	struct ring_ent *next_all;
};

/* A thread of a queue: its owner, or a spare waiting to become it. */
struct ring_worker {
	struct ring_queue *q;
	pthread_t thread;
	pthread_cond_t wake;		/* made owner, or the queue stops */
	bool first;			/* the queue's first thread: it sets the ring up */
	bool spare;			/* on q->spares */
	struct ring_worker *next_spare, *next_all;
};

/*
 * One CPU's queue.  The ring (SQ and CQ) and in_kernel are touched only by the owner, and
 * ownership moves (watchdog) only while the owner is inside a handler, where it touches the ring
 * only under the lock and only while still owner.
 */
struct ring_queue {
	struct fuse_uring *r;
	unsigned qid;
	struct io_uring ring;
	bool ring_ok;
	int efd;			/* eventfd: replies queued on late, or stop */
	uint64_t efd_buf;
	unsigned in_kernel;		/* entries whose command the kernel holds (owner only) */
	bool conn_gone;			/* the kernel ended the connection (owner only) */
	uint64_t kick_seq;		/* kicks sent (owner only) */
	uint64_t kick_nodeid;		/* the node the last kick named, 0 if none (owner only) */
	struct lock lock;
	/* under lock */
	struct ring_worker *owner;
	bool handling;			/* the owner is inside a handler */
	uint64_t seq;			/* handlers started */
	uint64_t watched_seq;		/* seq at the watchdog's last tick */
	struct ring_worker *spares, *workers;
	struct ring_ent *user;		/* entries holding a request not yet replied to */
	struct ring_ent *late;		/* replied to by a thread that is not the owner: to commit */
	unsigned nlate;
	bool efd_written;		/* efd written since the owner last took late */
	bool stopping;
	struct ring_ent *all;
	int start_err;			/* registration: 0 or -errno (under r->mu) */
	bool registered;		/* the first DEPTH entries are in: later REGISTERs owe a kick (owner only) */
	unsigned kicks_owed;		/* REGISTERs not yet followed by a kick (owner only) */
	/* statistics (relaxed atomics: read by the ioctl at any time) */
	atomic_uint nentries;
	atomic_uint nworkers;
	atomic_ulong requests;
	atomic_ulong deferred;
	atomic_uint kicks;
	atomic_uint kick_failures;
};

struct fuse_uring {
	struct fuse_session *se;
	enum transport requested;	/* -o transport= */
	enum transport mode;		/* what we try: requested, or dev when the probe failed */
	atomic_bool active;		/* queues up or coming up: replies to ring requests go there */
	atomic_bool up;			/* queues registered (statistics) */
	bool kernel_offers;		/* INIT offered FUSE_OVER_IO_URING */
	bool asked;			/* our INIT reply asked for it */
	bool failed;			/* transport=uring could not be had: the session ends */
	size_t payload_len;
	unsigned nqueues;
	struct ring_queue *queues;
	/* the start-up rendezvous and the watchdog */
	pthread_mutex_t mu;
	pthread_cond_t cond;		/* monotonic */
	unsigned nstarted;
	bool wd_stop;
	bool wd_started;
	pthread_t wd;
	char reason[128];		/* why /dev/fuse although io_uring was asked for */

	atomic_ulong dev_requests;
};

static __thread struct ring_worker *cur_worker;	/* this thread's queue role, if any */
static __thread struct ring_ent *cur_ent;	/* the request this thread's handler serves */

/* ---- small helpers ---- */

/* The number of possible CPUs as the kernel counts queues (highest possible CPU + 1). */
static unsigned possible_cpus(void)
{
	char buf[256];
	unsigned max = 0;
	FILE *f = fopen("/sys/devices/system/cpu/possible", "r");

	if (!f)
		return (unsigned)get_nprocs_conf();
	if (!fgets(buf, sizeof(buf), f)) {
		fclose(f);
		return (unsigned)get_nprocs_conf();
	}
	fclose(f);
	/* "0-3,5,8-11": the last number is the highest. */
	for (char *p = buf; *p; p++)
		if (*p >= '0' && *p <= '9') {
			unsigned v = (unsigned)strtoul(p, &p, 10);

			max = MAX(max, v);
			p--;
		}
	return max + 1;
}

static void log_errno(struct ring_queue *q, const char *what, int err)
{
	fprintf(stderr, "daxfs: io_uring queue %u: %s: %s\n", q->qid, what, strerror(-err));
}

/* An SQE of the owner's ring, submitting what is queued when the ring is full. */
static struct io_uring_sqe *queue_sqe(struct ring_queue *q)
{
	struct io_uring_sqe *sqe;

	while (!(sqe = io_uring_get_sqe(&q->ring)))
		io_uring_submit(&q->ring);
	return sqe;
}

static void prep_cmd(struct ring_queue *q, struct ring_ent *e, uint32_t op)
{
	struct io_uring_sqe *sqe = queue_sqe(q);
	struct ring_cmd *cmd = (struct ring_cmd *)sqe->cmd;

	memset(sqe, 0, 128);	/* SQE128: the command area must be zero beyond ours */
	sqe->opcode = IORING_OP_URING_CMD;
	sqe->flags = IOSQE_FIXED_FILE;
	sqe->fd = 0;		/* /dev/fuse, the ring's only registered file */
	sqe->cmd_op = op;
	cmd->qid = (uint16_t)q->qid;
	if (op == RING_CMD_REGISTER) {
		sqe->addr = (uintptr_t)e->iov;
		sqe->len = 2;
	} else {
		cmd->commit_id = e->unique;
	}
	io_uring_sqe_set_data(sqe, e);
	q->in_kernel++;
	/* A fresh entry fetches nothing that queued before it: a kick must (see the top). */
	if (op == RING_CMD_REGISTER && q->registered)
		q->kicks_owed++;
}

/* Wait for the next eventfd write (late replies, stop). */
static void arm_eventfd(struct ring_queue *q)
{
	struct io_uring_sqe *sqe = queue_sqe(q);

	io_uring_prep_read(sqe, q->efd, &q->efd_buf, sizeof(q->efd_buf), 0);
	io_uring_sqe_set_data(sqe, EVENT_TAG);
}

/* A new entry, registered with the kernel (owner only).  0 or -errno. */
static int add_entry(struct ring_queue *q)
{
	struct ring_ent *e = calloc(1, sizeof(*e));
	size_t len = HEADROOM + q->r->payload_len;

	if (!e)
		return -ENOMEM;
	e->q = q;
	e->hdr = aligned_alloc(64, ROUND_UP(sizeof(*e->hdr), 64));
	/* Not reserved: thousands of parked requests hold an entry each, but touch a page or two. */
	e->map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (!e->hdr || e->map == MAP_FAILED) {
		if (e->map != MAP_FAILED)
			munmap(e->map, len);
		free(e->hdr);
		free(e);
		return -ENOMEM;
	}
	memset(e->hdr, 0, sizeof(*e->hdr));
	e->payload = e->map + HEADROOM;
	e->iov[0] = (struct iovec){ .iov_base = e->hdr, .iov_len = sizeof(*e->hdr) };
	e->iov[1] = (struct iovec){ .iov_base = e->payload, .iov_len = q->r->payload_len };
	lock_take(&q->lock);
	e->next_all = q->all;
	q->all = e;
	lock_drop(&q->lock);
	atomic_fetch_add_explicit(&q->nentries, 1, memory_order_relaxed);
	prep_cmd(q, e, RING_CMD_REGISTER);
	return 0;
}

/*
 * Keep DEPTH entries with the kernel (owner only): an entry is away while its request waits (a
 * parked truncate) or while a blocked thread serves it, and the CPU's other requests must not
 * queue behind it.  Replies waiting on late come back by themselves.
 */
static void top_up(struct ring_queue *q)
{
	lock_take(&q->lock);
	unsigned coming = q->nlate;
	lock_drop(&q->lock);
	while (!q->conn_gone && q->in_kernel + coming < DEPTH &&
	       atomic_load_explicit(&q->nentries, memory_order_relaxed) < ENTRIES_MAX)
		if (add_entry(q))
			break;
}

static void user_link_locked(struct ring_queue *q, struct ring_ent *e)
{
	lock_assert_held(&q->lock);
	e->prev = NULL;
	e->next = q->user;
	if (q->user)
		q->user->prev = e;
	q->user = e;
	e->in_user = true;
}

static void user_unlink_locked(struct ring_queue *q, struct ring_ent *e)
{
	lock_assert_held(&q->lock);
	if (e->prev)
		e->prev->next = e->next;
	else
		q->user = e->next;
	if (e->next)
		e->next->prev = e->prev;
	e->prev = e->next = NULL;
	e->in_user = false;
}

/* ---- replies ---- */

/* Take e off q->user if its request is still unanswered: the caller alone may answer it. */
static bool claim(struct ring_ent *e)
{
	struct ring_queue *q = e->q;
	bool ok;

	lock_take(&q->lock);
	ok = e->in_user;
	if (ok)
		user_unlink_locked(q, e);
	lock_drop(&q->lock);
	return ok;
}

/* The entry holding request `unique`, claimed; NULL if no ring request has that unique. */
static struct ring_ent *find_claim(struct fuse_uring *r, uint64_t unique)
{
	struct ring_ent *e = cur_ent;

	/* Almost always the request this thread is serving. */
	if (e && e->unique == unique)
		return claim(e) ? e : NULL;
	for (unsigned i = 0; i < r->nqueues; i++) {
		struct ring_queue *q = &r->queues[i];

		lock_take(&q->lock);
		for (e = q->user; e; e = e->next)
			if (e->unique == unique) {
				user_unlink_locked(q, e);
				break;
			}
		lock_drop(&q->lock);
		if (e)
			return e;
	}
	return NULL;
}

/*
 * Send e's reply (already in its buffers): the owner, inside a handler, queues the commit on its
 * ring itself; anyone else leaves it on late and wakes the owner, so that only the owner ever
 * touches the ring and the next request of that entry is delivered to a thread of its CPU.
 */
static void commit(struct ring_ent *e)
{
	struct ring_queue *q = e->q;
	bool kick = false;

	lock_take(&q->lock);
	if (q->stopping) {
		/* The session is over: nobody reads the ring any more, and the kernel has let go. */
	} else if (cur_worker && q->owner == cur_worker && q->handling) {
		prep_cmd(q, e, RING_CMD_COMMIT_AND_FETCH);
	} else {
		e->next = q->late;
		q->late = e;
		q->nlate++;
		kick = !q->efd_written;
		q->efd_written = true;
	}
	lock_drop(&q->lock);
	if (kick)
		eventfd_write(q->efd, 1);
}

bool fuse_uring_reply(struct daemon *d, const struct iovec *iov, int count, ssize_t *ret)
{
	struct fuse_uring *r = d->uring;

	if (!r || !atomic_load_explicit(&r->active, memory_order_acquire) || count < 1 ||
	    iov[0].iov_len != sizeof(struct fuse_out_header))
		return false;
	const struct fuse_out_header *out = iov[0].iov_base;
	if (out->unique == 0)
		return false;	/* a notification: /dev/fuse only */
	struct ring_ent *e = find_claim(r, out->unique);
	if (!e)
		return false;	/* a request read from /dev/fuse */

	struct fuse_out_header *h = (struct fuse_out_header *)e->hdr->in_out;
	size_t len = 0;

	*h = *out;
	for (int i = 1; i < count; i++) {
		if (iov[i].iov_len > r->payload_len - len) {
			/* Larger than any request allows: the caller fails, as the kernel would. */
			h->error = -EIO;
			len = 0;
			break;
		}
		/* memmove: a handler may reply with bytes of its own request. */
		memmove(e->payload + len, iov[i].iov_base, iov[i].iov_len);
		len += iov[i].iov_len;
	}
	e->hdr->ent.payload_sz = (uint32_t)len;
	if (e != cur_ent)
		atomic_fetch_add_explicit(&e->q->deferred, 1, memory_order_relaxed);
	commit(e);
	*ret = (ssize_t)(sizeof(*out) + len);
	return true;
}

/* ---- serving a queue ---- */

/*
 * Run the request in e (owner only).  Returns false when the queue was given to another thread
 * meanwhile: this one is then a spare.
 */
static bool serve_one(struct ring_worker *w, struct ring_ent *e)
{
	struct ring_queue *q = w->q;
	struct ring_header *h = e->hdr;
	struct fuse_in_header in;
	bool mine;

	memcpy(&in, h->in_out, sizeof(in));
	e->unique = h->ent.commit_id;
	if (in.opcode == FUSE_NOTIFY_REPLY && IS_KICK(e->unique)) {
		/* Our own kick: committing it is the point (the commit fetches a stranded request). */
		struct fuse_out_header *out = (struct fuse_out_header *)h->in_out;

		*out = (struct fuse_out_header){ .len = sizeof(*out), .unique = e->unique };
		h->ent.payload_sz = 0;
		prep_cmd(q, e, RING_CMD_COMMIT_AND_FETCH);
		return true;
	}
	e->nodeid = in.nodeid;
	size_t psz = h->ent.payload_sz, oplen = in.len - sizeof(in) - psz;
	if (in.len < sizeof(in) + psz || oplen > sizeof(h->op_in) || psz > q->r->payload_len) {
		/* Not what the protocol promises: fail the request rather than guess. */
		struct fuse_out_header *out = (struct fuse_out_header *)h->in_out;

		fprintf(stderr, "daxfs: io_uring queue %u: malformed request (opcode %u, len %u, payload %zu)\n",
			q->qid, in.opcode, in.len, psz);
		*out = (struct fuse_out_header){ .len = sizeof(*out), .error = -EIO, .unique = e->unique };
		h->ent.payload_sz = 0;
		prep_cmd(q, e, RING_CMD_COMMIT_AND_FETCH);
		return true;
	}
	/* One contiguous request, as /dev/fuse would have given it: header, fixed argument, payload. */
	char *start = e->payload - sizeof(in) - oplen;
	memcpy(start, &in, sizeof(in));
	memcpy(start + sizeof(in), h->op_in, oplen);

	lock_take(&q->lock);
	user_link_locked(q, e);
	q->handling = true;
	q->seq++;
	lock_drop(&q->lock);

	cur_ent = e;
	fuse_session_process_buf(q->r->se, &(struct fuse_buf){ .mem = start, .size = in.len });
	cur_ent = NULL;
	atomic_fetch_add_explicit(&q->requests, 1, memory_order_relaxed);

	lock_take(&q->lock);
	mine = q->owner == w;
	if (mine)
		q->handling = false;
	lock_drop(&q->lock);
	/* Parked (still on q->user): top_up registers an entry in its place, and kicks. */
	return mine;
}

/* Commit the replies other threads left on late (owner only).  False when the queue stops. */
static bool take_late(struct ring_queue *q)
{
	lock_take(&q->lock);
	struct ring_ent *e = q->late;
	bool stopping = q->stopping;

	q->late = NULL;
	q->nlate = 0;
	q->efd_written = false;
	lock_drop(&q->lock);
	if (stopping)
		return false;
	for (struct ring_ent *next; e; e = next) {
		next = e->next;
		e->next = NULL;
		prep_cmd(q, e, RING_CMD_COMMIT_AND_FETCH);
	}
	arm_eventfd(q);
	return true;
}

/* A command of e ended with an error (owner only). */
static void entry_failed(struct ring_queue *q, struct ring_ent *e, int res)
{
	switch (res) {
	case -ENOTCONN:
	case -ECONNABORTED:
	case -ENODEV:
	case -ECANCELED:
		q->conn_gone = true;	/* unmounted or aborted: the entry is gone with it */
		break;
	case -EINTR:
	case -EAGAIN:
		if (!q->conn_gone)
			prep_cmd(q, e, RING_CMD_REGISTER);
		break;
	default:
		/* The kernel dropped this entry; top_up registers another in its place. */
		log_errno(q, "ring command failed", res);
		break;
	}
}

/* Ask for a zero-byte retrieve of nodeid (a kick).  True if the kernel took it. */
static bool kick_one(struct ring_queue *q, uint64_t nodeid)
{
	struct {
		struct fuse_out_header h;
		struct fuse_notify_retrieve_out r;
	} msg = {
		.h = { .len = sizeof(msg), .error = FUSE_NOTIFY_RETRIEVE },
		.r = { .notify_unique = KICK_UNIQUE | ((uint64_t)q->qid << 32) | ((++q->kick_seq << 1) & 0xfffffffeu),
		       .nodeid = nodeid },
	};

	return nodeid && write(fuse_session_fd(q->r->se), &msg, sizeof(msg)) == (ssize_t)sizeof(msg);
}

/* Up to max distinct nodes of requests held on q now (takes q's lock).  Returns how many. */
static unsigned held_nodes(struct ring_queue *q, uint64_t *out, unsigned max)
{
	unsigned n = 0;

	lock_take(&q->lock);
	for (struct ring_ent *e = q->user; e && n < max; e = e->next) {
		bool seen = false;

		for (unsigned i = 0; i < n && !seen; i++)
			seen = out[i] == e->nodeid;
		if (!seen && e->nodeid)
			out[n++] = e->nodeid;
	}
	lock_drop(&q->lock);
	return n;
}

/*
 * Follow the REGISTERs made since the last call with as many kicks (owner only, on the queue's
 * CPU; see the top).  The REGISTERs go in first, or the NOTIFY_REPLY would find no free entry and
 * queue behind the very requests it is for.  Returns whether it kicked.
 */
static bool kick(struct ring_queue *q)
{
	/* A few at a time: each fetches one request, and more than DEPTH find no free entry anyway. */
	unsigned n = MIN(q->kicks_owed, (unsigned)DEPTH), sent = 0;
	uint64_t cand[KICK_TRIES];
	unsigned ncand = 0, next = 0;

	if (n == 0)
		return false;
	q->kicks_owed -= n;
	io_uring_submit(&q->ring);
	while (sent < n && !q->conn_gone) {
		if (q->kick_nodeid && kick_one(q, q->kick_nodeid)) {
			sent++;
			continue;
		}
		q->kick_nodeid = 0;
		if (next == ncand) {
			if (ncand)
				break;	/* every candidate refused */
			ncand = held_nodes(q, cand, KICK_TRIES);
			for (unsigned i = 0; i < q->r->nqueues && ncand < KICK_TRIES; i++)
				if (&q->r->queues[i] != q)
					ncand += held_nodes(&q->r->queues[i], cand + ncand, KICK_TRIES - ncand);
			if (!ncand)
				break;
		}
		if (kick_one(q, cand[next]))
			q->kick_nodeid = cand[next];
		next++;
	}
	atomic_fetch_add_explicit(&q->kicks, sent, memory_order_relaxed);
	if (sent < n && !q->conn_gone)
		atomic_fetch_add_explicit(&q->kick_failures, n - sent, memory_order_relaxed);
	return true;
}

/* The owner's loop: one io_uring_enter per request (submit the last reply, wait for the next). */
static void serve(struct ring_worker *w)
{
	struct ring_queue *q = w->q;

	for (;;) {
		struct io_uring_cqe *cqe;

		if (q->in_kernel < DEPTH)
			top_up(q);
		if (io_uring_peek_cqe(&q->ring, &cqe) != 0) {
			if (kick(q))
				continue;
			int ret = io_uring_submit_and_wait(&q->ring, 1);

			if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY) {
				log_errno(q, "io_uring_enter", ret);
				usleep(1000);
			}
			continue;
		}
		void *data = io_uring_cqe_get_data(cqe);
		int res = cqe->res;

		io_uring_cqe_seen(&q->ring, cqe);
		if (data == EVENT_TAG) {
			if (!take_late(q))
				return;
			continue;
		}
		q->in_kernel--;
		if (res < 0) {
			entry_failed(q, data, res);
			continue;
		}
		/* Replies already queued go out before this request runs, not after. */
		if (io_uring_sq_ready(&q->ring))
			io_uring_submit(&q->ring);
		if (!serve_one(w, data))
			return;
	}
}

static void pin_to_cpu(unsigned cpu)
{
	cpu_set_t set;

	/* An offline CPU, or a cpuset without it: the thread runs unpinned; its queue still works. */
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

/* Serve as owner whenever made so, until the queue stops. */
static void worker_loop(struct ring_worker *w)
{
	struct ring_queue *q = w->q;

	lock_take(&q->lock);
	for (;;) {
		while (q->owner != w && !q->stopping) {
			if (!w->spare) {
				w->spare = true;
				w->next_spare = q->spares;
				q->spares = w;
			}
			lock_wait(&w->wake, &q->lock);
		}
		if (q->stopping)
			break;
		lock_drop(&q->lock);
		serve(w);
		lock_take(&q->lock);
	}
	lock_drop(&q->lock);
}

/* Set up the ring and register the first entries (the queue's first owner).  0 or -errno. */
static int queue_setup(struct ring_queue *q)
{
	struct io_uring_params p = { .flags = IORING_SETUP_SQE128 | IORING_SETUP_CQSIZE, .cq_entries = CQ_ENTRIES };
	int fd = fuse_session_fd(q->r->se), ret;

	if ((ret = io_uring_queue_init_params(SQ_ENTRIES, &q->ring, &p)))
		return ret;
	q->ring_ok = true;
	if ((ret = io_uring_register_files(&q->ring, &fd, 1)))
		return ret;
	arm_eventfd(q);
	for (int i = 0; i < DEPTH; i++)
		if ((ret = add_entry(q)))
			return ret;
	q->registered = true;
	if ((ret = io_uring_submit(&q->ring)) < 0)
		return ret;
	/*
	 * A refused REGISTER completes at once; a good one completes when a request arrives.  Look at
	 * what has completed: errors are the answer, the first request is left for serve().
	 */
	struct io_uring_cqe *cqe;
	while (io_uring_peek_cqe(&q->ring, &cqe) == 0 && cqe->res < 0 && io_uring_cqe_get_data(cqe) != EVENT_TAG) {
		/*
		 * The connection already gone is no refusal: the other queues came up, served a whole
		 * session and saw it unmounted while this thread waited for its CPU.  serve() ends.
		 */
		if (cqe->res == -ENOTCONN || cqe->res == -ECONNABORTED)
			q->conn_gone = true;
		else
			ret = cqe->res;
		q->in_kernel--;
		io_uring_cqe_seen(&q->ring, cqe);
	}
	return ret < 0 ? ret : 0;
}

static void *worker_main(void *arg)
{
	struct ring_worker *w = arg;
	struct ring_queue *q = w->q;
	char name[16];

	snprintf(name, sizeof(name), "daxfs-ring%u", q->qid);
	pthread_setname_np(pthread_self(), name);
	pin_to_cpu(q->qid);
	cur_worker = w;
	if (w->first) {
		int err = queue_setup(q);

		pthread_mutex_lock(&q->r->mu);
		q->start_err = err;
		q->r->nstarted++;
		pthread_cond_broadcast(&q->r->cond);
		pthread_mutex_unlock(&q->r->mu);
		if (err) {
			/* No ring to serve: wait for the stop that the failed start brings. */
			lock_take(&q->lock);
			while (!q->stopping)
				lock_wait(&w->wake, &q->lock);
			lock_drop(&q->lock);
			return NULL;
		}
	}
	worker_loop(w);
	return NULL;
}

/*
 * A new thread for q (under q's lock): the first sets the ring up; the others wait as spares until
 * made owner.  NULL on failure.
 */
static struct ring_worker *worker_new_locked(struct ring_queue *q, bool first)
{
	struct ring_worker *w = calloc(1, sizeof(*w));

	lock_assert_held(&q->lock);
	if (!w)
		return NULL;
	w->q = q;
	w->first = first;
	pthread_cond_init(&w->wake, NULL);
	if (pthread_create(&w->thread, NULL, worker_main, w)) {
		pthread_cond_destroy(&w->wake);
		free(w);
		return NULL;
	}
	w->next_all = q->workers;
	q->workers = w;
	atomic_fetch_add_explicit(&q->nworkers, 1, memory_order_relaxed);
	return w;
}

/*
 * The watchdog: a handler that has run since the last tick may be blocked; give its queue to a
 * spare (or a new thread) so that the CPU's other requests, the unpin it may wait for among them,
 * are served.  A slow handler that was merely preempted costs a thread switch, nothing more.
 */
static void *watchdog_main(void *arg)
{
	struct fuse_uring *r = arg;

	pthread_setname_np(pthread_self(), "daxfs-ringwd");
	pthread_mutex_lock(&r->mu);
	while (!r->wd_stop) {
		struct timespec ts = ns_to_timespec(util_now_ns() + TICK_MS * 1000000ull);

		pthread_cond_timedwait(&r->cond, &r->mu, &ts);
		if (r->wd_stop)
			break;
		pthread_mutex_unlock(&r->mu);
		for (unsigned i = 0; i < r->nqueues; i++) {
			struct ring_queue *q = &r->queues[i];

			lock_take(&q->lock);
			if (q->handling && q->seq == q->watched_seq && !q->stopping) {
				struct ring_worker *w = q->spares;

				if (w) {
					q->spares = w->next_spare;
					w->spare = false;
				} else {
					w = worker_new_locked(q, false);
				}
				if (w) {
					q->owner = w;
					q->handling = false;
					/* The new owner's top_up replaces the blocked entry, and kicks. */
					pthread_cond_signal(&w->wake);
				}
			}
			q->watched_seq = q->seq;
			lock_drop(&q->lock);
		}
		pthread_mutex_lock(&r->mu);
	}
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

/*
 * Stop every queue's threads, close the rings, free the entries.  The queues themselves stay until
 * fuse_uring_free: a reply may still be looking through them.
 */
static void queues_stop(struct fuse_uring *r)
{
	atomic_store_explicit(&r->up, false, memory_order_release);
	pthread_mutex_lock(&r->mu);
	r->wd_stop = true;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->mu);
	if (r->wd_started)
		pthread_join(r->wd, NULL);
	r->wd_started = false;
	for (unsigned i = 0; i < r->nqueues; i++) {
		struct ring_queue *q = &r->queues[i];

		lock_take(&q->lock);
		q->stopping = true;
		for (struct ring_worker *w = q->workers; w; w = w->next_all)
			pthread_cond_signal(&w->wake);
		lock_drop(&q->lock);
		if (q->efd >= 0)
			eventfd_write(q->efd, 1);
	}
	for (unsigned i = 0; i < r->nqueues; i++) {
		struct ring_queue *q = &r->queues[i];
		struct ring_worker *w, *wn;
		struct ring_ent *e, *en;

		for (w = q->workers; w; w = wn) {
			wn = w->next_all;
			pthread_join(w->thread, NULL);
			pthread_cond_destroy(&w->wake);
			free(w);
		}
		/* The threads that submitted the commands are gone: the kernel copies into no entry now. */
		if (q->ring_ok)
			io_uring_queue_exit(&q->ring);
		q->ring_ok = false;
		if (q->efd >= 0)
			close(q->efd);
		q->efd = -1;
		lock_take(&q->lock);
		e = q->all;
		q->all = q->user = q->late = NULL;
		q->workers = q->spares = NULL;
		q->owner = NULL;
		lock_drop(&q->lock);
		for (; e; e = en) {
			en = e->next_all;
			munmap(e->map, HEADROOM + r->payload_len);
			free(e->hdr);
			free(e);
		}
	}
}

static void queues_free(struct fuse_uring *r)
{
	for (unsigned i = 0; i < r->nqueues; i++)
		lock_destroy(&r->queues[i].lock);
	free(r->queues);
	r->queues = NULL;
	r->nqueues = 0;
}

/* ---- life cycle ---- */

int fuse_uring_probe(char *why, size_t len)
{
	FILE *f = fopen(ENABLE_PARAM, "r");
	struct io_uring ring;
	int c, ret;

	if (!f) {
		snprintf(why, len, "this kernel has no FUSE over io_uring (no %s)", ENABLE_PARAM);
		return -1;
	}
	c = fgetc(f);
	fclose(f);
	if (c != 'Y' && c != '1') {
		snprintf(why, len, "FUSE over io_uring is off (%s is N)", ENABLE_PARAM);
		return -1;
	}
	struct io_uring_params p = { .flags = IORING_SETUP_SQE128 };
	if ((ret = io_uring_queue_init_params(2, &ring, &p))) {
		snprintf(why, len, "io_uring cannot be set up: %s", strerror(-ret));
		return -1;
	}
	io_uring_queue_exit(&ring);
	return 0;
}

int fuse_uring_setup(struct daemon *d, struct fuse_session *se, enum transport mode, const char *reason)
{
	struct fuse_uring *r = calloc(1, sizeof(*r));

	if (!r)
		return -ENOMEM;

	r->se = se;
	r->requested = mode;
	r->mode = reason ? TRANSPORT_DEV : mode;
	snprintf(r->reason, sizeof(r->reason), "%s", reason ? reason : "");
	pthread_mutex_init(&r->mu, NULL);
	cond_init_monotonic(&r->cond);
	d->uring = r;
	return 0;
}

void fuse_uring_init_request(struct daemon *d, const struct fuse_init_in *in)
{
	struct fuse_uring *r = d->uring;

	if (r)
		r->kernel_offers = (in->flags & FUSE_INIT_EXT) && (in->flags2 & URING_FLAG2);
}

bool fuse_uring_init_reply(struct daemon *d, struct fuse_init_out *out)
{
	struct fuse_uring *r = d->uring;
	long page = sysconf(_SC_PAGESIZE);

	if (!r || r->mode == TRANSPORT_DEV)
		return false;
	if (!r->kernel_offers || !(out->flags & FUSE_INIT_EXT)) {
		snprintf(r->reason, sizeof(r->reason), "the kernel did not offer FUSE_OVER_IO_URING in INIT");
		return false;
	}
	/* The kernel wants every entry to hold the largest request: max_write, or max_pages of reply. */
	size_t pages = (out->flags & FUSE_MAX_PAGES) ? out->max_pages : 32;
	r->payload_len = ROUND_UP(MAX(MAX((size_t)8192, (size_t)out->max_write), pages * (size_t)page), (size_t)page);
	out->flags2 |= URING_FLAG2;
	r->asked = true;
	return true;
}

/* The queues, one per possible CPU, no thread yet.  0 or -errno. */
static int queues_alloc(struct fuse_uring *r)
{
	unsigned n = possible_cpus();
	int err = 0;

	if (n > 65536)
		return -EINVAL;	/* qid is 16 bits */
	r->queues = calloc(n, sizeof(*r->queues));
	if (!r->queues)
		return -ENOMEM;
	r->nqueues = n;
	for (unsigned i = 0; i < n; i++) {
		struct ring_queue *q = &r->queues[i];

		q->r = r;
		q->qid = i;
		lock_init(&q->lock);
		q->efd = eventfd(0, EFD_CLOEXEC);
		if (q->efd < 0 && !err)
			err = -errno;
	}
	if (err) {
		for (unsigned i = 0; i < n; i++)
			if (r->queues[i].efd >= 0)
				close(r->queues[i].efd);
		queues_free(r);
	}
	return err;
}

/* Start one thread per queue and wait for their registrations.  0 or the first -errno. */
static int queues_start(struct fuse_uring *r)
{
	int err = 0;
	unsigned created = 0;

	for (unsigned i = 0; i < r->nqueues && !err; i++) {
		struct ring_queue *q = &r->queues[i];

		lock_take(&q->lock);
		q->owner = worker_new_locked(q, true);
		lock_drop(&q->lock);
		if (!q->owner)
			err = -EAGAIN;
		else
			created++;
	}
	pthread_mutex_lock(&r->mu);
	uint64_t deadline = util_now_ns() + START_TIMEOUT_MS * 1000000ull;
	while (r->nstarted < created) {
		struct timespec ts = ns_to_timespec(deadline);

		if (pthread_cond_timedwait(&r->cond, &r->mu, &ts) == ETIMEDOUT) {
			err = err ? err : -ETIMEDOUT;
			break;
		}
	}
	for (unsigned i = 0; i < r->nqueues && !err; i++)
		if (r->queues[i].start_err)
			err = r->queues[i].start_err;
	pthread_mutex_unlock(&r->mu);
	/* Without it a blocked handler stalls its CPU's requests, but nothing is lost: go on. */
	if (!err && !(r->wd_started = pthread_create(&r->wd, NULL, watchdog_main, r) == 0))
		fprintf(stderr, "daxfs: io_uring: no watchdog thread: a blocked request stalls its CPU's queue\n");
	return err;
}

void fuse_uring_init_done(struct daemon *d)
{
	struct fuse_uring *r = d->uring;
	int err;

	if (!r || r->mode == TRANSPORT_DEV)
		return;
	if (r->asked && (err = queues_alloc(r))) {
		snprintf(r->reason, sizeof(r->reason), "setting up the io_uring queues failed: %s", strerror(-err));
	} else if (r->asked) {
		/* Replies must find their entries from the first request on, which may come at once. */
		atomic_store_explicit(&r->active, true, memory_order_release);
		if ((err = queues_start(r)) == 0) {
			atomic_store_explicit(&r->up, true, memory_order_release);
			return;
		}
		snprintf(r->reason, sizeof(r->reason), "registering the io_uring queues failed: %s", strerror(-err));
		/* Some queue has no entry, so the kernel never left /dev/fuse: no request is on a ring. */
		atomic_store_explicit(&r->active, false, memory_order_release);
		queues_stop(r);
	}
	if (r->mode == TRANSPORT_URING) {
		fprintf(stderr, "daxfs: transport=uring: %s\n", r->reason);
		r->failed = true;
		fuse_session_exit(r->se);
	} else {
		fprintf(stderr, "daxfs: transport=auto: serving /dev/fuse: %s\n", r->reason);
	}
}

void fuse_uring_count_dev(struct daemon *d)
{
	if (d->uring)
		atomic_fetch_add_explicit(&d->uring->dev_requests, 1, memory_order_relaxed);
}

void fuse_uring_stats(struct daemon *d, struct daxfs_ioc_transport *out)
{
	struct fuse_uring *r = d->uring;

	memset(out, 0, sizeof(*out));
	out->size = sizeof(*out);
	out->transport = DAXFS_TRANSPORT_DEV;
	if (!r)
		return;
	out->requested = r->requested;
	out->dev_requests = atomic_load_explicit(&r->dev_requests, memory_order_relaxed);
	if (!atomic_load_explicit(&r->up, memory_order_acquire)) {
		if (r->requested != TRANSPORT_DEV)
			snprintf(out->reason, sizeof(out->reason), "%s", r->reason);
		return;
	}
	out->transport = DAXFS_TRANSPORT_URING;
	out->nqueues = r->nqueues;
	for (unsigned i = 0; i < r->nqueues && i < DAXFS_TRANSPORT_QUEUES_MAX; i++) {
		struct ring_queue *q = &r->queues[i];
		struct daxfs_transport_queue *o = &out->queues[i];

		o->cpu = q->qid;
		o->entries = atomic_load_explicit(&q->nentries, memory_order_relaxed);
		o->requests = atomic_load_explicit(&q->requests, memory_order_relaxed);
		o->deferred = atomic_load_explicit(&q->deferred, memory_order_relaxed);
		o->threads = atomic_load_explicit(&q->nworkers, memory_order_relaxed);
		o->kicks = atomic_load_explicit(&q->kicks, memory_order_relaxed);
		o->kick_failures = atomic_load_explicit(&q->kick_failures, memory_order_relaxed);
	}
}

bool fuse_uring_failed(struct daemon *d)
{
	return d->uring && d->uring->failed;
}

void fuse_uring_free(struct daemon *d)
{
	struct fuse_uring *r = d->uring;

	if (!r)
		return;
	if (r->queues) {
		queues_stop(r);
		queues_free(r);
	}
	atomic_store_explicit(&r->active, false, memory_order_release);
	pthread_cond_destroy(&r->cond);
	pthread_mutex_destroy(&r->mu);
	free(r);
	d->uring = NULL;
}
