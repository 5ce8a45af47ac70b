/* SPDX-License-Identifier: MIT */
#include "mmap_pin.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daxfs/ioctl.h"

static int cmp_id(const struct pin *a, const struct pin *b)
{
	return a->id < b->id ? -1 : a->id > b->id;
}

/* By file, then file offset, then id: a file's pins in order. */
static int cmp_ino(const struct pin *a, const struct pin *b)
{
	if (a->ino != b->ino)
		return a->ino < b->ino ? -1 : 1;
	if (a->lblk != b->lblk)
		return a->lblk < b->lblk ? -1 : 1;
	return cmp_id(a, b);
}

static int cmp_seg(const struct pin_seg *a, const struct pin_seg *b)
{
	return a->start < b->start ? -1 : a->start > b->start;
}

RB_GENERATE_STATIC_UNUSED(pin_ids, pin, by_id, cmp_id)
RB_GENERATE_STATIC_UNUSED(pin_inos, pin, by_ino, cmp_ino)
RB_GENERATE_STATIC_UNUSED(pin_segs, pin_seg, node, cmp_seg)

void pin_table_init(struct pin_table *tab, unsigned bshift, uint32_t max_total, uint32_t max_per_owner,
		    const struct pin_callbacks *cb)
{
	memset(tab, 0, sizeof(*tab));
	lock_init(&tab->lock);
	cond_init_monotonic(&tab->changed);
	cond_init_monotonic(&tab->dma_idle);
	RB_INIT(&tab->ids);
	RB_INIT(&tab->inos);
	RB_INIT(&tab->segs);
	LIST_INIT(&tab->breaks);
	tab->next_id = 1;
	tab->max_total = max_total;
	tab->max_per_owner = max_per_owner;
	tab->bshift = bshift;
	if (cb)
		tab->cb = *cb;
}

static void free_pin(struct pin *p)
{
	struct pin_inval *iv;

	while ((iv = TAILQ_FIRST(&p->invals))) {
		TAILQ_REMOVE(&p->invals, iv, link);
		free(iv);
	}
	free(p->deferred);
	free(p->ext);
	free(p);
}

void pin_table_destroy(struct pin_table *tab)
{
	struct pin_seg *s, *ns;
	struct pin *p, *np;

	RB_FOREACH_SAFE(p, pin_ids, &tab->ids, np) {
		RB_REMOVE(pin_ids, &tab->ids, p);
		free_pin(p);
	}
	RB_FOREACH_SAFE(s, pin_segs, &tab->segs, ns) {
		RB_REMOVE(pin_segs, &tab->segs, s);
		free(s);
	}
	pthread_cond_destroy(&tab->changed);
	pthread_cond_destroy(&tab->dma_idle);
	lock_destroy(&tab->lock);
}

void pin_owner_init(struct pin_owner *o)
{
	memset(o, 0, sizeof(*o));
	TAILQ_INIT(&o->pins);
	TAILQ_INIT(&o->events);
	o->next_seq = 1;
}

void pin_owner_destroy(struct pin_owner *o)
{
	struct pin_event_rec *e;

	while ((e = TAILQ_FIRST(&o->events))) {
		TAILQ_REMOVE(&o->events, e, link);
		free(e);
	}
	o->nevents = 0;
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

	lock_assert_held(&tab->lock);
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

	lock_assert_held(&tab->lock);
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
				if (zero_len && tab->cb.unpinned)
					tab->cb.unpinned(tab->cb.ctx, zero_start, zero_len);
				zero_start = s->start;
				zero_len = s->len;
			}
			tab->pinned_blocks -= s->len;
			RB_REMOVE(pin_segs, &tab->segs, s);
			free(s);
		}
		s = next;
	}
	if (zero_len && tab->cb.unpinned)
		tab->cb.unpinned(tab->cb.ctx, zero_start, zero_len);
	merge_range(tab, start, end);
	pthread_cond_broadcast(&tab->changed);
}

