/* SPDX-License-Identifier: MIT */
/*
 * fsck.daxfs: check and repair a daxfs image.
 *
 *   fsck.daxfs [-n | -y | -p | -a] [-v] [-f] IMAGE
 *
 * Exit codes as fsck(8): 0 clean, 1 errors corrected, 4 errors left, 8 operational error, 16 usage.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "toolutil.h"

static void usage(FILE *f, const char *prog)
{
	fprintf(f,
		"usage: %s [-n | -y | -p | -a] [-v] [-f] IMAGE\n"
		"\n"
		"Check a daxfs image: superblock, checksums, journal, extents, block ownership, directories,\n"
		"link counts, orphans and the bitmaps.\n"
		"\n"
		"  -n   check only; change nothing (the journal is replayed in a private copy).  Works on a\n"
		"       mounted image, which may then look inconsistent mid-operation\n"
		"  -y   repair what can be repaired safely (leaked blocks, counts, orphans, dangling entries,\n"
		"       disconnected inodes go to /lost+found) and say what was done\n"
		"  -p   like -y, printing only what it cannot repair (-a is the same)\n"
		"  -v   verbose\n"
		"  -f   accepted for fsck(8); the check is always full\n"
		"  -h   this help\n"
		"\n"
		"Exit: 0 clean, 1 errors corrected, 4 errors left uncorrected, 8 operational error, 16 usage.\n"
		"Without -n the image must not be mounted.  On a terminal, the passes over a large image\n"
		"show their progress on stderr.\n", prog);
}

int main(int argc, char **argv)
{
	struct check_opts o = { .mode = CHECK_READONLY };
	struct check_result r;
	struct progress pr;
	int c, modes = 0;

	while ((c = getopt(argc, argv, "nypavfh")) != -1) {
		switch (c) {
		case 'n':
			o.mode = CHECK_READONLY;
			modes++;
			break;
		case 'y':
			o.mode = CHECK_REPAIR;
			modes++;
			break;
		case 'p':
		case 'a':
			o.mode = CHECK_PREEN;
			modes++;
			break;
		case 'v':
			o.verbose = true;
			break;
		case 'f':
			break;	/* always a full check; accepted for fsck(8) compatibility */
		case 'h':
			usage(stdout, argv[0]);
			return FSCK_OK;
		default:
			usage(stderr, argv[0]);
			return FSCK_USAGE;
		}
	}
	if (optind != argc - 1 || modes > 1) {
		usage(stderr, argv[0]);
		return FSCK_USAGE;
	}
	if (modes == 0)
		fprintf(stderr, "%s: no mode given: checking only (-n)\n", argv[0]);
	/* Preening is for boot scripts: no progress there. */
	progress_init(&pr, o.mode != CHECK_PREEN, 0);
	o.progress = progress_update;
	o.progress_arg = &pr;
	int ret = check_image(argv[optind], &o, &r);
	progress_update(&pr, NULL, 0, 0);
	return ret;
}
