/* SPDX-License-Identifier: MIT */
/*
 * The media: an image file, /dev/daxN.M or /dev/pmemN mapped into the address space with libpmem.
 * Every store that must become durable goes through here: copy or zero with non-temporal stores,
 * flush, drain.  On real pmem a flush is a cache-line write-back and a drain a store fence; elsewhere
 * (an image in /dev/shm, a block device) a flush queues an msync and a drain performs it.  The choice
 * is made once, when the media is opened.
 *
 * Crash-point injection: with DAXFS_CRASH_AT=N in the environment the process kills itself with
 * SIGKILL on entering the N-th drain, so tests can stop the file system at every durability point.
 * DAXFS_CRASH_TORN=all also drops every store since the previous drain before dying (on a real
 * device they may not have reached the media); DAXFS_CRASH_TORN=random:SEED drops each 64-byte
 * line of them with probability 1/2, chosen afresh for every SEED (plain "random" is seed 0).  The
 * torn modes keep an undo log of the stores between drains and assume the crashing test writes from
 * one thread.  With neither variable set none of this costs more than a predicted branch.
 */
#ifndef DAXFS_MEDIA_H
#define DAXFS_MEDIA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum media_kind { MEDIA_FILE, MEDIA_DEVDAX, MEDIA_BLOCKDEV };

#define MEDIA_TORN_ALL		1
#define MEDIA_TORN_RANDOM	2
struct undo;

struct media {
	char *path;
	char *base;		/* the mapping */
	uint64_t size;		/* bytes mapped */
	int fd;			/* held open, with an exclusive flock while mounted */
	enum media_kind kind;
	bool is_pmem;		/* flush with cache write-back (true) or msync (false) */
	bool readonly;
	bool private_map;	/* copy-on-write: stores never reach the image */
	bool in_use;		/* a private map of an image a daemon holds: a snapshot, maybe mid-change */
	uint64_t crash_at;	/* drain number to die at, 0 = never */
	uint64_t drains;	/* drains so far (atomic) */
	int torn;		/* 0, MEDIA_TORN_ALL or MEDIA_TORN_RANDOM */
	uint64_t torn_seed;	/* the random tear's xorshift state, never 0 */
	struct undo *undo;	/* stores since the last drain, newest first */
};

#define MEDIA_RDONLY	0x1	/* map read-only */
#define MEDIA_EXCL	0x2	/* fail with EBUSY if another process holds the image (a mounted daemon) */
#define MEDIA_PRIVATE	0x4	/* map copy-on-write: the process may write, the image never changes */
#define MEDIA_NOLOCK	0x8	/* ignore the daemon's lock (mkfs -f) */

/* Open and map `path`.  On failure returns -errno and writes a message to err. */
int media_open(struct media *m, const char *path, int flags, char *err, size_t errlen);
void media_close(struct media *m);

/* Size in bytes of a regular file or device, without mapping it. */
int media_probe_size(const char *path, uint64_t *size, enum media_kind *kind);

static inline void *media_ptr(const struct media *m, uint64_t off)
{
	return m->base + off;
}

static inline uint64_t media_off(const struct media *m, const void *p)
{
	return (uint64_t)((const char *)p - m->base);
}

/* Write back the cache lines (pmem) or queue the pages for msync (otherwise). */
void media_flush(struct media *m, const void *addr, size_t len);
/* Make everything flushed so far by this thread durable and ordered before later stores. */
void media_drain(struct media *m);

static inline void media_persist(struct media *m, const void *addr, size_t len)
{
	media_flush(m, addr, len);
	media_drain(m);
}

/* Copy or fill with non-temporal stores and flush; durable at the next media_drain. */
void media_copy(struct media *m, void *dst, const void *src, size_t len);
void media_fill(struct media *m, void *dst, int c, size_t len);

#endif
