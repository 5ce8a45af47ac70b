/* SPDX-License-Identifier: MIT */
/*
 * Shared mmap of direct_io files.
 *
 * In the default (DAX-like) mode files are opened with FOPEN_DIRECT_IO, and since Linux 6.6 the
 * kernel then refuses MAP_SHARED with ENODEV unless the file system sets FUSE_DIRECT_IO_ALLOW_MMAP
 * in its INIT reply.  libfuse 3.14 has no capability bit for that flag (3.16 added one), so we
 * install libfuse's documented custom I/O hooks: they pass every request and reply through
 * unchanged, except that the INIT reply gets the flag when the kernel offered it.  Shared mappings
 * then go through the page cache, which the kernel keeps coherent with direct I/O.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"

#define ALLOW_MMAP_FLAG2 ((uint32_t)(1ULL << (36 - 32)))	/* FUSE_DIRECT_IO_ALLOW_MMAP, protocol 7.39 */

static ssize_t io_read(int fd, void *buf, size_t len, void *userdata)
{
	struct daemon *d = userdata;
	ssize_t n = read(fd, buf, len);

	if (n >= (ssize_t)(sizeof(struct fuse_in_header) + sizeof(struct fuse_init_in))) {
		const struct fuse_in_header *in = buf;

		if (in->opcode == FUSE_INIT) {
			const struct fuse_init_in *init = (const void *)(in + 1);

			d->init_unique = in->unique;
			d->kernel_allows_mmap = (init->flags & FUSE_INIT_EXT) && (init->flags2 & ALLOW_MMAP_FLAG2);
		}
	}
	return n;
}

static ssize_t io_writev(int fd, struct iovec *iov, int count, void *userdata)
{
	struct daemon *d = userdata;
	struct fuse_init_out patched;

	if (d->init_unique && count >= 2 && iov[0].iov_len == sizeof(struct fuse_out_header) &&
	    iov[1].iov_len >= offsetof(struct fuse_init_out, unused)) {
		const struct fuse_out_header *out = iov[0].iov_base;

		if (out->unique == d->init_unique && out->error == 0) {
			memset(&patched, 0, sizeof(patched));
			memcpy(&patched, iov[1].iov_base, iov[1].iov_len < sizeof(patched) ? iov[1].iov_len
											 : sizeof(patched));
			if (d->kernel_allows_mmap && (patched.flags & FUSE_INIT_EXT)) {
				patched.flags2 |= ALLOW_MMAP_FLAG2;
				d->allow_mmap_granted = true;
				iov[1].iov_base = &patched;
			}
			d->init_unique = 0;
		}
	}
	return writev(fd, iov, count);
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