void pin_runs_locked(struct pin_table *tab, uint64_t start, uint64_t len, pin_run_fn fn, void *arg)
{
	uint64_t end = start + len, cur = start;

	lock_assert_held(&tab->lock);
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
	lock_assert_held(&tab->lock);
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

/* ---- a pin's extents ---- */

/* The process a pin's events and records name: its owner's holder, else the thread that pinned. */
static int32_t holder_pid(const struct pin *p)
{
	return p->owner->holder.pid ? p->owner->holder.pid : p->pid;
}

static void note_deadline(struct pin_table *tab, uint64_t deadline_ns)
{
	if (!tab->next_deadline_ns || deadline_ns < tab->next_deadline_ns)
		tab->next_deadline_ns = deadline_ns;
}

static void changed(struct pin_table *tab, uint64_t ino)
{
	if (tab->cb.changed)
		tab->cb.changed(tab->cb.ctx, ino);
	pthread_cond_broadcast(&tab->changed);
}

bool pin_holds_locked(const struct pin *p, uint64_t start, uint64_t len)
{
	if (!p->holds_refs)
		return false;
	for (uint32_t i = 0; i < p->next; i++)
		if (p->ext[i].pblk != PIN_HOLE && ranges_overlap(p->ext[i].pblk, p->ext[i].len, start, len))
			return true;
	return false;
}

uint64_t pin_held_blocks(const struct pin *p)
{
	uint64_t n = 0;

	if (!p->holds_refs)
		return 0;
	for (uint32_t i = 0; i < p->next; i++)
		if (p->ext[i].pblk != PIN_HOLE)
			n += p->ext[i].len;
	return n;
}

uint32_t pin_invalidated_ranges(const struct pin *p)
{
	uint64_t cur = p->lblk;
	uint32_t gaps = 0;

	/* The extents cover the pin's range in file order, holes included: what they skip is gone. */
	for (uint32_t i = 0; i < p->next; i++) {
		gaps += p->ext[i].lblk > cur;
		cur = p->ext[i].lblk + p->ext[i].len;
	}
	return gaps + (cur < p->lblk + p->nblocks);
}

static void drop_refs(struct pin_table *tab, struct pin *p)
{
	if (!p->holds_refs)
		return;
	p->holds_refs = false;
	for (uint32_t i = 0; i < p->next; i++)
		if (p->ext[i].pblk != PIN_HOLE)
			pin_unref_locked(tab, p->ext[i].pblk, p->ext[i].len);
}

/* Let go of media range [pblk, pblk + len) that p no longer maps: now, or after the unit in flight. */
static void release_range(struct pin_table *tab, struct pin *p, uint64_t pblk, uint64_t len)
{
	if (pblk == PIN_HOLE || !p->holds_refs)
		return;
	if (p->units_inflight == 0) {
		pin_unref_locked(tab, pblk, len);
		return;
	}
	struct pin_ext *nd = realloc(p->deferred, (p->ndeferred + 1) * sizeof(*nd));
	if (!nd) {
		/* Out of memory: keep the reference (too long pinned, never too short) until removal. */
		return;
	}
	p->deferred = nd;
	p->deferred[p->ndeferred++] = (struct pin_ext){ .pblk = pblk, .len = len };
}

/*
 * Cut file blocks [lblk, lblk + n) out of p's extents, letting go of their media.  Returns the number
 * of mapped (or hole) blocks removed, or -ENOMEM (nothing changed).
 */
static int64_t cut_range(struct pin_table *tab, struct pin *p, uint64_t lblk, uint64_t n)
{
	uint64_t end = lblk + n;
	uint32_t extra = 0;
	int64_t removed = 0;

	for (uint32_t i = 0; i < p->next; i++)
		if (p->ext[i].lblk < lblk && p->ext[i].lblk + p->ext[i].len > end)
			extra++;	/* an extent split in two */
	struct pin_ext *v = malloc((p->next + extra + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	uint32_t k = 0;
	for (uint32_t i = 0; i < p->next; i++) {
		struct pin_ext e = p->ext[i];
		uint64_t es = e.lblk, ee = e.lblk + e.len;

		if (ee <= lblk || es >= end) {
			v[k++] = e;
			continue;
		}
		uint64_t cs = MAX(es, lblk), ce = MIN(ee, end);
		release_range(tab, p, e.pblk == PIN_HOLE ? PIN_HOLE : e.pblk + (cs - es), ce - cs);
		removed += (int64_t)(ce - cs);
		if (es < cs)
			v[k++] = (struct pin_ext){ es, e.pblk, cs - es };
		if (ce < ee)
			v[k++] = (struct pin_ext){ ce, e.pblk == PIN_HOLE ? PIN_HOLE : e.pblk + (ce - es), ee - ce };
	}
	free(p->ext);
	p->ext = v;
	p->next = k;
	return removed;
}

/* ---- pins ---- */

int pin_add_locked(struct pin_table *tab, struct pin_owner *o, uint64_t ino, uint64_t lblk, uint64_t nblocks,
		   uint32_t flags, pid_t pid, uint32_t uid, int signo, const struct pin_ext *ext, uint32_t next,
		   struct pin **out)
{
	struct pin *p;
	uint32_t i;

	lock_assert_held(&tab->lock);
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
		if (ext[i].pblk != PIN_HOLE && pin_ref_locked(tab, ext[i].pblk, ext[i].len)) {
			while (i-- > 0)
				if (ext[i].pblk != PIN_HOLE)
					pin_unref_locked(tab, ext[i].pblk, ext[i].len);
			free(p->ext);
			free(p);
			return -ENOMEM;
		}
	}
	TAILQ_INIT(&p->invals);
	p->holds_refs = true;
	p->owner = o;
	p->id = tab->next_id++;
	p->ino = ino;
	p->lblk = lblk;
	p->nblocks = nblocks;
	p->flags = flags;
	p->state = DAXFS_PIN_ACTIVE;
	p->pid = pid;
	p->uid = uid;
	p->signo = signo;
	p->bshift = (uint8_t)tab->bshift;
	p->created_ns = util_now_ns();
	RB_INSERT(pin_ids, &tab->ids, p);
	RB_INSERT(pin_inos, &tab->inos, p);
	TAILQ_INSERT_TAIL(&o->pins, p, owner_link);
	o->npins++;
	tab->npins++;
	tab->created++;
	TRACE(tab->trace, "pin",
	      "\"pin\":%llu,\"ino\":%llu,\"off\":%llu,\"len\":%llu,\"flags\":%u,\"pid\":%d,\"uid\":%u,\"bytes\":%llu,"
	      "\"ghost\":%s",
	      (unsigned long long)p->id, (unsigned long long)ino, (unsigned long long)(lblk << tab->bshift),
	      (unsigned long long)(nblocks << tab->bshift), flags, holder_pid(p), uid,
	      (unsigned long long)(pin_held_blocks(p) << tab->bshift), o->ghost ? "true" : "false");
	*out = p;
	return 0;
}

int pin_lookup_locked(struct pin_table *tab, const struct pin_owner *o, uint64_t id, struct pin **out)
{
	struct pin key = { .id = id };
	struct pin *p;

	lock_assert_held(&tab->lock);
	p = RB_FIND(pin_ids, &tab->ids, &key);
	if (!p)
		return -ENOENT;
	if (p->owner != o)
		return -EBADF;
	*out = p;
	return 0;
}

void pin_remove_locked(struct pin_table *tab, struct pin *p)
{
	bool revoked = p->state == DAXFS_PIN_REVOKED;

	lock_assert_held(&tab->lock);
	if (p->removing)
		return;
	/* Going from here on: the hook below (a policy's on_unpin) cannot break, revoke or invalidate it. */
	p->removing = true;
	if (tab->cb.removing && !revoked)
		tab->cb.removing(tab->cb.ctx, p);
	TRACE(tab->trace, "unpin", "\"pin\":%llu,\"ino\":%llu,\"pid\":%d,\"bytes\":%llu,\"revoked\":%s",
	      (unsigned long long)p->id, (unsigned long long)p->ino, holder_pid(p),
	      (unsigned long long)(pin_held_blocks(p) << tab->bshift), revoked ? "true" : "false");
	/* Unlinked first: nobody finds it any more; then the fence. */
	__atomic_store_n(&p->fenced, true, __ATOMIC_RELEASE);
	RB_REMOVE(pin_ids, &tab->ids, p);
	RB_REMOVE(pin_inos, &tab->inos, p);
	TAILQ_REMOVE(&p->owner->pins, p, owner_link);
	p->owner->npins--;
	tab->npins--;
	tab->released++;
	while (p->users)
		lock_wait(&tab->dma_idle, &tab->lock);
	if (p->state == DAXFS_PIN_REVOKED && !(p->flags & DAXFS_PIN_REVOCABLE))
		tab->held_revoked_blocks -= pin_held_blocks(p);
	drop_refs(tab, p);
	for (uint32_t i = 0; i < p->ndeferred; i++)
		pin_unref_locked(tab, p->deferred[i].pblk, p->deferred[i].len);
	p->ndeferred = 0;
	uint64_t ino = p->ino;
	free_pin(p);
	changed(tab, ino);
}

void pin_release_owner(struct pin_table *tab, struct pin_owner *o)
{
	lock_take(&tab->lock);
	while (!TAILQ_EMPTY(&o->pins))
		pin_remove_locked(tab, TAILQ_FIRST(&o->pins));
	lock_drop(&tab->lock);
}

/* The file system lets go of p on its own: its holder is told (DROPPED), then p goes. */
static void drop_locked(struct pin_table *tab, struct pin *p)
{
	pin_event_locked(tab, p, DAXFS_EV_DROPPED, p->lblk, p->nblocks, 0, tab->bshift);
	pin_remove_locked(tab, p);
}

void pin_drop_owner(struct pin_table *tab, struct pin_owner *o)
{
	lock_take(&tab->lock);
	while (!TAILQ_EMPTY(&o->pins))
		drop_locked(tab, TAILQ_FIRST(&o->pins));
	lock_drop(&tab->lock);
}

void pin_release_all(struct pin_table *tab)
{
	struct pin *p, *next;

	lock_take(&tab->lock);
	for (p = RB_MIN(pin_ids, &tab->ids); p; p = next) {
		/* Removal unlinks p (and may wait, unlocked); the next pin is looked up again after it. */
		if (p->owner->ghost) {
			next = RB_NEXT(pin_ids, &tab->ids, p);
			continue;
		}
		uint64_t id = p->id;
		drop_locked(tab, p);
		struct pin key = { .id = id };
		next = RB_NFIND(pin_ids, &tab->ids, &key);
	}
	lock_drop(&tab->lock);
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

struct pin *pin_first_of_ino_locked(struct pin_table *tab, uint64_t ino)
{
	struct pin key = { .ino = ino, .lblk = 0, .id = 0 };
	struct pin *p = RB_NFIND(pin_inos, &tab->inos, &key);

	return p && p->ino == ino ? p : NULL;
}

struct pin *pin_next_of_ino_locked(struct pin_table *tab, struct pin *p)
{
	struct pin *n = RB_NEXT(pin_inos, &tab->inos, p);

	(void)tab;
	return n && n->ino == p->ino ? n : NULL;
}

/* ---- telling holders ---- */

void pin_event_locked(struct pin_table *tab, struct pin *p, uint32_t type, uint64_t lblk, uint64_t n,
		      uint64_t deadline_ns, unsigned bshift)
{
	struct pin_owner *o = p->owner;
	struct pin_event_rec *e = malloc(sizeof(*e));

	lock_assert_held(&tab->lock);
	if (!e)
		return;	/* out of memory: the holder still sees the state in PIN_STATUS */
	*e = (struct pin_event_rec){ .seq = o->next_seq++, .type = type, .pin_id = p->id, .file_off = lblk << bshift,
				     .len = n == UINT64_MAX ? UINT64_MAX : n << bshift, .deadline_ns = deadline_ns,
				     .time_ns = util_now_ns() };
	TAILQ_INSERT_TAIL(&o->events, e, link);
	o->nevents++;
	tab->events++;
	if (p->signo)
		holder_signal(&o->holder, p->signo, p->id);
}

uint32_t pin_events_read_locked(struct pin_owner *o, uint64_t from, struct daxfs_event *out, uint32_t max,
				uint64_t *next_seq)
{
	struct pin_event_rec *e;
	uint32_t n = 0;

	while ((e = TAILQ_FIRST(&o->events)) && e->seq < from) {
		TAILQ_REMOVE(&o->events, e, link);
		o->nevents--;
		free(e);
	}
	TAILQ_FOREACH(e, &o->events, link) {
		if (n == max)
			break;
		out[n++] = (struct daxfs_event){ .seq = e->seq, .type = e->type, .pin_id = e->pin_id,
						 .file_off = e->file_off, .len = e->len,
						 .deadline_ns = e->deadline_ns, .time_ns = e->time_ns };
	}
	/* Where to read on: past what was returned, not past what did not fit. */
	*next_seq = n ? out[n - 1].seq + 1 : o->next_seq;
	return n;
}

int pin_break_lease_locked(struct pin_table *tab, struct pin *p, uint64_t deadline_ns, unsigned bshift)
{
	lock_assert_held(&tab->lock);
	if (p->state == DAXFS_PIN_REVOKED || p->removing)
		return -EINVAL;
	/*
	 * Broken already: the earlier deadline stands.  An earlier one than the pin has must replace
	 * it (and be told), or whoever broke it with that one waits past its own deadline for the
	 * first, polling all the while.
	 */
	if (p->state == DAXFS_PIN_REVOKING && p->deadline_ns <= deadline_ns)
		return 0;
	p->state = DAXFS_PIN_REVOKING;
	p->deadline_ns = deadline_ns;
	note_deadline(tab, deadline_ns);
	pin_event_locked(tab, p, DAXFS_EV_LEASE_BREAK, p->lblk, p->nblocks, deadline_ns, bshift);
	TRACE(tab->trace, "lease_break", "\"pin\":%llu,\"ino\":%llu,\"pid\":%d,\"deadline\":%llu",
	      (unsigned long long)p->id, (unsigned long long)p->ino, holder_pid(p), (unsigned long long)deadline_ns);
	return 0;
}

void pin_revoke_locked(struct pin_table *tab, struct pin *p, unsigned bshift)
{
	struct pin_inval *iv;

	lock_assert_held(&tab->lock);
	if (p->state == DAXFS_PIN_REVOKED || p->removing)
		return;
	/* Revoked before the hook runs: it sees the pin as it now is, and cannot revoke it again. */
	p->state = DAXFS_PIN_REVOKED;
	if (tab->cb.removing)
		tab->cb.removing(tab->cb.ctx, p);
	__atomic_store_n(&p->fenced, true, __ATOMIC_RELEASE);
	tab->revoked++;
	while ((iv = TAILQ_FIRST(&p->invals))) {
		TAILQ_REMOVE(&p->invals, iv, link);
		free(iv);
	}
	pin_event_locked(tab, p, DAXFS_EV_REVOKED, p->lblk, p->nblocks, 0, bshift);
	TRACE(tab->trace, "revoke", "\"pin\":%llu,\"ino\":%llu,\"pid\":%d,\"revocable\":%s,\"bytes\":%llu",
	      (unsigned long long)p->id, (unsigned long long)p->ino, holder_pid(p),
	      (p->flags & DAXFS_PIN_REVOCABLE) ? "true" : "false", (unsigned long long)(pin_held_blocks(p) << bshift));
	if (p->flags & DAXFS_PIN_REVOCABLE) {
		/* Its device stops when told: the blocks go as soon as our own DMA through it has. */
		if (p->units_inflight == 0)
			drop_refs(tab, p);
		else
			p->drop_when_idle = true;
	} else {
		/* A device we cannot stop may still write: the blocks stay out of reuse until release. */
		tab->held_revoked_blocks += pin_held_blocks(p);
	}
	changed(tab, p->ino);
}

int pin_invalidate_locked(struct pin_table *tab, struct pin *p, uint64_t lblk, uint64_t n, uint64_t deadline_ns,
			  uint64_t free_id, unsigned bshift)
{
	struct pin_inval *iv;

	lock_assert_held(&tab->lock);
	if (!(p->flags & DAXFS_PIN_ODP) || p->state == DAXFS_PIN_REVOKED || p->removing)
		return -EINVAL;
	TAILQ_FOREACH(iv, &p->invals, link)
		if (iv->free_id == free_id)
			return 1;
	/* Only the part of the pin's range the free touches. */
	uint64_t s = MAX(lblk, p->lblk), e = MIN(lblk + n, p->lblk + p->nblocks);
	if (s >= e)
		return 1;
	if (!(iv = calloc(1, sizeof(*iv))))
		return -ENOMEM;
	iv->seq = p->owner->next_seq;
	iv->lblk = s;
	iv->n = e - s;
	iv->deadline_ns = deadline_ns;
	iv->free_id = free_id;
	TAILQ_INSERT_TAIL(&p->invals, iv, link);
	note_deadline(tab, deadline_ns);
	tab->invalidations++;
	pin_event_locked(tab, p, DAXFS_EV_INVALIDATE, s, e - s, deadline_ns, bshift);
	TRACE(tab->trace, "invalidate", "\"pin\":%llu,\"ino\":%llu,\"pid\":%d,\"off\":%llu,\"len\":%llu,\"seq\":%llu,"
	      "\"deadline\":%llu", (unsigned long long)p->id, (unsigned long long)p->ino, holder_pid(p),
	      (unsigned long long)(s << bshift), (unsigned long long)((e - s) << bshift), (unsigned long long)iv->seq,
	      (unsigned long long)deadline_ns);
	return 0;
}

int pin_ack_locked(struct pin_table *tab, struct pin *p, uint64_t seq, uint64_t *lblk, uint64_t *n)
{
	struct pin_inval *iv;

	lock_assert_held(&tab->lock);
	TAILQ_FOREACH(iv, &p->invals, link)
		if (iv->seq == seq)
			break;
	if (!iv)
		return -ENOENT;
	int64_t removed = cut_range(tab, p, iv->lblk, iv->n);
	if (removed < 0)
		return (int)removed;
	*lblk = iv->lblk;
	*n = iv->n;
	TRACE(tab->trace, "invalidate_ack", "\"pin\":%llu,\"ino\":%llu,\"off\":%llu,\"len\":%llu,\"seq\":%llu",
	      (unsigned long long)p->id, (unsigned long long)p->ino, (unsigned long long)(iv->lblk << tab->bshift),
	      (unsigned long long)(iv->n << tab->bshift), (unsigned long long)seq);
	TAILQ_REMOVE(&p->invals, iv, link);
	free(iv);
	tab->acks++;
	changed(tab, p->ino);
	return 0;
}

int pin_refault_locked(struct pin_table *tab, struct pin *p, uint64_t lblk, uint64_t n, const struct pin_ext *ext,
		       uint32_t next)
{
	uint32_t i;

	lock_assert_held(&tab->lock);
	for (i = 0; i < next; i++) {
		if (ext[i].pblk != PIN_HOLE && pin_ref_locked(tab, ext[i].pblk, ext[i].len)) {
			while (i-- > 0)
				if (ext[i].pblk != PIN_HOLE)
					pin_unref_locked(tab, ext[i].pblk, ext[i].len);
			return -ENOMEM;
		}
	}
	struct pin_ext *v = malloc((p->next + next + 2) * sizeof(*v));
	int64_t removed = v ? cut_range(tab, p, lblk, n) : -ENOMEM;
	if (removed < 0) {
		free(v);
		for (i = 0; i < next; i++)
			if (ext[i].pblk != PIN_HOLE)
				pin_unref_locked(tab, ext[i].pblk, ext[i].len);
		return -ENOMEM;
	}
	/* Merge the new extents in, keeping file order. */
	uint32_t k = 0, a = 0, b = 0;
	while (a < p->next || b < next)
		v[k++] = (b == next || (a < p->next && p->ext[a].lblk < ext[b].lblk)) ? p->ext[a++] : ext[b++];
	free(p->ext);
	p->ext = v;
	p->next = k;
	p->gen++;
	TRACE(tab->trace, "refault", "\"pin\":%llu,\"ino\":%llu,\"off\":%llu,\"len\":%llu,\"gen\":%u",
	      (unsigned long long)p->id, (unsigned long long)p->ino, (unsigned long long)(lblk << tab->bshift),
	      (unsigned long long)(n << tab->bshift), p->gen);
	return 0;
}

uint32_t pin_expire_locked(struct pin_table *tab, uint64_t now_ns, unsigned bshift)
{
	struct pin *p;
	uint32_t n = 0;

	lock_assert_held(&tab->lock);
	if (!tab->next_deadline_ns || now_ns < tab->next_deadline_ns)
		return 0;	/* the common case costs a comparison */
	tab->next_deadline_ns = 0;
	RB_FOREACH(p, pin_ids, &tab->ids) {
		struct pin_inval *iv;
		uint64_t due = 0;

		if (p->state == DAXFS_PIN_REVOKED)
			continue;
		if (p->state == DAXFS_PIN_REVOKING)
			due = p->deadline_ns;
		TAILQ_FOREACH(iv, &p->invals, link)
			if (!due || iv->deadline_ns < due)
				due = iv->deadline_ns;
		if (!due)
			continue;
		if (due <= now_ns) {
			pin_revoke_locked(tab, p, bshift);
			n++;
		} else {
			note_deadline(tab, due);
		}
	}
	return n;
}

/* ---- breaks ---- */

void pin_break_begin_locked(struct pin_table *tab, struct pin_break *b)
{
	lock_assert_held(&tab->lock);
	LIST_INSERT_HEAD(&tab->breaks, b, link);
}

void pin_break_end_locked(struct pin_table *tab, struct pin_break *b)
{
	lock_assert_held(&tab->lock);
	LIST_REMOVE(b, link);
	changed(tab, b->ino);
}

struct pin_break *pin_break_find_locked(struct pin_table *tab, uint64_t ino, uint64_t lblk, uint64_t n)
{
	struct pin_break *b;

	lock_assert_held(&tab->lock);
	LIST_FOREACH(b, &tab->breaks, link) {
		if (b->ino != ino)
			continue;
		uint64_t bend = b->n == UINT64_MAX ? UINT64_MAX : b->lblk + b->n;
		if (lblk < bend && b->lblk < lblk + n)
			return b;
	}
	return NULL;
}

/* ---- the DMA fence ---- */

void pin_get_locked(struct pin *p)
{
	p->users++;
}

void pin_put_locked(struct pin_table *tab, struct pin *p)
{
	lock_assert_held(&tab->lock);
	if (--p->users == 0)
		pthread_cond_broadcast(&tab->dma_idle);
}

int pin_unit_begin_locked(struct pin *p, uint64_t off, uint64_t len, unsigned bshift, uint64_t *media_off,
			  uint64_t *run)
{
	if (p->state == DAXFS_PIN_REVOKED)
		return -ENOLINK;
	if (pin_dma_fenced(p))
		return -ESHUTDOWN;
	uint64_t lblk = p->lblk + (off >> bshift);
	uint32_t lo = 0, hi = p->next;

	/* Extents are in file order: binary search for the one holding lblk. */
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (p->ext[mid].lblk + p->ext[mid].len <= lblk)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == p->next || p->ext[lo].lblk > lblk)
		return -EFAULT;	/* invalidated and not refaulted */
	const struct pin_ext *e = &p->ext[lo];
	uint64_t in_ext = ((lblk - e->lblk) << bshift) + (off & ((1ull << bshift) - 1));
	*run = MIN(len, (e->len << bshift) - in_ext);
	*media_off = e->pblk == PIN_HOLE ? UINT64_MAX : (e->pblk << bshift) + in_ext;
	p->units_inflight++;
	return 0;
}

void pin_unit_end_locked(struct pin_table *tab, struct pin *p)
{
	lock_assert_held(&tab->lock);
	if (--p->units_inflight)
		return;
	for (uint32_t i = 0; i < p->ndeferred; i++)
		pin_unref_locked(tab, p->deferred[i].pblk, p->deferred[i].len);
	p->ndeferred = 0;
	if (p->drop_when_idle) {
		p->drop_when_idle = false;
		drop_refs(tab, p);
	}
}
