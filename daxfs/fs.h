/* SPDX-License-Identifier: MIT */
/*
 * The mounted file system: inodes, extent maps, directories and extended attributes over the sbi
 * layer, with a POSIX-shaped API that returns 0 or -errno.  It knows nothing of FUSE; fuse_ops.c
 * translates requests into these calls.
 *
 * Lock order (never taken in the other direction):
 *   fs->ns_lock                  namespace changes: create, link, unlink, rename, rmdir; orphans
 *   inode->lock                  one inode's attributes, extents, directory and xattrs; several
 *                                inodes are locked together only under ns_lock
 *   pins.lock                    pin table and media reference counts
 *   busy.lock                    busy extents and the reclaim queue
 *   pol_lock, slot list locks, icache_lock, ino_lock, allocator, journal    leaves
 * Nothing waits for a pin to drop while holding ns_lock or an inode lock.
 * A transaction that changes an inode commits before that inode's lock is dropped.
 */
#ifndef DAXFS_FS_H
#define DAXFS_FS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "daxfs/format.h"
#include "extent_busy.h"
#include "mmap_pin.h"
#include "policy.h"
#include "reclaim.h"
#include "sbi.h"
#include "slots.h"

/* Who is asking: the request's credentials, for ownership of new objects. */
struct cred {
	uint32_t uid;
	uint32_t gid;
	pid_t pid;
	const gid_t *groups;	/* supplementary groups, when known */
	int ngroups;
};

/*
 * Extent map: the extents of a file, in logical order, grouped in leaves that mirror where they are
 * stored (leaf 0: the inode's inline slots; the others: extent blocks, in chain order).
 */
struct emap_leaf {
	uint64_t pblk;				/* 0 for the inline leaf */
	uint32_t count;
	uint32_t dirty_from;			/* first record changed since last logged; UINT32_MAX = clean */
	struct daxfs_extent_block *blk;		/* DRAM image of the block (NULL for the inline leaf) */
};

struct emap {
	struct emap_leaf *leaves;
	uint32_t nleaves;
	uint32_t capleaves;
	uint32_t ndirty;			/* leaves with changes not yet logged */
};

/* A position in an extent map: leaf and record index. */
struct emap_cursor {
	uint32_t leaf;
	uint32_t rec;
};

struct dir_index;

struct inode {
	uint64_t ino;
	struct inode *hnext;		/* icache chain */
	/* under fs->icache_lock */
	uint64_t nlookup;		/* references the kernel holds */
	uint32_t refs;			/* references held by running operations */
	uint32_t nopen;			/* open files */
	/* under lock */
	pthread_rwlock_t lock;
	struct daxfs_inode d;		/* the inode record, authoritative while cached */
	bool times_dirty;		/* timestamps changed but not yet on the media */
	bool deleted;			/* freed on the media; the number stays taken until forgotten */
	bool orphan;			/* on the orphan list (unlinked while open) */
	uint64_t orphan_slot;
	struct emap map;
	struct dir_index *dir;
};

struct fs_config {
	bool readonly;
	bool norecovery;	/* leave the clean flag and the orphans alone (the checker) */
	bool private_map;	/* copy-on-write mapping: nothing reaches the image (fsck -n) */
	bool shared;		/* do not take the exclusive image lock (fsck -n of a mounted image) */
	bool backup_sb;		/* use the superblock copy in the last block */
	bool noreplay;		/* ignore the journal (a corrupt one, for the checker) */
	bool noorphans;		/* start with an empty orphan list (a corrupt one, for the checker) */
	struct policy_config policy;
	uint32_t max_pins;		/* 0 = unlimited */
	uint32_t max_pins_per_file;	/* 0 = unlimited */
	bool reclaim_discard;		/* punch reclaimed blocks out of the image file */
	uint64_t enospc_wait_ms;	/* how long an allocation waits for reclaim in flight */
	/* Where corruption reports go; NULL prints them to stderr. */
	void (*report)(void *arg, const char *msg);
	void *report_arg;
};

struct fs {
	struct sbi sbi;
	struct fs_config cfg;
	pthread_mutex_t ns_lock;

	pthread_mutex_t icache_lock;
	struct inode **buckets;
	size_t nbuckets;
	size_t ncached;

	pthread_mutex_t ino_lock;	/* inode numbers: taken (in use, reserved or not yet forgotten) */
	uint64_t *ino_map;
	uint64_t ino_taken;
	uint64_t ino_rotor;
	uint32_t next_generation;

	struct inode *root;		/* held for the life of the mount: the kernel never looks it up */
	struct slotlist orphans;
	struct pin_table pins;
	struct busy_tree busy;
	struct reclaim reclaim;
	pthread_mutex_t pol_lock;
	struct policy_config pol;
	struct fs_stats {
		uint64_t frees_waited;
		uint64_t free_wait_ns;
		uint64_t frees_failed;
		uint64_t unsafe_frees;
		uint64_t unsafe_blocks;
		uint64_t dma_ops;
		uint64_t dma_bytes;
	} stats;			/* updated with atomic adds */
	uint64_t orphans_recovered;	/* at mount */
};

