/* SPDX-License-Identifier: MIT */
/* Helpers shared by the command-line tools. */
#ifndef DAXFS_TOOLUTIL_H
#define DAXFS_TOOLUTIL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

__attribute__((noreturn, format(printf, 1, 2))) void die(const char *fmt, ...);
__attribute__((noreturn, format(printf, 2, 3))) void die_usage(const char *prog, const char *fmt, ...);
/* "4096", "64K", "1M", "2G", "1T": binary multiples. */
int parse_size(const char *s, uint64_t *out);
void format_uuid(const uint8_t uuid[16], char out[37]);
/* s as a JSON string literal (quotes included, '"', '\\' and control characters escaped) on f. */
void json_str(FILE *f, const char *s);

/*
 * A progress line on stderr for long work, as mkfs.ext4 and e2fsck -C show: "WHAT:  45%", redrawn
 * when the percentage changes and erased when the work is done, so nothing of it stays on the
 * screen.  Shown only when stderr is a terminal, and only for jobs of at least min_total units.
 */
struct progress {
	bool on;
	uint64_t min_total;
	int shown;		/* the percentage on the screen, -1 when the line is down */
	int len;		/* its length */
};

void progress_init(struct progress *p, bool wanted, uint64_t min_total);
/* A callback for super_format and check_image: what == NULL takes the line down. */
void progress_update(void *progress, const char *what, uint64_t done, uint64_t total);

#endif
