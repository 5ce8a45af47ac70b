/* SPDX-License-Identifier: MIT */
/*
 * The event trace: one JSON object per line for every state change of pins, busy extents, reclaim,
 * waits and the policy, with a CLOCK_MONOTONIC timestamp, written to a file by a thread of its own.
 * The request path only copies the record's raw values into a ring buffer under a leaf lock (the
 * writer formats them); when the buffer is full, records are dropped (and counted), never waited
 * for.  Off, a record costs one predicted branch (TRACE).
 *
 * Every record: {"t":NS,"ev":"NAME",...fields}.  The schema is in the README.
 */
#ifndef DAXFS_TRACE_H
#define DAXFS_TRACE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct trace {
	bool on;			/* read without the lock: a hint, checked again under it */
	pthread_mutex_t lock;		/* a leaf: taken inside every other lock */
	pthread_cond_t cond;
	char *buf;			/* ring */
	size_t size;
	size_t head;			/* next byte to write out */
	size_t len;			/* bytes queued */
	int fd;
	bool stop;
	bool writer_running;
	pthread_t writer;
	uint64_t records;
	uint64_t dropped;
	char path[4096];
};

/*
 * A record's limit (binary, and formatted), and the bytes of it before its values, for a caller
 * that sizes a string to fit: each value takes 8 bytes, a string 8 more than its length padded to 8.
 */
#define TRACE_RECORD_MAX 1024
#define TRACE_RECORD_HEAD 32

void trace_init(struct trace *t);
/* Start tracing into path (created or truncated), stopping any trace running.  0 or -errno. */
int trace_start(struct trace *t, const char *path);
/* Write out what is queued and close the file. */
void trace_stop(struct trace *t);
void trace_destroy(struct trace *t);

static inline bool trace_on(const struct trace *t)
{
	return t && __atomic_load_n(&t->on, __ATOMIC_RELAXED);
}

/*
 * Queue one record: ev names it, fmt gives its other fields as JSON ("\"id\":%llu,..." without a
 * leading or trailing comma); a record without fields is TRACE0 (a literal "" is rejected by
 * -Wformat-zero-length).  ev and fmt must be string literals (the writer formats later); fmt may
 * use %d %i %u %x with l, ll or z, %s and %%.  The values are stored raw (strings copied) and
 * formatted by the writer thread: the request path never formats.  A record over 1 KiB, or a
 * conversion outside that set, is dropped and counted.  Takes t->lock, a leaf: the caller may hold
 * any other lock.
 */
void trace_emit(struct trace *t, const char *ev, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#define TRACE(t, ev, ...)                                        \
	do {                                                     \
		if (__builtin_expect(trace_on(t), 0))            \
			trace_emit((t), (ev), __VA_ARGS__);      \
	} while (0)

/* A record with no fields but its time and name: {"t":NS,"ev":"NAME"}. */
#define TRACE0(t, ev) TRACE((t), (ev), "%s", "")

#endif
