/* SPDX-License-Identifier: MIT */
/*
 * Directories: files of checksummed variable-length records, indexed in DRAM by a hash table.
 * The caller holds the directory's lock (read for lookup, entries and iterate; write for changes,
 * which also need fs->ns_lock).
 */
#ifndef DAXFS_DIR_H
#define DAXFS_DIR_H

#include <stddef.h>
#include <stdint.h>

struct fs;
struct inode;
struct tx;
struct dir_index;

/* Build the index of a directory (inode_get does it).  0, -EIO on a corrupt block, -ENOMEM. */
int dir_load(struct fs *fs, struct inode *dir);
void dir_destroy(struct dir_index *d);
/* 0 with the entry's inode and type, or -ENOENT. */
int dir_lookup(struct inode *dir, const char *name, size_t len, uint64_t *ino, uint8_t *type);
/* Add an entry in tx.  0, -ENOSPC, -EFBIG (the directory is full), -ENOMEM. */
int dir_add(struct fs *fs, struct tx *tx, struct inode *dir, const char *name, size_t len, uint64_t ino,
	    uint8_t type);
/* Remove an entry in tx.  0 or -ENOENT. */
int dir_remove(struct fs *fs, struct tx *tx, struct inode *dir, const char *name, size_t len);
/* Point an existing entry at another inode (rename over).  0 or -ENOENT. */
int dir_replace(struct fs *fs, struct tx *tx, struct inode *dir, const char *name, size_t len, uint64_t ino,
		uint8_t type);
/* Entries, "." and ".." not counted. */
uint64_t dir_entries(const struct inode *dir);
/*
 * Iterate from cookie `pos` (0 = start; "." and ".." included).  `emit` returns non-zero to stop
 * before consuming the entry.  Returns 0.
 */
typedef int (*dir_emit_fn)(void *arg, const char *name, size_t len, uint64_t ino, uint8_t type, uint64_t next);
int dir_iterate(struct fs *fs, struct inode *dir, uint64_t pos, dir_emit_fn emit, void *arg);

#endif
