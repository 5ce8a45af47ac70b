/* SPDX-License-Identifier: MIT */
/*
 * mkfs.daxfs: format an image file, a /dev/pmem block device or a /dev/dax character device.
 *
 *   mkfs.daxfs [-b BLOCKSIZE] [-L LABEL] [-N INODES] [-J JOURNAL] [-s SIZE] [-U UUID] [-f] [-q] IMAGE
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "csum.h"
#include "media.h"
#include "super.h"
#include "toolutil.h"

static void usage(FILE *f, const char *prog)
{
	fprintf(f,
		"usage: %s [-b BLOCKSIZE] [-L LABEL] [-N INODES] [-J JOURNAL] [-s SIZE] [-U UUID] [-f] [-q] IMAGE\n"
		"\n"
		"Create a daxfs file system on IMAGE: a regular file (emulated pmem, e.g. in /dev/shm),\n"
		"a /dev/pmemN block device or a /dev/daxN.M device.\n"
		"\n"
		"  -b BLOCKSIZE  block size in bytes, a power of two from 4096 to 32768 (default 4096)\n"
		"  -L LABEL      volume label, up to 63 bytes\n"
		"  -N INODES     number of inodes (default: one per 16 KiB)\n"
		"  -J JOURNAL    journal size (default: 1/256 of the image, 256K to 8M)\n"
		"  -s SIZE       image size; creates IMAGE as a sparse file if needed, and resizes an\n"
		"                existing file (discarding its contents).  Suffixes K, M, G, T (powers of 2)\n"
		"  -U UUID       file-system UUID (default: random)\n"
		"  -f            force: overwrite an existing daxfs, or an image in use by a daemon\n"
		"  -q            quiet\n"
		"  -h            this help\n"
		"\n"
		"On a terminal, formatting a large image (400 GiB and more) shows its progress on stderr.\n"
		"Exit: 0 formatted, 1 error, 2 usage.\n", prog);
}

static int parse_uuid(const char *s, uint8_t out[16])
{
	int n = 0;

	for (const char *p = s; *p && n < 32; p++) {
		if (*p == '-')
			continue;
		int v = (*p >= '0' && *p <= '9') ? *p - '0' : (*p | 32) >= 'a' && (*p | 32) <= 'f' ? (*p | 32) - 'a' + 10 : -1;
		if (v < 0)
			return -1;
		out[n / 2] = (uint8_t)(n % 2 ? out[n / 2] | v : v << 4);
		n++;
	}
	return n == 32 ? 0 : -1;
}

/* Is the image already a daxfs?  Only the magic is checked: a damaged one still counts. */
static bool has_daxfs(const char *path)
{
	uint64_t magic = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	bool yes = false;

	if (fd >= 0) {
		yes = pread(fd, &magic, sizeof(magic), 0) == sizeof(magic) && magic == DAXFS_SB_MAGIC;
		close(fd);
	}
	return yes;
}

/* A running daemon holds an exclusive flock on its image. */
static bool in_use(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	bool busy = false;

	if (fd >= 0) {
		busy = flock(fd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK;
		close(fd);
	}
	return busy;
}

int main(int argc, char **argv)
{
	struct mkfs_params p = { .root_uid = getuid(), .root_gid = getgid() };
	uint64_t size = 0;
	uint8_t uuid[16];
	bool force = false, quiet = false;
	char err[512];
	struct media m;
	struct stat st;
	int c;

	while ((c = getopt(argc, argv, "b:L:N:J:s:U:fqh")) != -1) {
		switch (c) {
		case 'b':
			if (parse_size(optarg, &size) || size > UINT32_MAX)
				die_usage(argv[0], "bad block size '%s'", optarg);
			p.block_size = (uint32_t)size;
			size = 0;
			break;
		case 'L':
			if (strlen(optarg) > 63)
				die_usage(argv[0], "label longer than 63 bytes");
			p.label = optarg;
			break;
		case 'N':
			if (parse_size(optarg, &p.ninodes) || p.ninodes == 0)
				die_usage(argv[0], "bad inode count '%s'", optarg);
			break;
		case 'J':
			if (parse_size(optarg, &p.journal_bytes) || p.journal_bytes == 0)
				die_usage(argv[0], "bad journal size '%s'", optarg);
			break;
		case 's':
			if (parse_size(optarg, &size) || size == 0)
				die_usage(argv[0], "bad size '%s'", optarg);
			break;
		case 'U':
			if (parse_uuid(optarg, uuid))
				die_usage(argv[0], "bad UUID '%s'", optarg);
			p.uuid = uuid;
			break;
		case 'f':
			force = true;
			break;
		case 'q':
			quiet = true;
			break;
		case 'h':
			usage(stdout, argv[0]);
			return 0;
		default:
			usage(stderr, argv[0]);
			return 2;
		}
	}
	if (optind != argc - 1)
		die_usage(argv[0], "expected one IMAGE");
	const char *path = argv[optind];
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);

	if (stat(path, &st) < 0) {
		if (errno != ENOENT)
			die("%s: %s", path, strerror(errno));
		if (!size)
			die("%s does not exist: give its size with -s", path);
		int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd < 0)
			die("%s: %s", path, strerror(errno));
		if (ftruncate(fd, (off_t)size) < 0)
			die("%s: cannot size to %" PRIu64 " bytes: %s", path, size, strerror(errno));
		close(fd);
	} else {
		if (in_use(path) && !force)
			die("%s is in use by a running daxfs (use -f to format it anyway)", path);
		if (has_daxfs(path) && !force)
			die("%s already holds a daxfs (use -f to overwrite it)", path);
		if (size && S_ISREG(st.st_mode)) {
			/* Discard the old contents: the new image starts sparse. */
			int fd = open(path, O_RDWR | O_CLOEXEC);
			if (fd < 0 || ftruncate(fd, 0) < 0 || ftruncate(fd, (off_t)size) < 0)
				die("%s: cannot size to %" PRIu64 " bytes: %s", path, size, strerror(errno));
			close(fd);
		} else if (size) {
			die("%s: -s applies to image files only; devices keep their size", path);
		}
	}

	if (media_open(&m, path, force ? MEDIA_NOLOCK : 0, err, sizeof(err)))
		die("%s", err);
	/* Only the bitmaps take time, and only from 16 MiB of them (an image of about 400 GiB). */
	struct progress pr;
	progress_init(&pr, !quiet, 16 << 20);
	p.progress = progress_update;
	p.progress_arg = &pr;
	if (super_format(&m, &p, err, sizeof(err)))
		die("%s: %s", path, err);
	progress_update(&pr, NULL, 0, 0);
	const struct daxfs_super *sb = (const void *)m.base;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (!quiet) {
		char u[40];

		format_uuid(sb->uuid, u);
		printf("%s: daxfs %u.%u, %" PRIu64 " blocks of %u bytes (%.1f MiB), %" PRIu64 " inodes\n", path,
		       sb->version_major, sb->version_minor, sb->nblocks, sb->block_size,
		       (double)sb->nblocks * sb->block_size / (1 << 20), sb->ninodes);
		printf("  journal %" PRIu64 " KiB, data area %" PRIu64 " blocks from block %" PRIu64 "\n",
		       sb->journal_blocks * sb->block_size >> 10, sb->backup_sb - sb->data_start, sb->data_start);
		printf("  uuid %s%s%s, media %s, formatted in %.3f s\n", u, sb->label[0] ? ", label " : "", sb->label,
		       m.is_pmem ? "pmem" : "not pmem (msync)",
		       (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	}
	media_close(&m);
	return 0;
}
