/* SPDX-License-Identifier: MIT */
/*
 * The simulated RDMA device (include/daxfs/device.h) and the corruption detector
 * (include/daxfs/detect.h) on mounted images: a device writing the media at queue depth 32 with
 * every unit verifiable afterwards; truncates under its DMA with policy busy (nothing stray) and
 * unsafe (stray units in the next owner's file, attributed to the right pin, and, with the trace,
 * even when the same block came back to the same file and offset); every device behaviour against a
 * lease break under policy revoke; ODP invalidate, acknowledge and refault under policy odp; events
 * by signal and by the events ioctl, on the open file each registration was pinned through; a holder
 * killed in the middle of its DMA; and bad input, through the library and the daxfs-rdma tool.
 *
 * Waits are for conditions, with deadlines (PU_POLL); the only timing asserted is what the daemon's
 * and the device's own clocks say, as bounds (a slow device cooperates no earlier than its delay).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daxfs/detect.h"
#include "daxfs/device.h"
#include "pins_util.h"

#define FSIZE (16 * MiB)
#define MR_OFF (1 * MiB)
#define MR_LEN (2 * MiB)
#define WR_SIZE (64 * KiB)
#define W DAXFS_PIN_WRITE
#define LT DAXFS_PIN_LONGTERM

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- a device thread: posts WRITEs over a registration, in order, at a queue depth ---- */

struct driver {
	struct daxfs_qp *qp;
	struct daxfs_mr *mr;
	uint64_t len;		/* of the registration */
	uint32_t qd;
	uint64_t *chunk_seq;	/* the seq of the last completed WRITE of each WR_SIZE chunk, or NULL */
	int stop;		/* atomic */
	uint64_t completed;	/* atomic: completions with status 0 */
	uint64_t enxio;		/* atomic: completions that faulted past EOF */
	uint64_t failed;	/* atomic: any other error status */
	int first_bad;		/* the first of those */
	int lost;		/* atomic: the device let go of the registration */
	int post_err;		/* an unexpected refusal */
	pthread_t t;
};

static void account(struct driver *d, const struct daxfs_wc *wc, int n);

static void *drive(void *arg)
{
	struct driver *d = arg;
	struct daxfs_wc wc[64];
	uint64_t off = 0;

	while (!__atomic_load_n(&d->stop, __ATOMIC_ACQUIRE)) {
		while (!__atomic_load_n(&d->lost, __ATOMIC_RELAXED) && !__atomic_load_n(&d->stop, __ATOMIC_RELAXED) &&
		       daxfs_qp_outstanding(d->qp) < d->qd) {
			struct daxfs_wr wr = { .wr_id = off / WR_SIZE, .opcode = DAXFS_WR_WRITE, .mr = d->mr, .offset = off,
					       .length = WR_SIZE };
			int r = daxfs_post(d->qp, &wr);

			if (r == -EAGAIN)
				break;
			if (r == -ENOLINK || r == -ESHUTDOWN) {
				__atomic_store_n(&d->lost, 1, __ATOMIC_RELEASE);
				break;
			}
			if (r) {
				d->post_err = r;
				__atomic_store_n(&d->lost, 1, __ATOMIC_RELEASE);
				break;
			}
			off = off + WR_SIZE >= d->len ? 0 : off + WR_SIZE;
		}
		int n = daxfs_wait_cq(d->qp, wc, 64, 5);
		account(d, wc, n);
		if (n == 0 && daxfs_qp_outstanding(d->qp) == 0)
			usleep(500);	/* nothing to do until told to stop */
	}
	while (daxfs_qp_outstanding(d->qp))
		account(d, wc, daxfs_wait_cq(d->qp, wc, 64, 100));
	return NULL;
}

static void account(struct driver *d, const struct daxfs_wc *wc, int n)
{
	for (int i = 0; i < n; i++) {
		if (wc[i].status == 0) {
			if (d->chunk_seq)
				d->chunk_seq[wc[i].wr_id] = wc[i].seq;
			__atomic_add_fetch(&d->completed, 1, __ATOMIC_RELEASE);
		} else if (wc[i].status == -ENXIO) {
			__atomic_add_fetch(&d->enxio, 1, __ATOMIC_RELEASE);
		} else {
			if (!d->first_bad)
				d->first_bad = wc[i].status;
			__atomic_add_fetch(&d->failed, 1, __ATOMIC_RELEASE);
		}
	}
}

static uint64_t done_of(struct driver *d)
{
	return __atomic_load_n(&d->completed, __ATOMIC_ACQUIRE);
}

static void drive_start(struct driver *d, struct daxfs_dev *dev, struct daxfs_mr *mr, uint32_t qd)
{
	struct daxfs_mr_info mi;

	daxfs_mr_query(mr, &mi);
	d->mr = mr;
	d->len = mi.length;
	d->qd = qd;
	__atomic_store_n(&d->stop, 0, __ATOMIC_RELEASE);
	if (!d->qp)
		assert_int_equal(daxfs_qp_create(dev, qd, &d->qp), 0);
	assert_int_equal(pthread_create(&d->t, NULL, drive, d), 0);
}

/* Wait until the device has completed n more writes (it is running), or fail. */
static void progress(struct driver *d, uint64_t n, const char *what)
{
	uint64_t want = done_of(d) + n;

	if (!PU_POLL(done_of(d) >= want, PU_WAIT_MS))
		fail_msg("%s: the device completed %llu writes, not %llu (errors %llu, first %d, lost %d, post %d)", what,
			 (unsigned long long)done_of(d), (unsigned long long)want, (unsigned long long)d->failed,
			 d->first_bad, d->lost, d->post_err);
}

static void drive_stop(struct driver *d)
{
	__atomic_store_n(&d->stop, 1, __ATOMIC_RELEASE);
	assert_int_equal(pthread_join(d->t, NULL), 0);
}

/* ---- events the device saw (its callback runs on the device's event thread) ---- */

struct seen {
	uint64_t first_ns[5];	/* CLOCK_MONOTONIC of the first event of each type */
	uint64_t count[5];
};

static void on_event(void *arg, struct daxfs_mr *mr, const struct daxfs_event *ev)
{
	struct seen *s = arg;

	(void)mr;
	if (ev->type < 5) {
		uint64_t zero = 0;
		__atomic_compare_exchange_n(&s->first_ns[ev->type], &zero, now_ns(), false, __ATOMIC_RELEASE,
					    __ATOMIC_RELAXED);
		__atomic_add_fetch(&s->count[ev->type], 1, __ATOMIC_RELEASE);
	}
}

