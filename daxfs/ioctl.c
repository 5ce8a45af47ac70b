/* SPDX-License-Identifier: MIT */
/*
 * The control ioctls (include/daxfs/ioctl.h): check the argument, call the policy layer, fill the
 * reply.  The open file a request arrives on owns the pins it creates and receives their events.
 * A pin on a range being broken waits (parked, like a truncate: fuse_wait.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"
#include "daxfs/ioctl.h"
#include "fs.h"
#include "fuse_uring.h"
#include "fuse_wait.h"
#include "policy.h"
#include "util.h"

/* Every argument fits the kernel's restricted-ioctl limit (14 bits of size in the command). */
_Static_assert(sizeof(struct daxfs_ioc_pin) < 16384, "pin");
_Static_assert(sizeof(struct daxfs_ioc_pin_fault) < 16384, "fault");
_Static_assert(sizeof(struct daxfs_ioc_events) < 16384, "events");
_Static_assert(sizeof(struct daxfs_ioc_list_pins) < 16384, "list pins");
_Static_assert(sizeof(struct daxfs_ioc_list_busy) < 16384, "list busy");
_Static_assert(sizeof(struct daxfs_ioc_list_waits) < 16384, "list waits");
_Static_assert(sizeof(struct daxfs_ioc_list_policies) < 16384, "list policies");
_Static_assert(sizeof(struct daxfs_ioc_policy) < 16384, "policy");
_Static_assert(sizeof(struct daxfs_ioc_trace) < 16384, "trace");
_Static_assert(sizeof(struct daxfs_ioc_transport) < 16384, "transport");
_Static_assert(sizeof(struct daxfs_tag) == DAXFS_TAG_UNIT, "tag unit");
_Static_assert(sizeof(struct daxfs_event) == 64, "event");

union ioc_arg {
	struct daxfs_ioc_pin pin;
	struct daxfs_ioc_unpin unpin;
	struct daxfs_ioc_pin_extents ext;
	struct daxfs_ioc_pin_status status;
	struct daxfs_ioc_pin_fault fault;
	struct daxfs_ioc_dma dma;
	struct daxfs_ioc_info info;
	struct daxfs_ioc_stats stats;
	struct daxfs_ioc_list_pins pins;
	struct daxfs_ioc_list_busy busy;
	struct daxfs_ioc_list_waits waits;
	struct daxfs_ioc_list_policies policies;
	struct daxfs_ioc_policy policy;
	struct daxfs_ioc_events events;
	struct daxfs_ioc_event_ack ack;
	struct daxfs_ioc_trace trace;
	struct daxfs_ioc_transport transport;
};

/* The argument must be exactly the structure the command names, with its size field set. */
static int check_arg(unsigned cmd, const void *in, size_t in_size, size_t out_size, size_t size)
{
	unsigned dir = _IOC_DIR(cmd);

	if (_IOC_SIZE(cmd) != size)
		return -EINVAL;
	if ((dir & _IOC_WRITE) && (in_size < size || *(const uint32_t *)in != size))
		return -EINVAL;
	if ((dir & _IOC_READ) && out_size < size)
		return -EINVAL;
	return 0;
}

/* Changing how the whole mount behaves is for root or whoever runs the daemon. */
static bool may_administer(const struct fuse_ctx *ctx)
{
	return ctx->uid == 0 || ctx->uid == getuid();
}

/* ---- pins, which may wait ---- */

struct pin_req {
	struct fuse_waiter w;
	struct open_file *of;
	uint32_t uid;
	pid_t pid;
	struct daxfs_ioc_pin arg;
};

static void run_pin(struct fuse_waiter *w)
{
	struct pin_req *r = container_of(w, struct pin_req, w);
	struct daxfs_ioc_pin *a = &r->arg;
	struct open_file *of = r->of;
	struct policy_pin_args pa = { .offset = a->offset, .length = a->length, .flags = a->flags,
				      .signo = (int)a->signo, .uid = r->uid, .pid = r->pid,
				      .writable = (of->flags & O_ACCMODE) != O_RDONLY };
	uint64_t id, off, len;
	int ret = policy_pin(w->fs, &of->pins, of->ip, &pa, &w->op, &id);

	if (ret == -POLICY_EPARK) {
		fuse_wait_park(w);
		return;
	}
	if (ret == 0) {
		a->pin_id = id;
		ret = policy_pin_extents(w->fs, &of->pins, id, 0, a->ext, DAXFS_PIN_EXT_MAX, &a->nreturned, &off, &len);
		if (ret >= 0) {
			a->pin_offset = off;
			a->pin_length = len;
			a->nextents = (uint32_t)ret;
			ret = 0;
		}
	}
	fuse_wait_done(w);
	if (ret)
		fuse_reply_err(w->req, -ret);
	else
		fuse_reply_ioctl(w->req, 0, a, sizeof(*a));
	free(r);
}

