/* SPDX-License-Identifier: MIT */
/*
 * FUSE low-level operations: decode the request, call the file system, encode the reply.  No
 * policy and no knowledge of the media lives here.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>

#include "daemon.h"
#include "fuse_wait.h"
#include "file.h"
#include "inode.h"
#include "mount.h"
#include "namei.h"
#include "xattr.h"

static struct daemon *D(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static struct fs *FS(fuse_req_t req)
{
	return D(req)->fs;
}

static struct open_file *OF(const struct fuse_file_info *fi)
{
	return (struct open_file *)(uintptr_t)fi->fh;
}

static void track(fuse_req_t req, struct open_file *of)
{
	pthread_mutex_lock(&D(req)->of_lock);
	LIST_INSERT_HEAD(&D(req)->open_files, of, link);
	pthread_mutex_unlock(&D(req)->of_lock);
}

static void untrack(fuse_req_t req, struct open_file *of)
{
	pthread_mutex_lock(&D(req)->of_lock);
	LIST_REMOVE(of, link);
	pthread_mutex_unlock(&D(req)->of_lock);
}

/* Undo an open: the request failed or its reply could not be sent. */
static void close_file(fuse_req_t req, struct open_file *of)
{
	untrack(req, of);
	policy_release_owner(FS(req), &of->pins);
	namei_release(FS(req), of->ip);
	free(of);
}

void fuse_ops_release_all(struct daemon *d)
{
	struct open_file *of;

	pthread_mutex_lock(&d->of_lock);
	while ((of = LIST_FIRST(&d->open_files)) != NULL) {
		LIST_REMOVE(of, link);
		policy_drop_owner(d->fs, &of->pins);	/* its holder never closed it: tell it */
		namei_release(d->fs, of->ip);
		free(of);
	}
	pthread_mutex_unlock(&d->of_lock);
}

static void reply_err(fuse_req_t req, int ret)
{
	fuse_reply_err(req, ret < 0 ? -ret : ret);
}

static struct cred cred_of(fuse_req_t req)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);

	return (struct cred){ .uid = ctx->uid, .gid = ctx->gid, .pid = ctx->pid };
}

static void fill_param(fuse_req_t req, const struct entry *e, struct fuse_entry_param *p)
{
	memset(p, 0, sizeof(*p));
	p->ino = e->ino;
	p->generation = e->generation;
	p->attr = e->st;
	p->attr_timeout = D(req)->attr_timeout;
	p->entry_timeout = D(req)->entry_timeout;
}

static void reply_entry(fuse_req_t req, int ret, const struct entry *e)
{
	struct fuse_entry_param p;

	if (ret) {
		reply_err(req, ret);
		return;
	}
	fill_param(req, e, &p);
	if (fuse_reply_entry(req, &p) == -ENOENT)
		inode_forget(FS(req), e->ino, 1);	/* the request was interrupted: undo the lookup */
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	struct daemon *d = userdata;

	/*
	 * Let the kernel clear setuid/setgid on write and chown (it sends us the mode change), as it
	 * does for local file systems; with HANDLE_KILLPRIV libfuse 3.14 would not tell us when.
	 */
	conn->want &= ~FUSE_CAP_HANDLE_KILLPRIV;
	conn->want &= ~(FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE);
	if (conn->capable & FUSE_CAP_IOCTL_DIR)
		conn->want |= FUSE_CAP_IOCTL_DIR;
	conn->max_write = 1u << 20;
	conn->max_readahead = d->cache == CACHE_PAGE ? 1u << 20 : 0;
	conn->time_gran = 1;
}