static uint64_t seen_count(struct seen *s, uint32_t type)
{
	return __atomic_load_n(&s->count[type], __ATOMIC_ACQUIRE);
}

/* ---- a mounted file system with F written and a device on it ---- */

struct fx {
	struct mnt m;
	char f[512], g[512], trace[256];
	int dfd, fd;
	uint64_t ino;
	struct daxfs_dev *dev;
	struct seen seen;
};

static void fx_up(struct fx *x, const char *name, const char *opts, const struct daxfs_dev_attr *a)
{
	struct stat st;
	struct daxfs_dev_attr attr = a ? *a : (struct daxfs_dev_attr){ 0 };

	memset(&x->seen, 0, sizeof(x->seen));
	pu_setup(&x->m, name, "64M", opts);
	snprintf(x->f, sizeof(x->f), "%s", P(&x->m, "F"));
	snprintf(x->g, sizeof(x->g), "%s", P(&x->m, "G"));
	x->trace[0] = 0;
	x->dfd = pu_dirfd(&x->m);
	pu_write_file(x->f, FSIZE, 1);
	x->fd = open(x->f, O_RDWR);
	assert_true(x->fd >= 0);
	assert_ok(fstat(x->fd, &st));
	x->ino = st.st_ino;
	attr.on_event = on_event;
	attr.arg = &x->seen;
	int ret = daxfs_dev_open(x->dfd, NULL, &attr, &x->dev);
	if (ret)
		fail_msg("daxfs_dev_open: %s", daxfs_dev_errmsg());
}

/* Trace the daemon's events into a file of our own. */
static void fx_trace(struct fx *x, const char *name)
{
	snprintf(x->trace, sizeof(x->trace), "/dev/shm/daxfs-devtest-%d-%s.trace", (int)getpid(), name);
	assert_int_equal(daxfs_trace(x->dfd, DAXFS_TRACE_START, x->trace, NULL), 0);
}

static void fx_down(struct fx *x)
{
	daxfs_dev_close(x->dev);
	if (x->fd >= 0)
		close(x->fd);
	close(x->dfd);
	pu_finish(&x->m);	/* unmount, fsck -n clean */
	if (x->trace[0])
		unlink(x->trace);
}

static struct daxfs_mr *reg(struct fx *x, int fd, uint64_t off, uint64_t len, uint32_t flags)
{
	struct daxfs_mr *mr;
	int ret = daxfs_reg_mr(x->dev, fd, off, len, flags, &mr);

	if (ret)
		fail_msg("daxfs_reg_mr [%llu, +%llu) flags %#x: %s", (unsigned long long)off, (unsigned long long)len, flags,
			 daxfs_dev_errmsg());
	return mr;
}

static struct daxfs_mr_info mr_info(struct daxfs_mr *mr)
{
	struct daxfs_mr_info mi;

	daxfs_mr_query(mr, &mi);
	return mi;
}

/*
 * The device shows LOST only after its unpin returned, and the truncate that waited for that unpin
 * may return first: wait for it.
 */
static struct daxfs_mr_info wait_lost(struct daxfs_mr *mr)
{
	if (!PU_POLL(mr_info(mr).state == DAXFS_MR_LOST, PU_WAIT_MS))
		fail_msg("the registration is %s, not lost, 30 s after its pin went", daxfs_mr_state_str(mr_info(mr).state));
	return mr_info(mr);
}

static struct daxfs_scan_report scan(struct fx *x, bool with_trace)
{
	struct daxfs_scan_opts o = { .trace = with_trace ? x->trace : NULL };
	struct daxfs_scan_report r;
	int ret = daxfs_scan(x->m.dir, &o, &r);

	if (ret)
		fail_msg("daxfs_scan: %s", r.first_error);
	if (r.errors)
		fail_msg("daxfs_scan: %llu errors: %s", (unsigned long long)r.errors, r.first_error);
	return r;
}

static void expect_clean(struct fx *x, bool with_trace, const char *what)
{
	struct daxfs_scan_report r = scan(x, with_trace);

	if (r.stray)
		fail_msg("%s: %llu stray units, first in %s at %llu from pin %llu (%s)", what, (unsigned long long)r.stray,
			 r.strays[0].path, (unsigned long long)r.strays[0].file_off, (unsigned long long)r.strays[0].tag.pin_id,
			 daxfs_stray_str(r.strays[0].reason));
	daxfs_scan_free(&r);
}

/* Every stray unit is in G, for the reason given, from pin, whose state is pin_state. */
static void expect_stray_in_g(struct fx *x, bool with_trace, uint64_t pin, uint32_t reason, uint32_t pin_state)
{
	struct daxfs_scan_report r = scan(x, with_trace);

	if (r.stray == 0)
		fail_msg("no stray units found (%llu tags, %llu legitimate)", (unsigned long long)r.tags,
			 (unsigned long long)r.legit);
	for (uint32_t i = 0; i < r.nstrays; i++) {
		const struct daxfs_stray *s = &r.strays[i];

		if (strcmp(s->path, x->g) != 0 || s->tag.pin_id != pin || s->reason != reason || s->pin_state != pin_state)
			fail_msg("stray run %u: %s at %llu, pin %llu (%s), %s; expected %s, pin %llu (%s), %s", i, s->path,
				 (unsigned long long)s->file_off, (unsigned long long)s->tag.pin_id,
				 daxfs_pin_state_str(s->pin_state), daxfs_stray_str(s->reason), x->g, (unsigned long long)pin,
				 daxfs_pin_state_str(pin_state), daxfs_stray_str(reason));
		assert_int_equal(s->tag.ino, x->ino);	/* meant for F */
		assert_int_equal(s->tag.source, DAXFS_TAG_SRC_DEVICE);
		assert_int_equal(s->media_off, s->tag.media_off);	/* written where G's block lives */
		assert_int_equal(s->len % DAXFS_TAG_UNIT, 0);
	}
	daxfs_scan_free(&r);
}

/* ---- a free running in a thread (it may wait for the device) ---- */

struct free_job {
	const char *path;
	int fd;
	int punch;		/* punch [off, off + len) rather than truncate to off */
	uint64_t off, len;
	int err;
	uint64_t ns;		/* how long it took */
	int done;
	pthread_t t;
};

