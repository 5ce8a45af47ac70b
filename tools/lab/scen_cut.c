/* SPDX-License-Identifier: MIT */
/*
 * The DMA scenarios of the 2017 thread: a long-term registration with the device writing into it
 * while its file is cut (truncate, hole punch, unlink, O_TRUNC open) and another writer needs the
 * space that frees.  The holder keeps its registration --hold milliseconds after the cut began,
 * then deregisters, as an application finishing its transfer.  ignoring-device is the truncate with
 * a device that claims it stops when told (ODP, revocable) and never does.
 *
 * The file system is filled up to 1 MiB past the file before it is written, so the writer can get
 * its space only from the cut file: whatever the policy lets go of early, the writer gets, while the device still
 * writes there.  Each round has its own directory; the writers' files stay for the detector.
 */
#include "lab.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daxfs/libdaxfs.h"

#define SLACK (1 * LAB_MiB)

/* A round's threads share these; on a hang they are left allocated, since a thread may still write them. */
struct round {
	struct lab_cut cut;
	struct lab_writer writer;
	struct lab_pump pump;
	char dir[512], f[600], g[600], b[600];
};

static int cut_round(struct lab_ctx *c, struct daxfs_dev *dev, enum lab_cut_kind kind, unsigned round)
{
	const struct lab_params *p = c->p;
	struct round *rd = calloc(1, sizeof(*rd));
	struct daxfs_mr *mr = NULL;
	bool cut_started = false, writer_started = false;
	pthread_t ct, wt;
	int ret, fd;

	if (!rd) {
		lab_note(c, "out of memory");
		return -1;
	}
	snprintf(rd->dir, sizeof(rd->dir), "%s/r%u", c->mnt, round);
	snprintf(rd->f, sizeof(rd->f), "%s/victim", rd->dir);
	snprintf(rd->g, sizeof(rd->g), "%s/writer", rd->dir);
	snprintf(rd->b, sizeof(rd->b), "%s/ballast", rd->dir);
	/* Fill the file system first, so that once the file is written only SLACK is left. */
	if (mkdir(rd->dir, 0755) < 0) {
		lab_note(c, "round %u: mkdir: %s", round, strerror(errno));
		free(rd);
		return -1;
	}
	int64_t ballast = lab_fill_to(c, rd->b, p->file_size + SLACK);
	if (ballast < 0)
		lab_note(c, "round %u: ballast: %s", round, strerror((int)-ballast));
	if ((ret = lab_write_file(rd->f, p->file_size, 'v'))) {
		lab_note(c, "round %u: cannot write its file: %s", round, strerror(-ret));
		free(rd);
		return -1;
	}
	if ((fd = open(rd->f, O_RDWR | O_CLOEXEC)) < 0) {
		lab_note(c, "round %u: open: %s", round, strerror(errno));
		free(rd);
		return -1;
	}
	ret = daxfs_reg_mr(dev, fd, 0, p->file_size, p->pin_flags | DAXFS_PIN_WRITE, &mr);
	if (ret) {
		lab_dev_err(c, ret, 1);
		if (round == 0)
			lab_note(c, "registration refused: %s (%s)", lab_errno_name(ret), daxfs_dev_errmsg());
		mr = NULL;
	} else {
		rd->pump = (struct lab_pump){ .dev = dev, .mr = mr, .rate = p->rate, .wr_size = p->wr_size,
					      .depth = p->depth };
		if ((ret = lab_pump_start(&rd->pump))) {
			lab_note(c, "round %u: the DMA stream did not start: %s", round, strerror(-ret));
			daxfs_dereg_mr(mr);
			close(fd);
			free(rd);
			return -1;
		}
		/* The device is writing before anything is cut. */
		lab_pump_wait_completed(&rd->pump, p->depth, 10000);
	}
	rd->cut = (struct lab_cut){ .c = c, .kind = kind, .path = rd->f, .fd = fd, .len = p->file_size };
	uint64_t cut_start = lab_now_ns();
	if ((ret = pthread_create(&ct, NULL, lab_cut_main, &rd->cut)) == 0) {
		cut_started = true;
		/* The writer comes once the cut is done or waiting in the daemon: the space is on its way. */
		uint64_t deadline = lab_now_ns() + 10000000000ull;
		while (!__atomic_load_n(&rd->cut.done, __ATOMIC_ACQUIRE) && lab_waiting(c) == 0 && lab_now_ns() < deadline)
			lab_sleep_ns(1000000);
	} else {
		lab_note(c, "pthread_create: %s", strerror(ret));
	}
	uint64_t hold_end = cut_start + (uint64_t)p->hold_ms * 1000000ull;
	rd->writer = (struct lab_writer){ .path = rd->g, .len = p->file_size, .deadline_ns = hold_end + 1000000000ull };
	if (cut_started && pthread_create(&wt, NULL, lab_writer_main, &rd->writer) == 0)
		writer_started = true;

	/* The holder finishes its transfer --hold after the cut began, whatever happened meanwhile. */
	uint64_t now = lab_now_ns();
	if (now < hold_end)
		lab_sleep_ns(hold_end - now);
	if (mr) {
		lab_pump_stop(&rd->pump);
		ret = daxfs_dereg_mr(mr);
		if (ret && ret != -ENOENT && ret != -ENOLINK)
			lab_note(c, "round %u: deregistration: %s", round, strerror(-ret));
		pthread_mutex_lock(&c->lock);
		c->r->dev_bytes += rd->pump.bytes;
		lab_errs_merge(&c->r->dev_errs, &rd->pump.errs);
		pthread_mutex_unlock(&c->lock);
	}
	close(fd);	/* unlink: the last reference; the blocks go now */

	bool hung = false;
	if (cut_started) {
		if (lab_wait_flag(&rd->cut.done, 20000))
			pthread_join(ct, NULL);
		else {
			lab_note(c, "round %u: the %s still waits 20 s after the registration was gone", round,
				 lab_cut_name(kind));
			hung = true;
		}
	}
	if (writer_started) {
		if (lab_wait_flag(&rd->writer.done, 20000))
			pthread_join(wt, NULL);
		else {
			lab_note(c, "round %u: the writer still writes 20 s after its deadline", round);
			hung = true;
		}
	}
	if (hung)
		return -1;	/* rd stays: a thread may still use it */
	pthread_mutex_lock(&c->lock);
	c->r->writer_bytes += rd->writer.written;
	c->r->enospc += rd->writer.enospc;
	c->r->writer_stall_ns += rd->writer.stall_ns;
	pthread_mutex_unlock(&c->lock);
	if (rd->writer.err && rd->writer.err != ENOSPC)
		lab_note(c, "round %u: the writer failed: %s", round, strerror(rd->writer.err));
	unlink(rd->b);
	free(rd);
	return 0;
}

