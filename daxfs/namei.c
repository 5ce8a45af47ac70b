/* SPDX-License-Identifier: MIT */
/*
 * The namespace: lookup, create, link, unlink, rename, and attributes.  Every change that involves
 * more than one inode runs under ns_lock, which is what lets it lock inodes in any order; outside it
 * an operation holds at most one inode lock at a time.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fs.h"
#include "util.h"
#include "file.h"
#include "inode.h"
#include "namei.h"
#include "orphan.h"
#include "policy.h"

static uint8_t dtype_of(mode_t mode)
{
	return (uint8_t)IFTODT(mode);
}

static int check_name(const char *name, size_t *len)
{
	*len = strnlen(name, DAXFS_NAME_MAX + 1);
	if (*len > DAXFS_NAME_MAX)
		return -ENAMETOOLONG;
	if (*len == 0 || memchr(name, '/', *len))
		return -EINVAL;
	return 0;
}

static bool is_dot(const char *name, size_t len)
{
	return (len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.');
}

/* A held directory, or -ENOTDIR / -ENOENT. */
static int get_dir(struct fs *fs, uint64_t ino, struct inode **dp)
{
	int ret = inode_get(fs, ino, dp);

	if (ret)
		return ret;
	if (!S_ISDIR((*dp)->d.mode) || (*dp)->deleted) {
		ret = S_ISDIR((*dp)->d.mode) ? -ENOENT : -ENOTDIR;
		inode_put(fs, *dp);
	}
	return ret;
}

static void fill_entry(struct fs *fs, struct inode *ip, struct entry *e)
{
	e->ino = ip->ino;
	e->generation = ip->d.generation;
	inode_stat(fs, ip, &e->st);
}

/* Take a lookup reference on the inode that `name` names in the read-locked dir. */
static int lookup_locked(struct fs *fs, struct inode *dir, const char *name, size_t len, struct inode **ip)
{
	uint64_t ino;
	int ret;

	if (len == 1 && name[0] == '.')
		ino = dir->ino;
	else if (len == 2 && name[0] == '.' && name[1] == '.')
		ino = dir->d.parent;
	else if ((ret = dir_lookup(dir, name, len, &ino, NULL)))
		return ret;
	if ((ret = inode_get(fs, ino, ip)))
		return ret;
	inode_lookup_ref(fs, *ip);
	return 0;
}

int namei_lookup(struct fs *fs, uint64_t parent, const char *name, struct entry *e)
{
	struct inode *dir, *ip;
	size_t len;
	int ret;

	if ((ret = check_name(name, &len)))
		return ret;
	if ((ret = get_dir(fs, parent, &dir)))
		return ret;
	pthread_rwlock_rdlock(&dir->lock);
	ret = lookup_locked(fs, dir, name, len, &ip);
	pthread_rwlock_unlock(&dir->lock);
	inode_put(fs, dir);
	if (ret)
		return ret;
	/* The lookup reference keeps ip alive; its attributes are read under its own lock. */
	pthread_rwlock_rdlock(&ip->lock);
	fill_entry(fs, ip, e);
	pthread_rwlock_unlock(&ip->lock);
	inode_put(fs, ip);
	return 0;
}

int namei_getattr(struct fs *fs, uint64_t ino, struct stat *st)
{
	struct inode *ip;
	int ret = inode_get(fs, ino, &ip);

	if (ret)
		return ret;
	pthread_rwlock_rdlock(&ip->lock);
	inode_stat(fs, ip, st);
	pthread_rwlock_unlock(&ip->lock);
	inode_put(fs, ip);
	return 0;
}

/*
 * The policy's say before the blocks past `size` leave ip (write-locked): 0 or -errno.  It may wait
 * with ip unlocked; the caller re-reads the inode afterwards.
 */
static int before_truncate(struct fs *fs, struct policy_op *op, struct inode *ip, uint64_t size)
{
	uint64_t first = DIV_ROUND_UP(size, fs_bs(fs));

	if (size > ip->d.size)
		return 0;
	return policy_before_free(fs, op, ip, first, (DAXFS_MAX_FILE_SIZE >> fs->sbi.bshift) - first);
}

int namei_setattr(struct fs *fs, uint64_t ino, const struct stat *attr, int to_set, struct stat *out,
		  struct policy_op *op)
{
	struct timespec now;
	struct inode *ip;
	struct tx tx;
	int ret;

