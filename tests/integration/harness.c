/* SPDX-License-Identifier: MIT */
#include "harness.h"
#include "fuse_probe.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define FUSE_SUPER_MAGIC 0x65735546

static char workdir[128];	/* registry and mount points live here */
static int registry = -1;	/* "M path" mounts, "I path" images, "P pid" daemons */
static int counter;

/*
 * Bounds on waiting for the daemon: generous, since only a hang may reach them (a loaded 2-CPU VM,
 * ASan, two test programs at once), and measured on the clock, not in polls of some length.
 */
#define MOUNT_WAIT_S 60		/* the daemon to validate, recover and mount the image */
#define UMOUNT_BUSY_S 30	/* the mount to stop being busy (a child's descriptors closing) */
#define EXIT_WAIT_S 60		/* the daemon to exit after umount (drain reclaim, write back) */

static uint64_t mono_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

static const char *env_or(const char *name, const char *def)
{
	const char *v = getenv(name);

	return v && *v ? v : def;
}

const char *h_daxfs_bin(void)
{
	return env_or("DAXFS_BIN", "build/daxfs/daxfs");
}

const char *h_mkfs_bin(void)
{
	return env_or("MKFS_BIN", "build/tools/mkfs.daxfs");
}

const char *h_fsck_bin(void)
{
	return env_or("FSCK_BIN", "build/tools/fsck.daxfs");
}

const char *h_transport(void)
{
	return env_or("DAXFS_TEST_TRANSPORT", "");
}

/* Can the daemon be told -o transport=uring here?  0, or -1 with the reason. */
static int uring_available(char *why, size_t len)
{
	const char *param = "/sys/module/fuse/parameters/enable_uring";
	FILE *f = fopen(param, "r");
	int c = f ? fgetc(f) : EOF;

	if (f)
		fclose(f);
	if (!f)
		snprintf(why, len, "this kernel has no FUSE over io_uring (no %s)", param);
	else if (c != 'Y')
		snprintf(why, len, "FUSE over io_uring is off (%s is N; scripts/test.sh turns it on for its "
			 "io_uring pass)", param);
	return f && c == 'Y' ? 0 : -1;
}

const char *h_daxfsctl_bin(void)
{
	return env_or("DAXFSCTL_BIN", "build/tools/daxfsctl");
}

const char *h_daxfs_pin_bin(void)
{
	return env_or("DAXFS_PIN_BIN", "build/tools/daxfs-pin");
}

static void reg(char kind, const char *what)
{
	dprintf(registry, "%c %s\n", kind, what);
}

const char *P(const struct mnt *m, const char *fmt, ...)
{
	static __thread char bufs[8][PATH_MAX];
	static __thread int next;
	char *b = bufs[next++ % 8];
	int n = snprintf(b, PATH_MAX, "%s/", m->dir);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(b + n, PATH_MAX - (size_t)n, fmt, ap);
	va_end(ap);
	return b;
}

void h_init(struct mnt *m, const char *name)
{
	memset(m, 0, sizeof(*m));
	snprintf(m->dir, sizeof(m->dir), "%s/mnt-%s-%d", workdir, name, counter);
	snprintf(m->image, sizeof(m->image), "/dev/shm/daxfs-test-%d-%s-%d.img", getpid(), name, counter);
	counter++;
	if (mkdir(m->dir, 0755) < 0 && errno != EEXIST)
		fail_msg("mkdir %s: %s", m->dir, strerror(errno));
	reg('I', m->image);
}