static void op_destroy(void *userdata)
{
	(void)userdata;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct entry e;
	int ret = namei_lookup(FS(req), parent, name, &e);

	if (ret == -ENOENT) {
		/* Negative entry: cache the absence as long as a positive one. */
		struct fuse_entry_param p = { .entry_timeout = D(req)->entry_timeout };

		fuse_reply_entry(req, &p);
		return;
	}
	reply_entry(req, ret, &e);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	inode_forget(FS(req), ino, nlookup);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		inode_forget(FS(req), forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;
	int ret = namei_getattr(FS(req), ino, &st);

	(void)fi;
	if (ret)
		reply_err(req, ret);
	else
		fuse_reply_attr(req, &st, D(req)->attr_timeout);
}

/*
 * A truncate, punch or O_TRUNC open may have to wait for the policy.  It never blocks a request-loop
 * thread (the unpin it waits for needs one): it is parked and finished by the policy worker, with
 * its arguments kept here.  Any number of them costs memory, not threads.
 */
struct waiting_req {
	struct fuse_waiter w;
	fuse_ino_t ino;
	struct stat attr;
	int to_set;
	int mode;
	off_t off;
	off_t len;
	struct fuse_file_info fi;	/* a copy: the loop's is gone once the callback returns */
};

static struct waiting_req *waiting_new(fuse_req_t req, uint32_t kind, void (*run)(struct fuse_waiter *))
{
	struct waiting_req *r = calloc(1, sizeof(*r));

	if (r)
		fuse_wait_init(&r->w, req, kind, run);
	return r;
}

static void do_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set, struct policy_op *op,
		       struct fuse_waiter *w);

static void run_setattr(struct fuse_waiter *w)
{
	struct waiting_req *r = container_of(w, struct waiting_req, w);

	do_setattr(w->req, r->ino, &r->attr, r->to_set, &w->op, w);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set, struct fuse_file_info *fi)
{
	(void)fi;
	if (to_set & FUSE_SET_ATTR_SIZE) {
		struct waiting_req *r = waiting_new(req, DAXFS_WAIT_TRUNCATE, run_setattr);

		if (!r) {
			reply_err(req, -ENOMEM);
			return;
		}
		r->ino = ino;
		r->attr = *attr;
		r->to_set = to_set;
		run_setattr(&r->w);
		return;
	}
	do_setattr(req, ino, attr, to_set, NULL, NULL);
}

/* w: the parked request to finish (or park again), or NULL for a setattr that cannot wait. */
static void do_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set, struct policy_op *op,
		       struct fuse_waiter *w)
{
	struct stat st;
	int ret;

	/* FUSE_SET_ATTR_* and NAMEI_SET_* share their values. */
	ret = namei_setattr(FS(req), ino, attr, to_set, &st, op);
	if (ret == -POLICY_EPARK) {
		fuse_wait_park(w);
		return;
	}
	if (w) {
		fuse_wait_done(w);
		free(container_of(w, struct waiting_req, w));
	}
	if (ret)
		reply_err(req, ret);
	else
		fuse_reply_attr(req, &st, D(req)->attr_timeout);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	char buf[4097];
	int ret = namei_readlink(FS(req), ino, buf, sizeof(buf) - 1);

	if (ret < 0) {
		reply_err(req, ret);
		return;
	}
	buf[ret] = 0;
	fuse_reply_readlink(req, buf);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	struct cred cr = cred_of(req);
	struct entry e;

	reply_entry(req, namei_mknod(FS(req), &cr, parent, name, mode, rdev, &e), &e);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct cred cr = cred_of(req);
	struct entry e;

	reply_entry(req, namei_mkdir(FS(req), &cr, parent, name, mode, &e), &e);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	struct cred cr = cred_of(req);
	struct entry e;

	reply_entry(req, namei_symlink(FS(req), &cr, parent, name, link, &e), &e);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	struct entry e;

