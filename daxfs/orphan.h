/* SPDX-License-Identifier: MIT */
/*
 * Orphans: inodes whose last link is gone.  Each goes on the persistent orphan list in the
 * transaction that drops its last link; its media is freed at its last close, or by the next mount.
 */
#ifndef DAXFS_ORPHAN_H
#define DAXFS_ORPHAN_H

#include <stddef.h>
#include <stdint.h>

struct fs;
struct inode;
struct tx;
struct file_free_sink;

/* nlink reached 0: put ip on the orphan list in tx.  Caller holds ns_lock and ip->lock.  0 or -ENOSPC. */
int orphan_add(struct fs *fs, struct tx *tx, struct inode *ip);
/*
 * The last open file of ip was released: free it if it has no link left.  Takes ns_lock and ip->lock.
 * 0 or -EIO.
 */
int orphan_release_last(struct fs *fs, struct inode *ip, const struct file_free_sink *sink);
/*
 * Free all of ip's media (blocks into sink, xattrs, the inode), committing as it goes.  Caller holds
 * ns_lock and ip->lock (write).  0 or -EIO.
 */
int orphan_free_inode(struct fs *fs, struct inode *ip, const struct file_free_sink *sink);
/* Free the inodes on the orphan list (mount does this unless norecovery).  0, or -errno with err set. */
int orphan_recover(struct fs *fs, const struct file_free_sink *sink, char *err, size_t errlen);
/* Clear one orphan-list slot in a transaction of its own (a record that names nothing to free). */
int orphan_drop_slot(struct fs *fs, uint64_t id);

#endif
