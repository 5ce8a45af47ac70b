/* SPDX-License-Identifier: MIT */
/*
 * enospc-with-longterm-pins: registrations hold most of the space (--fill percent of the data
 * area, over --clients files, the device writing each), the files are truncated, and --writers
 * writers then need half of that space.  What do they see, how long do they wait, with what errno,
 * until the holders deregister --hold after the truncates began?
 */
#include "lab.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daxfs/libdaxfs.h"

#define SLACK (1 * LAB_MiB)
#define MAX_CLIENTS 64
#define MAX_WRITERS 64

struct enospc_state {
	char path[MAX_CLIENTS][600];
	char wpath[MAX_WRITERS][600];
	int fd[MAX_CLIENTS];
	struct daxfs_mr *mr[MAX_CLIENTS];
	struct lab_pump pump[MAX_CLIENTS];
	struct lab_cut cut[MAX_CLIENTS];
	struct lab_writer w[MAX_WRITERS];
	pthread_t ct[MAX_CLIENTS], wt[MAX_WRITERS];
	bool cut_started[MAX_CLIENTS], w_started[MAX_WRITERS];
};

static int enospc_with_longterm_pins(struct lab_ctx *c)
{
	const struct lab_params *p = c->p;
	uint32_t n = p->clients ? (p->clients < MAX_CLIENTS ? p->clients : MAX_CLIENTS) : 1;
	uint32_t nw = p->writers ? (p->writers < MAX_WRITERS ? p->writers : MAX_WRITERS) : 1;
	struct daxfs_ioc_stats st;
	struct daxfs_ioc_info info;
	struct enospc_state *s;
	struct daxfs_dev *dev;
	int ret = -1;

	if (daxfs_stats(c->mnt_fd, &st) || daxfs_info(c->mnt_fd, &info)) {
		lab_note(c, "DAXFS_IOC_STATS: %s", strerror(errno));
		return -1;
	}
	uint64_t unit = 64 * 1024;
	uint64_t each = st.blocks * info.block_size * p->fill_pct / 100 / n / unit * unit;
	if (!each) {
		lab_note(c, "the image is too small for %u registrations", n);
		return -1;
	}
	if (!(s = calloc(1, sizeof(*s))))
		return -1;
	if (lab_dev_open(c, p->behaviour, &dev)) {
		free(s);
		return -1;
	}
	/* The ballast first: with the files written, SLACK is left. */
	char ballast[600];
	snprintf(ballast, sizeof(ballast), "%s/ballast", c->mnt);
	lab_fill_to(c, ballast, each * n + SLACK);
	uint32_t registered = 0;
	for (uint32_t i = 0; i < n; i++) {
		snprintf(s->path[i], sizeof(s->path[i]), "%s/held%u", c->mnt, i);
		s->fd[i] = -1;
		if ((ret = lab_write_file(s->path[i], each, 'h')) || (s->fd[i] = open(s->path[i], O_RDWR | O_CLOEXEC)) < 0) {
			lab_note(c, "cannot write %s: %s", s->path[i], strerror(ret ? -ret : errno));
			ret = -1;
			goto out;
		}
		ret = daxfs_reg_mr(dev, s->fd[i], 0, each, p->pin_flags | DAXFS_PIN_WRITE, &s->mr[i]);
		if (ret) {
			lab_dev_err(c, ret, 1);
			if (!registered && i == 0)
				lab_note(c, "registration refused: %s (%s)", lab_errno_name(ret), daxfs_dev_errmsg());
			s->mr[i] = NULL;
			continue;
		}
		registered++;
		s->pump[i] = (struct lab_pump){ .dev = dev, .mr = s->mr[i], .rate = p->rate / n, .wr_size = p->wr_size,
						.depth = p->depth };
		if (lab_pump_start(&s->pump[i]) == 0)
			lab_pump_wait_completed(&s->pump[i], 1, 10000);
	}

	/* Cut them all, then the writers come once every cut is done or waiting. */
	uint64_t t0 = lab_now_ns();
	for (uint32_t i = 0; i < n; i++) {
		s->cut[i] = (struct lab_cut){ .c = c, .kind = LAB_CUT_TRUNCATE, .path = s->path[i] };
		s->cut_started[i] = pthread_create(&s->ct[i], NULL, lab_cut_main, &s->cut[i]) == 0;
	}
	uint64_t deadline = lab_now_ns() + 10000000000ull;
	for (;;) {
		uint32_t done = 0;

		for (uint32_t i = 0; i < n; i++)
			done += !s->cut_started[i] || __atomic_load_n(&s->cut[i].done, __ATOMIC_ACQUIRE);
		if (done == n || done + lab_waiting(c) >= n || lab_now_ns() >= deadline)
			break;
		lab_sleep_ns(1000000);
	}
	uint64_t hold_end = t0 + (uint64_t)p->hold_ms * 1000000ull;
	for (uint32_t i = 0; i < nw; i++) {
		snprintf(s->wpath[i], sizeof(s->wpath[i]), "%s/writer%u", c->mnt, i);
		s->w[i] = (struct lab_writer){ .path = s->wpath[i], .len = each * n / 2 / nw,
					       .deadline_ns = hold_end + 1000000000ull };
		s->w_started[i] = pthread_create(&s->wt[i], NULL, lab_writer_main, &s->w[i]) == 0;
	}
	uint64_t now = lab_now_ns();
	if (now < hold_end)
		lab_sleep_ns(hold_end - now);
	ret = 0;
out:
	for (uint32_t i = 0; i < n; i++) {
		if (s->mr[i]) {
			lab_pump_stop(&s->pump[i]);
			daxfs_dereg_mr(s->mr[i]);
			c->r->dev_bytes += s->pump[i].bytes;
			lab_errs_merge(&c->r->dev_errs, &s->pump[i].errs);
		}
		if (s->fd[i] >= 0)
			close(s->fd[i]);
	}
	bool hung = false;
	for (uint32_t i = 0; i < n; i++) {
		if (!s->cut_started[i])
			continue;
		if (lab_wait_flag(&s->cut[i].done, 20000))
			pthread_join(s->ct[i], NULL);
		else
			hung = true;
	}
	for (uint32_t i = 0; i < nw; i++) {
		if (!s->w_started[i])
			continue;
		if (!lab_wait_flag(&s->w[i].done, 20000)) {
			hung = true;
			continue;
		}
		pthread_join(s->wt[i], NULL);
		c->r->writer_bytes += s->w[i].written;
		c->r->enospc += s->w[i].enospc;
		c->r->writer_stall_ns += s->w[i].stall_ns;
		if (s->w[i].err && s->w[i].err != ENOSPC)
			lab_note(c, "writer %u failed: %s", i, strerror(s->w[i].err));
	}
	if (hung) {
		lab_note(c, "a truncate or a writer still runs 20 s after the registrations were gone");
		return -1;	/* s and dev stay: a thread may still use them */
	}
	daxfs_dev_close(dev);
	free(s);
	return ret;
}

const struct lab_scenario lab_scen_enospc = { "enospc-with-longterm-pins",
	"registrations hold most of the space; their files are truncated and writers need the space",
	enospc_with_longterm_pins };
