/* SPDX-License-Identifier: MIT */
/*
 * The namespace: POSIX operations on names and attributes, with a shape FUSE's low-level API
 * maps onto (fuse_ops.c).  Each returns 0 or -errno and takes the locks it needs: fs->ns_lock for
 * namespace changes, then inode locks.  The operations that free blocks (truncate, O_TRUNC,
 * punch, the last close of an unlinked file) ask the policy first and hand it what they free.
 */
#ifndef DAXFS_NAMEI_H
#define DAXFS_NAMEI_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>

#include "dir.h"

struct fs;
struct cred;
struct inode;
struct policy_op;

struct entry {
	uint64_t ino;
	uint32_t generation;
	struct stat st;
};

int namei_lookup(struct fs *fs, uint64_t parent, const char *name, struct entry *e);
int namei_getattr(struct fs *fs, uint64_t ino, struct stat *st);
/* to_set: NAMEI_SET_* bits */
#define NAMEI_SET_MODE	(1 << 0)
#define NAMEI_SET_UID	(1 << 1)
#define NAMEI_SET_GID	(1 << 2)
#define NAMEI_SET_SIZE	(1 << 3)
#define NAMEI_SET_ATIME	(1 << 4)
#define NAMEI_SET_MTIME	(1 << 5)
#define NAMEI_SET_ATIME_NOW (1 << 7)
#define NAMEI_SET_MTIME_NOW (1 << 8)
#define NAMEI_SET_CTIME	(1 << 10)
/*
 * A size change that frees pinned blocks asks the policy (op: see namei_open), and may return
 * -POLICY_EPARK.
 */
int namei_setattr(struct fs *fs, uint64_t ino, const struct stat *attr, int to_set, struct stat *out,
		  struct policy_op *op);
int namei_mknod(struct fs *fs, const struct cred *cr, uint64_t parent, const char *name, mode_t mode, dev_t rdev,
	     struct entry *e);
int namei_mkdir(struct fs *fs, const struct cred *cr, uint64_t parent, const char *name, mode_t mode,
	     struct entry *e);
int namei_symlink(struct fs *fs, const struct cred *cr, uint64_t parent, const char *name, const char *target,
	       struct entry *e);
int namei_link(struct fs *fs, uint64_t ino, uint64_t newparent, const char *newname, struct entry *e);
int namei_unlink(struct fs *fs, uint64_t parent, const char *name);
int namei_rmdir(struct fs *fs, uint64_t parent, const char *name);
#define NAMEI_RENAME_NOREPLACE (1 << 0)
#define NAMEI_RENAME_EXCHANGE  (1 << 1)
int namei_rename(struct fs *fs, uint64_t parent, const char *name, uint64_t newparent, const char *newname,
	      unsigned flags);
int namei_readlink(struct fs *fs, uint64_t ino, char *buf, size_t size);
/*
 * Open: counts the open; O_TRUNC truncates.  op is the request as the policy knows it: when the
 * policy makes it wait, the call returns -POLICY_EPARK having changed nothing, and the caller parks
 * op (policy_park) and calls again when it is resumed.  With op NULL the call waits itself.
 */
int namei_open(struct fs *fs, uint64_t ino, int flags, struct inode **ip, struct policy_op *op);
int namei_release(struct fs *fs, struct inode *ip);
int namei_fsync(struct fs *fs, struct inode *ip);
/*
 * A write or O_TRUNC by someone other than root clears setuid, and setgid when group-executable,
 * as Linux does for writers without CAP_FSETID.  The kernel does this itself only on its cached
 * write path, so direct I/O needs it here.
 */
int namei_kill_priv(struct fs *fs, struct inode *ip, uint32_t uid);
/*
 * readdirplus: entries from cookie `pos` with their attributes; each emitted entry (other than "."
 * and "..") holds a lookup reference, which the caller forgets again if it cannot send it.
 */
typedef int (*namei_plus_fn)(void *arg, const char *name, const struct entry *e, uint64_t next);
int namei_readdirplus(struct fs *fs, struct inode *dir, uint64_t pos, size_t max_entries, namei_plus_fn emit, void *arg);
int namei_readdir(struct fs *fs, struct inode *dir, uint64_t pos, dir_emit_fn emit, void *arg);
/* fallocate(2): preallocate or zero, or punch a hole (the policy decides first: op as namei_open). */
int namei_fallocate(struct fs *fs, struct inode *ip, int mode, uint64_t off, uint64_t len, struct policy_op *op);
int namei_statfs(struct fs *fs, struct statvfs *st);

#endif
