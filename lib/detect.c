/* SPDX-License-Identifier: MIT */
/*
 * The corruption detector (include/daxfs/detect.h): read every file through the mount, learn where
 * its blocks live from a read pin, and attribute every tagged unit to its source pin; with the
 * daemon's trace, also catch writes posted after their pin lost the block.
 */
#include "daxfs/detect.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daxfs/libdaxfs.h"

#define CHUNK (64ull << 20)	/* pinned and read at a time */
#define READ_BUF (1u << 20)
#define UNREV_SLACK_NS 2000000ull	/* an unpin this close after a deadline was the revocation */

const char *daxfs_stray_str(uint32_t r)
{
	switch (r) {
	case DAXFS_STRAY_WRONG_FILE: return "wrong-file";
	case DAXFS_STRAY_WRONG_OFFSET: return "wrong-offset";
	case DAXFS_STRAY_WRONG_MEDIA: return "wrong-media";
	case DAXFS_STRAY_AFTER_FREE: return "after-unsafe-free";
	case DAXFS_STRAY_AFTER_RECLAIM: return "after-reclaim";
	case DAXFS_STRAY_AFTER_UNPIN: return "after-unpin";
	case DAXFS_STRAY_AFTER_INVALIDATE: return "after-invalidate";
	}
	return "?";
}

/* ---- the trace ---- */

struct range_rec {
	uint64_t t, start, len;
};

/* Records over media ranges, sorted by start, with the running maximum of the ends. */
struct range_index {
	struct range_rec *v;
	uint64_t *maxend;
	size_t n, cap;
};

struct ack_rec {
	uint64_t t, off, len;
	uint32_t gen;		/* the pin's generation when it acknowledged */
};

struct pin_rec {
	uint64_t id;		/* 0: free slot */
	uint64_t t;		/* taken (0: before the trace began) */
	uint64_t ino;
	uint32_t flags;
	uint32_t gen;		/* the highest generation seen in its refaults so far */
	uint64_t unpin_t;	/* its first unpin record (0: none) */
	uint64_t deadline;	/* the earliest lease-break or invalidation deadline */
	struct ack_rec *acks;
	size_t nacks, capacks;
};

struct trace_db {
	struct pin_rec *pins;	/* open addressing on the id */
	size_t cap, n;
	struct range_index unsafe, reclaim;
	uint64_t records;
};

static bool field_u64(const char *line, const char *key, uint64_t *out)
{
	char pat[48];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	if (!(p = strstr(line, pat)))
		return false;
	p += strlen(pat);
	if (*p == '"')
		p++;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(p, &end, 10);
	if (end == p || errno)
		return false;
	*out = v;
	return true;
}

static struct pin_rec *pin_find(struct trace_db *db, uint64_t id, bool create)
{
	if (create && (db->n + 1) * 2 > db->cap) {
		size_t cap = db->cap ? db->cap * 2 : 1024;
		struct pin_rec *v = calloc(cap, sizeof(*v));

		if (!v)
			return NULL;
		for (size_t i = 0; i < db->cap; i++) {
			if (!db->pins[i].id)
				continue;
			size_t h = (db->pins[i].id * 0x9E3779B97F4A7C15ull) & (cap - 1);
			while (v[h].id)
				h = (h + 1) & (cap - 1);
			v[h] = db->pins[i];
		}
		free(db->pins);
		db->pins = v;
		db->cap = cap;
	}
	if (!db->cap)
		return NULL;
	size_t h = (id * 0x9E3779B97F4A7C15ull) & (db->cap - 1);
	while (db->pins[h].id && db->pins[h].id != id)
		h = (h + 1) & (db->cap - 1);
	if (db->pins[h].id == id)
		return &db->pins[h];
	if (!create)
		return NULL;
	db->pins[h].id = id;
	db->n++;
	return &db->pins[h];
}

