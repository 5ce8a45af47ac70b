/* SPDX-License-Identifier: MIT */
#include "daxfs/libdaxfs.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

static int xioctl(int fd, unsigned long cmd, void *arg)
{
	return ioctl(fd, cmd, arg) < 0 ? -errno : 0;
}

/* Every extent of pin id, from index have on, appended to *ext (of cap entries). */
static int fetch_extents(int fd, uint64_t id, uint32_t total, struct daxfs_pin_extent *ext, uint32_t have)
{
	while (have < total) {
		struct daxfs_ioc_pin_extents e = { .size = sizeof(e), .start = have, .pin_id = id };
		int ret = xioctl(fd, DAXFS_IOC_PIN_EXTENTS, &e);

		if (ret)
			return ret;
		if (e.nreturned == 0 || e.nextents != total)
			return -EAGAIN;	/* the pin changed meanwhile (refaulted): start over */
		memcpy(ext + have, e.ext, e.nreturned * sizeof(*ext));
		have += e.nreturned;
	}
	return 0;
}

int daxfs_pin_signal(int fd, uint64_t offset, uint64_t length, uint32_t flags, int signo, struct daxfs_pin *pin)
{
	struct daxfs_ioc_pin *a = calloc(1, sizeof(*a));
	int ret;

	memset(pin, 0, sizeof(*pin));
	if (!a)
		return -ENOMEM;
	*a = (struct daxfs_ioc_pin){ .size = sizeof(*a), .flags = flags, .offset = offset, .length = length,
				     .signo = (uint32_t)signo };
	if ((ret = xioctl(fd, DAXFS_IOC_PIN, a))) {
		free(a);
		return ret;
	}
	pin->id = a->pin_id;
	pin->offset = a->pin_offset;
	pin->length = a->pin_length;
	pin->nextents = a->nextents;
	pin->ext = malloc((a->nextents ? a->nextents : 1) * sizeof(*pin->ext));
	if (!pin->ext) {
		daxfs_unpin(fd, a->pin_id);
		free(a);
		return -ENOMEM;
	}
	memcpy(pin->ext, a->ext, a->nreturned * sizeof(*pin->ext));
	ret = fetch_extents(fd, pin->id, pin->nextents, pin->ext, a->nreturned);
	free(a);
	if (ret == -EAGAIN)
		ret = daxfs_pin_refresh(fd, pin);
	if (ret) {
		daxfs_unpin(fd, pin->id);
		daxfs_pin_free(pin);
	}
	return ret;
}

int daxfs_pin(int fd, uint64_t offset, uint64_t length, uint32_t flags, struct daxfs_pin *pin)
{
	return daxfs_pin_signal(fd, offset, length, flags, 0, pin);
}

void daxfs_pin_free(struct daxfs_pin *pin)
{
	free(pin->ext);
	pin->ext = NULL;
	pin->nextents = 0;
}

int daxfs_unpin(int fd, uint64_t pin_id)
{
	struct daxfs_ioc_unpin a = { .size = sizeof(a), .pin_id = pin_id };

	return xioctl(fd, DAXFS_IOC_UNPIN, &a);
}

int daxfs_pin_status(int fd, uint64_t pin_id, struct daxfs_ioc_pin_status *st)
{
	memset(st, 0, sizeof(*st));
	st->size = sizeof(*st);
	st->pin_id = pin_id;
	return xioctl(fd, DAXFS_IOC_PIN_STATUS, st);
}

int daxfs_pin_refresh(int fd, struct daxfs_pin *pin)
{
	for (int tries = 0; tries < 100; tries++) {
		struct daxfs_ioc_pin_status st;
		int ret = daxfs_pin_status(fd, pin->id, &st);

		if (ret)
			return ret;
		struct daxfs_pin_extent *ext = malloc((st.nextents ? st.nextents : 1) * sizeof(*ext));
		if (!ext)
			return -ENOMEM;
		ret = fetch_extents(fd, pin->id, st.nextents, ext, 0);
		if (ret == 0) {
			free(pin->ext);
			pin->ext = ext;
			pin->nextents = st.nextents;
			pin->gen = st.gen;
			return 0;
		}
		free(ext);
		if (ret != -EAGAIN)
			return ret;
	}
	return -EAGAIN;
}

int daxfs_pin_fault(int fd, struct daxfs_pin *pin, uint64_t offset, uint64_t length)
{
	struct daxfs_ioc_pin_fault *a = calloc(1, sizeof(*a));
	int ret;

	if (!a)
		return -ENOMEM;
	*a = (struct daxfs_ioc_pin_fault){ .size = sizeof(*a), .pin_id = pin->id, .offset = offset, .length = length };
	ret = xioctl(fd, DAXFS_IOC_PIN_FAULT, a);
	free(a);
	return ret ? ret : daxfs_pin_refresh(fd, pin);
}

