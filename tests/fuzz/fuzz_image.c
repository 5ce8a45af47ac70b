/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the image parser and the checker.
 *
 * An input is a list of patches applied to a populated base image (directories over several
 * blocks, an extent chain, xattrs, symlinks, an orphan, busy extents, a committed journal
 * transaction): small inputs then reach deep into the parsers.  Each patch is
 *     u8 flags, u32 offset (little-endian), u8 length-1, then the bytes
 * flags bit 0: the offset is within the metadata regions rather than the whole image;
 * bit 1: XOR the bytes in rather than overwrite.
 * The patched image is mounted in a private mapping (so recovery runs: journal replay, orphans,
 * busy extents; the file itself never changes), walked, and checked with the read-only checker.
 *
 * Built with clang -fsanitize=fuzzer for fuzzing (scripts/fuzz.sh); built normally it is a test
 * that replays the corpus (tests/fuzz/corpus) through the same code.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "super.h"
#include "treewalk.h"
#include "mount.h"

#define IMAGE_BYTES (2u << 20)

static char path[128];
static char *base, *img;
static uint64_t meta_bytes;	/* bytes before the data area */
static struct cred root;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void die(const char *what)
{
	fprintf(stderr, "fuzz_image: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void quiet(void *arg, const char *msg)
{
	(void)arg;
	(void)msg;
}

static void write_image(const char *bytes)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);

	if (fd < 0 || write(fd, bytes, IMAGE_BYTES) != IMAGE_BYTES)
		die(path);
	close(fd);
}

/* The base image: populated by a process that then dies mid-life. */
static void populate(void)
{
	struct mount_config cfg = { .report = quiet };
	struct fs *fs;
	struct entry e;
	struct inode *ip;
	char err[256];

	if (mount_open(&fs, path, &cfg, err, sizeof(err)))
		_exit(2);
	mount_start(fs);
	namei_mkdir(fs, &root, DAXFS_ROOT_INO, "d", 0755, &e);
	uint64_t d = e.ino;
	for (int i = 0; i < 120; i++) {
		char name[64];

		snprintf(name, sizeof(name), "a-rather-long-file-name-%03d", i);
		namei_mknod(fs, &root, d, name, S_IFREG | 0644, 0, &e);
	}
	static char buf[4096];
	memset(buf, 'x', sizeof(buf));
	struct iovec iov = { buf, sizeof(buf) };
	namei_mknod(fs, &root, DAXFS_ROOT_INO, "frag", S_IFREG | 0644, 0, &e);
	namei_open(fs, e.ino, O_RDWR, &ip, NULL);
	for (int b = 0; b < 40; b += 2)
		file_write(fs, ip, (uint64_t)b * 4096, &iov, 1);
	xattr_set(fs, ip, "user.a", "1", 1, 0);
	xattr_set(fs, ip, "trusted.b", "22", 2, 0);
	namei_release(fs, ip);
	namei_symlink(fs, &root, d, "s", "../frag", &e);
	char longt[600];
	memset(longt, 'y', sizeof(longt) - 1);
	longt[sizeof(longt) - 1] = 0;
	namei_symlink(fs, &root, d, "l", longt, &e);
	namei_link(fs, e.ino, DAXFS_ROOT_INO, "hl", &e);
	namei_mknod(fs, &root, DAXFS_ROOT_INO, "orphan", S_IFREG | 0644, 0, &e);
	namei_open(fs, e.ino, O_RDWR, &ip, NULL);
	file_write(fs, ip, 0, &iov, 1);
	namei_unlink(fs, DAXFS_ROOT_INO, "orphan");
	namei_mknod(fs, &root, DAXFS_ROOT_INO, "pinned", S_IFREG | 0644, 0, &e);
	namei_open(fs, e.ino, O_RDWR, &ip, NULL);
	for (int b = 0; b < 8; b++)
		file_write(fs, ip, (uint64_t)b * 4096, &iov, 1);
	struct pin_owner owner;
	uint64_t id;
	pin_owner_init(&owner);
	policy_pin(fs, &owner, ip, &(struct policy_pin_args){ .offset = 4096, .length = 4096, .flags = DAXFS_PIN_WRITE, .pid = getpid(), .writable = true }, NULL, &id);
	policy_pin(fs, &owner, ip, &(struct policy_pin_args){ .offset = 5 * 4096, .length = 8192, .flags = DAXFS_PIN_WRITE, .pid = getpid(), .writable = true }, NULL, &id);
	struct stat st = { .st_size = 0 };
	namei_setattr(fs, e.ino, &st, NAMEI_SET_SIZE, NULL, NULL);
	_exit(0);
}

