/* SPDX-License-Identifier: MIT */
/*
 * Inodes: the cache of in-use inodes, inode numbers, timestamps, and the life cycle of an inode
 * from creation to the moment its last link and last open are gone.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "csum.h"
#include "fs.h"
#include "util.h"
#include "dir.h"
#include "inode.h"

static size_t bucket_of(const struct fs *fs, uint64_t ino)
{
	return (size_t)((ino * 0x9E3779B97F4A7C15ull) >> 32) & (fs->nbuckets - 1);
}

static struct inode *cache_find(struct fs *fs, uint64_t ino)
{
	for (struct inode *ip = fs->buckets[bucket_of(fs, ino)]; ip; ip = ip->hnext)
		if (ip->ino == ino)
			return ip;
	return NULL;
}

static void cache_grow(struct fs *fs)
{
	size_t n = fs->nbuckets * 2;
	struct inode **nb = calloc(n, sizeof(*nb));

	if (!nb)
		return;	/* longer chains, still correct */
	struct inode **old = fs->buckets;
	size_t oldn = fs->nbuckets;
	fs->buckets = nb;
	fs->nbuckets = n;
	for (size_t i = 0; i < oldn; i++) {
		for (struct inode *ip = old[i], *next; ip; ip = next) {
			next = ip->hnext;
			size_t b = bucket_of(fs, ip->ino);
			ip->hnext = nb[b];
			nb[b] = ip;
		}
	}
	free(old);
}

static void cache_insert(struct fs *fs, struct inode *ip)
{
	if (fs->ncached >= fs->nbuckets * 2)
		cache_grow(fs);
	size_t b = bucket_of(fs, ip->ino);
	ip->hnext = fs->buckets[b];
	fs->buckets[b] = ip;
	fs->ncached++;
}

static void cache_remove(struct fs *fs, struct inode *ip)
{
	struct inode **pp = &fs->buckets[bucket_of(fs, ip->ino)];

	while (*pp != ip)
		pp = &(*pp)->hnext;
	*pp = ip->hnext;
	fs->ncached--;
}

static void ino_release(struct fs *fs, uint64_t ino)
{
	pthread_mutex_lock(&fs->ino_lock);
	fs->ino_map[(ino - 1) / 64] &= ~(1ULL << ((ino - 1) % 64));
	fs->ino_taken--;
	pthread_mutex_unlock(&fs->ino_lock);
}

static int ino_take(struct fs *fs, uint64_t *ino)
{
	uint64_t n = fs->sbi.sb.ninodes, words = DIV_ROUND_UP(n, 64);
	int ret = -ENOSPC;

	pthread_mutex_lock(&fs->ino_lock);
	for (uint64_t i = 0; i < words; i++) {
		uint64_t w = (fs->ino_rotor + i) % words;
		uint64_t bits = fs->ino_map[w];

		if (bits == ~0ULL)
			continue;
		uint64_t bit = w * 64 + (uint64_t)__builtin_ctzll(~bits);
		if (bit >= n)
			continue;
		fs->ino_map[w] |= 1ULL << (bit % 64);
		fs->ino_taken++;
		fs->ino_rotor = w;
		*ino = bit + 1;
		ret = 0;
		break;
	}
	pthread_mutex_unlock(&fs->ino_lock);
	return ret;
}

void inode_free(struct inode *ip)
{
	emap_destroy(&ip->map);
	if (ip->dir)
		dir_destroy(ip->dir);
	pthread_rwlock_destroy(&ip->lock);
	free(ip);
}

static struct inode *inode_new(uint64_t ino)
{
	struct inode *ip = calloc(1, sizeof(*ip));

	if (!ip)
		return NULL;
	ip->ino = ino;
	pthread_rwlock_init(&ip->lock, NULL);
	return ip;
}

static bool valid_type(uint16_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG: case S_IFDIR: case S_IFLNK: case S_IFCHR: case S_IFBLK: case S_IFIFO: case S_IFSOCK:
		return true;
	}
	return false;
}

static bool has_emap(const struct inode *ip)
{
	mode_t t = ip->d.mode & S_IFMT;

	return t == S_IFREG || t == S_IFDIR || (t == S_IFLNK && !(ip->d.flags & DAXFS_IF_INLINE_SYMLINK));
}

