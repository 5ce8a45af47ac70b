/* SPDX-License-Identifier: MIT */
/*
 * daxfs: mount a daxfs image with FUSE.
 *
 *   daxfs [-f] [-d] [-s] [-o opt,...] IMAGE MOUNTPOINT
 *
 * The image is opened, checked and recovered before anything is mounted, so a bad image fails with
 * a message on the terminal; only then does the daemon mount, detach and serve.
 */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <mntent.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"
#include "fuse_uring.h"
#include "mount.h"
#include "policy.h"
#include "util.h"
#include "mount.h"

struct options {
	char *image;
	char *cache;
	char *policy;
	char *reclaim;
	char *trace;
	char *recover;
	char *max_pinned_per_user;
	char *splice;
	char *transport;
	unsigned long enospc_wait_ms;
	unsigned max_pins;
	unsigned max_pins_per_file;
	unsigned max_write;
	/* the policy's parameters, gathered from -o key=value */
	const struct daxfs_policy_ops *ops;
	char params[DAXFS_POLICY_PARAMS_MAX];
	size_t params_len;
	int bad_param;
	double attr_timeout;
	double entry_timeout;
	int readonly;
	int nonopt;
	int help;
	int version;
};

enum { KEY_HELP, KEY_VERSION, KEY_RO, KEY_RW };

