/* SPDX-License-Identifier: MIT */
/*
 * Can this process mount a FUSE file system here?  Tests that mount skip (exit 77, meson's "skipped")
 * when it cannot, instead of failing: no /dev/fuse in a container, no privilege to mount.
 */
#ifndef DAXFS_FUSE_PROBE_H
#define DAXFS_FUSE_PROBE_H

#include <stddef.h>

#define EXIT_SKIP 77

/* 0 when mounting works; -1 with the reason in `why`. */
int fuse_probe(char *why, size_t len);

#endif
