/* SPDX-License-Identifier: MIT */
/*
 * File data: reads served as pointers into the media, writes copied in with non-temporal stores,
 * truncate, punch, preallocation and SEEK_DATA/SEEK_HOLE over the extent map.
 *
 * Functions that take ip->lock say so; the others expect the caller to hold it (write when they
 * change the file).
 */
#ifndef DAXFS_FILE_H
#define DAXFS_FILE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

struct fs;
struct inode;
struct media;
struct tx;

/*
 * Where blocks leaving a file go: fn gets each freed media range, in the transaction that detaches
 * it.  The caller supplies it (the namespace layer: the policy decides), so this layer never calls up.
 */
struct file_free_sink {
	void (*fn)(void *arg, struct tx *tx, struct inode *ip, uint64_t pblk, uint64_t len);
	void *arg;
};
/* A sink that frees at once (no pins can exist: the checker, tests). */
struct file_free_sink file_free_direct(struct fs *fs);

#define FILE_READ_MAX_IOV 520	/* enough for 1 MiB alternating between data and holes */
typedef int (*file_send_fn)(void *ctx, const struct iovec *iov, int niov);
/*
 * Read [off, off + size): `send` gets iovecs pointing into the media (holes point at zeroes) and must
 * consume them before returning.  Takes ip->lock (read) and holds it while send runs.  Returns 0,
 * send's error, or -errno.
 */
int file_read(struct fs *fs, struct inode *ip, uint64_t off, size_t size, file_send_fn send, void *ctx);
/* Write a gather list at off; takes ip->lock.  Returns the bytes written (short on ENOSPC) or -errno. */
ssize_t file_write(struct fs *fs, struct inode *ip, uint64_t off, const struct iovec *iov, int niov);
/*
 * Where the bytes of a write come from: copy puts the next n of them into the media at dst, flushed
 * (media_copy or media_copy_from_fd), and returns 0 or -errno.  After a failure it is not called
 * again; the rest of the range is zeroed.
 */
struct file_src {
	int (*copy)(void *ctx, struct media *m, char *dst, size_t n);
	void *ctx;
};
/*
 * file_write with the bytes from src, in file order.  Takes ip->lock.  Returns the bytes written
 * (short on ENOSPC: src then still holds the rest), or -errno: src's error leaves the size as it
 * was and [off, off + len) reading as zeroes where src had nothing to give.
 */
ssize_t file_write_src(struct fs *fs, struct inode *ip, uint64_t off, size_t len, const struct file_src *src);
/* SEEK_DATA / SEEK_HOLE from off; takes ip->lock.  0 with *res, -ENXIO past the data, -EINVAL. */
int file_lseek(struct fs *fs, struct inode *ip, uint64_t off, int whence, uint64_t *res);
/* Preallocate (mode 0, KEEP_SIZE, ZERO_RANGE) [off, off + len); ip locked.  0, -ENOSPC, -EIO. */
int file_preallocate(struct fs *fs, struct inode *ip, int mode, uint64_t off, uint64_t len);
/*
 * Punch the whole blocks of [off, off + len) out, handing freed media to sink; the partial blocks at
 * the edges are zeroed in place, in the same transaction.  ip locked.  0 or -EIO.
 */
int file_punch(struct fs *fs, struct inode *ip, uint64_t off, uint64_t len, const struct file_free_sink *sink);
/* Unmap file blocks [lblk, lblk + n) whole (no edge zeroing), freeing into sink.  ip locked.  0 or -EIO. */
int file_unmap(struct fs *fs, struct inode *ip, uint64_t lblk, uint64_t n, const struct file_free_sink *sink);
/* Set the size, freeing blocks past it into sink; commits tx (and more).  ip locked.  0, -EFBIG, -EIO. */
int file_truncate(struct fs *fs, struct inode *ip, uint64_t size, struct tx *tx, const struct file_free_sink *sink);
/* Allocate (zeroed) the holes of blocks [lblk, last] and commit, as a DAX write fault would.  ip locked. */
int file_fill_holes(struct fs *fs, struct inode *ip, uint64_t lblk, uint64_t last);
/* The iovecs of [off, off + len) (capped at EOF and maxiov); ip locked (read).  Always 0. */
int file_read_iov(struct fs *fs, struct inode *ip, uint64_t off, size_t len, struct iovec *iov, int maxiov,
		  int *niov, size_t *bytes);
/* Copy out file bytes (long symlinks); ip locked (read).  Returns the count. */
int file_pread(struct fs *fs, struct inode *ip, void *buf, size_t len, uint64_t off);

#endif
