/* SPDX-License-Identifier: MIT */
#include "policy.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "file.h"
#include "fs.h"
#include "inode.h"
#include "util.h"

#define STAT_ADD(pol, field, n) __atomic_add_fetch(&(pol)->stats.field, (n), __ATOMIC_RELAXED)

static const uint32_t kinds[] = { DAXFS_POLICY_BUSY, DAXFS_POLICY_WAIT, DAXFS_POLICY_FAIL, DAXFS_POLICY_REVOKE,
				   DAXFS_POLICY_UNSAFE };

int policy_parse(const char *name, struct policy_config *pc)
{
	if (strcmp(name, "deny-longterm") == 0) {
		/* What Linux merged: no long-term pins on DAX files; truncate waits for short-term ones. */
		pc->kind = DAXFS_POLICY_WAIT;
		pc->admission = DAXFS_ADMIT_DENY_LONGTERM;
		return 0;
	}
	for (size_t k = 0; k < ARRAY_SIZE(kinds); k++) {
		if (strcmp(name, daxfs_policy_str(kinds[k])) == 0) {
			pc->kind = kinds[k];
			return 0;
		}
	}
	return -EINVAL;
}

void policy_get(struct fs *fs, struct policy_config *pc)
{
	pthread_mutex_lock(&fs->pol->lock);
	*pc = fs->pol->cfg;
	pthread_mutex_unlock(&fs->pol->lock);
}

int policy_set(struct fs *fs, const struct policy_config *pc)
{
	if (pc->kind < DAXFS_POLICY_BUSY || pc->kind > DAXFS_POLICY_UNSAFE ||
	    (pc->admission != DAXFS_ADMIT_ALL && pc->admission != DAXFS_ADMIT_DENY_LONGTERM))
		return -EINVAL;
	pthread_mutex_lock(&fs->pol->lock);
	fs->pol->cfg = *pc;
	pthread_mutex_unlock(&fs->pol->lock);
	/* Waiters re-read the policy when they wake. */
	pthread_mutex_lock(&fs->pol->pins.lock);
	pthread_cond_broadcast(&fs->pol->pins.changed);
	pthread_mutex_unlock(&fs->pol->pins.lock);
	return 0;
}

/* ---- busy extents meet pins ---- */

struct unpin_ctx {
	struct fs *fs;
	uint64_t now;
	bool pending_ok;	/* the extents' transaction has committed */
};

static void maybe_queue(void *arg, struct busy_ext *be)
{
	struct unpin_ctx *uc = arg;

	if (be->state == DAXFS_BUSY_PENDING && uc->pending_ok)
		be->state = DAXFS_BUSY_PINNED;
	if (be->state == DAXFS_BUSY_PINNED && !pin_any_locked(&uc->fs->pol->pins, be->start, be->len))
		busy_queue_locked(&uc->fs->busy, be, uc->now);
}

/* Pin table callback (pins.lock held): blocks lost their last pin. */
static void on_unpinned(void *ctx, uint64_t start, uint64_t len)
{
	struct fs *fs = ctx;
	struct unpin_ctx uc = { fs, util_now_ns(), false };

	pthread_mutex_lock(&fs->busy.lock);
	busy_visit_locked(&fs->busy, start, len, maybe_queue, &uc);
	pthread_mutex_unlock(&fs->busy.lock);
}

/* After the transaction that made [start, start + len) busy committed: it may be reclaimable now. */
static void on_busy_committed(void *ctx, uint64_t start, uint64_t len)
{
	struct fs *fs = ctx;
	struct unpin_ctx uc = { fs, util_now_ns(), true };

	pthread_mutex_lock(&fs->pol->pins.lock);
	pthread_mutex_lock(&fs->busy.lock);
	busy_visit_locked(&fs->busy, start, len, maybe_queue, &uc);
	pthread_mutex_unlock(&fs->busy.lock);
	pthread_mutex_unlock(&fs->pol->pins.lock);
}

int policy_init(struct policy *pol, struct fs *fs, const struct policy_config *cfg, uint32_t max_pins,
		uint32_t max_pins_per_file)
{
	pol->fs = fs;
	pol->cfg = *cfg;
	if (!pol->cfg.kind)
		pol->cfg.kind = DAXFS_POLICY_BUSY;
	if (!pol->cfg.admission)
		pol->cfg.admission = DAXFS_ADMIT_ALL;
	memset(&pol->stats, 0, sizeof(pol->stats));
	pthread_mutex_init(&pol->lock, NULL);
	pin_table_init(&pol->pins, max_pins, max_pins_per_file, on_unpinned, fs);
	fs->pol = pol;
	return 0;
}

