/* SPDX-License-Identifier: MIT */
#include "policy.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "emap.h"
#include "file.h"
#include "fs.h"
#include "inode.h"
#include "policies/builtin.h"
#include "util.h"

#define STAT_ADD(pol, field, n) __atomic_add_fetch(&(pol)->stats.field, (n), __ATOMIC_RELAXED)


const struct daxfs_policy_ops *const policy_builtins[] = {
	&policy_busy_ops, &policy_wait_ops, &policy_fail_ops, &policy_revoke_ops, &policy_unsafe_ops,
	&policy_deny_longterm_ops, &policy_odp_ops, &policy_busy_quota_ops, NULL,
};

static const struct daxfs_policy_param common_params[] = {
	{ "pins", "allow", "admission of long-term pins: allow, deny-longterm or revocable-only" },
	{ "grace_ms", "1000", "how long a holder has to unpin after a lease break before it is revoked" },
	{ "wait_timeout_ms", "0", "how long a truncate waits for pins before giving up with EBUSY (0: no limit)" },
	{ NULL, NULL, NULL },
};

#define bshift(pol) ((pol)->pins.bshift)
#define kick(pol) policy_kick(pol)

/* ---- policy instances ---- */

/* A name of lower-case letters, digits and the characters of `extra`, short enough for the ABI. */
static bool valid_name(const char *s, const char *extra)
{
	if (!*s || strlen(s) >= DAXFS_POLICY_NAME_MAX)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || strchr(extra, *s)))
			return false;
	return true;
}

/* Policies are named as policy.h says, [a-z0-9-]; parameters are keys such as grace_ms. */
#define POLICY_NAME_CHARS "-"
#define PARAM_NAME_CHARS "-_"

/* A .so must be where only its owner could have put it: ours or root's, not writable by others. */
static int check_object(const char *path, char *err, size_t errlen)
{
	struct stat st;

	if (path[0] != '/') {
		snprintf(err, errlen, "%s: a policy object is given by its absolute path", path);
		return -EINVAL;
	}
	if (stat(path, &st) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -errno;
	}
	if (!S_ISREG(st.st_mode) || (st.st_uid != 0 && st.st_uid != getuid()) || (st.st_mode & (S_IWGRP | S_IWOTH))) {
		snprintf(err, errlen, "%s: a policy object must be a regular file owned by root or the daemon's user "
			 "and writable by nobody else", path);
		return -EPERM;
	}
	return 0;
}

int policy_find(const char *name, const struct daxfs_policy_ops **out, void **handle, char *err, size_t errlen)
{
	const struct daxfs_policy_ops *ops;
	int ret;

	*handle = NULL;
	if (name[0] != '/') {
		for (size_t i = 0; policy_builtins[i]; i++)
			if (strcmp(policy_builtins[i]->name, name) == 0) {
				*out = policy_builtins[i];
				return 0;
			}
		snprintf(err, errlen, "unknown policy '%s' (daxfsctl policies lists them; a .so needs an absolute path)",
			 name);
		return -ENOENT;
	}
	if ((ret = check_object(name, err, errlen)))
		return ret;
	void *h = dlopen(name, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		snprintf(err, errlen, "%s: %s", name, dlerror());
		return -ENOEXEC;
	}
	ops = dlsym(h, DAXFS_POLICY_SYMBOL);
	if (!ops) {
		snprintf(err, errlen, "%s: exports no '%s' (struct daxfs_policy_ops)", name, DAXFS_POLICY_SYMBOL);
		ret = -ENOEXEC;
	} else if (ops->abi != DAXFS_POLICY_ABI) {
		snprintf(err, errlen, "%s: built for policy ABI %u, this daemon has %u: rebuild it against its headers",
			 name, ops->abi, DAXFS_POLICY_ABI);
		ret = -ENOEXEC;
	} else if (!ops->name || !ops->before_free) {
		snprintf(err, errlen, "%s: malformed ops table (it needs a name and before_free)", name);
		ret = -ENOEXEC;
	} else if (!valid_name(ops->name, POLICY_NAME_CHARS)) {
		snprintf(err, errlen, "%s: policy name '%.*s' refused: a policy's name is 1 to %d lower-case letters, "
			 "digits and '-' ([a-z0-9-])", name, DAXFS_POLICY_NAME_MAX, ops->name, DAXFS_POLICY_NAME_MAX - 1);
		ret = -ENOEXEC;
	} else {
		for (const struct daxfs_policy_param *p = ops->params; p && p->name; p++)
			if (!valid_name(p->name, PARAM_NAME_CHARS) || !p->def) {
				snprintf(err, errlen, "%s: malformed parameter table", name);
				ret = -ENOEXEC;
				break;
			}
	}
	if (ret) {
		dlclose(h);
		return ret;
	}
	*out = ops;
	*handle = h;
	return 0;
}

static const struct daxfs_policy_param *find_param(const struct daxfs_policy_ops *ops, const char *key)
{
	for (const struct daxfs_policy_param *p = common_params; p->name; p++)
		if (strcmp(p->name, key) == 0)
			return p;
	for (const struct daxfs_policy_param *p = ops->params; p && p->name; p++)
		if (strcmp(p->name, key) == 0)
			return p;
	return NULL;
}

static int set_value(struct daxfs_policy *inst, const char *key, const char *value)
{
	for (uint32_t i = 0; i < inst->nparams; i++)
		if (strcmp(inst->keys[i], key) == 0) {
			char *v = strdup(value);

			if (!v)
				return -ENOMEM;
			free(inst->values[i]);
			inst->values[i] = v;
			return 0;
		}
	if (inst->nparams == POLICY_PARAMS_MAX)
		return -E2BIG;
	inst->keys[inst->nparams] = strdup(key);
	inst->values[inst->nparams] = strdup(value);
	if (!inst->keys[inst->nparams] || !inst->values[inst->nparams]) {
		free(inst->keys[inst->nparams]);
		free(inst->values[inst->nparams]);
		return -ENOMEM;
	}
	inst->nparams++;
	return 0;
}

/* Apply "key=value,key=value" to inst; every key must be a parameter of its policy. */
static int apply_params(struct daxfs_policy *inst, const char *params, char *err, size_t errlen)
{
	char *copy, *save = NULL;
	int ret = 0;

	if (!params || !*params)
		return 0;
	if (!(copy = strdup(params)))
		return -ENOMEM;
	for (char *kv = strtok_r(copy, ",", &save); kv && !ret; kv = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(kv, '=');

		if (!eq) {
			snprintf(err, errlen, "'%s': parameters are key=value", kv);
			ret = -EINVAL;
			break;
		}
		*eq = 0;
		if (!find_param(inst->ops, kv)) {
			snprintf(err, errlen, "policy %s has no parameter '%s'", inst->ops->name, kv);
			ret = -EINVAL;
			break;
		}
		if ((ret = set_value(inst, kv, eq + 1)))
			snprintf(err, errlen, "%s: %s", kv, strerror(-ret));
	}
	free(copy);
	return ret;
}

static void instance_free(struct daxfs_policy *inst)
{
	if (!inst)
		return;
	if (inst->ops->fini)
		inst->ops->fini(inst);
	for (uint32_t i = 0; i < inst->nparams; i++) {
		free(inst->keys[i]);
		free(inst->values[i]);
	}
	if (inst->handle)
		dlclose(inst->handle);
	free(inst);
}


/* Check the common parameters and derive the mount-level settings from them. */
static int common_settings(const struct daxfs_policy *inst, uint32_t *admission, uint64_t *grace_ns,
			   uint64_t *timeout_ns, char *err, size_t errlen)
{
	const char *pins = daxfs_policy_param(inst, "pins");
	uint64_t grace, timeout;

	if (strcmp(pins, "allow") == 0)
		*admission = POLICY_ADMIT_ALL;
	else if (strcmp(pins, "deny-longterm") == 0)
		*admission = POLICY_ADMIT_DENY_LONGTERM;
	else if (strcmp(pins, "revocable-only") == 0)
		*admission = POLICY_ADMIT_REVOCABLE_ONLY;
	else {
		snprintf(err, errlen, "pins=%s: expected allow, deny-longterm or revocable-only", pins);
		return -EINVAL;
	}
	if (policy_parse_u64(daxfs_policy_param(inst, "grace_ms"), &grace) ||
	    policy_parse_u64(daxfs_policy_param(inst, "wait_timeout_ms"), &timeout) || grace > 86400000ull * 365 ||
	    timeout > 86400000ull * 365) {
		snprintf(err, errlen, "grace_ms and wait_timeout_ms are milliseconds (at most a year)");
		return -EINVAL;
	}
	for (const struct daxfs_policy_param *p = inst->ops->params; p && p->name; p++) {
		/* Numeric defaults promise numeric values: catch a typo at set time, not in a hook. */
		uint64_t v;
		if (policy_parse_u64(p->def, &v) == 0 && policy_parse_u64(daxfs_policy_param(inst, p->name), &v)) {
			snprintf(err, errlen, "%s=%s: expected a number (K, M, G, T suffixes allowed)", p->name,
				 daxfs_policy_param(inst, p->name));
			return -EINVAL;
		}
	}
	*grace_ns = grace * 1000000ull;
	*timeout_ns = timeout * 1000000ull;
	return 0;
}

