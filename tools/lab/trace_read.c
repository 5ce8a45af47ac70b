/* SPDX-License-Identifier: MIT */
/*
 * What a run's event trace says: busy bytes over time (busy_add minus reclaim), reclaim latency,
 * ENOSPC waits, and the pin state changes counted.  The daemon writes one flat JSON object per line
 * with numbers and short strings only, so a field is found by its key.
 */
#include "lab.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The value of "key": in line, as a number.  False when absent. */
static bool field_u64(const char *line, const char *key, uint64_t *v)
{
	char pat[48];
	const char *p;
	char *end;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	if (!(p = strstr(line, pat)))
		return false;
	p += strlen(pat);
	errno = 0;
	*v = strtoull(p, &end, 10);
	return end != p && errno == 0;
}

static bool field_true(const char *line, const char *key)
{
	char pat[48];

	snprintf(pat, sizeof(pat), "\"%s\":true", key);
	return strstr(line, pat) != NULL;
}

/* The record's event name into ev.  False when the line is not a record. */
static bool record_event(const char *line, char *ev, size_t len)
{
	const char *p = strstr(line, "\"ev\":\"");
	size_t n = 0;

	if (line[0] != '{' || !p)
		return false;
	p += 6;
	while (p[n] && p[n] != '"' && n + 1 < len)
		n++;
	if (p[n] != '"')
		return false;
	memcpy(ev, p, n);
	ev[n] = 0;
	return true;
}

/* Pins seen, to pair each with its unpin: ids grow, so a sorted array with binary search is enough. */
struct pin_set {
	uint64_t *id;
	size_t n, cap;
};

static void pin_set_add(struct pin_set *s, uint64_t id)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 64;
		uint64_t *v = realloc(s->id, cap * sizeof(*v));

		if (!v)
			return;
		s->id = v;
		s->cap = cap;
	}
	size_t i = s->n;
	while (i > 0 && s->id[i - 1] > id) {
		s->id[i] = s->id[i - 1];
		i--;
	}
	s->id[i] = id;
	s->n++;
}

static bool pin_set_remove(struct pin_set *s, uint64_t id)
{
	size_t lo = 0, hi = s->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (s->id[mid] < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == s->n || s->id[lo] != id)
		return false;
	memmove(&s->id[lo], &s->id[lo + 1], (s->n - lo - 1) * sizeof(*s->id));
	s->n--;
	return true;
}

int lab_trace_read(const char *path, uint64_t until_ns, struct lab_trace_sum *sum)
{
	FILE *f = fopen(path, "r");
	struct pin_set pins = { 0 };
	uint64_t last_t = 0;
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;

	memset(sum, 0, sizeof(*sum));
	if (!f)
		return -errno;
	while ((len = getline(&line, &cap, f)) > 0) {
		char ev[32];
		uint64_t t, v, id;

		if (!record_event(line, ev, sizeof(ev)) || !field_u64(line, "t", &t)) {
			sum->bad_lines++;
			continue;
		}
		sum->records++;
		if (!sum->first_ns)
			sum->first_ns = t;
		sum->last_ns = t;
		/* Busy bytes are a step function: integrate up to this record before it changes them. */
		if (last_t && t > last_t)
			sum->busy_byte_s += (double)sum->busy_now * (double)(t - last_t) / 1e9;
		last_t = t > last_t ? t : last_t;
		if (!strcmp(ev, "busy_add") && field_u64(line, "len", &v)) {
			sum->busy_added += v;
			sum->busy_now += v;
			if (sum->busy_now > sum->busy_peak)
				sum->busy_peak = sum->busy_now;
		} else if (!strcmp(ev, "reclaim") && field_u64(line, "len", &v)) {
			sum->reclaimed += v;
			sum->busy_now -= v < sum->busy_now ? v : sum->busy_now;
			if (field_u64(line, "latency", &v))
				lab_samples_add(&sum->reclaim, v);
		} else if (!strcmp(ev, "enospc_wait")) {
			sum->enospc_waits++;
			if (field_u64(line, "ns", &v))
				sum->enospc_wait_ns += v;
			if (!field_true(line, "ok"))
				sum->enospc_failed++;
		} else if (!strcmp(ev, "pin") && field_u64(line, "pin", &id)) {
			sum->pins++;
			pin_set_add(&pins, id);
		} else if (!strcmp(ev, "unpin") && field_u64(line, "pin", &id)) {
			sum->unpins++;
			pin_set_remove(&pins, id);
		} else if (!strcmp(ev, "lease_break")) {
			sum->lease_breaks++;
		} else if (!strcmp(ev, "revoke")) {
			sum->revokes++;
		} else if (!strcmp(ev, "invalidate")) {
			sum->invalidates++;
		} else if (!strcmp(ev, "invalidate_ack")) {
			sum->invalidate_acks++;
		} else if (!strcmp(ev, "refault")) {
			sum->refaults++;
		} else if (!strcmp(ev, "unsafe_free")) {
			sum->unsafe_frees++;
		}
	}
	if (until_ns > last_t && last_t)
		sum->busy_byte_s += (double)sum->busy_now * (double)(until_ns - last_t) / 1e9;
	sum->unpaired_pins = pins.n;
	free(pins.id);
	free(line);
	fclose(f);
	return 0;
}

void lab_trace_sum_free(struct lab_trace_sum *sum)
{
	lab_samples_free(&sum->reclaim);
}
