/* SPDX-License-Identifier: MIT */
#include "holder.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef CAP_LEASE
#define CAP_LEASE 28
#endif

/* A /proc file into buf (NUL-terminated); the length, or -errno. */
static ssize_t read_proc(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, size - 1);
	int err = errno;
	close(fd);
	if (n < 0)
		return -err;
	buf[n] = 0;
	return n;
}

/* Field 22 of /proc/PID/stat (start time), and whether the process is a zombie.  0 or -errno. */
static int stat_start(int32_t pid, uint64_t *start, bool *zombie)
{
	char path[64], buf[1024];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if ((n = read_proc(path, buf, sizeof(buf))) < 0)
		return (int)n;
	/* The command name may hold spaces and parentheses: fields restart after the last ')'. */
	char *p = strrchr(buf, ')');
	if (!p || p[1] != ' ')
		return -EIO;
	char state = p[2];
	p += 2;
	for (int field = 3; field < 22; field++) {
		p = strchr(p, ' ');
		if (!p)
			return -EIO;
		p++;
	}
	*start = strtoull(p, NULL, 10);
	if (zombie)
		*zombie = state == 'Z' || state == 'X';
	return 0;
}

int holder_identify(pid_t tid, struct holder_id *out)
{
	char path[64], buf[4096];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/status", tid);
	if ((n = read_proc(path, buf, sizeof(buf))) < 0)
		return n == -ENOENT ? -ESRCH : (int)n;
	char *t = strstr(buf, "\nTgid:");
	if (!t)
		return -EIO;
	out->pid = (int32_t)strtol(t + 6, NULL, 10);
	return stat_start(out->pid, &out->start, NULL) == 0 ? 0 : -ESRCH;
}

bool holder_alive(const struct holder_id *h)
{
	uint64_t start;
	bool zombie;

	return h->pid > 0 && stat_start(h->pid, &start, &zombie) == 0 && start == h->start && !zombie;
}

int holder_pidfd(const struct holder_id *h)
{
	uint64_t start;
	int fd;

	if (h->pid <= 0)
		return -ESRCH;
	fd = (int)syscall(SYS_pidfd_open, h->pid, 0);
	if (fd < 0)
		return -errno;
	/* The pidfd names whatever had the pid when it was opened: make sure that is our process. */
	if (stat_start(h->pid, &start, NULL) || start != h->start) {
		close(fd);
		return -ESRCH;
	}
	return fd;
}

int holder_signal(const struct holder_id *h, int signo, uint64_t value)
{
	siginfo_t si;
	int fd = holder_pidfd(h), ret = 0;

	if (fd < 0)
		return fd;
	memset(&si, 0, sizeof(si));
	si.si_signo = signo;
	si.si_code = SI_QUEUE;
	si.si_pid = getpid();
	si.si_uid = getuid();
	si.si_value.sival_ptr = (void *)(uintptr_t)value;
	if (syscall(SYS_pidfd_send_signal, fd, signo, &si, 0) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

bool holder_signal_allowed(int signo)
{
	return signo == SIGUSR1 || signo == SIGUSR2 || signo == SIGIO || signo == SIGURG ||
	       (signo >= SIGRTMIN && signo <= SIGRTMAX);
}

bool holder_has_cap_lease(pid_t tid)
{
	char path[64], buf[4096];

	snprintf(path, sizeof(path), "/proc/%d/status", tid);
	if (read_proc(path, buf, sizeof(buf)) < 0)
		return false;
	char *c = strstr(buf, "\nCapEff:");
	if (!c)
		return false;
	uint64_t caps = strtoull(c + 8, NULL, 16);
	return (caps >> CAP_LEASE) & 1;
}