	if ((ret = sbi_writable(&fs->sbi)))
		return ret;
	if ((ret = inode_get(fs, ino, &ip)))
		return ret;
	pthread_rwlock_wrlock(&ip->lock);
	struct daxfs_inode *d = &ip->d;
	if ((to_set & NAMEI_SET_SIZE) && !S_ISREG(d->mode)) {
		ret = S_ISDIR(d->mode) ? -EISDIR : -EINVAL;
		goto out;
	}
	if ((to_set & NAMEI_SET_SIZE) && (uint64_t)attr->st_size > DAXFS_MAX_FILE_SIZE) {
		ret = -EFBIG;
		goto out;
	}
	/* Pinned blocks past the new size: the policy may refuse, or wait (unlocking), before any change. */
	if ((to_set & NAMEI_SET_SIZE) && (ret = before_truncate(fs, op, ip, (uint64_t)attr->st_size)))
		goto out;
	clock_gettime(CLOCK_REALTIME, &now);
	if (to_set & NAMEI_SET_MODE)
		d->mode = (uint16_t)((d->mode & S_IFMT) | (attr->st_mode & 07777));
	if (to_set & NAMEI_SET_UID)
		d->uid = attr->st_uid;
	if (to_set & NAMEI_SET_GID)
		d->gid = attr->st_gid;
	if (to_set & NAMEI_SET_ATIME_NOW) {
		d->atime_sec = now.tv_sec;
		d->atime_nsec = (uint32_t)now.tv_nsec;
	} else if (to_set & NAMEI_SET_ATIME) {
		d->atime_sec = attr->st_atim.tv_sec;
		d->atime_nsec = (uint32_t)attr->st_atim.tv_nsec;
	}
	/* truncate(2) and ftruncate(2) change mtime even when the kernel does not say so. */
	if ((to_set & NAMEI_SET_MTIME_NOW) || ((to_set & NAMEI_SET_SIZE) && !(to_set & NAMEI_SET_MTIME))) {
		d->mtime_sec = now.tv_sec;
		d->mtime_nsec = (uint32_t)now.tv_nsec;
	} else if (to_set & NAMEI_SET_MTIME) {
		d->mtime_sec = attr->st_mtim.tv_sec;
		d->mtime_nsec = (uint32_t)attr->st_mtim.tv_nsec;
	}
	if (to_set & NAMEI_SET_CTIME) {
		d->ctime_sec = attr->st_ctim.tv_sec;
		d->ctime_nsec = (uint32_t)attr->st_ctim.tv_nsec;
	} else {
		d->ctime_sec = now.tv_sec;
		d->ctime_nsec = (uint32_t)now.tv_nsec;
	}
	tx_init(&tx, &fs->sbi.journal);
	if (to_set & NAMEI_SET_SIZE) {
		struct file_free_sink sink = policy_sink(fs, op);

		ret = file_truncate(fs, ip, (uint64_t)attr->st_size, &tx, &sink);
	} else {
		inode_log(fs, &tx, ip);
		ret = sbi_commit(&fs->sbi, &tx);
	}
out:
	if (ret == 0 && out)
		inode_stat(fs, ip, out);
	pthread_rwlock_unlock(&ip->lock);
	inode_put(fs, ip);
	return ret;
}

/* Write a symlink target: inline in the inode when it fits, else in one block. */
static int store_symlink(struct fs *fs, struct tx *tx, struct inode *ip, const char *target, size_t len)
{
	if (len < DAXFS_INLINE_SYMLINK) {
		emap_destroy(&ip->map);
		ip->d.flags |= DAXFS_IF_INLINE_SYMLINK;
		memcpy(ip->d.u.symlink, target, len);
	} else {
		struct alloc_req req = { .want = 1 };
		uint64_t pblk, n;
		int ret;

		if ((ret = reclaim_alloc(&fs->reclaim, &req, &pblk, &n)))
			return ret;
		if ((ret = emap_insert(fs, tx, ip, 0, pblk, 1))) {
			sbi_unalloc(&fs->sbi, pblk, 1);
			return ret;
		}
		sbi_use(&fs->sbi, tx, pblk, 1);
		/* A new block, not yet reachable: written in place, drained before the commit. */
		char *p = sbi_block(&fs->sbi, pblk);
		media_copy(fs_media(fs), p, target, len);
		media_fill(fs_media(fs), p + len, 0, fs_bs(fs) - len);
		media_drain(fs_media(fs));
		emap_log(fs, tx, ip);
		ip->d.blocks = 1;
	}
	ip->d.size = len;
	return 0;
}

