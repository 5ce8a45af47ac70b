/* SPDX-License-Identifier: MIT */
/*
 * Helpers for the pin / busy-extent / policy integration tests (test_pins.c, test_pins_policy.c):
 * mount bookkeeping, statfs and control-ioctl shorthands, polling with deadlines, filling the file
 * system, and scanning data for DMA pattern units.
 *
 * Everything that can fail a test uses cmocka assertions, so call these from the test thread only.
 */
#ifndef DAXFS_PINS_UTIL_H
#define DAXFS_PINS_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "daxfs/libdaxfs.h"
#include "harness.h"

#define KiB (1024ull)
#define MiB (1024ull * 1024)
#define BS 4096ull		/* block size of every image the tests format */
#define FILL_BYTE 0x5a		/* what the filler file G holds: anything else in it is foreign data */

uint64_t pu_now_ms(void);

/*
 * Seconds a whole test may take before the guard (pu_guard) declares it hung, and milliseconds a
 * test waits for something the daemon must do (a release, reclaim) before failing.  Only hangs may
 * reach them: the machine may be a loaded 2-CPU VM running two test programs, under ASan.
 */
#define PU_TEST_TIMEOUT 120
#define PU_WAIT_MS 30000

/* mkfs -s SIZE and mount with opts (attr_timeout=0 is always added, so stat sees fresh st_blocks). */
void pu_setup(struct mnt *m, const char *name, const char *size, const char *opts);
/*
 * Before an unmount: close() queues FUSE_RELEASE and returns, and an unmount aborts the requests the
 * daemon has not read yet.  The kernel hands requests over in the order they were queued, so once a
 * later synchronous request (a statfs) is answered the earlier releases have been read, and a
 * request read is served before the daemon exits.  (Only while fewer than max_background, 12,
 * background requests are in flight: beyond that the kernel holds releases back and the statfs can
 * overtake them.  The daemon also drops at exit the open files whose release never came.)
 *
 * This orders reading, not serving: the daemon serves on several threads, so the statfs may be
 * answered while a release is still being served.  It proves nothing about a release's effects
 * (pins dropped, blocks freed): poll for those with PU_POLL.
 */
void pu_release_barrier(const struct mnt *m);
/* Unmount (exit status 0 required), fsck -n (exit 0 required), remove the image; disarms the guard. */
void pu_finish(struct mnt *m);
/* fsck -n on the image: exit status; its output in out. */
int pu_fsck(const struct mnt *m, char *out, size_t outlen);

/* A descriptor on the mount's root directory, for the mount-wide ioctls. */
int pu_dirfd(const struct mnt *m);

uint64_t pu_bfree(const struct mnt *m);
struct daxfs_ioc_stats pu_stats(int fd);
uint32_t pu_npins(int fd);
uint32_t pu_nbusy(int fd);
/* Busy extents, malloc'd (*n of them); the caller frees. */
struct daxfs_busy_info *pu_busy(int fd, uint32_t *n);

/* Pin or fail the test; the pin's extents are checked for contiguity in file order. */
struct daxfs_pin pu_pin(int fd, uint64_t off, uint64_t len, uint32_t flags);

/* Byte stream `seed` at file position pos: position-dependent, so misplaced data shows. */
void pu_pat_fill(void *buf, size_t len, uint64_t pos, unsigned seed);
/* Offset of the first byte of buf that differs from the stream, or -1. */
long pu_pat_diff(const void *buf, size_t len, uint64_t pos, unsigned seed);
/* A file (created or truncated) of len bytes of stream seed. */
void pu_write_file(const char *path, uint64_t len, unsigned seed);
/* Does [off, off + len) of the file hold stream seed? */
bool pu_check_file(const char *path, uint64_t off, uint64_t len, unsigned seed);
/* Is [off, off + len) of the file all zero? */
bool pu_file_zero(const char *path, uint64_t off, uint64_t len);
/* Write FILL_BYTE into path (created) until ENOSPC; returns bytes written. */
uint64_t pu_fill(const char *path);

/* Scan a file for DMA tags (any pin) and for bytes other than FILL_BYTE. */
struct scan {
	uint64_t units;		/* pattern units found */
	uint64_t foreign;	/* bytes that are not FILL_BYTE */
	struct daxfs_tag first;		/* the first tag found */
};
struct scan pu_scan(const char *path);
/* Tags with this pin id and sequence number in buf (len a multiple of DAXFS_TAG_UNIT). */
uint64_t pu_count_units(const void *buf, size_t len, uint64_t pin_id, uint64_t seq);

/* Bytes of the image file (the emulated pmem, shared with the daemon's mapping). */
void pu_read_media(const struct mnt *m, uint64_t off, void *buf, size_t len);
bool pu_media_zero(const struct mnt *m, uint64_t off, uint64_t len);

/* Do two lists of media ranges share a byte? (pin extents against pin extents or busy extents) */
bool pu_ext_overlap(const struct daxfs_pin_extent *a, uint32_t na, uint64_t off, uint64_t len);

/* fork(); the child dies with the test process, so a failed test never leaves a holder behind. */
pid_t pu_fork(void);

/*
 * Deadlock guard: if the test is still inside `what` after secs seconds, a watchdog process says so
 * and kills m's daemon, so that every call blocked in it returns an error and the test fails
 * instead of hanging.  secs 0 disarms.  pu_setup arms it for PU_TEST_TIMEOUT seconds; tests arm
 * shorter ones around operations that might deadlock.
 */
void pu_guard(const struct mnt *m, const char *what, unsigned secs);

/* Poll cond every 2 ms until it holds or ms have passed; evaluates to whether it held. */
#define PU_POLL(cond, ms)                                                                        \
	({                                                                                       \
		uint64_t __dl = pu_now_ms() + (ms);                                              \
		bool __ok;                                                                       \
		while (!(__ok = (cond)) && pu_now_ms() < __dl)                                   \
			usleep(2000);                                                            \
		__ok;                                                                            \
	})

#endif
