/* SPDX-License-Identifier: MIT */
/*
 * daxfs-rdma: the simulated RDMA device (include/daxfs/device.h) and the corruption detector
 * (include/daxfs/detect.h) from the command line.
 *
 *   daxfs-rdma run [OPTIONS] FILE[@OFFSET[+LENGTH]]...
 *   daxfs-rdma scan [--json] [--trace FILE] [--max N] PATH
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daxfs/detect.h"
#include "daxfs/device.h"
#include "toolutil.h"

#define PROG "daxfs-rdma"

enum { EXIT_OK = 0, EXIT_FOUND = 1, EXIT_USAGE = 2, EXIT_ERROR = 3 };

static void usage(FILE *f)
{
	fprintf(f,
"usage: daxfs-rdma run [OPTIONS] FILE[@OFFSET[+LENGTH]]...\n"
"       daxfs-rdma scan [--json] [--trace FILE] [--max N] [--quiet] PATH\n"
"       daxfs-rdma --help\n"
"\n"
"A simulated RDMA device for daxfs, and the detector of what such devices corrupt.\n"
"\n"
"run: register each range of each FILE with the device (a pin, as ibv_reg_mr takes on a DAX\n"
"mapping: the device gets the media extents) and drive the device's engines: every work request\n"
"writes a tagged payload straight to the media at the extents it was given (or reads them), never\n"
"through the file, asynchronously, QD requests in flight per engine.  Each 64-byte unit written is a\n"
"tag naming the pin, the inode, the file and media offsets, the request's sequence number, the pin's\n"
"generation and the time it was posted.  The file system's events (lease break, revocation,\n"
"invalidation) are answered as --behaviour says.  The registrations are held until --duration or\n"
"--count is reached (then --hold), or SIGINT/SIGTERM; then each is fenced (no new request, the ones\n"
"in flight completed) and unpinned.  OFFSET and LENGTH take K, M, G suffixes; LENGTH defaults to the\n"
"rest of the file.\n"
"\n"
"  --qd N               requests in flight per engine (default 16)\n"
"  --size BYTES         payload of each request, a multiple of 64, at most 4M (default 64K)\n"
"  --op write|read      what the requests do (default write; read needs uring or mmap access)\n"
"  --rate RATE          N: requests per second, or SIZE/s: bytes per second (default: as fast as it goes)\n"
"  --duration SEC       post for SEC seconds (default 1, or until --count)\n"
"  --count N            post N requests in all, then stop\n"
"  --sequential         walk each registration in order (default)\n"
"  --random             aligned random offsets\n"
"  --regs N             split each range into N registrations (default 1)\n"
"  --threads N          engines: a queue pair and a thread each, sharing the registrations (default 1)\n"
"  --behaviour B        cooperative (default): on a lease break or revocation stop, drain, unpin; on\n"
"                       an invalidation stop using the range, drain, acknowledge, refault on next use;\n"
"                       slow:MS: the same, MS milliseconds late; ignore: keep writing the media offsets\n"
"                       it was given, never acknowledge, never unpin (a misbehaving device)\n"
"  --access A           uring (pwrite/pread on the media), mmap (through a shared mapping: device DAX),\n"
"                       ioctl (DAXFS_IOC_DMA: the daemon writes; no media access needed), auto (default)\n"
"  --media PATH         the media (default: what DAXFS_IOC_INFO names); refused unless its superblock\n"
"                       has the mount's UUID and it is the file the daemon serves\n"
"  --revocable          the registrations claim DAXFS_PIN_REVOCABLE (with ignore: a lying device)\n"
"  --odp                DAXFS_PIN_ODP: the device takes invalidations (policy odp)\n"
"  --longterm           DAXFS_PIN_LONGTERM, as an RDMA registration\n"
"  --signal SIG         events are also signalled (USR1, USR2, IO, URG, RTMIN+N or a number)\n"
"  --hold SEC|inf       after posting ends keep the registrations SEC more seconds (inf: until signalled),\n"
"                       or until the device has let go of all of them\n"
"  --json               print the results as JSON\n"
"  --quiet              print only the results (no registrations, no events as they come)\n"
"\n"
"  Results: requests posted and completed, errors by status, bytes, requests and bytes per second,\n"
"  latency p50/p99/max (posted to completed), events seen by type, signals, faults and refaults,\n"
"  acknowledgements, registrations the device let go of.\n"
"\n"
"scan: read every regular file under PATH through the mount and report every tagged unit its source\n"
"pin never covered at the time of writing: a tag is legitimate in file F at offset O only if it\n"
"names F's inode and offset O and F's block at O lives at the tag's media offset (from a read pin).\n"
"Each stray run gives the file, file offset, length, media offset, source pin and whether it is\n"
"still registered, revoking, revoked or gone, its holder, sequence numbers, generation and why.\n"
"\n"
"  --trace FILE         the daemon's event trace (-o trace=FILE, daxfsctl trace MOUNT on FILE): also\n"
"                       report units posted after their block was freed unsafely or reclaimed, after\n"
"                       their pin let go, or through a range it had given up, even when the block came\n"
"                       back to the same file at the same offset\n"
"  --max N              keep at most N stray runs in the report (default 10000)\n"
"  --json               print the report as JSON\n"
"  --quiet              print only the one-line summary\n"
"\n"
"What a misbehaving (ignore) device does under each policy of the mount:\n"
"  busy           safe: the pinned blocks become busy extents, out of reuse until the unpin\n"
"  wait           the truncate blocks until the unpin (EBUSY after wait_timeout_ms); safe\n"
"  fail           the truncate fails with EBUSY; safe\n"
"  revoke         after grace_ms the pin is revoked; a pin that is not REVOCABLE keeps its blocks out\n"
"                 of reuse until its file is released: safe.  A pin that claimed REVOCABLE and ignores\n"
"                 the revocation lies: its blocks are reused at once and its writes corrupt the next\n"
"                 owner (the accepted window of revocable importers)\n"
"  odp            an invalidation not acknowledged within ack_ms revokes the pin: the same rule\n"
"  deny-longterm  the long-term registration is refused\n"
"  unsafe         corrupts: the pinned blocks go to the next file while the device writes them\n"
"\n"
"Exit status: run: 0 done, 2 usage, 3 the device or a registration could not be set up;\n"
"scan: 0 clean, 1 stray units found, 2 usage, 3 the scan could not run or was incomplete.\n");
}

/* ---- shared ---- */

