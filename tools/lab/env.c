/* SPDX-License-Identifier: MIT */
/*
 * The lab's environment: the programs it runs (mkfs.daxfs, the daemon, fsck.daxfs, the plotter),
 * a formatted image, its mount, and cleaning up whatever a run leaves.
 */
#include "lab.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daxfs/ioctl.h"

#define FUSE_SUPER_MAGIC 0x65735546

static bool executable_at(const char *path)
{
	return access(path, X_OK) == 0;
}

static void pick(char *out, size_t len, const char *env, const char *build, const char *installed, bool in_build)
{
	const char *e = getenv(env);

	snprintf(out, len, "%s", e && *e ? e : in_build ? build : installed);
}

int lab_bins_find(struct lab_bins *b, char *msg, size_t msglen)
{
	char exe[512] = "";
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	exe[n > 0 ? n : 0] = 0;
	/* Run from the build tree, the lab drives that build's programs, not whatever is installed. */
	bool in_build = n > 0 && strcmp(dirname(exe), LAB_BUILD_DIR) == 0;

	pick(b->daemon, sizeof(b->daemon), "DAXFS_BIN", LAB_BUILD_DAEMON, LAB_BINDIR "/daxfs", in_build);
	pick(b->mkfs, sizeof(b->mkfs), "MKFS_BIN", LAB_BUILD_MKFS, LAB_SBINDIR "/mkfs.daxfs", in_build);
	pick(b->fsck, sizeof(b->fsck), "FSCK_BIN", LAB_BUILD_FSCK, LAB_SBINDIR "/fsck.daxfs", in_build);
	pick(b->plot, sizeof(b->plot), "DAXFS_LAB_PLOT", LAB_SOURCE_PLOT, LAB_BINDIR "/daxfs-lab-plot", in_build);
	const char *missing = !executable_at(b->daemon) ? b->daemon : !executable_at(b->mkfs) ? b->mkfs
			      : !executable_at(b->fsck) ? b->fsck : NULL;
	if (missing) {
		snprintf(msg, msglen, "%s: not found or not executable (build daxfs, or set DAXFS_BIN, MKFS_BIN, FSCK_BIN)",
			 missing);
		return -ENOENT;
	}
	return 0;
}

