/* SPDX-License-Identifier: MIT */
/* Small helpers shared by every layer. */
#ifndef DAXFS_UTIL_H
#define DAXFS_UTIL_H

#include <assert.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define DIV_ROUND_UP(n, d) (((n) + (d) - 1) / (d))
#define ROUND_UP(n, a) (DIV_ROUND_UP(n, a) * (a))
#define IS_POW2(x) ((x) != 0 && ((x) & ((x) - 1)) == 0)
#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#define UNUSED __attribute__((unused))

/* Ranges [a, a + alen) and [b, b + blen) share a byte. */
static inline int ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

/* A condition variable whose timed waits take CLOCK_MONOTONIC deadlines (immune to clock steps). */
static inline void cond_init_monotonic(pthread_cond_t *cond)
{
	pthread_condattr_t ca;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(cond, &ca);
	pthread_condattr_destroy(&ca);
}

/* Now on CLOCK_MONOTONIC, in ns: the clock of every deadline, age and latency in the daemon. */
static inline uint64_t util_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* A CLOCK_MONOTONIC time in ns (util_now_ns) as the deadline pthread_cond_timedwait takes. */
static inline struct timespec ns_to_timespec(uint64_t ns)
{
	return (struct timespec){ .tv_sec = (time_t)(ns / 1000000000ull), .tv_nsec = (long)(ns % 1000000000ull) };
}

/*
 * A mutex that knows its owner in debug builds, so that *_locked functions can assert that their
 * caller holds it (lock_assert_held).  Without NDEBUG this costs two stores per lock.
 */
struct lock {
	pthread_mutex_t m;
#ifndef NDEBUG
	pthread_t owner;
	bool held;
#endif
};

static inline void lock_init(struct lock *l)
{
	pthread_mutex_init(&l->m, NULL);
#ifndef NDEBUG
	l->held = false;
#endif
}

static inline void lock_destroy(struct lock *l)
{
	pthread_mutex_destroy(&l->m);
}

static inline void lock_owned_(struct lock *l)
{
#ifndef NDEBUG
	l->owner = pthread_self();
	l->held = true;
#else
	(void)l;
#endif
}

static inline void lock_released_(struct lock *l)
{
#ifndef NDEBUG
	assert(l->held && pthread_equal(l->owner, pthread_self()));
	l->held = false;
#else
	(void)l;
#endif
}

static inline void lock_take(struct lock *l)
{
	pthread_mutex_lock(&l->m);
	lock_owned_(l);
}

static inline void lock_drop(struct lock *l)
{
	lock_released_(l);
	pthread_mutex_unlock(&l->m);
}

static inline void lock_wait(pthread_cond_t *c, struct lock *l)
{
	lock_released_(l);
	pthread_cond_wait(c, &l->m);
	lock_owned_(l);
}

/* Wait until deadline (CLOCK_MONOTONIC ns, on a cond_init_monotonic condition); ETIMEDOUT or 0. */
static inline int lock_wait_until(pthread_cond_t *c, struct lock *l, uint64_t deadline_ns)
{
	struct timespec ts = ns_to_timespec(deadline_ns);

	lock_released_(l);
	int ret = pthread_cond_timedwait(c, &l->m, &ts);
	lock_owned_(l);
	return ret;
}

#ifndef NDEBUG
#define lock_assert_held(l) assert((l)->held && pthread_equal((l)->owner, pthread_self()))
#else
#define lock_assert_held(l) ((void)(l))
#endif

#endif
