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
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"

struct options {
	char *image;
	char *cache;
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
	       "FUSE options (-o): allow_other, default_permissions, max_threads=N, clone_fd,\n"
	       "max_idle_threads=N and the other options of mount.fuse3(8).\n", prog);
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
	struct options o = { .attr_timeout = 1.0, .entry_timeout = 1.0 };
	struct fuse_cmdline_opts cl = { 0 };
	struct daemon d = { 0 };
	struct fs_config cfg = { 0 };
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
	/*
	 * umount(8) returns before the previous daemon has finished writing the image back and let go
	 * of its lock: give it a few seconds rather than fail an "umount; mount" sequence.
	 */
	for (int tries = 0;; tries++) {
		int r = fs_mount(&d.fs, o.image, &cfg, err, sizeof(err));

		if (r == 0)
			break;
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
		fuse_loop_cfg_set_idle_threads(lc, cl.max_idle_threads);
		fuse_loop_cfg_set_max_threads(lc, cl.max_threads);
		ret = fuse_session_loop_mt(se, lc);
		fuse_loop_cfg_destroy(lc);
	}
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out_session:
	fuse_session_destroy(se);
out_fs:
	fs_unmount(d.fs);
out_args:
	free(cl.mountpoint);
	free(o.image);
	free(o.cache);
	fuse_opt_free_args(&args);
	return ret ? 1 : 0;
}