	reply_entry(req, namei_link(FS(req), ino, newparent, newname, &e), &e);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	reply_err(req, namei_unlink(FS(req), parent, name));
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	reply_err(req, namei_rmdir(FS(req), parent, name));
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		      const char *newname, unsigned int flags)
{
	unsigned f = 0;

	if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) {
		reply_err(req, -EINVAL);	/* RENAME_WHITEOUT: no overlay support */
		return;
	}
	if (flags & RENAME_NOREPLACE)
		f |= NAMEI_RENAME_NOREPLACE;
	if (flags & RENAME_EXCHANGE)
		f |= NAMEI_RENAME_EXCHANGE;
	reply_err(req, namei_rename(FS(req), parent, name, newparent, newname, f));
}

static int open_common(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, struct policy_op *op)
{
	struct open_file *of = calloc(1, sizeof(*of));
	int ret;

	if (!of)
		return -ENOMEM;
	pin_owner_init(&of->pins);
	ret = namei_open(FS(req), ino, fi->flags, &of->ip, op);
	if (ret) {
		free(of);
		return ret;
	}
	of->flags = fi->flags;
	track(req, of);
	if ((fi->flags & O_TRUNC) && (ret = namei_kill_priv(FS(req), of->ip, fuse_req_ctx(req)->uid))) {
		close_file(req, of);
		return ret;
	}
	fi->fh = (uintptr_t)of;
	if (D(req)->cache == CACHE_DAX)
		fi->direct_io = 1;
	else
		fi->keep_cache = 1;
	return 0;
}

static void do_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, struct fuse_waiter *w)
{
	int ret = open_common(req, ino, fi, w ? &w->op : NULL);

	if (ret == -POLICY_EPARK) {
		fuse_wait_park(w);
		return;
	}
	if (w)
		fuse_wait_done(w);
	if (ret) {
		reply_err(req, ret);
	} else if (fuse_reply_open(req, fi) == -ENOENT) {
		close_file(req, OF(fi));
	}
	if (w)
		free(container_of(w, struct waiting_req, w));
}

static void run_open(struct fuse_waiter *w)
{
	struct waiting_req *r = container_of(w, struct waiting_req, w);

	do_open(w->req, r->ino, &r->fi, w);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (fi->flags & O_TRUNC) {
		struct waiting_req *r = waiting_new(req, DAXFS_WAIT_OTRUNC, run_open);

		if (!r) {
			reply_err(req, -ENOMEM);
			return;
		}
		r->ino = ino;
		r->fi = *fi;
		run_open(&r->w);
		return;
	}
	do_open(req, ino, fi, NULL);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, struct fuse_file_info *fi)
{
	struct cred cr = cred_of(req);
	struct fuse_entry_param p;
	struct entry e;
	int ret;

	ret = namei_mknod(FS(req), &cr, parent, name, S_IFREG | (mode & 07777), 0, &e);
	if (ret) {
		reply_err(req, ret);
		return;
	}
	fi->flags &= ~O_TRUNC;	/* new and empty */
	ret = open_common(req, e.ino, fi, NULL);
	if (ret) {
		inode_forget(FS(req), e.ino, 1);
		reply_err(req, ret);
		return;
	}
	fill_param(req, &e, &p);
	if (fuse_reply_create(req, &p, fi) == -ENOENT) {
		close_file(req, OF(fi));
		inode_forget(FS(req), e.ino, 1);
	}
}