void policy_release_all(struct fs *fs)
{
	pin_release_all(&fs->pol->pins);
}

void policy_destroy(struct policy *pol)
{
	pin_table_destroy(&pol->pins);
	pthread_mutex_destroy(&pol->lock);
}

/* ---- freeing ---- */

struct free_run_ctx {
	struct fs *fs;
	struct tx *tx;
	struct inode *ip;
	uint32_t kind;
};

static void free_run(void *arg, uint64_t start, uint64_t len, uint32_t count)
{
	struct free_run_ctx *fr = arg;
	struct fs *fs = fr->fs;

	if (count == 0) {
		sbi_free(&fs->sbi, fr->tx, start, len);
		return;
	}
	if (fr->kind == DAXFS_POLICY_UNSAFE) {
		/* The baseline: the pinned blocks go back to the allocator while a device may still write them. */
		STAT_ADD(fs->pol, unsafe_frees, 1);
		STAT_ADD(fs->pol, unsafe_blocks, len);
		sbi_free(&fs->sbi, fr->tx, start, len);
		return;
	}
	pthread_mutex_lock(&fs->busy.lock);
	int ret = busy_add_locked(&fs->busy, fr->tx, start, len, fr->ip->ino);
	pthread_mutex_unlock(&fs->busy.lock);
	if (ret) {
		/*
		 * No room for the record (out of memory or space for the list): keep the blocks allocated
		 * and unreferenced rather than free pinned blocks.  A leak that fsck reclaims, never
		 * corruption.
		 */
		return;
	}
	tx_defer(fr->tx, on_busy_committed, fs, start, len);
}

static void policy_free(void *arg, struct tx *tx, struct inode *ip, uint64_t pblk, uint64_t len)
{
	struct fs *fs = arg;
	struct free_run_ctx fr = { fs, tx, ip, 0 };
	struct policy_config pc;

	/*
	 * wait, fail and revoke have had their say in policy_before_free; pinned blocks that still reach
	 * this point (frees under ns_lock, or a policy switched at run time) become busy.
	 */
	policy_get(fs, &pc);
	fr.kind = pc.kind == DAXFS_POLICY_UNSAFE ? DAXFS_POLICY_UNSAFE : DAXFS_POLICY_BUSY;
	pthread_mutex_lock(&fs->pol->pins.lock);
	pin_runs_locked(&fs->pol->pins, pblk, len, free_run, &fr);
	pthread_mutex_unlock(&fs->pol->pins.lock);
}

struct file_free_sink policy_sink(struct fs *fs)
{
	return (struct file_free_sink){ policy_free, fs };
}

/* The media ranges behind file blocks [lblk, lblk + n). */
static int media_ranges(struct inode *ip, uint64_t lblk, uint64_t n, struct pin_ext **out, uint32_t *count)
{
	struct emap_cursor c;
	struct daxfs_extent e;
	struct pin_ext *v = NULL;
	uint32_t cnt = 0, cap = 0;
	uint64_t end = lblk + n;

	for (bool more = emap_seek(ip, lblk, &c, &e); more && e.lblk < end; more = emap_next(ip, &c, &e)) {
		uint64_t s = MAX(lblk, e.lblk), t = MIN(end, e.lblk + e.len);

		if (cnt == cap) {
			cap = cap ? cap * 2 : 16;
			struct pin_ext *nv = realloc(v, cap * sizeof(*v));
			if (!nv) {
				free(v);
				return -ENOMEM;
			}
			v = nv;
		}
		v[cnt++] = (struct pin_ext){ .lblk = s, .pblk = e.pblk + (s - e.lblk), .len = t - s };
	}
	*out = v;
	*count = cnt;
	return 0;
}

static bool any_pinned(struct fs *fs, const struct pin_ext *r, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		if (pin_any_locked(&fs->pol->pins, r[i].pblk, r[i].len))
			return true;
	return false;
}

