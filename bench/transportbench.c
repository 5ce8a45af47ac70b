/* SPDX-License-Identifier: MIT */
/*
 * transportbench: the two ways requests reach the daemon (-o transport=dev and =uring, see
 * daxfs/fuse_uring.h) side by side, in one run.  Two images, two mounts, one per transport, both up
 * the whole time; every round measures each in turn (the order alternating), so drift of the
 * machine hits both alike.  Per operation the median of the rounds, and uring / dev.
 *
 *   getattr    stat() of a file with attr_timeout=0: one FUSE_GETATTR round trip
 *   read4k     pread of 4 KiB at a random block of a 64 MiB file (DAX mode: one FUSE_READ)
 *   pin+unpin  a pair of control ioctls on one block (libdaxfs)
 *   write1m    pwrite of 1 MiB, sequential over 256 MiB (rewriting allocated blocks)
 *
 * Usage (root; bench/run-transport.sh builds, checks the machine is idle and takes the lock):
 *   transportbench DAXFS MKFS [ROUNDS]
 * Mounts and images are removed on exit, on failure and on ^C.
 */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "daxfs/ioctl.h"
#include "daxfs/libdaxfs.h"

#define FUSE_SUPER_MAGIC 0x65735546
#define MiB (1024 * 1024)
#define READ_FILE (64 * MiB)
#define WRITE_FILE (256 * MiB)
#define NGETATTR 20000
#define NREAD 20000
#define NPIN 10000
#define ROUNDS_MAX 50

enum { T_DEV, T_URING, NT };
static const char *tname[NT] = { "dev", "uring" };

struct side {
	char dir[160], image[160];
	pid_t daemon;
	int rfd, wfd, pfd;
};

static struct side sides[NT];
static char workdir[64];

static void cleanup(void)
{
	for (int t = 0; t < NT; t++) {
		struct side *s = &sides[t];

		if (s->rfd > 0)
			close(s->rfd);
		if (s->wfd > 0)
			close(s->wfd);
		if (s->pfd > 0)
			close(s->pfd);
		s->rfd = s->wfd = s->pfd = 0;
		if (s->daemon > 0) {
			/* A clean unmount: the daemon exits by itself. */
			if (umount2(s->dir, 0) != 0)
				umount2(s->dir, MNT_DETACH);
			waitpid(s->daemon, NULL, 0);
			s->daemon = 0;
		}
		if (s->dir[0])
			rmdir(s->dir);
		if (s->image[0])
			unlink(s->image);
		s->dir[0] = s->image[0] = 0;
	}
	if (workdir[0])
		rmdir(workdir);
	workdir[0] = 0;
}

static void on_signal(int sig)
{
	(void)sig;
	cleanup();
	_exit(130);
}

static void die(const char *what)
{
	perror(what);
	cleanup();
	exit(1);
}

static void run(const char *cmd)
{
	if (system(cmd) != 0) {
		fprintf(stderr, "transportbench: failed: %s\n", cmd);
		cleanup();
		exit(1);
	}
}

static void mount_side(struct side *s, const char *daxfs, const char *mkfs, int t)
{
	char cmd[1024], opt[128];
	struct statfs sf;

	snprintf(s->dir, sizeof(s->dir), "%s/%s", workdir, tname[t]);
	snprintf(s->image, sizeof(s->image), "/dev/shm/transportbench-%d-%s.img", (int)getpid(), tname[t]);
	if (mkdir(s->dir, 0755))
		die("mkdir");
	snprintf(cmd, sizeof(cmd), "%s -q -s 1G %s", mkfs, s->image);
	run(cmd);
	snprintf(opt, sizeof(opt), "transport=%s,attr_timeout=0,entry_timeout=60", tname[t]);
	s->daemon = fork();
	if (s->daemon < 0)
		die("fork");
	if (s->daemon == 0) {
		/* Not the other mount's files: a daemon holding them keeps that mount alive for ever. */
		close_range(3, ~0U, 0);
		execl(daxfs, daxfs, "-f", "-o", opt, s->image, s->dir, (char *)NULL);
		_exit(127);
	}
	/* Mounted when the directory is a FUSE file system: poll with a deadline. */
	double deadline = bench_now() + 10;
	while (!(statfs(s->dir, &sf) == 0 && sf.f_type == FUSE_SUPER_MAGIC)) {
		if (bench_now() > deadline || waitpid(s->daemon, NULL, WNOHANG) == s->daemon) {
			fprintf(stderr, "transportbench: the daemon (transport=%s) did not mount\n", tname[t]);
			s->daemon = 0;
			cleanup();
			exit(1);
		}
		usleep(2000);
	}
}

static void fill(int fd, size_t len)
{
	static char buf[MiB];

	memset(buf, 0x5a, sizeof(buf));
	for (size_t off = 0; off < len; off += sizeof(buf))
		if (pwrite(fd, buf, sizeof(buf), (off_t)off) != (ssize_t)sizeof(buf))
			die("fill");
}

static void open_side(struct side *s)
{
	char p[1024];

	snprintf(p, sizeof(p), "%s/r", s->dir);
	s->rfd = open(p, O_RDWR | O_CREAT, 0644);
	snprintf(p, sizeof(p), "%s/w", s->dir);
	s->wfd = open(p, O_RDWR | O_CREAT, 0644);
	snprintf(p, sizeof(p), "%s/p", s->dir);
	s->pfd = open(p, O_RDWR | O_CREAT, 0644);
	if (s->rfd < 0 || s->wfd < 0 || s->pfd < 0)
		die("open");
	fill(s->rfd, READ_FILE);
	fill(s->wfd, WRITE_FILE);
	fill(s->pfd, MiB);
}

