/* SPDX-License-Identifier: MIT */
/*
 * busy-quota: busy extents, up to a budget; then another answer.  Blocks go busy while the busy
 * space of the file system stays within `quota` bytes (and that of each pin holder within
 * `holder_quota`, when set); past it, the policy named by `fallback` (wait, fail or revoke) decides.
 * The hybrid a real file system would ship: cheap for the common short pin, bounded for the rest.
 */
#include "builtin.h"

#include <errno.h>
#include <string.h>

static const struct daxfs_policy_param quota_params[] = {
	{ "quota", "64M", "busy bytes the file system may hold before falling back" },
	{ "holder_quota", "0", "busy bytes one pinning process may hold (0: no per-holder limit)" },
	{ "fallback", "revoke", "what decides past the quota: wait, fail or revoke" },
	{ NULL, NULL, NULL },
};

static int quota_init(struct daxfs_policy *pol)
{
	static const struct daxfs_policy_ops *const fallbacks[] = { &policy_wait_ops, &policy_fail_ops,
								    &policy_revoke_ops };
	const char *name = daxfs_policy_param(pol, "fallback");

	for (size_t i = 0; name && i < sizeof(fallbacks) / sizeof(fallbacks[0]); i++)
		if (strcmp(name, fallbacks[i]->name) == 0) {
			daxfs_policy_set_priv(pol, (void *)fallbacks[i]);
			return 0;
		}
	return -EINVAL;
}

struct holder_check {
	struct daxfs_policy *pol;
	uint64_t adding;
	uint64_t limit;
	bool over;
};

static int check_holder(void *arg, const struct daxfs_pin_view *p)
{
	struct holder_check *hc = arg;

	if (daxfs_pin_state(p) != DAXFS_PIN_REVOKED &&
	    daxfs_policy_holder_busy_bytes(hc->pol, daxfs_pin_pid(p)) + hc->adding > hc->limit)
		hc->over = true;
	return hc->over;
}

static int quota_before_free(struct daxfs_policy *pol, struct daxfs_free *f)
{
	const struct daxfs_policy_ops *fallback = daxfs_policy_priv(pol);
	uint64_t pinned = daxfs_free_pinned_bytes(f);
	uint64_t quota = daxfs_policy_param_u64(pol, "quota", 64ull << 20);
	struct holder_check hc = { pol, pinned, daxfs_policy_param_u64(pol, "holder_quota", 0), false };

	if (pinned == 0)
		return DAXFS_PROCEED;
	if (hc.limit)
		daxfs_free_for_each_pin(f, check_holder, &hc);
	if (!hc.over && daxfs_policy_busy_bytes(pol) + pinned <= quota)
		return DAXFS_PROCEED;	/* within budget: busy extents */
	return fallback->before_free(pol, f);
}

const struct daxfs_policy_ops policy_busy_quota_ops = {
	.abi = DAXFS_POLICY_ABI,
	.flags = DAXFS_POLICY_F_STALLS,
	.name = "busy-quota",
	.summary = "busy extents up to a byte quota (per file system and per holder), then a fallback",
	.params = quota_params,
	.init = quota_init,
	.before_free = quota_before_free,
};
