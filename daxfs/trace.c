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
#define TRACE_RECORD_MAX 1024

void trace_init(struct trace *t)
{
	memset(t, 0, sizeof(*t));
	pthread_mutex_init(&t->lock, NULL);
	cond_init_monotonic(&t->cond);
	t->fd = -1;
}

static void *writer(void *arg)
{
	struct trace *t = arg;
	char *chunk = malloc(1 << 16);

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
		size_t n = MIN(t->len, MIN(t->size - t->head, (size_t)(1 << 16)));
		if (chunk)
			memcpy(chunk, t->buf + t->head, n);
		t->head = (t->head + n) % t->size;
		t->len -= n;
		int fd = t->fd;
		pthread_mutex_unlock(&t->lock);
		for (size_t done = 0; chunk && done < n;) {
			ssize_t w = write(fd, chunk + done, n - done);

			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				break;	/* a full disk loses the rest of the chunk, not the daemon */
			done += (size_t)w;
		}
		pthread_mutex_lock(&t->lock);
	}
	pthread_mutex_unlock(&t->lock);
	free(chunk);
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
	char rec[TRACE_RECORD_MAX];
	va_list ap;
	int n, m;

	n = snprintf(rec, sizeof(rec), "{\"t\":%llu,\"ev\":\"%s\"", (unsigned long long)util_now_ns(), ev);
	if (n < 0 || (size_t)n + 3 >= sizeof(rec))
		return;
	/*
	 * The fields go after a comma, which stays only if they expanded to something: whether fmt has
	 * fields shows in what it printed, not in fmt ("%s" with "" has none).  One byte each is kept
	 * for the comma, the closing brace and the newline.
	 */
	va_start(ap, fmt);
	m = vsnprintf(rec + n + 1, sizeof(rec) - (size_t)n - 3, fmt, ap);
	va_end(ap);
	if (m < 0 || (size_t)n + 1 + (size_t)m >= sizeof(rec) - 2)
		return;	/* a record that does not fit is a bug in its caller; never write half of one */
	if (m > 0) {
		rec[n] = ',';
		n += 1 + m;
	}
	rec[n++] = '}';
	rec[n++] = '\n';

	pthread_mutex_lock(&t->lock);
	if (!t->on || t->stop) {
		pthread_mutex_unlock(&t->lock);
		return;
	}
	if (t->size - t->len < (size_t)n) {
		t->dropped++;
	} else {
		size_t tail = (t->head + t->len) % t->size, first = MIN((size_t)n, t->size - tail);

		memcpy(t->buf + tail, rec, first);
		memcpy(t->buf, rec + first, (size_t)n - first);
		t->len += (size_t)n;
		t->records++;
		if (t->len >= t->size / 4 && t->len - (size_t)n < t->size / 4)
			pthread_cond_signal(&t->cond);
	}
	pthread_mutex_unlock(&t->lock);
}