static volatile sig_atomic_t stop_flag;

static void on_stop(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static const char *human(uint64_t v, char *buf, size_t len)
{
	const char *u[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double d = (double)v;
	int i = 0;

	while (d >= 1024 && i < 4) {
		d /= 1024;
		i++;
	}
	snprintf(buf, len, i ? "%.1f %s" : "%.0f %s", d, u[i]);
	return buf;
}

static int parse_signal(const char *s)
{
	static const struct { const char *name; int sig; } names[] = {
		{ "USR1", SIGUSR1 }, { "USR2", SIGUSR2 }, { "IO", SIGIO }, { "URG", SIGURG },
		{ "INT", SIGINT }, { "TERM", SIGTERM }, { "KILL", SIGKILL }, { "HUP", SIGHUP }, { "SEGV", SIGSEGV },
	};
	char *end;

	if (strncmp(s, "SIG", 3) == 0)
		s += 3;
	long v = strtol(s, &end, 10);
	if (end != s && !*end)
		return v > 0 && v < 128 ? (int)v : -1;
	if (strncmp(s, "RTMIN", 5) == 0) {
		long k = s[5] == '+' ? strtol(s + 6, &end, 10) : 0;
		if (s[5] && (s[5] != '+' || *end))
			return -1;
		return SIGRTMIN + (int)k <= SIGRTMAX ? SIGRTMIN + (int)k : -1;
	}
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(s, names[i].name) == 0)
			return names[i].sig;
	return -1;
}

/* ---- run ---- */

#define HB 64
#define HBUCKETS (59 * HB)

static unsigned hidx(uint64_t v)
{
	if (v < HB)
		return (unsigned)v;
	int e = 63 - __builtin_clzll(v);
	return (unsigned)((e - 5) * HB) + (unsigned)((v >> (e - 6)) & (HB - 1));
}

static uint64_t hval(unsigned i)
{
	if (i < HB)
		return i;
	unsigned e = i / HB + 5;
	return (uint64_t)(HB + i % HB) << (e - 6);
}

struct reg {
	struct daxfs_mr *mr;
	const char *path;
	uint64_t len;
	bool lost;		/* atomic */
};

struct run_cfg {
	uint32_t qd, threads, regs_per_range;
	uint64_t size;
	uint32_t op;
	double rate_req;	/* 0: unlimited */
	double duration;
	int64_t count;		/* -1: none */
	bool random;
	double hold;		/* -1: until signalled */
	bool json, quiet;
};

struct engine {
	pthread_t t;
	struct run_cfg *cfg;
	struct daxfs_qp *qp;
	struct reg *regs;
	uint32_t nregs;
	uint32_t idx;
	uint64_t *cursor;
	uint64_t posted, completed, errors, bytes, lat_max;
	uint64_t err_by[134];
	uint64_t *hist;
	int fatal;
};

static int64_t count_left;	/* atomic */
static uint64_t run_deadline;

static void account(struct engine *e, const struct daxfs_wc *wc, int n)
{
	for (int i = 0; i < n; i++) {
		e->completed++;
		if (wc[i].status) {
			e->errors++;
			e->err_by[-wc[i].status < 134 ? -wc[i].status : 0]++;
		} else {
			e->bytes += wc[i].bytes;
		}
		e->hist[hidx(wc[i].latency_ns)]++;
		if (wc[i].latency_ns > e->lat_max)
			e->lat_max = wc[i].latency_ns;
	}
}

static bool posting_over(void)
{
	return stop_flag || now_ns() >= run_deadline;
}

static void *engine_main(void *arg)
{
	struct engine *e = arg;
	struct run_cfg *c = e->cfg;
	struct daxfs_wc wc[64];
	uint64_t start = now_ns(), next_post = start;
	double per_thread = c->rate_req > 0 ? c->rate_req / c->threads : 0;
	uint32_t r = e->idx;
	unsigned seed = 0x9e3779b9u * (e->idx + 1);
	uint64_t posts = 0;

	for (;;) {
		bool over = posting_over();
		bool posted_one = false;

		/* A batch of requests for the room left, posted with one doorbell. */
		struct daxfs_wr batch[64];
		struct reg *breg[64];
		int nb = 0, room = (int)(c->qd - daxfs_qp_outstanding(e->qp));
		if (room > 64)
			room = 64;
		while (!over && nb < room) {
			if (per_thread > 0) {
				next_post = start + (uint64_t)((double)(posts + (uint64_t)nb) * 1e9 / per_thread);
				if (now_ns() < next_post)
					break;
			}
			/* The next registration the device still has. */
			uint32_t tries = 0;
			while (tries < e->nregs && __atomic_load_n(&e->regs[r % e->nregs].lost, __ATOMIC_RELAXED)) {
				r++;
				tries++;
			}
			if (tries == e->nregs) {
				over = true;	/* every registration is gone */
				break;
			}
			struct reg *g = &e->regs[r % e->nregs];
			uint64_t len = c->size < g->len ? c->size : g->len, off;
			if (c->random) {
				uint64_t slots = g->len / len;
				off = (uint64_t)(rand_r(&seed) % (slots ? slots : 1)) * len;
			} else {
				off = e->cursor[r % e->nregs];
				if (off + len > g->len)
					off = 0;
				e->cursor[r % e->nregs] = off + len;
			}
			if (c->count >= 0 && __atomic_sub_fetch(&count_left, 1, __ATOMIC_RELAXED) < 0) {
				__atomic_add_fetch(&count_left, 1, __ATOMIC_RELAXED);
				over = true;
				break;
			}
			batch[nb] = (struct daxfs_wr){ .wr_id = posts + (uint64_t)nb, .opcode = c->op, .mr = g->mr, .offset = off,
						       .length = len };
			breg[nb++] = g;
			r++;
		}
		if (nb) {
			int done = 0, ret = daxfs_post_list(e->qp, batch, nb, &done);

			posts += (uint64_t)done;
			e->posted += (uint64_t)done;
			posted_one = done > 0;
			if (c->count >= 0)
				__atomic_add_fetch(&count_left, nb - done, __ATOMIC_RELAXED);
			if (ret == -ENOLINK || ret == -ESHUTDOWN) {
				__atomic_store_n(&breg[done]->lost, true, __ATOMIC_RELAXED);
			} else if (ret && ret != -EAGAIN) {
				e->fatal = ret;
				over = true;
			}
		}
		if (over && daxfs_qp_outstanding(e->qp) == 0)
			break;
		if (over) {
			account(e, wc, daxfs_wait_cq(e->qp, wc, 64, 100));
			continue;
		}
		if (per_thread <= 0) {
			/* As fast as it goes: wait for a completion only when the queue is full. */
			int n = posted_one && daxfs_qp_outstanding(e->qp) < c->qd ? daxfs_poll_cq(e->qp, wc, 64)
										    : daxfs_wait_cq(e->qp, wc, 64, 10);
			account(e, wc, n);
			continue;
		}
		/* Rate-limited: reap what is done, then sleep until the next post is due (at most 1 ms). */
		int n = daxfs_poll_cq(e->qp, wc, 64);
		account(e, wc, n);
		uint64_t t = now_ns();
		next_post = start + (uint64_t)((double)posts * 1e9 / per_thread);
		if (n == 0 && next_post > t) {
			uint64_t ns = next_post - t < 1000000 ? next_post - t : 1000000;
			struct timespec ts = { 0, (long)ns };
			nanosleep(&ts, NULL);
		}
	}
	return NULL;
}

struct ev_print {
	bool on;
};

static void print_event(void *arg, struct daxfs_mr *mr, const struct daxfs_event *ev)
{
	struct ev_print *p = arg;
	struct daxfs_mr_info mi;

	if (!p->on)
		return;
	daxfs_mr_query(mr, &mi);
	uint64_t t = now_ns();
	printf("event: pin %llu %s", (unsigned long long)ev->pin_id, daxfs_event_str(ev->type));
	if (ev->type == DAXFS_EV_INVALIDATE)
		printf(" [%llu, +%llu)", (unsigned long long)ev->file_off, (unsigned long long)ev->len);
	if (ev->deadline_ns)
		printf(" (%.0f ms left)", ev->deadline_ns > t ? (double)(ev->deadline_ns - t) / 1e6 : 0.0);
	printf("\n");
	fflush(stdout);
}

/* "FILE", "FILE@OFF", "FILE@OFF+LEN" (the suffix only when it parses). */
static int parse_range(const char *arg, char **path, uint64_t *off, uint64_t *len)
{
	const char *at = strrchr(arg, '@');

	*off = 0;
	*len = 0;
	if (at) {
		char tmp[64];
		const char *plus = strchr(at + 1, '+');
		size_t n = plus ? (size_t)(plus - at - 1) : strlen(at + 1);

		if (n < sizeof(tmp)) {
			memcpy(tmp, at + 1, n);
			tmp[n] = 0;
			if (parse_size(tmp, off) == 0 && (!plus || parse_size(plus + 1, len) == 0)) {
				*path = strndup(arg, (size_t)(at - arg));
				return *path ? 0 : -ENOMEM;
			}
		}
		*off = *len = 0;
	}
	*path = strdup(arg);
	return *path ? 0 : -ENOMEM;
}

static const char *errno_name(int e)
{
	switch (e) {
	case ENXIO: return "ENXIO";
	case ENOLINK: return "ENOLINK";
	case EFAULT: return "EFAULT";
	case EIO: return "EIO";
	case ENOENT: return "ENOENT";
	case EACCES: return "EACCES";
	case EINVAL: return "EINVAL";
	case ECANCELED: return "ECANCELED";
	case ESHUTDOWN: return "ESHUTDOWN";
	case ENOMEM: return "ENOMEM";
	case EROFS: return "EROFS";
	case ENOSPC: return "ENOSPC";
	}
	return NULL;
}

static int cmd_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "qd", required_argument, NULL, 'q' },
		{ "size", required_argument, NULL, 's' },
		{ "op", required_argument, NULL, 'o' },
		{ "rate", required_argument, NULL, 'r' },
		{ "duration", required_argument, NULL, 'd' },
		{ "count", required_argument, NULL, 'n' },
		{ "sequential", no_argument, NULL, 'S' },
		{ "random", no_argument, NULL, 'R' },
		{ "regs", required_argument, NULL, 'g' },
		{ "threads", required_argument, NULL, 't' },
		{ "behaviour", required_argument, NULL, 'b' },
		{ "behavior", required_argument, NULL, 'b' },
		{ "access", required_argument, NULL, 'a' },
		{ "media", required_argument, NULL, 'm' },
		{ "revocable", no_argument, NULL, 'V' },
		{ "odp", no_argument, NULL, 'O' },
		{ "longterm", no_argument, NULL, 'L' },
		{ "signal", required_argument, NULL, 'G' },
		{ "hold", required_argument, NULL, 'H' },
		{ "json", no_argument, NULL, 'j' },
		{ "quiet", no_argument, NULL, 'Q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct run_cfg c = { .qd = 16, .threads = 1, .regs_per_range = 1, .size = 64 << 10, .op = DAXFS_WR_WRITE,
			     .duration = -1, .count = -1, .hold = 0 };
	struct daxfs_dev_attr attr = { 0 };
	struct ev_print evp = { true };
	const char *media = NULL;
	uint32_t pin_flags = 0;
	uint64_t v;
	int ch;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'q':
			c.qd = (uint32_t)strtoul(optarg, NULL, 0);
			if (c.qd == 0 || c.qd > 4096)
				die_usage(PROG, "--qd %s: expected 1 to 4096", optarg);
			break;
		case 's':
			if (parse_size(optarg, &c.size) || c.size == 0 || c.size % DAXFS_TAG_UNIT || c.size > (4u << 20))
				die_usage(PROG, "--size %s: expected a multiple of 64 bytes up to 4M", optarg);
			break;
		case 'o':
			c.op = strcmp(optarg, "write") == 0 ? DAXFS_WR_WRITE : strcmp(optarg, "read") == 0 ? DAXFS_WR_READ : 0;
			if (!c.op)
				die_usage(PROG, "--op %s: expected write or read", optarg);
			break;
		case 'r': {
			size_t l = strlen(optarg);
			if (l > 2 && strcmp(optarg + l - 2, "/s") == 0) {
				char tmp[64];
				snprintf(tmp, sizeof(tmp), "%.*s", (int)(l - 2), optarg);
				if (parse_size(tmp, &v) || v == 0)
					die_usage(PROG, "--rate %s: expected N or SIZE/s", optarg);
				c.rate_req = -(double)v;	/* bytes/s: converted once --size is known */
			} else {
				char *end;
				c.rate_req = strtod(optarg, &end);
				if (*end || c.rate_req <= 0)
					die_usage(PROG, "--rate %s: expected N (requests/s) or SIZE/s (bytes/s)", optarg);
			}
			break;
		}
		case 'd': {
			char *end;
			c.duration = strtod(optarg, &end);
			if (*end || c.duration < 0)
				die_usage(PROG, "--duration %s: expected seconds", optarg);
			break;
		}
		case 'n':
			c.count = strtoll(optarg, NULL, 0);
			if (c.count <= 0)
				die_usage(PROG, "--count %s: expected a positive number", optarg);
			break;
		case 'S': c.random = false; break;
		case 'R': c.random = true; break;
		case 'g':
			c.regs_per_range = (uint32_t)strtoul(optarg, NULL, 0);
			if (c.regs_per_range == 0 || c.regs_per_range > 65536)
				die_usage(PROG, "--regs %s: expected 1 to 65536", optarg);
			break;
		case 't':
			c.threads = (uint32_t)strtoul(optarg, NULL, 0);
			if (c.threads == 0 || c.threads > 256)
				die_usage(PROG, "--threads %s: expected 1 to 256", optarg);
			break;
		case 'b':
			if (daxfs_dev_parse_behaviour(optarg, &attr))
				die_usage(PROG, "--behaviour %s: expected cooperative, slow:MS or ignore", optarg);
			break;
		case 'a':
			if (daxfs_dev_parse_access(optarg, &attr.access))
				die_usage(PROG, "--access %s: expected uring, mmap, ioctl or auto", optarg);
			break;
		case 'm': media = optarg; break;
		case 'V': attr.flags |= DAXFS_DEV_F_REVOCABLE; break;
		case 'O': pin_flags |= DAXFS_PIN_ODP; break;
		case 'L': pin_flags |= DAXFS_PIN_LONGTERM; break;
		case 'G':
			attr.signo = parse_signal(optarg);
			if (attr.signo < 0)
				die_usage(PROG, "--signal %s: expected USR1, USR2, IO, URG, RTMIN+N or a number", optarg);
			break;
		case 'H':
			if (strcmp(optarg, "inf") == 0) {
				c.hold = -1;
			} else {
				char *end;
				c.hold = strtod(optarg, &end);
				if (*end || c.hold < 0)
					die_usage(PROG, "--hold %s: expected seconds or inf", optarg);
			}
			break;
		case 'j': c.json = true; break;
		case 'Q': c.quiet = true; break;
		case 'h': usage(stdout); return EXIT_OK;
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	if (optind >= argc)
		die_usage(PROG, "run: which files?");
	if (c.rate_req < 0)
		c.rate_req = -c.rate_req / (double)c.size;
	if (c.duration < 0)
		c.duration = c.count >= 0 ? 1e9 : 1;
	if (c.op == DAXFS_WR_WRITE)
		pin_flags |= DAXFS_PIN_WRITE;
	evp.on = !c.json && !c.quiet;
	attr.on_event = print_event;
	attr.arg = &evp;

	/* Open every range first: the first file's mount is the device's. */
	int nranges = argc - optind, rc = EXIT_OK, ret;
	struct daxfs_dev *dev = NULL;
	struct daxfs_dev_info di;
	struct engine *eng = NULL;
	struct daxfs_mr_info *mi = NULL;
	uint64_t *hist = NULL;
	uint32_t nregs = (uint32_t)nranges * c.regs_per_range, nthreads = 0;
	int *fds = calloc((size_t)nranges, sizeof(int));
	char **paths = calloc((size_t)nranges, sizeof(char *));
	uint64_t *offs = calloc((size_t)nranges, sizeof(uint64_t)), *lens = calloc((size_t)nranges, sizeof(uint64_t));
	struct reg *regs = calloc(nregs, sizeof(*regs));
	if (!fds || !paths || !offs || !lens || !regs)
		die(PROG ": out of memory");
	for (int i = 0; i < nranges; i++)
		fds[i] = -1;
	for (int i = 0; i < nranges; i++) {
		struct stat st = { 0 };

		if (parse_range(argv[optind + i], &paths[i], &offs[i], &lens[i]))
			die(PROG ": out of memory");
		fds[i] = open(paths[i], (c.op == DAXFS_WR_WRITE ? O_RDWR : O_RDONLY) | O_CLOEXEC);
		if (fds[i] < 0) {
			fprintf(stderr, PROG ": %s: %s\n", paths[i], strerror(errno));
			rc = EXIT_ERROR;
			goto out;
		}
		if (fstat(fds[i], &st) == 0 && lens[i] == 0)
			lens[i] = (uint64_t)st.st_size > offs[i] ? (uint64_t)st.st_size - offs[i] : 0;
		if (lens[i] == 0) {
			fprintf(stderr, PROG ": %s: nothing to register at offset %llu (the file has %llu bytes)\n", paths[i],
				(unsigned long long)offs[i], (unsigned long long)st.st_size);
			rc = EXIT_ERROR;
			goto out;
		}
	}
	if ((ret = daxfs_dev_open(fds[0], media, &attr, &dev))) {
		fprintf(stderr, PROG ": %s: %s\n", paths[0], daxfs_dev_errmsg());
		rc = EXIT_ERROR;
		goto out;
	}
	daxfs_dev_query(dev, &di);
	if (c.op == DAXFS_WR_READ && di.access == DAXFS_DEV_ACCESS_IOCTL) {
		fprintf(stderr, PROG ": --op read needs uring or mmap access (the daemon's engine only writes)\n");
		rc = EXIT_USAGE;
		goto out;
	}

	uint32_t k = 0;
	for (int i = 0; i < nranges; i++) {
		uint64_t bs = di.block_size ? di.block_size : 4096;
		uint64_t part = (lens[i] / c.regs_per_range + bs - 1) / bs * bs;
		for (uint32_t j = 0; j < c.regs_per_range; j++) {
			uint64_t o = offs[i] + j * part, l = part;
			if (o >= offs[i] + lens[i])
				break;
			if (o + l > offs[i] + lens[i])
				l = offs[i] + lens[i] - o;
			ret = daxfs_reg_mr(dev, fds[i], o, l, pin_flags, &regs[k].mr);
			if (ret) {
				fprintf(stderr, PROG ": %s: register [%llu, +%llu): %s\n", paths[i], (unsigned long long)o,
					(unsigned long long)l, daxfs_dev_errmsg());
				rc = EXIT_ERROR;
				goto out;
			}
			struct daxfs_mr_info ri;
			daxfs_mr_query(regs[k].mr, &ri);
			regs[k].path = paths[i];
			regs[k].len = ri.length;
			if (!c.quiet && !c.json) {
				char h[32];
				printf("registered pin %llu: %s [%llu, +%s), %u extent%s, flags %s%s%s%s\n",
				       (unsigned long long)ri.pin_id, paths[i], (unsigned long long)ri.offset,
				       human(ri.length, h, sizeof(h)), ri.nextents, ri.nextents == 1 ? "" : "s",
				       ri.flags & DAXFS_PIN_WRITE ? "w" : "r", ri.flags & DAXFS_PIN_LONGTERM ? "L" : "",
				       ri.flags & DAXFS_PIN_REVOCABLE ? "R" : "", ri.flags & DAXFS_PIN_ODP ? "O" : "");
			}
			k++;
		}
		close(fds[i]);	/* the device keeps its own descriptor */
		fds[i] = -1;
	}
	nregs = k;
	if (!c.quiet && !c.json) {
		printf("device: %s access%s%s, %s, %u engine%s at qd %u, %llu-byte %ss\n", daxfs_dev_access_str(di.access),
		       di.media_path[0] ? " to " : "", di.media_path,
		       attr.behaviour == DAXFS_DEV_IGNORE ? "ignore" : attr.behaviour == DAXFS_DEV_SLOW ? "slow" : "cooperative",
		       c.threads, c.threads == 1 ? "" : "s", c.qd, (unsigned long long)c.size,
		       c.op == DAXFS_WR_WRITE ? "write" : "read");
		fflush(stdout);
	}

	struct sigaction sa = { .sa_handler = on_stop };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	count_left = c.count;
	uint64_t t0 = now_ns();
	run_deadline = t0 + (uint64_t)(c.duration * 1e9);
	eng = calloc(c.threads, sizeof(*eng));
	if (!eng)
		die(PROG ": out of memory");
	for (uint32_t i = 0; i < c.threads; i++) {
		struct engine *e = &eng[i];

		*e = (struct engine){ .cfg = &c, .regs = regs, .nregs = nregs, .idx = i };
		e->cursor = calloc(nregs, sizeof(uint64_t));
		e->hist = calloc(HBUCKETS, sizeof(uint64_t));
		if (!e->cursor || !e->hist)
			die(PROG ": out of memory");
		for (uint32_t r = 0; r < nregs; r++)	/* engines start apart in each registration */
			e->cursor[r] = (regs[r].len / c.threads * i) / c.size * c.size;
		if ((ret = daxfs_qp_create(dev, c.qd, &e->qp))) {
			fprintf(stderr, PROG ": queue pair: %s\n", strerror(-ret));
			stop_flag = 1;
			rc = EXIT_ERROR;
			break;
		}
		if ((ret = pthread_create(&e->t, NULL, engine_main, e)))
			die(PROG ": thread: %s", strerror(ret));
		nthreads++;
	}
	for (uint32_t i = 0; i < nthreads; i++)
		pthread_join(eng[i].t, NULL);
	if (rc)
		goto out;
	double elapsed = (double)(now_ns() - t0) / 1e9;
	if (c.hold != 0 && !stop_flag) {
		/* Hold until the time is up, a signal comes, or the device has let go of everything. */
		uint64_t until = c.hold < 0 ? UINT64_MAX : now_ns() + (uint64_t)(c.hold * 1e9);
		for (bool any = true; any && !stop_flag && now_ns() < until;) {
			usleep(10000);
			any = false;
			for (uint32_t i = 0; i < nregs && !any; i++) {
				struct daxfs_mr_info ri;
				daxfs_mr_query(regs[i].mr, &ri);
				any = ri.state == DAXFS_MR_ACTIVE || ri.state == DAXFS_MR_STOPPING;
			}
		}
	}

	/* Results, gathered before the registrations go. */
	struct engine tot = { 0 };
	hist = calloc(HBUCKETS, sizeof(uint64_t));
	int fatal = 0;
	for (uint32_t i = 0; i < c.threads; i++) {
		struct engine *e = &eng[i];
		tot.posted += e->posted;
		tot.completed += e->completed;
		tot.errors += e->errors;
		tot.bytes += e->bytes;
		if (e->lat_max > tot.lat_max)
			tot.lat_max = e->lat_max;
		for (int s = 0; s < 134; s++)
			tot.err_by[s] += e->err_by[s];
		for (unsigned b = 0; hist && b < HBUCKETS; b++)
			hist[b] += e->hist[b];
		if (e->fatal && !fatal)
			fatal = e->fatal;
	}
	uint64_t p50 = 0, p99 = 0, seen = 0;
	for (unsigned b = 0; hist && b < HBUCKETS && tot.completed; b++) {
		seen += hist[b];
		if (!p50 && seen * 2 >= tot.completed)
			p50 = hval(b);
		if (!p99 && seen * 100 >= tot.completed * 99) {
			p99 = hval(b);
			break;
		}
	}
	struct daxfs_dev_stats ds;
	daxfs_dev_stats(dev, &ds);
	mi = calloc(nregs ? nregs : 1, sizeof(*mi));
	for (uint32_t i = 0; mi && i < nregs; i++)
		daxfs_mr_query(regs[i].mr, &mi[i]);
	for (uint32_t i = 0; i < c.threads; i++)
		daxfs_qp_destroy(eng[i].qp);
	daxfs_dev_close(dev);	/* fenced deregistration of every registration */
	dev = NULL;

	const char *opname = c.op == DAXFS_WR_WRITE ? "write" : "read";
	if (c.json) {
		printf("{\"registrations\":[");
		for (uint32_t i = 0; mi && i < nregs; i++) {
			printf("%s{\"file\":", i ? "," : "");
			json_str(stdout, regs[i].path);
			printf(",\"pin\":%llu,\"offset\":%llu,\"length\":%llu,\"flags\":%u,\"extents\":%u,\"state\":\"%s\","
			       "\"lost_on\":\"%s\",\"gen\":%u,\"events\":%llu,\"faults\":%llu,\"refaults\":%llu,\"acks\":%llu}",
			       (unsigned long long)mi[i].pin_id, (unsigned long long)mi[i].offset,
			       (unsigned long long)mi[i].length, mi[i].flags, mi[i].nextents, daxfs_mr_state_str(mi[i].state),
			       mi[i].lost_event ? daxfs_event_str(mi[i].lost_event) : "", mi[i].gen,
			       (unsigned long long)mi[i].events, (unsigned long long)mi[i].faults,
			       (unsigned long long)mi[i].refaults, (unsigned long long)mi[i].acks);
		}
		printf("],\"access\":\"%s\",\"behaviour\":\"%s\",\"op\":\"%s\",\"engines\":%u,\"qd\":%u,\"size\":%llu,"
		       "\"seconds\":%.6f,\"posted\":%llu,\"completed\":%llu,\"errors\":%llu,\"errors_by_status\":{",
		       daxfs_dev_access_str(di.access),
		       attr.behaviour == DAXFS_DEV_IGNORE ? "ignore" : attr.behaviour == DAXFS_DEV_SLOW ? "slow" : "cooperative",
		       opname, c.threads, c.qd, (unsigned long long)c.size, elapsed, (unsigned long long)tot.posted,
		       (unsigned long long)tot.completed, (unsigned long long)tot.errors);
		bool first = true;
		for (int s = 0; s < 134; s++) {
			if (!tot.err_by[s])
				continue;
			const char *nm = errno_name(s);
			printf("%s\"%s\":%llu", first ? "" : ",", nm ? nm : s ? strerror(s) : "other",
			       (unsigned long long)tot.err_by[s]);
			first = false;
		}
		printf("},\"bytes\":%llu,\"bytes_per_s\":%.0f,\"requests_per_s\":%.1f,"
		       "\"latency_us\":{\"p50\":%.1f,\"p99\":%.1f,\"max\":%.1f},"
		       "\"events\":{\"lease_break\":%llu,\"revoked\":%llu,\"invalidate\":%llu,\"dropped\":%llu},"
		       "\"signals\":%llu,\"faults\":%llu,\"refaults\":%llu,\"acks\":%llu,\"registrations_lost\":%llu}\n",
		       (unsigned long long)tot.bytes, elapsed > 0 ? (double)tot.bytes / elapsed : 0,
		       elapsed > 0 ? (double)tot.completed / elapsed : 0, (double)p50 / 1e3, (double)p99 / 1e3,
		       (double)tot.lat_max / 1e3, (unsigned long long)ds.events[DAXFS_EV_LEASE_BREAK],
		       (unsigned long long)ds.events[DAXFS_EV_REVOKED], (unsigned long long)ds.events[DAXFS_EV_INVALIDATE],
		       (unsigned long long)ds.events[DAXFS_EV_DROPPED], (unsigned long long)ds.signals,
		       (unsigned long long)ds.faults, (unsigned long long)ds.refaults, (unsigned long long)ds.acks,
		       (unsigned long long)ds.lost);
	} else {
		char h1[32], h2[32];
		printf("%llu %ss in %.2f s: %llu completed, %llu errors", (unsigned long long)tot.posted, opname, elapsed,
		       (unsigned long long)tot.completed, (unsigned long long)tot.errors);
		for (int s = 0; s < 134; s++) {
			if (tot.err_by[s]) {
				const char *nm = errno_name(s);
				printf(" (%s %llu)", nm ? nm : s ? strerror(s) : "other", (unsigned long long)tot.err_by[s]);
			}
		}
		printf("\n%s, %s/s, %.0f requests/s; latency p50 %.1f us, p99 %.1f us, max %.1f us\n",
		       human(tot.bytes, h1, sizeof(h1)), human(elapsed > 0 ? (uint64_t)((double)tot.bytes / elapsed) : 0, h2, sizeof(h2)),
		       elapsed > 0 ? (double)tot.completed / elapsed : 0, (double)p50 / 1e3, (double)p99 / 1e3,
		       (double)tot.lat_max / 1e3);
		printf("events: lease-break %llu, revoked %llu, invalidate %llu, dropped %llu (signals %llu); faults %llu, "
		       "refaults %llu, acks %llu; registrations let go %llu of %u\n",
		       (unsigned long long)ds.events[DAXFS_EV_LEASE_BREAK], (unsigned long long)ds.events[DAXFS_EV_REVOKED],
		       (unsigned long long)ds.events[DAXFS_EV_INVALIDATE], (unsigned long long)ds.events[DAXFS_EV_DROPPED],
		       (unsigned long long)ds.signals, (unsigned long long)ds.faults, (unsigned long long)ds.refaults,
		       (unsigned long long)ds.acks, (unsigned long long)ds.lost, nregs);
	}
	if (fatal) {
		fprintf(stderr, PROG ": an engine stopped: %s\n", strerror(-fatal));
		rc = EXIT_ERROR;
	}