static int range_add(struct range_index *ri, uint64_t t, uint64_t start, uint64_t len)
{
	if (ri->n == ri->cap) {
		size_t cap = ri->cap ? ri->cap * 2 : 256;
		struct range_rec *v = realloc(ri->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		ri->v = v;
		ri->cap = cap;
	}
	ri->v[ri->n++] = (struct range_rec){ t, start, len };
	return 0;
}

static int range_cmp(const void *a, const void *b)
{
	const struct range_rec *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

static int range_finish(struct range_index *ri)
{
	if (!ri->n)
		return 0;
	qsort(ri->v, ri->n, sizeof(*ri->v), range_cmp);
	if (!(ri->maxend = malloc(ri->n * sizeof(*ri->maxend))))
		return -ENOMEM;
	uint64_t m = 0;
	for (size_t i = 0; i < ri->n; i++) {
		uint64_t e = ri->v[i].start + ri->v[i].len;
		ri->maxend[i] = m = e > m ? e : m;
	}
	return 0;
}

/* The earliest record over byte x with after < t < before, or 0. */
static uint64_t range_hit(const struct range_index *ri, uint64_t x, uint64_t after, uint64_t before)
{
	size_t lo = 0, hi = ri->n;
	uint64_t best = 0;

	while (lo < hi) {	/* the first record starting beyond x */
		size_t mid = lo + (hi - lo) / 2;

		if (ri->v[mid].start <= x)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = lo; i-- > 0 && ri->maxend[i] > x;) {
		const struct range_rec *r = &ri->v[i];

		if (x < r->start + r->len && r->t > after && r->t < before && (!best || r->t < best))
			best = r->t;
	}
	return best;
}

static void trace_free(struct trace_db *db)
{
	for (size_t i = 0; i < db->cap; i++)
		free(db->pins[i].acks);
	free(db->pins);
	free(db->unsafe.v);
	free(db->unsafe.maxend);
	free(db->reclaim.v);
	free(db->reclaim.maxend);
	memset(db, 0, sizeof(*db));
}

static int trace_load(const char *path, struct trace_db *db, struct daxfs_scan_report *rep)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;
	int ret = 0;

	if (!f) {
		ret = -errno;
		snprintf(rep->first_error, sizeof(rep->first_error), "trace %s: %s", path, strerror(errno));
		return ret;
	}
	while (ret == 0 && getline(&line, &cap, f) > 0) {
		char ev[32];
		const char *e = strstr(line, "\"ev\":\"");
		uint64_t t, id = 0, v;

		if (!e || !field_u64(line, "t", &t) || sscanf(e + 6, "%31[^\"]", ev) != 1)
			continue;
		if (strcmp(ev, "unsafe_free") == 0 || strcmp(ev, "reclaim") == 0) {
			uint64_t media, len;

			if (field_u64(line, "media", &media) && field_u64(line, "len", &len)) {
				ret = range_add(ev[0] == 'u' ? &db->unsafe : &db->reclaim, t, media, len);
				db->records++;
			}
			continue;
		}
		if (!field_u64(line, "pin", &id) || id == 0)
			continue;
		struct pin_rec *p = pin_find(db, id, true);
		if (!p) {
			ret = -ENOMEM;
			break;
		}
		db->records++;
		if (strcmp(ev, "pin") == 0) {
			p->t = t;
			if (field_u64(line, "ino", &v))
				p->ino = v;
			if (field_u64(line, "flags", &v))
				p->flags = (uint32_t)v;
		} else if (strcmp(ev, "unpin") == 0) {
			if (!p->unpin_t)
				p->unpin_t = t;
		} else if (strcmp(ev, "lease_break") == 0 || strcmp(ev, "invalidate") == 0) {
			if (field_u64(line, "deadline", &v) && (!p->deadline || v < p->deadline))
				p->deadline = v;
		} else if (strcmp(ev, "refault") == 0) {
			if (field_u64(line, "gen", &v) && v > p->gen)
				p->gen = (uint32_t)v;
		} else if (strcmp(ev, "invalidate_ack") == 0) {
			uint64_t off, len;

			if (!field_u64(line, "off", &off) || !field_u64(line, "len", &len))
				continue;
			if (p->nacks == p->capacks) {
				size_t c = p->capacks ? p->capacks * 2 : 4;
				struct ack_rec *a = realloc(p->acks, c * sizeof(*a));
				if (!a) {
					ret = -ENOMEM;
					break;
				}
				p->acks = a;
				p->capacks = c;
			}
			/* The trace is in time order: the refaults seen so far give the generation now. */
			p->acks[p->nacks++] = (struct ack_rec){ t, off, len, p->gen };
		}
	}
	free(line);
	fclose(f);
	if (ret == 0 && (ret = range_finish(&db->unsafe)) == 0)
		ret = range_finish(&db->reclaim);
	if (ret)
		snprintf(rep->first_error, sizeof(rep->first_error), "trace %s: %s", path, strerror(-ret));
	rep->trace_records = db->records;
	return ret;
}

/*
 * A structurally legitimate unit: does the trace say it was posted after its pin lost the block?
 * The reason, or 0; *when: the record's time.
 */
static uint32_t trace_verdict(const struct trace_db *db, const struct daxfs_tag *tag, uint64_t *when)
{
	struct pin_rec *p = pin_find((struct trace_db *)db, tag->pin_id, false);
	uint64_t born = p ? p->t : 0, t;

	if ((t = range_hit(&db->unsafe, tag->media_off, born, tag->time_ns))) {
		*when = t;
		return DAXFS_STRAY_AFTER_FREE;
	}
	if ((t = range_hit(&db->reclaim, tag->media_off, born, tag->time_ns))) {
		*when = t;
		return DAXFS_STRAY_AFTER_RECLAIM;
	}
	if (!p)
		return 0;
	if (p->unpin_t && p->unpin_t < tag->time_ns) {
		/* A revocation of a pin whose device may not stop keeps its blocks: not a loss. */
		bool revoked = p->deadline && p->unpin_t + UNREV_SLACK_NS >= p->deadline;

		if ((p->flags & DAXFS_PIN_REVOCABLE) || !revoked) {
			*when = p->unpin_t;
			return DAXFS_STRAY_AFTER_UNPIN;
		}
	}
	for (size_t i = 0; i < p->nacks; i++) {
		const struct ack_rec *a = &p->acks[i];

		if (tag->file_off >= a->off && tag->file_off - a->off < a->len && a->t < tag->time_ns && tag->gen <= a->gen) {
			*when = a->t;
			return DAXFS_STRAY_AFTER_INVALIDATE;
		}
	}
	return 0;
}

/* ---- the walk ---- */

struct scan_ctx {
	struct daxfs_scan_report *rep;
	const struct daxfs_scan_opts *opts;
	struct trace_db *db;
	struct daxfs_pin_info *pins;	/* registered now, by id */
	uint32_t npins;
	dev_t dev;
	char *buf;
	struct daxfs_stray cur;		/* the run being gathered */
	bool have_cur;
	uint32_t max;
};

static __thread struct scan_ctx *walk_ctx;

__attribute__((format(printf, 2, 3))) static void note_error(struct daxfs_scan_report *rep, const char *fmt, ...)
{
	va_list ap;

	if (rep->errors++ == 0) {
		va_start(ap, fmt);
		vsnprintf(rep->first_error, sizeof(rep->first_error), fmt, ap);
		va_end(ap);
	}
}

static const struct daxfs_pin_info *pin_now(const struct scan_ctx *c, uint64_t id)
{
	uint32_t lo = 0, hi = c->npins;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (c->pins[mid].pin_id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < c->npins && c->pins[lo].pin_id == id ? &c->pins[lo] : NULL;
}

static void flush_run(struct scan_ctx *c)
{
	struct daxfs_scan_report *rep = c->rep;

	if (!c->have_cur)
		return;
	c->have_cur = false;
	if (rep->nstrays >= c->max) {
		rep->truncated = 1;
		free(c->cur.path);
		return;
	}
	if (rep->nstrays % 64 == 0) {
		struct daxfs_stray *v = realloc(rep->strays, (rep->nstrays + 64) * sizeof(*v));

		if (!v) {
			rep->truncated = 1;
			free(c->cur.path);
			return;
		}
		rep->strays = v;
	}
	rep->strays[rep->nstrays++] = c->cur;
}

static void stray(struct scan_ctx *c, const char *path, uint64_t ino, uint64_t off, uint64_t media,
		  const struct daxfs_tag *tag, uint32_t reason, uint64_t when)
{
	struct daxfs_stray *r = &c->cur;

	c->rep->stray++;
	if (c->have_cur && r->reason == reason && r->tag.pin_id == tag->pin_id && r->ino == ino &&
	    r->file_off + r->len == off) {
		r->len += DAXFS_TAG_UNIT;
		if (tag->seq < r->seq_min)
			r->seq_min = tag->seq;
		if (tag->seq > r->seq_max)
			r->seq_max = tag->seq;
		return;
	}
	flush_run(c);
	const struct daxfs_pin_info *pi = pin_now(c, tag->pin_id);
	*r = (struct daxfs_stray){ .path = strdup(path), .ino = ino, .file_off = off, .len = DAXFS_TAG_UNIT,
				   .media_off = media, .tag = *tag, .seq_min = tag->seq, .seq_max = tag->seq,
				   .reason = reason, .pin_state = pi ? pi->state : 0, .pin_pid = pi ? pi->pid : 0,
				   .record_ns = when };
	c->have_cur = r->path != NULL;
}

/* Check [off, off + len) of the file against the extents of pin p (NULL: unknown). */
static int scan_range(struct scan_ctx *c, int fd, const char *path, uint64_t ino, uint64_t off, uint64_t len,
		      const struct daxfs_pin *p)
{
	for (uint64_t done = 0; done < len;) {
		size_t want = (size_t)(len - done < READ_BUF ? len - done : READ_BUF);
		ssize_t r = pread(fd, c->buf, want, (off_t)(off + done));

		if (r < 0) {
			note_error(c->rep, "%s: read at %llu: %s", path, (unsigned long long)(off + done), strerror(errno));
			return -errno;
		}
		if (r == 0)
			break;
		c->rep->bytes += (uint64_t)r;
		uint64_t base = off + done;
		for (size_t i = 0; i + DAXFS_TAG_UNIT <= (size_t)r; i += DAXFS_TAG_UNIT) {
			struct daxfs_tag tag;
			uint64_t at = base + i, media = DAXFS_MEDIA_ZERO, run, when = 0;
			uint32_t why = 0;

			if (!daxfs_tag_decode(c->buf + i, &tag))
				continue;
			c->rep->tags++;
			if (p)
				daxfs_pin_map(p, at - p->offset, &media, &run);
			if (tag.ino != ino)
				why = DAXFS_STRAY_WRONG_FILE;
			else if (tag.file_off != at)
				why = DAXFS_STRAY_WRONG_OFFSET;
			else if (p && tag.media_off != media)
				why = DAXFS_STRAY_WRONG_MEDIA;
			else if (c->db)
				why = trace_verdict(c->db, &tag, &when);
			if (why)
				stray(c, path, ino, at, media, &tag, why, when);
			else
				c->rep->legit++;
		}
		done += (uint64_t)r;
	}
	return 0;
}

static void scan_file(struct scan_ctx *c, const char *path)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;

	if (fd < 0) {
		note_error(c->rep, "%s: %s", path, strerror(errno));
		return;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return;
	}
	c->rep->files++;
	for (uint64_t off = 0; off < (uint64_t)st.st_size; off += CHUNK) {
		uint64_t len = (uint64_t)st.st_size - off < CHUNK ? (uint64_t)st.st_size - off : CHUNK;
		struct daxfs_pin p;
		/* A read pin allocates nothing and holds the blocks still while they are read. */
		int ret = daxfs_pin(fd, off, len, 0, &p);

		if (ret == -EOPNOTSUPP || ret == -EPERM)
			ret = daxfs_pin(fd, off, len, DAXFS_PIN_REVOCABLE, &p);
		if (ret) {
			note_error(c->rep, "%s: read pin [%llu, +%llu): %s (offsets and files checked, media not)", path,
				   (unsigned long long)off, (unsigned long long)len, strerror(-ret));
			scan_range(c, fd, path, st.st_ino, off, len, NULL);
			continue;
		}
		scan_range(c, fd, path, st.st_ino, off, len, &p);
		daxfs_unpin(fd, p.id);
		daxfs_pin_free(&p);
	}
	flush_run(c);
	close(fd);
}

static int walk_cb(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)ftw;
	if (type == FTW_F && S_ISREG(st->st_mode) && st->st_dev == walk_ctx->dev)
		scan_file(walk_ctx, path);
	else if (type == FTW_DNR || type == FTW_NS)
		note_error(walk_ctx->rep, "%s: cannot read", path);
	return 0;
}