#define OPT(t, p) { t, offsetof(struct options, p), 1 }
static const struct fuse_opt option_spec[] = {
	{ "cache=%s", offsetof(struct options, cache), 0 },
	{ "policy=%s", offsetof(struct options, policy), 0 },
	{ "reclaim=%s", offsetof(struct options, reclaim), 0 },
	{ "trace=%s", offsetof(struct options, trace), 0 },
	{ "recover=%s", offsetof(struct options, recover), 0 },
	{ "max_pinned_per_user=%s", offsetof(struct options, max_pinned_per_user), 0 },
	{ "splice=%s", offsetof(struct options, splice), 0 },
	{ "max_write=%u", offsetof(struct options, max_write), 0 },
	{ "transport=%s", offsetof(struct options, transport), 0 },
	{ "enospc_wait_ms=%lu", offsetof(struct options, enospc_wait_ms), 0 },
	{ "max_pins=%u", offsetof(struct options, max_pins), 0 },
	{ "max_pins_per_file=%u", offsetof(struct options, max_pins_per_file), 0 },
	{ "attr_timeout=%lf", offsetof(struct options, attr_timeout), 0 },
	{ "entry_timeout=%lf", offsetof(struct options, entry_timeout), 0 },
	FUSE_OPT_KEY("ro", KEY_RO),
	FUSE_OPT_KEY("rw", KEY_RW),
	/* What daxfs does anyway; accepted for fstab lines (libfuse 3.14 rejects them). */
	FUSE_OPT_KEY("relatime", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("nodiratime", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("-h", KEY_HELP),
	FUSE_OPT_KEY("--help", KEY_HELP),
	FUSE_OPT_KEY("-V", KEY_VERSION),
	FUSE_OPT_KEY("--version", KEY_VERSION),
	FUSE_OPT_END
};

static void print_params(const struct daxfs_policy_param *p)
{
	for (; p && p->name; p++) {
		char key[64];

		snprintf(key, sizeof(key), "%s=%s", p->name, p->def);
		printf("        %-26s %s\n", key, p->help ? p->help : "");
	}
}

static void usage(const char *prog)
{
	printf("usage: %s [-f] [-d] [-s] [-o opt,...] IMAGE MOUNTPOINT\n"
	       "\n"
	       "Mount the daxfs image IMAGE (a file, /dev/daxN.M or /dev/pmemN) at MOUNTPOINT.\n"
	       "\n"
	       "    -f                     stay in the foreground\n"
	       "    -d                     debug: print every FUSE request (implies -f)\n"
	       "    -s                     single-threaded request loop\n"
	       "    -h, --help             this help\n"
	       "    -V, --version          the version\n"
	       "\n"
	       "daxfs options (-o):\n"
	       "    cache=dax|page         dax (default): no page cache, every read and write\n"
	       "                           is a load or store on the media; shared mmap goes\n"
	       "                           through the page cache.  page: the kernel page cache\n"
	       "                           in front of the media\n"
	       "    attr_timeout=SECONDS   how long the kernel caches attributes (default 1)\n"
	       "    entry_timeout=SECONDS  how long the kernel caches names (default 1)\n"
	       "    splice=write|read|all|none  the data of writes (write) or of read replies (read)\n"
	       "                           moves through a pipe: spliced from /dev/fuse and read\n"
	       "                           into the media, or spliced from the image file; the\n"
	       "                           others are copied through a buffer (default none)\n"
	       "    max_write=BYTES        largest write request, 4096 to 1048576 (default); a\n"
	       "                           write spliced whole needs a pipe of max_write + 4 KiB,\n"
	       "                           rounded up to a power of two (fs.pipe-max-size)\n"
	       "    ro                     mount read-only (the journal must not need replay)\n"
	       "    relatime, nodiratime   accepted (fstab): daxfs updates file atimes as relatime\n"
	       "                           does and never updates directory atimes\n"
	       "    reclaim=zero|discard   scrub reclaimed busy blocks by zeroing (default) or by\n"
	       "                           punching them out of the image file (io_uring fallocate)\n"
	       "    enospc_wait_ms=N       a full device waits up to N ms for reclaim in flight (default 1000)\n"
	       "    trace=FILE             write the event trace (JSON lines) to FILE\n"
	       "    recover=quarantine|reclaim  after a daemon crash: keep what live pin holders may still\n"
	       "                           write out of reuse until they exit (quarantine, the default),\n"
	       "                           or reclaim every busy extent at once (reclaim)\n"
	       "    transport=dev|auto|uring  how requests arrive: read()/writev() on /dev/fuse (dev, the\n"
	       "                           default), or FUSE over io_uring, a queue and a pinned thread\n"
	       "                           per CPU (uring: or fail; auto: io_uring when the kernel offers\n"
	       "                           it, /sys/module/fuse/parameters/enable_uring, else dev)\n"
	       "\n"
	       "pins (-o):\n"
	       "    max_pins=N             pins in total (ENFILE beyond; default 1000000)\n"
	       "    max_pins_per_file=N    pins per open file (EMFILE beyond; default 65536)\n"
	       "    max_pinned_per_user=SIZE  bytes a user other than root may pin (EDQUOT beyond;\n"
	       "                           K, M, G, T suffixes; default an eighth of the device, 0: no limit)\n"
	       "\n"
	       "policy (-o): what happens when pinned blocks leave a file\n"
	       "    policy=NAME|/PATH.so   a built-in policy (default busy) or a policy object\n", prog);
	for (size_t i = 0; policy_builtins[i]; i++) {
		printf("      %-24s %s\n", policy_builtins[i]->name, policy_builtins[i]->summary);
		print_params(policy_builtins[i]->params);
	}
	printf("    parameters every policy takes:\n");
	static const struct daxfs_policy_param common[] = {
		{ "pins", "allow", "long-term pins: allow, deny-longterm or revocable-only" },
		{ "grace_ms", "1000", "revocation: how long a holder has to unpin after a lease break" },
		{ "wait_timeout_ms", "0", "how long a truncate waits for pins before EBUSY (0: no limit)" },
		{ NULL, NULL, NULL },
	};
	print_params(common);
	printf("    A policy object's own parameters are given the same way (-o key=value).\n"
	       "\n"
	       "FUSE options (-o): allow_other, default_permissions, max_threads=N, clone_fd,\n"
	       "max_idle_threads=N and the other options of mount.fuse3(8).\n");
}

/* Is key a parameter of ops or one every policy takes? */
static bool is_policy_param(const struct daxfs_policy_ops *ops, const char *key, size_t len)
{
	static const char *const common[] = { "pins", "grace_ms", "wait_timeout_ms" };

	for (size_t i = 0; i < ARRAY_SIZE(common); i++)
		if (strlen(common[i]) == len && strncmp(common[i], key, len) == 0)
			return true;
	for (const struct daxfs_policy_param *p = ops ? ops->params : NULL; p && p->name; p++)
		if (strlen(p->name) == len && strncmp(p->name, key, len) == 0)
			return true;
	return false;
}

/*
 * The policy named among the -o options, looked at before parsing them: its parameters are -o
 * options too, and which they are depends on it.
 */
static char *prescan_policy(int argc, char *argv[])
{
	char *found = NULL;

	for (int i = 1; i < argc; i++) {
		const char *o = NULL;

		if (strcmp(argv[i], "-o") == 0 && i + 1 < argc)
			o = argv[++i];
		else if (strncmp(argv[i], "-o", 2) == 0)
			o = argv[i] + 2;
		if (!o)
			continue;
		char *copy = strdup(o), *save = NULL;
		for (char *t = copy ? strtok_r(copy, ",", &save) : NULL; t; t = strtok_r(NULL, ",", &save))
			if (strncmp(t, "policy=", 7) == 0) {
				free(found);
				found = strdup(t + 7);
			}
		free(copy);
	}
	return found;
}

/* A size with an optional K, M, G or T suffix. */
static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *s == '-')
		return -1;
	unsigned shift = *end == 'K' ? 10 : *end == 'M' ? 20 : *end == 'G' ? 30 : *end == 'T' ? 40 : 0;
	if (shift)
		end++;
	if (*end || (shift && v > (UINT64_MAX >> shift)))
		return -1;
	*out = (uint64_t)v << shift;
	return 0;
}

