/* SPDX-License-Identifier: MIT */
/*
 * The corruption detector: find every tagged unit (struct daxfs_tag, what devices write) in the
 * files of a daxfs mount that its source pin never covered at the time it was written.
 *
 * The structural rule: a tag in file F at offset O is legitimate iff tag.ino is F's inode number,
 * tag.file_off is O and tag.media_off is where F's block at O lives now (learnt from a read pin on
 * F).  A unit that breaks it is a device write that landed in blocks its pin no longer held: they
 * were freed and reused.  (Copying tagged data between files by hand breaks it too.)
 *
 * The trace rules catch what the structural rule cannot: a write that came after its pin lost the
 * block when the same block came back to the same file at the same offset.  With the daemon's event
 * trace (-o trace=FILE, daxfsctl trace), a structurally legitimate unit is stray when it was posted
 * (tag.time_ns) after
 *   - an "unsafe_free" of its media range that came after its pin was taken, or
 *   - a "reclaim" of its media range that came after its pin was taken, or
 *   - its pin's "unpin", unless that was the revocation of a pin not DAXFS_PIN_REVOCABLE (whose
 *     blocks stay out of reuse until its file is released), or
 *   - an "invalidate_ack" of its file range by its pin, with the generation the pin had then (it
 *     did not refault first).
 * A request posted before such a record and written after it is beyond the trace rules (tags carry
 * the time a request was posted); the structural rule still sees it if the block moved.
 */
#ifndef DAXFS_DETECT_H
#define DAXFS_DETECT_H

#include <stdint.h>

#include "daxfs/ioctl.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Why a unit is stray. */
#define DAXFS_STRAY_WRONG_FILE		1	/* the tag names another file */
#define DAXFS_STRAY_WRONG_OFFSET	2	/* meant for another offset of this file */
#define DAXFS_STRAY_WRONG_MEDIA		3	/* written at another media offset than this block's */
#define DAXFS_STRAY_AFTER_FREE		4	/* trace: posted after an unsafe free of its block */
#define DAXFS_STRAY_AFTER_RECLAIM	5	/* trace: posted after its block was reclaimed */
#define DAXFS_STRAY_AFTER_UNPIN		6	/* trace: posted after its pin let go of its blocks */
#define DAXFS_STRAY_AFTER_INVALIDATE	7	/* trace: posted through a range its pin had given up */

/* A run of consecutive stray units of one file from one pin, for one reason. */
struct daxfs_stray {
	char *path;			/* the file they were found in */
	uint64_t ino;			/* its inode number */
	uint64_t file_off;		/* where the run starts in that file */
	uint64_t len;			/* bytes */
	uint64_t media_off;		/* where that file byte lives on the media now (DAXFS_MEDIA_ZERO: unknown) */
	struct daxfs_tag tag;		/* the first unit's tag: source pin, inode, offsets, seq, gen, time */
	uint64_t seq_min, seq_max;	/* over the run */
	uint32_t reason;		/* DAXFS_STRAY_* */
	uint32_t pin_state;		/* DAXFS_PIN_ACTIVE, _REVOKING, _REVOKED, or 0: gone */
	int32_t pin_pid;		/* its holder, when still registered */
	uint32_t reserved;
	uint64_t record_ns;		/* trace rules: the time of the record that makes it stray */
};

struct daxfs_scan_opts {
	const char *trace;		/* the daemon's event trace (JSON lines), or NULL */
	uint32_t max_strays;		/* runs kept in the report (default 10000; the counts go on) */
};

struct daxfs_scan_report {
	uint64_t files;			/* regular files read */
	uint64_t bytes;			/* bytes read */
	uint64_t tags;			/* units holding a tag */
	uint64_t legit;			/* of those, legitimate */
	uint64_t stray;			/* of those, stray */
	uint64_t trace_records;		/* records of the trace used */
	uint64_t errors;		/* files or ranges that could not be read or pinned */
	uint32_t nstrays;		/* runs in strays[] */
	uint32_t truncated;		/* 1 when runs were left out (max_strays) */
	struct daxfs_stray *strays;
	char first_error[256];
};

/*
 * Scan every regular file under path (a daxfs mount point, or a directory or file on one; other
 * mounts below it are not entered).  0 with the report (stray units or not), or -errno: ENOTTY
 * not on daxfs, or the trace cannot be read (first_error says why).
 */
int daxfs_scan(const char *path, const struct daxfs_scan_opts *opts, struct daxfs_scan_report *rep);
void daxfs_scan_free(struct daxfs_scan_report *rep);
const char *daxfs_stray_str(uint32_t reason);

#ifdef __cplusplus
}
#endif

#endif
