/* SPDX-License-Identifier: MIT */
/*
 * File data: reads served as pointers into the media, writes copied in with non-temporal stores,
 * truncate, fallocate and SEEK_DATA/SEEK_HOLE over the extent map.
 *
 * Invariant: every byte of an allocated block that is not file data (beyond EOF, or never written
 * since allocation) reads as zero once it becomes file data.  New blocks are zeroed where a write
 * does not cover them and truncate zeroes the tail of the last block; but a device holding a pin
 * (pins cover whole blocks) may write past EOF in the last block at any time, so extending a file
 * zeroes that tail again, as Linux zeroes the old EOF block on extend.
 *
 * Ordering: data reaches the media and is drained before the transaction that makes it reachable
 * (new extents, a larger size) commits, so a crash never exposes stale blocks.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fs.h"
#include "util.h"
#include "file.h"
#include "inode.h"

#define ZERO_CHUNK (1u << 20)
static char zero_buf[ZERO_CHUNK];	/* holes read from here (bss: the kernel's zero page) */

static uint64_t bmask(const struct fs *fs)
{
	return fs_bs(fs) - 1;
}

static char *block_ptr(struct fs *fs, uint64_t pblk)
{
	return sbi_block(&fs->sbi, pblk);
}

/* ---- freeing: the single place where blocks leave a file ---- */

static void free_now(void *arg, struct tx *tx, struct inode *ip, uint64_t pblk, uint64_t len)
{
	struct fs *fs = arg;

	(void)ip;
	sbi_free(&fs->sbi, tx, pblk, len);
}

struct file_free_sink file_free_direct(struct fs *fs)
{
	return (struct file_free_sink){ free_now, fs };
}

struct free_ctx {
	const struct file_free_sink *sink;
	struct tx *tx;
	struct inode *ip;
};

static void free_blocks(void *arg, uint64_t pblk, uint64_t len)
{
	struct free_ctx *fc = arg;

	fc->sink->fn(fc->sink->arg, fc->tx, fc->ip, pblk, len);
}

/*
 * Unmap blocks [lblk, lblk + len), committing tx (and starting new transactions) as the work grows.
 * The inode is logged in every transaction, so each intermediate state is a consistent file.
 */
static int unmap_blocks(struct fs *fs, struct inode *ip, struct tx *tx, uint64_t lblk, uint64_t len,
			const struct file_free_sink *sink)
{
	struct free_ctx fc = { sink, tx, ip };
	int ret;

	for (;;) {
		ret = emap_remove(fs, tx, ip, lblk, len, free_blocks, &fc);
		emap_log(fs, tx, ip);
		inode_log(fs, tx, ip);
		if (ret != -EAGAIN)
			break;
		if ((ret = sbi_commit(&fs->sbi, tx)))
			return ret;
		tx_init(tx, &fs->sbi.journal);
	}
	if (ret) {
		tx_free(tx);
		return ret;
	}
	return sbi_commit(&fs->sbi, tx);
}

/*
 * Zero the mapped bytes of [from, to), which lie in one block, as part of tx: the partial block at
 * the edge of a truncate or punch changes atomically with the rest of it.
 */
static void zero_in_block(struct fs *fs, struct inode *ip, struct tx *tx, uint64_t from, uint64_t to)
{
	struct emap_cursor c;
	struct daxfs_extent e;
	uint64_t lblk = from >> fs->sbi.bshift;

	if (from >= to || !emap_seek(ip, lblk, &c, &e) || e.lblk > lblk)
		return;
	uint64_t off = sbi_block_off(&fs->sbi, e.pblk + (lblk - e.lblk)) + (from & bmask(fs));
	tx_log_data(tx, off, zero_buf, to - from);
}

/*
 * The file grows from old_size: zero the bytes of the old EOF block past it, up to new_size, that a
 * device may have written.  They are past EOF now, so no journal is needed: the caller drains before
 * the size change commits.
 */
static void zero_eof_tail(struct fs *fs, struct inode *ip, uint64_t old_size, uint64_t new_size)
{
	uint64_t bs = fs_bs(fs), end = MIN(new_size, ROUND_UP(old_size, bs));
	struct emap_cursor c;
	struct daxfs_extent e;
	uint64_t lblk = old_size >> fs->sbi.bshift;

	if (!(old_size & bmask(fs)) || end <= old_size || !emap_seek(ip, lblk, &c, &e) || e.lblk > lblk)
		return;
	media_fill(fs_media(fs), block_ptr(fs, e.pblk + (lblk - e.lblk)) + (old_size & bmask(fs)), 0, end - old_size);
}