static int create(struct fs *fs, const struct cred *cr, uint64_t parent, const char *name, mode_t mode,
		  dev_t rdev, const char *target, struct entry *e)
{
	struct inode *dir, *ip = NULL;
	struct tx tx;
	size_t len, tlen = 0;
	int ret;

	if ((ret = check_name(name, &len)))
		return ret;
	if (is_dot(name, len))
		return -EEXIST;
	if (target) {
		tlen = strnlen(target, 4096);
		if (tlen == 0)
			return -ENOENT;
		if (tlen >= 4096 || tlen > fs_bs(fs))
			return -ENAMETOOLONG;
	}
	if ((ret = sbi_writable(&fs->sbi)))
		return ret;
	pthread_mutex_lock(&fs->ns_lock);
	if ((ret = get_dir(fs, parent, &dir)))
		goto unlock_ns;
	pthread_rwlock_wrlock(&dir->lock);
	uint64_t existing;
	if (dir_lookup(dir, name, len, &existing, NULL) == 0) {
		ret = -EEXIST;
		goto unlock_dir;
	}
	if (S_ISDIR(mode) && dir->d.nlink >= DAXFS_LINK_MAX) {
		ret = -EMLINK;
		goto unlock_dir;
	}
	tx_init(&tx, &fs->sbi.journal);
	if ((ret = inode_create(fs, &tx, cr, dir, mode, rdev, &ip)))
		goto abort_tx;
	if (target && (ret = store_symlink(fs, &tx, ip, target, tlen)))
		goto abort_inode;
	if ((ret = dir_add(fs, &tx, dir, name, len, ip->ino, dtype_of(mode))))
		goto abort_inode;
	if (S_ISDIR(mode))
		dir->d.nlink++;
	inode_touch(dir, T_MTIME | T_CTIME);
	emap_log(fs, &tx, dir);
	inode_log(fs, &tx, dir);
	inode_log(fs, &tx, ip);
	if ((ret = sbi_commit(&fs->sbi, &tx)) == 0) {
		fill_entry(fs, ip, e);
		inode_lookup_ref(fs, ip);
	}
	pthread_rwlock_unlock(&ip->lock);
	inode_put(fs, ip);
	goto unlock_dir;

abort_inode:
	if (ret == -ENOMEM)
		sbi_abort(&fs->sbi, "out of memory creating an inode");	/* DRAM may have diverged */
	inode_create_abort(fs, ip);
abort_tx:
	tx_free(&tx);
unlock_dir:
	pthread_rwlock_unlock(&dir->lock);
	inode_put(fs, dir);
unlock_ns:
	pthread_mutex_unlock(&fs->ns_lock);
	return ret;
}

int namei_mknod(struct fs *fs, const struct cred *cr, uint64_t parent, const char *name, mode_t mode, dev_t rdev,
	     struct entry *e)
{
	switch (mode & S_IFMT) {
	case S_IFREG: case S_IFCHR: case S_IFBLK: case S_IFIFO: case S_IFSOCK:
		break;
	case 0:
		mode |= S_IFREG;
		break;
	default:
		return -EINVAL;
	}
	return create(fs, cr, parent, name, mode, rdev, NULL, e);
}

int namei_mkdir(struct fs *fs, const struct cred *cr, uint64_t parent, const char *name, mode_t mode,
	     struct entry *e)
{
	return create(fs, cr, parent, name, S_IFDIR | (mode & 07777), 0, NULL, e);
}

int namei_symlink(struct fs *fs, const struct cred *cr, uint64_t parent, const char *name, const char *target,
	       struct entry *e)
{
	return create(fs, cr, parent, name, S_IFLNK | 0777, 0, target, e);
}