/* Convenience */
static inline struct media *fs_media(struct fs *fs)
{
	return &fs->sbi.media;
}

static inline uint32_t fs_bs(const struct fs *fs)
{
	return fs->sbi.bs;
}

/* ---- mount.c: mount life cycle ---- */
int mount_open(struct fs **out, const char *image, const struct fs_config *cfg, char *err, size_t errlen);
/* Start the background worker (reclaim).  Separate from mount_open so a daemon can fork in between. */
int mount_start(struct fs *fs);
/* Drop every pin, drain reclaim, write back and close. */
void mount_close(struct fs *fs);
#define STAT_ADD(fs, field, n) __atomic_add_fetch(&(fs)->stats.field, (n), __ATOMIC_RELAXED)

/* ---- inode.c ---- */
int inode_get(struct fs *fs, uint64_t ino, struct inode **ip);
/* Read an inode from the media without caching it (the checker); free with inode_free. */
int inode_read(struct fs *fs, uint64_t ino, struct inode **ip);
void inode_free(struct inode *ip);
void inode_hold(struct fs *fs, struct inode *ip);
void inode_put(struct fs *fs, struct inode *ip);
/* The kernel got (nlookup) or dropped (forget) references. */
void inode_lookup_ref(struct fs *fs, struct inode *ip);
void inode_forget(struct fs *fs, uint64_t ino, uint64_t n);
void inode_stat(struct fs *fs, const struct inode *ip, struct stat *st);
/* Log the inode record (with its checksum) into tx; clears times_dirty. */
void inode_log(struct fs *fs, struct tx *tx, struct inode *ip);
/* Write dirty timestamps back (fsync, release, forget, unmount). */
int inode_sync(struct fs *fs, struct inode *ip);
/* Set timestamps to now. */
#define T_ATIME 1
#define T_MTIME 2
#define T_CTIME 4
void inode_touch(struct inode *ip, int which);
/* A new inode, logged in tx, returned held and write-locked with nlookup 0. */
int inode_create(struct fs *fs, struct tx *tx, const struct cred *cr, const struct inode *dir, mode_t mode,
		 dev_t rdev, struct inode **ip);
/* Undo inode_create when its transaction is abandoned. */
void inode_create_abort(struct fs *fs, struct inode *ip);
void inode_open(struct fs *fs, struct inode *ip);
/* Drop an open; returns true when it was the last and the inode is waiting to be freed. */
bool inode_close(struct fs *fs, struct inode *ip);
void inode_sync_all(struct fs *fs);

/* ---- orphan.c ---- */
/* nlink reached 0: put ip on the orphan list in tx.  Caller holds ns_lock and ip->lock. */
int orphan_add(struct fs *fs, struct tx *tx, struct inode *ip);
/* The last open file of an inode was released: free it if it has no link left. */
int orphan_release_last(struct fs *fs, struct inode *ip, const struct file_free_sink *sink);
/* Free all of an inode's media (blocks, xattrs, the inode), committing as it goes. */
int orphan_free_inode(struct fs *fs, struct inode *ip, const struct file_free_sink *sink);
/* Free the inodes on the orphan list (mount does this unless norecovery). */
int orphan_recover(struct fs *fs, const struct file_free_sink *sink, char *err, size_t errlen);
/* Clear one orphan-list slot in a transaction of its own (a record that names nothing to free). */
int orphan_drop_slot(struct fs *fs, uint64_t id);

/* ---- emap.c ---- */
int emap_load(struct fs *fs, struct inode *ip);
void emap_destroy(struct emap *map);
/* The first extent that ends after lblk (it contains lblk, or follows it); false when none. */
bool emap_seek(const struct inode *ip, uint64_t lblk, struct emap_cursor *c, struct daxfs_extent *out);
/* The extent after the cursor's; false at the end. */
bool emap_next(const struct inode *ip, struct emap_cursor *c, struct daxfs_extent *out);
/* Where to place new blocks for lblk so the file stays contiguous: 0 when there is no hint. */
uint64_t emap_goal(const struct inode *ip, uint64_t lblk);
uint64_t emap_count(const struct inode *ip);
/* Map [lblk, lblk + len) (a hole) to pblk. */
int emap_insert(struct fs *fs, struct tx *tx, struct inode *ip, uint64_t lblk, uint64_t pblk, uint64_t len);
/*
 * Unmap [lblk, lblk + len); each freed media range is passed to `freed`.  Returns -EAGAIN, having
 * made partial progress, when the transaction has grown to its budget: commit and call again.
 */
