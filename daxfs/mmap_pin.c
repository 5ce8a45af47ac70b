/* SPDX-License-Identifier: MIT */
#include "mmap_pin.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daxfs/ioctl.h"
#include "util.h"

static int cmp_id(const struct pin *a, const struct pin *b)
{
	return a->id < b->id ? -1 : a->id > b->id;
}

static int cmp_seg(const struct pin_seg *a, const struct pin_seg *b)
{
	return a->start < b->start ? -1 : a->start > b->start;
}

RB_GENERATE_STATIC_UNUSED(pin_ids, pin, by_id, cmp_id)
RB_GENERATE_STATIC_UNUSED(pin_segs, pin_seg, node, cmp_seg)

void pin_table_init(struct pin_table *tab, uint32_t max_total, uint32_t max_per_owner, pin_unpinned_fn unpinned,
		    void *ctx)
{
	memset(tab, 0, sizeof(*tab));
	pthread_mutex_init(&tab->lock, NULL);
	cond_init_monotonic(&tab->changed);
	RB_INIT(&tab->ids);
	RB_INIT(&tab->segs);
	LIST_INIT(&tab->breaks);
	tab->next_id = 1;
	tab->max_total = max_total;
	tab->max_per_owner = max_per_owner;
	tab->unpinned = unpinned;
	tab->ctx = ctx;
}

void pin_table_destroy(struct pin_table *tab)
{
	struct pin_seg *s, *ns;
	struct pin *p, *np;

	RB_FOREACH_SAFE(p, pin_ids, &tab->ids, np) {
		RB_REMOVE(pin_ids, &tab->ids, p);
		free(p->ext);
		free(p);
	}
	RB_FOREACH_SAFE(s, pin_segs, &tab->segs, ns) {
		RB_REMOVE(pin_segs, &tab->segs, s);
		free(s);
	}
	pthread_cond_destroy(&tab->changed);
	pthread_mutex_destroy(&tab->lock);
}

void pin_owner_init(struct pin_owner *o)
{
	TAILQ_INIT(&o->pins);
	o->npins = 0;
}

/* ---- reference segments ---- */

/* The segment containing blk, or the first one after it. */
static struct pin_seg *seg_from(struct pin_table *tab, uint64_t blk)
{
	struct pin_seg key = { .start = blk };
	struct pin_seg *s = RB_NFIND(pin_segs, &tab->segs, &key);
	struct pin_seg *prev = s ? RB_PREV(pin_segs, &tab->segs, s) : RB_MAX(pin_segs, &tab->segs);

	if (prev && prev->start + prev->len > blk)
		return prev;
	return s;
}

static struct pin_seg *seg_new(struct pin_table *tab, uint64_t start, uint64_t len, uint32_t count)
{
	struct pin_seg *s = malloc(sizeof(*s));

	if (!s)
		return NULL;
	s->start = start;
	s->len = len;
	s->count = count;
	RB_INSERT(pin_segs, &tab->segs, s);
	return s;
}

/* Cut s in two at blk (inside it); returns the upper part. */
static struct pin_seg *seg_split(struct pin_table *tab, struct pin_seg *s, uint64_t blk)
{
	struct pin_seg *hi = seg_new(tab, blk, s->start + s->len - blk, s->count);

	if (hi)
		s->len = blk - s->start;
	return hi;
}

/* Segments touching [start, end] that meet a neighbour with the same count become one. */
static void merge_range(struct pin_table *tab, uint64_t start, uint64_t end)
{
	struct pin_seg *s = seg_from(tab, start);

	while (s && s->start <= end) {
		struct pin_seg *prev = RB_PREV(pin_segs, &tab->segs, s);

		if (prev && prev->start + prev->len == s->start && prev->count == s->count) {
			prev->len += s->len;
			RB_REMOVE(pin_segs, &tab->segs, s);
			free(s);
			s = prev;
		}
		s = RB_NEXT(pin_segs, &tab->segs, s);
	}
}