int namei_link(struct fs *fs, uint64_t ino, uint64_t newparent, const char *newname, struct entry *e)
{
	struct inode *dir, *ip;
	struct tx tx;
	size_t len;
	int ret;

	if ((ret = check_name(newname, &len)))
		return ret;
	if (is_dot(newname, len))
		return -EEXIST;
	if ((ret = sbi_writable(&fs->sbi)))
		return ret;
	pthread_mutex_lock(&fs->ns_lock);
	if ((ret = get_dir(fs, newparent, &dir)))
		goto unlock_ns;
	if ((ret = inode_get(fs, ino, &ip)))
		goto put_dir;
	pthread_rwlock_wrlock(&dir->lock);
	if (dir != ip)
		pthread_rwlock_wrlock(&ip->lock);
	uint64_t existing;
	if (S_ISDIR(ip->d.mode))
		ret = -EPERM;
	else if (ip->d.nlink == 0 || ip->deleted)
		ret = -ENOENT;
	else if (ip->d.nlink >= DAXFS_LINK_MAX)
		ret = -EMLINK;
	else if (dir_lookup(dir, newname, len, &existing, NULL) == 0)
		ret = -EEXIST;
	if (ret)
		goto unlock;
	tx_init(&tx, &fs->sbi.journal);
	if ((ret = dir_add(fs, &tx, dir, newname, len, ip->ino, dtype_of(ip->d.mode)))) {
		tx_free(&tx);
		goto unlock;
	}
	ip->d.nlink++;
	inode_touch(ip, T_CTIME);
	inode_touch(dir, T_MTIME | T_CTIME);
	emap_log(fs, &tx, dir);
	inode_log(fs, &tx, dir);
	inode_log(fs, &tx, ip);
	if ((ret = sbi_commit(&fs->sbi, &tx)) == 0) {
		fill_entry(fs, ip, e);
		inode_lookup_ref(fs, ip);
	}
unlock:
	if (dir != ip)
		pthread_rwlock_unlock(&ip->lock);
	pthread_rwlock_unlock(&dir->lock);
	inode_put(fs, ip);
put_dir:
	inode_put(fs, dir);
unlock_ns:
	pthread_mutex_unlock(&fs->ns_lock);
	return ret;
}

/* After the commit that dropped the last link: free the inode now unless it is still open. */
static int reap(struct fs *fs, struct inode *ip)
{
	struct file_free_sink sink = policy_sink(fs, NULL);

	if (ip->d.nlink || ip->nopen || ip->deleted)
		return 0;
	return orphan_free_inode(fs, ip, &sink);
}

static int remove_entry(struct fs *fs, uint64_t parent, const char *name, bool rmdir)
{
	struct inode *dir, *ip;
	struct tx tx;
	size_t len;
	uint64_t ino;
	int ret;

	if ((ret = check_name(name, &len)))
		return ret;
	if (is_dot(name, len))
		return rmdir ? (len == 1 ? -EINVAL : -ENOTEMPTY) : -EISDIR;
	if ((ret = sbi_writable(&fs->sbi)))
		return ret;
	pthread_mutex_lock(&fs->ns_lock);
	if ((ret = get_dir(fs, parent, &dir)))
		goto unlock_ns;
	pthread_rwlock_wrlock(&dir->lock);
	if ((ret = dir_lookup(dir, name, len, &ino, NULL)) || (ret = inode_get(fs, ino, &ip)))
		goto unlock_dir;
	pthread_rwlock_wrlock(&ip->lock);
	if (rmdir && !S_ISDIR(ip->d.mode))
		ret = -ENOTDIR;
	else if (!rmdir && S_ISDIR(ip->d.mode))
		ret = -EISDIR;
	else if (rmdir && dir_entries(ip) > 0)
		ret = -ENOTEMPTY;
	if (ret)
		goto unlock;
	tx_init(&tx, &fs->sbi.journal);
	if ((ret = dir_remove(fs, &tx, dir, name, len))) {
		tx_free(&tx);
		goto unlock;
	}
	if (rmdir) {
		ip->d.nlink = 0;
		dir->d.nlink--;
	} else {
		ip->d.nlink--;
	}
	inode_touch(ip, T_CTIME);
	inode_touch(dir, T_MTIME | T_CTIME);
	if (ip->d.nlink == 0 && (ret = orphan_add(fs, &tx, ip))) {
		sbi_abort(&fs->sbi, "an unlinked inode could not join the orphan list");
		tx_free(&tx);
		goto unlock;
	}
	inode_log(fs, &tx, dir);
	inode_log(fs, &tx, ip);
	if ((ret = sbi_commit(&fs->sbi, &tx)) == 0)
		ret = reap(fs, ip);
unlock:
	pthread_rwlock_unlock(&ip->lock);
	inode_put(fs, ip);
unlock_dir:
	pthread_rwlock_unlock(&dir->lock);
	inode_put(fs, dir);
unlock_ns:
	pthread_mutex_unlock(&fs->ns_lock);
	return ret;
}