int policy_before_free(struct fs *fs, struct inode *ip, uint64_t lblk, uint64_t n)
{
	struct policy_config pc;
	uint64_t started = 0, wait_deadline = UINT64_MAX, revoke_deadline = 0;
	int ret = 0;

	for (;;) {
		struct pin_ext *r;
		uint32_t nr;

		policy_get(fs, &pc);
		if (pc.kind == DAXFS_POLICY_BUSY || pc.kind == DAXFS_POLICY_UNSAFE)
			break;
		if ((ret = media_ranges(ip, lblk, n, &r, &nr)))
			break;
		pthread_mutex_lock(&fs->pol->pins.lock);
		if (!any_pinned(fs, r, nr)) {
			pthread_mutex_unlock(&fs->pol->pins.lock);
			free(r);
			break;
		}
		if (pc.kind == DAXFS_POLICY_FAIL) {
			pthread_mutex_unlock(&fs->pol->pins.lock);
			free(r);
			STAT_ADD(fs->pol, frees_failed, 1);
			ret = -EBUSY;
			break;
		}
		uint64_t now = util_now_ns();
		if (!started) {
			started = now;
			STAT_ADD(fs->pol, frees_waited, 1);
			if (pc.wait_timeout_ms)
				wait_deadline = now + pc.wait_timeout_ms * 1000000ull;
		}
		/* Break the lease: the holders have the grace period to unpin (one deadline for the operation). */
		struct lease_break lb = { .ranges = r, .n = nr };
		if (pc.kind == DAXFS_POLICY_REVOKE) {
			if (!revoke_deadline)
				revoke_deadline = now + pc.grace_ms * 1000000ull;
			lb.deadline_ns = revoke_deadline;
			pin_break_begin_locked(&fs->pol->pins, &lb);
		}
		/* Wait with the inode unlocked: the holder may need it to finish and unpin. */
		pthread_rwlock_unlock(&ip->lock);
		while (any_pinned(fs, r, nr)) {
			now = util_now_ns();
			if (revoke_deadline && now >= revoke_deadline) {
				pin_revoke_expired_locked(&fs->pol->pins, now);
				continue;
			}
			if (now >= wait_deadline)
				break;
			struct policy_config cur;
			policy_get(fs, &cur);
			if (cur.kind != pc.kind)
				break;	/* the policy changed under us: decide again */
			struct timespec ts =
				ns_to_timespec(MIN(wait_deadline, revoke_deadline ? revoke_deadline : UINT64_MAX));
			if (wait_deadline == UINT64_MAX && !revoke_deadline)
				pthread_cond_wait(&fs->pol->pins.changed, &fs->pol->pins.lock);
			else
				pthread_cond_timedwait(&fs->pol->pins.changed, &fs->pol->pins.lock, &ts);
		}
		bool timed_out = any_pinned(fs, r, nr) && util_now_ns() >= wait_deadline;
		if (lb.deadline_ns)
			pin_break_end_locked(&fs->pol->pins, &lb);
		pthread_mutex_unlock(&fs->pol->pins.lock);
		free(r);
		pthread_rwlock_wrlock(&ip->lock);
		if (timed_out) {
			STAT_ADD(fs->pol, frees_failed, 1);
			ret = -EBUSY;
			break;
		}
		/* The file may have changed while unlocked: look again. */
	}
	if (started)
		STAT_ADD(fs->pol, free_wait_ns, util_now_ns() - started);
	return ret;
}

/* ---- pins ---- */

int policy_pin(struct fs *fs, struct pin_owner *owner, struct inode *ip, bool writable, uint64_t off, uint64_t len,
	       uint32_t flags, pid_t pid, uint64_t *pin_id)
{
	struct policy_config pc;
	unsigned sh = fs->sbi.bshift;
	struct pin_ext *ext;
	uint32_t next;
	struct pin *p;
	int ret;

	if (flags & ~(DAXFS_PIN_WRITE | DAXFS_PIN_LONGTERM) || len == 0)
		return -EINVAL;
	if ((flags & DAXFS_PIN_WRITE) && !writable)
		return -EBADF;
	policy_get(fs, &pc);
	if ((flags & DAXFS_PIN_LONGTERM) && pc.admission == DAXFS_ADMIT_DENY_LONGTERM) {
		pthread_mutex_lock(&fs->pol->pins.lock);
		fs->pol->pins.refused++;
		pthread_mutex_unlock(&fs->pol->pins.lock);
		return -EOPNOTSUPP;
	}
	if ((flags & DAXFS_PIN_WRITE) && (ret = sbi_writable(&fs->sbi)))
		return ret;
	pthread_rwlock_wrlock(&ip->lock);
	if (!S_ISREG(ip->d.mode) || ip->deleted) {
		ret = -EINVAL;
		goto out;
	}
	if (off >= ip->d.size || len > ip->d.size - off) {
		ret = -EINVAL;	/* pins cover file data only: nothing beyond EOF */
		goto out;
	}
	uint64_t lblk = off >> sh, last = (off + len - 1) >> sh;
	/* Holes are filled, zeroed, as a DAX write fault would: a device needs real blocks. */
	if ((ret = file_fill_holes(fs, ip, lblk, last)))
		goto out;
	if ((ret = media_ranges(ip, lblk, last - lblk + 1, &ext, &next)))
		goto out;
	pthread_mutex_lock(&fs->pol->pins.lock);
	ret = pin_add_locked(&fs->pol->pins, owner, ip->ino, lblk, last - lblk + 1, flags, pid, ext, next, &p);
	if (ret == 0)
		*pin_id = p->id;
	pthread_mutex_unlock(&fs->pol->pins.lock);
	free(ext);
out:
	pthread_rwlock_unlock(&ip->lock);
	return ret;
}