/* Zero every mapped byte of [from, to). */
static void zero_mapped(struct fs *fs, struct inode *ip, uint64_t from, uint64_t to)
{
	struct emap_cursor c;
	struct daxfs_extent e;
	unsigned sh = fs->sbi.bshift;
	bool more;

	for (more = emap_seek(ip, from >> sh, &c, &e); more && (e.lblk << sh) < to; more = emap_next(ip, &c, &e)) {
		uint64_t s = MAX(from, e.lblk << sh), t = MIN(to, (e.lblk + e.len) << sh);

		media_fill(fs_media(fs), block_ptr(fs, e.pblk) + (s - (e.lblk << sh)), 0, t - s);
	}
}

int file_unmap(struct fs *fs, struct inode *ip, uint64_t lblk, uint64_t n, const struct file_free_sink *sink)
{
	struct tx tx;

	tx_init(&tx, &fs->sbi.journal);
	return unmap_blocks(fs, ip, &tx, lblk, n, sink);
}

int file_truncate(struct fs *fs, struct inode *ip, uint64_t size, struct tx *tx, const struct file_free_sink *sink)
{
	uint32_t bs = fs_bs(fs);

	if (size > DAXFS_MAX_FILE_SIZE) {
		tx_free(tx);
		return -EFBIG;
	}
	/* Bytes past the new EOF in its last block must read as zero if the file grows again. */
	if (size < ip->d.size && (size & bmask(fs)))
		zero_in_block(fs, ip, tx, size, MIN(ROUND_UP(size, bs), ip->d.size));
	/*
	 * Truncating to the current size or below also drops blocks preallocated past EOF
	 * (fallocate KEEP_SIZE), as ext4 and XFS do; growing keeps them.
	 */
	bool shrink = size <= ip->d.size;
	if (!shrink) {
		zero_eof_tail(fs, ip, ip->d.size, size);
		media_drain(fs_media(fs));
	}
	ip->d.size = size;
	if (!shrink) {
		inode_log(fs, tx, ip);
		return sbi_commit(&fs->sbi, tx);
	}
	uint64_t first = DIV_ROUND_UP(size, bs);
	return unmap_blocks(fs, ip, tx, first, (DAXFS_MAX_FILE_SIZE >> fs->sbi.bshift) - first, sink);
}

/*
 * Allocate the holes among blocks [first, last].  New blocks are zeroed except for the bytes
 * [keep_from, keep_to) that the caller is about to write.  Stops at the first block it cannot
 * allocate, returning in *stop the first block not mapped (last + 1 when all are).
 */
static int alloc_holes(struct fs *fs, struct tx *tx, struct inode *ip, uint64_t first, uint64_t last,
		       uint64_t keep_from, uint64_t keep_to, uint64_t *stop, bool *allocated)
{
	struct sbi *s = &fs->sbi;
	unsigned sh = s->bshift;
	uint64_t lblk = first;
	int ret = 0;

	size_t budget = tx_budget(tx->j) / 2;

	while (lblk <= last) {
		struct emap_cursor c;
		struct daxfs_extent e;
		bool found = emap_seek(ip, lblk, &c, &e);

		/* A badly fragmented allocation stops here; callers take it as a partial result. */
		if (tx_bytes(tx) + (size_t)(ip->map.ndirty + 2) * (fs_bs(fs) + 64) > budget)
			break;

		if (found && e.lblk <= lblk) {
			lblk = e.lblk + e.len;
			continue;
		}
		uint64_t hole_end = found ? MIN(e.lblk, last + 1) : last + 1;
		while (lblk < hole_end) {
			struct alloc_req req = { .goal = emap_goal(ip, lblk), .lblk = lblk, .want = hole_end - lblk,
						 .flags = ALLOC_ALIGN };
			uint64_t pblk, n;

			if ((ret = reclaim_alloc(&fs->reclaim, &req, &pblk, &n)))
				goto out;
			if ((ret = emap_insert(fs, tx, ip, lblk, pblk, n))) {
				sbi_unalloc(s, pblk, n);
				goto out;
			}
			sbi_use(s, tx, pblk, n);
			ip->d.blocks += n;
			*allocated = true;

			uint64_t a = lblk << sh, b = (lblk + n) << sh;
			uint64_t z1 = MIN(MAX(keep_from, a), b), z2 = MIN(MAX(keep_to, a), b);
			char *p = block_ptr(fs, pblk);
			if (z1 > a)
				media_fill(fs_media(fs), p, 0, z1 - a);
			if (b > z2)
				media_fill(fs_media(fs), p + (z2 - a), 0, b - z2);
			lblk += n;
		}
	}
out:
	*stop = lblk;
	return ret;
}