/* Run argv with stdout and stderr into log (or /dev/null); its exit status, or -1. */
static int run_prog(char *const argv[], const char *log)
{
	pid_t pid = fork();
	int st;

	if (pid < 0)
		return -1;
	if (pid == 0) {
		int fd = open(log ? log : "/dev/null", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		close_range(3, ~0U, 0);
		execv(argv[0], argv);
		_exit(127);
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int lab_policy_opts(const char *spec, char *out, size_t len)
{
	const char *colon = strchr(spec, ':');
	size_t nlen = colon ? (size_t)(colon - spec) : strlen(spec);

	if (!nlen || memchr(spec, ',', nlen) || memchr(spec, '=', nlen))
		return -EINVAL;
	int w = colon && colon[1] ? snprintf(out, len, "policy=%.*s,%s", (int)nlen, spec, colon + 1)
				  : snprintf(out, len, "policy=%.*s", (int)nlen, spec);
	return w < 0 || (size_t)w >= len ? -EINVAL : 0;
}

int lab_mkfs(const struct lab_bins *b, const char *image, uint64_t size, char *msg, size_t msglen)
{
	char sz[32];

	snprintf(sz, sizeof(sz), "%llu", (unsigned long long)size);
	char *argv[] = { (char *)b->mkfs, "-q", "-f", "-s", sz, (char *)image, NULL };
	int st = run_prog(argv, NULL);

	if (st) {
		snprintf(msg, msglen, "mkfs.daxfs -s %s %s failed (exit %d)", sz, image, st);
		return -1;
	}
	return 0;
}

static bool serving(const char *dir, int *fd_out)
{
	struct statfs sf;
	struct daxfs_ioc_info info = { .size = sizeof(info) };

	if (statfs(dir, &sf) < 0 || sf.f_type != FUSE_SUPER_MAGIC)
		return false;
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return false;
	if (ioctl(fd, DAXFS_IOC_INFO, &info) < 0) {
		close(fd);
		return false;
	}
	*fd_out = fd;
	return true;
}

/* The last line of the daemon's log, for an error message. */
static void log_tail(const char *log, char *out, size_t len)
{
	FILE *f = fopen(log, "r");
	char line[512];

	out[0] = 0;
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (line[0] == '\n')
			continue;
		size_t n = strnlen(line, len - 1);	/* a long line is cut: it is only a hint */
		memcpy(out, line, n);
		out[n] = 0;
	}
	fclose(f);
	out[strcspn(out, "\n")] = 0;
}

int lab_mount(const struct lab_bins *b, struct lab_mount *m, const char *opts, char *msg, size_t msglen)
{
	m->fd = -1;
	m->mounted = false;
	pid_t pid = fork();

	if (pid < 0) {
		snprintf(msg, msglen, "fork: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		int fd = open(m->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		/* Not the lab's descriptors: they would keep other mounts busy. */
		close_range(3, ~0U, 0);
		/* A run killed outright takes its daemon along: SIGTERM unmounts cleanly. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (opts && *opts)
			execl(b->daemon, b->daemon, "-f", "-o", opts, m->image, m->dir, (char *)NULL);
		else
			execl(b->daemon, b->daemon, "-f", m->image, m->dir, (char *)NULL);
		_exit(127);
	}
	m->daemon = pid;
	uint64_t deadline = lab_now_ns() + 20ull * 1000000000ull;
	while (lab_now_ns() < deadline) {
		int st;

		if (serving(m->dir, &m->fd)) {
			m->mounted = true;
			return 0;
		}
		if (waitpid(pid, &st, WNOHANG) == pid) {
			char tail[400];

			m->daemon = 0;
			log_tail(m->log, tail, sizeof(tail));
			snprintf(msg, msglen, "the daemon exited (%d) before mounting: %s", WIFEXITED(st) ? WEXITSTATUS(st) : -1,
				 tail[0] ? tail : "no message");
			return -1;
		}
		lab_sleep_ns(5000000);
	}
	snprintf(msg, msglen, "the daemon did not mount %s within 20 s", m->dir);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	m->daemon = 0;
	umount2(m->dir, MNT_DETACH);
	return -1;
}

int lab_umount(struct lab_mount *m, char *msg, size_t msglen)
{
	uint64_t deadline = lab_now_ns() + 20ull * 1000000000ull;
	int ret = 0, st;

	if (m->fd >= 0)
		close(m->fd);
	m->fd = -1;
	if (m->mounted) {
		/* EBUSY while the kernel still releases the files the run closed: retry until the deadline. */
		while (umount2(m->dir, 0) < 0) {
			if (errno != EBUSY || lab_now_ns() >= deadline) {
				snprintf(msg, msglen, "umount %s: %s; detached", m->dir, strerror(errno));
				umount2(m->dir, MNT_DETACH);
				ret = -1;
				break;
			}
			lab_sleep_ns(10000000);
		}
		m->mounted = false;
	}
	if (m->daemon > 0) {
		pid_t r;

		while ((r = waitpid(m->daemon, &st, WNOHANG)) == 0 && lab_now_ns() < deadline)
			lab_sleep_ns(5000000);
		if (r != m->daemon) {
			snprintf(msg, msglen, "the daemon did not exit after unmount; killed");
			kill(m->daemon, SIGKILL);
			waitpid(m->daemon, &st, 0);
			ret = -1;
		} else if (!WIFEXITED(st) || WEXITSTATUS(st)) {
			snprintf(msg, msglen, "the daemon exited with %s %d", WIFEXITED(st) ? "status" : "signal",
				 WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
			ret = -1;
		}
		m->daemon = 0;
	}
	return ret;
}

int lab_fsck(const struct lab_bins *b, const char *image, const char *log)
{
	char *argv[] = { (char *)b->fsck, "-n", (char *)image, NULL };

	return run_prog(argv, log);
}

void lab_env_scrub(const char *image, const char *dir)
{
	if (dir && *dir) {
		umount2(dir, MNT_DETACH);
		rmdir(dir);
	}
	if (image && *image)
		unlink(image);
}

/* The PID in NAME = PREFIX PID rest, if that process is gone. */
static bool owner_gone(const char *name, const char *prefix)
{
	size_t n = strlen(prefix);
	char *end;

	if (strncmp(name, prefix, n))
		return false;
	errno = 0;
	long pid = strtol(name + n, &end, 10);
	if (end == name + n || errno || pid <= 0 || (*end != '-' && *end != '.'))
		return false;
	return kill((pid_t)pid, 0) < 0 && errno == ESRCH;
}

static void scrub_dir(const char *dir, const char *prefix, bool images)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[512];

	if (!d)
		return;
	while ((e = readdir(d))) {
		if (!owner_gone(e->d_name, prefix))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (images)
			unlink(path);
		else
			lab_env_scrub(NULL, path);
	}
	closedir(d);
}

void lab_env_scrub_stale(void)
{
	scrub_dir("/dev/shm", "daxfs-lab-", true);
	scrub_dir("/tmp", "daxfs-lab-", false);
}