/* A new instance of ops (handle: its .so, owned from now on) with defaults, then params. */
static int instance_new(struct policy *pol, const struct daxfs_policy_ops *ops, void *handle, const char *path,
			const struct daxfs_policy *prev, const char *params, struct daxfs_policy **out, char *err,
			size_t errlen)
{
	struct daxfs_policy *inst = calloc(1, sizeof(*inst));
	int ret = 0;

	if (!inst) {
		if (handle)
			dlclose(handle);
		return -ENOMEM;
	}
	inst->ops = ops;
	inst->owner = pol;
	inst->handle = handle;
	snprintf(inst->path, sizeof(inst->path), "%s", path ? path : "");
	for (const struct daxfs_policy_param *p = common_params; p->name && !ret; p++)
		ret = set_value(inst, p->name, p->def);
	for (const struct daxfs_policy_param *p = ops->params; p && p->name && !ret; p++)
		ret = set_value(inst, p->name, p->def);
	/* The common parameters carry over a switch of policy, as mount options would. */
	if (prev)
		for (const struct daxfs_policy_param *p = common_params; p->name && !ret; p++)
			ret = set_value(inst, p->name, daxfs_policy_param(prev, p->name));
	if (ret == 0)
		ret = apply_params(inst, params, err, errlen);
	uint32_t adm;
	uint64_t g, t;
	if (ret == 0)
		ret = common_settings(inst, &adm, &g, &t, err, errlen);
	if (ret == 0 && ops->init && (ret = ops->init(inst)) != 0) {
		snprintf(err, errlen, "policy %s refused its parameters: %s", ops->name, strerror(ret < 0 ? -ret : ret));
		ret = ret < 0 ? ret : -EINVAL;
		inst->ops = &policy_busy_ops;	/* no fini for what did not init */
	}
	if (ret) {
		instance_free(inst);
		return ret;
	}
	*out = inst;
	return 0;
}

/* Make inst the policy in force (pins.lock held); the old one is returned for freeing unlocked. */
static struct daxfs_policy *install_locked(struct policy *pol, struct daxfs_policy *inst)
{
	struct daxfs_policy *old = pol->cur;
	struct policy_op *op;

	lock_assert_held(&pol->pins.lock);
	common_settings(inst, &pol->admission, &pol->grace_ns, &pol->wait_timeout_ns, NULL, 0);
	pol->cur = inst;
	pol->generation++;
	/* Waiting requests decide again under the new rules. */
	TAILQ_FOREACH(op, &pol->ops, link)
		op->ready = true;
	pthread_cond_broadcast(&pol->pins.changed);
	kick(pol);
	TRACE(&pol->fs->trace, "policy", "\"name\":\"%s\",\"generation\":%llu", inst->ops->name,
	      (unsigned long long)pol->generation);
	return old;
}

int policy_set(struct fs *fs, const char *name, const char *params, char *err, size_t errlen)
{
	struct policy *pol = fs->pol;
	const struct daxfs_policy_ops *ops;
	struct daxfs_policy *inst, *old;
	void *handle;
	int ret;

	if ((ret = policy_find(name, &ops, &handle, err, errlen)))
		return ret;
	lock_take(&pol->pins.lock);
	ret = instance_new(pol, ops, handle, handle ? name : NULL, pol->cur, params, &inst, err, errlen);
	old = ret ? NULL : install_locked(pol, inst);
	lock_drop(&pol->pins.lock);
	instance_free(old);
	return ret;
}

int policy_set_params(struct fs *fs, const char *params, char *err, size_t errlen)
{
	struct policy *pol = fs->pol;
	struct daxfs_policy *inst = NULL, *old = NULL;
	void *handle = NULL;
	char all[DAXFS_POLICY_PARAMS_MAX * 2];
	size_t n = 0;
	int ret = 0;

	lock_take(&pol->pins.lock);
	/* A new instance of the same policy: every current value, then the changes. */
	for (uint32_t i = 0; i < pol->cur->nparams; i++)
		n += (size_t)snprintf(all + n, sizeof(all) - MIN(n, sizeof(all)), "%s%s=%s", n ? "," : "",
				      pol->cur->keys[i], pol->cur->values[i]);
	if (n + 2 + strlen(params) >= sizeof(all))
		ret = -E2BIG;
	else if (*params)
		snprintf(all + n, sizeof(all) - n, ",%s", params);
	if (ret == 0 && pol->cur->handle) {
		/* Another reference to the same object, so that the old instance can close its own. */
		if (!(handle = dlopen(pol->cur->path, RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD)))
			ret = -ENOEXEC;
	}
	if (ret == 0)
		ret = instance_new(pol, pol->cur->ops, handle, pol->cur->handle ? pol->cur->path : NULL, NULL, all,
				   &inst, err, errlen);
	else
		snprintf(err, errlen, "%s", strerror(-ret));
	if (ret == 0)
		old = install_locked(pol, inst);
	lock_drop(&pol->pins.lock);
	instance_free(old);
	return ret;
}

static void params_text(const struct daxfs_policy *inst, char *out, size_t size)
{
	size_t n = 0;

	out[0] = 0;
	for (uint32_t i = 0; i < inst->nparams && n < size; i++)
		n += (size_t)snprintf(out + n, size - n, "%s%s=%s", i ? "," : "", inst->keys[i], inst->values[i]);
}

void policy_describe(struct fs *fs, struct daxfs_ioc_policy *out)
{
	struct policy *pol = fs->pol;

	lock_take(&pol->pins.lock);
	snprintf(out->name, sizeof(out->name), "%s", pol->cur->ops->name);
	params_text(pol->cur, out->params, sizeof(out->params));
	snprintf(out->summary, sizeof(out->summary), "%s", pol->cur->ops->summary ? pol->cur->ops->summary : "");
	out->flags = (pol->cur->ops->flags & DAXFS_POLICY_F_STALLS) | (pol->cur->handle ? DAXFS_POLICY_F_LOADED : 0);
	out->generation = pol->generation;
	lock_drop(&pol->pins.lock);
}

static void describe_ops(const struct daxfs_policy_ops *ops, bool loaded, struct daxfs_policy_desc *d)
{
	size_t n = 0;

	memset(d, 0, sizeof(*d));
	snprintf(d->name, sizeof(d->name), "%s", ops->name);
	snprintf(d->summary, sizeof(d->summary), "%s", ops->summary ? ops->summary : "");
	d->flags = (ops->flags & DAXFS_POLICY_F_STALLS) | (loaded ? DAXFS_POLICY_F_LOADED : 0);
	for (const struct daxfs_policy_param *p = ops->params; p && p->name && n < sizeof(d->params); p++)
		n += (size_t)snprintf(d->params + n, sizeof(d->params) - n, "%s=%s: %s\n", p->name, p->def,
				      p->help ? p->help : "");
}

uint32_t policy_list(struct fs *fs, uint32_t start, struct daxfs_policy_desc *out, uint32_t max, uint32_t *total)
{
	struct policy *pol = fs->pol;
	uint32_t nb = 0, n = 0;

	while (policy_builtins[nb])
		nb++;
	lock_take(&pol->pins.lock);
	bool loaded = pol->cur->handle != NULL;
	*total = nb + (loaded ? 1 : 0) + 1;	/* the last entry: the common parameters */
	for (uint32_t i = start; i < *total && n < max; i++, n++) {
		if (i < nb) {
			describe_ops(policy_builtins[i], false, &out[n]);
		} else if (loaded && i == nb) {
			describe_ops(pol->cur->ops, true, &out[n]);
		} else {
			static const struct daxfs_policy_ops common = { .name = "(common)",
				.summary = "parameters every policy takes", .params = common_params };
			describe_ops(&common, false, &out[n]);
		}
	}
	lock_drop(&pol->pins.lock);
	return n;
}

const struct daxfs_policy_ops *daxfs_policy_builtin(const char *name)
{
	for (size_t i = 0; policy_builtins[i]; i++)
		if (strcmp(policy_builtins[i]->name, name) == 0)
			return policy_builtins[i];
	return NULL;
}

/* ---- pinned blocks per user ---- */

static struct policy_user *user_of(struct policy *pol, uint32_t uid, bool create)
{
	for (uint32_t i = 0; i < pol->nusers; i++)
		if (pol->users[i].uid == uid)
			return &pol->users[i];
	if (!create)
		return NULL;
	struct policy_user *v = realloc(pol->users, (pol->nusers + 1) * sizeof(*v));
	if (!v)
		return NULL;
	pol->users = v;
	v[pol->nusers] = (struct policy_user){ .uid = uid };
	return &v[pol->nusers++];
}

static void charge(struct policy *pol, struct pin *p)
{
	struct policy_user *u = user_of(pol, p->uid, true);
	uint64_t blocks = pin_held_blocks(p);

	if (u) {
		u->blocks += blocks - p->charged;
		p->charged = blocks;
	}
}

static void uncharge(struct policy *pol, struct pin *p)
{
	struct policy_user *u = user_of(pol, p->uid, false);

	if (u)
		u->blocks -= MIN(u->blocks, p->charged);
	p->charged = 0;
}

/* ---- upcalls from the pin table (its lock held) ---- */

/* Wake the registered requests that wait on file ino, or on blocks of [start, start + len). */
static void wake_ops(struct policy *pol, uint64_t ino, uint64_t start, uint64_t len)
{
	struct policy_op *op;
	bool any = false;

	TAILQ_FOREACH(op, &pol->ops, link) {
		bool hit = ino && op->f.ino == ino;

		for (uint32_t i = 0; !hit && len && i < op->f.nranges; i++)
			hit = ranges_overlap(op->f.ranges[i].pblk, op->f.ranges[i].len, start, len);
		if (hit) {
			op->ready = true;
			any |= op->parked;
		}
	}
	if (any)
		kick(pol);
}

struct unpin_ctx {
	struct policy *pol;
	uint64_t now;
	bool pending_ok;	/* the extents' transaction has committed */
};

static void maybe_queue(void *arg, struct busy_ext *be)
{
	struct unpin_ctx *uc = arg;
	struct fs *fs = uc->pol->fs;

	if (be->state == DAXFS_BUSY_PENDING && uc->pending_ok)
		be->state = DAXFS_BUSY_PINNED;
	if (be->state == DAXFS_BUSY_PINNED && !pin_any_locked(&uc->pol->pins, be->start, be->len)) {
		busy_queue_locked(&fs->busy, be, uc->now);
		TRACE(&fs->trace, "reclaim_queue", "\"media\":%llu,\"len\":%llu",
		      (unsigned long long)(be->start << fs->sbi.bshift), (unsigned long long)(be->len << fs->sbi.bshift));
	}
}