/* Blocks of [first, last] not yet mapped: what an allocation must find. */
static uint64_t holes_in(const struct inode *ip, uint64_t first, uint64_t last);

int file_fill_holes(struct fs *fs, struct inode *ip, uint64_t lblk, uint64_t last)
{
	int ret;

	/* Nothing to fill is fine anywhere; filling needs a writable file system. */
	if (holes_in(ip, lblk, last) == 0)
		return 0;
	if ((ret = sbi_writable(&fs->sbi)))
		return ret;
	while (lblk <= last) {
		bool allocated = false;
		uint64_t stop;
		struct tx tx;

		tx_init(&tx, &fs->sbi.journal);
		ret = alloc_holes(fs, &tx, ip, lblk, last, 0, 0, &stop, &allocated);
		if (allocated) {
			/* The zeroes are durable before the blocks become part of the file. */
			media_drain(fs_media(fs));
			emap_log(fs, &tx, ip);
			inode_log(fs, &tx, ip);
			int cret = sbi_commit(&fs->sbi, &tx);
			ret = ret ? ret : cret;
		} else {
			tx_free(&tx);
		}
		if (ret)
			return ret;
		if (stop == lblk)
			return -ENOSPC;
		lblk = stop;
	}
	return 0;
}

/* ---- read ---- */

int file_read_iov(struct fs *fs, struct inode *ip, uint64_t off, size_t len, struct iovec *iov, int maxiov,
		  int *niov, size_t *bytes)
{
	unsigned sh = fs->sbi.bshift;
	uint64_t end, cur = off;
	struct emap_cursor c;
	struct daxfs_extent e;
	int n = 0;

	*niov = 0;
	*bytes = 0;
	if (off >= ip->d.size)
		return 0;
	end = MIN(ip->d.size, off + len);
	bool more = emap_seek(ip, off >> sh, &c, &e);
	while (cur < end && n < maxiov) {
		char *base;
		uint64_t run;

		if (more && (e.lblk << sh) <= cur) {
			uint64_t e_end = (e.lblk + e.len) << sh;

			base = block_ptr(fs, e.pblk) + (cur - (e.lblk << sh));
			run = MIN(end, e_end) - cur;
			if (cur + run == e_end)
				more = emap_next(ip, &c, &e);
		} else {
			uint64_t hole_end = more ? MIN(end, e.lblk << sh) : end;

			base = zero_buf;
			run = MIN(hole_end - cur, (uint64_t)ZERO_CHUNK);
		}
		/* Physically contiguous extents make one iovec. */
		if (n > 0 && base != zero_buf && (char *)iov[n - 1].iov_base + iov[n - 1].iov_len == base) {
			iov[n - 1].iov_len += run;
		} else {
			iov[n].iov_base = base;
			iov[n].iov_len = run;
			n++;
		}
		cur += run;
	}
	*niov = n;
	*bytes = cur - off;
	return 0;
}

/* relatime: update atime only when it is older than mtime or ctime, or a day old. */
static bool atime_due(const struct inode *ip)
{
	struct timespec now;
	const struct daxfs_inode *d = &ip->d;

	if (d->atime_sec < d->mtime_sec || (d->atime_sec == d->mtime_sec && d->atime_nsec < d->mtime_nsec) ||
	    d->atime_sec < d->ctime_sec || (d->atime_sec == d->ctime_sec && d->atime_nsec < d->ctime_nsec))
		return true;
	clock_gettime(CLOCK_REALTIME, &now);
	return now.tv_sec - d->atime_sec >= 24 * 3600;
}

int file_read(struct fs *fs, struct inode *ip, uint64_t off, size_t size, file_send_fn send, void *ctx)
{
	struct iovec iov[FILE_READ_MAX_IOV];
	size_t bytes;
	int niov, ret;

	pthread_rwlock_rdlock(&ip->lock);
	if (!fs->sbi.readonly && atime_due(ip)) {
		/*
		 * Rare under relatime: update atime before the reply, or a stat right after the read
		 * could still see the old one.  The read then runs under the write lock.
		 */
		pthread_rwlock_unlock(&ip->lock);
		pthread_rwlock_wrlock(&ip->lock);
		if (atime_due(ip))
			inode_touch(ip, T_ATIME);
	}
	ret = file_read_iov(fs, ip, off, size, iov, FILE_READ_MAX_IOV, &niov, &bytes);
	/* The iovecs point into the media: hold the lock until they have been copied out. */
	if (ret == 0)
		ret = send(ctx, iov, niov);
	pthread_rwlock_unlock(&ip->lock);
	return ret;
}

