/* SPDX-License-Identifier: MIT */
/* Latency samples, errno tallies and time for the lab. */
#include "lab.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

uint64_t lab_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void lab_strlcpy(char *dst, size_t len, const char *src)
{
	size_t n = len ? strnlen(src, len - 1) : 0;

	if (!len)
		return;
	memcpy(dst, src, n);
	dst[n] = 0;
}

void lab_sleep_ns(uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull) };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

void lab_samples_add(struct lab_samples *s, uint64_t ns)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		uint64_t *v = realloc(s->v, cap * sizeof(*v));

		if (!v)
			return;	/* a lost sample under memory pressure, not a failed run */
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = ns;
}

void lab_samples_free(struct lab_samples *s)
{
	free(s->v);
	memset(s, 0, sizeof(*s));
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The nearest-rank percentile of sorted v. */
static uint64_t percentile(const uint64_t *v, size_t n, unsigned pct)
{
	size_t rank = (n * pct + 99) / 100;

	return v[rank ? rank - 1 : 0];
}

struct lab_lat lab_samples_summary(struct lab_samples *s)
{
	struct lab_lat l = { .n = s->n };

	if (!s->n)
		return l;
	qsort(s->v, s->n, sizeof(*s->v), cmp_u64);
	l.p50 = percentile(s->v, s->n, 50);
	l.p99 = percentile(s->v, s->n, 99);
	l.max = s->v[s->n - 1];
	return l;
}

void lab_errs_add(struct lab_errs *e, int err, uint32_t count)
{
	if (err < 0)
		err = -err;
	if (!err || !count)
		return;
	for (uint32_t i = 0; i < e->n; i++)
		if (e->e[i].err == err) {
			e->e[i].count += count;
			return;
		}
	if (e->n == LAB_ERRNOS) {
		e->other += count;
		return;
	}
	e->e[e->n].err = err;
	e->e[e->n].count = count;
	e->n++;
}

void lab_errs_merge(struct lab_errs *to, const struct lab_errs *from)
{
	for (uint32_t i = 0; i < from->n; i++)
		lab_errs_add(to, from->e[i].err, from->e[i].count);
	to->other += from->other;
}

uint64_t lab_errs_total(const struct lab_errs *e)
{
	uint64_t t = e->other;

	for (uint32_t i = 0; i < e->n; i++)
		t += e->e[i].count;
	return t;
}

const char *lab_errno_name(int err)
{
	static const struct {
		int err;
		const char *name;
	} names[] = {
		{ EPERM, "EPERM" }, { ENOENT, "ENOENT" }, { EINTR, "EINTR" }, { EIO, "EIO" }, { ENXIO, "ENXIO" },
		{ EBADF, "EBADF" }, { EAGAIN, "EAGAIN" }, { ENOMEM, "ENOMEM" }, { EACCES, "EACCES" },
		{ EBUSY, "EBUSY" }, { EEXIST, "EEXIST" }, { EXDEV, "EXDEV" }, { EINVAL, "EINVAL" },
		{ ENFILE, "ENFILE" }, { EMFILE, "EMFILE" }, { ENOTTY, "ENOTTY" }, { EFBIG, "EFBIG" },
		{ ENOSPC, "ENOSPC" }, { EROFS, "EROFS" }, { EDEADLK, "EDEADLK" }, { ENOLINK, "ENOLINK" },
		{ EOPNOTSUPP, "EOPNOTSUPP" }, { ETIMEDOUT, "ETIMEDOUT" }, { EDQUOT, "EDQUOT" },
		{ ESHUTDOWN, "ESHUTDOWN" }, { ECANCELED, "ECANCELED" }, { EMEDIUMTYPE, "EMEDIUMTYPE" },
	};
	static __thread char buf[16];

	if (err < 0)
		err = -err;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i].err == err)
			return names[i].name;
	snprintf(buf, sizeof(buf), "E%d", err);
	return buf;
}

const char *lab_errs_str(const struct lab_errs *e, char *buf, size_t len)
{
	struct lab_errs s = *e;
	size_t off = 0;

	if (!len)
		return buf;
	buf[0] = 0;
	/* Most frequent first: a handful of entries, a selection sort is plenty. */
	for (uint32_t i = 0; i < s.n; i++) {
		uint32_t best = i;

		for (uint32_t j = i + 1; j < s.n; j++)
			if (s.e[j].count > s.e[best].count)
				best = j;
		if (best != i) {
			__typeof__(s.e[0]) t = s.e[i];
			s.e[i] = s.e[best];
			s.e[best] = t;
		}
		int w = snprintf(buf + off, len - off, "%s%s:%u", off ? " " : "", lab_errno_name(s.e[i].err), s.e[i].count);
		if (w < 0 || (size_t)w >= len - off)
			break;
		off += (size_t)w;
	}
	if (s.other && off < len)
		snprintf(buf + off, len - off, "%sother:%u", off ? " " : "", s.other);
	if (!buf[0])
		snprintf(buf, len, "-");
	return buf;
}