static void *free_thread(void *arg)
{
	struct free_job *j = arg;
	sigset_t set;

	/*
	 * Event signals are process-directed: one delivered to this thread while its truncate waits in
	 * the daemon would interrupt the request (EINTR).  Threads that may wait on the mount block them.
	 */
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	sigaddset(&set, SIGIO);
	sigaddset(&set, SIGURG);
	for (int sig = SIGRTMIN; sig <= SIGRTMAX; sig++)
		sigaddset(&set, sig);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	uint64_t t0 = now_ns();
	int r = j->punch ? fallocate(j->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)j->off, (off_t)j->len)
			 : truncate(j->path, (off_t)j->off);

	j->err = r ? errno : 0;
	j->ns = now_ns() - t0;
	__atomic_store_n(&j->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void free_start(struct free_job *j)
{
	assert_int_equal(pthread_create(&j->t, NULL, free_thread, j), 0);
}

static void free_join(struct free_job *j, const char *what)
{
	if (!PU_POLL(__atomic_load_n(&j->done, __ATOMIC_ACQUIRE), PU_WAIT_MS))
		fail_msg("%s: still running after 20 s", what);
	assert_int_equal(pthread_join(j->t, NULL), 0);
	if (j->err)
		fail_msg("%s: %s", what, strerror(j->err));
}

/* ---- DMA at queue depth 32, every unit verifiable ---- */

/* The media under [off, off + len) of mr holds, unit by unit, the tag of chunk_seq[chunk]. */
static void verify_media(struct fx *x, struct daxfs_mr *mr, const uint64_t *chunk_seq, uint64_t len, uint32_t source)
{
	struct daxfs_mr_info mi = mr_info(mr);
	struct daxfs_pin_extent *ext;
	uint32_t n;

	assert_int_equal(daxfs_mr_extents(mr, &ext, &n), 0);
	struct daxfs_pin p = { .id = mi.pin_id, .offset = mi.offset, .length = mi.length, .nextents = n, .ext = ext };
	for (uint64_t off = 0; off < len;) {
		uint64_t m, run;

		assert_int_equal(daxfs_pin_map(&p, off, &m, &run), 0);
		if (run > len - off)
			run = len - off;
		char *buf = malloc(run);
		assert_non_null(buf);
		pu_read_media(&x->m, m, buf, run);
		for (uint64_t i = 0; i < run; i += DAXFS_TAG_UNIT) {
			struct daxfs_tag t;
			uint64_t at = off + i;

			if (!daxfs_tag_decode(buf + i, &t))
				fail_msg("media %llu (registration offset %llu): no tag", (unsigned long long)(m + i),
					 (unsigned long long)at);
			if (t.pin_id != mi.pin_id || t.ino != x->ino || t.file_off != mi.offset + at || t.media_off != m + i ||
			    t.source != source || (chunk_seq && t.seq != chunk_seq[at / WR_SIZE]))
				fail_msg("media %llu: tag pin %llu ino %llu file %llu media %llu seq %llu source %u; expected pin "
					 "%llu ino %llu file %llu media %llu seq %llu source %u",
					 (unsigned long long)(m + i), (unsigned long long)t.pin_id, (unsigned long long)t.ino,
					 (unsigned long long)t.file_off, (unsigned long long)t.media_off, (unsigned long long)t.seq,
					 t.source, (unsigned long long)mi.pin_id, (unsigned long long)x->ino,
					 (unsigned long long)(mi.offset + at), (unsigned long long)(m + i),
					 (unsigned long long)(chunk_seq ? chunk_seq[at / WR_SIZE] : 0), source);
		}
		free(buf);
		off += run;
	}
	free(ext);
}

static void test_qd32_verified(void **state)
{
	struct fx x;
	struct daxfs_wc wc;

	(void)state;
	fx_up(&x, "dev-qd32", NULL, NULL);
	const uint64_t len = 8 * MiB;
	struct daxfs_mr *mr = reg(&x, x.fd, 0, len, W | LT);
	uint64_t *chunk_seq = calloc(len / WR_SIZE, sizeof(uint64_t));
	assert_non_null(chunk_seq);
	struct driver d = { .chunk_seq = chunk_seq };
	drive_start(&d, x.dev, mr, 32);
	/* Two seconds at depth 32: a few thousand writes, none failed. */
	uint64_t t_end = pu_now_ms() + 2000;
	while (pu_now_ms() < t_end && !__atomic_load_n(&d.lost, __ATOMIC_RELAXED))
		progress(&d, 1, "QD 32");
	drive_stop(&d);
	assert_int_equal(d.failed, 0);
	assert_int_equal(d.enxio, 0);
	assert_int_equal(d.post_err, 0);
	assert_int_equal(d.lost, 0);
	assert_true(done_of(&d) >= 2 * len / WR_SIZE);	/* every chunk written at least twice */
	struct daxfs_dev_stats st;
	daxfs_dev_stats(x.dev, &st);
	assert_int_equal(st.posted, st.completed);
	assert_int_equal(st.errors, 0);
	assert_int_equal(st.bytes_written, done_of(&d) * WR_SIZE);
	/* Every unit on the media is the last write of its chunk, where the registration says. */
	verify_media(&x, mr, chunk_seq, len, DAXFS_TAG_SRC_DEVICE);
	/* The device reads the same back; so does the file. */
	char *via_dev = malloc(len), *via_file = malloc(len);
	assert_non_null(via_dev);
	assert_non_null(via_file);
	struct daxfs_wr rd = { .wr_id = 1, .opcode = DAXFS_WR_READ, .mr = mr, .offset = 0, .length = 4 * MiB, .buf = via_dev };
	assert_int_equal(daxfs_post(d.qp, &rd), 0);
	rd.offset = rd.length = 4 * MiB;
	rd.buf = via_dev + 4 * MiB;
	assert_int_equal(daxfs_post(d.qp, &rd), 0);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(daxfs_wait_cq(d.qp, &wc, 1, 10000), 1);
		assert_int_equal(wc.status, 0);
		assert_int_equal(wc.bytes, 4 * MiB);
	}
	assert_int_equal(pread(x.fd, via_file, len, 0), (ssize_t)len);
	assert_memory_equal(via_dev, via_file, len);
	free(via_dev);
	free(via_file);

	/* The other access modes, each on a region of its own: mmap, and the daemon's engine (ioctl). */
	for (int access = DAXFS_DEV_ACCESS_MMAP; access <= DAXFS_DEV_ACCESS_IOCTL; access++) {
		struct daxfs_dev_attr a = { .access = (enum daxfs_dev_access)access };
		struct daxfs_dev *dev2;
		struct daxfs_mr *mr2;
		struct daxfs_qp *qp2;
		uint64_t seqs[16];

		assert_int_equal(daxfs_dev_open(x.dfd, NULL, &a, &dev2), 0);
		assert_int_equal(daxfs_reg_mr(dev2, x.fd, 8 * MiB + (uint64_t)(access - 2) * MiB, MiB, W, &mr2), 0);
		assert_int_equal(daxfs_qp_create(dev2, 4, &qp2), 0);
		for (uint64_t i = 0; i < 16; i++) {
			struct daxfs_wr wr = { .wr_id = i, .opcode = DAXFS_WR_WRITE, .mr = mr2, .offset = i * WR_SIZE,
					       .length = WR_SIZE, .seq = 1000 + i };
			assert_int_equal(daxfs_post(qp2, &wr), 0);
			assert_int_equal(daxfs_wait_cq(qp2, &wc, 1, 10000), 1);
			assert_int_equal(wc.status, 0);
			seqs[i] = wc.seq;
		}
		verify_media(&x, mr2, seqs, MiB, access == DAXFS_DEV_ACCESS_IOCTL ? DAXFS_TAG_SRC_IOCTL : DAXFS_TAG_SRC_DEVICE);
		if (access == DAXFS_DEV_ACCESS_IOCTL) {
			struct daxfs_wr wr = { .opcode = DAXFS_WR_READ, .mr = mr2, .offset = 0, .length = WR_SIZE };
			assert_int_equal(daxfs_post(qp2, &wr), -EOPNOTSUPP);
		}
		daxfs_dev_close(dev2);
	}
	/* Everything written is where it belongs. */
	expect_clean(&x, false, "after QD 32");
	free(chunk_seq);
	fx_down(&x);
}