int policy_pin_extents(struct fs *fs, struct pin_owner *owner, uint64_t pin_id, uint32_t start,
		       struct daxfs_pin_extent *out, uint32_t max, uint32_t *nreturned, uint64_t *off, uint64_t *len)
{
	unsigned sh = fs->sbi.bshift;
	struct pin *p;
	int ret;

	pthread_mutex_lock(&fs->pol->pins.lock);
	ret = pin_lookup_locked(&fs->pol->pins, owner, pin_id, &p);
	if (ret == 0) {
		uint32_t n = 0;

		for (uint32_t i = start; i < p->next && n < max; i++, n++) {
			out[n].file_off = p->ext[i].lblk << sh;
			out[n].media_off = p->ext[i].pblk << sh;
			out[n].len = p->ext[i].len << sh;
		}
		*nreturned = n;
		if (off)
			*off = p->lblk << sh;
		if (len)
			*len = p->nblocks << sh;
		ret = (int)p->next;
	}
	pthread_mutex_unlock(&fs->pol->pins.lock);
	return ret;
}

int policy_pin_status(struct fs *fs, struct pin_owner *owner, struct daxfs_ioc_pin_status *st)
{
	unsigned sh = fs->sbi.bshift;
	struct pin *p;
	int ret;

	pthread_mutex_lock(&fs->pol->pins.lock);
	ret = pin_lookup_locked(&fs->pol->pins, owner, st->pin_id, &p);
	if (ret == 0) {
		uint64_t now = util_now_ns();

		st->state = p->state;
		st->offset = p->lblk << sh;
		st->length = p->nblocks << sh;
		st->flags = p->flags;
		st->nextents = p->next;
		st->deadline_ns = p->state == DAXFS_PIN_REVOKING && p->deadline_ns > now ? p->deadline_ns - now : 0;
	}
	pthread_mutex_unlock(&fs->pol->pins.lock);
	return ret;
}

int policy_unpin(struct fs *fs, struct pin_owner *owner, uint64_t pin_id)
{
	return pin_remove(&fs->pol->pins, owner, pin_id);
}

void policy_release_owner(struct fs *fs, struct pin_owner *owner)
{
	pin_release_owner(&fs->pol->pins, owner);
}

/* Map pin bytes [off, off + len) to media and call fn on each piece. */
typedef void (*dma_piece_fn)(struct fs *fs, char *media, uint64_t media_off, uint64_t pin_off, size_t len,
			     struct daxfs_ioc_dma *d);

static void each_piece(struct fs *fs, const struct pin_ext *ext, uint32_t next, uint64_t pin_lblk,
		       struct daxfs_ioc_dma *d, dma_piece_fn fn)
{
	unsigned sh = fs->sbi.bshift;
	uint64_t base = pin_lblk << sh, cur = d->offset, end = d->offset + d->length;

	for (uint32_t i = 0; i < next && cur < end; i++) {
		uint64_t es = (ext[i].lblk << sh) - base, ee = es + (ext[i].len << sh);

		if (ee <= cur || es >= end)
			continue;
		uint64_t s = MAX(cur, es), t = MIN(end, ee);
		uint64_t moff = (ext[i].pblk << sh) + (s - es);

		fn(fs, media_ptr(fs_media(fs), moff), moff, s, t - s, d);
		cur = t;
	}
}