static void on_unpinned(void *ctx, uint64_t start, uint64_t len)
{
	struct policy *pol = ctx;
	struct fs *fs = pol->fs;
	struct unpin_ctx uc = { pol, util_now_ns(), false };

	lock_take(&fs->busy.lock);
	busy_visit_locked(&fs->busy, start, len, maybe_queue, &uc);
	lock_drop(&fs->busy.lock);
	wake_ops(pol, 0, start, len);
}

static void on_changed(void *ctx, uint64_t ino)
{
	wake_ops(ctx, ino, 0, 0);
}

static void on_removing(void *ctx, const struct pin *p)
{
	struct policy *pol = ctx;

	uncharge(pol, (struct pin *)p);
	if (pol->cur && pol->cur->ops->on_unpin)
		pol->cur->ops->on_unpin(pol->cur, VIEW(p));
}

/* After the transaction that made [start, start + len) busy committed: it may be reclaimable now. */
static void on_busy_committed(void *ctx, uint64_t start, uint64_t len)
{
	struct policy *pol = ctx;
	struct unpin_ctx uc = { pol, util_now_ns(), true };

	lock_take(&pol->pins.lock);
	lock_take(&pol->fs->busy.lock);
	busy_visit_locked(&pol->fs->busy, start, len, maybe_queue, &uc);
	lock_drop(&pol->fs->busy.lock);
	lock_drop(&pol->pins.lock);
}

/* ---- the worker: resumes parked requests, revokes at deadlines, runs the policy's timer ---- */

static void ghost_release_locked(struct policy *pol, struct policy_ghost *g);

static uint64_t next_wake_locked(struct policy *pol)
{
	lock_assert_held(&pol->pins.lock);
	uint64_t next = pol->pins.next_deadline_ns;
	struct policy_op *op;

	TAILQ_FOREACH(op, &pol->ops, link)
		if (op->parked && op->f.wait_until && (!next || op->f.wait_until < next))
			next = op->f.wait_until;
	if (pol->cur->timer_ns && (!next || pol->cur->timer_ns < next))
		next = pol->cur->timer_ns;
	return next;
}

static void *worker(void *arg)
{
	struct policy *pol = arg;
	struct pin_table *tab = &pol->pins;

	lock_take(&tab->lock);
	for (;;) {
		uint64_t now = util_now_ns();
		struct policy_op *run[64], *op;
		size_t n = 0;

		pin_expire_locked(tab, now, bshift(pol));
		if (pol->cur->timer_ns && now >= pol->cur->timer_ns) {
			pol->cur->timer_ns = 0;
			if (pol->cur->ops->on_timer)
				pol->cur->ops->on_timer(pol->cur, now);
		}
		TAILQ_FOREACH(op, &pol->ops, link) {
			if (!op->parked)
				continue;
			/*
			 * Only when woken (what it waits for changed, an interrupt, a new policy, the stop: all
			 * set ready) or at its own time: a request run for nothing would park again at once,
			 * and the worker would spin.
			 */
			if (op->ready || (op->f.wait_until && now >= op->f.wait_until)) {
				op->parked = false;
				pol->nwaiting--;
				run[n++] = op;
				if (n == ARRAY_SIZE(run))
					break;
			}
		}
		if (n) {
			/* Run them unlocked: each takes its inode and the pins as its operation does. */
			lock_drop(&tab->lock);
			for (size_t i = 0; i < n; i++)
				run[i]->resume(run[i]->arg);
			lock_take(&tab->lock);
			continue;
		}
		if (pol->stopping && pol->nwaiting == 0)
			break;
		uint64_t next = next_wake_locked(pol);
		int timeout = -1;
		if (next)
			timeout = next <= now ? 0 : (int)MIN((next - now + 999999) / 1000000, (uint64_t)60000);
		/* Sleep on the wake-up counter and on the pidfds of quarantined holders. */
		uint32_t nfds = 1 + pol->nghosts;
		struct pollfd *pfd = calloc(nfds, sizeof(*pfd));
		struct policy_ghost **gv = calloc(nfds, sizeof(*gv));
		struct policy_ghost *g;
		uint32_t k = 1;
		if (!pfd || !gv) {
			free(pfd);
			free(gv);
			lock_drop(&tab->lock);
			usleep(10000);	/* out of memory: look again soon */
			lock_take(&tab->lock);
			continue;
		}
		pfd[0] = (struct pollfd){ .fd = pol->wake_fd, .events = POLLIN };
		LIST_FOREACH(g, &pol->ghosts, link) {
			gv[k] = g;
			pfd[k++] = (struct pollfd){ .fd = g->pidfd, .events = POLLIN };
		}
		lock_drop(&tab->lock);
		if (poll(pfd, nfds, timeout) > 0 && (pfd[0].revents & POLLIN)) {
			uint64_t v;

			if (read(pol->wake_fd, &v, sizeof(v)) < 0) {
				/* Nothing to read after all: a spurious wake-up costs one loop. */
			}
		}
		lock_take(&tab->lock);
		/* Ghosts only leave here, so the ones polled are all still there. */
		for (uint32_t i = 1; i < nfds; i++)
			if (pfd[i].revents)
				ghost_release_locked(pol, gv[i]);
		free(pfd);
		free(gv);
	}
	lock_drop(&tab->lock);
	return NULL;
}

int policy_start(struct fs *fs)
{
	struct policy *pol = fs->pol;
	int ret;

	if (pol->started)
		return 0;
	ret = pthread_create(&pol->worker, NULL, worker, pol);
	if (ret)
		return -ret;
	pol->started = true;
	return 0;
}

void policy_stop(struct fs *fs)
{
	struct policy *pol = fs->pol;
	struct policy_op *op;

	if (!pol->started)
		return;
	lock_take(&pol->pins.lock);
	pol->stopping = true;
	TAILQ_FOREACH(op, &pol->ops, link)
		op->interrupted = op->ready = true;
	kick(pol);
	lock_drop(&pol->pins.lock);
	pthread_join(pol->worker, NULL);
	pol->started = false;
}

/* ---- set up ---- */

int policy_init(struct policy *pol, struct fs *fs, const char *name, const char *params,
		const struct policy_limits *lim, char *err, size_t errlen)
{
	static const struct pin_callbacks cb_tmpl = { .unpinned = on_unpinned, .changed = on_changed,
						      .removing = on_removing };
	struct pin_callbacks cb = cb_tmpl;
	const struct daxfs_policy_ops *ops;
	void *handle;
	int ret;

	memset(pol, 0, sizeof(*pol));
	pol->fs = fs;
	pol->wake_fd = -1;
	TAILQ_INIT(&pol->ops);
	LIST_INIT(&pol->ghosts);
	pol->next_op_id = 1;
	/* Any limit but 0 is one: below a block, it admits only pins that hold no block. */
	pol->max_user_blocks = lim->max_user_bytes == POLICY_USER_LIMIT_DEFAULT ? fs->sbi.data_blocks / 8
			       : lim->max_user_bytes == 0			    ? UINT64_MAX
										    : lim->max_user_bytes >> fs->sbi.bshift;
	cb.ctx = pol;
	pin_table_init(&pol->pins, fs->sbi.bshift, lim->max_pins, lim->max_pins_per_file, &cb);
	pol->pins.trace = &fs->trace;
	if ((ret = policy_find(name ? name : "busy", &ops, &handle, err, errlen)))
		goto fail;
	if ((ret = instance_new(pol, ops, handle, handle ? name : NULL, NULL, params, &pol->cur, err, errlen)))
		goto fail;
	common_settings(pol->cur, &pol->admission, &pol->grace_ns, &pol->wait_timeout_ns, NULL, 0);
	pol->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (pol->wake_fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		instance_free(pol->cur);
		goto fail;
	}
	fs->pol = pol;
	return 0;
fail:
	pin_table_destroy(&pol->pins);
	return ret;
}

static void forget_live_holders(struct policy *pol);

void policy_release_all(struct fs *fs)
{
	pin_release_all(&fs->pol->pins);
	forget_live_holders(fs->pol);
}

void policy_destroy(struct policy *pol)
{
	struct policy_ghost *g;

	policy_stop(pol->fs);
	/*
	 * Ghosts end with the mount, their records kept: the next mount looks at their holders again.
	 * Their pins go with the table; their owners' events (a lease break, say) go here.
	 */
	while ((g = LIST_FIRST(&pol->ghosts))) {
		LIST_REMOVE(g, link);
		close(g->pidfd);
		pin_owner_destroy(&g->owner);
		free(g);
	}
	pin_table_destroy(&pol->pins);
	slots_destroy(&pol->holders);
	instance_free(pol->cur);
	free(pol->users);
	if (pol->wake_fd >= 0)
		close(pol->wake_fd);
}

/* ---- frees ---- */

void policy_op_init(struct policy_op *op, uint32_t kind, pid_t pid)
{
	memset(op, 0, sizeof(*op));
	op->kind = kind;
	op->pid = pid;
	op->f.cause = kind == DAXFS_WAIT_PUNCH ? DAXFS_CAUSE_PUNCH : kind == DAXFS_WAIT_OTRUNC ? DAXFS_CAUSE_OTRUNC
									   : DAXFS_CAUSE_TRUNCATE;
}