/* ---- truncate under the device's DMA: busy keeps it harmless, unsafe does not ---- */

static void test_truncate_busy(void **state)
{
	struct fx x;
	struct driver d = { 0 };

	(void)state;
	fx_up(&x, "dev-busy", "policy=busy", NULL);
	struct daxfs_mr *mr = reg(&x, x.fd, MR_OFF, MR_LEN, W | LT);
	drive_start(&d, x.dev, mr, 16);
	progress(&d, 100, "before the truncate");
	assert_ok(truncate(x.f, 0));
	/* Busy: no event, the device keeps writing its blocks, now busy extents nobody else gets. */
	progress(&d, 100, "after the truncate");
	assert_int_equal(pu_stats(x.dfd).busy_blocks, MR_LEN / BS);
	pu_fill(x.g);
	progress(&d, 200, "after the fill");
	expect_clean(&x, false, "busy, device writing");
	struct scan s = pu_scan(x.g);
	assert_int_equal(s.units, 0);
	assert_int_equal(s.foreign, 0);
	drive_stop(&d);
	assert_int_equal(d.failed + d.enxio, 0);
	assert_int_equal(seen_count(&x.seen, DAXFS_EV_LEASE_BREAK) + seen_count(&x.seen, DAXFS_EV_REVOKED), 0);
	assert_int_equal(daxfs_dereg_mr(mr), 0);
	if (!PU_POLL(pu_stats(x.dfd).busy_blocks == 0, PU_WAIT_MS))
		fail_msg("busy blocks not reclaimed after the deregistration");
	expect_clean(&x, false, "busy, after the deregistration");
	fx_down(&x);
}

static void test_truncate_unsafe(void **state)
{
	struct fx x;
	struct driver d = { 0 };
	char out[8192];

	(void)state;
	fx_up(&x, "dev-unsafe", "policy=unsafe", NULL);
	struct daxfs_mr *mr = reg(&x, x.fd, MR_OFF, MR_LEN, W | LT);
	uint64_t pin = mr_info(mr).pin_id;
	drive_start(&d, x.dev, mr, 16);
	progress(&d, 100, "before the truncate");
	assert_ok(truncate(x.f, 0));
	pu_fill(x.g);	/* takes the blocks the device still writes */
	progress(&d, 200, "after the fill");
	drive_stop(&d);
	assert_int_equal(pu_stats(x.dfd).unsafe_blocks, MR_LEN / BS);
	/* The detector finds the device's writes in G and names the pin, still registered. */
	expect_stray_in_g(&x, false, pin, DAXFS_STRAY_WRONG_FILE, DAXFS_PIN_ACTIVE);
	/* So does the tool: exit 1, the pin in its report. */
	int rc = h_run(out, sizeof(out), "%s scan --json %s", getenv("DAXFS_RDMA_BIN"), x.m.dir);
	assert_int_equal(rc, 1);
	char want[64];
	snprintf(want, sizeof(want), "\"pin\":%llu,\"pin_state\":\"active\"", (unsigned long long)pin);
	if (!strstr(out, want) || !strstr(out, "\"clean\":false") || !strstr(out, "\"reason\":\"wrong-file\""))
		fail_msg("daxfs-rdma scan --json: %s", out);
	assert_int_equal(daxfs_dereg_mr(mr), 0);
	/* Gone now: still found, named as gone. */
	expect_stray_in_g(&x, false, pin, DAXFS_STRAY_WRONG_FILE, 0);
	assert_ok(unlink(x.g));
	fx_down(&x);
}

/*
 * The case only the trace can see: under unsafe, F gives its pinned blocks up and gets the very
 * same blocks back at the same offsets, and the device writes them again: every tag names F, its
 * offset and its media, yet each was posted after its pin lost the block.
 */
