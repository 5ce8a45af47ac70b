/* SPDX-License-Identifier: MIT */
/*
 * Extended attributes: the user, trusted and security namespaces, all of an inode's attributes in one
 * block.  Readers parse the committed block on the media; a change builds the new block in DRAM and
 * logs it whole.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>

#include "csum.h"
#include "fs.h"
#include "util.h"
#include "inode.h"
#include "xattr.h"

static const struct {
	const char *prefix;
	size_t len;
	uint8_t index;
} namespaces[] = {
	{ "user.", 5, DAXFS_XATTR_USER },
	{ "trusted.", 8, DAXFS_XATTR_TRUSTED },
	{ "security.", 9, DAXFS_XATTR_SECURITY },
};

/* Split "user.foo" into its namespace and "foo". */
static int parse_name(const char *name, uint8_t *index, const char **suffix, size_t *len)
{
	for (size_t i = 0; i < ARRAY_SIZE(namespaces); i++) {
		if (strncmp(name, namespaces[i].prefix, namespaces[i].len) == 0) {
			*index = namespaces[i].index;
			*suffix = name + namespaces[i].len;
			*len = strlen(*suffix);
			if (*len == 0)
				return -EINVAL;
			if (*len > 255)
				return -ERANGE;
			return 0;
		}
	}
	return -EOPNOTSUPP;	/* system.* (POSIX ACLs) and unknown namespaces */
}

static const char *prefix_of(uint8_t index)
{
	for (size_t i = 0; i < ARRAY_SIZE(namespaces); i++)
		if (namespaces[i].index == index)
			return namespaces[i].prefix;
	return NULL;
}

#define FIRST(xb) ((struct daxfs_xattr_entry *)((char *)(xb) + sizeof(struct daxfs_xattr_block)))
#define NEXT(e) ((struct daxfs_xattr_entry *)((char *)(e) + DAXFS_XATTR_ENTRY_LEN((e)->name_len, (e)->value_len)))

/* The inode's committed xattr block, checked; NULL with *err = 0 when it has none. */
static const struct daxfs_xattr_block *read_block(struct fs *fs, const struct inode *ip, int *err)
{
	struct sbi *s = &fs->sbi;
	uint64_t blk = ip->d.xattr_blk;

	*err = 0;
	if (!blk)
		return NULL;
	const struct daxfs_xattr_block *xb = sbi_block(s, blk);
	if (!sbi_data_block(s, blk, 1) || xb->magic != DAXFS_XATTR_MAGIC || xb->ino != ip->ino ||
	    xb->used < sizeof(*xb) || xb->used > s->bs || xb->crc != csum_xattr(s->seed, ip->ino, xb))
		goto bad;
	const char *end = (const char *)xb + xb->used;
	const struct daxfs_xattr_entry *e = FIRST(xb);
	for (uint32_t i = 0; i < xb->count; i++, e = NEXT(e)) {
		if ((const char *)e + sizeof(*e) > end || (const char *)NEXT(e) > end || !prefix_of(e->name_index) ||
		    e->name_len == 0)
			goto bad;
	}
	return xb;
bad:
	sbi_corrupt(&fs->sbi, "inode %llu: extended attribute block %llu is corrupt", (unsigned long long)ip->ino,
		   (unsigned long long)blk);
	*err = -EIO;
	return NULL;
}

static const struct daxfs_xattr_entry *find(const struct daxfs_xattr_block *xb, uint8_t index, const char *name,
					    size_t len)
{
	const struct daxfs_xattr_entry *e = FIRST(xb);

	for (uint32_t i = 0; i < xb->count; i++, e = NEXT(e))
		if (e->name_index == index && e->name_len == len && memcmp(e->name, name, len) == 0)
			return e;
	return NULL;
}