static int pin_id_cmp(const void *a, const void *b)
{
	const struct daxfs_pin_info *x = a, *y = b;

	return x->pin_id < y->pin_id ? -1 : x->pin_id > y->pin_id;
}

int daxfs_scan(const char *path, const struct daxfs_scan_opts *opts, struct daxfs_scan_report *rep)
{
	struct daxfs_scan_opts def = { 0 };
	struct scan_ctx c = { .rep = rep };
	struct trace_db db = { 0 };
	struct daxfs_ioc_info info;
	struct stat st;
	int ret;

	memset(rep, 0, sizeof(*rep));
	if (!opts)
		opts = &def;
	c.opts = opts;
	c.max = opts->max_strays ? opts->max_strays : 10000;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		snprintf(rep->first_error, sizeof(rep->first_error), "%s: %s", path, strerror(errno));
		return ret;
	}
	if ((ret = daxfs_info(fd, &info)) || fstat(fd, &st) < 0) {
		ret = ret ? ret : -errno;
		snprintf(rep->first_error, sizeof(rep->first_error), "%s: %s", path,
			 ret == -ENOTTY ? "not on a daxfs mount" : strerror(-ret));
		close(fd);
		return ret;
	}
	c.dev = st.st_dev;
	if (opts->trace && (ret = trace_load(opts->trace, &db, rep))) {
		trace_free(&db);
		close(fd);
		return ret;
	}
	c.db = opts->trace ? &db : NULL;
	if ((ret = daxfs_list_pins(fd, &c.pins, &c.npins))) {
		c.pins = NULL;
		c.npins = 0;
	}
	if (c.npins)
		qsort(c.pins, c.npins, sizeof(*c.pins), pin_id_cmp);
	close(fd);
	if (!(c.buf = malloc(READ_BUF))) {
		ret = -ENOMEM;
		goto out;
	}
	struct scan_ctx *saved = walk_ctx;
	walk_ctx = &c;
	ret = nftw(path, walk_cb, 32, FTW_PHYS | FTW_MOUNT) < 0 ? -errno : 0;
	walk_ctx = saved;
	flush_run(&c);
	if (ret)
		snprintf(rep->first_error, sizeof(rep->first_error), "%s: walk: %s", path, strerror(-ret));
out:
	free(c.buf);
	free(c.pins);
	trace_free(&db);
	return ret;
}

void daxfs_scan_free(struct daxfs_scan_report *rep)
{
	for (uint32_t i = 0; i < rep->nstrays; i++)
		free(rep->strays[i].path);
	free(rep->strays);
	rep->strays = NULL;
	rep->nstrays = 0;
}
