/* SPDX-License-Identifier: MIT */
/*
 * Read a whole tree through the fs API the way a user would (stat, read the data, readlink, list
 * and get xattrs, readdir and descend), ignoring every error: the hostile-image tests and the fuzz
 * target use it to reach every parser.  Only crashes, hangs and sanitizer reports count there.
 */
#ifndef DAXFS_TREEWALK_H
#define DAXFS_TREEWALK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs.h"
#include "dir.h"
#include "file.h"
#include "inode.h"
#include "namei.h"
#include "policy.h"
#include "xattr.h"

struct treewalk_names {
	char name[512][256];
	int n;
};

static inline int treewalk_collect(void *arg, const char *name, size_t len, uint64_t ino, uint8_t type,
				   uint64_t next)
{
	struct treewalk_names *nm = arg;

	(void)ino;
	(void)type;
	(void)next;
	if (nm->n < 512 && !(len <= 2 && name[0] == '.' && (len == 1 || name[1] == '.')))
		snprintf(nm->name[nm->n++], 256, "%.*s", (int)len, name);
	return 0;
}

/* Touch a byte of every page the reply would copy (into a volatile, so the reads happen). */
static volatile char treewalk_touched;

static inline int treewalk_sink(void *arg, const struct iovec *iov, int n)
{
	(void)arg;
	for (int i = 0; i < n; i++)
		for (size_t j = 0; j < iov[i].iov_len; j += 4096)
			treewalk_touched ^= ((const char *)iov[i].iov_base)[j];
	return 0;
}

/* Walk from ino, reading at most max_bytes of each file and going at most max_depth down. */
static inline void treewalk(struct fs *fs, uint64_t ino, int depth, int max_depth, uint64_t max_bytes)
{
	struct inode *ip;
	struct stat st;
	char buf[4097], list[4096];

	if (depth > max_depth || namei_getattr(fs, ino, &st) || inode_get(fs, ino, &ip))
		return;
	if (S_ISREG(st.st_mode)) {
		for (uint64_t off = 0; off < (uint64_t)st.st_size && off < max_bytes; off += 1 << 20)
			file_read(fs, ip, off, 1 << 20, treewalk_sink, NULL);
		uint64_t res;
		file_lseek(fs, ip, 0, SEEK_HOLE, &res);
	} else if (S_ISLNK(st.st_mode)) {
		namei_readlink(fs, ino, buf, sizeof(buf) - 1);
	}
	int ln = xattr_list(fs, ip, list, sizeof(list));
	for (int off = 0; ln > 0 && off < ln; off += (int)strlen(list + off) + 1)
		xattr_get(fs, ip, list + off, buf, sizeof(buf));
	if (S_ISDIR(st.st_mode)) {
		struct treewalk_names *nm = calloc(1, sizeof(*nm));

		namei_readdir(fs, ip, 0, treewalk_collect, nm);
		for (int i = 0; i < nm->n; i++) {
			struct entry e;

			if (namei_lookup(fs, ino, nm->name[i], &e) == 0) {
				treewalk(fs, e.ino, depth + 1, max_depth, max_bytes);
				inode_forget(fs, e.ino, 1);
			}
		}
		free(nm);
	}
	inode_put(fs, ip);
}

#endif
