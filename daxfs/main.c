/* SPDX-License-Identifier: MIT */
/*
 * daxfs: mount a daxfs image with FUSE.
 *
 *   daxfs [-f] [-d] [-s] [-o opt,...] IMAGE MOUNTPOINT
 *
 * The image is opened, checked and recovered before anything is mounted, so a bad image fails with
 * a message on the terminal; only then does the daemon mount, detach and serve.
 */
#include <errno.h>
#include <limits.h>
#include <mntent.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"
#include "mount.h"

struct options {
	char *image;
	char *cache;
	char *policy;
	char *pins;
	char *reclaim;
	unsigned long grace_ms;
	unsigned long wait_timeout_ms;
	unsigned long enospc_wait_ms;
	unsigned max_pins;
	unsigned max_pins_per_file;
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
	{ "pins=%s", offsetof(struct options, pins), 0 },
	{ "reclaim=%s", offsetof(struct options, reclaim), 0 },
	{ "grace_ms=%lu", offsetof(struct options, grace_ms), 0 },
	{ "wait_timeout_ms=%lu", offsetof(struct options, wait_timeout_ms), 0 },
	{ "enospc_wait_ms=%lu", offsetof(struct options, enospc_wait_ms), 0 },
	{ "max_pins=%u", offsetof(struct options, max_pins), 0 },
	{ "max_pins_per_file=%u", offsetof(struct options, max_pins_per_file), 0 },
	{ "attr_timeout=%lf", offsetof(struct options, attr_timeout), 0 },
	{ "entry_timeout=%lf", offsetof(struct options, entry_timeout), 0 },
	FUSE_OPT_KEY("ro", KEY_RO),
	FUSE_OPT_KEY("rw", KEY_RW),
	FUSE_OPT_KEY("-h", KEY_HELP),
	FUSE_OPT_KEY("--help", KEY_HELP),
	FUSE_OPT_KEY("-V", KEY_VERSION),
	FUSE_OPT_KEY("--version", KEY_VERSION),
	FUSE_OPT_END
};

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
	       "    ro                     mount read-only (the journal must not need replay)\n"
	       "\n"
	       "pins and policy (-o):\n"
	       "    policy=busy|wait|fail|revoke|unsafe|deny-longterm\n"
	       "                           what truncate, punch hole and O_TRUNC do with pinned\n"
	       "                           blocks (default busy; deny-longterm = wait + pins=deny-longterm)\n"
	       "    pins=allow|deny-longterm   refuse long-term pins (EOPNOTSUPP)\n"
	       "    grace_ms=N             revoke: lease-break grace period (default 1000)\n"
	       "    wait_timeout_ms=N      wait, revoke: give up with EBUSY after N ms (default 0: never)\n"
	       "    max_pins=N             pins in total (ENFILE beyond; default 1000000)\n"
	       "    max_pins_per_file=N    pins per open file (EMFILE beyond; default 65536)\n"
	       "    reclaim=zero|discard   scrub reclaimed busy blocks by zeroing (default) or by\n"
	       "                           punching them out of the image file (io_uring fallocate)\n"
	       "    enospc_wait_ms=N       a full device waits up to N ms for reclaim in flight (default 1000)\n"
	       "\n"
	       "FUSE options (-o): allow_other, default_permissions, max_threads=N, clone_fd,\n"
	       "max_idle_threads=N and the other options of mount.fuse3(8).\n", prog);
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
	struct options o = { .attr_timeout = 1.0, .entry_timeout = 1.0, .grace_ms = 1000, .enospc_wait_ms = 1000,
			     .max_pins = 1000000, .max_pins_per_file = 65536 };
	struct fuse_cmdline_opts cl = { 0 };
	struct daemon d = { .of_lock = PTHREAD_MUTEX_INITIALIZER };
	struct mount_config cfg = { 0 };
	struct fuse_session *se = NULL;
	char err[512], image_abs[PATH_MAX], fsname[PATH_MAX + 64];
	int ret = 1;

	if (fuse_opt_parse(&args, &o, option_spec, opt_proc) == -1)
		return 1;
	if (o.help) {
		usage(argv[0]);
		return 0;
	}
	if (o.version) {
		printf("daxfs %s (libfuse %s)\n", DAXFS_VERSION, fuse_pkgversion());
		return 0;
	}
	if (!o.image || o.nonopt != 1) {
		fprintf(stderr, "%s: expected IMAGE and MOUNTPOINT (see --help)\n", argv[0]);
		return 1;
	}
	if (fuse_parse_cmdline(&args, &cl) != 0)
		return 1;
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

	cfg.readonly = o.readonly;
	cfg.policy = (struct policy_config){ .kind = DAXFS_POLICY_BUSY, .admission = DAXFS_ADMIT_ALL,
					     .grace_ms = o.grace_ms, .wait_timeout_ms = o.wait_timeout_ms };
	if (o.policy && policy_parse(o.policy, &cfg.policy)) {
		fprintf(stderr, "%s: policy=%s: expected busy, wait, fail, revoke, unsafe or deny-longterm\n", argv[0],
			o.policy);
		goto out_args;
	}
	if (o.pins) {
		if (strcmp(o.pins, "allow") == 0) {
			cfg.policy.admission = DAXFS_ADMIT_ALL;
		} else if (strcmp(o.pins, "deny-longterm") == 0) {
			cfg.policy.admission = DAXFS_ADMIT_DENY_LONGTERM;
		} else {
			fprintf(stderr, "%s: pins=%s: expected allow or deny-longterm\n", argv[0], o.pins);
			goto out_args;
		}
	}
	if (o.reclaim && strcmp(o.reclaim, "zero") && strcmp(o.reclaim, "discard")) {
		fprintf(stderr, "%s: reclaim=%s: expected zero or discard\n", argv[0], o.reclaim);
		goto out_args;
	}
	cfg.reclaim_discard = o.reclaim && strcmp(o.reclaim, "discard") == 0;
	cfg.max_pins = o.max_pins;
	cfg.max_pins_per_file = o.max_pins_per_file;
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
	if (fuse_set_signal_handlers(se) != 0)
		goto out_session;
	if (fuse_session_mount(se, cl.mountpoint) != 0)
		goto out_signals;
	if (d.cache == CACHE_DAX && fuse_io_install(se, &d) != 0)
		fprintf(stderr, "daxfs: cannot hook the FUSE channel: shared mmap will fail with ENODEV\n");
	fuse_daemonize(cl.foreground);

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
	fuse_session_unmount(se);
	/* Releases that never arrived (an unmount racing a close): pins drop, orphans are freed. */
	fuse_ops_release_all(&d);
out_signals:
	fuse_remove_signal_handlers(se);
out_session:
	fuse_session_destroy(se);
out_fs:
	mount_close(d.fs);
out_args:
	free(cl.mountpoint);
	free(o.image);
	free(o.cache);
	free(o.policy);
	free(o.pins);
	free(o.reclaim);
	fuse_opt_free_args(&args);
	return ret ? 1 : 0;
}