/* The media ranges behind file blocks [lblk, lblk + n) of ip, into f->ranges (holes skipped). */
static int media_ranges(const struct inode *ip, uint64_t lblk, uint64_t n, struct pin_ext **out, uint32_t *count,
			bool with_holes)
{
	struct emap_cursor c;
	struct daxfs_extent e;
	struct pin_ext *v = NULL;
	uint32_t cnt = 0, cap = 0;
	uint64_t end = n > UINT64_MAX - lblk ? UINT64_MAX : lblk + n, cur = lblk;

	for (bool more = emap_seek(ip, lblk, &c, &e); cur < end; more = more ? emap_next(ip, &c, &e) : false) {
		if (cnt + 2 > cap) {
			cap = cap ? cap * 2 : 16;
			struct pin_ext *nv = realloc(v, cap * sizeof(*v));
			if (!nv) {
				free(v);
				return -ENOMEM;
			}
			v = nv;
		}
		if (!more || e.lblk >= end) {
			if (with_holes)
				v[cnt++] = (struct pin_ext){ .lblk = cur, .pblk = PIN_HOLE, .len = end - cur };
			break;
		}
		uint64_t s = MAX(cur, e.lblk), t = MIN(end, e.lblk + e.len);
		if (with_holes && s > cur)
			v[cnt++] = (struct pin_ext){ .lblk = cur, .pblk = PIN_HOLE, .len = s - cur };
		v[cnt++] = (struct pin_ext){ .lblk = s, .pblk = e.pblk + (s - e.lblk), .len = t - s };
		cur = t;
	}
	free(*out);
	*out = v;
	*count = cnt;
	return 0;
}

static void register_locked(struct policy *pol, struct policy_op *op)
{
	lock_assert_held(&pol->pins.lock);
	if (op->registered)
		return;
	op->registered = true;
	op->f.pol = pol;
	if (!op->f.id)
		op->f.id = pol->next_op_id++;
	TAILQ_INSERT_TAIL(&pol->ops, op, link);
}

static void end_break_locked(struct policy *pol, struct policy_op *op)
{
	lock_assert_held(&pol->pins.lock);
	if (op->brk_active) {
		op->brk_active = false;
		pin_break_end_locked(&pol->pins, &op->brk);
	}
}

static void set_break_locked(struct policy *pol, struct policy_op *op, uint64_t lblk, uint64_t n)
{
	lock_assert_held(&pol->pins.lock);
	op->brk.ino = op->f.ino;
	op->brk.lblk = lblk;
	op->brk.n = n;
	op->brk.wait_id = op->f.id;
	if (!op->brk_active) {
		op->brk_active = true;
		pin_break_begin_locked(&pol->pins, &op->brk);
	}
}

static int decide_locked(struct policy *pol, struct policy_op *op, struct inode *ip, uint64_t lblk, uint64_t n)
{
	lock_assert_held(&pol->pins.lock);
	struct daxfs_free *f = &op->f;
	uint64_t now = util_now_ns();
	bool pinned = false;
	int ret;

	pin_expire_locked(&pol->pins, now, bshift(pol));
	f->pol = pol;
	if (f->attempt++ == 0)
		f->started_ns = now;
	if (!f->id)
		f->id = pol->next_op_id++;
	f->ino = ip->ino;
	f->lblk = lblk;
	f->n = n;
	if ((ret = media_ranges(ip, lblk, n, &f->ranges, &f->nranges, false)))
		goto done;
	if (op->interrupted) {
		ret = -EINTR;
		goto done;
	}
	for (uint32_t i = 0; i < f->nranges && !pinned; i++)
		pinned = pin_any_locked(&pol->pins, f->ranges[i].pblk, f->ranges[i].len);
	if (!pinned)
		goto done;	/* nothing to decide: the blocks just go */
	f->wait_until = 0;
	f->scope = DAXFS_BREAK_RANGE;
	ret = pol->cur->ops->before_free(pol->cur, f);
	if (ret == DAXFS_WAIT) {
		register_locked(pol, op);
		op->ready = false;
		if (f->scope == DAXFS_BREAK_FILE)
			set_break_locked(pol, op, 0, UINT64_MAX);
		else
			set_break_locked(pol, op, lblk, n);
		if (!op->waited) {
			op->waited = true;
			STAT_ADD(pol, frees_waited, 1);
			TRACE(&pol->fs->trace, "wait_start", "\"wait\":%llu,\"kind\":\"%s\",\"ino\":%llu,\"pid\":%d",
			      (unsigned long long)f->id, daxfs_wait_str(op->kind), (unsigned long long)f->ino, op->pid);
		}
		return -POLICY_EPARK;
	}
	if (ret > 0) {
		fprintf(stderr, "daxfs: policy %s: before_free answered %d; failing the operation with EIO\n",
			pol->cur->ops->name, ret);
		ret = -EIO;
	}
done:
	end_break_locked(pol, op);
	if (ret == -EINTR)
		STAT_ADD(pol, waits_interrupted, 1);
	else if (ret < 0)
		STAT_ADD(pol, frees_failed, 1);
	return ret;
}

/* Block the calling thread until op may decide again (callers that cannot park).  Lock held. */
static void wait_blocking_locked(struct policy *pol, struct policy_op *op)
{
	struct pin_table *tab = &pol->pins;

	lock_assert_held(&pol->pins.lock);
	register_locked(pol, op);
	while (!op->ready && !op->interrupted) {
		uint64_t now = util_now_ns(), next = op->f.wait_until;

		if (tab->next_deadline_ns && (!next || tab->next_deadline_ns < next))
			next = tab->next_deadline_ns;
		if (next && now >= next)
			break;
		if (next)
			lock_wait_until(&tab->changed, &tab->lock, next);
		else
			lock_wait(&tab->changed, &tab->lock);
	}
	pin_expire_locked(tab, util_now_ns(), bshift(pol));
}

static void unregister_locked(struct policy *pol, struct policy_op *op)
{
	lock_assert_held(&pol->pins.lock);
	end_break_locked(pol, op);
	if (op->registered) {
		TAILQ_REMOVE(&pol->ops, op, link);
		op->registered = false;
	}
	if (op->parked) {
		op->parked = false;
		pol->nwaiting--;
	}
}

int policy_before_free(struct fs *fs, struct policy_op *op, struct inode *ip, uint64_t lblk, uint64_t n)
{
	struct policy *pol = fs->pol;
	struct policy_op local;
	int ret;

	if (op) {
		lock_take(&pol->pins.lock);
		ret = decide_locked(pol, op, ip, lblk, n);
		lock_drop(&pol->pins.lock);
		return ret;
	}
	policy_op_init(&local, DAXFS_WAIT_TRUNCATE, 0);
	for (;;) {
		lock_take(&pol->pins.lock);
		ret = decide_locked(pol, &local, ip, lblk, n);
		if (ret != -POLICY_EPARK) {
			unregister_locked(pol, &local);
			lock_drop(&pol->pins.lock);
			break;
		}
		/* Wait with the inode unlocked: the holder may need it to finish and unpin. */
		pthread_rwlock_unlock(&ip->lock);
		wait_blocking_locked(pol, &local);
		lock_drop(&pol->pins.lock);
		pthread_rwlock_wrlock(&ip->lock);
	}
	free(local.f.ranges);
	return ret;
}

void policy_park(struct fs *fs, struct policy_op *op, void (*resume)(void *arg), void *arg)
{
	struct policy *pol = fs->pol;

	lock_take(&pol->pins.lock);
	register_locked(pol, op);
	op->resume = resume;
	op->arg = arg;
	op->parked = true;
	if (pol->stopping)
		op->interrupted = op->ready = true;	/* parked after policy_stop interrupted the others */
	pol->nwaiting++;
	/* Something may have changed between the decision and now: the worker looks at once. */
	kick(pol);
	lock_drop(&pol->pins.lock);
}

void policy_interrupt(struct fs *fs, struct policy_op *op)
{
	struct policy *pol = fs->pol;

	lock_take(&pol->pins.lock);
	op->interrupted = true;
	op->ready = true;
	pthread_cond_broadcast(&pol->pins.changed);
	kick(pol);
	lock_drop(&pol->pins.lock);
}

void policy_op_finish(struct fs *fs, struct policy_op *op)
{
	struct policy *pol = fs->pol;

	lock_take(&pol->pins.lock);
	unregister_locked(pol, op);
	if (op->waited) {
		uint64_t waited = util_now_ns() - op->f.started_ns;

		STAT_ADD(pol, free_wait_ns, waited);
		TRACE(&fs->trace, "wait_end", "\"wait\":%llu,\"kind\":\"%s\",\"ino\":%llu,\"ns\":%llu,\"interrupted\":%s",
		      (unsigned long long)op->f.id, daxfs_wait_str(op->kind), (unsigned long long)op->f.ino,
		      (unsigned long long)waited, op->interrupted ? "true" : "false");
	}
	lock_drop(&pol->pins.lock);
	free(op->f.ranges);
	op->f.ranges = NULL;
	op->f.nranges = 0;
}

/* ---- where freed blocks go ---- */

struct free_run_ctx {
	struct policy *pol;
	struct daxfs_free *f;
	struct tx *tx;
	uint64_t ino;
};

static void free_run(void *arg, uint64_t start, uint64_t len, uint32_t count)
{
	struct free_run_ctx *fr = arg;
	struct policy *pol = fr->pol;
	struct fs *fs = pol->fs;
	unsigned sh = bshift(pol);

	if (count == 0) {
		sbi_free(&fs->sbi, fr->tx, start, len);
		return;
	}
	int verdict = DAXFS_KEEP_BUSY;
	if (pol->cur->ops->pinned_freed)
		verdict = pol->cur->ops->pinned_freed(pol->cur, fr->f, start << sh, len << sh);
	if (verdict == DAXFS_FREE_NOW) {
		/* Back to the allocator while a device may still write them. */
		STAT_ADD(pol, unsafe_frees, 1);
		STAT_ADD(pol, unsafe_blocks, len);
		TRACE(&fs->trace, "unsafe_free", "\"ino\":%llu,\"media\":%llu,\"len\":%llu,\"pins\":%u",
		      (unsigned long long)fr->ino, (unsigned long long)(start << sh), (unsigned long long)(len << sh),
		      count);
		sbi_free(&fs->sbi, fr->tx, start, len);
		return;
	}
	lock_take(&fs->busy.lock);
	int ret = busy_add_locked(&fs->busy, fr->tx, start, len, fr->ino);
	lock_drop(&fs->busy.lock);
	if (ret) {
		/*
		 * No room for the record (out of memory or space for the list): keep the blocks allocated
		 * and unreferenced rather than free pinned blocks.  A leak that fsck reclaims, never
		 * corruption.
		 */
		return;
	}
	TRACE(&fs->trace, "busy_add", "\"ino\":%llu,\"media\":%llu,\"len\":%llu,\"pins\":%u",
	      (unsigned long long)fr->ino, (unsigned long long)(start << sh), (unsigned long long)(len << sh), count);
	tx_defer(fr->tx, on_busy_committed, pol, start, len);
}