static int send_iov(void *ctx, const struct iovec *iov, int n)
{
	fuse_req_t req = ctx;

	if (n == 0)
		fuse_reply_buf(req, NULL, 0);
	else
		fuse_reply_iov(req, iov, n);
	return 0;
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	int ret;

	(void)ino;
	if (off < 0) {
		reply_err(req, -EINVAL);
		return;
	}
	ret = file_read(FS(req), OF(fi)->ip, (uint64_t)off, size, send_iov, req);
	if (ret)
		reply_err(req, ret);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = size };
	ssize_t ret;

	(void)ino;
	if (off < 0) {
		reply_err(req, -EINVAL);
		return;
	}
	if ((ret = namei_kill_priv(FS(req), OF(fi)->ip, fuse_req_ctx(req)->uid)) == 0)
		ret = file_write(FS(req), OF(fi)->ip, (uint64_t)off, &iov, 1);
	if (ret < 0)
		reply_err(req, (int)ret);
	else
		fuse_reply_write(req, (size_t)ret);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	/* The file's pins go with it: what they held may now be reclaimed. */
	close_file(req, OF(fi));
	reply_err(req, 0);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)ino;
	(void)datasync;
	reply_err(req, namei_fsync(FS(req), OF(fi)->ip));
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct open_file *of = calloc(1, sizeof(*of));
	int ret;

	if (!of) {
		reply_err(req, -ENOMEM);
		return;
	}
	pin_owner_init(&of->pins);
	ret = namei_open(FS(req), ino, O_RDONLY, &of->ip, NULL);
	if (ret == 0 && !S_ISDIR(of->ip->d.mode)) {
		namei_release(FS(req), of->ip);
		ret = -ENOTDIR;
	}
	if (ret) {
		free(of);
		reply_err(req, ret);
		return;
	}
	fi->fh = (uintptr_t)of;
	track(req, of);
	if (fuse_reply_open(req, fi) == -ENOENT)
		close_file(req, of);
}

struct dirbuf {
	fuse_req_t req;
	char *buf;
	size_t size;
	size_t used;
};

static int fill_dirent(void *arg, const char *name, size_t len, uint64_t ino, uint8_t type, uint64_t next)
{
	struct dirbuf *db = arg;
	struct stat st = { .st_ino = ino, .st_mode = DTTOIF(type) };
	char nm[DAXFS_NAME_MAX + 1];

	memcpy(nm, name, len);
	nm[len] = 0;
	size_t n = fuse_add_direntry(db->req, db->buf + db->used, db->size - db->used, nm, &st, (off_t)next);
	if (n > db->size - db->used)
		return 1;
	db->used += n;
	return 0;
}

static int fill_direntplus(void *arg, const char *name, const struct entry *e, uint64_t next)
{
	struct dirbuf *db = arg;
	struct fuse_entry_param p;

	fill_param(db->req, e, &p);
	size_t n = fuse_add_direntry_plus(db->req, db->buf + db->used, db->size - db->used, name, &p, (off_t)next);
	if (n > db->size - db->used)
		return 1;
	db->used += n;
	return 0;
}

static void readdir_common(fuse_req_t req, size_t size, off_t off, struct fuse_file_info *fi, bool plus)
{
	struct dirbuf db = { .req = req, .size = size };
	int ret;

	db.buf = malloc(size);
	if (!db.buf) {
		reply_err(req, -ENOMEM);
		return;
	}
	if (plus) {
		/* Each entry plus its attributes takes at least this much of the reply. */
		size_t min_entry = fuse_add_direntry_plus(req, NULL, 0, "x", NULL, 0);

		ret = namei_readdirplus(FS(req), OF(fi)->ip, (uint64_t)off, size / min_entry + 1, fill_direntplus, &db);
	} else {
		ret = namei_readdir(FS(req), OF(fi)->ip, (uint64_t)off, fill_dirent, &db);
	}
	if (ret)
		reply_err(req, ret);
	else
		fuse_reply_buf(req, db.buf, db.used);
	free(db.buf);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	(void)ino;
	readdir_common(req, size, off, fi, false);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	(void)ino;
	readdir_common(req, size, off, fi, true);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	op_release(req, ino, fi);
}

static void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	op_fsync(req, ino, datasync, fi);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs st;

	(void)ino;
	namei_statfs(FS(req), &st);
	fuse_reply_statfs(req, &st);
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size,
			int flags)
{
	struct inode *ip;
	int ret = inode_get(FS(req), ino, &ip);

	if (ret == 0) {
		ret = xattr_set(FS(req), ip, name, value, size, flags);
		inode_put(FS(req), ip);
	}
	reply_err(req, ret);
}