int namei_unlink(struct fs *fs, uint64_t parent, const char *name)
{
	return remove_entry(fs, parent, name, false);
}

int namei_rmdir(struct fs *fs, uint64_t parent, const char *name)
{
	return remove_entry(fs, parent, name, true);
}

/* Is `dir` equal to or below `ancestor`?  Parent pointers only change under ns_lock, which we hold. */
static int is_within(struct fs *fs, uint64_t dir, uint64_t ancestor, bool *within)
{
	*within = false;
	for (uint64_t ino = dir, depth = 0;; depth++) {
		struct inode *ip;
		int ret;

		if (ino == ancestor) {
			*within = true;
			return 0;
		}
		if (ino == DAXFS_ROOT_INO || depth > fs->sbi.sb.ninodes)
			return 0;
		if ((ret = inode_get(fs, ino, &ip)))
			return ret;
		uint64_t up = ip->d.parent;
		inode_put(fs, ip);
		ino = up;
	}
}

/* Is v[i] the first occurrence of its inode in v? */
static bool first_of(struct inode **v, int i)
{
	for (int j = 0; j < i; j++)
		if (v[j] == v[i])
			return false;
	return v[i] != NULL;
}

/* Lock each distinct inode once; under ns_lock, in any order. */
static void lock_set(struct inode **v, int n)
{
	for (int i = 0; i < n; i++)
		if (first_of(v, i))
			pthread_rwlock_wrlock(&v[i]->lock);
}

static void unlock_set(struct inode **v, int n)
{
	for (int i = 0; i < n; i++)
		if (first_of(v, i))
			pthread_rwlock_unlock(&v[i]->lock);
}