static void test_trace_same_block(void **state)
{
	struct fx x;
	struct driver d = { 0 };

	(void)state;
	fx_up(&x, "dev-trace", "policy=unsafe", NULL);
	fx_trace(&x, "same-block");
	struct daxfs_mr *mr = reg(&x, x.fd, MR_OFF, MR_LEN, W | LT);
	struct daxfs_mr_info mi = mr_info(mr);
	drive_start(&d, x.dev, mr, 8);
	progress(&d, 50, "first writes");
	drive_stop(&d);
	/* Up to now all is well. */
	expect_clean(&x, false, "before the truncate");
	/* Give [MR_OFF, end) up, then grow back: the blocks return to F in place. */
	assert_ok(ftruncate(x.fd, MR_OFF));
	assert_ok(fallocate(x.fd, 0, 0, FSIZE));
	struct daxfs_pin now = pu_pin(x.fd, MR_OFF, MR_LEN, 0);
	struct daxfs_pin_extent *ext;
	uint32_t n;
	assert_int_equal(daxfs_mr_extents(mr, &ext, &n), 0);
	if (now.nextents != n || memcmp(now.ext, ext, n * sizeof(*ext)) != 0)
		fail_msg("F did not get the same blocks back (media %llu now, %llu before): the allocator changed?",
			 (unsigned long long)now.ext[0].media_off, (unsigned long long)ext[0].media_off);
	assert_int_equal(daxfs_unpin(x.fd, now.id), 0);
	daxfs_pin_free(&now);
	free(ext);
	/* The device, unaware, writes again. */
	d.stop = 0;
	assert_int_equal(pthread_create(&d.t, NULL, drive, &d), 0);
	progress(&d, 2 * MR_LEN / WR_SIZE, "writes after the blocks came back");
	drive_stop(&d);
	assert_int_equal(daxfs_trace(x.dfd, DAXFS_TRACE_STOP, NULL, NULL), 0);	/* written out */
	/* Structurally all is legitimate; the trace shows the writes came after the unsafe free. */
	expect_clean(&x, false, "structural rule");
	struct daxfs_scan_report r = scan(&x, true);
	assert_true(r.trace_records > 0);
	assert_int_equal(r.stray, MR_LEN / DAXFS_TAG_UNIT);
	for (uint32_t i = 0; i < r.nstrays; i++) {
		assert_string_equal(r.strays[i].path, x.f);
		assert_int_equal(r.strays[i].tag.pin_id, mi.pin_id);
		assert_int_equal(r.strays[i].reason, DAXFS_STRAY_AFTER_FREE);
		assert_true(r.strays[i].record_ns < r.strays[i].tag.time_ns);
	}
	daxfs_scan_free(&r);
	assert_int_equal(daxfs_dereg_mr(mr), 0);
	fx_down(&x);
}

/* ---- each behaviour against a lease break under policy revoke ---- */

static void lease_case(const char *name, const char *opts, const char *behaviour, uint32_t devflags, int signo,
		       void (*check)(struct fx *, struct driver *, struct daxfs_mr *, struct free_job *, uint64_t))
{
	struct fx x;
	struct driver d = { 0 };
	struct daxfs_dev_attr a = { .flags = devflags, .signo = signo };

	assert_int_equal(daxfs_dev_parse_behaviour(behaviour, &a), 0);
	fx_up(&x, name, opts, &a);
	struct daxfs_mr *mr = reg(&x, x.fd, MR_OFF, MR_LEN, W | LT);
	drive_start(&d, x.dev, mr, 16);
	progress(&d, 100, "before the truncate");
	struct daxfs_ioc_stats s0 = pu_stats(x.dfd);
	struct free_job j = { .path = x.f, .off = 0 };
	free_start(&j);
	free_join(&j, "truncate under a lease break");
	check(&x, &d, mr, &j, s0.pins_revoked);
	fx_down(&x);
}

#define GRACE_LONG_MS 5000
#define GRACE_SHORT_MS 300
#define SLOW_MS 150

static void check_cooperative(struct fx *x, struct driver *d, struct daxfs_mr *mr, struct free_job *j, uint64_t revoked0)
{
	struct daxfs_mr_info mi = wait_lost(mr);
	struct daxfs_ioc_stats s = pu_stats(x->dfd);
	struct daxfs_dev_stats ds;

	/* It let go on the lease break, before the deadline: nothing revoked, nothing busy. */
	assert_int_equal(mi.state, DAXFS_MR_LOST);
	assert_int_equal(mi.lost_event, DAXFS_EV_LEASE_BREAK);
	assert_int_equal(s.pins_revoked, revoked0);
	assert_int_equal(s.busy_blocks, 0);
	assert_true(s.free_wait_ns_total < GRACE_LONG_MS * 1000000ull);
	assert_true(j->ns < GRACE_LONG_MS * 1000000ull);
	daxfs_dev_stats(x->dev, &ds);
	assert_true(ds.signals >= 1);	/* delivered by the signal it asked for */
	assert_int_equal(ds.lost, 1);
	/* Posting on it is refused now; what it wrote before stays legitimate nowhere else. */
	struct daxfs_wr wr = { .opcode = DAXFS_WR_WRITE, .mr = mr, .offset = 0, .length = WR_SIZE };
	assert_int_equal(daxfs_post(d->qp, &wr), -ENOLINK);
	assert_true(PU_POLL(__atomic_load_n(&d->lost, __ATOMIC_ACQUIRE), PU_WAIT_MS));
	drive_stop(d);
	assert_int_equal(d->failed, 0);
	pu_fill(x->g);
	expect_clean(x, false, "cooperative");
	assert_int_equal(daxfs_dereg_mr(mr), 0);
}

static void test_lease_cooperative(void **state)
{
	(void)state;
	lease_case("dev-coop", "policy=revoke,grace_ms=5000", "cooperative", 0, SIGRTMIN + 4, check_cooperative);
}

static void check_slow(struct fx *x, struct driver *d, struct daxfs_mr *mr, struct free_job *j, uint64_t revoked0)
{
	struct daxfs_mr_info mi = wait_lost(mr);
	struct daxfs_ioc_stats s = pu_stats(x->dfd);
	struct daxfs_dev_stats ds;

	(void)d;
	assert_int_equal(mi.state, DAXFS_MR_LOST);
	assert_int_equal(mi.lost_event, DAXFS_EV_LEASE_BREAK);
	assert_int_equal(s.pins_revoked, revoked0);
	assert_int_equal(s.busy_blocks, 0);
	/* It held the pin SLOW_MS after the event (the daemon's clock saw the truncate wait that long) ... */
	assert_true(s.free_wait_ns_total >= SLOW_MS * 1000000ull);
	assert_true(j->ns >= SLOW_MS * 1000000ull);
	/* ... and then cooperated, well before the deadline. */
	assert_true(s.free_wait_ns_total < GRACE_LONG_MS * 1000000ull);
	/* The device's own clock: it let go no earlier than SLOW_MS after the event reached it. */
	assert_true(mi.lost_ns >= x->seen.first_ns[DAXFS_EV_LEASE_BREAK] + SLOW_MS * 1000000ull);
	daxfs_dev_stats(x->dev, &ds);
	assert_int_equal(ds.lost, 1);
	drive_stop(d);
	assert_int_equal(d->failed, 0);
	pu_fill(x->g);
	expect_clean(x, false, "slow");
	assert_int_equal(daxfs_dereg_mr(mr), 0);
}

