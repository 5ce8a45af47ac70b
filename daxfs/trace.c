/* SPDX-License-Identifier: MIT */
#include "trace.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

#define TRACE_BUF (4u << 20)

/*
 * The request path does not format: it stores the record's time, its event and format (string
 * literals of the daemon, which live as long as it does) and the raw values of the arguments, and
 * the writer thread formats them as JSON.  A value is 8 bytes; a string (%s: names, messages, whose
 * lifetime is the caller's) is copied, its length first, padded to 8.
 */
struct trace_rec {
	uint32_t len;			/* of the whole record, a multiple of 8 */
	uint32_t reserved;
	uint64_t t;
	const char *ev;
	const char *fmt;
	/* the values, in the order of fmt's conversions */
};
_Static_assert(sizeof(struct trace_rec) == TRACE_RECORD_HEAD, "trace.h's TRACE_RECORD_HEAD is the header's size");

/* The conversions trace_emit takes: what the TRACE call sites use. */
enum conv { CONV_NONE, CONV_PERCENT, CONV_SIGNED, CONV_UNSIGNED, CONV_HEX, CONV_STRING, CONV_BAD };

/* The conversion at p (just past a '%'); *end past it, *lng its l count, *z for size_t. */
static enum conv conversion(const char *p, const char **end, int *lng, bool *z)
{
	*lng = 0;
	*z = false;
	if (*p == '%') {
		*end = p + 1;
		return CONV_PERCENT;
	}
	while (*p == 'l' && *lng < 2) {
		(*lng)++;
		p++;
	}
	if (*p == 'z' && !*lng) {
		*z = true;
		p++;
	}
	*end = p + 1;
	switch (*p) {
	case 'd':
	case 'i':
		return CONV_SIGNED;
	case 'u':
		return CONV_UNSIGNED;
	case 'x':
		return CONV_HEX;
	case 's':
		return *lng || *z ? CONV_BAD : CONV_STRING;
	default:
		*end = *p ? p + 1 : p;
		return CONV_BAD;
	}
}

void trace_init(struct trace *t)
{
	memset(t, 0, sizeof(*t));
	pthread_mutex_init(&t->lock, NULL);
	cond_init_monotonic(&t->cond);
	t->fd = -1;
}

/* Copy n bytes at ring offset off (wrapping) to dst. */
static void ring_read(const struct trace *t, size_t off, void *dst, size_t n)
{
	size_t first = MIN(n, t->size - off);

	memcpy(dst, t->buf + off, first);
	memcpy((char *)dst + first, t->buf, n - first);
}

static size_t put_u64(char *out, uint64_t v)
{
	char tmp[20];
	size_t n = 0, k = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		out[k++] = tmp[--n];
	return k;
}

/* Format binary record r (len bytes) as one JSON line into out (at least 2 * TRACE_RECORD_MAX). */
static size_t format_record(const struct trace_rec *r, char *out)
{
	const uint8_t *arg = (const uint8_t *)(r + 1), *stop = (const uint8_t *)r + r->len;
	size_t n = 0, cap = 2 * TRACE_RECORD_MAX - 3;

	memcpy(out, "{\"t\":", 5);
	n = 5 + put_u64(out + 5, r->t);
	memcpy(out + n, ",\"ev\":\"", 7);
	n += 7;
	for (const char *e = r->ev; *e && n < 64; e++)
		out[n++] = *e;
	out[n++] = '"';
	size_t fields = ++n;	/* a comma before the fields, taken back if they come out empty */
	out[n - 1] = ',';
	for (const char *p = r->fmt; *p && n < cap - 24;) {
		if (*p != '%') {
			out[n++] = *p++;
			continue;
		}
		const char *end;
		int lng;
		bool z;
		enum conv c = conversion(p + 1, &end, &lng, &z);
		uint64_t v = 0;

		p = end;
		if (c == CONV_PERCENT) {
			out[n++] = '%';
			continue;
		}
		if (arg + 8 > stop)
			break;
		memcpy(&v, arg, 8);
		arg += 8;
		if (c == CONV_STRING) {
			size_t len = MIN((size_t)v, (size_t)(stop - arg));

			len = MIN(len, cap - 24 - n);
			memcpy(out + n, arg, len);
			n += len;
			arg += ((size_t)v + 7) & ~(size_t)7;
		} else if (c == CONV_SIGNED && (int64_t)v < 0) {
			out[n++] = '-';
			n += put_u64(out + n, -(v));
		} else if (c == CONV_HEX) {
			n += (size_t)snprintf(out + n, 17, "%llx", (unsigned long long)v);
		} else {
			n += put_u64(out + n, v);
		}
	}
	if (n == fields)
		n--;
	out[n++] = '}';
	out[n++] = '\n';
	return n;
}

static void write_all(int fd, const char *buf, size_t n)
{
	for (size_t done = 0; done < n;) {
		ssize_t w = write(fd, buf + done, n - done);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;	/* a full disk loses the rest, not the daemon */
		done += (size_t)w;
	}
}