int namei_rename(struct fs *fs, uint64_t parent, const char *name, uint64_t newparent, const char *newname,
	      unsigned flags)
{
	struct inode *op = NULL, *np = NULL, *src = NULL, *dst = NULL;
	size_t len, newlen;
	uint64_t src_ino, dst_ino = 0;
	bool within;
	struct tx tx;
	int ret;

	if (flags & ~(NAMEI_RENAME_NOREPLACE | NAMEI_RENAME_EXCHANGE) ||
	    ((flags & NAMEI_RENAME_NOREPLACE) && (flags & NAMEI_RENAME_EXCHANGE)))
		return -EINVAL;
	if ((ret = check_name(name, &len)) || (ret = check_name(newname, &newlen)))
		return ret;
	if (is_dot(name, len) || is_dot(newname, newlen))
		return -EBUSY;
	if ((ret = sbi_writable(&fs->sbi)))
		return ret;
	pthread_mutex_lock(&fs->ns_lock);
	if ((ret = get_dir(fs, parent, &op)) || (ret = get_dir(fs, newparent, &np)))
		goto out;
	/* ns_lock keeps both directories' entries stable while we look them up unlocked. */
	if ((ret = dir_lookup(op, name, len, &src_ino, NULL)))
		goto out;
	bool have_dst = dir_lookup(np, newname, newlen, &dst_ino, NULL) == 0;
	if ((flags & NAMEI_RENAME_EXCHANGE) && !have_dst) {
		ret = -ENOENT;
		goto out;
	}
	if ((flags & NAMEI_RENAME_NOREPLACE) && have_dst) {
		ret = -EEXIST;
		goto out;
	}
	if (have_dst && dst_ino == src_ino)
		goto out;	/* two links to one inode: POSIX says do nothing */
	if ((ret = inode_get(fs, src_ino, &src)) || (have_dst && (ret = inode_get(fs, dst_ino, &dst))))
		goto out;
	bool src_dir = S_ISDIR(src->d.mode), dst_dir = dst && S_ISDIR(dst->d.mode);
	if (dst && !(flags & NAMEI_RENAME_EXCHANGE)) {
		if (src_dir && !dst_dir)
			ret = -ENOTDIR;
		else if (!src_dir && dst_dir)
			ret = -EISDIR;
		else if (dst_dir && dir_entries(dst) > 0)
			ret = -ENOTEMPTY;
		if (ret)
			goto out;
	}
	/* A directory cannot move below itself. */
	if (op != np) {
		if (src_dir && ((ret = is_within(fs, np->ino, src->ino, &within)) || within)) {
			ret = ret ? ret : -EINVAL;
			goto out;
		}
		if ((flags & NAMEI_RENAME_EXCHANGE) && dst_dir &&
		    ((ret = is_within(fs, op->ino, dst->ino, &within)) || within)) {
			ret = ret ? ret : -EINVAL;
			goto out;
		}
		if (src_dir && !dst_dir && np->d.nlink >= DAXFS_LINK_MAX) {
			ret = -EMLINK;
			goto out;
		}
	}

	struct inode *set[4] = { op, np, src, dst };
	lock_set(set, 4);
	tx_init(&tx, &fs->sbi.journal);
	uint8_t st = dtype_of(src->d.mode);
	if (flags & NAMEI_RENAME_EXCHANGE) {
		uint8_t dt = dtype_of(dst->d.mode);

		dir_replace(fs, &tx, op, name, len, dst->ino, dt);
		dir_replace(fs, &tx, np, newname, newlen, src->ino, st);
		if (op != np) {
			if (src_dir)
				src->d.parent = np->ino;
			if (dst_dir)
				dst->d.parent = op->ino;
			if (src_dir != dst_dir) {
				int delta = src_dir ? 1 : -1;

				np->d.nlink = (uint32_t)((int)np->d.nlink + delta);
				op->d.nlink = (uint32_t)((int)op->d.nlink - delta);
			}
		}
		inode_touch(dst, T_CTIME);
	} else {
		/* The only step that can fail (ENOSPC) goes first, before anything else changes. */
		if (dst) {
			dir_replace(fs, &tx, np, newname, newlen, src->ino, st);
		} else if ((ret = dir_add(fs, &tx, np, newname, newlen, src->ino, st))) {
			tx_free(&tx);
			unlock_set(set, 4);
			goto out;
		}
		dir_remove(fs, &tx, op, name, len);
		if (dst) {
			if (dst_dir) {
				dst->d.nlink = 0;
				np->d.nlink--;
			} else {
				dst->d.nlink--;
			}
			inode_touch(dst, T_CTIME);
			if (dst->d.nlink == 0 && (ret = orphan_add(fs, &tx, dst))) {
				sbi_abort(&fs->sbi, "an unlinked inode could not join the orphan list");
				tx_free(&tx);
				unlock_set(set, 4);
				goto out;
			}
		}
		if (src_dir && op != np) {
			src->d.parent = np->ino;
			op->d.nlink--;
			np->d.nlink++;
		}
	}
	inode_touch(src, T_CTIME);
	inode_touch(op, T_MTIME | T_CTIME);
	inode_touch(np, T_MTIME | T_CTIME);
	for (int i = 0; i < 4; i++) {
		if (!first_of(set, i))
			continue;
		if (S_ISDIR(set[i]->d.mode))
			emap_log(fs, &tx, set[i]);
		inode_log(fs, &tx, set[i]);
	}
	ret = sbi_commit(&fs->sbi, &tx);
	if (ret == 0 && dst)
		ret = reap(fs, dst);
	unlock_set(set, 4);
out:
	inode_put(fs, dst);
	inode_put(fs, src);
	inode_put(fs, np);
	inode_put(fs, op);
	pthread_mutex_unlock(&fs->ns_lock);
	return ret;
}

int namei_readlink(struct fs *fs, uint64_t ino, char *buf, size_t size)
{
	struct inode *ip;
	int ret = inode_get(fs, ino, &ip);

	if (ret)
		return ret;
	pthread_rwlock_rdlock(&ip->lock);
	if (!S_ISLNK(ip->d.mode)) {
		ret = -EINVAL;
	} else {
		size_t n = MIN(size, ip->d.size);

		if (ip->d.flags & DAXFS_IF_INLINE_SYMLINK)
			memcpy(buf, ip->d.u.symlink, n);
		else
			n = (size_t)file_pread(fs, ip, buf, n, 0);
		ret = (int)n;
	}
	pthread_rwlock_unlock(&ip->lock);
	inode_put(fs, ip);
	return ret;
}

