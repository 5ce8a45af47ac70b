/* SPDX-License-Identifier: MIT */
/*
 * tracebench: what the event trace costs pin+unpin, in process (no FUSE round trip to blur a few
 * percent): the core library's policy_pin and policy_unpin of one block, looped, with the trace off
 * and on (to a file in /dev/shm), in alternating rounds.  Prints each median and on/off.
 *
 *   tracebench [PAIRS_PER_ROUND [ROUNDS]]     (defaults 200000, 7)
 *
 * The FUSE side (pin+unpin through a mount, trace off against the daemon from before the trace
 * existed) is bench/run-policy.sh.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "daxfs/format.h"
#include "file.h"
#include "inode.h"
#include "fs.h"
#include "media.h"
#include "mmap_pin.h"
#include "mount.h"
#include "namei.h"
#include "policy.h"
#include "super.h"
#include "trace.h"

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/*
 * pairs of pin + unpin of block 0 of ip; pairs per second, and in *cpu_ns the calling thread's CPU
 * time per pair: the request path's own cost, whatever the writer thread and the rest of the
 * machine do meanwhile.
 */
static double pin_pairs(struct fs *fs, struct pin_owner *o, struct inode *ip, long pairs, double *cpu_ns)
{
	struct policy_pin_args a = { .offset = 0, .length = 4096, .flags = DAXFS_PIN_WRITE | DAXFS_PIN_LONGTERM,
				     .pid = getpid(), .writable = true };
	uint64_t t0 = now_ns(), c0 = thread_cpu_ns();

	for (long i = 0; i < pairs; i++) {
		uint64_t id;
		int ret = policy_pin(fs, o, ip, &a, NULL, &id);

		if (ret)
			bench_die("policy_pin", ret);
		if ((ret = policy_unpin(fs, o, id)))
			bench_die("policy_unpin", ret);
	}
	*cpu_ns = (double)(thread_cpu_ns() - c0) / (double)pairs;
	return (double)pairs * 1e9 / (double)(now_ns() - t0);
}

int main(int argc, char **argv)
{
	long pairs = argc > 1 ? strtol(argv[1], NULL, 10) : 200000;
	int rounds = argc > 2 ? atoi(argv[2]) : 7;
	char image[64], trace[64], err[256] = "";
	struct mkfs_params mp = { 0 };
	struct mount_config cfg = { .enospc_wait_ms = 1000 };
	const struct cred root = { .uid = 0, .gid = 0 };
	struct media m;
	struct fs *fs;
	struct entry e;
	struct inode *ip;
	struct pin_owner o;
	int ret, fd;

	if (pairs <= 0 || rounds <= 0 || rounds > 99) {
		fprintf(stderr, "usage: tracebench [PAIRS_PER_ROUND [ROUNDS (1-99)]]\n");
		return 2;
	}
	snprintf(image, sizeof(image), "/dev/shm/daxfs-tracebench-%d.img", getpid());
	snprintf(trace, sizeof(trace), "/dev/shm/daxfs-tracebench-%d.trace", getpid());
	if ((fd = open(image, O_RDWR | O_CREAT | O_TRUNC, 0600)) < 0 || ftruncate(fd, 64 << 20) < 0)
		bench_die(image, errno);
	close(fd);
	if ((ret = media_open(&m, image, 0, err, sizeof(err))) || (ret = super_format(&m, &mp, err, sizeof(err))))
		bench_die(err, ret);
	media_close(&m);
	if ((ret = mount_open(&fs, image, &cfg, err, sizeof(err))))
		bench_die(err, ret);
	if ((ret = mount_start(fs)))
		bench_die("mount_start", ret);
	if ((ret = namei_mknod(fs, &root, DAXFS_ROOT_INO, "f", S_IFREG | 0644, 0, &e)) ||
	    (ret = namei_open(fs, e.ino, O_RDWR, &ip, NULL)))
		bench_die("create", ret);
	static char block[4096];
	struct iovec iov = { block, sizeof(block) };
	if (file_write(fs, ip, 0, &iov, 1) != (ssize_t)sizeof(block))
		bench_die("write", EIO);
	pin_owner_init(&o);

	double off[99], on[99], coff[99], con[99], unused;
	pin_pairs(fs, &o, ip, pairs / 4, &unused);	/* warm-up */
	for (int r = 0; r < rounds; r++) {
		off[r] = pin_pairs(fs, &o, ip, pairs, &coff[r]);
		if ((ret = trace_start(&fs->trace, trace)))
			bench_die("trace_start", ret);
		on[r] = pin_pairs(fs, &o, ip, pairs, &con[r]);
		trace_stop(&fs->trace);
	}
	unsigned long long dropped = fs->trace.dropped;
	double moff = bench_median(off, rounds), mon = bench_median(on, rounds), mcoff = bench_median(coff, rounds),
	       mcon = bench_median(con, rounds);
	printf("metric=pin_unpin_pairs_per_s_trace_off value=%.0f unit=pairs/s\n", moff);
	printf("metric=pin_unpin_pairs_per_s_trace_on value=%.0f unit=pairs/s\n", mon);
	printf("metric=trace_on_vs_off value=%.4f unit=ratio (records dropped: %llu)\n", mon / moff, dropped);
	printf("metric=request_path_cpu_per_pair_trace_off value=%.0f unit=ns\n", mcoff);
	printf("metric=request_path_cpu_per_pair_trace_on value=%.0f unit=ns\n", mcon);
	printf("metric=trace_request_path_cost_per_pair value=%.0f unit=ns\n", mcon - mcoff);

	policy_release_owner(fs, &o);
	pin_owner_destroy(&o);
	namei_release(fs, ip);
	inode_forget(fs, e.ino, 1);
	mount_close(fs);
	unlink(trace);
	unlink(image);
	return 0;
}
