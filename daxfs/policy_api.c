/* SPDX-License-Identifier: MIT */
/*
 * What a policy sees and may do: the functions of include/daxfs/policy.h.  Hooks call them with the
 * pin table locked (policy.c calls every hook so); they read the decision and the pins, and act
 * through the pin table.  Loadable policies reach them through the daemon's exported symbols.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs.h"
#include "policy.h"
#include "util.h"

#define bshift(pol) ((pol)->pins.bshift)
#define kick(pol) policy_kick(pol)

int policy_parse_u64(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!s || !*s || *s == '-')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -EINVAL;
	unsigned shift = 0;
	switch (*end) {
	case 'K': case 'k': shift = 10; end++; break;
	case 'M': case 'm': shift = 20; end++; break;
	case 'G': case 'g': shift = 30; end++; break;
	case 'T': case 't': shift = 40; end++; break;
	}
	if (*end || (shift && v > (UINT64_MAX >> shift)))
		return -EINVAL;
	*out = (uint64_t)v << shift;
	return 0;
}

/* ---- what policies call ---- */

const char *daxfs_policy_param(const struct daxfs_policy *pol, const char *name)
{
	for (uint32_t i = 0; i < pol->nparams; i++)
		if (strcmp(pol->keys[i], name) == 0)
			return pol->values[i];
	return NULL;
}

uint64_t daxfs_policy_param_u64(const struct daxfs_policy *pol, const char *name, uint64_t def)
{
	uint64_t v;

	return policy_parse_u64(daxfs_policy_param(pol, name), &v) == 0 ? v : def;
}

void daxfs_policy_set_priv(struct daxfs_policy *pol, void *priv)
{
	pol->priv = priv;
}

void *daxfs_policy_priv(const struct daxfs_policy *pol)
{
	return pol->priv;
}

uint64_t daxfs_now_ns(void)
{
	return util_now_ns();
}

uint64_t daxfs_policy_busy_bytes(const struct daxfs_policy *pol)
{
	struct fs *fs = pol->owner->fs;

	return __atomic_load_n(&fs->busy.nblocks, __ATOMIC_RELAXED) << fs->sbi.bshift;
}

struct overlap_ctx {
	uint64_t blocks;
	uint64_t start;
	uint64_t len;
};

static void count_overlap(void *arg, struct busy_ext *be)
{
	struct overlap_ctx *c = arg;
	uint64_t s = MAX(c->start, be->start), e = MIN(c->start + c->len, be->start + be->len);

	if (s < e)
		c->blocks += e - s;
}

uint64_t daxfs_policy_holder_busy_bytes(const struct daxfs_policy *pol, int32_t pid)
{
	struct policy *p = pol->owner;
	struct fs *fs = p->fs;
	struct overlap_ctx c = { 0 };

	lock_assert_held(&p->pins.lock);
	lock_take(&fs->busy.lock);
	for (struct pin *pin = pin_first_locked(&p->pins); pin; pin = pin_next_locked(&p->pins, pin)) {
		if (pin->owner->holder.pid != pid || !pin->holds_refs)
			continue;
		for (uint32_t i = 0; i < pin->next; i++) {
			if (pin->ext[i].pblk == PIN_HOLE)
				continue;
			c.start = pin->ext[i].pblk;
			c.len = pin->ext[i].len;
			busy_visit_locked(&fs->busy, c.start, c.len, count_overlap, &c);
		}
	}
	lock_drop(&fs->busy.lock);
	return c.blocks << fs->sbi.bshift;
}

void daxfs_policy_timer(struct daxfs_policy *pol, uint64_t when_ns)
{
	pol->timer_ns = when_ns;
	kick(pol->owner);
}


/* The length of s[0, k) without the incomplete UTF-8 sequence that a cut may have left at its end. */
static size_t utf8_whole(const char *s, size_t k)
{
	size_t i = k, back = 0;

	while (i > 0 && back < 4 && ((unsigned char)s[i - 1] & 0xc0) == 0x80) {
		i--;
		back++;
	}
	if (i == 0 || ((unsigned char)s[i - 1] & 0x80) == 0)
		return k;	/* ASCII last, or no lead byte: nothing to mend */
	unsigned char lead = (unsigned char)s[i - 1];
	size_t need = lead >= 0xf0 ? 3 : lead >= 0xe0 ? 2 : lead >= 0xc0 ? 1 : 0;

	return back >= need ? k : i - 1;
}

void daxfs_policy_trace(struct daxfs_policy *pol, const char *fmt, ...)
{
	struct trace *t = &pol->owner->fs->trace;
	char msg[512];
	va_list ap;

	if (!trace_on(t))
		return;
	va_start(ap, fmt);
	bool cut = vsnprintf(msg, sizeof(msg), fmt, ap) >= (int)sizeof(msg);
	va_end(ap);
	/*
	 * JSON string: escape what needs it, cut to what the record leaves it (the name and the two
	 * strings' lengths take the rest): a record over the limit would be dropped whole.
	 */
	char esc[TRACE_RECORD_MAX - TRACE_RECORD_HEAD - 2 * 8 - DAXFS_POLICY_NAME_MAX];
	size_t k = 0;
	const char *c;
	for (c = msg; *c && k < sizeof(esc) - 7; c++) {
		if (*c == '"' || *c == '\\') {
			esc[k++] = '\\';
			esc[k++] = *c;
		} else if ((unsigned char)*c < 0x20) {
			k += (size_t)snprintf(esc + k, sizeof(esc) - k, "\\u%04x", (unsigned char)*c);
		} else {
			esc[k++] = *c;
		}
	}
	if (cut || *c)
		k = utf8_whole(esc, k);
	esc[k] = 0;
	trace_emit(t, "policy_note", "\"policy\":\"%s\",\"msg\":\"%s\"", pol->ops->name, esc);
}

