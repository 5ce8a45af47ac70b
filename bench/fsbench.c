/* SPDX-License-Identifier: MIT */
/*
 * fsbench: a small file-system benchmark, run against daxfs and against a reference (tmpfs) in
 * the same session by bench/run.sh, which turns the two into ratios.
 *
 *   fsbench [-l LABEL] [-n RUNS] [-w WARMUPS] [-t TESTS] [-s MIB] [-b KIB] [-r READS] [-R CALLS]
 *           [-F FILES] [-k] DIR
 *   fsbench --memcpy [-l LABEL] [-n RUNS] [-w WARMUPS] [-s MIB] [-b KIB] [-d SHMDIR]
 *
 * TESTS is a comma list of seqwrite, seqread, randread, rtt, meta (default: all).
 *
 * Every measurement runs WARMUPS times unrecorded (these VMs run the first large write after idle
 * several times slower), then RUNS times; the reported value is the median of the runs, and the
 * best and every run are printed beside it.  Output is one line per metric:
 *
 *   fsbench label=L metric=M value=V unit=U stat=median runs=N best=B all=v1,v2,...
 *
 * Methods (kept deliberately plain so that the numbers mean what they say):
 *   seq_write  unlink the old file (untimed), then time open(O_CREAT|O_TRUNC) + SIZE/BS writes of
 *              BS from one buffer + fsync + close.
 *   seq_read   time open + read(BS) to EOF into one buffer + close, on the file seq_write left.
 *   rand4k     READS preads of 4 KiB at uniformly random 4 KiB-aligned offsets of that file, one at a
 *              time (queue depth 1), each timed on its own: mean, p50, p99 per run.
 *   rtt_*      CALLS calls each timed on its own: fstatfs() on an open file (FUSE forwards every
 *              statfs to the daemon, which answers from counters: the cheapest request that always
 *              makes the round trip), and fstat() on it (a round trip only when attributes are not
 *              cached, i.e. with -o attr_timeout=0; otherwise it measures the syscall alone).
 *   meta_*     in a new directory, FILES x open(O_CREAT|O_EXCL)+close, then FILES x fstatat, then
 *              FILES x unlinkat; each phase timed, ops/s = FILES / phase time, and total ops/s =
 *              3 * FILES / total time.
 *   --memcpy   the memory-copy limits of this machine, in the shapes the file benchmarks use: a BS
 *              buffer reused in cache on one side and SIZE of a /dev/shm mapping on the other.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libpmem.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>
#include "bench.h"

#define KIB 1024ull
#define MIB (1024ull * KIB)
#define GIB (1024ull * MIB)
#define MAX_RUNS 64

enum {
	T_SEQWRITE = 1 << 0,
	T_SEQREAD = 1 << 1,
	T_RANDREAD = 1 << 2,
	T_RTT = 1 << 3,
	T_META = 1 << 4,
	T_ALL = (1 << 5) - 1,
};

static struct {
	const char *dir;
	const char *label;
	const char *shm_dir;
	int runs;
	int warmups;
	unsigned tests;
	uint64_t size;
	size_t bs;
	long nrand;
	long nrtt;
	int nfiles;
	bool memcpy_mode;
	bool keep;
} opt = {
	.label = "fs",
	.shm_dir = "/dev/shm",
	.runs = 5,
	.warmups = 1,
	.tests = T_ALL,
	.size = GIB,
	.bs = MIB,
	.nrand = 100000,
	.nrtt = 200000,
	.nfiles = 10000,
};

static char file_path[4096];

__attribute__((format(printf, 1, 2), noreturn)) static void die(const char *fmt, ...)
{
	va_list ap;
	int e = errno;

	va_start(ap, fmt);
	fprintf(stderr, "fsbench: ");
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	if (e)
		fprintf(stderr, ": %s", strerror(e));
	fprintf(stderr, "\n");
	exit(1);
}

/* On a copy: v stays in run order for the all= list. */
static double median(const double *v, int n)
{
	double s[MAX_RUNS];

	memcpy(s, v, sizeof(*v) * (size_t)n);
	return bench_median(s, n);
}