static void dma_write(struct fs *fs, char *media, uint64_t media_off, uint64_t pin_off, size_t len,
		      struct daxfs_ioc_dma *d)
{
	struct daxfs_dma_unit buf[2048];	/* 64 KiB of units at a time */

	(void)pin_off;
	for (size_t done = 0; done < len;) {
		size_t n = MIN((len - done) / DAXFS_DMA_UNIT, ARRAY_SIZE(buf));

		for (size_t i = 0; i < n; i++)
			buf[i] = (struct daxfs_dma_unit){ .magic = DAXFS_DMA_MAGIC, .pin_id = d->pin_id, .tag = d->tag,
							   .media_off = media_off + done + i * DAXFS_DMA_UNIT };
		media_copy(fs_media(fs), media + done, buf, n * DAXFS_DMA_UNIT);
		done += n * DAXFS_DMA_UNIT;
	}
}

static void dma_verify(struct fs *fs, char *media, uint64_t media_off, uint64_t pin_off, size_t len,
		       struct daxfs_ioc_dma *d)
{
	(void)fs;
	for (size_t done = 0; done < len; done += DAXFS_DMA_UNIT) {
		const struct daxfs_dma_unit *u = (const void *)(media + done);

		if (u->magic != DAXFS_DMA_MAGIC || u->pin_id != d->pin_id || u->tag != d->tag ||
		    u->media_off != media_off + done) {
			if (d->mismatches++ == 0)
				d->first_mismatch = pin_off + done;
		}
	}
}

static void dma_zero(struct fs *fs, char *media, uint64_t media_off, uint64_t pin_off, size_t len,
		     struct daxfs_ioc_dma *d)
{
	(void)media_off;
	(void)pin_off;
	(void)d;
	media_fill(fs_media(fs), media, 0, len);
}

int policy_dma(struct fs *fs, struct pin_owner *owner, struct daxfs_ioc_dma *d)
{
	struct pin_ext *ext = NULL;
	uint64_t pin_lblk = 0;
	uint32_t next = 0;
	struct pin *p;
	int ret;

	if (d->op < DAXFS_DMA_WRITE_PATTERN || d->op > DAXFS_DMA_ZERO || d->length == 0 ||
	    d->offset % DAXFS_DMA_UNIT || d->length % DAXFS_DMA_UNIT)
		return -EINVAL;
	if (d->op != DAXFS_DMA_VERIFY_PATTERN && (ret = sbi_writable(&fs->sbi)))
		return ret;
	pthread_mutex_lock(&fs->pol->pins.lock);
	ret = pin_lookup_locked(&fs->pol->pins, owner, d->pin_id, &p);
	if (ret == 0 && p->state == DAXFS_PIN_REVOKED)
		ret = -ENOLINK;
	else if (ret == 0 && d->op != DAXFS_DMA_VERIFY_PATTERN && !(p->flags & DAXFS_PIN_WRITE))
		ret = -EACCES;
	else if (ret == 0 && (d->offset >= p->nblocks << fs->sbi.bshift ||
			      d->length > (p->nblocks << fs->sbi.bshift) - d->offset))
		ret = -EINVAL;
	if (ret == 0) {
		/* A copy: the device works on what the pin held when the access started, like real DMA. */
		ext = malloc(p->next * sizeof(*ext));
		if (!ext) {
			ret = -ENOMEM;
		} else {
			memcpy(ext, p->ext, p->next * sizeof(*ext));
			next = p->next;
			pin_lblk = p->lblk;
		}
	}
	pthread_mutex_unlock(&fs->pol->pins.lock);
	if (ret)
		return ret;

	d->mismatches = 0;
	d->first_mismatch = ~0ULL;
	if (d->op == DAXFS_DMA_WRITE_PATTERN)
		each_piece(fs, ext, next, pin_lblk, d, dma_write);
	else if (d->op == DAXFS_DMA_VERIFY_PATTERN)
		each_piece(fs, ext, next, pin_lblk, d, dma_verify);
	else
		each_piece(fs, ext, next, pin_lblk, d, dma_zero);
	if (d->op != DAXFS_DMA_VERIFY_PATTERN)
		media_drain(fs_media(fs));
	free(ext);
	STAT_ADD(fs->pol, dma_ops, 1);
	STAT_ADD(fs->pol, dma_bytes, d->length);
	return 0;
}

/* ---- state for the control ioctls ---- */