int namei_open(struct fs *fs, uint64_t ino, int flags, struct inode **out, struct policy_op *op)
{
	struct inode *ip;
	int ret = inode_get(fs, ino, &ip);

	if (ret)
		return ret;
	/* As Linux does, O_TRUNC truncates even with O_RDONLY (the kernel already set its size to 0). */
	bool trunc = (flags & O_TRUNC) && S_ISREG(ip->d.mode);
	if (trunc && (ret = sbi_writable(&fs->sbi))) {
		inode_put(fs, ip);
		return ret;
	}
	if (trunc)
		pthread_rwlock_wrlock(&ip->lock);
	else
		pthread_rwlock_rdlock(&ip->lock);
	if (ip->deleted) {
		ret = -ENOENT;
	} else {
		inode_open(fs, ip);
		if (trunc && (ret = before_truncate(fs, op, ip, 0)) == 0 && !ip->deleted) {
			struct file_free_sink sink = policy_sink(fs, op);
			struct tx tx;

			tx_init(&tx, &fs->sbi.journal);
			inode_touch(ip, T_MTIME | T_CTIME);
			ret = file_truncate(fs, ip, 0, &tx, &sink);
		}
		if (ret)
			inode_close(fs, ip);
	}
	pthread_rwlock_unlock(&ip->lock);
	if (ret) {
		inode_put(fs, ip);
		return ret;
	}
	*out = ip;
	return 0;
}

int namei_release(struct fs *fs, struct inode *ip)
{
	struct file_free_sink sink = policy_sink(fs, NULL);
	int ret = 0;

	if (inode_close(fs, ip)) {
		ret = inode_sync(fs, ip);
		if (ip->d.nlink == 0)
			ret = orphan_release_last(fs, ip, &sink);
	}
	inode_put(fs, ip);
	return ret;
}

int namei_kill_priv(struct fs *fs, struct inode *ip, uint32_t uid)
{
	int ret = 0;

	if (uid == 0)
		return 0;
	pthread_rwlock_wrlock(&ip->lock);
	uint16_t mode = ip->d.mode, kill = S_ISUID | ((mode & S_IXGRP) ? S_ISGID : 0);
	if (S_ISREG(mode) && (mode & kill) && !sbi_writable(&fs->sbi)) {
		struct tx tx;

		ip->d.mode = (uint16_t)(mode & ~kill);
		inode_touch(ip, T_CTIME);
		tx_init(&tx, &fs->sbi.journal);
		inode_log(fs, &tx, ip);
		ret = sbi_commit(&fs->sbi, &tx);
	}
	pthread_rwlock_unlock(&ip->lock);
	return ret;
}

int namei_fsync(struct fs *fs, struct inode *ip)
{
	/* Data and namespace changes are durable when their calls return; only lazy timestamps wait. */
	return inode_sync(fs, ip);
}

int namei_readdir(struct fs *fs, struct inode *dir, uint64_t pos, dir_emit_fn emit, void *arg)
{
	pthread_rwlock_rdlock(&dir->lock);
	int ret = dir_iterate(fs, dir, pos, emit, arg);
	pthread_rwlock_unlock(&dir->lock);
	return ret;
}

struct plus_item {
	struct inode *ip;	/* NULL for "." and ".." */
	uint64_t ino;
	uint64_t next;
	uint8_t type;
	uint8_t len;
	char name[DAXFS_NAME_MAX + 1];
};

struct plus_collect {
	struct fs *fs;
	struct plus_item *items;
	size_t n;
	size_t max;
};

static int plus_collect(void *arg, const char *name, size_t len, uint64_t ino, uint8_t type, uint64_t next)
{
	struct plus_collect *pc = arg;

	if (pc->n == pc->max)
		return 1;
	struct plus_item *it = &pc->items[pc->n];
	it->ip = NULL;
	it->ino = ino;
	it->next = next;
	it->type = type;
	it->len = (uint8_t)len;
	memcpy(it->name, name, len);
	it->name[len] = 0;
	/* Referenced while the directory is locked, so the name still leads to this inode. */
	if (!is_dot(name, len) && inode_get(pc->fs, ino, &it->ip) == 0)
		inode_lookup_ref(pc->fs, it->ip);
	pc->n++;
	return 0;
}

