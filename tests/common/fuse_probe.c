/* SPDX-License-Identifier: MIT */
#include "fuse_probe.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

/* An unprivileged daemon mounts through fusermount3, which must be setuid root to do it. */
static bool setuid_fusermount(void)
{
	const char *path = getenv("PATH");
	char *dirs = strdup(path ? path : "/usr/bin:/bin"), *save = NULL;
	bool found = false;

	for (char *d = strtok_r(dirs, ":", &save); d && !found; d = strtok_r(NULL, ":", &save)) {
		char p[4096];
		struct stat st;

		snprintf(p, sizeof(p), "%s/fusermount3", d);
		found = stat(p, &st) == 0 && st.st_uid == 0 && (st.st_mode & S_ISUID);
	}
	free(dirs);
	return found;
}

/*
 * Mount a FUSE file system nobody serves, on a scratch directory, and take it down again at once:
 * exactly what the daemon needs from the kernel, without depending on the daemon working.
 */
int fuse_probe(char *why, size_t len)
{
	char dir[] = "/tmp/daxfs-probe-XXXXXX", opts[128];
	int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC), ret = 0;

	if (fd < 0) {
		snprintf(why, len, "cannot open /dev/fuse: %s (no FUSE in this kernel or container?)",
			 strerror(errno));
		return -1;
	}
	if (!mkdtemp(dir)) {
		snprintf(why, len, "mkdtemp: %s", strerror(errno));
		close(fd);
		return -1;
	}
	snprintf(opts, sizeof(opts), "fd=%d,rootmode=40000,user_id=%u,group_id=%u", fd, getuid(), getgid());
	if (mount("daxfs-probe", dir, "fuse", MS_NOSUID | MS_NODEV, opts) == 0) {
		umount2(dir, MNT_DETACH);
	} else if (errno == EPERM && geteuid() != 0 && setuid_fusermount()) {
		/* Not allowed to mount(2) directly, but the daemon will go through fusermount3. */
	} else {
		snprintf(why, len, "cannot mount a FUSE file system: %s%s", strerror(errno),
			 errno == EPERM ? " (not root, and no setuid fusermount3)" : "");
		ret = -1;
	}
	close(fd);
	rmdir(dir);
	return ret;
}