int pin_ref_locked(struct pin_table *tab, uint64_t start, uint64_t len)
{
	uint64_t end = start + len, cur = start;
	struct pin_seg *s = seg_from(tab, start);

	/* Split the boundary segments first, so a failure leaves the counts untouched. */
	if (s && s->start < start && !seg_split(tab, s, start))
		return -ENOMEM;
	s = seg_from(tab, start);
	while (cur < end) {
		if (!s || s->start > cur) {
			/* A gap: a new segment with count 1. */
			uint64_t gap_end = s ? MIN(s->start, end) : end;
			struct pin_seg *n = seg_new(tab, cur, gap_end - cur, 1);

			if (!n)
				goto undo;
			tab->pinned_blocks += gap_end - cur;
			cur = gap_end;
			s = RB_NEXT(pin_segs, &tab->segs, n);
			continue;
		}
		if (s->start + s->len > end && !seg_split(tab, s, end))
			goto undo;
		s->count++;
		cur = s->start + s->len;
		s = RB_NEXT(pin_segs, &tab->segs, s);
	}
	merge_range(tab, start, end);
	return 0;
undo:
	if (cur > start)
		pin_unref_locked(tab, start, cur - start);
	return -ENOMEM;
}

void pin_unref_locked(struct pin_table *tab, uint64_t start, uint64_t len)
{
	uint64_t end = start + len;
	uint64_t zero_start = 0, zero_len = 0;
	struct pin_seg *s = seg_from(tab, start);

	/*
	 * Counts change only on whole segments, so split at both edges first.  If a split fails (out of
	 * memory) that segment keeps its count: blocks stay pinned too long, never too short.
	 */
	if (s && s->start < start)
		s = seg_split(tab, s, start) ? seg_from(tab, start) : RB_NEXT(pin_segs, &tab->segs, s);
	while (s && s->start < end) {
		struct pin_seg *next;
		bool whole = s->start + s->len <= end || seg_split(tab, s, end);

		next = RB_NEXT(pin_segs, &tab->segs, s);
		if (whole && --s->count == 0) {
			/* Report zeroed ranges merged, one callback per contiguous run. */
			if (zero_len && zero_start + zero_len == s->start) {
				zero_len += s->len;
			} else {
				if (zero_len && tab->unpinned)
					tab->unpinned(tab->ctx, zero_start, zero_len);
				zero_start = s->start;
				zero_len = s->len;
			}
			tab->pinned_blocks -= s->len;
			RB_REMOVE(pin_segs, &tab->segs, s);
			free(s);
		}
		s = next;
	}
	if (zero_len && tab->unpinned)
		tab->unpinned(tab->ctx, zero_start, zero_len);
	merge_range(tab, start, end);
	pthread_cond_broadcast(&tab->changed);
}

void pin_runs_locked(struct pin_table *tab, uint64_t start, uint64_t len, pin_run_fn fn, void *arg)
{
	uint64_t end = start + len, cur = start;

	for (struct pin_seg *s = seg_from(tab, start); cur < end; s = s ? RB_NEXT(pin_segs, &tab->segs, s) : NULL) {
		if (!s || s->start >= end) {
			fn(arg, cur, end - cur, 0);
			break;
		}
		if (s->start > cur) {
			fn(arg, cur, s->start - cur, 0);
			cur = s->start;
		}
		uint64_t e = MIN(end, s->start + s->len);
		fn(arg, cur, e - cur, s->count);
		cur = e;
	}
}

bool pin_any_locked(struct pin_table *tab, uint64_t start, uint64_t len)
{
	struct pin_seg *s = seg_from(tab, start);

	return s && s->start < start + len;
}

size_t pin_segments_locked(struct pin_table *tab)
{
	struct pin_seg *s;
	size_t n = 0;

	RB_FOREACH(s, pin_segs, &tab->segs)
		n++;
	return n;
}

