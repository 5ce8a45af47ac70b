/* SPDX-License-Identifier: MIT */
/* State shared by the daemon's FUSE glue: main.c sets it up, fuse_ops.c serves requests with it. */
#ifndef DAXFS_DAEMON_H
#define DAXFS_DAEMON_H

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/queue.h>

#include "fs.h"
#include "mmap_pin.h"

struct fuse_uring;

enum cache_mode {
	CACHE_DAX,	/* direct_io: every read and write reaches the media, like a DAX mount */
	CACHE_PAGE,	/* the kernel page cache in front of the media */
};

/* Which data moves through a pipe (-o splice=), see fuse_ops.c. */
#define SPLICE_WRITES	0x1	/* write payloads: spliced from /dev/fuse, read() into the media */
#define SPLICE_READS	0x2	/* read replies: spliced from the image file into /dev/fuse */

struct daemon {
	struct fs *fs;
	enum cache_mode cache;
	unsigned splice;	/* SPLICE_*, what INIT could grant of what was asked */
	bool splice_asked;	/* -o splice= given: say so when it cannot be had */
	unsigned max_write;	/* bytes, at most libfuse 3.14's 1 MiB */
	double attr_timeout;
	double entry_timeout;
	/* FUSE_DIRECT_IO_ALLOW_MMAP negotiation (see fuse_io.c) */
	bool kernel_allows_mmap;
	bool allow_mmap_granted;
	uint64_t init_unique;
	/* How requests arrive: /dev/fuse, or FUSE over io_uring (fuse_uring.h) */
	struct fuse_uring *uring;
	/* Open files, so those whose release never arrives (unmount races close) are released at exit. */
	pthread_mutex_t of_lock;
	LIST_HEAD(, open_file) open_files;
};

/*
 * Release every open file still known (daemon shutdown): pins, each holder told (DROPPED), then the
 * open itself.
 */
void fuse_ops_release_all(struct daemon *d);

/* An open file or directory: the fh of a FUSE request.  Its pins die with it. */
struct open_file {
	struct inode *ip;
	int flags;
	struct pin_owner pins;
	LIST_ENTRY(open_file) link;	/* in daemon.open_files */
};

extern const struct fuse_lowlevel_ops daxfs_ll_ops;

void ioctl_op(fuse_req_t req, fuse_ino_t ino, unsigned int cmd, void *arg, struct fuse_file_info *fi, unsigned flags,
	      const void *in_buf, size_t in_size, size_t out_size);

/*
 * Route the session's /dev/fuse traffic through hooks that grant FUSE_DIRECT_IO_ALLOW_MMAP and
 * hand replies to ring requests to fuse_uring.c.
 */
int fuse_io_install(struct fuse_session *se, struct daemon *d);

#endif
