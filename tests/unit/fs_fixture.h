/* SPDX-License-Identifier: MIT */
/*
 * A mounted file system for the unit programs of the layers from the inodes up (inode, emap, file,
 * dir, xattr, orphan, namei, mount): the fixture formats a scratch image in /dev/shm and mounts it
 * with mount_open (no FUSE, no worker threads), and remount() checks what reached the media.  The
 * helpers fail the running test on any unexpected error.  Implemented in fs_fixture.c.
 */
#ifndef DAXFS_UNIT_FS_FIXTURE_H
#define DAXFS_UNIT_FS_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "daxfs/format.h"
#include "unit_common.h"
#include "file.h"
#include "inode.h"
#include "mount.h"
#include "namei.h"

#define BS 4096u
#define ROOT DAXFS_ROOT_INO

extern const struct cred root_cred;

struct fixture {
	struct image img;
	struct fs *fs;
};

/* Format an image of `bytes` (p NULL: mkfs defaults) and mount it: the setup of every mounted fixture. */
int mount_fixture(void **state, const char *name, uint64_t bytes, const struct mkfs_params *p);
/* The default fixture: 256 MiB with 32768 inodes (room for a 20k-entry directory). */
int setup(void **state);
/* Unmount (if mounted) and remove the image. */
int teardown(void **state);
/* Unmount cleanly and mount again: everything then comes from the media. */
void remount(struct fixture *f);

/* Drop the lookup reference an entry reply carries, as the kernel eventually does. */
void forget(struct fs *fs, uint64_t ino);
/* Create a regular file (0644) and forget its lookup reference; returns its inode number. */
uint64_t mkfile(struct fs *fs, uint64_t parent, const char *name);
/* Create a directory (0755), keeping its lookup reference as the dentry cache would. */
uint64_t mkdir_(struct fs *fs, uint64_t parent, const char *name);
uint64_t lookup(struct fs *fs, uint64_t parent, const char *name);
/* Open O_RDWR (no policy op: a truncate that must wait waits here). */
struct inode *openi(struct fs *fs, uint64_t ino);
void closei(struct fs *fs, struct inode *ip);
/* Write exactly len bytes at off. */
void wr(struct fs *fs, struct inode *ip, uint64_t off, const void *buf, size_t len);
/* Read up to len bytes at off; returns the count (short at EOF). */
size_t rd(struct fs *fs, struct inode *ip, uint64_t off, void *buf, size_t len);
struct stat stat_of(struct fs *fs, uint64_t ino);
/* statfs: free blocks and free inodes. */
uint64_t bfree(struct fs *fs);
uint64_t ffree(struct fs *fs);
/* Contents of block lblk of a test file: differs per block and per version (tag). */
void block_pattern(char *buf, uint64_t lblk, unsigned tag);
bool all_zero(const char *p, size_t n);

/* Directory listings. */
struct names {
	char (*name)[64];
	uint64_t *ino;
	size_t n, cap;
	size_t limit;		/* stop (without consuming) after this many in one call; 0 = no limit */
	size_t this_call;
	uint64_t next;		/* cookie after the last consumed entry */
};

/* A dir_emit_fn that appends to a struct names. */
int collect(void *arg, const char *name, size_t len, uint64_t ino, uint8_t type, uint64_t next);
/* All entries of a directory; with chunk > 0, in several calls resumed from cookies. */
void list_dir(struct fs *fs, uint64_t dino, size_t chunk, struct names *nm);
void free_names(struct names *nm);

#endif
