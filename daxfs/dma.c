/* SPDX-License-Identifier: MIT */
/*
 * The daemon's DMA engine (DAXFS_IOC_DMA): a device for callers who cannot open the media.  It
 * writes tags into, verifies or zeroes the media blocks a pin holds, whatever the file maps there
 * now, one unit of 64 KiB at a time.  Each unit is mapped through the pin under the pin table's lock
 * and copied with it released; unpin, release and revocation stop the engine between two units (see
 * mmap_pin.h: the DMA fence), so no write lands after they return.  A request stopped after some
 * units succeeds with what it did (done, and in result why it stopped), as a device completes a
 * work request short.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fs.h"
#include "media.h"
#include "policy.h"
#include "util.h"

#define DMA_UNIT (64u << 10)

struct dma_job {
	struct fs *fs;
	struct daxfs_ioc_dma *d;
	uint64_t pin_id;
	uint64_t ino;
	uint64_t file_base;	/* file byte of pin offset 0 */
	uint32_t gen;
	uint64_t posted_ns;
	struct daxfs_tag *buf;	/* DMA_UNIT bytes of tags */
};

static void fill_tags(struct dma_job *j, uint64_t media_off, uint64_t pin_off, size_t len)
{
	for (size_t i = 0; i < len / DAXFS_TAG_UNIT; i++)
		j->buf[i] = (struct daxfs_tag){
			.magic = DAXFS_TAG_MAGIC, .pin_id = j->pin_id, .ino = j->ino,
			.file_off = j->file_base + pin_off + i * DAXFS_TAG_UNIT, .media_off = media_off + i * DAXFS_TAG_UNIT,
			.seq = j->d->seq, .gen = j->gen, .source = DAXFS_TAG_SRC_IOCTL, .time_ns = j->posted_ns,
		};
}

static void verify(struct dma_job *j, const char *media, uint64_t media_off, uint64_t pin_off, size_t len)
{
	for (size_t done = 0; done < len; done += DAXFS_TAG_UNIT) {
		const struct daxfs_tag *t = media ? (const void *)(media + done) : NULL;

		if (!t || t->magic != DAXFS_TAG_MAGIC || t->pin_id != j->pin_id || t->seq != j->d->seq ||
		    t->media_off != media_off + done || t->file_off != j->file_base + pin_off + done) {
			if (j->d->mismatches++ == 0)
				j->d->first_mismatch = pin_off + done;
		}
	}
}

/* One unit: [pin_off, pin_off + len) at media_off (UINT64_MAX: a hole of a read pin). */
static void do_unit(struct dma_job *j, uint64_t media_off, uint64_t pin_off, size_t len)
{
	struct media *m = fs_media(j->fs);
	char *p = media_off == UINT64_MAX ? NULL : media_ptr(m, media_off);

	switch (j->d->op) {
	case DAXFS_DMA_WRITE_PATTERN:
		fill_tags(j, media_off, pin_off, len);
		media_copy(m, p, j->buf, len);
		break;
	case DAXFS_DMA_VERIFY_PATTERN:
		verify(j, p, media_off, pin_off, len);
		break;
	case DAXFS_DMA_ZERO:
		media_fill(m, p, 0, len);
		break;
	}
}

int policy_dma(struct fs *fs, struct pin_owner *owner, struct daxfs_ioc_dma *d)
{
	struct pin_table *tab = &fs->pol->pins;
	unsigned sh = fs->sbi.bshift;
	struct dma_job j = { .fs = fs, .d = d, .pin_id = d->pin_id, .posted_ns = util_now_ns() };
	struct pin *p;
	int ret;

	if (d->op < DAXFS_DMA_WRITE_PATTERN || d->op > DAXFS_DMA_ZERO || d->length == 0 ||
	    d->offset % DAXFS_TAG_UNIT || d->length % DAXFS_TAG_UNIT)
		return -EINVAL;
	bool writes = d->op != DAXFS_DMA_VERIFY_PATTERN;
	if (writes && (ret = sbi_writable(&fs->sbi)))
		return ret;
	if (!(j.buf = malloc(DMA_UNIT)))
		return -ENOMEM;
	lock_take(&tab->lock);
	pin_expire_locked(tab, util_now_ns(), sh);
	ret = pin_lookup_locked(tab, owner, d->pin_id, &p);
	if (ret == 0 && p->state == DAXFS_PIN_REVOKED)
		ret = -ENOLINK;
	else if (ret == 0 && writes && !(p->flags & DAXFS_PIN_WRITE))
		ret = -EACCES;
	else if (ret == 0 && (d->offset >= p->nblocks << sh || d->length > (p->nblocks << sh) - d->offset))
		ret = -EINVAL;
	if (ret == 0) {
		pin_get_locked(p);	/* the pin stays allocated until we let go, even if unpinned */
		j.ino = p->ino;
		j.gen = p->gen;
		j.file_base = p->lblk << sh;
	}
	lock_drop(&tab->lock);
	if (ret) {
		free(j.buf);
		return ret;
	}

	d->mismatches = 0;
	d->first_mismatch = ~0ULL;
	d->done = 0;
	for (uint64_t off = d->offset, end = d->offset + d->length; off < end;) {
		uint64_t media_off, run;

		lock_take(&tab->lock);
		ret = pin_unit_begin_locked(p, off, MIN(end - off, (uint64_t)DMA_UNIT), sh, &media_off, &run);
		lock_drop(&tab->lock);
		if (ret)
			break;	/* revoked (ENOLINK), unpinned (ESHUTDOWN) or invalidated (EFAULT): stop here */
		if (media_off != UINT64_MAX || d->op == DAXFS_DMA_VERIFY_PATTERN)
			do_unit(&j, media_off, off, run);
		lock_take(&tab->lock);
		pin_unit_end_locked(tab, p);
		lock_drop(&tab->lock);
		off += run;
		d->done += run;
	}
	/* Durable before we say it is done, as a device's completion would be. */
	if (writes && d->done)
		media_drain(fs_media(fs));
	lock_take(&tab->lock);
	pin_put_locked(tab, p);
	lock_drop(&tab->lock);
	free(j.buf);
	__atomic_add_fetch(&fs->pol->stats.dma_ops, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&fs->pol->stats.dma_bytes, d->done, __ATOMIC_RELAXED);
	if (ret == -ESHUTDOWN)
		ret = -ENOENT;	/* unpinned under us: the pin no longer exists */
	/* Stopped part-way: a short completion, which the caller must see; stopped at once: a failure. */
	d->result = ret;
	return d->done ? 0 : ret;
}
