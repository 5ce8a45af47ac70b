/* SPDX-License-Identifier: MIT */
/*
 * churn: for --duration, --clients threads register random ranges of a pool of files, have the
 * device write them for 20 to 80 ms and deregister, while --writers threads truncate, punch and
 * rewrite the same files.  Throughput of the device and of the writers goes to timeline.csv in
 * 100 ms bins; the detector and the trace say what it cost.
 */
#include "lab.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daxfs/libdaxfs.h"

#define NFILES 8
#define UNIT (64 * 1024ull)
#define BIN_NS 100000000ull
#define MAX_THREADS 64

struct churn {
	struct lab_ctx *c;
	struct daxfs_dev *dev;
	char path[NFILES][600];
	uint64_t fsize;
	uint64_t t0, end_ns;
	uint32_t nbins;
	uint64_t *dev_bins, *wr_bins;
};

struct churn_thread {
	struct churn *ch;
	unsigned seed;
	pthread_t t;
	bool started;
	int done;		/* atomic */
	/* results */
	uint64_t bytes, enospc, stall_ns, regs;
	struct lab_errs errs;
	struct lab_errs op_errs;	/* writers: errors other than the cuts' */
};

static uint64_t rnd(unsigned *seed, uint64_t n)
{
	return n ? (uint64_t)rand_r(seed) % n : 0;
}