/* Each returns microseconds per operation, or MiB/s for write1m. */
static double b_getattr(struct side *s)
{
	char p[1024];
	struct stat st;

	snprintf(p, sizeof(p), "%s/r", s->dir);
	double t0 = bench_now();
	for (int i = 0; i < NGETATTR; i++)
		if (stat(p, &st))
			die("stat");
	return (bench_now() - t0) * 1e6 / NGETATTR;
}

static double b_read4k(struct side *s)
{
	static char buf[4096] __attribute__((aligned(4096)));
	uint64_t x = 88172645463325252ull;

	double t0 = bench_now();
	for (int i = 0; i < NREAD; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		if (pread(s->rfd, buf, sizeof(buf), (off_t)(x % (READ_FILE / 4096)) * 4096) != 4096)
			die("pread");
	}
	return (bench_now() - t0) * 1e6 / NREAD;
}

static double b_pin(struct side *s)
{
	double t0 = bench_now();
	for (int i = 0; i < NPIN; i++) {
		struct daxfs_pin p;

		if (daxfs_pin(s->pfd, 0, 4096, DAXFS_PIN_WRITE, &p))
			die("daxfs_pin");
		if (daxfs_unpin(s->pfd, p.id))
			die("daxfs_unpin");
		daxfs_pin_free(&p);
	}
	return (bench_now() - t0) * 1e6 / NPIN;
}

static double b_write1m(struct side *s)
{
	static char buf[MiB];

	memset(buf, 0xa5, sizeof(buf));
	double t0 = bench_now();
	for (size_t off = 0; off < WRITE_FILE; off += MiB)
		if (pwrite(s->wfd, buf, MiB, (off_t)off) != MiB)
			die("pwrite");
	return (double)(WRITE_FILE / MiB) / (bench_now() - t0);
}

/* Were the uring side's requests served by its queues?  (Else the comparison means nothing.) */
static void check_transport(struct side *s, uint32_t want)
{
	struct daxfs_ioc_transport *t = calloc(1, sizeof(*t));

	if (!t)
		die("calloc");
	t->size = sizeof(*t);
	if (ioctl(s->rfd, DAXFS_IOC_TRANSPORT, t))
		die("DAXFS_IOC_TRANSPORT");
	if (t->transport != want) {
		fprintf(stderr, "transportbench: the %s mount uses %s (%s)\n", daxfs_transport_str(want),
			daxfs_transport_str(t->transport), t->reason);
		free(t);
		cleanup();
		exit(1);
	}
	free(t);
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name, *unit;
		double (*fn)(struct side *);
		bool higher_better;
	} ops[] = {
		{ "getattr", "us/op", b_getattr, false },
		{ "read4k", "us/op", b_read4k, false },
		{ "pin+unpin", "us/pair", b_pin, false },
		{ "write1m", "MiB/s", b_write1m, true },
	};
	enum { NOPS = sizeof(ops) / sizeof(ops[0]) };
	static double v[NOPS][NT][ROUNDS_MAX];

	if (argc < 3) {
		fprintf(stderr, "usage: %s DAXFS MKFS [ROUNDS]\n", argv[0]);
		return 2;
	}
	int rounds = argc > 3 ? atoi(argv[3]) : 7;
	if (rounds < 1 || rounds > ROUNDS_MAX)
		rounds = 7;
	snprintf(workdir, sizeof(workdir), "/tmp/transportbench-XXXXXX");
	if (!mkdtemp(workdir))
		die("mkdtemp");
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	for (int t = 0; t < NT; t++) {
		mount_side(&sides[t], argv[1], argv[2], t);
		open_side(&sides[t]);
	}
	check_transport(&sides[T_DEV], DAXFS_TRANSPORT_DEV);
	check_transport(&sides[T_URING], DAXFS_TRANSPORT_URING);
	/* One unrecorded warm-up of everything, then rounds alternating which side goes first. */
	for (int r = -1; r < rounds; r++)
		for (int k = 0; k < NOPS; k++)
			for (int i = 0; i < NT; i++) {
				int t = (r + i + k) % 2 ? T_URING : T_DEV;
				double x = ops[k].fn(&sides[t]);

				if (r >= 0)
					v[k][t][r] = x;
			}
	check_transport(&sides[T_URING], DAXFS_TRANSPORT_URING);
	printf("%-10s %-8s %12s %12s %8s   (median of %d rounds; ratio uring/dev)\n", "op", "unit", "dev", "uring",
	       "ratio", rounds);
	for (int k = 0; k < NOPS; k++) {
		double m[NT], lo[NT], hi[NT];

		for (int t = 0; t < NT; t++) {
			m[t] = bench_median(v[k][t], rounds);	/* sorts: v[0] and v[rounds-1] are min and max */
			lo[t] = v[k][t][0];
			hi[t] = v[k][t][rounds - 1];
		}
		printf("%-10s %-8s %12.2f %12.2f %8.2f   dev %.2f..%.2f, uring %.2f..%.2f%s\n", ops[k].name,
		       ops[k].unit, m[T_DEV], m[T_URING], m[T_URING] / m[T_DEV], lo[T_DEV], hi[T_DEV], lo[T_URING],
		       hi[T_URING], ops[k].higher_better ? "  (higher is better)" : "  (lower is better)");
	}
	cleanup();
	return 0;
}
