/* SPDX-License-Identifier: MIT */
/*
 * Orphans: inodes whose last link is gone.  Each goes on the persistent orphan list in the
 * transaction that drops its last link; its media (blocks, extended attributes, the inode itself) is
 * freed at its last close, or by the next mount if the daemon died first.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs.h"
#include "file.h"
#include "inode.h"
#include "orphan.h"
#include "xattr.h"

int orphan_add(struct fs *fs, struct tx *tx, struct inode *ip)
{
	uint64_t v[3] = { ip->ino, 0, 0 };
	int ret;

	/*
	 * Every inode that loses its last link goes on the orphan list in the same transaction, open or
	 * not: if the daemon dies before its blocks are freed, mount finishes the job.
	 */
	if (ip->orphan)
		return 0;
	ret = slots_add(&fs->orphans, tx, v, &ip->orphan_slot);
	if (ret == 0)
		ip->orphan = true;
	return ret;
}

int orphan_free_inode(struct fs *fs, struct inode *ip, const struct file_free_sink *sink)
{
	struct tx tx;
	int ret;

	if (ip->deleted)
		return 0;
	if (S_ISREG(ip->d.mode) || S_ISDIR(ip->d.mode) || S_ISLNK(ip->d.mode)) {
		tx_init(&tx, &fs->sbi.journal);
		ret = file_truncate(fs, ip, 0, &tx, sink);
		if (ret)
			return ret;
	}
	tx_init(&tx, &fs->sbi.journal);
	xattr_free_all(fs, &tx, ip);
	tx_bits(&tx, &fs->sbi.ibm, ip->ino - 1, 1, false);
	/* Zero the record so a checker never mistakes it for a live inode. */
	struct daxfs_inode zero = { 0 };
	struct sbi *s = &fs->sbi;
	tx_log(&tx, sbi_block_off(s, s->sb.itable_start) + (ip->ino - 1) * DAXFS_INODE_SIZE, &zero, sizeof(zero));
	if (ip->orphan)
		slots_remove(&fs->orphans, &tx, ip->orphan_slot);
	ret = sbi_commit(&fs->sbi, &tx);
	if (ret == 0) {
		ip->orphan = false;
		ip->deleted = true;
		ip->times_dirty = false;
	}
	return ret;
}

int orphan_release_last(struct fs *fs, struct inode *ip, const struct file_free_sink *sink)
{
	int ret = 0;

	pthread_mutex_lock(&fs->ns_lock);
	pthread_rwlock_wrlock(&ip->lock);
	/* Opens take ip->lock, so nopen cannot change under us; /proc/self/fd reopens may have raced. */
	if (ip->d.nlink == 0 && !ip->deleted && ip->nopen == 0)
		ret = orphan_free_inode(fs, ip, sink);
	pthread_rwlock_unlock(&ip->lock);
	pthread_mutex_unlock(&fs->ns_lock);
	return ret;
}

struct orphan_list {
	uint64_t (*v)[2];	/* slot id, inode */
	size_t n;
	size_t cap;
};

static int collect_orphan(void *arg, uint64_t id, const uint64_t v[3])
{
	struct orphan_list *ol = arg;

	if (ol->n == ol->cap) {
		size_t cap = ol->cap ? ol->cap * 2 : 16;
		void *nv = realloc(ol->v, cap * sizeof(*ol->v));

		if (!nv)
			return -ENOMEM;
		ol->v = nv;
		ol->cap = cap;
	}
	ol->v[ol->n][0] = id;
	ol->v[ol->n][1] = v[0];
	ol->n++;
	return 0;
}

int orphan_drop_slot(struct fs *fs, uint64_t id)
{
	struct tx tx;

	tx_init(&tx, &fs->sbi.journal);
	slots_remove(&fs->orphans, &tx, id);
	return sbi_commit(&fs->sbi, &tx);
}

/* Inodes that lost their last link while open (or just before a crash): free them now. */
int orphan_recover(struct fs *fs, const struct file_free_sink *sink, char *err, size_t errlen)
{
	struct orphan_list ol = { 0 };
	int ret = 0;

	/* Snapshot the list (committed records): freeing an orphan removes its slot. */
	for (size_t bi = 0; bi < fs->orphans.nblocks && ret == 0; bi++) {
		const struct daxfs_slot *slot = slots_block(&fs->orphans, bi);

		for (uint32_t i = 0; i < fs->orphans.per_block && ret == 0; i++)
			if (slot[i].v[0])
				ret = collect_orphan(&ol, bi * fs->orphans.per_block + i, slot[i].v);
	}
	for (size_t i = 0; i < ol.n && ret == 0; i++) {
		uint64_t id = ol.v[i][0], ino = ol.v[i][1];
		struct inode *ip;

		ret = inode_get(fs, ino, &ip);
		if (ret == -ESTALE) {
			/* The inode was freed but the slot survived: drop the slot. */
			ret = orphan_drop_slot(fs, id);
		} else if (ret == 0) {
			pthread_rwlock_wrlock(&ip->lock);
			ip->orphan = true;
			ip->orphan_slot = id;
			if (ip->d.nlink == 0) {
				ret = orphan_free_inode(fs, ip, sink);
				fs->orphans_recovered++;
			} else {
				ret = orphan_drop_slot(fs, id);
				ip->orphan = false;
			}
			pthread_rwlock_unlock(&ip->lock);
			inode_put(fs, ip);
		}
		if (ret)
			snprintf(err, errlen, "recovering orphan inode %llu: %s", (unsigned long long)ino,
				 strerror(-ret));
	}
	free(ol.v);
	return ret;
}
