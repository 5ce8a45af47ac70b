/* SPDX-License-Identifier: MIT */
/*
 * The control ioctls (include/daxfs/ioctl.h): check the argument, call the pin, policy and stats
 * code, fill the reply.  The open file a request arrives on owns the pins it creates.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"
#include "daxfs/ioctl.h"
#include "policy.h"

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

static bool zeroed(const void *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (((const uint8_t *)p)[i])
			return false;
	return true;
}

static int do_pin(struct fs *fs, struct open_file *of, const struct fuse_ctx *ctx, struct daxfs_ioc_pin *a)
{
	bool writable = (of->flags & O_ACCMODE) != O_RDONLY;
	uint64_t id, off, len;
	int ret;

	if (!zeroed(a->reserved, sizeof(a->reserved)))
		return -EINVAL;
	ret = policy_pin(fs, &of->pins, of->ip, writable, a->offset, a->length, a->flags, ctx->pid, &id);
	if (ret)
		return ret;
	a->pin_id = id;
	ret = policy_pin_extents(fs, &of->pins, id, 0, a->ext, DAXFS_PIN_EXT_MAX, &a->nreturned, &off, &len);
	if (ret < 0)
		return ret;
	a->pin_offset = off;
	a->pin_length = len;
	a->nextents = (uint32_t)ret;
	return 0;
}

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

static void do_list_pins(struct fs *fs, struct daxfs_ioc_list_pins *l)
{
	uint32_t start = l->start;

	memset(l, 0, sizeof(*l));
	l->size = sizeof(*l);
	l->start = start;
	l->count = policy_list_pins(fs, start, l->pins, DAXFS_LIST_PINS_MAX, &l->total);
}

static void do_list_busy(struct fs *fs, struct daxfs_ioc_list_busy *l)
{
	uint32_t start = l->start;

	memset(l, 0, sizeof(*l));
	l->size = sizeof(*l);
	l->start = start;
	l->count = policy_list_busy(fs, start, l->busy, DAXFS_LIST_BUSY_MAX, &l->total);
}

static int do_policy(struct fs *fs, const struct fuse_ctx *ctx, struct daxfs_ioc_policy *a)
{
	struct policy_config pc;
	int ret;

	if (a->op != DAXFS_POLICY_GET && a->op != DAXFS_POLICY_SET)
		return -EINVAL;
	if (a->op == DAXFS_POLICY_SET) {
		/* Only root or whoever runs the daemon may change how the whole mount behaves. */
		if (ctx->uid != 0 && ctx->uid != getuid())
			return -EPERM;
		if (!zeroed(a->reserved, sizeof(a->reserved)))
			return -EINVAL;
		pc = (struct policy_config){ .kind = a->policy, .admission = a->admission, .grace_ms = a->grace_ms,
					     .wait_timeout_ms = a->wait_timeout_ms };
		if ((ret = policy_set(fs, &pc)))
			return ret;
	}
	policy_get(fs, &pc);
	a->policy = pc.kind;
	a->admission = pc.admission;
	a->grace_ms = pc.grace_ms;
	a->wait_timeout_ms = pc.wait_timeout_ms;
	return 0;
}

void ioctl_op(fuse_req_t req, fuse_ino_t ino, unsigned int cmd, void *arg, struct fuse_file_info *fi, unsigned flags,
	      const void *in_buf, size_t in_size, size_t out_size)
{
	struct daemon *d = fuse_req_userdata(req);
	struct open_file *of = (struct open_file *)(uintptr_t)fi->fh;
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct fs *fs = d->fs;
	union {
		struct daxfs_ioc_pin pin;
		struct daxfs_ioc_unpin unpin;
		struct daxfs_ioc_pin_extents ext;
		struct daxfs_ioc_pin_status status;
		struct daxfs_ioc_dma dma;
		struct daxfs_ioc_info info;
		struct daxfs_ioc_stats stats;
		struct daxfs_ioc_list_pins pins;
		struct daxfs_ioc_list_busy busy;
		struct daxfs_ioc_policy policy;
	} a;
	size_t size;
	int ret;

	(void)ino;
	(void)arg;
	if (flags & FUSE_IOCTL_COMPAT) {
		fuse_reply_err(req, ENOTTY);	/* 32-bit callers: the structures are laid out for 64 bits */
		return;
	}
	switch (cmd) {
	case DAXFS_IOC_PIN: size = sizeof(a.pin); break;
	case DAXFS_IOC_UNPIN: size = sizeof(a.unpin); break;
	case DAXFS_IOC_PIN_EXTENTS: size = sizeof(a.ext); break;
	case DAXFS_IOC_PIN_STATUS: size = sizeof(a.status); break;
	case DAXFS_IOC_DMA: size = sizeof(a.dma); break;
	case DAXFS_IOC_INFO: size = sizeof(a.info); break;
	case DAXFS_IOC_STATS: size = sizeof(a.stats); break;
	case DAXFS_IOC_LIST_PINS: size = sizeof(a.pins); break;
	case DAXFS_IOC_LIST_BUSY: size = sizeof(a.busy); break;
	case DAXFS_IOC_POLICY: size = sizeof(a.policy); break;
	default:
		fuse_reply_err(req, ENOTTY);
		return;
	}
	if ((ret = check_arg(cmd, in_buf, in_size, out_size, size))) {
		fuse_reply_err(req, -ret);
		return;
	}
	memset(&a, 0, sizeof(a));
	if (_IOC_DIR(cmd) & _IOC_WRITE)
		memcpy(&a, in_buf, size);

	switch (cmd) {
	case DAXFS_IOC_PIN:
		ret = do_pin(fs, of, ctx, &a.pin);
		break;
	case DAXFS_IOC_UNPIN:
		ret = a.unpin.reserved ? -EINVAL : policy_unpin(fs, &of->pins, a.unpin.pin_id);
		break;
	case DAXFS_IOC_PIN_EXTENTS:
		ret = policy_pin_extents(fs, &of->pins, a.ext.pin_id, a.ext.start, a.ext.ext, DAXFS_PIN_EXT_MAX,
					 &a.ext.nreturned, NULL, NULL);
		if (ret >= 0) {
			a.ext.nextents = (uint32_t)ret;
			ret = 0;
		}
		break;
	case DAXFS_IOC_PIN_STATUS:
		ret = policy_pin_status(fs, &of->pins, &a.status);
		break;
	case DAXFS_IOC_DMA:
		ret = zeroed(a.dma.reserved, sizeof(a.dma.reserved)) ? policy_dma(fs, &of->pins, &a.dma) : -EINVAL;
		break;
	case DAXFS_IOC_INFO:
		do_info(fs, &a.info);
		ret = 0;
		break;
	case DAXFS_IOC_STATS:
		policy_stats(fs, &a.stats);
		ret = 0;
		break;
	case DAXFS_IOC_LIST_PINS:
		do_list_pins(fs, &a.pins);
		ret = 0;
		break;
	case DAXFS_IOC_LIST_BUSY:
		do_list_busy(fs, &a.busy);
		ret = 0;
		break;
	case DAXFS_IOC_POLICY:
		ret = do_policy(fs, ctx, &a.policy);
		break;
	}
	if (ret)
		fuse_reply_err(req, -ret);
	else
		fuse_reply_ioctl(req, 0, (_IOC_DIR(cmd) & _IOC_READ) ? &a : NULL, (_IOC_DIR(cmd) & _IOC_READ) ? size : 0);
}