int daxfs_pin_map(const struct daxfs_pin *pin, uint64_t off, uint64_t *media_off, uint64_t *run)
{
	uint64_t file = pin->offset + off;
	uint32_t lo = 0, hi = pin->nextents;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (pin->ext[mid].file_off + pin->ext[mid].len <= file)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == pin->nextents || pin->ext[lo].file_off > file)
		return -EFAULT;
	const struct daxfs_pin_extent *e = &pin->ext[lo];
	*run = e->file_off + e->len - file;
	*media_off = e->media_off == DAXFS_MEDIA_ZERO ? DAXFS_MEDIA_ZERO : e->media_off + (file - e->file_off);
	return 0;
}

int daxfs_dma_run(int fd, struct daxfs_ioc_dma *d)
{
	*d = (struct daxfs_ioc_dma){ .size = sizeof(*d), .op = d->op, .pin_id = d->pin_id, .offset = d->offset,
				     .length = d->length, .seq = d->seq };
	return xioctl(fd, DAXFS_IOC_DMA, d);
}

int daxfs_dma(int fd, uint64_t pin_id, uint32_t op, uint64_t offset, uint64_t length, uint64_t seq,
	      uint64_t *mismatches, uint64_t *first_mismatch)
{
	struct daxfs_ioc_dma a = { .op = op, .pin_id = pin_id, .offset = offset, .length = length, .seq = seq };
	int ret = daxfs_dma_run(fd, &a);

	if (ret == 0 && a.result)
		ret = a.result;	/* done in part only: for this call, that is a failure */
	if (ret == 0 && mismatches)
		*mismatches = a.mismatches;
	if (ret == 0 && first_mismatch)
		*first_mismatch = a.first_mismatch;
	return ret;
}

int daxfs_events(int fd, uint64_t from_seq, struct daxfs_event *ev, uint32_t max, uint32_t *n, uint64_t *next_seq)
{
	struct daxfs_ioc_events *a = calloc(1, sizeof(*a));
	int ret;

	if (!a)
		return -ENOMEM;
	a->size = sizeof(*a);
	a->from_seq = from_seq;
	ret = xioctl(fd, DAXFS_IOC_EVENTS, a);
	if (ret == 0) {
		*n = a->count < max ? a->count : max;
		memcpy(ev, a->ev, *n * sizeof(*ev));
		/* Events that did not fit in ev stay to be read next. */
		if (next_seq)
			*next_seq = *n == a->count ? a->next_seq : *n ? ev[*n - 1].seq + 1 : from_seq;
	}
	free(a);
	return ret;
}

int daxfs_event_ack(int fd, uint64_t pin_id, uint64_t seq)
{
	struct daxfs_ioc_event_ack a = { .size = sizeof(a), .pin_id = pin_id, .seq = seq };

	return xioctl(fd, DAXFS_IOC_EVENT_ACK, &a);
}

int daxfs_info(int fd, struct daxfs_ioc_info *info)
{
	memset(info, 0, sizeof(*info));
	return xioctl(fd, DAXFS_IOC_INFO, info);
}

int daxfs_stats(int fd, struct daxfs_ioc_stats *st)
{
	memset(st, 0, sizeof(*st));
	return xioctl(fd, DAXFS_IOC_STATS, st);
}

/*
 * The listings share a header (size, start, count, total) followed by their entries: fetch every
 * page into one array.
 */
struct list_header {
	__u32 size;
	__u32 start;
	__u32 count;
	__u32 total;
};

static int list_all(int fd, unsigned long cmd, size_t arg_size, size_t entry_size, void **out, uint32_t *n)
{
	struct list_header *l = malloc(arg_size);
	char *v = NULL;
	uint32_t have = 0;
	int ret = 0;

	if (!l)
		return -ENOMEM;
	for (;;) {
		memset(l, 0, arg_size);
		l->size = (__u32)arg_size;
		l->start = have;
		if ((ret = xioctl(fd, cmd, l)) || l->count == 0)
			break;
		char *nv = realloc(v, (have + l->count) * entry_size);
		if (!nv) {
			ret = -ENOMEM;
			break;
		}
		v = nv;
		memcpy(v + have * entry_size, l + 1, l->count * entry_size);
		have += l->count;
		if (have >= l->total)
			break;
	}
	free(l);
	if (ret) {
		free(v);
		return ret;
	}
	*out = v;
	*n = have;
	return 0;
}

#define LIST_ALL(fd, cmd, type, field, out, n)                                                       \
	({                                                                                          \
		_Static_assert(offsetof(type, field) == sizeof(struct list_header), "layout");      \
		list_all(fd, cmd, sizeof(type), sizeof(**(out)), (void **)(out), n);                 \
	})

int daxfs_list_pins(int fd, struct daxfs_pin_info **pins, uint32_t *n)
{
	return LIST_ALL(fd, DAXFS_IOC_LIST_PINS, struct daxfs_ioc_list_pins, pins, pins, n);
}

int daxfs_list_busy(int fd, struct daxfs_busy_info **busy, uint32_t *n)
{
	return LIST_ALL(fd, DAXFS_IOC_LIST_BUSY, struct daxfs_ioc_list_busy, busy, busy, n);
}