static void test_lease_slow(void **state)
{
	(void)state;
	lease_case("dev-slow", "policy=revoke,grace_ms=5000", "slow:150", 0, 0, check_slow);
}

/* An ignoring device whose pin is not revocable: revoked, but its blocks stay out of reuse. */
static void check_ignore(struct fx *x, struct driver *d, struct daxfs_mr *mr, struct free_job *j, uint64_t revoked0)
{
	struct daxfs_ioc_stats s = pu_stats(x->dfd);
	struct daxfs_mr_info mi = mr_info(mr);
	struct daxfs_ioc_pin_status ps;

	assert_true(j->ns >= GRACE_SHORT_MS * 1000000ull);	/* it waited for the deadline */
	assert_int_equal(s.pins_revoked, revoked0 + 1);
	assert_int_equal(mi.state, DAXFS_MR_ACTIVE);	/* the device did not care */
	assert_true(seen_count(&x->seen, DAXFS_EV_LEASE_BREAK) >= 1);
	assert_true(PU_POLL(seen_count(&x->seen, DAXFS_EV_REVOKED) >= 1, PU_WAIT_MS));
	assert_int_equal(s.revoked_held_blocks, MR_LEN / BS);
	assert_int_equal(s.busy_blocks, MR_LEN / BS);
	/* It keeps writing the media offsets it was given. */
	progress(d, 100, "ignoring device after the revocation");
	pu_fill(x->g);
	progress(d, 200, "ignoring device after the fill");
	assert_int_equal(d->failed, 0);
	expect_clean(x, false, "ignore, not revocable");
	struct scan sg = pu_scan(x->g);
	assert_int_equal(sg.units, 0);
	drive_stop(d);
	/* The daemon's view of its pin: revoked.  Its own user ends it. */
	struct daxfs_pin_info *pi;
	uint32_t n;
	assert_int_equal(daxfs_list_pins(x->dfd, &pi, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(pi[0].pin_id, mi.pin_id);
	assert_int_equal(pi[0].state, DAXFS_PIN_REVOKED);
	free(pi);
	(void)ps;
	assert_int_equal(daxfs_dereg_mr(mr), 0);
	if (!PU_POLL(pu_stats(x->dfd).busy_blocks == 0, PU_WAIT_MS))
		fail_msg("the revoked pin's blocks were not reclaimed after its deregistration");
	assert_ok(unlink(x->g));
}

static void test_lease_ignore(void **state)
{
	(void)state;
	lease_case("dev-ignore", "policy=revoke,grace_ms=300", "ignore", 0, SIGUSR2, check_ignore);
}

/* A device that claims REVOCABLE and ignores: its blocks are reused, and it corrupts their next owner. */
static void check_liar(struct fx *x, struct driver *d, struct daxfs_mr *mr, struct free_job *j, uint64_t revoked0)
{
	struct daxfs_ioc_stats s = pu_stats(x->dfd);
	struct daxfs_mr_info mi = mr_info(mr);

	assert_true(mi.flags & DAXFS_PIN_REVOCABLE);
	assert_true(j->ns >= GRACE_SHORT_MS * 1000000ull);
	assert_int_equal(s.pins_revoked, revoked0 + 1);
	assert_int_equal(s.revoked_held_blocks, 0);	/* it said it would stop: nothing held */
	assert_int_equal(s.busy_blocks, 0);
	assert_int_equal(mi.state, DAXFS_MR_ACTIVE);
	pu_fill(x->g);
	progress(d, 300, "lying device after the fill");
	drive_stop(d);
	expect_stray_in_g(x, false, mi.pin_id, DAXFS_STRAY_WRONG_FILE, DAXFS_PIN_REVOKED);
	assert_int_equal(daxfs_dereg_mr(mr), 0);
	assert_ok(unlink(x->g));
}

static void test_lease_liar(void **state)
{
	(void)state;
	lease_case("dev-liar", "policy=revoke,grace_ms=300", "ignore", DAXFS_DEV_F_REVOCABLE, 0, check_liar);
}

/* ---- ODP: invalidate, acknowledge, refault, under policy odp; events polled (no signal) ---- */

static void test_odp(void **state)
{
	struct fx x;
	struct driver d = { 0 };
	char *buf = malloc(MiB);

	(void)state;
	assert_non_null(buf);
	fx_up(&x, "dev-odp", "policy=odp,ack_ms=10000", NULL);
	fx_trace(&x, "odp");
	struct daxfs_mr *mr = reg(&x, x.fd, MR_OFF, MR_LEN, W | LT | DAXFS_PIN_ODP);
	drive_start(&d, x.dev, mr, 16);
	progress(&d, 100, "before the punch");
	struct daxfs_ioc_stats s0 = pu_stats(x.dfd);
	/* Punch the second MiB of the registration: the device stops using it, drains, acknowledges. */
	struct free_job j = { .fd = x.fd, .punch = 1, .off = MR_OFF + MiB, .len = MiB };
	free_start(&j);
	free_join(&j, "punch under ODP");
	struct daxfs_ioc_stats s = pu_stats(x.dfd);
	assert_int_equal(s.invalidations_acked, s0.invalidations_acked + 1);
	assert_int_equal(s.busy_blocks, 0);	/* freed at once: nothing busy */
	assert_int_equal(s.pins_revoked, s0.pins_revoked);
	assert_true(j.ns < 10000000000ull);
	assert_true(seen_count(&x.seen, DAXFS_EV_INVALIDATE) >= 1);
	/* The device touches the range again: it faults, re-resolves (new blocks, generation 1) and writes. */
	if (!PU_POLL(mr_info(mr).refaults >= 1, PU_WAIT_MS))
		fail_msg("the device never refaulted the punched range");
	struct daxfs_mr_info mi = mr_info(mr);
	assert_int_equal(mi.state, DAXFS_MR_ACTIVE);
	assert_true(mi.gen >= 1);
	progress(&d, 2 * MR_LEN / WR_SIZE, "after the refault");	/* every chunk written again */
	assert_int_equal(d.failed + d.enxio, 0);
	/* The punched range of F holds the device's tags again, posted under generation >= 1. */
	assert_int_equal(pread(x.fd, buf, MiB, MR_OFF + MiB), MiB);
	struct daxfs_tag t;
	assert_true(daxfs_tag_decode(buf, &t));
	assert_int_equal(t.pin_id, mi.pin_id);
	assert_true(t.gen >= 1);
	/* Truncate into the registration: past EOF the device cannot refault, and says so (ENXIO). */
	struct free_job tr = { .path = x.f, .off = MR_OFF + MiB };
	free_start(&tr);
	free_join(&tr, "truncate under ODP");
	if (!PU_POLL(__atomic_load_n(&d.enxio, __ATOMIC_ACQUIRE) >= 1, PU_WAIT_MS))
		fail_msg("no write past EOF failed with ENXIO");
	progress(&d, 50, "the part still inside the file");
	drive_stop(&d);
	assert_int_equal(d.failed, 0);
	assert_int_equal(pu_stats(x.dfd).invalidations_acked, s0.invalidations_acked + 2);
	assert_int_equal(pu_stats(x.dfd).pins_revoked, s0.pins_revoked);
	struct daxfs_dev_stats ds;
	daxfs_dev_stats(x.dev, &ds);
	assert_int_equal(ds.signals, 0);	/* events came by the events ioctl alone */
	assert_int_equal(ds.acks, 2);
	assert_true(ds.refaults >= 1);
	pu_fill(x.g);
	assert_int_equal(daxfs_trace(x.dfd, DAXFS_TRACE_STOP, NULL, NULL), 0);
	expect_clean(&x, true, "odp, with the trace");
	assert_int_equal(daxfs_dereg_mr(mr), 0);
	free(buf);
	fx_down(&x);
}

/* ---- events stay with the open file each registration was pinned through ---- */

static void test_events_per_open_file(void **state)
{
	struct fx x;
	struct daxfs_dev_attr a = { .signo = SIGRTMIN + 5 };

	(void)state;
	fx_up(&x, "dev-events", "policy=revoke,grace_ms=5000", &a);
	int fd1 = open(x.f, O_RDWR), fd2 = open(x.f, O_RDWR);
	assert_true(fd1 >= 0 && fd2 >= 0);
	struct daxfs_mr *mr1 = reg(&x, fd1, MR_OFF, MiB, W | LT);
	struct daxfs_mr *mr2 = reg(&x, fd2, 4 * MiB, MiB, W | LT);
	struct daxfs_mr *mr3 = reg(&x, fd2, 8 * MiB, MiB, W | LT);
	/* The caller's descriptors may go: the device keeps its own, and the pins with them. */
	close(fd1);
	close(fd2);
	assert_int_equal(pu_npins(x.dfd), 3);
	struct free_job j = { .path = x.f, .off = 0 };
	free_start(&j);
	free_join(&j, "truncate with three registrations on two open files");
	/* Each registration got its own lease break, from its own open file, and let go. */
	struct daxfs_mr *mrs[] = { mr1, mr2, mr3 };
	for (int i = 0; i < 3; i++) {
		struct daxfs_mr_info mi = wait_lost(mrs[i]);

		assert_int_equal(mi.events, 1);
		assert_int_equal(mi.state, DAXFS_MR_LOST);
		assert_int_equal(mi.lost_event, DAXFS_EV_LEASE_BREAK);
	}
	assert_int_equal(seen_count(&x.seen, DAXFS_EV_LEASE_BREAK), 3);
	assert_int_equal(pu_stats(x.dfd).pins_revoked, 0);
	assert_int_equal(pu_npins(x.dfd), 0);
	struct daxfs_dev_stats ds;
	daxfs_dev_stats(x.dev, &ds);
	assert_true(ds.signals >= 1);
	assert_int_equal(ds.lost, 3);
	for (int i = 0; i < 3; i++)
		assert_int_equal(daxfs_dereg_mr(mrs[i]), 0);
	fx_down(&x);
}

/* ---- the holder killed with kill -9 in the middle of its DMA ---- */

static void test_holder_killed(void **state)
{
	struct fx x;

	(void)state;
	fx_up(&x, "dev-kill", "policy=busy", NULL);
	uint64_t *shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(shared != MAP_FAILED);
	daxfs_dev_close(x.dev);	/* the child has a device of its own */
	x.dev = NULL;
	pid_t pid = pu_fork();
	if (pid == 0) {
		struct daxfs_dev *dev;
		struct daxfs_mr *mr;
		struct driver d = { 0 };

		/* An open file of its own: the parent's x.fd would keep the pins alive after the kill. */
		int fd = open(x.f, O_RDWR);
		if (fd < 0 || daxfs_dev_open(x.dfd, NULL, NULL, &dev) || daxfs_reg_mr(dev, fd, MR_OFF, MR_LEN, W | LT, &mr) ||
		    daxfs_qp_create(dev, 16, &d.qp))
			_exit(3);
		shared[1] = mr_info(mr).pin_id;
		d.mr = mr;
		d.len = MR_LEN;
		d.qd = 16;
		if (pthread_create(&d.t, NULL, drive, &d))
			_exit(4);
		for (;;) {
			__atomic_store_n(&shared[0], done_of(&d), __ATOMIC_RELEASE);
			usleep(1000);
		}
	}
	if (!PU_POLL(__atomic_load_n(&shared[0], __ATOMIC_ACQUIRE) >= 300, PU_WAIT_MS))
		fail_msg("the holder never got going");
	uint64_t pin = shared[1];
	assert_ok(kill(pid, SIGKILL));
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFSIGNALED(st));
	/* Its open files are released: the daemon drops the pin (fencing nothing it does not own). */
	if (!PU_POLL(pu_npins(x.dfd) == 0, PU_WAIT_MS))
		fail_msg("pin %llu still there after its holder died", (unsigned long long)pin);
	assert_ok(truncate(x.f, 0));
	assert_int_equal(pu_stats(x.dfd).busy_blocks, 0);	/* nothing pinned any more: freed outright */
	pu_fill(x.g);
	expect_clean(&x, false, "after the holder was killed");
	munmap(shared, 4096);
	assert_ok(unlink(x.g));
	fx_down(&x);
}

/* ---- bad input ---- */

static void test_bad_input(void **state)
{
	struct fx x;
	struct daxfs_dev *dev;
	struct daxfs_mr *mr;
	struct daxfs_qp *qp;
	char other[256], copy[256], out[4096];

	(void)state;
	fx_up(&x, "dev-bad", NULL, NULL);
	/* A file that is not on daxfs. */
	snprintf(other, sizeof(other), "/dev/shm/daxfs-devtest-%d-plain", (int)getpid());
	int pfd = open(other, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(pfd >= 0);
	assert_ok(ftruncate(pfd, MiB));
	assert_int_equal(daxfs_reg_mr(x.dev, pfd, 0, MiB, W, &mr), -ENOTTY);
	assert_non_null(strstr(daxfs_dev_errmsg(), "not a file on a daxfs mount"));
	assert_int_equal(daxfs_dev_open(pfd, NULL, NULL, &dev), -ENOTTY);
	assert_non_null(strstr(daxfs_dev_errmsg(), "not a daxfs mount"));
	/* Media that are not the mount's: no daxfs there, another daxfs, a copy of this one. */
	assert_int_equal(daxfs_dev_open(x.dfd, other, NULL, &dev), -EMEDIUMTYPE);
	assert_non_null(strstr(daxfs_dev_errmsg(), "does not hold a daxfs"));
	snprintf(copy, sizeof(copy), "/dev/shm/daxfs-devtest-%d-other.img", (int)getpid());
	assert_int_equal(h_run(NULL, 0, "%s -q -s 16M %s", h_mkfs_bin(), copy), 0);
	assert_int_equal(daxfs_dev_open(x.dfd, copy, NULL, &dev), -EMEDIUMTYPE);
	assert_non_null(strstr(daxfs_dev_errmsg(), "another daxfs"));
	assert_int_equal(h_run(NULL, 0, "cp %s %s", x.m.image, copy), 0);
	assert_int_equal(daxfs_dev_open(x.dfd, copy, NULL, &dev), -EMEDIUMTYPE);
	assert_non_null(strstr(daxfs_dev_errmsg(), "not the media the daemon serves"));
	int rc = h_run(out, sizeof(out), "%s run --media %s --count 1 %s 2>&1", getenv("DAXFS_RDMA_BIN"), copy, x.f);
	assert_int_equal(rc, 3);
	assert_non_null(strstr(out, "refusing to write"));
	/* A signal the daemon does not allow for events. */
	struct daxfs_dev_attr a = { .signo = SIGSEGV };
	assert_int_equal(daxfs_dev_open(x.dfd, NULL, &a, &dev), -EINVAL);
	assert_non_null(strstr(daxfs_dev_errmsg(), "signal 11 is not allowed"));
	rc = h_run(out, sizeof(out), "%s run --signal KILL --count 1 %s 2>&1", getenv("DAXFS_RDMA_BIN"), x.f);
	assert_int_equal(rc, 3);
	assert_non_null(strstr(out, "not allowed"));
	/* Ranges outside the file; a write registration on a read-only descriptor. */
	assert_int_equal(daxfs_reg_mr(x.dev, x.fd, FSIZE - BS, 2 * BS, W, &mr), -EINVAL);
	assert_non_null(strstr(daxfs_dev_errmsg(), "not inside the file"));
	int rfd = open(x.f, O_RDONLY);
	assert_true(rfd >= 0);
	assert_int_equal(daxfs_reg_mr(x.dev, rfd, 0, MiB, W, &mr), -EBADF);
	assert_non_null(strstr(daxfs_dev_errmsg(), "open for writing"));
	/* Work requests outside the registration: refused, nothing posted, nothing written. */
	mr = reg(&x, x.fd, MR_OFF, MR_LEN, W);
	assert_int_equal(daxfs_qp_create(x.dev, 4, &qp), 0);
	struct daxfs_wr bad[] = {
		{ .opcode = DAXFS_WR_WRITE, .mr = mr, .offset = MR_LEN, .length = WR_SIZE },
		{ .opcode = DAXFS_WR_WRITE, .mr = mr, .offset = MR_LEN - WR_SIZE, .length = 2 * WR_SIZE },
		{ .opcode = DAXFS_WR_WRITE, .mr = mr, .offset = 100, .length = WR_SIZE },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(daxfs_post(qp, &bad[i]), -EINVAL);
	struct daxfs_dev_stats ds;
	daxfs_dev_stats(x.dev, &ds);
	assert_int_equal(ds.posted, 0);
	assert_true(pu_check_file(x.f, 0, FSIZE, 1));	/* F untouched */
	/* The tool: usage errors, and a scan of something that is not daxfs. */
	assert_int_equal(h_run(NULL, 0, "%s bogus >/dev/null 2>&1", getenv("DAXFS_RDMA_BIN")), 2);
	assert_int_equal(h_run(NULL, 0, "%s run --qd 0 %s >/dev/null 2>&1", getenv("DAXFS_RDMA_BIN"), x.f), 2);
	assert_int_equal(h_run(out, sizeof(out), "%s scan /dev/shm 2>&1", getenv("DAXFS_RDMA_BIN")), 3);
	assert_non_null(strstr(out, "not on a daxfs mount"));
	/* And a good run through the tool, then a clean scan. */
	rc = h_run(out, sizeof(out), "%s run --json --count 200 --qd 8 --size 16K %s@1M+1M", getenv("DAXFS_RDMA_BIN"), x.f);
	if (rc != 0 || !strstr(out, "\"completed\":200,\"errors\":0"))
		fail_msg("daxfs-rdma run exited %d: %s", rc, out);
	/* The example a user would copy. */
	rc = h_run(out, sizeof(out), "%s %s 2>&1", getenv("RDMA_WRITE_EXAMPLE"), x.f);
	if (rc != 0 || !strstr(out, "wr 7: done, 65536 bytes"))
		fail_msg("examples/rdma-write exited %d: %s", rc, out);
	rc = h_run(out, sizeof(out), "%s scan --json %s", getenv("DAXFS_RDMA_BIN"), x.m.dir);
	if (rc != 0 || !strstr(out, "\"clean\":true"))
		fail_msg("daxfs-rdma scan exited %d: %s", rc, out);
	close(rfd);
	close(pfd);
	unlink(other);
	unlink(copy);
	fx_down(&x);
}

static int run(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_qd32_verified),
		cmocka_unit_test(test_truncate_busy),
		cmocka_unit_test(test_truncate_unsafe),
		cmocka_unit_test(test_trace_same_block),
		cmocka_unit_test(test_lease_cooperative),
		cmocka_unit_test(test_lease_slow),
		cmocka_unit_test(test_lease_ignore),
		cmocka_unit_test(test_lease_liar),
		cmocka_unit_test(test_odp),
		cmocka_unit_test(test_events_per_open_file),
		cmocka_unit_test(test_holder_killed),
		cmocka_unit_test(test_bad_input),
	};
	return cmocka_run_group_tests_name("device", tests, NULL, NULL);
}

int main(void)
{
	return h_main(run);
}