static void make_base(void)
{
	struct mkfs_params p = { .ninodes = 256, .journal_bytes = 256 << 10 };
	struct media m;
	char err[256];
	int st;

	snprintf(path, sizeof(path), "/dev/shm/daxfs-fuzz-%d.img", getpid());
	base = calloc(1, IMAGE_BYTES);
	img = malloc(IMAGE_BYTES);
	write_image(base);
	if (media_open(&m, path, 0, err, sizeof(err)) || super_format(&m, &p, err, sizeof(err))) {
		fprintf(stderr, "fuzz_image: format: %s\n", err);
		exit(1);
	}
	meta_bytes = ((const struct daxfs_super *)m.base)->data_start * 4096ull;
	media_close(&m);
	pid_t pid = fork();
	if (pid == 0)
		populate();
	waitpid(pid, &st, 0);
	int fd = open(path, O_RDONLY);
	if (fd < 0 || read(fd, base, IMAGE_BYTES) != IMAGE_BYTES)
		die("reading the base image");
	close(fd);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	make_base();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	memcpy(img, base, IMAGE_BYTES);
	for (size_t i = 0; i + 6 <= size;) {
		uint8_t flags = data[i];
		uint32_t off;
		memcpy(&off, data + i + 1, 4);
		size_t len = (size_t)data[i + 5] + 1;
		i += 6;
		off %= (flags & 1) ? (uint32_t)meta_bytes : IMAGE_BYTES;
		for (size_t k = 0; k < len && i < size && off + k < IMAGE_BYTES; k++, i++)
			img[off + k] = (char)((flags & 2) ? img[off + k] ^ (char)data[i] : (char)data[i]);
	}
	write_image(img);

	struct mount_config cfg = { .private_map = true, .report = quiet, .enospc_wait_ms = 0 };
	struct fs *fs;
	char err[512];
	if (mount_open(&fs, path, &cfg, err, sizeof(err)) == 0) {
		mount_start(fs);
		treewalk(fs, DAXFS_ROOT_INO, 0, 8, 1 << 20);
		struct entry e;
		namei_mknod(fs, &root, DAXFS_ROOT_INO, "new", S_IFREG | 0644, 0, &e);
		namei_unlink(fs, DAXFS_ROOT_INO, "hl");
		mount_close(fs);
	}
	static FILE *null;
	if (!null)
		null = fopen("/dev/null", "w");
	struct check_opts o = { .mode = CHECK_READONLY, .out = null };
	struct check_result r;
	check_image(path, &o, &r);
	return 0;
}

#ifndef FUZZING
/* Without libFuzzer: replay every file of the corpus directories given (or the built-in one). */
int main(int argc, char **argv)
{
	int n = 0;

	LLVMFuzzerInitialize(&argc, &argv);
	for (int a = 1; a < argc; a++) {
		DIR *d = opendir(argv[a]);
		struct dirent *de;

		if (!d)
			die(argv[a]);
		while ((de = readdir(d))) {
			char file[1024];
			struct stat st;

			snprintf(file, sizeof(file), "%s/%s", argv[a], de->d_name);
			if (stat(file, &st) || !S_ISREG(st.st_mode))
				continue;
			uint8_t *buf = malloc((size_t)st.st_size + 1);
			int fd = open(file, O_RDONLY);
			if (fd < 0 || read(fd, buf, (size_t)st.st_size) != st.st_size)
				die(file);
			close(fd);
			LLVMFuzzerTestOneInput(buf, (size_t)st.st_size);
			free(buf);
			n++;
		}
		closedir(d);
	}
	printf("%d corpus inputs replayed\n", n);
	unlink(path);
	return n > 0 ? 0 : 1;
}
#endif