int xattr_get(struct fs *fs, struct inode *ip, const char *name, void *buf, size_t size)
{
	const char *suffix;
	size_t len;
	uint8_t index;
	int ret = parse_name(name, &index, &suffix, &len);

	if (ret)
		return ret;
	pthread_rwlock_rdlock(&ip->lock);
	const struct daxfs_xattr_block *xb = read_block(fs, ip, &ret);
	const struct daxfs_xattr_entry *e = xb ? find(xb, index, suffix, len) : NULL;
	if (!ret && !e)
		ret = -ENODATA;
	if (!ret) {
		ret = e->value_len;
		if (size) {
			if (size < e->value_len)
				ret = -ERANGE;
			else
				memcpy(buf, e->name + e->name_len, e->value_len);
		}
	}
	pthread_rwlock_unlock(&ip->lock);
	return ret;
}

int xattr_list(struct fs *fs, struct inode *ip, char *buf, size_t size)
{
	size_t total = 0;
	int ret;

	pthread_rwlock_rdlock(&ip->lock);
	const struct daxfs_xattr_block *xb = read_block(fs, ip, &ret);
	if (xb) {
		const struct daxfs_xattr_entry *e = FIRST(xb);

		for (uint32_t i = 0; i < xb->count; i++, e = NEXT(e)) {
			const char *prefix = prefix_of(e->name_index);
			size_t plen = strlen(prefix), n = plen + e->name_len + 1;

			if (size && total + n <= size) {
				memcpy(buf + total, prefix, plen);
				memcpy(buf + total + plen, e->name, e->name_len);
				buf[total + n - 1] = 0;
			}
			total += n;
		}
	}
	pthread_rwlock_unlock(&ip->lock);
	if (ret)
		return ret;
	if (size && total > size)
		return -ERANGE;
	return (int)total;
}

/*
 * Build the new block: every entry but (index, name), then the new value when given.  Returns the
 * new image (caller frees), NULL with *err on failure.
 */
static struct daxfs_xattr_block *rebuild(struct fs *fs, const struct inode *ip, const struct daxfs_xattr_block *xb,
					 uint8_t index, const char *name, size_t len, const void *value,
					 size_t vlen, int *err)
{
	uint32_t bs = fs_bs(fs);
	struct daxfs_xattr_block *nb = calloc(1, bs);

	if (!nb) {
		*err = -ENOMEM;
		return NULL;
	}
	nb->magic = DAXFS_XATTR_MAGIC;
	nb->ino = ip->ino;
	nb->used = sizeof(*nb);
	struct daxfs_xattr_entry *out = FIRST(nb);
	if (xb) {
		const struct daxfs_xattr_entry *e = FIRST(xb);

		for (uint32_t i = 0; i < xb->count; i++, e = NEXT(e)) {
			if (e->name_index == index && e->name_len == len && memcmp(e->name, name, len) == 0)
				continue;
			size_t n = DAXFS_XATTR_ENTRY_LEN(e->name_len, e->value_len);
			memcpy(out, e, n);
			out = (void *)((char *)out + n);
			nb->used += (uint32_t)n;
			nb->count++;
		}
	}
	if (value) {
		size_t n = DAXFS_XATTR_ENTRY_LEN(len, vlen);

		if (nb->used + n > bs) {
			free(nb);
			*err = -ENOSPC;
			return NULL;
		}
		out->name_index = index;
		out->name_len = (uint8_t)len;
		out->value_len = (uint16_t)vlen;
		memcpy(out->name, name, len);
		memcpy(out->name + len, value, vlen);
		nb->used += (uint32_t)n;
		nb->count++;
	}
	return nb;
}

