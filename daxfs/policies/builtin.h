/* SPDX-License-Identifier: MIT */
/*
 * The built-in policies' ops tables.  Each is one file of this directory, written against
 * include/daxfs/policy.h only, as an out-of-tree policy would be; the dispatcher lists them, and a
 * policy that falls back on another (deny-longterm, busy-quota) names it here.
 */
#ifndef DAXFS_POLICIES_BUILTIN_H
#define DAXFS_POLICIES_BUILTIN_H

#include "daxfs/policy.h"

extern const struct daxfs_policy_ops policy_busy_ops;
extern const struct daxfs_policy_ops policy_wait_ops;
extern const struct daxfs_policy_ops policy_fail_ops;
extern const struct daxfs_policy_ops policy_revoke_ops;
extern const struct daxfs_policy_ops policy_unsafe_ops;
extern const struct daxfs_policy_ops policy_deny_longterm_ops;
extern const struct daxfs_policy_ops policy_odp_ops;
extern const struct daxfs_policy_ops policy_busy_quota_ops;

#endif