uint32_t pin_max_count_locked(struct pin_table *tab, uint64_t start, uint64_t len)
{
	uint32_t best = 0;

	for (struct pin_seg *s = seg_from(tab, start); s && s->start < start + len; s = RB_NEXT(pin_segs, &tab->segs, s))
		best = MAX(best, s->count);
	return best;
}

static void note_deadline(struct pin_table *tab, uint64_t deadline_ns)
{
	if (!tab->next_deadline_ns || deadline_ns < tab->next_deadline_ns)
		tab->next_deadline_ns = deadline_ns;
}

static bool holds_any(const struct pin *p, uint64_t start, uint64_t len)
{
	for (uint32_t i = 0; i < p->next; i++)
		if (ranges_overlap(p->ext[i].pblk, p->ext[i].len, start, len))
			return true;
	return false;
}

/* The earliest deadline of a pending break covering any block of p, or 0. */
static uint64_t break_deadline(struct pin_table *tab, const struct pin *p)
{
	uint64_t deadline = 0;
	struct lease_break *lb;

	LIST_FOREACH(lb, &tab->breaks, link) {
		for (uint32_t i = 0; i < lb->n; i++)
			if (holds_any(p, lb->ranges[i].pblk, lb->ranges[i].len) &&
			    (!deadline || lb->deadline_ns < deadline))
				deadline = lb->deadline_ns;
	}
	return deadline;
}

/* ---- pins ---- */