static int run_cut(struct lab_ctx *c, enum lab_cut_kind kind, enum daxfs_dev_behaviour behaviour)
{
	struct daxfs_dev *dev;
	int ret = 0;

	if (lab_dev_open(c, behaviour, &dev))
		return -1;
	for (unsigned i = 0; i < c->p->rounds && ret == 0; i++)
		ret = cut_round(c, dev, kind, i);
	if (ret == 0)
		daxfs_dev_close(dev);	/* after a hang, a thread may still use it: the run ends anyway */
	return ret;
}

static int truncate_under_dma(struct lab_ctx *c)
{
	return run_cut(c, LAB_CUT_TRUNCATE, c->p->behaviour);
}

static int punch_under_dma(struct lab_ctx *c)
{
	return run_cut(c, LAB_CUT_PUNCH, c->p->behaviour);
}

static int unlink_under_dma(struct lab_ctx *c)
{
	return run_cut(c, LAB_CUT_UNLINK, c->p->behaviour);
}

static int otrunc_under_dma(struct lab_ctx *c)
{
	return run_cut(c, LAB_CUT_OTRUNC, c->p->behaviour);
}

static int ignoring_device(struct lab_ctx *c)
{
	return run_cut(c, LAB_CUT_TRUNCATE, DAXFS_DEV_IGNORE);
}

const struct lab_scenario lab_scen_truncate = { "truncate-under-dma",
	"truncate(2) a file the device is writing; another writer needs the space", truncate_under_dma };
const struct lab_scenario lab_scen_punch = { "punch-under-dma",
	"punch a hole over the registered range while the device writes it", punch_under_dma };
const struct lab_scenario lab_scen_unlink = { "unlink-under-dma",
	"unlink a registered file while the device writes it", unlink_under_dma };
const struct lab_scenario lab_scen_otrunc = { "otrunc-under-dma",
	"open(O_TRUNC) a registered file while the device writes it", otrunc_under_dma };
const struct lab_scenario lab_scen_ignoring = { "ignoring-device",
	"truncate under DMA from a device that claims ODP and revocation and ignores both", ignoring_device };