static void *writer(void *arg)
{
	struct trace *t = arg;
	/* Raw records out of the ring under the lock, formatted and written without it. */
	uint8_t *raw = malloc(1 << 16);
	char *out = malloc(1 << 17);

	pthread_mutex_lock(&t->lock);
	for (;;) {
		/*
		 * Records do not wake the writer (that would cost the request path a system call each):
		 * it looks every 20 ms, or when the buffer is a quarter full.
		 */
		while (t->len == 0 && !t->stop) {
			struct timespec ts = ns_to_timespec(util_now_ns() + 20000000ull);

			pthread_cond_timedwait(&t->cond, &t->lock, &ts);
		}
		if (t->len == 0 && t->stop)
			break;
		size_t got = 0;
		while (raw && out && t->len) {
			struct trace_rec h;

			ring_read(t, t->head, &h, sizeof(h));
			if (got + h.len > (1 << 16))
				break;
			ring_read(t, t->head, raw + got, h.len);
			t->head = (t->head + h.len) % t->size;
			t->len -= h.len;
			got += h.len;
		}
		if (!raw || !out) {
			t->head = (t->head + t->len) % t->size;	/* no memory: the records are lost, not the daemon */
			t->dropped += 1;
			t->len = 0;
		}
		int fd = t->fd;
		pthread_mutex_unlock(&t->lock);
		size_t used = 0;
		for (size_t off = 0; off < got;) {
			const struct trace_rec *r = (const struct trace_rec *)(raw + off);

			if (used + 2 * TRACE_RECORD_MAX > (1 << 17)) {
				write_all(fd, out, used);
				used = 0;
			}
			used += format_record(r, out + used);
			off += r->len;
		}
		write_all(fd, out, used);
		pthread_mutex_lock(&t->lock);
	}
	pthread_mutex_unlock(&t->lock);
	free(raw);
	free(out);
	return NULL;
}

int trace_start(struct trace *t, const char *path)
{
	int fd;

	trace_stop(t);
	if (strlen(path) >= sizeof(t->path))
		return -ENAMETOOLONG;
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	pthread_mutex_lock(&t->lock);
	if (!t->buf && !(t->buf = malloc(TRACE_BUF))) {
		pthread_mutex_unlock(&t->lock);
		close(fd);
		return -ENOMEM;
	}
	t->size = TRACE_BUF;
	t->head = t->len = 0;
	t->fd = fd;
	t->stop = false;
	t->records = t->dropped = 0;
	snprintf(t->path, sizeof(t->path), "%s", path);
	int ret = pthread_create(&t->writer, NULL, writer, t);
	if (ret) {
		t->fd = -1;
		pthread_mutex_unlock(&t->lock);
		close(fd);
		return -ret;
	}
	t->writer_running = true;
	__atomic_store_n(&t->on, true, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&t->lock);
	return 0;
}

void trace_stop(struct trace *t)
{
	pthread_mutex_lock(&t->lock);
	if (!t->writer_running) {
		pthread_mutex_unlock(&t->lock);
		return;
	}
	__atomic_store_n(&t->on, false, __ATOMIC_RELEASE);
	t->stop = true;
	pthread_cond_signal(&t->cond);
	pthread_mutex_unlock(&t->lock);
	pthread_join(t->writer, NULL);
	pthread_mutex_lock(&t->lock);
	t->writer_running = false;
	close(t->fd);
	t->fd = -1;
	pthread_mutex_unlock(&t->lock);
}

void trace_destroy(struct trace *t)
{
	trace_stop(t);
	free(t->buf);
	pthread_mutex_destroy(&t->lock);
	pthread_cond_destroy(&t->cond);
}

void trace_emit(struct trace *t, const char *ev, const char *fmt, ...)
{
	_Alignas(8) uint8_t rec[TRACE_RECORD_MAX];
	struct trace_rec *r = (struct trace_rec *)rec;
	size_t n = sizeof(*r);
	va_list ap;

	va_start(ap, fmt);
	for (const char *p = fmt; *p;) {
		if (*p++ != '%')
			continue;
		int lng;
		bool z;
		enum conv c = conversion(p, &p, &lng, &z);
		uint64_t v;

		if (c == CONV_PERCENT)
			continue;
		if (c == CONV_BAD || n + 8 > sizeof(rec)) {
			va_end(ap);
			goto drop;
		}
		if (c == CONV_STRING) {
			const char *s = va_arg(ap, const char *);
			size_t len = strlen(s);

			if (n + 8 + len > sizeof(rec)) {
				va_end(ap);
				goto drop;	/* never half a record */
			}
			v = len;
			memcpy(rec + n, &v, 8);
			memcpy(rec + n + 8, s, len);
			n += 8 + ((len + 7) & ~(size_t)7);
			continue;
		}
		if (z)
			v = va_arg(ap, size_t);
		else if (c == CONV_SIGNED)
			v = (uint64_t)(lng == 2 ? va_arg(ap, long long) : lng ? va_arg(ap, long) : va_arg(ap, int));
		else
			v = lng == 2 ? va_arg(ap, unsigned long long) : lng ? va_arg(ap, unsigned long) : va_arg(ap, unsigned);
		memcpy(rec + n, &v, 8);
		n += 8;
	}
	va_end(ap);
	r->len = (uint32_t)n;
	r->reserved = 0;
	r->t = util_now_ns();
	r->ev = ev;
	r->fmt = fmt;

	pthread_mutex_lock(&t->lock);
	if (!t->on || t->stop) {
		pthread_mutex_unlock(&t->lock);
		return;
	}
	if (t->size - t->len < n) {
		t->dropped++;
	} else {
		size_t tail = (t->head + t->len) % t->size, first = MIN(n, t->size - tail);

		memcpy(t->buf + tail, rec, first);
		memcpy(t->buf, rec + first, n - first);
		t->len += n;
		t->records++;
		if (t->len >= t->size / 4 && t->len - n < t->size / 4)
			pthread_cond_signal(&t->cond);
	}
	pthread_mutex_unlock(&t->lock);
	return;
drop:
	pthread_mutex_lock(&t->lock);
	t->dropped++;
	pthread_mutex_unlock(&t->lock);
}