int h_run(char *out, size_t outlen, const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	FILE *f = popen(cmd, "r");
	if (!f)
		return -1;
	size_t n = 0;
	if (out && outlen) {
		n = fread(out, 1, outlen - 1, f);
		out[n] = 0;
	}
	char sink[4096];
	while (fread(sink, 1, sizeof(sink), f) > 0)
		;
	int st = pclose(f);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int h_mkfs(struct mnt *m, const char *args)
{
	char out[4096];
	int rc = h_run(out, sizeof(out), "%s -q %s %s 2>&1", h_mkfs_bin(), args ? args : "", m->image);

	if (rc)
		print_message("mkfs.daxfs failed (%d): %s\n", rc, out);
	return rc;
}

static bool mounted(const char *dir)
{
	struct statfs sf;

	return statfs(dir, &sf) == 0 && sf.f_type == FUSE_SUPER_MAGIC;
}

int h_mount(struct mnt *m, const char *opts)
{
	char cmd[1024];
	pid_t pid;

	/* DAXFS_TEST_TRANSPORT=uring|dev runs every mount of the suite over that transport. */
	char topt[64] = "";
	if (*h_transport())
		snprintf(topt, sizeof(topt), "-o transport=%s", h_transport());
	snprintf(cmd, sizeof(cmd), "exec %s -f %s %s %s %s", h_daxfs_bin(), topt, opts ? opts : "", m->image, m->dir);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		/* The daemon must not inherit the test's descriptors: they would pin other mounts. */
		close_range(3, ~0U, 0);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	char p[32];
	snprintf(p, sizeof(p), "%d", pid);
	reg('P', p);
	reg('M', m->dir);
	m->daemon = pid;
	for (uint64_t deadline = mono_ms() + MOUNT_WAIT_S * 1000; mono_ms() < deadline;) {
		int st;

		if (mounted(m->dir))
			return 0;
		if (waitpid(pid, &st, WNOHANG) == pid) {
			m->daemon = 0;
			return -1;
		}
		usleep(2000);
	}
	print_message("daemon did not mount %s within %d s\n", m->dir, MOUNT_WAIT_S);
	h_crash(m);
	return -1;
}

static int wait_daemon(struct mnt *m, int seconds)
{
	int st;

	for (uint64_t deadline = mono_ms() + (uint64_t)seconds * 1000;;) {
		pid_t r = waitpid(m->daemon, &st, WNOHANG);

		if (r == m->daemon) {
			m->daemon = 0;
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		}
		if (r < 0)
			return -1;
		if (mono_ms() > deadline)
			return -2;
		usleep(2000);
	}
}

int h_umount(struct mnt *m)
{
	if (!m->daemon)
		return -1;
	for (uint64_t deadline = mono_ms() + UMOUNT_BUSY_S * 1000; umount2(m->dir, 0) < 0;) {
		if (errno != EBUSY || mono_ms() > deadline) {
			print_message("umount %s: %s\n", m->dir, strerror(errno));
			umount2(m->dir, MNT_DETACH);
			break;
		}
		usleep(2000);
	}
	int rc = wait_daemon(m, EXIT_WAIT_S);
	if (rc == -2) {
		print_message("daemon %d did not exit after umount\n", m->daemon);
		kill(m->daemon, SIGKILL);
		wait_daemon(m, EXIT_WAIT_S);
	}
	return rc;
}

void h_kill(struct mnt *m)
{
	if (m->daemon) {
		kill(m->daemon, SIGKILL);
		wait_daemon(m, EXIT_WAIT_S);
	}
}

void h_crash(struct mnt *m)
{
	h_kill(m);
	umount2(m->dir, MNT_DETACH);
}

void h_destroy(struct mnt *m)
{
	unlink(m->image);
}

int h_group_up(struct mnt *m, const char *name, const char *mkfs_args, const char *opts)
{
	umask(022);
	h_init(m, name);
	return h_mkfs(m, mkfs_args) || h_mount(m, opts) ? -1 : 0;
}

int h_group_down(struct mnt *m)
{
	if (m->daemon)
		h_umount(m);
	h_destroy(m);
	return 0;
}

/* The supervisor: undo whatever the test process left behind. */
static void cleanup(void)
{
	char path[PATH_MAX + 8];
	FILE *f;

	snprintf(path, sizeof(path), "%s/registry", workdir);
	f = fopen(path, "r");
	if (f) {
		char line[PATH_MAX + 8];

		while (fgets(line, sizeof(line), f)) {
			line[strcspn(line, "\n")] = 0;
			if (line[0] == 'P')
				kill(atoi(line + 2), SIGKILL);
		}
		rewind(f);
		while (fgets(line, sizeof(line), f)) {
			line[strcspn(line, "\n")] = 0;
			if (line[0] == 'M') {
				umount2(line + 2, MNT_DETACH);
				rmdir(line + 2);
			} else if (line[0] == 'I') {
				unlink(line + 2);
			}
		}
		fclose(f);
	}
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
	unlink(path);
	rmdir(workdir);
}

int h_main(int (*fn)(void))
{
	char path[PATH_MAX], why[512];
	int st;

	if (fuse_probe(why, sizeof(why))) {
		fprintf(stderr, "SKIP: these tests mount daxfs, and %s\n", why);
		return EXIT_SKIP;
	}
	if (strcmp(h_transport(), "uring") == 0 && uring_available(why, sizeof(why))) {
		fprintf(stderr, "SKIP: DAXFS_TEST_TRANSPORT=uring, and %s\n", why);
		return EXIT_SKIP;
	}
	snprintf(workdir, sizeof(workdir), "/tmp/daxfs-test-XXXXXX");
	if (!mkdtemp(workdir)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(path, sizeof(path), "%s/registry", workdir);
	registry = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (registry < 0) {
		perror(path);
		return 1;
	}
	/* While working on a test: run only the tests whose names match this pattern. */
	if (getenv("DAXFS_TEST_FILTER"))
		cmocka_set_test_filter(getenv("DAXFS_TEST_FILTER"));
	/* Daemons orphaned by a crashed test process come back to us, so we can reap them. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	pid_t child = fork();
	if (child == 0)
		_exit(fn());
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	while (waitpid(child, &st, 0) < 0 && errno == EINTR)
		;
	cleanup();
	if (WIFSIGNALED(st)) {
		fprintf(stderr, "test process killed by signal %d\n", WTERMSIG(st));
		return 1;
	}
	return WEXITSTATUS(st);
}