static void *client_main(void *arg)
{
	struct churn_thread *t = arg;
	struct churn *ch = t->ch;
	const struct lab_params *p = ch->c->p;

	while (lab_now_ns() < ch->end_ns) {
		int fd = open(ch->path[rnd(&t->seed, NFILES)], O_RDWR | O_CLOEXEC);
		struct stat st;

		if (fd < 0 || fstat(fd, &st) < 0 || (uint64_t)st.st_size < UNIT) {
			if (fd >= 0)
				close(fd);
			lab_sleep_ns(1000000);
			continue;
		}
		uint64_t units = (uint64_t)st.st_size / UNIT;
		uint64_t len = (1 + rnd(&t->seed, units < 16 ? units : 16)) * UNIT;
		if (len > units * UNIT)
			len = units * UNIT;
		uint64_t off = rnd(&t->seed, units - len / UNIT + 1) * UNIT;
		struct daxfs_mr *mr;
		int ret = daxfs_reg_mr(ch->dev, fd, off, len, p->pin_flags | DAXFS_PIN_WRITE, &mr);

		if (ret) {
			/* The file may have shrunk under us (EINVAL): that is churn, not an error of the device. */
			if (ret != -EINVAL)
				lab_errs_add(&t->errs, ret, 1);
			close(fd);
			lab_sleep_ns(1000000);
			continue;
		}
		t->regs++;
		struct lab_pump pump = { .dev = ch->dev, .mr = mr, .rate = p->rate, .wr_size = p->wr_size,
					 .depth = p->depth, .bins = ch->dev_bins, .nbins = ch->nbins, .bin_ns = BIN_NS,
					 .t0 = ch->t0 };
		if (lab_pump_start(&pump) == 0) {
			lab_sleep_ns((20 + rnd(&t->seed, 61)) * 1000000ull);
			lab_pump_stop(&pump);
		}
		daxfs_dereg_mr(mr);
		close(fd);
		t->bytes += pump.bytes;
		lab_errs_merge(&t->errs, &pump.errs);
	}
	__atomic_store_n(&t->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* Write [off, off + len) of path; ENOSPC counted and retried until the run ends. */
static void writer_write(struct churn_thread *t, const char *path, uint64_t off, uint64_t len, char *buf)
{
	struct churn *ch = t->ch;
	int fd = open(path, O_WRONLY | O_CLOEXEC);

	if (fd < 0)
		return;
	while (len && lab_now_ns() < ch->end_ns) {
		size_t n = len < UNIT * 4 ? (size_t)len : UNIT * 4;
		uint64_t t0 = lab_now_ns();
		ssize_t w = pwrite(fd, buf, n, (off_t)off);
		uint64_t lat = lab_now_ns() - t0;

		if (w > 0) {
			off += (uint64_t)w;
			len -= (uint64_t)w;
			t->bytes += (uint64_t)w;
			if (lat > 5000000)
				t->stall_ns += lat;
			uint64_t b = (lab_now_ns() - ch->t0) / BIN_NS;
			if (b < ch->nbins)
				__atomic_add_fetch(&ch->wr_bins[b], (uint64_t)w, __ATOMIC_RELAXED);
			continue;
		}
		if (w < 0 && errno == ENOSPC) {
			t->enospc++;
			lab_sleep_ns(5000000);
			t->stall_ns += lab_now_ns() - t0;
			continue;
		}
		lab_errs_add(&t->op_errs, w < 0 ? errno : EIO, 1);
		break;
	}
	close(fd);
}

static void *writer_main(void *arg)
{
	struct churn_thread *t = arg;
	struct churn *ch = t->ch;
	char *buf = malloc(UNIT * 4);

	if (!buf)
		goto out;
	memset(buf, 'c', UNIT * 4);
	while (lab_now_ns() < ch->end_ns) {
		const char *path = ch->path[rnd(&t->seed, NFILES)];
		uint64_t units = ch->fsize / UNIT;
		struct stat st;
		struct lab_cut cut = { .c = ch->c, .path = path };

		if (stat(path, &st) < 0)
			continue;
		switch (rnd(&t->seed, 4)) {
		case 0:	/* cut the tail */
			cut.kind = LAB_CUT_TRUNCATE;
			cut.to_size = rnd(&t->seed, units) * UNIT;
			lab_cut_main(&cut);
			break;
		case 1: {	/* punch a hole */
			int fd = open(path, O_RDWR | O_CLOEXEC);

			if (fd < 0)
				break;
			cut.kind = LAB_CUT_PUNCH;
			cut.fd = fd;
			cut.len = (1 + rnd(&t->seed, 8)) * UNIT;
			cut.off = rnd(&t->seed, units) * UNIT;
			lab_cut_main(&cut);
			close(fd);
			break;
		}
		case 2:	/* grow it back to full size */
			if ((uint64_t)st.st_size < ch->fsize)
				writer_write(t, path, (uint64_t)st.st_size, ch->fsize - (uint64_t)st.st_size, buf);
			break;
		default: {	/* rewrite a range, filling holes */
			uint64_t len = (1 + rnd(&t->seed, 8)) * UNIT;
			uint64_t off = rnd(&t->seed, units - (len / UNIT < units ? len / UNIT : units) + 1) * UNIT;

			writer_write(t, path, off, len, buf);
			break;
		}
		}
	}
out:
	free(buf);
	__atomic_store_n(&t->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static int churn(struct lab_ctx *c)
{
	const struct lab_params *p = c->p;
	uint32_t nc = p->clients < MAX_THREADS ? p->clients : MAX_THREADS;
	uint32_t nw = p->writers < MAX_THREADS ? p->writers : MAX_THREADS;
	struct churn *ch = calloc(1, sizeof(*ch));
	struct churn_thread *th = calloc(nc + nw, sizeof(*th));
	int ret = 0;

	if (!ch || !th) {
		free(ch);
		free(th);
		lab_note(c, "out of memory");
		return -1;
	}
	ch->c = c;
	/* The pool takes at most half the image: the other half is for busy extents and rewrites. */
	ch->fsize = p->file_size / UNIT * UNIT;
	if (ch->fsize > p->image_size / (2 * NFILES) / UNIT * UNIT) {
		ch->fsize = p->image_size / (2 * NFILES) / UNIT * UNIT;
		lab_info(c, "churn files %llu KiB each (%d files, half the image)",
			 (unsigned long long)(ch->fsize >> 10), NFILES);
	}
	if (ch->fsize == 0) {
		lab_note(c, "image of %llu bytes too small for churn's %d files", (unsigned long long)p->image_size,
			 NFILES);
		free(ch);
		free(th);
		return -1;
	}
	ch->nbins = (uint32_t)(((uint64_t)p->duration_ms * 1000000ull + 2000000000ull) / BIN_NS);
	ch->dev_bins = calloc(ch->nbins, sizeof(uint64_t));
	ch->wr_bins = calloc(ch->nbins, sizeof(uint64_t));
	for (int i = 0; i < NFILES; i++) {
		snprintf(ch->path[i], sizeof(ch->path[i]), "%s/churn%d", c->mnt, i);
		if ((ret = lab_write_file(ch->path[i], ch->fsize, 'c'))) {
			lab_note(c, "cannot write %s: %s", ch->path[i], strerror(-ret));
			goto out;
		}
	}
	if (!ch->dev_bins || !ch->wr_bins || lab_dev_open(c, p->behaviour, &ch->dev)) {
		ret = -1;
		goto out;
	}
	ch->t0 = lab_now_ns();
	ch->end_ns = ch->t0 + (uint64_t)p->duration_ms * 1000000ull;
	for (uint32_t i = 0; i < nc + nw; i++) {
		th[i].ch = ch;
		th[i].seed = p->seed * 7919u + i;
		th[i].started = pthread_create(&th[i].t, NULL, i < nc ? client_main : writer_main, &th[i]) == 0;
	}
	bool hung = false;
	for (uint32_t i = 0; i < nc + nw; i++) {
		if (!th[i].started)
			continue;
		/* Past the end, a thread finishes what it was doing: a registration, a write, a cut. */
		if (!lab_wait_flag(&th[i].done, p->duration_ms + 30000)) {
			hung = true;
			continue;
		}
		pthread_join(th[i].t, NULL);
		if (i < nc) {
			c->r->dev_bytes += th[i].bytes;
			lab_errs_merge(&c->r->dev_errs, &th[i].errs);
		} else {
			c->r->writer_bytes += th[i].bytes;
			c->r->enospc += th[i].enospc;
			c->r->writer_stall_ns += th[i].stall_ns;
			if (lab_errs_total(&th[i].op_errs)) {
				char e[128];
				lab_note(c, "writer errors: %s", lab_errs_str(&th[i].op_errs, e, sizeof(e)));
			}
		}
	}
	if (hung) {
		lab_note(c, "a churn thread still runs 30 s after the end");
		return -1;	/* its state stays */
	}
	uint64_t regs = 0;
	for (uint32_t i = 0; i < nc; i++)
		regs += th[i].regs;
	lab_info(c, "%llu registrations", (unsigned long long)regs);

	char tl[700];
	snprintf(tl, sizeof(tl), "%s/timeline.csv", c->run_dir);
	FILE *f = fopen(tl, "w");
	if (f) {
		fprintf(f, "t_s,device_MiBps,writers_MiBps\n");
		for (uint32_t b = 0; b < ch->nbins && b * BIN_NS < (uint64_t)p->duration_ms * 1000000ull; b++)
			fprintf(f, "%.1f,%.2f,%.2f\n", (double)(b * BIN_NS) / 1e9,
				(double)ch->dev_bins[b] / (double)LAB_MiB * (1e9 / (double)BIN_NS),
				(double)ch->wr_bins[b] / (double)LAB_MiB * (1e9 / (double)BIN_NS));
		fclose(f);
	}
out:
	if (ch->dev)
		daxfs_dev_close(ch->dev);
	free(ch->dev_bins);
	free(ch->wr_bins);
	free(ch);
	free(th);
	return ret ? -1 : 0;
}

const struct lab_scenario lab_scen_churn = { "churn",
	"registrations come and go at random while writers truncate, punch and rewrite the same files", churn };