int namei_readdirplus(struct fs *fs, struct inode *dir, uint64_t pos, size_t max_entries, namei_plus_fn emit, void *arg)
{
	struct plus_collect pc = { .fs = fs, .max = MAX(max_entries, 1) };
	size_t i;

	pc.items = malloc(pc.max * sizeof(*pc.items));
	if (!pc.items)
		return -ENOMEM;
	pthread_rwlock_rdlock(&dir->lock);
	dir_iterate(fs, dir, pos, plus_collect, &pc);
	pthread_rwlock_unlock(&dir->lock);

	for (i = 0; i < pc.n; i++) {
		struct plus_item *it = &pc.items[i];
		struct entry e = { 0 };

		if (it->ip) {
			pthread_rwlock_rdlock(&it->ip->lock);
			fill_entry(fs, it->ip, &e);
			pthread_rwlock_unlock(&it->ip->lock);
		} else {
			/* "." and "..": no lookup reference, only the type and number. */
			e.st.st_ino = it->ino;
			e.st.st_mode = DTTOIF(it->type);
		}
		if (emit(arg, it->name, &e, it->next))
			break;
		inode_put(fs, it->ip);
		it->ip = NULL;
	}
	/* Entries that did not fit were never seen by the kernel: drop their lookup references. */
	for (; i < pc.n; i++) {
		if (pc.items[i].ip) {
			inode_forget(fs, pc.items[i].ino, 1);
			inode_put(fs, pc.items[i].ip);
		}
	}
	free(pc.items);
	return 0;
}

int namei_fallocate(struct fs *fs, struct inode *ip, int mode, uint64_t off, uint64_t len, struct policy_op *op)
{
	int ret;

	if (mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE))
		return -EOPNOTSUPP;
	if ((mode & FALLOC_FL_PUNCH_HOLE) && (mode & FALLOC_FL_ZERO_RANGE))
		return -EOPNOTSUPP;
	if ((mode & FALLOC_FL_PUNCH_HOLE) && !(mode & FALLOC_FL_KEEP_SIZE))
		return -EOPNOTSUPP;
	if (len == 0)
		return -EINVAL;
	if (off >= DAXFS_MAX_FILE_SIZE || len > DAXFS_MAX_FILE_SIZE - off)
		return -EFBIG;
	if ((ret = sbi_writable(&fs->sbi)))
		return ret;
	pthread_rwlock_wrlock(&ip->lock);
	if (!S_ISREG(ip->d.mode)) {
		ret = S_ISDIR(ip->d.mode) ? -EISDIR : -ENODEV;
	} else if (mode & FALLOC_FL_PUNCH_HOLE) {
		uint64_t first = DIV_ROUND_UP(off, fs_bs(fs)), last = (off + len) >> fs->sbi.bshift;
		struct file_free_sink sink = policy_sink(fs, op);

		/* The policy decides first (it may wait, or park the request), before anything changes. */
		if (first >= last || (ret = policy_before_free(fs, op, ip, first, last - first)) == 0)
			ret = file_punch(fs, ip, off, len, &sink);
	} else {
		ret = file_preallocate(fs, ip, mode, off, len);
	}
	pthread_rwlock_unlock(&ip->lock);
	return ret;
}

int namei_statfs(struct fs *fs, struct statvfs *st)
{
	struct sbi *s = &fs->sbi;

	memset(st, 0, sizeof(*st));
	st->f_bsize = s->bs;
	st->f_frsize = s->bs;
	st->f_blocks = s->data_blocks;
	st->f_bfree = alloc_free_blocks(&s->alloc);
	st->f_bavail = alloc_avail_blocks(&s->alloc);
	st->f_files = s->sb.ninodes;
	pthread_mutex_lock(&fs->ino_lock);
	st->f_ffree = s->sb.ninodes - fs->ino_taken;
	pthread_mutex_unlock(&fs->ino_lock);
	st->f_favail = st->f_ffree;
	memcpy(&st->f_fsid, s->sb.uuid, sizeof(st->f_fsid));
	st->f_namemax = DAXFS_NAME_MAX;
	if (fs->sbi.readonly)
		st->f_flag |= ST_RDONLY;
	return 0;
}
