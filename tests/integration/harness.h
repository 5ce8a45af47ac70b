/* SPDX-License-Identifier: MIT */
/*
 * Integration-test harness: format an image in /dev/shm, mount it with the daxfs daemon in a
 * temporary directory, and clean everything up whatever happens.
 *
 * h_main() forks: the child runs the cmocka groups, the parent (a subreaper) waits for it and then
 * unmounts, kills and deletes whatever the child registered, even if the child crashed or a test
 * hung and was killed.
 */
#ifndef DAXFS_HARNESS_H
#define DAXFS_HARNESS_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <sys/types.h>

#include <cmocka.h>

struct mnt {
	char dir[256];		/* mount point */
	char image[256];	/* image file */
	pid_t daemon;		/* the daemon, running in the foreground, our child */
};

/*
 * Run `fn` (which calls cmocka) under the supervisor; returns the exit code for main: 77 (skipped)
 * without running it when this machine cannot mount FUSE file systems.  DAXFS_TEST_FILTER=PATTERN
 * in the environment runs only the tests whose names match (cmocka's wildcards).
 */
int h_main(int (*fn)(void));

/* A fresh, unique image path and mount point (registered for cleanup). */
void h_init(struct mnt *m, const char *name);
/* mkfs.daxfs IMAGE with extra arguments ("-s 256M -N 1000"); returns its exit status. */
int h_mkfs(struct mnt *m, const char *args);
/* Start the daemon on the image with extra options ("-o cache=page"); 0 once mounted, -1 if it failed. */
int h_mount(struct mnt *m, const char *opts);
/* Unmount and wait for the daemon; returns its exit status (0 when it exited cleanly). */
int h_umount(struct mnt *m);
/*
 * kill -9 the daemon and wait for it.  The dead mount stays attached: every call on it fails
 * (ENOTCONN).  Detached, its path would lead to the empty directory under it, and a process still
 * working there would carry on in /tmp.  Stop such processes, then h_crash to detach.
 */
void h_kill(struct mnt *m);
/* kill -9 the daemon (if h_kill has not) and detach the dead mount. */
void h_crash(struct mnt *m);
/* Remove the image. */
void h_destroy(struct mnt *m);
/*
 * A cmocka group fixture: umask 022, a fresh image (mkfs_args), mounted (opts).  0, or -1 when the
 * group cannot run.  h_group_down unmounts if still mounted and deletes the image.
 */
int h_group_up(struct mnt *m, const char *name, const char *mkfs_args, const char *opts);
int h_group_down(struct mnt *m);
/* Run a shell command with output captured into a buffer; returns the exit status. */
int h_run(char *out, size_t outlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Path inside the mount: a rotating set of static buffers. */
const char *P(const struct mnt *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

const char *h_daxfs_bin(void);
const char *h_mkfs_bin(void);
const char *h_fsck_bin(void);
/* DAXFS_TEST_TRANSPORT: "uring" or "dev" adds -o transport= to every mount; "" (unset) adds nothing. */
const char *h_transport(void);
const char *h_daxfsctl_bin(void);
const char *h_daxfs_pin_bin(void);

/* Assert a call failed with the given errno. */
#define assert_errno(call, err)                                                                  \
	do {                                                                                     \
		errno = 0;                                                                       \
		long __r = (long)(call);                                                         \
		if (__r != -1 || errno != (err))                                                 \
			fail_msg("%s: expected errno %d (%s), got return %ld errno %d (%s)", #call, \
				 (err), strerror(err), __r, errno, strerror(errno));              \
	} while (0)

#define assert_ok(call)                                                                          \
	do {                                                                                     \
		errno = 0;                                                                       \
		long __r = (long)(call);                                                         \
		if (__r < 0)                                                                     \
			fail_msg("%s failed: %s", #call, strerror(errno));                         \
	} while (0)

#endif