void policy_stats(struct fs *fs, struct daxfs_ioc_stats *st)
{
	struct policy *pol = fs->pol;
	struct policy_stats *s = &pol->stats;

	memset(st, 0, sizeof(*st));
	st->size = sizeof(*st);
	st->blocks = fs->sbi.data_blocks;
	st->free_blocks = alloc_free_blocks(&fs->sbi.alloc);
	pthread_mutex_lock(&pol->pins.lock);
	pin_revoke_expired_locked(&pol->pins, util_now_ns());
	st->pins_active = pol->pins.npins;
	st->pins_created = pol->pins.created;
	st->pins_released = pol->pins.released;
	st->pins_revoked = pol->pins.revoked;
	st->pins_refused = pol->pins.refused;
	st->pinned_blocks = pol->pins.pinned_blocks;
	pthread_mutex_unlock(&pol->pins.lock);
	pthread_mutex_lock(&fs->busy.lock);
	st->busy_extents = fs->busy.nextents;
	st->busy_blocks = fs->busy.nblocks;
	st->busy_created = fs->busy.created;
	st->reclaim_queued = fs->busy.queued_extents;
	st->reclaimed_extents = fs->reclaim.extents;
	st->reclaimed_blocks = fs->reclaim.blocks;
	st->reclaim_latency_ns_total = fs->reclaim.latency_ns_total;
	st->reclaim_latency_ns_max = fs->reclaim.latency_ns_max;
	pthread_mutex_unlock(&fs->busy.lock);
	st->frees_waited = __atomic_load_n(&s->frees_waited, __ATOMIC_RELAXED);
	st->free_wait_ns_total = __atomic_load_n(&s->free_wait_ns, __ATOMIC_RELAXED);
	st->frees_failed = __atomic_load_n(&s->frees_failed, __ATOMIC_RELAXED);
	st->unsafe_frees = __atomic_load_n(&s->unsafe_frees, __ATOMIC_RELAXED);
	st->unsafe_blocks = __atomic_load_n(&s->unsafe_blocks, __ATOMIC_RELAXED);
	st->dma_ops = __atomic_load_n(&s->dma_ops, __ATOMIC_RELAXED);
	st->dma_bytes = __atomic_load_n(&s->dma_bytes, __ATOMIC_RELAXED);
	st->enospc_waits = __atomic_load_n(&fs->reclaim.enospc_waits, __ATOMIC_RELAXED);
}

uint32_t policy_list_pins(struct fs *fs, uint32_t start, struct daxfs_pin_info *out, uint32_t max, uint32_t *total)
{
	struct pin_table *tab = &fs->pol->pins;
	unsigned sh = fs->sbi.bshift;
	uint64_t now = util_now_ns();
	uint32_t i = 0, n = 0;

	pthread_mutex_lock(&tab->lock);
	pin_revoke_expired_locked(tab, now);
	*total = (uint32_t)tab->npins;
	for (struct pin *p = pin_first_locked(tab); p && n < max; p = pin_next_locked(tab, p)) {
		if (i++ < start)
			continue;
		out[n++] = (struct daxfs_pin_info){
			.pin_id = p->id, .ino = p->ino, .offset = p->lblk << sh, .length = p->nblocks << sh,
			.flags = p->flags, .state = p->state, .pid = p->pid, .nextents = p->next,
			.age_ns = now - p->created_ns,
		};
	}
	pthread_mutex_unlock(&tab->lock);
	return n;
}

uint32_t policy_list_busy(struct fs *fs, uint32_t start, struct daxfs_busy_info *out, uint32_t max, uint32_t *total)
{
	struct pin_table *tab = &fs->pol->pins;
	unsigned sh = fs->sbi.bshift;
	uint64_t now = util_now_ns();
	uint32_t i = 0, n = 0;

	pthread_mutex_lock(&tab->lock);
	pthread_mutex_lock(&fs->busy.lock);
	*total = (uint32_t)fs->busy.nextents;
	for (struct busy_ext *be = busy_first_locked(&fs->busy); be && n < max; be = busy_next_locked(&fs->busy, be)) {
		if (i++ < start)
			continue;
		out[n++] = (struct daxfs_busy_info){
			.media_off = be->start << sh, .len = be->len << sh, .ino = be->ino, .state = be->state,
			.pins = pin_max_count_locked(tab, be->start, be->len), .age_ns = now - be->created_ns,
		};
	}
	pthread_mutex_unlock(&fs->busy.lock);
	pthread_mutex_unlock(&tab->lock);
	return n;
}
