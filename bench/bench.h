/* SPDX-License-Identifier: MIT */
/*
 * What every benchmark here needs: a monotonic clock in seconds, the median of a few runs, a result
 * line the run-*.sh scripts parse, a fatal error, and a file of known bytes to pin or write.
 */
#ifndef DAXFS_BENCH_H
#define DAXFS_BENCH_H

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static inline double bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline int bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The median of v[0..n), n >= 1; sorts v. */
static inline double bench_median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), bench_cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* One result: "PROGRAM metric=NAME value=V unit=U", the line the run-*.sh scripts read. */
static inline void bench_report(const char *metric, double value, const char *unit)
{
	printf("%s metric=%s value=%.4f unit=%s\n", program_invocation_short_name, metric, value, unit);
	fflush(stdout);
}

/* Say what failed (err: an errno, either sign) and exit 1. */
static inline void bench_die(const char *what, int err)
{
	fprintf(stderr, "%s: %s: %s\n", program_invocation_short_name, what, strerror(err < 0 ? -err : err));
	exit(1);
}

/* DIR/NAME, size bytes of 0x5a written through the file system; its descriptor, opened read-write. */
static inline int bench_make_file(const char *dir, const char *name, uint64_t size)
{
	static char buf[1 << 20];
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		bench_die(path, errno);
	memset(buf, 0x5a, sizeof(buf));
	for (uint64_t off = 0; off < size; off += sizeof(buf))
		if (pwrite(fd, buf, sizeof(buf), (off_t)off) != sizeof(buf))
			bench_die("write", errno);
	return fd;
}

#endif