out:
	daxfs_dev_close(dev);	/* NULL when done above; otherwise fences and unpins what was registered */
	for (uint32_t i = 0; eng && i < c.threads; i++) {
		free(eng[i].cursor);
		free(eng[i].hist);
	}
	for (int i = 0; i < nranges; i++) {
		if (fds[i] >= 0)
			close(fds[i]);
		free(paths[i]);
	}
	free(eng);
	free(mi);
	free(hist);
	free(regs);
	free(fds);
	free(paths);
	free(offs);
	free(lens);
	return rc;
}

/* ---- scan ---- */

static const char *pin_state_name(uint32_t s)
{
	return s ? daxfs_pin_state_str(s) : "gone";
}

static int cmd_scan(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "trace", required_argument, NULL, 't' },
		{ "max", required_argument, NULL, 'm' },
		{ "json", no_argument, NULL, 'j' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct daxfs_scan_opts so = { 0 };
	bool json = false, quiet = false;
	int ch;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 't': so.trace = optarg; break;
		case 'm': so.max_strays = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'j': json = true; break;
		case 'q': quiet = true; break;
		case 'h': usage(stdout); return EXIT_OK;
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	if (argc - optind != 1)
		die_usage(PROG, "scan: expected one PATH (a daxfs mount point, or a directory or file on one)");
	const char *path = argv[optind];
	struct daxfs_scan_report r;
	int ret = daxfs_scan(path, &so, &r);
	if (ret) {
		fprintf(stderr, PROG ": scan: %s\n", r.first_error[0] ? r.first_error : strerror(-ret));
		daxfs_scan_free(&r);
		return EXIT_ERROR;
	}
	/* Distinct source pins, for the summary. */
	uint64_t pins[8];
	int npins = 0;
	for (uint32_t i = 0; i < r.nstrays && npins < 8; i++) {
		int k = 0;
		while (k < npins && pins[k] != r.strays[i].tag.pin_id)
			k++;
		if (k == npins)
			pins[npins++] = r.strays[i].tag.pin_id;
	}
	if (json) {
		printf("{\"path\":");
		json_str(stdout, path);
		printf(",\"clean\":%s,\"files\":%llu,\"bytes\":%llu,\"tags\":%llu,\"legit\":%llu,\"stray\":%llu,\"runs\":%u,"
		       "\"truncated\":%s,\"errors\":%llu,\"trace_records\":%llu,",
		       r.stray ? "false" : "true", (unsigned long long)r.files, (unsigned long long)r.bytes,
		       (unsigned long long)r.tags, (unsigned long long)r.legit, (unsigned long long)r.stray, r.nstrays,
		       r.truncated ? "true" : "false", (unsigned long long)r.errors, (unsigned long long)r.trace_records);
		printf("\"first_error\":");
		json_str(stdout, r.first_error);
		printf(",\"strays\":[");
		for (uint32_t i = 0; i < r.nstrays; i++) {
			const struct daxfs_stray *s = &r.strays[i];
			printf("%s{\"file\":", i ? "," : "");
			json_str(stdout, s->path);
			printf(",\"ino\":%llu,\"file_off\":%llu,\"len\":%llu,\"media_off\":%lld,\"reason\":\"%s\","
			       "\"pin\":%llu,\"pin_state\":\"%s\",\"pin_pid\":%d,\"tag\":{\"ino\":%llu,\"file_off\":%llu,"
			       "\"media_off\":%llu,\"seq\":%llu,\"gen\":%u,\"source\":\"%s\",\"time_ns\":%llu},"
			       "\"seq_min\":%llu,\"seq_max\":%llu,\"record_ns\":%llu}",
			       (unsigned long long)s->ino, (unsigned long long)s->file_off, (unsigned long long)s->len,
			       s->media_off == DAXFS_MEDIA_ZERO ? -1LL : (long long)s->media_off, daxfs_stray_str(s->reason),
			       (unsigned long long)s->tag.pin_id, pin_state_name(s->pin_state), s->pin_pid,
			       (unsigned long long)s->tag.ino, (unsigned long long)s->tag.file_off,
			       (unsigned long long)s->tag.media_off, (unsigned long long)s->tag.seq, s->tag.gen,
			       s->tag.source == DAXFS_TAG_SRC_DEVICE ? "device" : s->tag.source == DAXFS_TAG_SRC_IOCTL ? "ioctl" : "?",
			       (unsigned long long)s->tag.time_ns, (unsigned long long)s->seq_min,
			       (unsigned long long)s->seq_max, (unsigned long long)s->record_ns);
		}
		printf("]}\n");
	} else {
		for (uint32_t i = 0; !quiet && i < r.nstrays; i++) {
			const struct daxfs_stray *s = &r.strays[i];
			char mo[32];

			if (s->media_off == DAXFS_MEDIA_ZERO)
				snprintf(mo, sizeof(mo), "?");
			else
				snprintf(mo, sizeof(mo), "%llu", (unsigned long long)s->media_off);
			printf("STRAY %s [%llu, +%llu) media %s: pin %llu (%s", s->path, (unsigned long long)s->file_off,
			       (unsigned long long)s->len, mo, (unsigned long long)s->tag.pin_id, pin_state_name(s->pin_state));
			if (s->pin_pid)
				printf(", holder %d", s->pin_pid);
			printf(") seq %llu", (unsigned long long)s->seq_min);
			if (s->seq_max != s->seq_min)
				printf("..%llu", (unsigned long long)s->seq_max);
			printf(" gen %u, meant for inode %llu offset %llu at media %llu: %s\n", s->tag.gen,
			       (unsigned long long)s->tag.ino, (unsigned long long)s->tag.file_off,
			       (unsigned long long)s->tag.media_off, daxfs_stray_str(s->reason));
		}
		char h[32];
		printf(PROG " scan: %llu files, %s, %llu tags: %llu legitimate, %llu stray", (unsigned long long)r.files,
		       human(r.bytes, h, sizeof(h)), (unsigned long long)r.tags, (unsigned long long)r.legit,
		       (unsigned long long)r.stray);
		if (r.stray) {
			printf(" in %u run%s%s from pin%s", r.nstrays, r.nstrays == 1 ? "" : "s", r.truncated ? "+" : "",
			       npins == 1 ? "" : "s");
			for (int i = 0; i < npins; i++)
				printf("%s %llu", i ? "," : "", (unsigned long long)pins[i]);
		}
		if (r.errors)
			printf("; %llu errors (%s)", (unsigned long long)r.errors, r.first_error);
		printf(": %s\n", r.stray ? "CORRUPTION" : r.errors ? "incomplete" : "clean");
	}
	int rc = r.stray ? EXIT_FOUND : r.errors ? EXIT_ERROR : EXIT_OK;
	daxfs_scan_free(&r);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return EXIT_OK;
	}
	if (strcmp(argv[1], "run") == 0)
		return cmd_run(argc - 1, argv + 1);
	if (strcmp(argv[1], "scan") == 0)
		return cmd_scan(argc - 1, argv + 1);
	fprintf(stderr, PROG ": unknown command '%s' (run, scan; see --help)\n", argv[1]);
	return EXIT_USAGE;
}