int pin_add_locked(struct pin_table *tab, struct pin_owner *o, uint64_t ino, uint64_t lblk, uint64_t nblocks,
		   uint32_t flags, pid_t pid, const struct pin_ext *ext, uint32_t next, struct pin **out)
{
	struct pin *p;
	uint32_t i;

	if (tab->max_per_owner && o->npins >= tab->max_per_owner) {
		tab->refused++;
		return -EMFILE;
	}
	if (tab->max_total && tab->npins >= tab->max_total) {
		tab->refused++;
		return -ENFILE;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->ext = malloc((next ? next : 1) * sizeof(*ext));
	if (!p->ext) {
		free(p);
		return -ENOMEM;
	}
	memcpy(p->ext, ext, next * sizeof(*ext));
	p->next = next;
	for (i = 0; i < next; i++) {
		if (pin_ref_locked(tab, ext[i].pblk, ext[i].len)) {
			while (i-- > 0)
				pin_unref_locked(tab, ext[i].pblk, ext[i].len);
			free(p->ext);
			free(p);
			return -ENOMEM;
		}
	}
	p->owner = o;
	p->id = tab->next_id++;
	p->ino = ino;
	p->lblk = lblk;
	p->nblocks = nblocks;
	p->flags = flags;
	p->state = DAXFS_PIN_ACTIVE;
	p->pid = pid;
	p->created_ns = util_now_ns();
	/* Blocks whose lease is being broken: the new pin is under the same deadline from birth. */
	if (!LIST_EMPTY(&tab->breaks) && (p->deadline_ns = break_deadline(tab, p)) != 0) {
		p->state = DAXFS_PIN_REVOKING;
		note_deadline(tab, p->deadline_ns);
	}
	RB_INSERT(pin_ids, &tab->ids, p);
	TAILQ_INSERT_TAIL(&o->pins, p, owner_link);
	o->npins++;
	tab->npins++;
	tab->created++;
	*out = p;
	return 0;
}

int pin_lookup_locked(struct pin_table *tab, const struct pin_owner *o, uint64_t id, struct pin **out)
{
	struct pin key = { .id = id };
	struct pin *p;

	pin_revoke_expired_locked(tab, util_now_ns());
	p = RB_FIND(pin_ids, &tab->ids, &key);

	if (!p)
		return -ENOENT;
	if (p->owner != o)
		return -EBADF;
	*out = p;
	return 0;
}

static void drop_refs(struct pin_table *tab, struct pin *p)
{
	for (uint32_t i = 0; i < p->next; i++)
		pin_unref_locked(tab, p->ext[i].pblk, p->ext[i].len);
}

void pin_remove_locked(struct pin_table *tab, struct pin *p)
{
	if (p->state != DAXFS_PIN_REVOKED)
		drop_refs(tab, p);
	RB_REMOVE(pin_ids, &tab->ids, p);
	TAILQ_REMOVE(&p->owner->pins, p, owner_link);
	p->owner->npins--;
	tab->npins--;
	tab->released++;
	free(p->ext);
	free(p);
}

int pin_remove(struct pin_table *tab, struct pin_owner *o, uint64_t id)
{
	struct pin *p;
	int ret;

	pthread_mutex_lock(&tab->lock);
	ret = pin_lookup_locked(tab, o, id, &p);
	if (ret == 0)
		pin_remove_locked(tab, p);
	pthread_mutex_unlock(&tab->lock);
	return ret;
}

void pin_release_owner(struct pin_table *tab, struct pin_owner *o)
{
	pthread_mutex_lock(&tab->lock);
	while (!TAILQ_EMPTY(&o->pins))
		pin_remove_locked(tab, TAILQ_FIRST(&o->pins));
	pthread_mutex_unlock(&tab->lock);
}

void pin_release_all(struct pin_table *tab)
{
	pthread_mutex_lock(&tab->lock);
	while (!RB_EMPTY(&tab->ids))
		pin_remove_locked(tab, RB_MIN(pin_ids, &tab->ids));
	pthread_mutex_unlock(&tab->lock);
}

struct pin *pin_first_locked(struct pin_table *tab)
{
	return RB_MIN(pin_ids, &tab->ids);
}

struct pin *pin_next_locked(struct pin_table *tab, struct pin *p)
{
	(void)tab;
	return RB_NEXT(pin_ids, &tab->ids, p);
}

uint32_t pin_break_locked(struct pin_table *tab, uint64_t start, uint64_t len, uint64_t deadline_ns)
{
	struct pin *p;
	uint32_t n = 0;

	/* Revocation is rare; a scan of the pins keeps the common paths free of a second index. */
	RB_FOREACH(p, pin_ids, &tab->ids) {
		if (p->state == DAXFS_PIN_REVOKED || !holds_any(p, start, len))
			continue;
		if (p->state == DAXFS_PIN_ACTIVE) {
			p->state = DAXFS_PIN_REVOKING;
			p->deadline_ns = deadline_ns;
			note_deadline(tab, deadline_ns);
		}
		n++;
	}
	return n;
}

void pin_break_begin_locked(struct pin_table *tab, struct lease_break *lb)
{
	LIST_INSERT_HEAD(&tab->breaks, lb, link);
	for (uint32_t i = 0; i < lb->n; i++)
		pin_break_locked(tab, lb->ranges[i].pblk, lb->ranges[i].len, lb->deadline_ns);
}

void pin_break_end_locked(struct pin_table *tab, struct lease_break *lb)
{
	(void)tab;
	LIST_REMOVE(lb, link);
}

uint32_t pin_revoke_expired_locked(struct pin_table *tab, uint64_t now_ns)
{
	struct pin *p;
	uint32_t n = 0;

	if (!tab->next_deadline_ns || now_ns < tab->next_deadline_ns)
		return 0;	/* the common case costs a comparison */
	tab->next_deadline_ns = 0;
	RB_FOREACH(p, pin_ids, &tab->ids) {
		if (p->state != DAXFS_PIN_REVOKING)
			continue;
		if (p->deadline_ns <= now_ns) {
			p->state = DAXFS_PIN_REVOKED;
			drop_refs(tab, p);
			tab->revoked++;
			n++;
		} else {
			note_deadline(tab, p->deadline_ns);
		}
	}
	return n;
}
