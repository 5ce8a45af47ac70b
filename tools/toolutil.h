/* SPDX-License-Identifier: MIT */
/* Helpers shared by the command-line tools. */
#ifndef DAXFS_TOOLUTIL_H
#define DAXFS_TOOLUTIL_H

#include <stdint.h>

__attribute__((noreturn, format(printf, 1, 2))) void die(const char *fmt, ...);
__attribute__((noreturn, format(printf, 2, 3))) void die_usage(const char *prog, const char *fmt, ...);
/* "4096", "64K", "1M", "2G", "1T": binary multiples. */
int parse_size(const char *s, uint64_t *out);
void format_uuid(const uint8_t uuid[16], char out[37]);

#endif