/* Read and check inode `ino` from the media, with its extents and directory. */
static int inode_load(struct fs *fs, uint64_t ino, struct inode **out)
{
	struct sbi *s = &fs->sbi;
	const struct daxfs_inode *di = media_ptr(&s->media, sbi_block_off(s, s->sb.itable_start) +
						 (ino - 1) * DAXFS_INODE_SIZE);
	struct inode *ip;
	int ret;

	if (!journal_bitmap_test(&s->ibm, ino - 1))
		return -ESTALE;
	if (di->crc != csum_inode(s->seed, ino, di) || !valid_type(di->mode)) {
		sbi_corrupt(&fs->sbi, "inode %llu: bad checksum or file type", (unsigned long long)ino);
		return -EIO;
	}
	/* A checksum only says the record is what was written; also refuse what no writer produces. */
	if ((di->flags & DAXFS_IF_INLINE_SYMLINK) && (!S_ISLNK(di->mode) || di->size >= DAXFS_INLINE_SYMLINK)) {
		sbi_corrupt(&fs->sbi, "inode %llu: inline symlink of %llu bytes", (unsigned long long)ino,
			   (unsigned long long)di->size);
		return -EIO;
	}
	ip = inode_new(ino);
	if (!ip)
		return -ENOMEM;
	ip->d = *di;
	if (has_emap(ip) && (ret = emap_load(fs, ip)) < 0)
		goto fail;
	if (S_ISDIR(ip->d.mode) && (ret = dir_load(fs, ip)) < 0)
		goto fail;
	*out = ip;
	return 0;
fail:
	inode_free(ip);
	return ret;
}

int inode_read(struct fs *fs, uint64_t ino, struct inode **out)
{
	if (ino == 0 || ino > fs->sbi.sb.ninodes)
		return -ESTALE;
	return inode_load(fs, ino, out);
}

int inode_get(struct fs *fs, uint64_t ino, struct inode **out)
{
	struct inode *ip;
	int ret = 0;

	if (ino == 0 || ino > fs->sbi.sb.ninodes)
		return -ESTALE;
	pthread_mutex_lock(&fs->icache_lock);
	ip = cache_find(fs, ino);
	if (!ip) {
		ret = inode_load(fs, ino, &ip);
		if (ret == 0)
			cache_insert(fs, ip);
	}
	if (ret == 0) {
		ip->refs++;
		*out = ip;
	}
	pthread_mutex_unlock(&fs->icache_lock);
	return ret;
}

void inode_hold(struct fs *fs, struct inode *ip)
{
	pthread_mutex_lock(&fs->icache_lock);
	ip->refs++;
	pthread_mutex_unlock(&fs->icache_lock);
}

/* Drop the inode from DRAM when nothing refers to it.  Called with icache_lock held. */
static bool maybe_evict(struct fs *fs, struct inode *ip)
{
	if (ip->refs || ip->nlookup || ip->nopen)
		return false;
	cache_remove(fs, ip);
	return true;
}

static void evicted(struct fs *fs, struct inode *ip)
{
	if (ip->deleted)
		ino_release(fs, ip->ino);
	inode_free(ip);
}

void inode_put(struct fs *fs, struct inode *ip)
{
	bool gone;

	if (!ip)
		return;
	pthread_mutex_lock(&fs->icache_lock);
	ip->refs--;
	gone = maybe_evict(fs, ip);
	pthread_mutex_unlock(&fs->icache_lock);
	if (gone)
		evicted(fs, ip);
}

void inode_lookup_ref(struct fs *fs, struct inode *ip)
{
	pthread_mutex_lock(&fs->icache_lock);
	ip->nlookup++;
	pthread_mutex_unlock(&fs->icache_lock);
}

void inode_forget(struct fs *fs, uint64_t ino, uint64_t n)
{
	struct inode *ip;
	bool last;

	pthread_mutex_lock(&fs->icache_lock);
	ip = cache_find(fs, ino);
	if (!ip) {
		pthread_mutex_unlock(&fs->icache_lock);
		return;
	}
	ip->nlookup = n > ip->nlookup ? 0 : ip->nlookup - n;
	last = ip->nlookup == 0 && ip->nopen == 0;
	ip->refs++;
	pthread_mutex_unlock(&fs->icache_lock);
	/* Lazy timestamps must reach the media before the inode leaves DRAM. */
	if (last)
		inode_sync(fs, ip);
	inode_put(fs, ip);
}

void inode_open(struct fs *fs, struct inode *ip)
{
	pthread_mutex_lock(&fs->icache_lock);
	ip->nopen++;
	pthread_mutex_unlock(&fs->icache_lock);
}

bool inode_close(struct fs *fs, struct inode *ip)
{
	bool last;

	pthread_mutex_lock(&fs->icache_lock);
	last = --ip->nopen == 0;
	pthread_mutex_unlock(&fs->icache_lock);
	return last;
}