/* One result line; best is the max for throughputs and the min for times and latencies. */
static void report(const char *metric, const char *unit, const double *v, int n, bool higher_is_better)
{
	double best = v[0];

	for (int i = 1; i < n; i++)
		best = higher_is_better ? (v[i] > best ? v[i] : best) : (v[i] < best ? v[i] : best);
	printf("fsbench label=%s metric=%s value=%.4g unit=%s stat=median runs=%d best=%.4g all=", opt.label, metric,
	       median(v, n), unit, n, best);
	for (int i = 0; i < n; i++)
		printf("%s%.4g", i ? "," : "", v[i]);
	printf("\n");
	fflush(stdout);
}

/* xorshift64*: reproducible offsets without libc's rand() state or locking. */
static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ull;
}

static void *alloc_buf(size_t len)
{
	void *p;

	if (posix_memalign(&p, 4096, len))
		die("posix_memalign %zu", len);
	/* Not zeros, and not all the same byte: nothing on the way may take a shortcut. */
	for (size_t i = 0; i < len; i++)
		((unsigned char *)p)[i] = (unsigned char)(i * 7 + (i >> 12));
	return p;
}

/* ---- sequential I/O ---- */

static double seq_write_once(const void *buf)
{
	if (unlink(file_path) < 0 && errno != ENOENT)
		die("unlink %s", file_path);
	double t0 = bench_now();
	int fd = open(file_path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
	if (fd < 0)
		die("open %s", file_path);
	for (uint64_t off = 0; off < opt.size; off += opt.bs) {
		ssize_t n = write(fd, buf, opt.bs);

		if (n != (ssize_t)opt.bs) {
			if (n >= 0)
				errno = 0;	/* a short write leaves errno alone: do not print a stale one */
			die("write at %llu returned %zd", (unsigned long long)off, n);
		}
	}
	if (fsync(fd) < 0)
		die("fsync");
	if (close(fd) < 0)
		die("close");
	return (double)opt.size / GIB / (bench_now() - t0);
}

static double seq_read_once(void *buf)
{
	uint64_t total = 0;
	ssize_t n;
	double t0 = bench_now();
	int fd = open(file_path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		die("open %s", file_path);
	while ((n = read(fd, buf, opt.bs)) > 0)
		total += (uint64_t)n;
	if (n < 0)
		die("read");
	close(fd);
	double t = bench_now() - t0;
	if (total != opt.size) {
		errno = 0;
		die("read %llu bytes, expected %llu", (unsigned long long)total, (unsigned long long)opt.size);
	}
	return (double)opt.size / GIB / t;
}

/* The read tests need the file even when seqwrite is not selected. */
static void ensure_file(const void *buf)
{
	struct stat st;

	if (stat(file_path, &st) == 0 && (uint64_t)st.st_size == opt.size)
		return;
	seq_write_once(buf);
}

/* ---- latency ---- */

struct lat {
	double mean, p50, p99;	/* microseconds */
};

static struct lat summarize(double *ns, long n)
{
	double sum = 0;

	for (long i = 0; i < n; i++)
		sum += ns[i];
	qsort(ns, (size_t)n, sizeof(*ns), bench_cmp_double);
	return (struct lat){ .mean = sum / (double)n / 1e3, .p50 = ns[n / 2] / 1e3, .p99 = ns[n * 99 / 100] / 1e3 };
}

static void report_lat(const char *name, const struct lat *l, int n)
{
	double v[MAX_RUNS];
	char metric[64];
	static const char *const what[] = { "mean", "p50", "p99" };

	for (int k = 0; k < 3; k++) {
		for (int i = 0; i < n; i++)
			v[i] = k == 0 ? l[i].mean : k == 1 ? l[i].p50 : l[i].p99;
		snprintf(metric, sizeof(metric), "%s_%s", name, what[k]);
		report(metric, "us", v, n, false);
	}
}

static struct lat rand_read_once(int fd, void *buf, double *ns, uint64_t seed)
{
	uint64_t nblk = opt.size / 4096, s = seed * 0x9E3779B97F4A7C15ull + 1;

	for (long i = 0; i < opt.nrand; i++) {
		off_t off = (off_t)(rng_next(&s) % nblk * 4096);
		struct timespec a, b;

		clock_gettime(CLOCK_MONOTONIC, &a);
		ssize_t n = pread(fd, buf, 4096, off);
		clock_gettime(CLOCK_MONOTONIC, &b);
		if (n != 4096) {
			if (n >= 0)
				errno = 0;
			die("pread at %lld returned %zd", (long long)off, n);
		}
		ns[i] = (double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec);
	}
	return summarize(ns, opt.nrand);
}

enum rtt_kind { RTT_STATFS, RTT_FSTAT };

static struct lat rtt_once(int fd, enum rtt_kind kind, double *ns)
{
	for (long i = 0; i < opt.nrtt; i++) {
		struct timespec a, b;
		struct statfs sf;
		struct stat st;
		int r;

		clock_gettime(CLOCK_MONOTONIC, &a);
		r = kind == RTT_STATFS ? fstatfs(fd, &sf) : fstat(fd, &st);
		clock_gettime(CLOCK_MONOTONIC, &b);
		if (r < 0)
			die(kind == RTT_STATFS ? "fstatfs" : "fstat");
		ns[i] = (double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec);
	}
	return summarize(ns, opt.nrtt);
}

/* ---- metadata ---- */

struct meta {
	double create, stat, unlink;	/* seconds */
};

static struct meta meta_once(int seq)
{
	char dir[4200], name[32];
	struct meta m;
	struct stat st;
	double t0, t1, t2, t3;

	/* A new directory each run: no run sees another's negative or positive dentries. */
	snprintf(dir, sizeof(dir), "%s/fsbench-meta.%d.%d", opt.dir, (int)getpid(), seq);
	if (mkdir(dir, 0755) < 0)
		die("mkdir %s", dir);
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		die("open %s", dir);

	t0 = bench_now();
	for (int i = 0; i < opt.nfiles; i++) {
		snprintf(name, sizeof(name), "f%07d", i);
		int fd = openat(dfd, name, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
		if (fd < 0)
			die("create %s", name);
		close(fd);
	}
	t1 = bench_now();
	for (int i = 0; i < opt.nfiles; i++) {
		snprintf(name, sizeof(name), "f%07d", i);
		if (fstatat(dfd, name, &st, 0) < 0)
			die("stat %s", name);
	}
	t2 = bench_now();
	for (int i = 0; i < opt.nfiles; i++) {
		snprintf(name, sizeof(name), "f%07d", i);
		if (unlinkat(dfd, name, 0) < 0)
			die("unlink %s", name);
	}
	t3 = bench_now();
	close(dfd);
	if (rmdir(dir) < 0)
		die("rmdir %s", dir);
	m.create = t1 - t0;
	m.stat = t2 - t1;
	m.unlink = t3 - t2;
	return m;
}

/* ---- driver ---- */

static void run_file_tests(void)
{
	int R = opt.runs, W = opt.warmups;
	double v[MAX_RUNS];
	void *buf = alloc_buf(opt.bs);

	/* A fixed name, so that with -k a later run (a profile of seqread, say) can reuse the file. */
	snprintf(file_path, sizeof(file_path), "%s/fsbench-data", opt.dir);

	if (opt.tests & T_SEQWRITE) {
		for (int i = 0; i < W; i++)
			seq_write_once(buf);
		for (int i = 0; i < R; i++)
			v[i] = seq_write_once(buf);
		report("seq_write", "GiB/s", v, R, true);
	}
	if (opt.tests & (T_SEQREAD | T_RANDREAD))
		ensure_file(buf);
	if (opt.tests & T_SEQREAD) {
		for (int i = 0; i < W; i++)
			seq_read_once(buf);
		for (int i = 0; i < R; i++)
			v[i] = seq_read_once(buf);
		report("seq_read", "GiB/s", v, R, true);
	}
	if (opt.tests & T_RANDREAD) {
		struct lat l[MAX_RUNS];
		double *ns = malloc(sizeof(*ns) * (size_t)opt.nrand);
		int fd = open(file_path, O_RDONLY | O_CLOEXEC);

		if (!ns || fd < 0)
			die("randread setup");
		for (int i = 0; i < W; i++)
			rand_read_once(fd, buf, ns, 1000 + (uint64_t)i);
		for (int i = 0; i < R; i++)
			l[i] = rand_read_once(fd, buf, ns, (uint64_t)i + 1);
		report_lat("rand4k", l, R);
		close(fd);
		free(ns);
	}
	if (opt.tests & T_RTT) {
		struct lat l[MAX_RUNS];
		double *ns = malloc(sizeof(*ns) * (size_t)opt.nrtt);
		char p[4200];

		/* A small file of its own, so rtt does not depend on the data tests. */
		snprintf(p, sizeof(p), "%s/fsbench-rtt.%d", opt.dir, (int)getpid());
		int fd = open(p, O_CREAT | O_RDWR | O_CLOEXEC, 0644);
		if (!ns || fd < 0)
			die("rtt setup %s", p);
		for (enum rtt_kind k = RTT_STATFS; k <= RTT_FSTAT; k++) {
			for (int i = 0; i < W; i++)
				rtt_once(fd, k, ns);
			for (int i = 0; i < R; i++)
				l[i] = rtt_once(fd, k, ns);
			report_lat(k == RTT_STATFS ? "rtt_statfs" : "rtt_fstat", l, R);
		}
		close(fd);
		unlink(p);
		free(ns);
	}
	if (!opt.keep)
		unlink(file_path);
	if (opt.tests & T_META) {
		struct meta m[MAX_RUNS];
		double c[MAX_RUNS], s[MAX_RUNS], u[MAX_RUNS], t[MAX_RUNS], ops[MAX_RUNS];
		double nf = opt.nfiles;

		for (int i = 0; i < W; i++)
			meta_once(-1 - i);
		for (int i = 0; i < R; i++) {
			m[i] = meta_once(i);
			c[i] = nf / m[i].create;
			s[i] = nf / m[i].stat;
			u[i] = nf / m[i].unlink;
			t[i] = m[i].create + m[i].stat + m[i].unlink;
			ops[i] = 3 * nf / t[i];
		}
		report("meta_create", "ops/s", c, R, true);
		report("meta_stat", "ops/s", s, R, true);
		report("meta_unlink", "ops/s", u, R, true);
		report("meta_total", "s", t, R, false);
		report("meta_total_ops", "ops/s", ops, R, true);
	}
	free(buf);
}

/* Map SIZE of a new, unlinked file in shm_dir; prefault it unless asked not to. */
static char *map_shm(int *fdp, bool prefault)
{
	char p[4200];
	int fd;

	snprintf(p, sizeof(p), "%s/fsbench-memcpy.%d.XXXXXX", opt.shm_dir, (int)getpid());
	fd = mkstemp(p);
	if (fd < 0)
		die("mkstemp %s", p);
	unlink(p);
	if (ftruncate(fd, (off_t)opt.size) < 0)
		die("ftruncate");
	char *m = mmap(NULL, opt.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		die("mmap");
	if (prefault)
		for (uint64_t i = 0; i < opt.size; i += 4096)
			m[i] = (char)i;
	*fdp = fd;
	return m;
}

enum copy_kind { COPY_READ, COPY_WRITE, COPY_WRITE_NT, COPY_WRITE_FRESH };

static double copy_once(enum copy_kind k, char *shm, int fd, char *buf)
{
	if (k == COPY_WRITE_FRESH) {
		/* Give the pages back, so the copy faults in and zeroes new ones, as a new tmpfs file does. */
		if (ftruncate(fd, 0) < 0 || ftruncate(fd, (off_t)opt.size) < 0)
			die("ftruncate");
	}
	double t0 = bench_now();
	for (uint64_t off = 0; off < opt.size; off += opt.bs) {
		switch (k) {
		case COPY_READ:
			memcpy(buf, shm + off, opt.bs);
			break;
		case COPY_WRITE:
		case COPY_WRITE_FRESH:
			memcpy(shm + off, buf, opt.bs);
			break;
		case COPY_WRITE_NT:
			pmem_memcpy(shm + off, buf, opt.bs, PMEM_F_MEM_NONTEMPORAL | PMEM_F_MEM_NODRAIN);
			break;
		}
	}
	if (k == COPY_WRITE_NT)
		pmem_drain();
	/* Keep the compiler from dropping the read copies. */
	__asm__ __volatile__("" : : "r"(buf) : "memory");
	return (double)opt.size / GIB / (bench_now() - t0);
}

static void run_memcpy(void)
{
	static const struct {
		enum copy_kind k;
		const char *metric;
	} kinds[] = {
		{ COPY_READ, "memcpy_read" },	/* shm -> reused buffer: the page-cache read shape */
		{ COPY_WRITE, "memcpy_write" },	/* reused buffer -> shm, temporal stores */
		{ COPY_WRITE_NT, "ntcopy_write" },	/* the same with libpmem's non-temporal stores */
		{ COPY_WRITE_FRESH, "memcpy_write_fresh" },	/* into pages not yet allocated */
	};
	double v[MAX_RUNS];
	char *buf = alloc_buf(opt.bs);
	int fd;
	char *shm = map_shm(&fd, true);

	for (size_t j = 0; j < sizeof(kinds) / sizeof(kinds[0]); j++) {
		for (int i = 0; i < opt.warmups; i++)
			copy_once(kinds[j].k, shm, fd, buf);
		for (int i = 0; i < opt.runs; i++)
			v[i] = copy_once(kinds[j].k, shm, fd, buf);
		report(kinds[j].metric, "GiB/s", v, opt.runs, true);
	}
	munmap(shm, opt.size);
	close(fd);
	free(buf);
}

static unsigned parse_tests(const char *s)
{
	static const struct {
		const char *name;
		unsigned bit;
	} names[] = {
		{ "seqwrite", T_SEQWRITE }, { "seqread", T_SEQREAD }, { "randread", T_RANDREAD },
		{ "rtt", T_RTT },	    { "meta", T_META },	      { "all", T_ALL },
	};
	unsigned t = 0;
	char *copy = strdup(s), *save = NULL;

	for (char *w = strtok_r(copy, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
		size_t i;

		for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			if (strcmp(w, names[i].name) == 0)
				break;
		if (i == sizeof(names) / sizeof(names[0])) {
			fprintf(stderr, "fsbench: unknown test %s\n", w);
			exit(2);
		}
		t |= names[i].bit;
	}
	free(copy);
	return t;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: fsbench [options] DIR\n"
		"       fsbench --memcpy [options]\n"
		"  -l LABEL   label printed on every result line (default fs)\n"
		"  -n RUNS    measured runs per test, median reported (default 5, at most %d)\n"
		"  -w N       unrecorded warm-up runs per test (default 1)\n"
		"  -t TESTS   comma list: seqwrite,seqread,randread,rtt,meta,all (default all)\n"
		"  -s MIB     data file / copy size in MiB (default 1024)\n"
		"  -b KIB     sequential I/O and copy block size in KiB (default 1024)\n"
		"  -r N       4 KiB random reads per run (default 100000)\n"
		"  -R N       round-trip calls per run (default 200000)\n"
		"  -F N       files per metadata run (default 10000)\n"
		"  -k         keep DIR/fsbench-data at exit (the read tests reuse it when its size fits)\n"
		"  -d DIR     --memcpy: where to create the shared-memory file (default /dev/shm)\n",
		MAX_RUNS);
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "memcpy", no_argument, NULL, 'M' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "l:n:w:t:s:b:r:R:F:d:kh", lopts, NULL)) != -1) {
		switch (c) {
		case 'M': opt.memcpy_mode = true; break;
		case 'l': opt.label = optarg; break;
		case 'n': opt.runs = atoi(optarg); break;
		case 'w': opt.warmups = atoi(optarg); break;
		case 't': opt.tests = parse_tests(optarg); break;
		case 's': opt.size = strtoull(optarg, NULL, 0) * MIB; break;
		case 'b': opt.bs = (size_t)strtoull(optarg, NULL, 0) * KIB; break;
		case 'r': opt.nrand = atol(optarg); break;
		case 'R': opt.nrtt = atol(optarg); break;
		case 'F': opt.nfiles = atoi(optarg); break;
		case 'd': opt.shm_dir = optarg; break;
		case 'k': opt.keep = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (opt.runs < 1 || opt.runs > MAX_RUNS || opt.warmups < 0 || opt.bs == 0 || opt.bs > opt.size ||
	    opt.size % opt.bs || opt.size < 4096 || opt.nrand < 1 || opt.nrtt < 1 || opt.nfiles < 1) {
		fprintf(stderr, "fsbench: bad option value\n");
		return 2;
	}
	if (opt.memcpy_mode) {
		if (optind != argc) {
			usage(stderr);
			return 2;
		}
		run_memcpy();
		return 0;
	}
	if (optind != argc - 1) {
		usage(stderr);
		return 2;
	}
	opt.dir = argv[optind];
	run_file_tests();
	return 0;
}