int file_pread(struct fs *fs, struct inode *ip, void *buf, size_t len, uint64_t off)
{
	struct iovec iov[FILE_READ_MAX_IOV];
	size_t bytes, done = 0;
	int niov;

	while (done < len) {
		file_read_iov(fs, ip, off + done, len - done, iov, FILE_READ_MAX_IOV, &niov, &bytes);
		if (bytes == 0)
			break;
		for (int i = 0; i < niov; i++) {
			memcpy((char *)buf + done, iov[i].iov_base, iov[i].iov_len);
			done += iov[i].iov_len;
		}
	}
	return (int)done;
}

/* ---- write ---- */

/* The iovec source: a cursor over the caller's gather list, copied with non-temporal stores. */
struct iov_src {
	const struct iovec *iov;
	int niov;
	int vi;
	size_t voff;
};

static int copy_from_iov(void *ctx, struct media *m, char *dst, size_t n)
{
	struct iov_src *s = ctx;

	while (n > 0 && s->vi < s->niov) {
		size_t take = MIN(n, s->iov[s->vi].iov_len - s->voff);

		media_copy(m, dst, (const char *)s->iov[s->vi].iov_base + s->voff, take);
		dst += take;
		n -= take;
		s->voff += take;
		if (s->voff == s->iov[s->vi].iov_len) {
			s->vi++;
			s->voff = 0;
		}
	}
	return 0;
}

ssize_t file_write(struct fs *fs, struct inode *ip, uint64_t off, const struct iovec *iov, int niov)
{
	struct iov_src is = { .iov = iov, .niov = niov };
	struct file_src src = { copy_from_iov, &is };
	size_t total = 0;

	for (int i = 0; i < niov; i++)
		total += iov[i].iov_len;
	return file_write_src(fs, ip, off, total, &src);
}

ssize_t file_write_src(struct fs *fs, struct inode *ip, uint64_t off, size_t total, const struct file_src *src)
{
	unsigned sh = fs->sbi.bshift;
	bool allocated = false;
	struct tx tx;
	int ret;

	if ((ret = sbi_writable(&fs->sbi)))
		return ret;
	if (total == 0)
		return 0;
	if (off >= DAXFS_MAX_FILE_SIZE)
		return -EFBIG;
	total = MIN(total, DAXFS_MAX_FILE_SIZE - off);

	pthread_rwlock_wrlock(&ip->lock);
	uint64_t end = off + total, stop;
	tx_init(&tx, &fs->sbi.journal);
	ret = alloc_holes(fs, &tx, ip, off >> sh, (end - 1) >> sh, off, end, &stop, &allocated);
	if (stop <= (end - 1) >> sh) {
		/*
		 * Out of space (or memory) part-way: write what is mapped, as a short write.  Allocation
		 * went in order, so every new block lies inside what is written.
		 */
		end = MIN(end, stop << sh);
		if (end <= off) {
			tx_free(&tx);
			pthread_rwlock_unlock(&ip->lock);
			return ret ? ret : -ENOSPC;
		}
	}
	ret = 0;

	struct emap_cursor c;
	struct daxfs_extent e;
	int serr = 0;
	if (off > ip->d.size)
		zero_eof_tail(fs, ip, ip->d.size, off);
	for (bool more = emap_seek(ip, off >> sh, &c, &e); more && (e.lblk << sh) < end;
	     more = emap_next(ip, &c, &e)) {
		uint64_t s = MAX(off, e.lblk << sh), t = MIN(end, (e.lblk + e.len) << sh);
		char *dst = block_ptr(fs, e.pblk) + (s - (e.lblk << sh));

		/* After a source failure the rest is zeroed, so that no new block keeps stale bytes. */
		if (serr)
			media_fill(fs_media(fs), dst, 0, t - s);
		else
			serr = src->copy(src->ctx, fs_media(fs), dst, t - s);
	}
	media_drain(fs_media(fs));

	if (serr)
		end = off;	/* the size stays; new blocks (zeroed) stay mapped, as after a preallocation */
	inode_touch(ip, T_MTIME | T_CTIME);
	if (allocated || end > ip->d.size) {
		ip->d.size = MAX(ip->d.size, end);
		emap_log(fs, &tx, ip);
		inode_log(fs, &tx, ip);
		ret = sbi_commit(&fs->sbi, &tx);
	} else {
		tx_free(&tx);
	}
	pthread_rwlock_unlock(&ip->lock);
	if (serr)
		return serr;
	return ret ? ret : (ssize_t)(end - off);
}

