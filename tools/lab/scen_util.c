/* SPDX-License-Identifier: MIT */
/* What the scenarios share: the device, files, writers that need space, and recording outcomes. */
#include "lab.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "daxfs/libdaxfs.h"

int lab_dev_open(struct lab_ctx *c, enum daxfs_dev_behaviour b, struct daxfs_dev **dev)
{
	struct daxfs_dev_attr attr = {
		.behaviour = b,
		.slow_ms = c->p->slow_ms,
		.flags = (c->p->pin_flags & DAXFS_PIN_REVOCABLE) ? DAXFS_DEV_F_REVOCABLE : 0,
		.poll_ms = 1,
	};
	int ret = daxfs_dev_open(c->mnt_fd, NULL, &attr, dev);

	if (ret)
		lab_note(c, "the device could not open: %s", daxfs_dev_errmsg());
	return ret ? -1 : 0;
}

int lab_write_file(const char *path, uint64_t len, int fill)
{
	static char buf[1 << 20];
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int ret = 0;

	if (fd < 0)
		return -errno;
	memset(buf, fill, sizeof(buf));
	for (uint64_t off = 0; off < len;) {
		size_t n = len - off < sizeof(buf) ? (size_t)(len - off) : sizeof(buf);
		ssize_t w = pwrite(fd, buf, n, (off_t)off);

		if (w <= 0) {
			ret = w < 0 ? -errno : -EIO;
			break;
		}
		off += (uint64_t)w;
	}
	if (close(fd) && !ret)
		ret = -errno;
	return ret;
}

int64_t lab_fill_to(struct lab_ctx *c, const char *path, uint64_t leave)
{
	struct statvfs sv;

	if (fstatvfs(c->mnt_fd, &sv) < 0)
		return -errno;
	uint64_t avail = (uint64_t)sv.f_bavail * sv.f_frsize;
	uint64_t len = avail > leave ? avail - leave : 0;
	int ret = lab_write_file(path, len, 'b');

	return ret ? ret : (int64_t)len;
}

uint64_t lab_waiting(struct lab_ctx *c)
{
	struct daxfs_ioc_stats st;

	return daxfs_stats(c->mnt_fd, &st) == 0 ? st.waiting : 0;
}

void lab_op(struct lab_ctx *c, const char *kind, uint64_t start_ns, uint64_t lat_ns, int err, bool cut)
{
	if (err < 0)
		err = -err;
	pthread_mutex_lock(&c->lock);
	if (c->ops)
		fprintf(c->ops, "%s,%llu,%llu,%s\n", kind, (unsigned long long)start_ns, (unsigned long long)lat_ns,
			err ? lab_errno_name(err) : "");
	if (cut) {
		lab_samples_add(&c->cut, lat_ns);
		lab_errs_add(&c->r->cut_errs, err, 1);
	}
	pthread_mutex_unlock(&c->lock);
}

void lab_dev_err(struct lab_ctx *c, int err, uint32_t n)
{
	pthread_mutex_lock(&c->lock);
	lab_errs_add(&c->r->dev_errs, err, n);
	pthread_mutex_unlock(&c->lock);
}

static void append(char *buf, size_t len, const char *fmt, va_list ap)
{
	size_t used = strlen(buf);

	if (used + 3 >= len)
		return;
	if (used) {
		strcpy(buf + used, "; ");
		used += 2;
	}
	vsnprintf(buf + used, len - used, fmt, ap);
}

void lab_note(struct lab_ctx *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	append(c->r->note, sizeof(c->r->note), fmt, ap);
	va_end(ap);
}

void lab_info(struct lab_ctx *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	append(c->r->info, sizeof(c->r->info), fmt, ap);
	va_end(ap);
}

/* A 256 KiB write takes well under a millisecond, even under AddressSanitizer. */
#define STALLED_NS 5000000ull

void *lab_writer_main(void *arg)
{
	static const uint32_t chunk = 256 * 1024;
	struct lab_writer *w = arg;
	char *buf = malloc(chunk);
	int fd = open(w->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	if (!buf || fd < 0) {
		w->err = fd < 0 ? errno : ENOMEM;
		goto out;
	}
	memset(buf, 'w', chunk);
	for (uint64_t off = 0; off < w->len;) {
		size_t n = w->len - off < chunk ? (size_t)(w->len - off) : chunk;
		uint64_t t0 = lab_now_ns();
		ssize_t r = pwrite(fd, buf, n, (off_t)off);

		if (r > 0) {
			uint64_t lat = lab_now_ns() - t0;

			/* A write that waited in the daemon for reclaimed space took far longer than a copy. */
			if (lat > STALLED_NS)
				w->stall_ns += lat;
			off += (uint64_t)r;
			w->written += (uint64_t)r;
			if (w->bins) {
				uint64_t b = (lab_now_ns() - w->t0) / w->bin_ns;

				if (b < w->nbins)
					__atomic_add_fetch(&w->bins[b], (uint64_t)r, __ATOMIC_RELAXED);
			}
			continue;
		}
		if (r == 0 || errno != ENOSPC) {
			w->err = r == 0 ? EIO : errno;
			break;
		}
		/* Out of space: the space may be coming (busy extents being reclaimed).  Retry, counting. */
		w->enospc++;
		if (lab_now_ns() >= w->deadline_ns) {
			w->stall_ns += lab_now_ns() - t0;
			w->err = ENOSPC;
			break;
		}
		lab_sleep_ns(5000000);
		w->stall_ns += lab_now_ns() - t0;
	}
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	__atomic_store_n(&w->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

const char *lab_cut_name(enum lab_cut_kind k)
{
	static const char *const names[] = { "truncate", "punch", "unlink", "o_trunc" };

	return k <= LAB_CUT_OTRUNC ? names[k] : "?";
}

void *lab_cut_main(void *arg)
{
	struct lab_cut *j = arg;
	int r = 0;

	j->start_ns = lab_now_ns();
	switch (j->kind) {
	case LAB_CUT_TRUNCATE:
		r = truncate(j->path, (off_t)j->to_size);
		break;
	case LAB_CUT_PUNCH:
		r = fallocate(j->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)j->off, (off_t)j->len);
		break;
	case LAB_CUT_UNLINK:
		r = unlink(j->path);
		break;
	case LAB_CUT_OTRUNC: {
		int fd = open(j->path, O_WRONLY | O_TRUNC | O_CLOEXEC);

		r = fd < 0 ? -1 : close(fd);
		break;
	}
	}
	j->err = r < 0 ? errno : 0;
	j->lat_ns = lab_now_ns() - j->start_ns;
	lab_op(j->c, lab_cut_name(j->kind), j->start_ns, j->lat_ns, j->err, true);
	__atomic_store_n(&j->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

bool lab_wait_flag(const int *flag, uint32_t timeout_ms)
{
	uint64_t deadline = lab_now_ns() + (uint64_t)timeout_ms * 1000000ull;

	while (!__atomic_load_n(flag, __ATOMIC_ACQUIRE)) {
		if (lab_now_ns() >= deadline)
			return false;
		lab_sleep_ns(1000000);
	}
	return true;
}
