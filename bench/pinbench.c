/* SPDX-License-Identifier: MIT */
/*
 * pinbench: pins through a mounted daxfs, against references measured in the same run.
 *
 *   pinbench MOUNTPOINT SCRATCH_DIR [pinpair,truncate,reclaim]
 *
 *   pinpair    pin + unpin of 4 KiB, one client, pairs per second; the reference is an empty
 *              control ioctl (INFO) round trip: a pair is two of them.  Target >= 35k pairs/s.
 *   truncate   ftruncate of a 1 GiB file holding 10k pinned 4 KiB ranges (10k busy extents
 *              made in one go).  Target < 20 ms.
 *   reclaim    a 1 GiB busy extent unpinned: the daemon's own unpin-to-free latency, as
 *              bandwidth, against pmem_memset_persist over 1 GiB of a mapping of a file in
 *              SCRATCH_DIR.  Target >= 0.6x.
 * Each figure is the median of RUNS (5) runs after a warm-up.  Output: "metric=... value=... unit=...".
 */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <libpmem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "daxfs/libdaxfs.h"
#include "bench.h"

#define RUNS 5
#define GiB (1ull << 30)

/* Wait until no busy extent is left; returns the daemon's latest reclaim latency (s). */
static double wait_reclaimed(int fd)
{
	struct daxfs_ioc_stats st;

	for (int i = 0; i < 100000; i++) {
		if (daxfs_stats(fd, &st))
			bench_die("stats", errno);
		if (st.busy_extents == 0)
			return (double)st.reclaim_latency_ns_max / 1e9;
		usleep(200);
	}
	bench_die("reclaim never finished", ETIMEDOUT);
	return 0;
}

static void bench_pinpair(const char *mnt)
{
	const int n = 50000;
	double pair[RUNS], rtt[RUNS];
	int fd = bench_make_file(mnt, "pinpair", 16 << 20);

	for (int r = -1; r < RUNS; r++) {
		struct daxfs_ioc_info info;
		double t0 = bench_now();

		for (int i = 0; i < n; i++)
			if (daxfs_info(fd, &info))
				bench_die("info", errno);
		double t1 = bench_now();
		for (int i = 0; i < n; i++) {
			struct daxfs_ioc_pin a = { .size = sizeof(a), .offset = (uint64_t)(i % 4096) * 4096,
						   .length = 4096 };
			struct daxfs_ioc_unpin u = { .size = sizeof(u) };

			if (ioctl(fd, DAXFS_IOC_PIN, &a))
				bench_die("pin", errno);
			u.pin_id = a.pin_id;
			if (ioctl(fd, DAXFS_IOC_UNPIN, &u))
				bench_die("unpin", errno);
		}
		double t2 = bench_now();
		if (r >= 0) {
			rtt[r] = (t1 - t0) / n;
			pair[r] = n / (t2 - t1);
		}
	}
	close(fd);
	double p = bench_median(pair, RUNS), t = bench_median(rtt, RUNS);
	bench_report("pin_unpin_pairs_per_s", p, "pairs/s");
	bench_report("ioctl_rtt_us", t * 1e6, "us");
	bench_report("pin_unpin_vs_two_rtt", p * 2 * t, "ratio");
}

static void bench_truncate(const char *mnt)
{
	double v[RUNS];

	for (int r = -1; r < RUNS; r++) {
		int fd = bench_make_file(mnt, "trunc", GiB);

		/* 10k pins, 4 KiB each, spread over the whole gigabyte. */
		for (int i = 0; i < 10000; i++) {
			struct daxfs_ioc_pin a = { .size = sizeof(a), .flags = DAXFS_PIN_WRITE | DAXFS_PIN_LONGTERM,
						   .offset = (uint64_t)i * (GiB / 10000 / 4096) * 4096, .length = 4096 };

			if (ioctl(fd, DAXFS_IOC_PIN, &a))
				bench_die("pin", errno);
		}
		double t0 = bench_now();
		if (ftruncate(fd, 0))
			bench_die("ftruncate", errno);
		double t1 = bench_now();
		struct daxfs_ioc_stats st;
		daxfs_stats(fd, &st);
		if (st.busy_extents != 10000) {
			fprintf(stderr, "pinbench: %llu busy extents after the truncate, not 10000\n", st.busy_extents);
			exit(1);
		}
		close(fd);	/* drops the pins: all 10k extents reclaimed */
		wait_reclaimed(fd = open(mnt, O_RDONLY));
		close(fd);
		if (r >= 0)
			v[r] = t1 - t0;
	}
	bench_report("truncate_1G_10k_pins_ms", bench_median(v, RUNS) * 1e3, "ms");
}

static void bench_reclaim(const char *mnt, const char *scratch)
{
	double daxfs[RUNS], ref[RUNS];
	char path[512];

	/* The reference: the same amount zeroed and made persistent by libpmem, in one call. */
	snprintf(path, sizeof(path), "%s/pinbench-ref.img", scratch);
	size_t maplen;
	int is_pmem;
	char *p = pmem_map_file(path, GiB, PMEM_FILE_CREATE, 0600, &maplen, &is_pmem);
	if (!p)
		bench_die(path, errno);
	memset(p, 1, GiB);	/* fault the pages in first: the daemon's blocks are allocated too */
	for (int r = -1; r < RUNS; r++) {
		double t0 = bench_now();
		pmem_memset_persist(p, 0, GiB);
		if (!is_pmem)
			pmem_msync(p, GiB);
		if (r >= 0)
			ref[r] = GiB / (bench_now() - t0);
	}
	pmem_unmap(p, maplen);
	unlink(path);

	for (int r = -1; r < RUNS; r++) {
		int fd = bench_make_file(mnt, "reclaim", GiB);
		struct daxfs_pin pin;
		int ret = daxfs_pin(fd, 0, GiB, DAXFS_PIN_WRITE, &pin);

		if (ret)
			bench_die("pin", -ret);
		if (ftruncate(fd, 0))
			bench_die("ftruncate", errno);
		/* Unpin: the daemon zeroes the gigabyte and frees it; it times that itself. */
		if ((ret = daxfs_unpin(fd, pin.id)))
			bench_die("unpin", -ret);
		double lat = wait_reclaimed(fd);
		daxfs_pin_free(&pin);
		close(fd);
		if (r >= 0)
			daxfs[r] = GiB / lat;
	}
	double d = bench_median(daxfs, RUNS), m = bench_median(ref, RUNS);
	bench_report("reclaim_GiB_per_s", d / GiB, "GiB/s");
	bench_report("pmem_memset_persist_GiB_per_s", m / GiB, "GiB/s");
	bench_report("reclaim_vs_memset_persist", d / m, "ratio");
}

/* Is `name` in the comma-separated list (NULL: everything)? */
static bool wanted(const char *list, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = list; p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
		if (strncmp(p, name, n) == 0 && (p[n] == ',' || p[n] == 0))
			return true;
	return list == NULL;
}

int main(int argc, char **argv)
{
	if (argc != 3 && argc != 4) {
		fprintf(stderr, "usage: pinbench MOUNTPOINT SCRATCH_DIR [pinpair,truncate,reclaim]\n");
		return 2;
	}
	const char *only = argc == 4 ? argv[3] : NULL;
	if (wanted(only, "pinpair"))
		bench_pinpair(argv[1]);
	if (wanted(only, "truncate"))
		bench_truncate(argv[1]);
	if (wanted(only, "reclaim"))
		bench_reclaim(argv[1], argv[2]);
	return 0;
}