static void trace_free(struct policy *pol, enum daxfs_free_cause cause, uint64_t ino, uint64_t pblk, uint64_t len)
{
	static const char *const names[] = { "?", "truncate", "punch", "o_trunc", "unlink" };

	TRACE(&pol->fs->trace, "free", "\"ino\":%llu,\"cause\":\"%s\",\"media\":%llu,\"len\":%llu",
	      (unsigned long long)ino, names[cause <= DAXFS_CAUSE_UNLINK ? cause : 0],
	      (unsigned long long)(pblk << bshift(pol)), (unsigned long long)(len << bshift(pol)));
}

static void sink_op(void *arg, struct tx *tx, struct inode *ip, uint64_t pblk, uint64_t len)
{
	struct policy_op *op = arg;
	struct policy *pol = op->f.pol;
	struct free_run_ctx fr = { pol, &op->f, tx, ip->ino };

	trace_free(pol, op->f.cause, ip->ino, pblk, len);
	lock_take(&pol->pins.lock);
	pin_runs_locked(&pol->pins, pblk, len, free_run, &fr);
	lock_drop(&pol->pins.lock);
}

static void sink_unlink(void *arg, struct tx *tx, struct inode *ip, uint64_t pblk, uint64_t len)
{
	struct policy *pol = arg;
	struct pin_ext range = { .lblk = 0, .pblk = pblk, .len = len };
	struct daxfs_free f = { .pol = pol, .cause = DAXFS_CAUSE_UNLINK, .ino = ip->ino, .ranges = &range,
				.nranges = 1 };
	struct free_run_ctx fr = { pol, &f, tx, ip->ino };

	trace_free(pol, DAXFS_CAUSE_UNLINK, ip->ino, pblk, len);
	lock_take(&pol->pins.lock);
	pin_runs_locked(&pol->pins, pblk, len, free_run, &fr);
	lock_drop(&pol->pins.lock);
}

struct file_free_sink policy_sink(struct fs *fs, struct policy_op *op)
{
	if (op) {
		op->f.pol = fs->pol;
		return (struct file_free_sink){ sink_op, op };
	}
	return (struct file_free_sink){ sink_unlink, fs->pol };
}

/* ---- the holder list: crash quarantine ---- */

static int record_holder(struct policy *pol, struct pin_owner *owner, uint64_t ino)
{
	uint64_t v[3] = { ino, owner->holder.start, (uint64_t)owner->holder.pid };
	struct tx tx;
	uint64_t slot;
	int ret;

	tx_init(&tx, &pol->fs->sbi.journal);
	if ((ret = slots_add(&pol->holders, &tx, v, &slot))) {
		tx_free(&tx);
		return ret;
	}
	if ((ret = sbi_commit(&pol->fs->sbi, &tx)))
		return ret;
	owner->holder_slot = slot;
	owner->recorded = true;
	return 0;
}

static void unrecord_holder(struct policy *pol, uint64_t slot)
{
	struct tx tx;

	tx_init(&tx, &pol->fs->sbi.journal);
	slots_remove(&pol->holders, &tx, slot);
	sbi_commit(&pol->fs->sbi, &tx);	/* failing, the fs is read-only: the record waits for the next mount */
}

static bool slot_is_ghost(struct policy *pol, uint64_t slot)
{
	struct policy_ghost *g;

	LIST_FOREACH(g, &pol->ghosts, link)
		if (g->slot == slot)
			return true;
	return false;
}

/*
 * Every pin is gone and fenced (policy_release_all): no holder of this mount can write through
 * one any more, so none of their records must quarantine anything at the next mount.  Open files
 * not released first still have theirs: clear every record but the quarantine's, whose holders
 * may still write what the crash before this mount left them.  Failing, the fs is read-only and
 * the records wait for the next mount, which drops those of processes gone.
 */
static void forget_live_holders(struct policy *pol)
{
	static const struct daxfs_slot free_slot;
	struct slotlist *sl = &pol->holders;
	struct sbi *s = &pol->fs->sbi;
	struct tx tx;
	int ret = 0;

	if (!pol->holders_loaded || sl->used == pol->nghosts)
		return;
	tx_init(&tx, &s->journal);
	for (size_t bi = 0; bi < sl->nblocks && ret == 0; bi++) {
		const struct daxfs_slot *slot = slots_block(sl, bi);

		for (uint32_t i = 0; i < sl->per_block; i++) {
			uint64_t id = bi * sl->per_block + i;

			if (memcmp(&slot[i], &free_slot, sizeof(free_slot)) && !slot_is_ghost(pol, id))
				slots_remove(sl, &tx, id);
		}
		if (tx_bytes(&tx) > tx_budget(&s->journal) / 2) {
			ret = sbi_commit(s, &tx);
			tx_init(&tx, &s->journal);
		}
	}
	if (ret == 0)
		sbi_commit(s, &tx);
	else
		tx_free(&tx);
}

struct holder_rec {
	uint64_t slot;
	uint64_t v[3];
};

struct holder_recs {
	struct holder_rec *v;
	size_t n, cap;
};

