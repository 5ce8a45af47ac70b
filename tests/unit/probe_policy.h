/* SPDX-License-Identifier: MIT */
/*
 * What the probe policy (probe_policy.c, loaded by test_policy) records and answers.  The test
 * writes the answers before the operation that calls the hook and reads the records after it; the
 * counters are read with atomic loads while the policy worker may run a hook.
 */
#ifndef DAXFS_UNIT_PROBE_POLICY_H
#define DAXFS_UNIT_PROBE_POLICY_H

#include <stdbool.h>
#include <stdint.h>

#include "daxfs/policy.h"

#define PROBE_PINS 8

struct probe_pin {
	uint64_t id, ino, bytes;
	uint32_t flags, state, uid;
	int32_t pid;
};

struct probe {
	/* answers, set by the test */
	int admit_answer;		/* 0 or -errno (or a positive number: the daemon makes it EPERM) */
	int answer;			/* before_free: DAXFS_PROCEED, DAXFS_WAIT or -errno */
	uint32_t wait_attempts;		/* DAXFS_WAIT until this attempt, then DAXFS_PROCEED */
	uint64_t wait_ns;		/* with DAXFS_WAIT: decide again this much later (0: when pins change) */
	int scope;			/* enum daxfs_break_scope */
	int pinned_answer;		/* DAXFS_KEEP_BUSY or DAXFS_FREE_NOW */
	bool revoke_first;		/* before_free revokes the first pin it sees */
	int32_t holder_pid;		/* for daxfs_policy_holder_busy_bytes */
	/* counters */
	uint32_t inits, finis, admits, before_frees, pinned_freeds, unpins, timers;
	/* what init saw */
	char color[32];
	char grace[32];
	uint64_t size;
	bool unknown_param;
	bool priv_ok;
	bool builtin_wait;
	/* what admit saw */
	struct daxfs_pin_request req;
	/* what before_free saw, last time */
	uint32_t scratch_count;
	enum daxfs_free_cause cause;
	uint64_t ino;
	uint32_t nranges;
	uint64_t range_file_off, range_media_off, range_len;
	uint64_t pinned_bytes;
	uint32_t live_pins;
	uint32_t attempt;
	uint64_t started_ns;
	uint64_t busy_bytes, holder_busy_bytes;
	uint32_t npins;
	struct probe_pin pins[PROBE_PINS];
	int revoke_ret;
	/* pinned_freed, on_unpin, on_timer */
	uint64_t freed_media_off, freed_len;
	uint64_t unpinned_id;
	uint64_t timer_now;
};

#endif