/* Where the image is mounted now, if it is (a daemon holding it while it exits is not mounted). */
static bool mounted_at(const char *image, char *where, size_t len)
{
	char real[PATH_MAX];
	struct mntent *me;
	bool found = false;
	FILE *f;

	if (!realpath(image, real) || !(f = setmntent("/proc/self/mounts", "r")))
		return false;
	while (!found && (me = getmntent(f)))
		if (strcmp(me->mnt_type, "fuse.daxfs") == 0 && strcmp(me->mnt_fsname, real) == 0) {
			snprintf(where, len, "%s", me->mnt_dir);
			found = true;
		}
	endmntent(f);
	return found;
}

static int opt_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	struct options *o = data;

	(void)outargs;
	switch (key) {
	case FUSE_OPT_KEY_OPT: {
		/* A parameter of the policy: gather it; anything else is libfuse's. */
		const char *eq = strchr(arg, '=');

		if (!eq || !is_policy_param(o->ops, arg, (size_t)(eq - arg)))
			return 1;
		int n = snprintf(o->params + o->params_len, sizeof(o->params) - o->params_len, "%s%s",
				 o->params_len ? "," : "", arg);
		if (n < 0 || (size_t)n >= sizeof(o->params) - o->params_len)
			o->bad_param = 1;
		else
			o->params_len += (size_t)n;
		return 0;
	}
	case FUSE_OPT_KEY_NONOPT:
		/* The first positional argument is ours; the mount point is libfuse's. */
		if (!o->image) {
			o->image = strdup(arg);
			return 0;
		}
		o->nonopt++;
		return 1;
	case KEY_RO:
		o->readonly = 1;
		return 1;
	case KEY_RW:
		o->readonly = 0;
		return 1;
	case KEY_HELP:
		o->help = 1;
		return 0;
	case KEY_VERSION:
		o->version = 1;
		return 0;
	}
	return 1;
}

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct options o = { .attr_timeout = 1.0, .entry_timeout = 1.0, .enospc_wait_ms = 1000,
			     .max_pins = 1000000, .max_pins_per_file = 65536 };
	struct fuse_cmdline_opts cl = { 0 };
	struct daemon d = { .of_lock = PTHREAD_MUTEX_INITIALIZER };
	struct mount_config cfg = { 0 };
	struct fuse_session *se = NULL;
	/* dev until io_uring has a release of use behind it (fuse_uring.h says what it cannot do yet). */
	enum transport transport = TRANSPORT_DEV;
	char err[512], image_abs[PATH_MAX], fsname[PATH_MAX + 64], why[256];
	bool transport_fallback = false;
	char *policy_name = prescan_policy(argc, argv);
	void *handle = NULL;
	int ret = 1;

	if (policy_name && policy_find(policy_name, &o.ops, &handle, err, sizeof(err))) {
		fprintf(stderr, "%s: policy=%s: %s\n", argv[0], policy_name, err);
		free(policy_name);
		return 1;
	}
	if (!policy_name)
		o.ops = daxfs_policy_builtin("busy");
	free(policy_name);
	int parsed = fuse_opt_parse(&args, &o, option_spec, opt_proc);
	if (handle)
		dlclose(handle);	/* mount_open loads it again, for good */
	if (parsed == -1)
		goto out_args;
	if (o.bad_param) {
		fprintf(stderr, "%s: too many policy parameters\n", argv[0]);
		goto out_args;
	}
	if (o.help || o.version) {
		if (o.help)
			usage(argv[0]);
		else
			printf("daxfs %s (libfuse %s)\n", DAXFS_VERSION, fuse_pkgversion());
		ret = 0;
		goto out_args;
	}
	if (!o.image || o.nonopt != 1) {
		fprintf(stderr, "%s: expected IMAGE and MOUNTPOINT (see --help)\n", argv[0]);
		goto out_args;
	}
	if (fuse_parse_cmdline(&args, &cl) != 0)
		goto out_args;
	if (!o.cache || strcmp(o.cache, "dax") == 0) {
		d.cache = CACHE_DAX;
	} else if (strcmp(o.cache, "page") == 0) {
		d.cache = CACHE_PAGE;
	} else {
		fprintf(stderr, "%s: cache=%s: expected dax or page\n", argv[0], o.cache);
		goto out_args;
	}
	if (o.attr_timeout < 0 || o.entry_timeout < 0) {
		fprintf(stderr, "%s: timeouts must not be negative\n", argv[0]);
		goto out_args;
	}
	d.attr_timeout = o.attr_timeout;
	d.entry_timeout = o.entry_timeout;
	if (o.max_write && (o.max_write < 4096 || o.max_write > (1u << 20))) {
		fprintf(stderr, "%s: max_write=%u: expected 4096 to 1048576\n", argv[0], o.max_write);
		goto out_args;
	}
	d.max_write = o.max_write ? o.max_write : 1u << 20;
	d.splice_asked = o.splice != NULL;
	/* Splicing is opt-in: measured (bench/run-fio.sh), it gained writes nothing and cost reads a quarter. */
	if (!o.splice || strcmp(o.splice, "none") == 0) {
		d.splice = 0;
	} else if (strcmp(o.splice, "write") == 0) {
		d.splice = SPLICE_WRITES;
	} else if (strcmp(o.splice, "read") == 0) {
		d.splice = SPLICE_READS;
	} else if (strcmp(o.splice, "all") == 0) {
		d.splice = SPLICE_WRITES | SPLICE_READS;
	} else {
		fprintf(stderr, "%s: splice=%s: expected write, read, all or none\n", argv[0], o.splice);
		goto out_args;
	}

	cfg.readonly = o.readonly;
	cfg.policy = o.policy;
	cfg.policy_params = o.params;
	cfg.trace = o.trace;
	cfg.limits.max_pins = o.max_pins;
	cfg.limits.max_pins_per_file = o.max_pins_per_file;
	cfg.limits.max_user_bytes = POLICY_USER_LIMIT_DEFAULT;
	if (o.max_pinned_per_user && parse_size(o.max_pinned_per_user, &cfg.limits.max_user_bytes)) {
		fprintf(stderr, "%s: max_pinned_per_user=%s: expected a size (K, M, G, T suffixes)\n", argv[0],
			o.max_pinned_per_user);
		goto out_args;
	}
	if (o.reclaim && strcmp(o.reclaim, "zero") && strcmp(o.reclaim, "discard")) {
		fprintf(stderr, "%s: reclaim=%s: expected zero or discard\n", argv[0], o.reclaim);
		goto out_args;
	}
	cfg.reclaim_discard = o.reclaim && strcmp(o.reclaim, "discard") == 0;
	if (o.recover && strcmp(o.recover, "quarantine") && strcmp(o.recover, "reclaim")) {
		fprintf(stderr, "%s: recover=%s: expected quarantine or reclaim\n", argv[0], o.recover);
		goto out_args;
	}
	cfg.reclaim_at_mount = o.recover && strcmp(o.recover, "reclaim") == 0;
	if (o.transport && strcmp(o.transport, "auto") == 0) {
		transport = TRANSPORT_AUTO;
	} else if (o.transport && strcmp(o.transport, "uring") == 0) {
		transport = TRANSPORT_URING;
	} else if (o.transport && strcmp(o.transport, "dev") == 0) {
		transport = TRANSPORT_DEV;
	} else if (o.transport) {
		fprintf(stderr, "%s: transport=%s: expected auto, uring or dev\n", argv[0], o.transport);
		goto out_args;
	}
	/* Decided before mounting, so that the reason reaches the terminal and uring fails early. */
	if (transport != TRANSPORT_DEV && fuse_uring_probe(why, sizeof(why))) {
		if (transport == TRANSPORT_URING) {
			fprintf(stderr, "daxfs: transport=uring: %s\n", why);
			goto out_args;
		}
		fprintf(stderr, "daxfs: transport=auto: serving /dev/fuse: %s\n", why);
		transport_fallback = true;
	}
	cfg.enospc_wait_ms = o.enospc_wait_ms;

	/*
	 * umount(8) returns before the previous daemon has finished writing the image back and let go
	 * of its lock: give it a few seconds rather than fail an "umount; mount" sequence.
	 */
	for (int tries = 0;; tries++) {
		int r = mount_open(&d.fs, o.image, &cfg, err, sizeof(err));

		if (r == 0)
			break;
		char where[PATH_MAX];
		if (r == -EBUSY && mounted_at(o.image, where, sizeof(where))) {
			fprintf(stderr, "daxfs: cannot mount %s: already mounted at %s\n", o.image, where);
			goto out_args;
		}
		if (r != -EBUSY || tries == 100) {
			fprintf(stderr, "daxfs: cannot mount %s\n", err);
			goto out_args;
		}
		usleep(50000);
	}
	if (d.fs->sbi.replayed || d.fs->orphans_recovered)
		fprintf(stderr, "daxfs: %s: recovered: %d journal records replayed, %llu orphan inodes freed\n",
			o.image, d.fs->sbi.replayed, (unsigned long long)d.fs->orphans_recovered);

	/* Show the image in /proc/mounts as the source, with type fuse.daxfs. */
	if (!realpath(o.image, image_abs))
		snprintf(image_abs, sizeof(image_abs), "%s", o.image);
	snprintf(fsname, sizeof(fsname), "-osubtype=daxfs,fsname=%s", image_abs);
	fuse_opt_insert_arg(&args, 1, fsname);

	se = fuse_session_new(&args, &daxfs_ll_ops, sizeof(daxfs_ll_ops), &d);
	if (!se)
		goto out_fs;
	if (fuse_uring_setup(&d, se, transport, transport_fallback ? why : NULL))
		goto out_session;
	if (fuse_set_signal_handlers(se) != 0)
		goto out_session;
	if (fuse_session_mount(se, cl.mountpoint) != 0)
		goto out_signals;
	if (fuse_io_install(se, &d) != 0) {
		if (transport == TRANSPORT_URING) {
			fprintf(stderr, "daxfs: transport=uring: cannot hook the FUSE channel\n");
			goto out_unmount;
		}
		fuse_uring_free(&d);	/* without the hooks no reply could reach a ring entry */
		if (d.cache == CACHE_DAX)
			fprintf(stderr, "daxfs: cannot hook the FUSE channel: shared mmap will fail with ENODEV\n");
	}
	fuse_daemonize(cl.foreground);
	/* Threads do not survive the fork: the workers start now.  Without them nothing would resume. */
	if (mount_start(d.fs)) {
		fprintf(stderr, "daxfs: cannot start the reclaim and policy workers\n");
		goto out_unmount;
	}

	if (cl.singlethread) {
		ret = fuse_session_loop(se);
	} else {
		struct fuse_loop_config *lc = fuse_loop_cfg_create();

		fuse_loop_cfg_set_clone_fd(lc, cl.clone_fd);
		/* libfuse marks options not given as UINT_MAX; leave its defaults alone then. */
		if (cl.max_idle_threads != UINT_MAX)
			fuse_loop_cfg_set_idle_threads(lc, cl.max_idle_threads);
		if (cl.max_threads != UINT_MAX)
			fuse_loop_cfg_set_max_threads(lc, cl.max_threads);
		ret = fuse_session_loop_mt(se, lc);
		fuse_loop_cfg_destroy(lc);
	}
	/* Requests still waiting for the policy fail before the session they would reply to goes. */
	policy_stop(d.fs);
	if (fuse_uring_failed(&d))
		ret = 1;
out_unmount:
	/*
	 * Unmount first: the connection's end fails whatever the queues' threads and their kicks still
	 * wait for, so they can be joined.  They serve requests with d.fs and may hold open files:
	 * they end before either goes.
	 */
	fuse_session_unmount(se);
	fuse_uring_free(&d);
	/* Releases that never arrived (an unmount racing a close): pins drop, orphans are freed. */
	fuse_ops_release_all(&d);
out_signals:
	fuse_remove_signal_handlers(se);
out_session:
	fuse_uring_free(&d);
	fuse_session_destroy(se);
out_fs:
	mount_close(d.fs);
out_args:
	free(cl.mountpoint);
	free(o.image);
	free(o.cache);
	free(o.policy);
	free(o.reclaim);
	free(o.trace);
	free(o.recover);
	free(o.max_pinned_per_user);
	free(o.splice);
	free(o.transport);
	fuse_opt_free_args(&args);
	return ret ? 1 : 0;
}
