/* SPDX-License-Identifier: MIT */
/*
 * Shared mmap of direct_io files, and the hooks of FUSE over io_uring (fuse_uring.h).
 *
 * In the default (DAX-like) mode files are opened with FOPEN_DIRECT_IO, and since Linux 6.6 the
 * kernel then refuses MAP_SHARED with ENODEV unless the file system sets FUSE_DIRECT_IO_ALLOW_MMAP
 * in its INIT reply.  libfuse 3.14 has no capability bit for that flag (3.16 added one), so we
 * install libfuse's documented custom I/O hooks: they pass every request and reply through
 * unchanged, except that the INIT reply gets the flag when the kernel offered it.  Shared mappings
 * then go through the page cache, which the kernel keeps coherent with direct I/O.
 *
 * The same hooks let fuse_uring.c see INIT (the kernel offers io_uring; we ask for it) and take the
 * replies to requests that came over io_uring, which must not go to /dev/fuse.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"
#include "fuse_uring.h"

#define ALLOW_MMAP_FLAG2 ((uint32_t)(1ULL << (36 - 32)))	/* FUSE_DIRECT_IO_ALLOW_MMAP, protocol 7.39 */

static ssize_t io_read(int fd, void *buf, size_t len, void *userdata)
{
	struct daemon *d = userdata;
	ssize_t n = read(fd, buf, len);

	if (n > 0)
		fuse_uring_count_dev(d);
	if (n >= (ssize_t)(sizeof(struct fuse_in_header) + sizeof(struct fuse_init_in))) {
		const struct fuse_in_header *in = buf;

		if (in->opcode == FUSE_INIT) {
			const struct fuse_init_in *init = (const void *)(in + 1);

			d->init_unique = in->unique;
			d->kernel_allows_mmap = (init->flags & FUSE_INIT_EXT) && (init->flags2 & ALLOW_MMAP_FLAG2);
			fuse_uring_init_request(d, init);
		}
	}
	return n;
}

static ssize_t io_writev(int fd, struct iovec *iov, int count, void *userdata)
{
	struct daemon *d = userdata;
	struct fuse_init_out patched;
	bool init_reply = false;
	ssize_t n;

	if (fuse_uring_reply(d, iov, count, &n))
		return n;
	if (d->init_unique && count >= 2 && iov[0].iov_len == sizeof(struct fuse_out_header) &&
	    iov[1].iov_len >= offsetof(struct fuse_init_out, unused)) {
		const struct fuse_out_header *out = iov[0].iov_base;

		if (out->unique == d->init_unique && out->error == 0) {
			memset(&patched, 0, sizeof(patched));
			memcpy(&patched, iov[1].iov_base, iov[1].iov_len < sizeof(patched) ? iov[1].iov_len
											 : sizeof(patched));
			bool changed = fuse_uring_init_reply(d, &patched);
			if (d->cache == CACHE_DAX && d->kernel_allows_mmap && (patched.flags & FUSE_INIT_EXT)) {
				patched.flags2 |= ALLOW_MMAP_FLAG2;
				d->allow_mmap_granted = true;
				changed = true;
			}
			if (changed)
				iov[1].iov_base = &patched;
			d->init_unique = 0;
			init_reply = true;
		}
	}
	n = writev(fd, iov, count);
	/* Only now may the ring commands come: the kernel refuses them before INIT is done. */
	if (init_reply && n >= 0)
		fuse_uring_init_done(d);
	return n;
}

static ssize_t io_splice_receive(int fdin, off_t *offin, int fdout, off_t *offout, size_t len, unsigned flags,
				 void *userdata)
{
	(void)userdata;
	return splice(fdin, offin, fdout, offout, len, flags);
}

static ssize_t io_splice_send(int fdin, off_t *offin, int fdout, off_t *offout, size_t len, unsigned flags,
			      void *userdata)
{
	(void)userdata;
	return splice(fdin, offin, fdout, offout, len, flags);
}

int fuse_io_install(struct fuse_session *se, struct daemon *d)
{
	static const struct fuse_custom_io io = {
		.read = io_read,
		.writev = io_writev,
		.splice_receive = io_splice_receive,
		.splice_send = io_splice_send,
	};

	/* Same descriptor libfuse mounted with: only the I/O calls change; d arrives as userdata. */
	(void)d;
	return fuse_session_custom_io(se, &io, fuse_session_fd(se));
}