typedef void (*emap_free_fn)(void *arg, uint64_t pblk, uint64_t len);
int emap_remove(struct fs *fs, struct tx *tx, struct inode *ip, uint64_t lblk, uint64_t len, emap_free_fn freed,
		void *arg);
/* Log the extent blocks changed since the last call.  Inline extents live in the inode: log it too. */
void emap_log(struct fs *fs, struct tx *tx, struct inode *ip);

/* ---- file.c ---- */
#define FILE_READ_MAX_IOV 520	/* enough for 1 MiB alternating between data and holes */
typedef int (*file_send_fn)(void *ctx, const struct iovec *iov, int niov);
/*
 * Read [off, off + size): `send` gets iovecs pointing into the media (holes point at zeroes) and must
 * consume them before returning; the inode stays read-locked meanwhile.
 */
int file_read(struct fs *fs, struct inode *ip, uint64_t off, size_t size, file_send_fn send, void *ctx);
/* Write a gather list at off: the bytes written (short on ENOSPC) or -errno. */
ssize_t file_write(struct fs *fs, struct inode *ip, uint64_t off, const struct iovec *iov, int niov);
/*
 * Fallocate with ip write-locked: preallocate (mode 0, KEEP_SIZE, ZERO_RANGE) or punch the whole
 * blocks of [off, off + len) out, handing freed media to sink; the edges are zeroed in place.
 */
int file_preallocate(struct fs *fs, struct inode *ip, int mode, uint64_t off, uint64_t len);
int file_punch(struct fs *fs, struct inode *ip, uint64_t off, uint64_t len, const struct file_free_sink *sink);
int file_lseek(struct fs *fs, struct inode *ip, uint64_t off, int whence, uint64_t *res);
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
/* With ip->lock held for writing: set the size, freeing blocks past it into sink; commits tx (and more). */
int file_truncate(struct fs *fs, struct inode *ip, uint64_t size, struct tx *tx, const struct file_free_sink *sink);
/* Allocate (zeroed) the holes of blocks [lblk, last] and commit, as a DAX write fault would. */
int file_fill_holes(struct fs *fs, struct inode *ip, uint64_t lblk, uint64_t last);
int file_read_iov(struct fs *fs, struct inode *ip, uint64_t off, size_t len, struct iovec *iov, int maxiov,
		  int *niov, size_t *bytes);
/* Copy out file bytes (long symlinks); returns the count. */
int file_pread(struct fs *fs, struct inode *ip, void *buf, size_t len, uint64_t off);

/* ---- dir.c ---- */
int dir_load(struct fs *fs, struct inode *dir);
void dir_destroy(struct dir_index *d);
int dir_lookup(struct inode *dir, const char *name, size_t len, uint64_t *ino, uint8_t *type);
int dir_add(struct fs *fs, struct tx *tx, struct inode *dir, const char *name, size_t len, uint64_t ino,
	    uint8_t type);
int dir_remove(struct fs *fs, struct tx *tx, struct inode *dir, const char *name, size_t len);
/* Point an existing entry at another inode (rename over). */
int dir_replace(struct fs *fs, struct tx *tx, struct inode *dir, const char *name, size_t len, uint64_t ino,
		uint8_t type);
uint64_t dir_entries(const struct inode *dir);
/*
 * Iterate from cookie `pos` (0 = start; "." and ".." included).  `emit` returns non-zero to stop
 * before consuming the entry.
 */
typedef int (*dir_emit_fn)(void *arg, const char *name, size_t len, uint64_t ino, uint8_t type, uint64_t next);
int dir_iterate(struct fs *fs, struct inode *dir, uint64_t pos, dir_emit_fn emit, void *arg);

/* ---- xattr.c ---- */
int xattr_get(struct fs *fs, struct inode *ip, const char *name, void *buf, size_t size);
int xattr_list(struct fs *fs, struct inode *ip, char *buf, size_t size);
int xattr_set(struct fs *fs, struct inode *ip, const char *name, const void *value, size_t size, int flags);
int xattr_remove(struct fs *fs, struct inode *ip, const char *name);
/* Free the xattr block into tx (inode deletion). */
void xattr_free_all(struct fs *fs, struct tx *tx, struct inode *ip);

/* ---- namei.c: the operations ---- */
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
int namei_setattr(struct fs *fs, uint64_t ino, const struct stat *attr, int to_set, struct stat *out);
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
/* Open: counts the open; O_TRUNC truncates. */
int namei_open(struct fs *fs, uint64_t ino, int flags, struct inode **ip);
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
/* fallocate(2): preallocate or zero, or punch a hole (the policy decides first about pinned blocks). */
int namei_fallocate(struct fs *fs, struct inode *ip, int mode, uint64_t off, uint64_t len);
int namei_statfs(struct fs *fs, struct statvfs *st);

#endif