/* getxattr (name) and listxattr (name NULL): a size of 0 asks only for the length. */
static void read_xattrs(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct inode *ip;
	char *buf = NULL;
	int ret = inode_get(FS(req), ino, &ip);

	if (ret == 0) {
		if (size && !(buf = malloc(size)))
			ret = -ENOMEM;
		else
			ret = name ? xattr_get(FS(req), ip, name, buf, size) : xattr_list(FS(req), ip, buf, size);
		inode_put(FS(req), ip);
	}
	if (ret < 0)
		reply_err(req, ret);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)ret);
	else
		fuse_reply_buf(req, buf, (size_t)ret);
	free(buf);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	read_xattrs(req, ino, name, size);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	read_xattrs(req, ino, NULL, size);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct inode *ip;
	int ret = inode_get(FS(req), ino, &ip);

	if (ret == 0) {
		ret = xattr_remove(FS(req), ip, name);
		inode_put(FS(req), ip);
	}
	reply_err(req, ret);
}

static void do_fallocate(fuse_req_t req, int mode, off_t off, off_t len, struct fuse_file_info *fi,
			 struct fuse_waiter *w)
{
	int ret = off < 0 || len <= 0 ? -EINVAL
				      : namei_fallocate(FS(req), OF(fi)->ip, mode, (uint64_t)off, (uint64_t)len,
							w ? &w->op : NULL);

	if (ret == -POLICY_EPARK) {
		fuse_wait_park(w);
		return;
	}
	if (w) {
		fuse_wait_done(w);
		free(container_of(w, struct waiting_req, w));
	}
	reply_err(req, ret);
}

static void run_fallocate(struct fuse_waiter *w)
{
	struct waiting_req *r = container_of(w, struct waiting_req, w);

	do_fallocate(w->req, r->mode, r->off, r->len, &r->fi, w);
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
			 struct fuse_file_info *fi)
{
	(void)ino;
	if (mode & FALLOC_FL_PUNCH_HOLE) {
		struct waiting_req *r = waiting_new(req, DAXFS_WAIT_PUNCH, run_fallocate);

		if (!r) {
			reply_err(req, -ENOMEM);
			return;
		}
		r->mode = mode;
		r->off = off;
		r->len = len;
		r->fi = *fi;
		run_fallocate(&r->w);
		return;
	}
	do_fallocate(req, mode, off, len, fi, NULL);
}

static void op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, struct fuse_file_info *fi)
{
	uint64_t res;
	int ret;

	(void)ino;
	if (off < 0) {
		reply_err(req, -ENXIO);
		return;
	}
	ret = file_lseek(FS(req), OF(fi)->ip, (uint64_t)off, whence, &res);
	if (ret)
		reply_err(req, ret);
	else
		fuse_reply_lseek(req, (off_t)res);
}

const struct fuse_lowlevel_ops daxfs_ll_ops = {
	.init = op_init,
	.destroy = op_destroy,
	.lookup = op_lookup,
	.forget = op_forget,
	.forget_multi = op_forget_multi,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.readlink = op_readlink,
	.mknod = op_mknod,
	.mkdir = op_mkdir,
	.symlink = op_symlink,
	.link = op_link,
	.unlink = op_unlink,
	.rmdir = op_rmdir,
	.rename = op_rename,
	.open = op_open,
	.create = op_create,
	.read = op_read,
	.write = op_write,
	.release = op_release,
	.fsync = op_fsync,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.readdirplus = op_readdirplus,
	.releasedir = op_releasedir,
	.fsyncdir = op_fsyncdir,
	.statfs = op_statfs,
	.setxattr = op_setxattr,
	.getxattr = op_getxattr,
	.listxattr = op_listxattr,
	.removexattr = op_removexattr,
	.fallocate = op_fallocate,
	.lseek = op_lseek,
	.ioctl = ioctl_op,
};