void inode_stat(struct fs *fs, const struct inode *ip, struct stat *st)
{
	const struct daxfs_inode *d = &ip->d;

	memset(st, 0, sizeof(*st));
	st->st_ino = ip->ino;
	st->st_mode = d->mode;
	st->st_nlink = d->nlink;
	st->st_uid = d->uid;
	st->st_gid = d->gid;
	st->st_rdev = d->rdev;
	st->st_size = (off_t)d->size;
	st->st_blksize = fs_bs(fs);
	st->st_blocks = (blkcnt_t)(d->blocks << (fs->sbi.bshift - 9));
	st->st_atim.tv_sec = d->atime_sec;
	st->st_atim.tv_nsec = d->atime_nsec;
	st->st_mtim.tv_sec = d->mtime_sec;
	st->st_mtim.tv_nsec = d->mtime_nsec;
	st->st_ctim.tv_sec = d->ctime_sec;
	st->st_ctim.tv_nsec = d->ctime_nsec;
}

void inode_log(struct fs *fs, struct tx *tx, struct inode *ip)
{
	struct sbi *s = &fs->sbi;

	ip->d.crc = csum_inode(s->seed, ip->ino, &ip->d);
	tx_log(tx, sbi_block_off(s, s->sb.itable_start) + (ip->ino - 1) * DAXFS_INODE_SIZE, &ip->d,
	       sizeof(ip->d));
	ip->times_dirty = false;
}

void inode_touch(struct inode *ip, int which)
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	if (which & T_ATIME) {
		ip->d.atime_sec = now.tv_sec;
		ip->d.atime_nsec = (uint32_t)now.tv_nsec;
	}
	if (which & T_MTIME) {
		ip->d.mtime_sec = now.tv_sec;
		ip->d.mtime_nsec = (uint32_t)now.tv_nsec;
	}
	if (which & T_CTIME) {
		ip->d.ctime_sec = now.tv_sec;
		ip->d.ctime_nsec = (uint32_t)now.tv_nsec;
	}
	ip->times_dirty = true;
}

int inode_sync(struct fs *fs, struct inode *ip)
{
	int ret = 0;

	pthread_rwlock_wrlock(&ip->lock);
	if (ip->times_dirty && !ip->deleted && sbi_writable(&fs->sbi) == 0) {
		struct tx tx;

		tx_init(&tx, &fs->sbi.journal);
		inode_log(fs, &tx, ip);
		ret = sbi_commit(&fs->sbi, &tx);
	}
	pthread_rwlock_unlock(&ip->lock);
	return ret;
}

void inode_sync_all(struct fs *fs)
{
	for (size_t b = 0; b < fs->nbuckets; b++)
		for (struct inode *ip = fs->buckets[b]; ip; ip = ip->hnext)
			if (ip->times_dirty)
				inode_sync(fs, ip);
}

int inode_create(struct fs *fs, struct tx *tx, const struct cred *cr, const struct inode *dir, mode_t mode,
		 dev_t rdev, struct inode **out)
{
	struct inode *ip;
	uint64_t ino;
	int ret;

	ret = ino_take(fs, &ino);
	if (ret)
		return ret;
	ip = inode_new(ino);
	if (!ip) {
		ino_release(fs, ino);
		return -ENOMEM;
	}
	struct daxfs_inode *d = &ip->d;
	d->mode = (uint16_t)mode;
	d->uid = cr->uid;
	d->gid = cr->gid;
	/* BSD group semantics in setgid directories; subdirectories inherit the bit. */
	if (dir->d.mode & S_ISGID) {
		d->gid = dir->d.gid;
		if (S_ISDIR(mode))
			d->mode |= S_ISGID;
	}
	d->nlink = S_ISDIR(mode) ? 2 : 1;
	d->rdev = (S_ISCHR(mode) || S_ISBLK(mode)) ? rdev : 0;
	d->parent = S_ISDIR(mode) ? dir->ino : 0;
	d->generation = __atomic_add_fetch(&fs->next_generation, 1, __ATOMIC_RELAXED);
	inode_touch(ip, T_ATIME | T_MTIME | T_CTIME);
	d->btime_sec = d->mtime_sec;
	d->btime_nsec = d->mtime_nsec;
	if ((has_emap(ip) && (ret = emap_load(fs, ip)) < 0) || (S_ISDIR(mode) && (ret = dir_load(fs, ip)) < 0)) {
		ino_release(fs, ino);
		inode_free(ip);
		return ret;
	}
	tx_bits(tx, &fs->sbi.ibm, ino - 1, 1, true);
	inode_log(fs, tx, ip);
	pthread_rwlock_wrlock(&ip->lock);
	ip->refs = 1;
	pthread_mutex_lock(&fs->icache_lock);
	cache_insert(fs, ip);
	pthread_mutex_unlock(&fs->icache_lock);
	*out = ip;
	return 0;
}

void inode_create_abort(struct fs *fs, struct inode *ip)
{
	pthread_mutex_lock(&fs->icache_lock);
	cache_remove(fs, ip);
	pthread_mutex_unlock(&fs->icache_lock);
	pthread_rwlock_unlock(&ip->lock);
	ino_release(fs, ip->ino);
	inode_free(ip);
}
