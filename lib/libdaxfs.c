/* SPDX-License-Identifier: MIT */
#include "daxfs/libdaxfs.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

static int xioctl(int fd, unsigned long cmd, void *arg)
{
	return ioctl(fd, cmd, arg) < 0 ? -errno : 0;
}

int daxfs_pin(int fd, uint64_t offset, uint64_t length, uint32_t flags, struct daxfs_pin *pin)
{
	struct daxfs_ioc_pin a = { .size = sizeof(a), .flags = flags, .offset = offset, .length = length };
	int ret = xioctl(fd, DAXFS_IOC_PIN, &a);

	memset(pin, 0, sizeof(*pin));
	if (ret)
		return ret;
	pin->id = a.pin_id;
	pin->offset = a.pin_offset;
	pin->length = a.pin_length;
	pin->nextents = a.nextents;
	pin->ext = malloc((a.nextents ? a.nextents : 1) * sizeof(*pin->ext));
	if (!pin->ext) {
		daxfs_unpin(fd, a.pin_id);
		return -ENOMEM;
	}
	memcpy(pin->ext, a.ext, a.nreturned * sizeof(*pin->ext));
	/* Long extent lists come in pages. */
	for (uint32_t have = a.nreturned; have < a.nextents;) {
		struct daxfs_ioc_pin_extents e = { .size = sizeof(e), .start = have, .pin_id = a.pin_id };

		if ((ret = xioctl(fd, DAXFS_IOC_PIN_EXTENTS, &e)) || e.nreturned == 0) {
			daxfs_unpin(fd, a.pin_id);
			daxfs_pin_free(pin);
			return ret ? ret : -EIO;
		}
		memcpy(pin->ext + have, e.ext, e.nreturned * sizeof(*pin->ext));
		have += e.nreturned;
	}
	return 0;
}

void daxfs_pin_free(struct daxfs_pin *pin)
{
	free(pin->ext);
	pin->ext = NULL;
}

int daxfs_unpin(int fd, uint64_t pin_id)
{
	struct daxfs_ioc_unpin a = { .size = sizeof(a), .pin_id = pin_id };

	return xioctl(fd, DAXFS_IOC_UNPIN, &a);
}

int daxfs_pin_status(int fd, uint64_t pin_id, struct daxfs_ioc_pin_status *st)
{
	memset(st, 0, sizeof(*st));
	st->size = sizeof(*st);
	st->pin_id = pin_id;
	return xioctl(fd, DAXFS_IOC_PIN_STATUS, st);
}

int daxfs_dma(int fd, uint64_t pin_id, uint32_t op, uint64_t offset, uint64_t length, uint64_t tag,
	      uint64_t *mismatches, uint64_t *first_mismatch)
{
	struct daxfs_ioc_dma a = { .size = sizeof(a), .op = op, .pin_id = pin_id, .offset = offset, .length = length,
				   .tag = tag };
	int ret = xioctl(fd, DAXFS_IOC_DMA, &a);

	if (ret == 0 && mismatches)
		*mismatches = a.mismatches;
	if (ret == 0 && first_mismatch)
		*first_mismatch = a.first_mismatch;
	return ret;
}

int daxfs_info(int fd, struct daxfs_ioc_info *info)
{
	memset(info, 0, sizeof(*info));
	return xioctl(fd, DAXFS_IOC_INFO, info);
}

int daxfs_stats(int fd, struct daxfs_ioc_stats *st)
{
	memset(st, 0, sizeof(*st));
	return xioctl(fd, DAXFS_IOC_STATS, st);
}

/*
 * The listings share a header (size, start, count, total) followed by their entries: fetch every
 * page into one array.
 */
struct list_header {
	__u32 size;
	__u32 start;
	__u32 count;
	__u32 total;
};

static int list_all(int fd, unsigned long cmd, size_t arg_size, size_t entry_size, void **out, uint32_t *n)
{
	struct list_header *l = malloc(arg_size);
	char *v = NULL;
	uint32_t have = 0;
	int ret = 0;

	if (!l)
		return -ENOMEM;
	for (;;) {
		memset(l, 0, arg_size);
		l->size = (__u32)arg_size;
		l->start = have;
		if ((ret = xioctl(fd, cmd, l)) || l->count == 0)
			break;
		char *nv = realloc(v, (have + l->count) * entry_size);
		if (!nv) {
			ret = -ENOMEM;
			break;
		}
		v = nv;
		memcpy(v + have * entry_size, l + 1, l->count * entry_size);
		have += l->count;
		if (have >= l->total)
			break;
	}
	free(l);
	if (ret) {
		free(v);
		return ret;
	}
	*out = v;
	*n = have;
	return 0;
}

int daxfs_list_pins(int fd, struct daxfs_pin_info **pins, uint32_t *n)
{
	_Static_assert(offsetof(struct daxfs_ioc_list_pins, pins) == sizeof(struct list_header), "layout");
	return list_all(fd, DAXFS_IOC_LIST_PINS, sizeof(struct daxfs_ioc_list_pins), sizeof(**pins), (void **)pins, n);
}

int daxfs_list_busy(int fd, struct daxfs_busy_info **busy, uint32_t *n)
{
	_Static_assert(offsetof(struct daxfs_ioc_list_busy, busy) == sizeof(struct list_header), "layout");
	return list_all(fd, DAXFS_IOC_LIST_BUSY, sizeof(struct daxfs_ioc_list_busy), sizeof(**busy), (void **)busy, n);
}

int daxfs_policy_get(int fd, struct daxfs_ioc_policy *p)
{
	memset(p, 0, sizeof(*p));
	p->size = sizeof(*p);
	p->op = DAXFS_POLICY_GET;
	return xioctl(fd, DAXFS_IOC_POLICY, p);
}

int daxfs_policy_set(int fd, uint32_t policy, uint32_t admission, uint64_t grace_ms, uint64_t wait_timeout_ms)
{
	struct daxfs_ioc_policy p = { .size = sizeof(p), .op = DAXFS_POLICY_SET, .policy = policy,
				      .admission = admission, .grace_ms = grace_ms, .wait_timeout_ms = wait_timeout_ms };

	return xioctl(fd, DAXFS_IOC_POLICY, &p);
}

void daxfs_pattern_fill(void *buf, uint64_t len, uint64_t pin_id, uint64_t tag, uint64_t media_off)
{
	struct daxfs_dma_unit *u = buf;

	for (uint64_t i = 0; i < len / DAXFS_DMA_UNIT; i++)
		u[i] = (struct daxfs_dma_unit){ .magic = DAXFS_DMA_MAGIC, .pin_id = pin_id, .tag = tag,
						.media_off = media_off + i * DAXFS_DMA_UNIT };
}

int daxfs_pattern_decode(const void *unit, struct daxfs_dma_unit *out)
{
	memcpy(out, unit, sizeof(*out));
	return out->magic == DAXFS_DMA_MAGIC;
}
