/* SPDX-License-Identifier: MIT */
/*
 * Extended attributes in the user., trusted. and security. namespaces, in one block per inode.
 * The first four functions take ip->lock themselves.
 */
#ifndef DAXFS_XATTR_H
#define DAXFS_XATTR_H

#include <stddef.h>

struct fs;
struct inode;
struct tx;

/*
 * Names are refused alike by all that take one: -EOPNOTSUPP outside user., trusted. and security.
 * (system.* included), -EINVAL for nothing after the prefix, -ERANGE for more than 255 bytes after
 * it.  A corrupt xattr block is reported (sbi_corrupt) and is -EIO.
 */
/* The value's size (copied when size > 0), -ENODATA, -ERANGE (buffer too small), or a name's error. */
int xattr_get(struct fs *fs, struct inode *ip, const char *name, void *buf, size_t size);
/* The list's size (copied when size > 0), -ERANGE (buffer too small) or -EIO. */
int xattr_list(struct fs *fs, struct inode *ip, char *buf, size_t size);
/*
 * 0; -EEXIST / -ENODATA (XATTR_CREATE / XATTR_REPLACE); -EINVAL for other flags; -E2BIG for a value
 * of 64 KiB or more (size > 65535: an entry's length has 16 bits), whatever the flags and the block;
 * -ENOSPC when it does not fit in the inode's block beside the others (or no block is free);
 * -EPERM for user.* on anything but a regular file or a directory; -EROFS / -EIO when the image
 * cannot change (sbi_writable, sbi_commit); -ENOMEM; or a name's error.
 */
int xattr_set(struct fs *fs, struct inode *ip, const char *name, const void *value, size_t size, int flags);
/* 0, -ENODATA, -EROFS / -EIO when the image cannot change, -ENOMEM, or a name's error. */
int xattr_remove(struct fs *fs, struct inode *ip, const char *name);
/* Free the xattr block into tx (inode deletion); ip locked (write). */
void xattr_free_all(struct fs *fs, struct tx *tx, struct inode *ip);

#endif