int daxfs_list_waits(int fd, struct daxfs_wait_info **waits, uint32_t *n)
{
	return LIST_ALL(fd, DAXFS_IOC_LIST_WAITS, struct daxfs_ioc_list_waits, waits, waits, n);
}

int daxfs_list_policies(int fd, struct daxfs_policy_desc **policies, uint32_t *n)
{
	return LIST_ALL(fd, DAXFS_IOC_LIST_POLICIES, struct daxfs_ioc_list_policies, policies, policies, n);
}

int daxfs_policy_get(int fd, struct daxfs_ioc_policy *p)
{
	memset(p, 0, sizeof(*p));
	p->size = sizeof(*p);
	p->op = DAXFS_POLICY_GET;
	return xioctl(fd, DAXFS_IOC_POLICY, p);
}

int daxfs_policy_change(int fd, const char *name, const char *params, struct daxfs_ioc_policy *out)
{
	memset(out, 0, sizeof(*out));
	out->size = sizeof(*out);
	out->op = name ? DAXFS_POLICY_SET : DAXFS_POLICY_PARAMS;
	if ((name && strlen(name) >= sizeof(out->name)) || (params && strlen(params) >= sizeof(out->params)))
		return -ENAMETOOLONG;
	if (name)
		strcpy(out->name, name);
	if (params)
		strcpy(out->params, params);
	return xioctl(fd, DAXFS_IOC_POLICY, out);
}

int daxfs_policy_set(int fd, const char *name, const char *params, char *msg, size_t msglen)
{
	struct daxfs_ioc_policy p;
	int ret = daxfs_policy_change(fd, name, params, &p);

	if (msg && msglen)
		snprintf(msg, msglen, "%s", ret == 0 && p.result ? p.message : "");
	return ret ? ret : p.result;
}

int daxfs_trace(int fd, uint32_t op, const char *path, struct daxfs_ioc_trace *out)
{
	struct daxfs_ioc_trace *a = calloc(1, sizeof(*a));
	int ret;

	if (!a)
		return -ENOMEM;
	a->size = sizeof(*a);
	a->op = op;
	if (path && snprintf(a->path, sizeof(a->path), "%s", path) >= (int)sizeof(a->path)) {
		free(a);
		return -ENAMETOOLONG;
	}
	ret = xioctl(fd, DAXFS_IOC_TRACE, a);
	if (ret == 0 && out)
		*out = *a;
	free(a);
	return ret;
}

/*
 * Every payload a device writes passes through here (the simulated device fills each WRITE with it),
 * so on x86-64 each unit is four 16-byte stores, the two offsets that change from unit to unit kept
 * in vector lanes.
 */
void daxfs_tag_fill(void *buf, uint64_t len, const struct daxfs_tag *t)
{
#ifdef __SSE2__
	_Static_assert(offsetof(struct daxfs_tag, pin_id) == 8 && offsetof(struct daxfs_tag, ino) == 16 &&
			       offsetof(struct daxfs_tag, file_off) == 24 && offsetof(struct daxfs_tag, media_off) == 32 &&
			       offsetof(struct daxfs_tag, seq) == 40 && offsetof(struct daxfs_tag, gen) == 48 &&
			       offsetof(struct daxfs_tag, source) == 52 && offsetof(struct daxfs_tag, time_ns) == 56,
		       "tag layout");
	const __m128i a = _mm_set_epi64x((long long)t->pin_id, (long long)DAXFS_TAG_MAGIC);
	__m128i b = _mm_set_epi64x((long long)t->file_off, (long long)t->ino);
	__m128i c = _mm_set_epi64x((long long)t->seq, (long long)t->media_off);
	const __m128i d = _mm_set_epi64x((long long)t->time_ns, (long long)((uint64_t)t->source << 32 | t->gen));
	const __m128i step_b = _mm_set_epi64x(DAXFS_TAG_UNIT, 0), step_c = _mm_set_epi64x(0, DAXFS_TAG_UNIT);
	char *p = buf;

	for (uint64_t i = 0; i < len / DAXFS_TAG_UNIT; i++, p += DAXFS_TAG_UNIT) {
		_mm_storeu_si128((__m128i *)p, a);
		_mm_storeu_si128((__m128i *)(p + 16), b);
		_mm_storeu_si128((__m128i *)(p + 32), c);
		_mm_storeu_si128((__m128i *)(p + 48), d);
		b = _mm_add_epi64(b, step_b);
		c = _mm_add_epi64(c, step_c);
	}
#else
	struct daxfs_tag *u = buf;

	for (uint64_t i = 0; i < len / DAXFS_TAG_UNIT; i++) {
		u[i] = *t;
		u[i].magic = DAXFS_TAG_MAGIC;
		u[i].file_off = t->file_off + i * DAXFS_TAG_UNIT;
		u[i].media_off = t->media_off + i * DAXFS_TAG_UNIT;
	}
#endif
}

bool daxfs_tag_decode(const void *unit, struct daxfs_tag *out)
{
	memcpy(out, unit, sizeof(*out));
	return out->magic == DAXFS_TAG_MAGIC;
}