static void do_pin(fuse_req_t req, struct open_file *of, const struct daxfs_ioc_pin *a)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct pin_req *r;

	if (a->reserved0 || a->reserved1) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (!(r = malloc(sizeof(*r)))) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	fuse_wait_init(&r->w, req, DAXFS_WAIT_PIN, run_pin);
	r->of = of;
	r->uid = ctx->uid;
	r->pid = ctx->pid;
	r->arg = *a;
	run_pin(&r->w);
}

/* ---- the rest answers at once ---- */

static void do_info(struct fs *fs, struct daxfs_ioc_info *in)
{
	struct sbi *s = &fs->sbi;

	memset(in, 0, sizeof(*in));
	in->size = sizeof(*in);
	in->block_size = s->bs;
	in->media_size = s->media.size;
	in->data_offset = sbi_block_off(s, s->sb.data_start);
	memcpy(in->uuid, s->sb.uuid, sizeof(in->uuid));
	in->is_pmem = s->media.is_pmem;
	in->media_kind = s->media.kind == MEDIA_DEVDAX ? DAXFS_MEDIA_DEVDAX
			 : s->media.kind == MEDIA_BLOCKDEV ? DAXFS_MEDIA_BLOCKDEV : DAXFS_MEDIA_FILE;
	snprintf(in->media_path, sizeof(in->media_path), "%s", s->media.path);
	memcpy(in->label, s->sb.label, sizeof(in->label) - 1);
}

/* The paged listings share a header: size, start in; count, total out. */
#define LIST(fs, l, fn, field, max)                                          \
	do {                                                                 \
		uint32_t start_ = (l)->start;                                \
		memset((l), 0, sizeof(*(l)));                                \
		(l)->size = sizeof(*(l));                                    \
		(l)->start = start_;                                         \
		(l)->count = fn((fs), start_, (l)->field, (max), &(l)->total); \
	} while (0)

static int do_policy(struct fs *fs, const struct fuse_ctx *ctx, struct daxfs_ioc_policy *a)
{
	char err[sizeof(a->message)] = "";
	int result = 0;

	if (a->op > DAXFS_POLICY_PARAMS)
		return -EINVAL;
	if (a->op != DAXFS_POLICY_GET) {
		if (!may_administer(ctx))
			return -EPERM;
		if (!memchr(a->name, 0, sizeof(a->name)) || !memchr(a->params, 0, sizeof(a->params)))
			return -EINVAL;
		if (a->op == DAXFS_POLICY_SET)
			result = policy_set(fs, a->name, a->params, err, sizeof(err));
		else
			result = policy_set_params(fs, a->params, err, sizeof(err));
	}
	uint32_t op = a->op;
	memset(a, 0, sizeof(*a));
	a->size = sizeof(*a);
	a->op = op;
	policy_describe(fs, a);
	a->result = result;
	snprintf(a->message, sizeof(a->message), "%s", result ? err : "");
	return 0;
}

static int do_trace(struct fs *fs, const struct fuse_ctx *ctx, struct daxfs_ioc_trace *a)
{
	int ret = 0;

	if (a->op > DAXFS_TRACE_STOP)
		return -EINVAL;
	if (a->op != DAXFS_TRACE_GET && !may_administer(ctx))
		return -EPERM;
	if (a->op == DAXFS_TRACE_START) {
		if (!memchr(a->path, 0, sizeof(a->path)))
			return -EINVAL;
		/* The daemon writes it: only an absolute path, so nobody's working directory matters. */
		if (a->path[0] != '/')
			return -EINVAL;
		if ((ret = trace_start(&fs->trace, a->path)))
			return ret;
	} else if (a->op == DAXFS_TRACE_STOP) {
		trace_stop(&fs->trace);
	}
	pthread_mutex_lock(&fs->trace.lock);
	a->on = fs->trace.on;
	a->records = fs->trace.records;
	a->dropped = fs->trace.dropped;
	snprintf(a->path, sizeof(a->path), "%s", a->on ? fs->trace.path : "");
	pthread_mutex_unlock(&fs->trace.lock);
	return 0;
}

