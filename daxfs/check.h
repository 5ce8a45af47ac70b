/* SPDX-License-Identifier: MIT */
/*
 * The checker behind fsck.daxfs: walks every structure of an image, cross-checks block ownership,
 * link counts and the bitmaps, and repairs what it safely can.
 */
#ifndef DAXFS_CHECK_H
#define DAXFS_CHECK_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

enum check_mode {
	CHECK_READONLY,	/* -n: change nothing; the journal is replayed in a private copy */
	CHECK_REPAIR,	/* -y: repair everything that can be repaired safely */
	CHECK_PREEN,	/* -p: the same, quietly */
};

struct check_opts {
	enum check_mode mode;
	bool verbose;
	/*
	 * Progress of the passes over large images (2^24 blocks and more), for a display: `what` names
	 * the pass and `done` of `total` is how far it is; what == NULL means findings are about to be
	 * printed (take the display down).  NULL: no progress reports.
	 */
	void (*progress)(void *arg, const char *what, uint64_t done, uint64_t total);
	void *progress_arg;
	FILE *out;		/* findings; NULL = stdout */
};

/* fsck(8) exit codes */
#define FSCK_OK		0
#define FSCK_FIXED	1
#define FSCK_UNFIXED	4
#define FSCK_FAILED	8
#define FSCK_USAGE	16

struct check_result {
	uint64_t errors;	/* problems found in the last pass */
	uint64_t fixed;		/* problems repaired */
	uint64_t inodes;	/* inodes in use */
	uint64_t dirs;
	uint64_t blocks_used;	/* data-area blocks owned by something */
	uint64_t orphans;	/* inodes waiting to be freed */
	uint64_t busy;		/* blocks held by busy extents */
	int journal_records;	/* replayed (in memory with -n) */
	bool was_dirty;
	int exit_code;		/* FSCK_* */
};

int check_image(const char *path, const struct check_opts *o, struct check_result *r);

#endif