/* Replace the inode's xattrs with nb (NULL or empty: none), in one transaction. */
static int store(struct fs *fs, struct inode *ip, struct daxfs_xattr_block *nb)
{
	struct sbi *s = &fs->sbi;
	struct tx tx;
	int ret;

	tx_init(&tx, &s->journal);
	if (nb && nb->count == 0)
		nb = NULL;
	if (nb && !ip->d.xattr_blk) {
		struct alloc_req req = { .want = 1, .flags = ALLOC_TOP };
		uint64_t blk, n;

		if ((ret = reclaim_alloc(&fs->reclaim, &req, &blk, &n))) {
			tx_free(&tx);
			return ret;
		}
		sbi_use(s, &tx, blk, 1);
		ip->d.xattr_blk = blk;
		ip->d.blocks++;
	} else if (!nb && ip->d.xattr_blk) {
		sbi_free(s, &tx, ip->d.xattr_blk, 1);
		ip->d.xattr_blk = 0;
		ip->d.blocks--;
	}
	if (nb) {
		nb->crc = csum_xattr(s->seed, ip->ino, nb);
		tx_log(&tx, sbi_block_off(s, ip->d.xattr_blk), nb, nb->used);
	}
	inode_touch(ip, T_CTIME);
	inode_log(fs, &tx, ip);
	return sbi_commit(&fs->sbi, &tx);
}

static int user_xattr_allowed(const struct inode *ip, uint8_t index)
{
	/* As in Linux: user.* attributes only on regular files and directories. */
	if (index == DAXFS_XATTR_USER && !S_ISREG(ip->d.mode) && !S_ISDIR(ip->d.mode))
		return -EPERM;
	return 0;
}

int xattr_set(struct fs *fs, struct inode *ip, const char *name, const void *value, size_t size, int flags)
{
	const char *suffix;
	size_t len;
	uint8_t index;
	int ret = parse_name(name, &index, &suffix, &len);

	if (ret)
		return ret;
	if (flags & ~(XATTR_CREATE | XATTR_REPLACE))
		return -EINVAL;
	if (size > UINT16_MAX)
		return -E2BIG;
	if ((ret = sbi_writable(&fs->sbi)))
		return ret;
	pthread_rwlock_wrlock(&ip->lock);
	if ((ret = user_xattr_allowed(ip, index)))
		goto out;
	const struct daxfs_xattr_block *xb = read_block(fs, ip, &ret);
	if (ret)
		goto out;
	bool exists = xb && find(xb, index, suffix, len);
	if (exists && (flags & XATTR_CREATE)) {
		ret = -EEXIST;
		goto out;
	}
	if (!exists && (flags & XATTR_REPLACE)) {
		ret = -ENODATA;
		goto out;
	}
	struct daxfs_xattr_block *nb = rebuild(fs, ip, xb, index, suffix, len, value ? value : "", size, &ret);
	if (nb) {
		ret = store(fs, ip, nb);
		free(nb);
	}
out:
	pthread_rwlock_unlock(&ip->lock);
	return ret;
}

int xattr_remove(struct fs *fs, struct inode *ip, const char *name)
{
	const char *suffix;
	size_t len;
	uint8_t index;
	int ret = parse_name(name, &index, &suffix, &len);

	if (ret)
		return ret;
	if ((ret = sbi_writable(&fs->sbi)))
		return ret;
	pthread_rwlock_wrlock(&ip->lock);
	const struct daxfs_xattr_block *xb = read_block(fs, ip, &ret);
	if (ret)
		goto out;
	if (!xb || !find(xb, index, suffix, len)) {
		ret = -ENODATA;
		goto out;
	}
	struct daxfs_xattr_block *nb = rebuild(fs, ip, xb, index, suffix, len, NULL, 0, &ret);
	if (nb) {
		ret = store(fs, ip, nb);
		free(nb);
	}
out:
	pthread_rwlock_unlock(&ip->lock);
	return ret;
}

void xattr_free_all(struct fs *fs, struct tx *tx, struct inode *ip)
{
	if (ip->d.xattr_blk) {
		sbi_free(&fs->sbi, tx, ip->d.xattr_blk, 1);
		ip->d.xattr_blk = 0;
		ip->d.blocks--;
	}
}
