/* SPDX-License-Identifier: MIT */
/*
 * A mounted file system for the unit programs of the layers from the inodes up (inode, emap, file,
 * dir, xattr, orphan, namei, mount): the fixture formats a scratch image in /dev/shm and mounts it
 * with mount_open (no FUSE, no worker threads), and remount() checks what reached the media.  The
 * fx_* helpers serve the programs above the files (policy, policy_api, dma, reclaim): a mount with
 * its workers, files, pins.  Every helper fails the running test on an unexpected error.
 * Implemented in fs_fixture.c.
 */
#ifndef DAXFS_UNIT_FS_FIXTURE_H
#define DAXFS_UNIT_FS_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "daxfs/format.h"
#include "daxfs/ioctl.h"
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

/* ---- pins and policies: a mounted file system with its workers running ---- */

/* mount_open and mount_start with cfg (NULL: defaults); fails the test on error. */
struct fs *fx_mount(const char *image, const struct mount_config *cfg);
/* A new file in the root of `blocks` blocks of `byte`, written in 1 MiB requests; returned open. */
struct inode *fx_file(struct fs *fs, const char *name, uint64_t blocks, int byte);
/* The arguments of a pin by root from this process on a file open for writing. */
struct policy_pin_args fx_pin_args(uint64_t off, uint64_t len, uint32_t flags);
/* Pin bytes [off, off + len) of ip for o; returns the pin id (fails the test on error). */
uint64_t fx_pin(struct fs *fs, struct pin_owner *o, struct inode *ip, uint64_t off, uint64_t len, uint32_t flags);
/* The media byte offset of the first extent of pin id. */
uint64_t fx_pin_media(struct fs *fs, struct pin_owner *o, uint64_t id);
/* Truncate ino to size (op as namei_setattr's); returns namei_setattr's answer. */
int fx_truncate(struct fs *fs, uint64_t ino, uint64_t size, struct policy_op *op);
uint64_t fx_busy_blocks(struct fs *fs);
struct daxfs_ioc_stats fx_stats(struct fs *fs);
/* Wait (up to 10 s) until nothing is busy: reclaim runs on its own thread. */
void fx_wait_reclaimed(struct fs *fs);

#endif
