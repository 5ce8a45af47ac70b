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

/* The value's size (copied when size > 0), -ENODATA, -ERANGE (buffer too small), -EOPNOTSUPP. */
int xattr_get(struct fs *fs, struct inode *ip, const char *name, void *buf, size_t size);
/* The list's size (copied when size > 0), or -ERANGE. */
int xattr_list(struct fs *fs, struct inode *ip, char *buf, size_t size);
/* 0, -EEXIST / -ENODATA (XATTR_CREATE / XATTR_REPLACE), -ENOSPC, -ERANGE, -EOPNOTSUPP. */
int xattr_set(struct fs *fs, struct inode *ip, const char *name, const void *value, size_t size, int flags);
/* 0 or -ENODATA. */
int xattr_remove(struct fs *fs, struct inode *ip, const char *name);
/* Free the xattr block into tx (inode deletion); ip locked (write). */
void xattr_free_all(struct fs *fs, struct tx *tx, struct inode *ip);

#endif