static int collect_holder(void *arg, uint64_t id, const uint64_t v[3])
{
	struct holder_recs *hr = arg;

	if (hr->n == hr->cap) {
		size_t cap = hr->cap ? hr->cap * 2 : 16;
		struct holder_rec *nv = realloc(hr->v, cap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		hr->v = nv;
		hr->cap = cap;
	}
	hr->v[hr->n].slot = id;
	memcpy(hr->v[hr->n].v, v, sizeof(hr->v[hr->n].v));
	hr->n++;
	return 0;
}

/*
 * A holder list that does not load, emptied (recover=reclaim): every record cleared, those that do
 * not verify too, where its chain holds; else its head block written back empty.  pol->holders is
 * then the empty list.  0 or -errno with err.
 */
static int discard_holders(struct policy *pol, char *err, size_t errlen)
{
	static const struct daxfs_slot free_slot;
	struct sbi *s = &pol->fs->sbi;
	struct slotlist *sl = &pol->holders;
	struct tx tx;
	int ret = slots_load_salvage(sl, s, DAXFS_SLOTS_HOLDER, s->sb.holder_head, NULL, NULL, NULL, err, errlen);

	if (ret) {
		/* The chain itself is broken: it starts again from its head block. */
		slots_destroy(sl);
		return slots_reset(sl, s, DAXFS_SLOTS_HOLDER, s->sb.holder_head, err, errlen);
	}
	tx_init(&tx, &s->journal);
	for (size_t bi = 0; bi < sl->nblocks && ret == 0; bi++) {
		const struct daxfs_slot *slot = slots_block(sl, bi);

		for (uint32_t i = 0; i < sl->per_block; i++)
			if (memcmp(&slot[i], &free_slot, sizeof(free_slot)))
				slots_remove(sl, &tx, bi * sl->per_block + i);
		if (tx_bytes(&tx) > tx_budget(&s->journal) / 2) {
			ret = sbi_commit(s, &tx);
			tx_init(&tx, &s->journal);
		}
	}
	if (ret == 0)
		ret = sbi_commit(s, &tx);
	else
		tx_free(&tx);
	if (ret)
		snprintf(err, errlen, "clearing it: %s", strerror(-ret));
	return ret;
}

/* The busy extents that came from inode ino, appended to *ext as pieces after file block `after`. */
static int ghost_busy_pieces(struct fs *fs, uint64_t ino, uint64_t after, struct pin_ext **ext, uint32_t *n)
{
	int ret = 0;

	lock_take(&fs->busy.lock);
	for (struct busy_ext *be = busy_first_locked(&fs->busy); be && !ret; be = busy_next_locked(&fs->busy, be)) {
		if (be->ino != ino)
			continue;
		struct pin_ext *nv = realloc(*ext, (*n + 1) * sizeof(**ext));
		if (!nv) {
			ret = -ENOMEM;
			break;
		}
		*ext = nv;
		/* Not file blocks any more: listed past the file's end, in media order. */
		(*ext)[(*n)++] = (struct pin_ext){ .lblk = after, .pblk = be->start, .len = be->len };
		after += be->len;
	}
	lock_drop(&fs->busy.lock);
	return ret;
}

/* Quarantine what holder h may still write: ino's blocks and the busy extents that left it. */
static int ghost_add(struct policy *pol, const struct holder_id *h, uint64_t ino, uint64_t slot)
{
	struct fs *fs = pol->fs;
	struct policy_ghost *g = calloc(1, sizeof(*g));
	struct pin_ext *ext = NULL;
	uint32_t next = 0;
	uint64_t end = 0;
	struct inode *ip;
	struct pin *p;
	int ret;

	if (!g)
		return -ENOMEM;
	pin_owner_init(&g->owner);
	g->owner.ghost = true;
	g->owner.holder = *h;
	g->holder = *h;
	g->ino = ino;
	g->slot = slot;
	if ((g->pidfd = holder_pidfd(h)) < 0) {
		free(g);
		return 1;	/* it exited meanwhile: nothing to quarantine */
	}
	if (inode_get(fs, ino, &ip) == 0) {
		pthread_rwlock_rdlock(&ip->lock);
		end = DIV_ROUND_UP(ip->d.size, fs_bs(fs));
		ret = S_ISREG(ip->d.mode) ? media_ranges(ip, 0, end ? end : 1, &ext, &next, false) : 0;
		pthread_rwlock_unlock(&ip->lock);
		inode_put(fs, ip);
		if (ret)
			goto fail;
	}
	if ((ret = ghost_busy_pieces(fs, ino, end, &ext, &next)))
		goto fail;
	if (next) {
		lock_take(&pol->pins.lock);
		ret = pin_add_locked(&pol->pins, &g->owner, ino, 0, MAX(end, 1), DAXFS_PIN_WRITE | DAXFS_PIN_LONGTERM,
				     h->pid, 0, 0, ext, next, &p);
		if (ret == 0) {
			g->blocks = pin_held_blocks(p);
			pol->quarantined_blocks += g->blocks;
		}
		lock_drop(&pol->pins.lock);
		if (ret)
			goto fail;
	}
	free(ext);
	LIST_INSERT_HEAD(&pol->ghosts, g, link);
	pol->nghosts++;
	TRACE(&fs->trace, "quarantine", "\"ino\":%llu,\"pid\":%d,\"bytes\":%llu", (unsigned long long)ino, h->pid,
	      (unsigned long long)(g->blocks << bshift(pol)));
	return 0;
fail:
	free(ext);
	close(g->pidfd);
	free(g);
	return ret;
}

/* The ghost's holder exited: let go of what it held (pins.lock held; dropped meanwhile). */
static void ghost_release_locked(struct policy *pol, struct policy_ghost *g)
{
	lock_assert_held(&pol->pins.lock);
	LIST_REMOVE(g, link);
	pol->nghosts--;
	pol->quarantined_blocks -= g->blocks;
	TRACE(&pol->fs->trace, "quarantine_end", "\"ino\":%llu,\"pid\":%d,\"bytes\":%llu", (unsigned long long)g->ino,
	      g->holder.pid, (unsigned long long)(g->blocks << bshift(pol)));
	while (!TAILQ_EMPTY(&g->owner.pins))
		pin_remove_locked(&pol->pins, TAILQ_FIRST(&g->owner.pins));
	lock_drop(&pol->pins.lock);
	unrecord_holder(pol, g->slot);
	lock_take(&pol->pins.lock);
	close(g->pidfd);
	pin_owner_destroy(&g->owner);
	free(g);
}

/* Queue for reclaim every busy extent nothing pins (mount, once the quarantine is in place). */
static void queue_unpinned_busy(struct policy *pol)
{
	struct fs *fs = pol->fs;
	uint64_t now = util_now_ns();

	lock_take(&pol->pins.lock);
	lock_take(&fs->busy.lock);
	for (struct busy_ext *be = busy_first_locked(&fs->busy); be; be = busy_next_locked(&fs->busy, be))
		if (be->state == DAXFS_BUSY_PINNED && !pin_any_locked(&pol->pins, be->start, be->len))
			busy_queue_locked(&fs->busy, be, now);
	lock_drop(&fs->busy.lock);
	lock_drop(&pol->pins.lock);
}

int policy_recover(struct fs *fs, bool quarantine, char *err, size_t errlen)
{
	struct policy *pol = fs->pol;
	struct holder_recs hr = { 0 };
	char msg[256];
	int ret = 0;

	if (fs->sbi.sb.feature_compat & DAXFS_FEATURE_COMPAT_HOLDERS) {
		ret = slots_load(&pol->holders, &fs->sbi, DAXFS_SLOTS_HOLDER, fs->sbi.sb.holder_head, collect_holder, &hr,
				 msg, sizeof(msg));
		if (ret && !quarantine) {
			/* recover=reclaim drops every record anyway: a corrupt list is no reason not to mount. */
			fprintf(stderr, "daxfs: %s: holder list: %s: discarded (recover=reclaim)\n", fs->sbi.media.path,
				msg);
			slots_destroy(&pol->holders);
			hr.n = 0;
			ret = discard_holders(pol, msg, sizeof(msg));
		}
		if (ret) {
			snprintf(err, errlen, "holder list: %s%s", msg,
				 quarantine && ret == -EUCLEAN ?
					 " (fsck.daxfs -y drops bad records; -o recover=reclaim discards the list)" : "");
			free(hr.v);
			return ret;
		}
		pol->holders_loaded = true;
	} else if (quarantine) {
		fprintf(stderr, "daxfs: %s: made before holder lists (format 1.0): no crash quarantine\n",
			fs->sbi.media.path);
	}
	for (size_t i = 0; i < hr.n && ret == 0; i++) {
		struct holder_id h = { .pid = (int32_t)hr.v[i].v[2], .start = hr.v[i].v[1] };
		int g = 1;

		if (quarantine && hr.v[i].v[2] > 0 && hr.v[i].v[2] <= INT32_MAX && holder_alive(&h))
			g = ghost_add(pol, &h, hr.v[i].v[0], hr.v[i].slot);
		if (g < 0) {
			snprintf(err, errlen, "quarantine of pid %d: %s", h.pid, strerror(-g));
			ret = g;
		} else if (g > 0) {
			unrecord_holder(pol, hr.v[i].slot);	/* gone, or not quarantining: forget it */
		}
	}
	free(hr.v);
	if (ret == 0)
		queue_unpinned_busy(pol);
	return ret;
}

/* ---- pins ---- */

/* Holes of file blocks [lblk, last], to undo a failed pin's allocation. */
static int collect_holes(const struct inode *ip, uint64_t lblk, uint64_t last, struct pin_ext **out, uint32_t *n)
{
	struct pin_ext *v = NULL;
	uint32_t cnt = 0;
	int ret = media_ranges(ip, lblk, last - lblk + 1, &v, &cnt, true);
	uint32_t k = 0;

	if (ret)
		return ret;
	for (uint32_t i = 0; i < cnt; i++)
		if (v[i].pblk == PIN_HOLE)
			v[k++] = v[i];
	*out = v;
	*n = k;
	return 0;
}

/* Take back what a failed pin allocated: the blocks were holes before it, and nobody pins them. */
static void undo_fill(struct fs *fs, struct inode *ip, const struct pin_ext *holes, uint32_t n)
{
	struct file_free_sink direct = file_free_direct(fs);

	for (uint32_t i = 0; i < n; i++)
		file_unmap(fs, ip, holes[i].lblk, holes[i].len, &direct);
}

/* Blocks of file blocks [lblk, lblk + n) of ip that are mapped (not holes). */
static uint64_t mapped_blocks(const struct inode *ip, uint64_t lblk, uint64_t n)
{
	struct emap_cursor c;
	struct daxfs_extent e;
	uint64_t end = lblk + n, mapped = 0;

	for (bool more = emap_seek(ip, lblk, &c, &e); more && e.lblk < end; more = emap_next(ip, &c, &e))
		if (e.lblk + e.len > lblk)
			mapped += MIN(end, e.lblk + e.len) - MAX(lblk, e.lblk);
	return mapped;
}

/*
 * The mount's rules, then the policy's, for a pin about to be taken (pins.lock held): nblocks from
 * lblk, of which it will hold `holds` (what the user's limit counts, as the charge does).  0 or
 * -errno.
 */
static int admit_locked(struct policy *pol, const struct inode *ip, const struct policy_pin_args *a, uint64_t lblk,
			uint64_t nblocks, uint64_t holds, bool cap_lease, struct pin_owner *owner)
{
	lock_assert_held(&pol->pins.lock);
	struct pin_table *tab = &pol->pins;
	bool privileged = a->uid == 0 || a->uid == ip->d.uid || cap_lease;
	int ret = 0;

	if ((a->flags & DAXFS_PIN_LONGTERM) && pol->admission == POLICY_ADMIT_DENY_LONGTERM)
		ret = -EOPNOTSUPP;
	else if ((a->flags & DAXFS_PIN_LONGTERM) && !(a->flags & DAXFS_PIN_REVOCABLE) &&
		 pol->admission == POLICY_ADMIT_REVOCABLE_ONLY)
		ret = -EOPNOTSUPP;
	else if ((pol->cur->ops->flags & DAXFS_POLICY_F_STALLS) && !privileged)
		ret = -EPERM;	/* it could stall the owner's truncate: that takes ownership or CAP_LEASE */
	if (ret == 0 && pol->cur->ops->admit) {
		struct daxfs_pin_request req = { .ino = ip->ino, .offset = lblk << bshift(pol),
						 .length = nblocks << bshift(pol), .flags = a->flags, .uid = a->uid,
						 .pid = owner->holder.pid ? owner->holder.pid : a->pid,
						 .file_uid = ip->d.uid, .privileged = privileged };
		ret = pol->cur->ops->admit(pol->cur, &req);
		if (ret > 0)
			ret = -EPERM;
	}
	if (ret == 0 && a->uid != 0 && pol->max_user_blocks != UINT64_MAX) {
		struct policy_user *u = user_of(pol, a->uid, false);

		if ((u ? u->blocks : 0) + holds > pol->max_user_blocks)
			ret = -EDQUOT;
	}
	if (ret == 0 && tab->max_per_owner && owner->npins >= tab->max_per_owner)
		ret = -EMFILE;
	if (ret == 0 && tab->max_total && tab->npins >= tab->max_total)
		ret = -ENFILE;
	if (ret)
		tab->refused++;
	return ret;
}

/* Which process holds the owner's pins: resolved once per thread that pins through it. */
static void identify(struct policy *pol, struct pin_owner *owner, pid_t tid)
{
	struct holder_id h = { 0 };
	bool known;

	lock_take(&pol->pins.lock);
	known = owner->holder.pid && owner->holder_tid == tid;
	lock_drop(&pol->pins.lock);
	if (known || holder_identify(tid, &h))
		return;
	lock_take(&pol->pins.lock);
	if (!owner->holder.pid)
		owner->holder = h;
	owner->holder_tid = tid;
	lock_drop(&pol->pins.lock);
}

int policy_pin(struct fs *fs, struct pin_owner *owner, struct inode *ip, const struct policy_pin_args *a,
	       struct policy_op *op, uint64_t *pin_id)
{
	struct policy *pol = fs->pol;
	struct pin_table *tab = &pol->pins;
	unsigned sh = bshift(pol);
	struct pin_ext *ext = NULL, *holes = NULL;
	uint32_t next = 0, nholes = 0;
	bool write = a->flags & DAXFS_PIN_WRITE;
	struct policy_op local;
	struct pin *p;
	int ret;

	if ((a->flags & ~DAXFS_PIN_FLAGS) || a->length == 0)
		return -EINVAL;
	if (a->signo && !holder_signal_allowed(a->signo))
		return -EINVAL;
	if (write && !a->writable)
		return -EBADF;
	if (write && (ret = sbi_writable(&fs->sbi)))
		return ret;
	identify(pol, owner, a->pid);
	if (!op) {
		policy_op_init(&local, DAXFS_WAIT_PIN, a->pid);
		op = &local;
	}
	op->kind = DAXFS_WAIT_PIN;
again:
	pthread_rwlock_wrlock(&ip->lock);
	if (!S_ISREG(ip->d.mode) || ip->deleted) {
		ret = -EINVAL;
		goto out;
	}
	if (a->offset >= ip->d.size || a->length > ip->d.size - a->offset) {
		ret = -EINVAL;	/* pins cover file data only: nothing beyond EOF */
		goto out;
	}
	uint64_t lblk = a->offset >> sh, last = (a->offset + a->length - 1) >> sh, nb = last - lblk + 1;
	/* CAP_LEASE matters only for someone else's file; reading it costs a /proc read. */
	bool cap = a->uid != 0 && a->uid != ip->d.uid && holder_has_cap_lease(a->pid);
	/* What the pin will hold: every block for a write pin (it fills the holes), the mapped ones for a read pin. */
	uint64_t holds = write || a->uid == 0 || pol->max_user_blocks == UINT64_MAX ? nb : mapped_blocks(ip, lblk, nb);

	lock_take(&tab->lock);
	if (op->interrupted) {
		/* Its caller gave up waiting behind a break (or the daemon is stopping): as a free would. */
		STAT_ADD(pol, waits_interrupted, 1);
		lock_drop(&tab->lock);
		ret = -EINTR;
		goto out;
	}
	pin_expire_locked(tab, util_now_ns(), sh);
	ret = admit_locked(pol, ip, a, lblk, nb, holds, cap, owner);
	struct pin_break *brk = ret ? NULL : pin_break_find_locked(tab, ip->ino, lblk, nb);
	if (brk) {
		/* A free is breaking this range: as the kernel's unmap-first order, new pins wait for it. */
		op->f.ino = ip->ino;
		op->f.lblk = lblk;
		op->f.n = nb;
		op->blocker_wait = brk->wait_id;
		op->ready = false;
		if (!op->f.started_ns)
			op->f.started_ns = util_now_ns();
		register_locked(pol, op);
		if (op == &local) {
			pthread_rwlock_unlock(&ip->lock);
			wait_blocking_locked(pol, op);
			lock_drop(&tab->lock);
			goto again;
		}
		ret = -POLICY_EPARK;
	}
	lock_drop(&tab->lock);
	if (ret)
		goto out;

	/* A write pin maps holes as a DAX write fault would; a read pin leaves them (the zero page). */
	if (write) {
		if ((ret = collect_holes(ip, lblk, last, &holes, &nholes)))
			goto out;
		if (nholes && (ret = file_fill_holes(fs, ip, lblk, last))) {
			undo_fill(fs, ip, holes, nholes);
			goto out;
		}
	}
	if ((ret = media_ranges(ip, lblk, nb, &ext, &next, true)))
		goto undo;
	lock_take(&tab->lock);
	ret = pin_add_locked(tab, owner, ip->ino, lblk, nb, a->flags, a->pid, a->uid, a->signo, ext, next, &p);
	if (ret == 0) {
		charge(pol, p);
		*pin_id = p->id;
	}
	lock_drop(&tab->lock);
	/*
	 * A device may write through a write pin for as long as its holder lives, and the holder may
	 * outlive this daemon: put it on the persistent holder list, so that a mount after a crash
	 * keeps what it pinned out of reuse while it lives (policy_recover).
	 */
	if (ret == 0 && write && !owner->recorded && pol->holders_loaded && owner->holder.pid) {
		int rr = record_holder(pol, owner, ip->ino);

		if (rr) {
			policy_unpin(fs, owner, *pin_id);
			ret = rr;
		}
	}
undo:
	if (ret && nholes)
		undo_fill(fs, ip, holes, nholes);
out:
	pthread_rwlock_unlock(&ip->lock);
	if (op == &local) {
		lock_take(&tab->lock);
		unregister_locked(pol, op);
		lock_drop(&tab->lock);
	}
	free(ext);
	free(holes);
	return ret;
}

static void fill_extents(const struct pin *p, uint32_t start, struct daxfs_pin_extent *out, uint32_t max,
			 uint32_t *n, unsigned sh)
{
	uint32_t k = 0;

	for (uint32_t i = start; i < p->next && k < max; i++, k++) {
		out[k].file_off = p->ext[i].lblk << sh;
		out[k].media_off = p->ext[i].pblk == PIN_HOLE ? DAXFS_MEDIA_ZERO : p->ext[i].pblk << sh;
		out[k].len = p->ext[i].len << sh;
	}
	*n = k;
}

int policy_pin_extents(struct fs *fs, struct pin_owner *owner, uint64_t pin_id, uint32_t start,
		       struct daxfs_pin_extent *out, uint32_t max, uint32_t *nreturned, uint64_t *off, uint64_t *len)
{
	struct pin_table *tab = &fs->pol->pins;
	unsigned sh = bshift(fs->pol);
	struct pin *p;
	int ret;

	lock_take(&tab->lock);
	ret = pin_lookup_locked(tab, owner, pin_id, &p);
	if (ret == 0) {
		fill_extents(p, start, out, max, nreturned, sh);
		if (off)
			*off = p->lblk << sh;
		if (len)
			*len = p->nblocks << sh;
		ret = (int)p->next;
	}
	lock_drop(&tab->lock);
	return ret;
}

int policy_pin_status(struct fs *fs, struct pin_owner *owner, struct daxfs_ioc_pin_status *st)
{
	struct pin_table *tab = &fs->pol->pins;
	unsigned sh = bshift(fs->pol);
	struct pin *p;
	int ret;

	lock_take(&tab->lock);
	pin_expire_locked(tab, util_now_ns(), sh);
	ret = pin_lookup_locked(tab, owner, st->pin_id, &p);
	if (ret == 0) {
		uint64_t now = util_now_ns();

		st->state = p->state;
		st->offset = p->lblk << sh;
		st->length = p->nblocks << sh;
		st->flags = p->flags;
		st->nextents = p->next;
		st->deadline_ns = p->state == DAXFS_PIN_REVOKING && p->deadline_ns > now ? p->deadline_ns - now : 0;
		st->gen = p->gen;
		st->invalidated = pin_invalidated_ranges(p);
	}
	lock_drop(&tab->lock);
	return ret;
}

int policy_unpin(struct fs *fs, struct pin_owner *owner, uint64_t pin_id)
{
	struct pin_table *tab = &fs->pol->pins;
	struct pin *p;
	int ret;

	lock_take(&tab->lock);
	ret = pin_lookup_locked(tab, owner, pin_id, &p);
	if (ret == 0)
		pin_remove_locked(tab, p);
	lock_drop(&tab->lock);
	return ret;
}

/* The owner's pins are gone: forget its events and its holder record. */
static void owner_done(struct fs *fs, struct pin_owner *owner)
{
	lock_take(&fs->pol->pins.lock);
	pin_owner_destroy(owner);
	lock_drop(&fs->pol->pins.lock);
	/* Its pins are gone, fenced: no device of this file can write any more. */
	if (owner->recorded)
		unrecord_holder(fs->pol, owner->holder_slot);
	owner->recorded = false;
}

void policy_release_owner(struct fs *fs, struct pin_owner *owner)
{
	pin_release_owner(&fs->pol->pins, owner);
	owner_done(fs, owner);
}

void policy_drop_owner(struct fs *fs, struct pin_owner *owner)
{
	pin_drop_owner(&fs->pol->pins, owner);
	owner_done(fs, owner);
}

void policy_events(struct fs *fs, struct pin_owner *owner, struct daxfs_ioc_events *ev)
{
	struct pin_table *tab = &fs->pol->pins;

	lock_take(&tab->lock);
	pin_expire_locked(tab, util_now_ns(), bshift(fs->pol));
	uint64_t next_seq;

	ev->count = pin_events_read_locked(owner, ev->from_seq, ev->ev, DAXFS_EVENTS_MAX, &next_seq);
	ev->next_seq = next_seq;
	lock_drop(&tab->lock);
}

int policy_ack(struct fs *fs, struct pin_owner *owner, uint64_t pin_id, uint64_t seq)
{
	struct policy *pol = fs->pol;
	struct pin_table *tab = &pol->pins;
	uint64_t lblk, n;
	struct pin *p;
	int ret;

	lock_take(&tab->lock);
	ret = pin_lookup_locked(tab, owner, pin_id, &p);
	if (ret == 0 && (ret = pin_ack_locked(tab, p, seq, &lblk, &n)) == 0) {
		charge(pol, p);
		if (pol->cur->ops->on_ack)
			pol->cur->ops->on_ack(pol->cur, VIEW(p), lblk << bshift(pol), n << bshift(pol));
	}
	lock_drop(&tab->lock);
	return ret;
}

int policy_fault(struct fs *fs, struct pin_owner *owner, struct inode *ip, struct daxfs_ioc_pin_fault *a)
{
	struct policy *pol = fs->pol;
	struct pin_table *tab = &pol->pins;
	unsigned sh = bshift(pol);
	struct pin_ext *ext = NULL, *holes = NULL;
	uint32_t next = 0, nholes = 0;
	uint64_t pin_lblk = 0, pin_n = 0, lblk, last;
	uint32_t flags = 0;
	struct pin *p;
	int ret;

	pthread_rwlock_wrlock(&ip->lock);
	lock_take(&tab->lock);
	ret = pin_lookup_locked(tab, owner, a->pin_id, &p);
	if (ret == 0 && p->state == DAXFS_PIN_REVOKED)
		ret = -ENOLINK;
	if (ret == 0 && p->ino != ip->ino)
		ret = -EBADF;
	if (ret == 0) {
		pin_lblk = p->lblk;
		pin_n = p->nblocks;
		flags = p->flags;
		if (a->length == 0 || a->offset >= pin_n << sh || a->length > (pin_n << sh) - a->offset)
			ret = -EINVAL;
	}
	lock_drop(&tab->lock);
	if (ret)
		goto out;
	lblk = pin_lblk + (a->offset >> sh);
	last = pin_lblk + ((a->offset + a->length - 1) >> sh);
	if ((last << sh) >= ip->d.size) {
		ret = -ENXIO;	/* the range is gone with the end of the file */
		goto out;
	}
	if ((flags & DAXFS_PIN_WRITE) && (ret = sbi_writable(&fs->sbi)) == 0) {
		if ((ret = collect_holes(ip, lblk, last, &holes, &nholes)) == 0 && nholes &&
		    (ret = file_fill_holes(fs, ip, lblk, last)))
			undo_fill(fs, ip, holes, nholes);
	}
	if (ret || (ret = media_ranges(ip, lblk, last - lblk + 1, &ext, &next, true)))
		goto out;
	lock_take(&tab->lock);
	/* The pin may have gone while the file was being filled: look again. */
	ret = pin_lookup_locked(tab, owner, a->pin_id, &p);
	if (ret == 0 && p->state == DAXFS_PIN_REVOKED)
		ret = -ENOLINK;
	if (ret == 0 && (ret = pin_refault_locked(tab, p, lblk, last - lblk + 1, ext, next)) == 0) {
		charge(pol, p);
		a->gen = p->gen;
		a->nextents = p->next;
		uint32_t k = 0;
		for (uint32_t i = 0; i < next && k < DAXFS_PIN_EXT_MAX; i++, k++) {
			a->ext[k].file_off = ext[i].lblk << sh;
			a->ext[k].media_off = ext[i].pblk == PIN_HOLE ? DAXFS_MEDIA_ZERO : ext[i].pblk << sh;
			a->ext[k].len = ext[i].len << sh;
		}
		a->nreturned = k;
	}
	lock_drop(&tab->lock);
	if (ret && nholes)
		undo_fill(fs, ip, holes, nholes);
out:
	pthread_rwlock_unlock(&ip->lock);
	free(ext);
	free(holes);
	return ret;
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
	lock_take(&pol->pins.lock);
	pin_expire_locked(&pol->pins, util_now_ns(), bshift(pol));
	st->pins_active = pol->pins.npins;
	st->pins_created = pol->pins.created;
	st->pins_released = pol->pins.released;
	st->pins_revoked = pol->pins.revoked;
	st->pins_refused = pol->pins.refused;
	st->pinned_blocks = pol->pins.pinned_blocks;
	st->waiting = pol->nwaiting;
	st->invalidations = pol->pins.invalidations;
	st->invalidations_acked = pol->pins.acks;
	st->events = pol->pins.events;
	st->revoked_held_blocks = pol->pins.held_revoked_blocks;
	st->quarantined_blocks = pol->quarantined_blocks;
	lock_take(&fs->busy.lock);
	st->busy_extents = fs->busy.nextents;
	st->busy_blocks = fs->busy.nblocks;
	st->busy_created = fs->busy.created;
	st->reclaim_queued = fs->busy.queued_extents;
	st->reclaimed_extents = fs->reclaim.extents;
	st->reclaimed_blocks = fs->reclaim.blocks;
	st->reclaim_latency_ns_total = fs->reclaim.latency_ns_total;
	st->reclaim_latency_ns_max = fs->reclaim.latency_ns_max;
	lock_drop(&fs->busy.lock);
	lock_drop(&pol->pins.lock);
	st->frees_waited = __atomic_load_n(&s->frees_waited, __ATOMIC_RELAXED);
	st->free_wait_ns_total = __atomic_load_n(&s->free_wait_ns, __ATOMIC_RELAXED);
	st->frees_failed = __atomic_load_n(&s->frees_failed, __ATOMIC_RELAXED);
	st->unsafe_frees = __atomic_load_n(&s->unsafe_frees, __ATOMIC_RELAXED);
	st->unsafe_blocks = __atomic_load_n(&s->unsafe_blocks, __ATOMIC_RELAXED);
	st->dma_ops = __atomic_load_n(&s->dma_ops, __ATOMIC_RELAXED);
	st->dma_bytes = __atomic_load_n(&s->dma_bytes, __ATOMIC_RELAXED);
	st->waits_interrupted = __atomic_load_n(&s->waits_interrupted, __ATOMIC_RELAXED);
	st->enospc_waits = __atomic_load_n(&fs->reclaim.enospc_waits, __ATOMIC_RELAXED);
}

uint32_t policy_list_pins(struct fs *fs, uint32_t start, struct daxfs_pin_info *out, uint32_t max, uint32_t *total)
{
	struct pin_table *tab = &fs->pol->pins;
	unsigned sh = bshift(fs->pol);
	uint64_t now = util_now_ns();
	uint32_t i = 0, n = 0;

	lock_take(&tab->lock);
	pin_expire_locked(tab, now, sh);
	*total = (uint32_t)tab->npins;
	for (struct pin *p = pin_first_locked(tab); p && n < max; p = pin_next_locked(tab, p)) {
		if (i++ < start)
			continue;
		out[n++] = (struct daxfs_pin_info){
			.pin_id = p->id, .ino = p->ino, .offset = p->lblk << sh, .length = p->nblocks << sh,
			.flags = p->flags, .state = p->state, .pid = p->owner->holder.pid ? p->owner->holder.pid : p->pid,
			.nextents = p->next, .age_ns = now - p->created_ns, .uid = p->uid, .gen = p->gen,
			.deadline_ns = p->state == DAXFS_PIN_REVOKING && p->deadline_ns > now ? p->deadline_ns - now : 0,
		};
	}
	lock_drop(&tab->lock);
	return n;
}

uint32_t policy_list_busy(struct fs *fs, uint32_t start, struct daxfs_busy_info *out, uint32_t max, uint32_t *total)
{
	struct pin_table *tab = &fs->pol->pins;
	unsigned sh = bshift(fs->pol);
	uint64_t now = util_now_ns();
	uint32_t i = 0, n = 0;

	lock_take(&tab->lock);
	lock_take(&fs->busy.lock);
	*total = (uint32_t)fs->busy.nextents;
	for (struct busy_ext *be = busy_first_locked(&fs->busy); be && n < max; be = busy_next_locked(&fs->busy, be)) {
		if (i++ < start)
			continue;
		out[n++] = (struct daxfs_busy_info){
			.media_off = be->start << sh, .len = be->len << sh, .ino = be->ino, .state = be->state,
			.pins = pin_max_count_locked(tab, be->start, be->len), .age_ns = now - be->created_ns,
		};
	}
	lock_drop(&fs->busy.lock);
	lock_drop(&tab->lock);
	return n;
}

struct blocker_ctx {
	uint64_t pin;
	int32_t pid;
	uint32_t n;
};

static int note_blocker(void *arg, const struct daxfs_pin_view *v)
{
	struct blocker_ctx *b = arg;

	if (PIN(v)->state == DAXFS_PIN_REVOKED)
		return 0;
	if (!b->n++) {
		b->pin = PIN(v)->id;
		b->pid = daxfs_pin_pid(v);
	}
	return 0;
}

uint32_t policy_list_waits(struct fs *fs, uint32_t start, struct daxfs_wait_info *out, uint32_t max,
			   uint32_t *total)
{
	struct policy *pol = fs->pol;
	unsigned sh = bshift(pol);
	uint64_t now = util_now_ns();
	struct policy_op *op;
	uint32_t i = 0, n = 0;

	lock_take(&pol->pins.lock);
	*total = 0;
	TAILQ_FOREACH(op, &pol->ops, link) {
		if (!op->parked && !op->brk_active && op->kind != DAXFS_WAIT_PIN)
			continue;
		(*total)++;
		if (i++ < start || n == max)
			continue;
		struct blocker_ctx b = { 0 };
		if (op->kind != DAXFS_WAIT_PIN)
			daxfs_free_for_each_pin(&op->f, note_blocker, &b);
		uint64_t len = op->f.n > (UINT64_MAX >> sh) ? UINT64_MAX : op->f.n << sh;
		out[n++] = (struct daxfs_wait_info){
			.wait_id = op->f.id, .kind = op->kind, .pid = op->pid, .ino = op->f.ino,
			.offset = op->f.lblk << sh, .length = len, .age_ns = now - op->f.started_ns,
			.deadline_ns = op->f.wait_until > now ? op->f.wait_until - now : 0, .blocker_pin = b.pin,
			.blocker_pid = b.pid, .npins = b.n, .blocker_wait = op->blocker_wait,
		};
	}
	lock_drop(&pol->pins.lock);
	return n;
}