/* ---- fallocate ---- */

int file_punch(struct fs *fs, struct inode *ip, uint64_t off, uint64_t len, const struct file_free_sink *sink)
{
	uint32_t bs = fs_bs(fs);
	unsigned sh = fs->sbi.bshift;
	uint64_t end = off + len;
	uint64_t first = DIV_ROUND_UP(off, bs), last = end >> sh;	/* whole blocks: [first, last) */
	struct tx tx;

	inode_touch(ip, T_MTIME | T_CTIME);
	tx_init(&tx, &fs->sbi.journal);
	if (first > last) {
		/* Inside one block. */
		zero_in_block(fs, ip, &tx, off, end);
	} else {
		zero_in_block(fs, ip, &tx, off, first << sh);
		if (end & bmask(fs))
			zero_in_block(fs, ip, &tx, last << sh, end);
	}
	if (first >= last) {
		inode_log(fs, &tx, ip);
		return sbi_commit(&fs->sbi, &tx);
	}
	return unmap_blocks(fs, ip, &tx, first, last - first, sink);
}

/* Blocks of [first, last] not yet mapped: what an allocation must find. */
static uint64_t holes_in(const struct inode *ip, uint64_t first, uint64_t last)
{
	struct emap_cursor c;
	struct daxfs_extent e;
	uint64_t mapped = 0;

	for (bool more = emap_seek(ip, first, &c, &e); more && e.lblk <= last; more = emap_next(ip, &c, &e))
		mapped += MIN(last + 1, e.lblk + e.len) - MAX(first, e.lblk);
	return last - first + 1 - mapped;
}

int file_preallocate(struct fs *fs, struct inode *ip, int mode, uint64_t off, uint64_t len)
{
	unsigned sh = fs->sbi.bshift;
	uint64_t end = off + len, first = off >> sh, last = (end - 1) >> sh;
	int ret = 0;

	if (holes_in(ip, first, last) > alloc_avail_blocks(&fs->sbi.alloc))
		return -ENOSPC;
	if (mode & FALLOC_FL_ZERO_RANGE) {
		zero_mapped(fs, ip, off, end);
		inode_touch(ip, T_MTIME | T_CTIME);
	}
	/* Allocate in slices so each transaction stays well inside the journal. */
	for (uint64_t lblk = first; lblk <= last && ret == 0;) {
		uint64_t slice_end = MIN(last, lblk + (64ull << 20 >> sh) - 1), stop;
		bool allocated = false;
		struct tx tx;

		tx_init(&tx, &fs->sbi.journal);
		ret = alloc_holes(fs, &tx, ip, lblk, slice_end, 0, 0, &stop, &allocated);
		media_drain(fs_media(fs));
		if (!(mode & FALLOC_FL_KEEP_SIZE) && stop > lblk && MIN(end, stop << sh) > ip->d.size) {
			zero_eof_tail(fs, ip, ip->d.size, MIN(end, stop << sh));
			media_drain(fs_media(fs));
			ip->d.size = MIN(end, stop << sh);
		}
		if (allocated || stop > lblk)
			inode_touch(ip, T_CTIME);
		emap_log(fs, &tx, ip);
		inode_log(fs, &tx, ip);
		int cret = sbi_commit(&fs->sbi, &tx);
		ret = ret ? ret : cret;
		lblk = stop;
	}
	return ret;
}

/* ---- lseek ---- */

int file_lseek(struct fs *fs, struct inode *ip, uint64_t off, int whence, uint64_t *res)
{
	unsigned sh = fs->sbi.bshift;
	struct emap_cursor c;
	struct daxfs_extent e;
	int ret = 0;

	if (whence != SEEK_DATA && whence != SEEK_HOLE)
		return -EINVAL;
	pthread_rwlock_rdlock(&ip->lock);
	uint64_t size = ip->d.size;
	if (off >= size) {
		ret = -ENXIO;
		goto out;
	}
	bool more = emap_seek(ip, off >> sh, &c, &e);
	if (whence == SEEK_DATA) {
		if (!more || (e.lblk << sh) >= size)
			ret = -ENXIO;
		else
			*res = MAX(off, e.lblk << sh);
		goto out;
	}
	/* SEEK_HOLE: the end of the run of contiguous extents that covers off, or EOF. */
	uint64_t pos = off;
	while (more && (e.lblk << sh) <= pos) {
		pos = (e.lblk + e.len) << sh;
		more = emap_next(ip, &c, &e);
	}
	*res = MIN(pos, size);
out:
	pthread_rwlock_unlock(&ip->lock);
	return ret;
}