void ioctl_op(fuse_req_t req, fuse_ino_t ino, unsigned int cmd, void *arg, struct fuse_file_info *fi, unsigned flags,
	      const void *in_buf, size_t in_size, size_t out_size)
{
	struct daemon *d = fuse_req_userdata(req);
	struct open_file *of = (struct open_file *)(uintptr_t)fi->fh;
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct fs *fs = d->fs;
	union ioc_arg *a;
	size_t size;
	int ret;

	(void)ino;
	(void)arg;
	if (flags & FUSE_IOCTL_COMPAT) {
		fuse_reply_err(req, ENOTTY);	/* 32-bit callers: the structures are laid out for 64 bits */
		return;
	}
	switch (cmd) {
	case DAXFS_IOC_PIN: size = sizeof(a->pin); break;
	case DAXFS_IOC_UNPIN: size = sizeof(a->unpin); break;
	case DAXFS_IOC_PIN_EXTENTS: size = sizeof(a->ext); break;
	case DAXFS_IOC_PIN_STATUS: size = sizeof(a->status); break;
	case DAXFS_IOC_PIN_FAULT: size = sizeof(a->fault); break;
	case DAXFS_IOC_DMA: size = sizeof(a->dma); break;
	case DAXFS_IOC_INFO: size = sizeof(a->info); break;
	case DAXFS_IOC_STATS: size = sizeof(a->stats); break;
	case DAXFS_IOC_LIST_PINS: size = sizeof(a->pins); break;
	case DAXFS_IOC_LIST_BUSY: size = sizeof(a->busy); break;
	case DAXFS_IOC_LIST_WAITS: size = sizeof(a->waits); break;
	case DAXFS_IOC_LIST_POLICIES: size = sizeof(a->policies); break;
	case DAXFS_IOC_POLICY: size = sizeof(a->policy); break;
	case DAXFS_IOC_EVENTS: size = sizeof(a->events); break;
	case DAXFS_IOC_EVENT_ACK: size = sizeof(a->ack); break;
	case DAXFS_IOC_TRACE: size = sizeof(a->trace); break;
	case DAXFS_IOC_TRANSPORT: size = sizeof(a->transport); break;
	default:
		fuse_reply_err(req, ENOTTY);
		return;
	}
	if ((ret = check_arg(cmd, in_buf, in_size, out_size, size))) {
		fuse_reply_err(req, -ret);
		return;
	}
	if (!(a = calloc(1, sizeof(*a)))) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if (_IOC_DIR(cmd) & _IOC_WRITE)
		memcpy(a, in_buf, size);

	switch (cmd) {
	case DAXFS_IOC_PIN:
		do_pin(req, of, &a->pin);	/* replies itself, now or after a wait */
		free(a);
		return;
	case DAXFS_IOC_UNPIN:
		ret = a->unpin.reserved ? -EINVAL : policy_unpin(fs, &of->pins, a->unpin.pin_id);
		break;
	case DAXFS_IOC_PIN_EXTENTS:
		ret = policy_pin_extents(fs, &of->pins, a->ext.pin_id, a->ext.start, a->ext.ext, DAXFS_PIN_EXT_MAX,
					 &a->ext.nreturned, NULL, NULL);
		if (ret >= 0) {
			a->ext.nextents = (uint32_t)ret;
			ret = 0;
		}
		break;
	case DAXFS_IOC_PIN_STATUS:
		ret = policy_pin_status(fs, &of->pins, &a->status);
		break;
	case DAXFS_IOC_PIN_FAULT:
		ret = a->fault.reserved ? -EINVAL : policy_fault(fs, &of->pins, of->ip, &a->fault);
		break;
	case DAXFS_IOC_DMA:
		ret = a->dma.reserved || a->dma.result ? -EINVAL : policy_dma(fs, &of->pins, &a->dma);
		break;
	case DAXFS_IOC_INFO:
		do_info(fs, &a->info);
		ret = 0;
		break;
	case DAXFS_IOC_STATS:
		policy_stats(fs, &a->stats);
		ret = 0;
		break;
	case DAXFS_IOC_LIST_PINS:
		LIST(fs, &a->pins, policy_list_pins, pins, DAXFS_LIST_PINS_MAX);
		ret = 0;
		break;
	case DAXFS_IOC_LIST_BUSY:
		LIST(fs, &a->busy, policy_list_busy, busy, DAXFS_LIST_BUSY_MAX);
		ret = 0;
		break;
	case DAXFS_IOC_LIST_WAITS:
		LIST(fs, &a->waits, policy_list_waits, waits, DAXFS_LIST_WAITS_MAX);
		ret = 0;
		break;
	case DAXFS_IOC_LIST_POLICIES:
		LIST(fs, &a->policies, policy_list, policies, DAXFS_LIST_POLICIES_MAX);
		ret = 0;
		break;
	case DAXFS_IOC_POLICY:
		ret = do_policy(fs, ctx, &a->policy);
		break;
	case DAXFS_IOC_EVENTS:
		if (a->events.count || a->events.reserved) {
			ret = -EINVAL;
			break;
		}
		policy_events(fs, &of->pins, &a->events);
		a->events.size = sizeof(a->events);
		ret = 0;
		break;
	case DAXFS_IOC_EVENT_ACK:
		ret = a->ack.reserved ? -EINVAL : policy_ack(fs, &of->pins, a->ack.pin_id, a->ack.seq);
		break;
	case DAXFS_IOC_TRACE:
		ret = do_trace(fs, ctx, &a->trace);
		break;
	case DAXFS_IOC_TRANSPORT:
		fuse_uring_stats(d, &a->transport);
		ret = 0;
		break;
	}
	if (ret)
		fuse_reply_err(req, -ret);
	else
		fuse_reply_ioctl(req, 0, (_IOC_DIR(cmd) & _IOC_READ) ? a : NULL, (_IOC_DIR(cmd) & _IOC_READ) ? size : 0);
	free(a);
}