/* ---- the decision, as policies see it ---- */


enum daxfs_free_cause daxfs_free_cause(const struct daxfs_free *f)
{
	return f->cause;
}

uint64_t daxfs_free_ino(const struct daxfs_free *f)
{
	return f->ino;
}

uint32_t daxfs_free_nranges(const struct daxfs_free *f)
{
	return f->nranges;
}

void daxfs_free_range(const struct daxfs_free *f, uint32_t i, uint64_t *file_off, uint64_t *media_off,
		      uint64_t *len)
{
	unsigned sh = bshift(f->pol);

	if (i >= f->nranges) {
		*file_off = *media_off = *len = 0;
		return;
	}
	*file_off = f->ranges[i].lblk << sh;
	*media_off = f->ranges[i].pblk << sh;
	*len = f->ranges[i].len << sh;
}

static void add_pinned(void *arg, uint64_t start, uint64_t len, uint32_t count)
{
	(void)start;
	if (count)
		*(uint64_t *)arg += len;
}

uint64_t daxfs_free_pinned_bytes(const struct daxfs_free *f)
{
	uint64_t blocks = 0;

	for (uint32_t i = 0; i < f->nranges; i++)
		pin_runs_locked(&f->pol->pins, f->ranges[i].pblk, f->ranges[i].len, add_pinned, &blocks);
	return blocks << bshift(f->pol);
}

/* Does p hold any block of f's ranges? */
static bool pin_in_free(const struct daxfs_free *f, const struct pin *p)
{
	for (uint32_t i = 0; i < f->nranges; i++)
		if (pin_holds_locked(p, f->ranges[i].pblk, f->ranges[i].len))
			return true;
	return false;
}

int daxfs_free_for_each_pin(const struct daxfs_free *f, int (*fn)(void *arg, const struct daxfs_pin_view *p),
			    void *arg)
{
	struct pin_table *tab = &f->pol->pins;
	int ret = 0;

	lock_assert_held(&tab->lock);
	for (struct pin *p = pin_first_of_ino_locked(tab, f->ino); p && !ret; p = pin_next_of_ino_locked(tab, p))
		if (pin_in_free(f, p))
			ret = fn(arg, VIEW(p));
	return ret;
}

static int count_live(void *arg, const struct daxfs_pin_view *v)
{
	if (PIN(v)->state != DAXFS_PIN_REVOKED)
		(*(uint32_t *)arg)++;
	return 0;
}

uint32_t daxfs_free_live_pins(const struct daxfs_free *f)
{
	uint32_t n = 0;

	daxfs_free_for_each_pin(f, count_live, &n);
	return n;
}

uint32_t daxfs_free_attempt(const struct daxfs_free *f)
{
	return f->attempt;
}

uint64_t daxfs_free_started_ns(const struct daxfs_free *f)
{
	return f->started_ns;
}

void *daxfs_free_scratch(struct daxfs_free *f)
{
	return f->scratch;
}

void daxfs_free_wait(struct daxfs_free *f, uint64_t until_ns, enum daxfs_break_scope scope)
{
	f->wait_until = until_ns;
	f->scope = scope;
}

uint64_t daxfs_pin_id(const struct daxfs_pin_view *p)
{
	return PIN(p)->id;
}

uint64_t daxfs_pin_ino(const struct daxfs_pin_view *p)
{
	return PIN(p)->ino;
}

uint32_t daxfs_pin_flags(const struct daxfs_pin_view *p)
{
	return PIN(p)->flags;
}

uint32_t daxfs_pin_state(const struct daxfs_pin_view *p)
{
	return PIN(p)->state;
}

int32_t daxfs_pin_pid(const struct daxfs_pin_view *p)
{
	return PIN(p)->owner->holder.pid ? PIN(p)->owner->holder.pid : PIN(p)->pid;
}

uint32_t daxfs_pin_uid(const struct daxfs_pin_view *p)
{
	return PIN(p)->uid;
}

uint64_t daxfs_pin_bytes(const struct daxfs_pin_view *p)
{
	return pin_held_blocks(PIN(p)) << PIN(p)->bshift;
}

int daxfs_pin_break_lease(struct daxfs_policy *pol, const struct daxfs_pin_view *p, uint64_t deadline_ns)
{
	struct policy *po = pol->owner;
	int ret = pin_break_lease_locked(&po->pins, (struct pin *)PIN(p), deadline_ns, bshift(po));

	kick(po);	/* the worker must revoke at the deadline */
	return ret;
}

int daxfs_pin_revoke(struct daxfs_policy *pol, const struct daxfs_pin_view *p)
{
	struct policy *po = pol->owner;

	if (PIN(p)->state == DAXFS_PIN_REVOKED || PIN(p)->removing)
		return -EINVAL;
	pin_revoke_locked(&po->pins, (struct pin *)PIN(p), bshift(po));
	return 0;
}

int daxfs_pin_invalidate(struct daxfs_policy *pol, struct daxfs_free *f, const struct daxfs_pin_view *p,
			 uint64_t deadline_ns)
{
	struct policy *po = pol->owner;
	struct pin *pin = (struct pin *)PIN(p);
	int ret = pin_invalidate_locked(&po->pins, pin, f->lblk, f->n, deadline_ns, f->id, bshift(po));

	if (ret == 0)
		kick(po);	/* the worker must revoke at the deadline */
	return ret < 0 ? ret : 0;
}
