/* SPDX-License-Identifier: MIT */
/*
 * The file system below FUSE: namespace operations, file data through extent maps, directories,
 * extended attributes and orphans, driven through the fs.h API on a scratch image and checked
 * again after an unmount and mount (everything then comes from the media).  Also: other block
 * sizes, a full device, several threads at once, and a child process killed at every durability
 * point of a mixed workload (the image must mount and leak nothing).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>

#include "daxfs/format.h"
#include "unit_common.h"
#include "file.h"
#include "inode.h"
#include "mount.h"
#include "namei.h"
#include "xattr.h"

#define BS 4096u
#define ROOT DAXFS_ROOT_INO

static const struct cred root_cred = { .uid = 0, .gid = 0 };

struct fixture {
	struct image img;
	struct fs *fs;
};

/* Format an image of `bytes` (p NULL: mkfs defaults) and mount it: the setup of every mounted fixture. */
static int mount_fixture(void **state, const char *name, uint64_t bytes, const struct mkfs_params *p)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct mount_config cfg = { 0 };
	char err[256] = "";

	if (!f)
		return -1;
	image_name(&f->img, name);
	*state = f;
	image_format(&f->img, bytes, p);
	if (mount_open(&f->fs, f->img.path, &cfg, err, sizeof(err))) {
		fprintf(stderr, "mount_open: %s\n", err);
		image_remove(&f->img);	/* teardown does not run after a failed setup */
		return -1;
	}
	return 0;
}

/* 256 MiB with room for the 20k-entry directory test's inodes. */
static int setup(void **state)
{
	return mount_fixture(state, "fs", 256 * MiB, &(struct mkfs_params){ .ninodes = 32768 });
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	if (f->fs)
		mount_close(f->fs);
	image_remove(&f->img);
	free(f);
	return 0;
}

static void remount(struct fixture *f)
{
	struct mount_config cfg = { 0 };
	char err[256] = "";

	mount_close(f->fs);
	f->fs = NULL;
	if (mount_open(&f->fs, f->img.path, &cfg, err, sizeof(err)))
		fail_msg("mount_open: %s", err);
}

/* ---- helpers ---- */

/*
 * Drop the lookup reference an entry reply carries, as the kernel eventually does: until then an
 * unlinked inode keeps its number (and stays cached).
 */
static void forget(struct fs *fs, uint64_t ino)
{
	inode_forget(fs, ino, 1);
}

static uint64_t mkfile(struct fs *fs, uint64_t parent, const char *name)
{
	struct entry e;
	int ret = namei_mknod(fs, &root_cred, parent, name, S_IFREG | 0644, 0, &e);

	if (ret)
		fail_msg("mknod %s: %d", name, ret);
	forget(fs, e.ino);
	return e.ino;
}

/*
 * A directory keeps the lookup reference of its creation, as the kernel's dentry cache would for a
 * directory in use: an unreferenced directory is dropped from DRAM and reloaded by the next access.
 */
static uint64_t mkdir_(struct fs *fs, uint64_t parent, const char *name)
{
	struct entry e;
	int ret = namei_mkdir(fs, &root_cred, parent, name, 0755, &e);

	if (ret)
		fail_msg("mkdir %s: %d", name, ret);
	return e.ino;
}

static uint64_t lookup(struct fs *fs, uint64_t parent, const char *name)
{
	struct entry e;
	int ret = namei_lookup(fs, parent, name, &e);

	if (ret)
		fail_msg("lookup %s: %d", name, ret);
	forget(fs, e.ino);
	return e.ino;
}

static struct inode *openi(struct fs *fs, uint64_t ino)
{
	struct inode *ip;
	int ret = namei_open(fs, ino, O_RDWR, &ip, NULL);

	if (ret)
		fail_msg("open %llu: %d", (unsigned long long)ino, ret);
	return ip;
}

static void closei(struct fs *fs, struct inode *ip)
{
	assert_int_equal(namei_release(fs, ip), 0);
}

static void wr(struct fs *fs, struct inode *ip, uint64_t off, const void *buf, size_t len)
{
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	ssize_t n = file_write(fs, ip, off, &iov, 1);

	if (n != (ssize_t)len)
		fail_msg("write %zu at %llu: %zd", len, (unsigned long long)off, n);
}

struct rdctx {
	char *dst;
	size_t got;
	size_t cap;
};

/* The iovecs point into the media: copy them out before returning, as the FUSE reply does. */
static int rd_send(void *ctx, const struct iovec *iov, int niov)
{
	struct rdctx *r = ctx;

	for (int i = 0; i < niov; i++) {
		assert_true(r->got + iov[i].iov_len <= r->cap);
		memcpy(r->dst + r->got, iov[i].iov_base, iov[i].iov_len);
		r->got += iov[i].iov_len;
	}
	return 0;
}

/* Read up to len bytes at off (file_read may stop early when it runs out of iovecs). */
static size_t rd(struct fs *fs, struct inode *ip, uint64_t off, void *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		struct rdctx r = { .dst = (char *)buf + done, .got = 0, .cap = len - done };

		assert_int_equal(file_read(fs, ip, off + done, len - done, rd_send, &r), 0);
		if (r.got == 0)
			break;
		done += r.got;
	}
	return done;
}

static struct stat stat_of(struct fs *fs, uint64_t ino)
{
	struct stat st;

	assert_int_equal(namei_getattr(fs, ino, &st), 0);
	return st;
}

static uint64_t bfree(struct fs *fs)
{
	struct statvfs sv;

	assert_int_equal(namei_statfs(fs, &sv), 0);
	return sv.f_bfree;
}

static uint64_t ffree(struct fs *fs)
{
	struct statvfs sv;

	assert_int_equal(namei_statfs(fs, &sv), 0);
	return sv.f_ffree;
}

/* Contents of block lblk of a test file: differs per block and per version (tag). */
static void block_pattern(char *buf, uint64_t lblk, unsigned tag)
{
	uint64_t x = lblk * 0x9E3779B97F4A7C15ull + tag;

	for (size_t i = 0; i < BS; i += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(buf + i, &x, 8);
	}
}

static bool all_zero(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/* ---- readdir ---- */

struct names {
	char (*name)[64];
	uint64_t *ino;
	size_t n, cap;
	size_t limit;		/* stop (without consuming) after this many in one call; 0 = no limit */
	size_t this_call;
	uint64_t next;		/* cookie after the last consumed entry */
};

static int collect(void *arg, const char *name, size_t len, uint64_t ino, uint8_t type, uint64_t next)
{
	struct names *nm = arg;

	(void)type;
	if (nm->limit && nm->this_call == nm->limit)
		return 1;
	if (nm->n == nm->cap) {
		nm->cap = nm->cap ? nm->cap * 2 : 64;
		nm->name = realloc(nm->name, nm->cap * sizeof(*nm->name));
		nm->ino = realloc(nm->ino, nm->cap * sizeof(*nm->ino));
		assert_non_null(nm->name);
		assert_non_null(nm->ino);
	}
	assert_true(len < 64);
	memcpy(nm->name[nm->n], name, len);
	nm->name[nm->n][len] = 0;
	nm->ino[nm->n] = ino;
	nm->n++;
	nm->this_call++;
	nm->next = next;
	return 0;
}

/* All entries of a directory; with chunk > 0, in several calls resumed from cookies. */
static void list_dir(struct fs *fs, uint64_t dino, size_t chunk, struct names *nm)
{
	struct inode *dp;

	memset(nm, 0, sizeof(*nm));
	nm->limit = chunk;
	assert_int_equal(namei_open(fs, dino, O_RDONLY, &dp, NULL), 0);
	uint64_t pos = 0;
	for (;;) {
		size_t before = nm->n;

		nm->this_call = 0;
		assert_int_equal(namei_readdir(fs, dp, pos, collect, nm), 0);
		if (nm->n == before)
			break;
		pos = nm->next;
		if (!chunk)
			break;
	}
	closei(fs, dp);
}

static void free_names(struct names *nm)
{
	free(nm->name);
	free(nm->ino);
}

static void test_mount_fresh(void **state)
{
	struct fixture *f = *state;
	struct statvfs sv;
	struct names nm;

	struct stat st = stat_of(f->fs, ROOT);
	assert_int_equal(st.st_mode, S_IFDIR | 0755);
	assert_int_equal(st.st_nlink, 2);
	assert_int_equal(st.st_ino, ROOT);
	assert_int_equal(namei_statfs(f->fs, &sv), 0);
	assert_int_equal(sv.f_bsize, BS);
	assert_int_equal(sv.f_blocks, f->fs->sbi.data_blocks);
	assert_int_equal(sv.f_bfree, f->fs->sbi.data_blocks - 3);	/* the three slot list heads */
	assert_int_equal(sv.f_files, 32768);
	assert_int_equal(sv.f_ffree, 32767);
	assert_int_equal(sv.f_namemax, 255);
	struct entry e;
	assert_int_equal(namei_lookup(f->fs, ROOT, "nope", &e), -ENOENT);
	assert_int_equal(namei_lookup(f->fs, 999, "x", &e), -ESTALE);	/* not an allocated inode */
	list_dir(f->fs, ROOT, 0, &nm);
	assert_int_equal(nm.n, 2);
	assert_string_equal(nm.name[0], ".");
	assert_string_equal(nm.name[1], "..");
	assert_int_equal(nm.ino[1], ROOT);
	free_names(&nm);
	/* A mounted image is dirty; a clean unmount marks it clean again. */
	assert_int_equal(((struct daxfs_super *)f->fs->sbi.media.base)->state, DAXFS_STATE_DIRTY);
	remount(f);
	assert_false(f->fs->sbi.was_dirty);
}

static bool cached(struct fs *fs, uint64_t ino)
{
	bool found = false;

	pthread_mutex_lock(&fs->icache_lock);
	for (size_t b = 0; b < fs->nbuckets && !found; b++)
		for (struct inode *ip = fs->buckets[b]; ip; ip = ip->hnext)
			found |= ip->ino == ino;
	pthread_mutex_unlock(&fs->icache_lock);
	return found;
}

/*
 * FUSE never sends a LOOKUP for the root (node id 1), so nothing holds a lookup reference on it.
 * If the root inode is dropped from DRAM when an operation ends, every operation in the root
 * directory reloads and re-checksums all of it: creating n files there costs O(n^2).  (An
 * unreferenced 20k-entry directory took 52 s to fill here; a referenced one 0.12 s.)
 */
static void test_root_dir_stays_cached(void **state)
{
	struct fixture *f = *state;

	mkfile(f->fs, ROOT, "a");
	assert_int_equal(stat_of(f->fs, ROOT).st_nlink, 2);
	if (!cached(f->fs, ROOT))
		fail_msg("the root directory was evicted once its operation ended (%zu inodes cached)",
			 f->fs->ncached);
}

static void test_namespace_basics(void **state)
{
	struct fixture *f = *state;
	struct fs *fs = f->fs;
	struct entry e, e2;
	char longname[300];

	uint64_t ff0 = ffree(fs);
	assert_int_equal(namei_mknod(fs, &root_cred, ROOT, "a", S_IFREG | 0640, 0, &e), 0);
	forget(fs, e.ino);
	assert_true(e.ino > ROOT);
	assert_int_equal(e.st.st_mode, S_IFREG | 0640);
	assert_int_equal(e.st.st_nlink, 1);
	assert_int_equal(e.st.st_size, 0);
	assert_int_equal(namei_lookup(fs, ROOT, "a", &e2), 0);
	assert_int_equal(e2.ino, e.ino);
	assert_int_equal(e2.generation, e.generation);
	forget(fs, e2.ino);
	assert_int_equal(namei_mknod(fs, &root_cred, ROOT, "a", S_IFREG | 0644, 0, &e2), -EEXIST);
	assert_int_equal(ffree(fs), ff0 - 1);

	/* Names: empty, too long, slashes, dots. */
	memset(longname, 'n', sizeof(longname));
	longname[256] = 0;
	assert_int_equal(namei_mknod(fs, &root_cred, ROOT, longname, S_IFREG | 0644, 0, &e2), -ENAMETOOLONG);
	longname[255] = 0;
	assert_int_equal(namei_mknod(fs, &root_cred, ROOT, longname, S_IFREG | 0644, 0, &e2), 0);
	forget(fs, e2.ino);
	assert_int_equal(lookup(fs, ROOT, longname), e2.ino);
	assert_int_equal(namei_mknod(fs, &root_cred, ROOT, "", S_IFREG | 0644, 0, &e2), -EINVAL);
	assert_int_equal(namei_mknod(fs, &root_cred, ROOT, "x/y", S_IFREG | 0644, 0, &e2), -EINVAL);
	assert_int_equal(namei_mknod(fs, &root_cred, ROOT, ".", S_IFREG | 0644, 0, &e2), -EEXIST);
	assert_int_equal(namei_mknod(fs, &root_cred, ROOT, "d", S_IFDIR | 0755, 0, &e2), -EINVAL);

	/* Directories count their subdirectories' "..". */
	uint64_t d = mkdir_(fs, ROOT, "d");
	assert_int_equal(stat_of(fs, ROOT).st_nlink, 3);
	assert_int_equal(stat_of(fs, d).st_nlink, 2);
	assert_int_equal(lookup(fs, d, ".."), ROOT);
	assert_int_equal(lookup(fs, d, "."), d);
	uint64_t x = mkfile(fs, d, "x");
	assert_int_equal(namei_lookup(fs, ROOT, "x", &e2), -ENOENT);
	assert_int_equal(namei_mknod(fs, &root_cred, x, "y", S_IFREG | 0644, 0, &e2), -ENOTDIR);
	/* Other file types. */
	assert_int_equal(namei_mknod(fs, &root_cred, d, "fifo", S_IFIFO | 0600, 0, &e2), 0);
	assert_int_equal(e2.st.st_mode, S_IFIFO | 0600);
	forget(fs, e2.ino);
	assert_int_equal(namei_mknod(fs, &root_cred, d, "chr", S_IFCHR | 0600, makedev(1, 3), &e2), 0);
	assert_int_equal(e2.st.st_rdev, makedev(1, 3));
	forget(fs, e2.ino);

	/* Wrong kinds of removal. */
	assert_int_equal(namei_rmdir(fs, ROOT, "d"), -ENOTEMPTY);
	assert_int_equal(namei_unlink(fs, ROOT, "d"), -EISDIR);
	assert_int_equal(namei_rmdir(fs, ROOT, "a"), -ENOTDIR);
	assert_int_equal(namei_unlink(fs, ROOT, "zz"), -ENOENT);
	assert_int_equal(namei_rmdir(fs, d, "."), -EINVAL);

	assert_int_equal(namei_unlink(fs, ROOT, "a"), 0);
	assert_int_equal(namei_lookup(fs, ROOT, "a", &e2), -ENOENT);
	assert_int_equal(namei_unlink(fs, ROOT, "a"), -ENOENT);
	assert_int_equal(namei_unlink(fs, ROOT, longname), 0);

	remount(f);
	fs = f->fs;
	assert_int_equal(lookup(fs, ROOT, "d"), d);
	assert_int_equal(lookup(fs, d, "x"), x);
	assert_int_equal(stat_of(fs, d).st_nlink, 2);
	assert_int_equal(stat_of(fs, ROOT).st_nlink, 3);
	assert_int_equal(stat_of(fs, lookup(fs, d, "chr")).st_rdev, makedev(1, 3));
	assert_int_equal(namei_lookup(fs, ROOT, "a", &e2), -ENOENT);
	/* Empty the directory, then it goes. */
	assert_int_equal(namei_unlink(fs, d, "x"), 0);
	assert_int_equal(namei_unlink(fs, d, "fifo"), 0);
	assert_int_equal(namei_unlink(fs, d, "chr"), 0);
	assert_int_equal(namei_rmdir(fs, ROOT, "d"), 0);
	assert_int_equal(stat_of(fs, ROOT).st_nlink, 2);
	assert_int_equal(ffree(fs), ff0);
	remount(f);
	assert_int_equal(ffree(f->fs), ff0);
	assert_int_equal(namei_lookup(f->fs, ROOT, "d", &e2), -ENOENT);
}

static void test_write_read_merge(void **state)
{
	struct fixture *f = *state;
	struct fs *fs = f->fs;
	const uint64_t nblk = 1000;
	char *buf = malloc(nblk * BS), *back = malloc(nblk * BS + 100);

	assert_non_null(buf);
	assert_non_null(back);
	uint64_t ino = mkfile(fs, ROOT, "seq");
	uint64_t free0 = bfree(fs);
	struct inode *ip = openi(fs, ino);
	/* Block-sized appends: each extends the previous extent in place. */
	for (uint64_t b = 0; b < nblk; b++) {
		block_pattern(buf + b * BS, b, 1);
		wr(fs, ip, b * BS, buf + b * BS, BS);
	}
	assert_int_equal(emap_count(ip), 1);
	struct stat st = stat_of(fs, ino);
	assert_int_equal(st.st_size, nblk * BS);
	assert_int_equal(st.st_blocks, nblk * (BS / 512));
	assert_int_equal(bfree(fs), free0 - nblk);
	assert_int_equal(rd(fs, ip, 0, back, nblk * BS + 100), nblk * BS);	/* stops at EOF */
	assert_memory_equal(back, buf, nblk * BS);

	/* Overwrites in place: no allocation; unaligned, across a block boundary, from a gather list. */
	memcpy(buf + 4090, "0123456789", 10);
	wr(fs, ip, 4090, "0123456789", 10);
	struct iovec iov[3] = { { "ab", 2 }, { "", 0 }, { "cdefg", 5 } };
	assert_int_equal(file_write(fs, ip, 3 * BS - 3, iov, 3), 7);
	memcpy(buf + 3 * BS - 3, "abcdefg", 7);
	assert_int_equal(bfree(fs), free0 - nblk);
	assert_int_equal(rd(fs, ip, 0, back, nblk * BS), nblk * BS);
	assert_memory_equal(back, buf, nblk * BS);
	assert_int_equal(rd(fs, ip, 4088, back, 14), 14);
	assert_memory_equal(back, buf + 4088, 14);
	/* Reads at and past EOF return nothing. */
	assert_int_equal(rd(fs, ip, nblk * BS, back, 10), 0);
	assert_int_equal(rd(fs, ip, nblk * BS + 5000, back, 10), 0);

	/* A write far past EOF leaves a hole that reads as zeroes. */
	const uint64_t far = 10 * MiB + 100;
	wr(fs, ip, far, "tail", 4);
	assert_int_equal(stat_of(fs, ino).st_size, far + 4);
	assert_int_equal(emap_count(ip), 2);
	assert_int_equal(bfree(fs), free0 - nblk - 1);
	assert_int_equal(rd(fs, ip, nblk * BS - 10, back, 20000), 20000);
	assert_memory_equal(back, buf + nblk * BS - 10, 10);
	assert_true(all_zero(back + 10, 20000 - 10));
	/* The rest of the new block around "tail" is zero too. */
	assert_int_equal(rd(fs, ip, far - 100, back, 104), 104);
	assert_true(all_zero(back, 100));
	assert_memory_equal(back + 100, "tail", 4);
	closei(fs, ip);

	remount(f);
	fs = f->fs;
	ip = openi(fs, ino);
	assert_int_equal(emap_count(ip), 2);
	assert_int_equal(bfree(fs), free0 - nblk - 1);
	assert_int_equal(rd(fs, ip, 0, back, nblk * BS), nblk * BS);
	assert_memory_equal(back, buf, nblk * BS);
	assert_int_equal(rd(fs, ip, far, back, 100), 4);
	assert_memory_equal(back, "tail", 4);
	closei(fs, ip);
	free(buf);
	free(back);
}

/* Large writes are placed so that file and media offsets agree modulo 2 MiB (huge mappings). */
static void test_large_write_aligned(void **state)
{
	struct fixture *f = *state;
	struct fs *fs = f->fs;
	const size_t len = 8 * MiB;
	char *buf = malloc(len), *back = malloc(len);
	const uint64_t align = DAXFS_HUGE_ALIGN / BS;

	assert_non_null(buf);
	assert_non_null(back);
	/* Disturb the allocator first so that "aligned" cannot happen by accident. */
	uint64_t small = mkfile(fs, ROOT, "small");
	struct inode *ip = openi(fs, small);
	wr(fs, ip, 0, "x", 1);
	closei(fs, ip);

	for (size_t i = 0; i < len; i += BS)
		block_pattern(buf + i, i / BS, 2);
	uint64_t ino = mkfile(fs, ROOT, "big");
	ip = openi(fs, ino);
	wr(fs, ip, 0, buf, len);
	struct emap_cursor c;
	struct daxfs_extent e;
	uint64_t mapped = 0;
	for (bool more = emap_seek(ip, 0, &c, &e); more; more = emap_next(ip, &c, &e)) {
		if (e.pblk % align != e.lblk % align)
			fail_msg("extent %llu+%u at media block %llu is not 2 MiB congruent",
				 (unsigned long long)e.lblk, e.len, (unsigned long long)e.pblk);
		mapped += e.len;
	}
	assert_int_equal(mapped, len / BS);
	assert_true(emap_count(ip) <= 2);
	assert_int_equal(rd(fs, ip, 0, back, len), len);
	assert_memory_equal(back, buf, len);

	/* Starting mid-file, at a block that is not a multiple of 2 MiB. */
	uint64_t ino2 = mkfile(fs, ROOT, "big2");
	struct inode *ip2 = openi(fs, ino2);
	wr(fs, ip2, 3 * MiB + 5 * BS, buf, 4 * MiB);
	assert_true(emap_seek(ip2, 0, &c, &e));
	assert_int_equal(e.lblk, (3 * MiB + 5 * BS) / BS);
	assert_int_equal(e.pblk % align, e.lblk % align);
	closei(fs, ip2);
	closei(fs, ip);
	free(buf);
	free(back);
}

/* Check file contents: blocks in `present` carry pattern(tag), the others read as zeroes. */
static void check_sparse(struct fs *fs, struct inode *ip, uint64_t nblk, const uint8_t *present, unsigned tag)
{
	char *back = malloc(nblk * BS), want[BS];
	uint64_t size = ip->d.size < nblk * BS ? ip->d.size : nblk * BS;

	assert_non_null(back);
	assert_int_equal(rd(fs, ip, 0, back, nblk * BS), size);
	memset(back + size, 0, nblk * BS - size);	/* past EOF: as good as a hole */
	for (uint64_t b = 0; b < nblk; b++) {
		if (present[b]) {
			block_pattern(want, b, tag);
			if (memcmp(back + b * BS, want, BS))
				fail_msg("block %llu: wrong data", (unsigned long long)b);
		} else if (!all_zero(back + b * BS, BS)) {
			fail_msg("block %llu: a hole that does not read as zeroes", (unsigned long long)b);
		}
	}
	free(back);
}

static void test_fragmented_file(void **state)
{
	struct fixture *f = *state;
	struct fs *fs = f->fs;
	const uint64_t nblk = 8000;	/* 4000 extents: inline ones, then a chain of extent blocks */
	uint8_t *present = calloc(nblk, 1);
	char buf[BS];

	assert_non_null(present);
	uint64_t ino = mkfile(fs, ROOT, "frag");
	uint64_t free0 = bfree(fs);
	struct inode *ip = openi(fs, ino);
	for (uint64_t b = 0; b < nblk; b += 2) {
		block_pattern(buf, b, 3);
		wr(fs, ip, b * BS, buf, BS);
		present[b] = 1;
	}
	assert_int_equal(emap_count(ip), nblk / 2);
	assert_true(ip->map.nleaves > 1);
	assert_true(ip->d.ext_next != 0);
	uint64_t eblocks = ip->map.nleaves - 1;
	/* The extent blocks are the file's too. */
	assert_int_equal(ip->d.blocks, nblk / 2 + eblocks);
	assert_int_equal(stat_of(fs, ino).st_blocks, (nblk / 2 + eblocks) * (BS / 512));
	assert_int_equal(bfree(fs), free0 - nblk / 2 - eblocks);
	check_sparse(fs, ip, nblk, present, 3);
	/* SEEK_DATA / SEEK_HOLE walk the alternation. */
	uint64_t pos;
	assert_int_equal(file_lseek(fs, ip, 0, SEEK_HOLE, &pos), 0);
	assert_int_equal(pos, BS);
	assert_int_equal(file_lseek(fs, ip, BS, SEEK_DATA, &pos), 0);
	assert_int_equal(pos, 2 * BS);
	assert_int_equal(file_lseek(fs, ip, 5001 * BS + 7, SEEK_DATA, &pos), 0);
	assert_int_equal(pos, 5002 * BS);
	closei(fs, ip);

	remount(f);
	fs = f->fs;
	ip = openi(fs, ino);
	assert_int_equal(emap_count(ip), nblk / 2);
	assert_int_equal(ip->map.nleaves - 1, eblocks);
	assert_int_equal(bfree(fs), free0 - nblk / 2 - eblocks);
	check_sparse(fs, ip, nblk, present, 3);

	/* Punch a range covering many extents and several extent blocks. */
	assert_int_equal(namei_fallocate(fs, ip, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 1000 * BS, 3001 * BS, NULL), 0);
	uint64_t gone = 0;
	for (uint64_t b = 1000; b <= 4000; b++) {
		gone += present[b];
		present[b] = 0;
	}
	assert_int_equal(gone, 1501);	/* the even blocks 1000..4000 */
	assert_int_equal(emap_count(ip), nblk / 2 - gone);
	assert_int_equal(stat_of(fs, ino).st_size, (nblk - 1) * BS);	/* size kept (last block written: nblk - 2) */
	check_sparse(fs, ip, nblk, present, 3);
	eblocks = ip->map.nleaves - 1;
	assert_int_equal(ip->d.blocks, nblk / 2 - gone + eblocks);
	assert_int_equal(bfree(fs), free0 - (nblk / 2 - gone) - eblocks);
	closei(fs, ip);

	remount(f);
	fs = f->fs;
	ip = openi(fs, ino);
	assert_int_equal(emap_count(ip), nblk / 2 - gone);
	check_sparse(fs, ip, nblk, present, 3);
	assert_int_equal(bfree(fs), free0 - (nblk / 2 - gone) - eblocks);

	/* Truncate to nothing: every data and extent block comes back. */
	struct stat attr = { .st_size = 0 };
	assert_int_equal(namei_setattr(fs, ino, &attr, NAMEI_SET_SIZE, NULL, NULL), 0);
	assert_int_equal(emap_count(ip), 0);
	assert_int_equal(ip->d.ext_next, 0);
	assert_int_equal(ip->d.blocks, 0);
	assert_int_equal(stat_of(fs, ino).st_blocks, 0);
	assert_int_equal(bfree(fs), free0);
	closei(fs, ip);
	remount(f);
	assert_int_equal(bfree(f->fs), free0);
	ip = openi(f->fs, ino);
	assert_int_equal(emap_count(ip), 0);
	closei(f->fs, ip);
	free(present);
}

/* The smallest journal (256 KiB): big operations must split into several transactions. */
static int setup_small_journal(void **state)
{
	return mount_fixture(state, "fs-smalljournal", 256 * MiB, &(struct mkfs_params){ .journal_bytes = 256 * KiB });
}

/*
 * Freeing a file with more extents than one transaction can carry: truncate and unlink go in
 * several transactions, and every block comes back.
 */
static void test_free_many_extents(void **state)
{
	struct fixture *f = *state;
	struct fs *fs = f->fs;
	const uint64_t nblk = 32000;
	char buf[BS];

	memset(buf, 0x42, sizeof(buf));
	uint64_t a = mkfile(fs, ROOT, "many-a");
	uint64_t b = mkfile(fs, ROOT, "many-b");
	uint64_t free0 = bfree(fs);
	struct inode *ia = openi(fs, a), *ib = openi(fs, b);
	/* Two files interleaved block by block: neither can grow in place, both fragment. */
	for (uint64_t k = 0; k < nblk / 2; k++) {
		wr(fs, ia, 2 * k * BS, buf, BS);
		wr(fs, ib, k * BS, buf, BS);
	}
	uint64_t ea = emap_count(ia);
	print_message("interleaved files: %llu and %llu extents, %u and %u leaves\n", (unsigned long long)ea,
		      (unsigned long long)emap_count(ib), ia->map.nleaves, ib->map.nleaves);
	assert_true(ea > 10000);
	/* Cut a to half: thousands of extents in one call, more than one transaction holds. */
	struct stat attr = { .st_size = (off_t)(nblk / 2 * BS) };
	uint64_t commits = fs->sbi.journal.commits;
	assert_int_equal(namei_setattr(fs, a, &attr, NAMEI_SET_SIZE, NULL, NULL), 0);
	assert_true(fs->sbi.journal.commits - commits > 1);
	uint64_t left = emap_count(ia);
	assert_true(left < ea && left > 0);
	assert_int_equal(ia->d.blocks, nblk / 4 + ia->map.nleaves - 1);
	closei(fs, ia);
	closei(fs, ib);
	remount(f);
	fs = f->fs;
	ia = openi(fs, a);
	assert_int_equal(emap_count(ia), left);
	closei(fs, ia);
	/* Unlink both (b still open while a goes). */
	ib = openi(fs, b);
	assert_int_equal(namei_unlink(fs, ROOT, "many-a"), 0);
	assert_int_equal(namei_unlink(fs, ROOT, "many-b"), 0);
	closei(fs, ib);
	assert_int_equal(bfree(fs), free0);
	remount(f);
	assert_int_equal(bfree(f->fs), free0);
}

/*
 * Filling the holes of a sparse file through file_write: data, accounting and the merge invariant.
 * How far the extents merge is the allocator's business, so the count is only printed: today the
 * extent blocks (best fit, no goal) land in the file's own one-block holes, and each displaced
 * block then takes the lowest hole left, another block's place, so nothing merges at all.
 * test_emap_merge_across_leaves checks merging on a fixed layout.
 */
static void test_fill_holes(void **state)
{
	struct fixture *f = *state;
	struct fs *fs = f->fs;
	const uint64_t nblk = 2000;
	uint8_t *present = calloc(nblk, 1);
	char buf[BS];

	assert_non_null(present);
	uint64_t ino = mkfile(fs, ROOT, "merge");
	uint64_t free0 = bfree(fs);
	struct inode *ip = openi(fs, ino);
	for (uint64_t b = 0; b < nblk; b += 2) {
		block_pattern(buf, b, 4);
		wr(fs, ip, b * BS, buf, BS);
		present[b] = 1;
	}
	assert_int_equal(emap_count(ip), nblk / 2);
	struct emap_cursor c;
	struct daxfs_extent e;
	for (uint64_t b = 1; b < nblk; b += 2) {
		block_pattern(buf, b, 4);
		wr(fs, ip, b * BS, buf, BS);
		present[b] = 1;
	}
	/* Extents that continue each other on the media must have merged, across leaf boundaries too. */
	uint64_t count = emap_count(ip);
	print_message("2000 fragments filled in: %llu extents, %u leaves\n", (unsigned long long)count,
		      ip->map.nleaves);
	struct daxfs_extent prev = { 0 };
	bool more = emap_seek(ip, 0, &c, &e);
	assert_true(more);
	for (uint64_t k = 0; more; k++, prev = e, more = emap_next(ip, &c, &e))
		if (k && prev.lblk + prev.len == e.lblk && prev.pblk + prev.len == e.pblk)
			fail_msg("extents %llu+%u@%llu and %llu+%u@%llu were not merged", (unsigned long long)prev.lblk,
				 prev.len, (unsigned long long)prev.pblk, (unsigned long long)e.lblk, e.len,
				 (unsigned long long)e.pblk);
	/* The file owns its data blocks and its extent blocks, and nothing else is used. */
	uint64_t eblocks = ip->map.nleaves - 1;
	assert_int_equal(ip->d.blocks, nblk + eblocks);
	assert_int_equal(bfree(fs), free0 - nblk - eblocks);
	check_sparse(fs, ip, nblk, present, 4);
	closei(fs, ip);
	remount(f);
	ip = openi(f->fs, ino);
	assert_int_equal(emap_count(ip), count);
	check_sparse(f->fs, ip, nblk, present, 4);
	closei(f->fs, ip);
	free(present);
}

/*
 * emap_insert on a fixed layout: a reserved run of media blocks mapped one block in two, then the
 * gaps filled in random order.  Every insert that continues a neighbour must merge with it (both
 * sides at once when it closes a gap), leaves that empty must go, and the end is one extent.
 */
static void test_emap_merge_across_leaves(void **state)
{
	struct fixture *f = *state;
	struct fs *fs = f->fs;
	const uint64_t n = 3000;
	uint8_t *present = calloc(n + 2, 1);	/* present[k + 1]: block k mapped */
	uint64_t *order = calloc(n / 2, sizeof(*order));
	uint64_t rng = 7, runs = 0, maxleaves = 0;

	assert_non_null(present);
	assert_non_null(order);
	uint64_t ino = mkfile(fs, ROOT, "emap");
	uint64_t free0 = bfree(fs);
	struct inode *ip = openi(fs, ino);
	/* The run is the caller's: extent blocks cannot land in its gaps. */
	struct alloc_req req = { .want = n };
	uint64_t first, got;
	assert_int_equal(sbi_alloc(&fs->sbi, &req, &first, &got), 0);
	assert_int_equal(got, n);

	for (int phase = 0; phase < 2; phase++) {
		for (uint64_t i = 0; i < n / 2; i++)
			order[i] = 2 * i + (uint64_t)phase;
		if (phase == 1) {
			for (uint64_t i = n / 2 - 1; i > 0; i--) {
				uint64_t j = rng_below(&rng, i + 1), t = order[i];

				order[i] = order[j];
				order[j] = t;
			}
		}
		for (uint64_t i = 0; i < n / 2; i++) {
			uint64_t k = order[i];
			struct tx tx;

			tx_init(&tx, &fs->sbi.journal);
			pthread_rwlock_wrlock(&ip->lock);
			assert_int_equal(emap_insert(fs, &tx, ip, k, first + k, 1), 0);
			sbi_use(&fs->sbi, &tx, first + k, 1);
			ip->d.blocks++;
			if ((k + 1) * BS > ip->d.size)
				ip->d.size = (k + 1) * BS;
			emap_log(fs, &tx, ip);
			inode_log(fs, &tx, ip);
			assert_int_equal(sbi_commit(&fs->sbi, &tx), 0);
			pthread_rwlock_unlock(&ip->lock);
			/* The model: a new run, or joined to one neighbour, or closing the gap between two. */
			runs = runs + 1 - present[k] - present[k + 2];
			present[k + 1] = 1;
			if (emap_count(ip) != runs)
				fail_msg("phase %d, block %llu: %llu extents, %llu runs of blocks", phase,
					 (unsigned long long)k, (unsigned long long)emap_count(ip),
					 (unsigned long long)runs);
			if (ip->map.nleaves > maxleaves)
				maxleaves = ip->map.nleaves;
			/* Every extent block left is in use: blocks = data + extent blocks. */
			assert_int_equal(ip->d.blocks, (phase ? n / 2 + i + 1 : i + 1) + ip->map.nleaves - 1);
		}
	}
	assert_true(maxleaves > 5);
	assert_int_equal(emap_count(ip), 1);
	assert_int_equal(ip->map.nleaves, 1);
	assert_int_equal(ip->d.ext_next, 0);
	struct emap_cursor c;
	struct daxfs_extent e;
	assert_true(emap_seek(ip, 0, &c, &e));
	assert_int_equal(e.lblk, 0);
	assert_int_equal(e.pblk, first);
	assert_int_equal(e.len, n);
	assert_int_equal(bfree(fs), free0 - n);	/* the extent blocks all came back */
	closei(fs, ip);
	remount(f);
	fs = f->fs;
	ip = openi(fs, ino);
	assert_int_equal(emap_count(ip), 1);
	assert_int_equal(bfree(fs), free0 - n);
	closei(fs, ip);
	assert_int_equal(namei_unlink(fs, ROOT, "emap"), 0);
	assert_int_equal(bfree(fs), free0);
	free(order);
	free(present);
}

static void test_punch_holes(void **state)
{
	struct fixture *f = *state;
	struct fs *fs = f->fs;
	const uint64_t nblk = 100;
	const int mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
	char *buf = malloc(nblk * BS), *back = malloc(nblk * BS);
	uint64_t pos;

	assert_non_null(buf);
	assert_non_null(back);
	for (uint64_t b = 0; b < nblk; b++)
		block_pattern(buf + b * BS, b, 5);
	uint64_t ino = mkfile(fs, ROOT, "holes");
	struct inode *ip = openi(fs, ino);
	wr(fs, ip, 0, buf, nblk * BS);
	assert_int_equal(emap_count(ip), 1);
	uint64_t free0 = bfree(fs);

	/* Whole blocks in the middle: the extent splits in two, the blocks come back. */
	assert_int_equal(namei_fallocate(fs, ip, mode, 10 * BS, 10 * BS, NULL), 0);
	memset(buf + 10 * BS, 0, 10 * BS);
	assert_int_equal(emap_count(ip), 2);
	assert_int_equal(bfree(fs), free0 + 10);
	assert_int_equal(stat_of(fs, ino).st_blocks, (nblk - 10) * (BS / 512));
	assert_int_equal(namei_fallocate(fs, ip, mode, 50 * BS, 10 * BS, NULL), 0);
	memset(buf + 50 * BS, 0, 10 * BS);
	assert_int_equal(emap_count(ip), 3);
	/* Inside one block: zeroes, no unmapping. */
	assert_int_equal(namei_fallocate(fs, ip, mode, 70 * BS + 100, 200, NULL), 0);
	memset(buf + 70 * BS + 100, 0, 200);
	assert_int_equal(emap_count(ip), 3);
	/* Partial blocks at both ends, whole ones between. */
	assert_int_equal(namei_fallocate(fs, ip, mode, 30 * BS + 2048, 3 * BS, NULL), 0);
	memset(buf + 30 * BS + 2048, 0, 3 * BS);
	assert_int_equal(emap_count(ip), 4);
	assert_int_equal(bfree(fs), free0 + 22);
	/* Punching a hole again, or past EOF, changes nothing. */
	assert_int_equal(namei_fallocate(fs, ip, mode, 12 * BS, 4 * BS, NULL), 0);
	assert_int_equal(namei_fallocate(fs, ip, mode, 200 * BS, 4 * BS, NULL), 0);
	assert_int_equal(bfree(fs), free0 + 22);
	assert_int_equal(stat_of(fs, ino).st_size, nblk * BS);
	assert_int_equal(rd(fs, ip, 0, back, nblk * BS), nblk * BS);
	assert_memory_equal(back, buf, nblk * BS);

	assert_int_equal(file_lseek(fs, ip, 0, SEEK_HOLE, &pos), 0);
	assert_int_equal(pos, 10 * BS);
	assert_int_equal(file_lseek(fs, ip, 10 * BS, SEEK_DATA, &pos), 0);
	assert_int_equal(pos, 20 * BS);
	assert_int_equal(file_lseek(fs, ip, 25 * BS + 3, SEEK_DATA, &pos), 0);
	assert_int_equal(pos, 25 * BS + 3);
	assert_int_equal(file_lseek(fs, ip, 25 * BS, SEEK_HOLE, &pos), 0);
	assert_int_equal(pos, 31 * BS);
	assert_int_equal(file_lseek(fs, ip, 55 * BS, SEEK_DATA, &pos), 0);
	assert_int_equal(pos, 60 * BS);
	assert_int_equal(file_lseek(fs, ip, 95 * BS, SEEK_HOLE, &pos), 0);
	assert_int_equal(pos, nblk * BS);	/* the implicit hole at EOF */
	assert_int_equal(file_lseek(fs, ip, nblk * BS, SEEK_DATA, &pos), -ENXIO);
	assert_int_equal(file_lseek(fs, ip, 0, SEEK_SET, &pos), -EINVAL);

	/* Modes the kernel would pass and we do not support. */
	assert_int_equal(namei_fallocate(fs, ip, FALLOC_FL_PUNCH_HOLE, 0, BS, NULL), -EOPNOTSUPP);
	assert_int_equal(namei_fallocate(fs, ip, FALLOC_FL_COLLAPSE_RANGE, 0, BS, NULL), -EOPNOTSUPP);
	assert_int_equal(namei_fallocate(fs, ip, mode, 0, 0, NULL), -EINVAL);
	closei(fs, ip);

	remount(f);
	fs = f->fs;
	ip = openi(fs, ino);
	assert_int_equal(emap_count(ip), 4);
	assert_int_equal(bfree(fs), free0 + 22);
	assert_int_equal(rd(fs, ip, 0, back, nblk * BS), nblk * BS);
	assert_memory_equal(back, buf, nblk * BS);
	/* Everything: no blocks left, size unchanged. */
	assert_int_equal(namei_fallocate(fs, ip, mode, 0, nblk * BS, NULL), 0);
	assert_int_equal(emap_count(ip), 0);
	assert_int_equal(stat_of(fs, ino).st_blocks, 0);
	assert_int_equal(stat_of(fs, ino).st_size, nblk * BS);
	assert_int_equal(bfree(fs), free0 + nblk);
	closei(fs, ip);
	free(buf);
	free(back);
}

/* Punching inside extents when the inline slots are full forces extent blocks to appear. */
static void test_punch_splits_full_leaf(void **state)
{
	struct fixture *f = *state;
	struct fs *fs = f->fs;
	const uint64_t nblk = 60;
	const int mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
	uint8_t present[60];
	char buf[BS];

	uint64_t ino = mkfile(fs, ROOT, "split");
	struct inode *ip = openi(fs, ino);
	for (uint64_t b = 0; b < nblk; b++) {
		block_pattern(buf, b, 6);
		wr(fs, ip, b * BS, buf, BS);
		present[b] = 1;
	}
	/* Five extents: exactly the inline slots. */
	for (uint64_t k = 1; k <= 4; k++) {
		assert_int_equal(namei_fallocate(fs, ip, mode, k * 10 * BS, BS, NULL), 0);
		present[k * 10] = 0;
	}
	assert_int_equal(emap_count(ip), 5);
	assert_int_equal(ip->d.ext_next, 0);
	/* A sixth, from a split in the middle, then one in the last extent (an append). */
	assert_int_equal(namei_fallocate(fs, ip, mode, 25 * BS, BS, NULL), 0);
	present[25] = 0;
	assert_int_equal(namei_fallocate(fs, ip, mode, 55 * BS, BS, NULL), 0);
	present[55] = 0;
	assert_int_equal(emap_count(ip), 7);
	assert_true(ip->d.ext_next != 0);
	check_sparse(fs, ip, nblk, present, 6);
	for (uint64_t b = 1; b < nblk; b += 7) {
		assert_int_equal(namei_fallocate(fs, ip, mode, b * BS, BS, NULL), 0);
		present[b] = 0;
	}
	check_sparse(fs, ip, nblk, present, 6);
	uint64_t count = emap_count(ip);
	closei(fs, ip);
	remount(f);
	ip = openi(f->fs, ino);
	assert_int_equal(emap_count(ip), count);
	check_sparse(f->fs, ip, nblk, present, 6);
	closei(f->fs, ip);
}

static void test_fallocate(void **state)
{
	struct fixture *f = *state;
	struct fs *fs = f->fs;
	char *back = malloc(2 * MiB);
	uint64_t pos;

	assert_non_null(back);
	uint64_t ino = mkfile(fs, ROOT, "prealloc");
	uint64_t free0 = bfree(fs);
	struct inode *ip = openi(fs, ino);
	assert_int_equal(namei_fallocate(fs, ip, 0, 0, 1 * MiB, NULL), 0);
	struct stat st = stat_of(fs, ino);
	assert_int_equal(st.st_size, 1 * MiB);
	assert_int_equal(st.st_blocks, MiB / 512);
	assert_int_equal(bfree(fs), free0 - MiB / BS);
	/* Preallocated blocks read as zeroes (whatever the media held) and count as data. */
	assert_int_equal(rd(fs, ip, 0, back, MiB), MiB);
	assert_true(all_zero(back, MiB));
	assert_int_equal(file_lseek(fs, ip, 0, SEEK_HOLE, &pos), 0);
	assert_int_equal(pos, MiB);

	/* Beyond EOF with KEEP_SIZE: blocks, no size. */
	assert_int_equal(namei_fallocate(fs, ip, FALLOC_FL_KEEP_SIZE, MiB, MiB, NULL), 0);
	assert_int_equal(stat_of(fs, ino).st_size, MiB);
	assert_int_equal(stat_of(fs, ino).st_blocks, 2 * MiB / 512);
	/* Overlapping what is mapped allocates only the holes. */
	assert_int_equal(namei_fallocate(fs, ip, 0, MiB / 2, 2 * MiB, NULL), 0);
	assert_int_equal(stat_of(fs, ino).st_size, MiB / 2 + 2 * MiB);
	assert_int_equal(stat_of(fs, ino).st_blocks, (MiB / 2 + 2 * MiB) / 512);
	assert_int_equal(bfree(fs), free0 - (MiB / 2 + 2 * MiB) / BS);

	/* ZERO_RANGE over written data. */
	char data[3 * BS];
	memset(data, 0x77, sizeof(data));
	wr(fs, ip, 0, data, sizeof(data));
	assert_int_equal(namei_fallocate(fs, ip, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, 100, BS, NULL), 0);
	assert_int_equal(rd(fs, ip, 0, back, 3 * BS), 3 * BS);
	assert_true(back[99] == 0x77 && back[100] == 0 && back[100 + BS - 1] == 0 && back[100 + BS] == 0x77);
	assert_true(all_zero(back + 100, BS));

	/* Errors: bad modes, zero length, not a regular file, more than the free space. */
	assert_int_equal(namei_fallocate(fs, ip, FALLOC_FL_ZERO_RANGE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0,
				      BS, NULL), -EOPNOTSUPP);
	assert_int_equal(namei_fallocate(fs, ip, 0, 0, 0, NULL), -EINVAL);
	assert_int_equal(namei_fallocate(fs, ip, 0, DAXFS_MAX_FILE_SIZE, 1, NULL), -EFBIG);
	uint64_t before = bfree(fs);
	assert_int_equal(namei_fallocate(fs, ip, 0, 0, 1 * GiB, NULL), -ENOSPC);
	assert_int_equal(bfree(fs), before);	/* nothing allocated */
	assert_int_equal(stat_of(fs, ino).st_size, MiB / 2 + 2 * MiB);
	closei(fs, ip);
	struct inode *dp = openi(fs, ROOT);
	assert_int_equal(namei_fallocate(fs, dp, 0, 0, BS, NULL), -EISDIR);
	closei(fs, dp);

	remount(f);
	ip = openi(f->fs, ino);
	assert_int_equal(stat_of(f->fs, ino).st_blocks, (MiB / 2 + 2 * MiB) / 512);
	assert_int_equal(rd(f->fs, ip, 0, back, 2 * MiB), 2 * MiB);
	assert_true(back[99] == 0x77 && back[100] == 0 && back[100 + BS] == 0x77);
	assert_true(all_zero(back + 3 * BS, 2 * MiB - 3 * BS));
	closei(f->fs, ip);
	free(back);
}

static void test_truncate(void **state)
{
	struct fixture *f = *state;
	struct fs *fs = f->fs;
	char data[3 * BS], back[3 * BS];
	struct stat attr, out;

	memset(&attr, 0, sizeof(attr));

	memset(data, 0xaa, sizeof(data));
	uint64_t ino = mkfile(fs, ROOT, "trunc");
	uint64_t free0 = bfree(fs);
	struct inode *ip = openi(fs, ino);
	wr(fs, ip, 0, data, sizeof(data));
	/* Shrink to the middle of block 1, then grow again: the old bytes must not come back. */
	attr.st_size = 5000;
	assert_int_equal(namei_setattr(fs, ino, &attr, NAMEI_SET_SIZE, &out, NULL), 0);
	assert_int_equal(out.st_size, 5000);
	assert_int_equal(out.st_blocks, 2 * (BS / 512));
	assert_int_equal(bfree(fs), free0 - 2);
	attr.st_size = 3 * BS;
	assert_int_equal(namei_setattr(fs, ino, &attr, NAMEI_SET_SIZE, &out, NULL), 0);
	assert_int_equal(out.st_blocks, 2 * (BS / 512));	/* growing allocates nothing */
	assert_int_equal(rd(fs, ip, 0, back, sizeof(back)), sizeof(back));
	assert_memory_equal(back, data, 5000);
	assert_true(all_zero(back + 5000, sizeof(back) - 5000));
	/* Re-extending by writing past EOF in the same block: the gap is zero. */
	attr.st_size = 100;
	assert_int_equal(namei_setattr(fs, ino, &attr, NAMEI_SET_SIZE, NULL, NULL), 0);
	wr(fs, ip, 200, "z", 1);
	assert_int_equal(rd(fs, ip, 0, back, 201), 201);
	assert_true(all_zero(back + 100, 100));
	assert_int_equal(back[200], 'z');

	attr.st_size = (off_t)DAXFS_MAX_FILE_SIZE + 1;
	assert_int_equal(namei_setattr(fs, ino, &attr, NAMEI_SET_SIZE, NULL, NULL), -EFBIG);
	attr.st_size = 0;
	assert_int_equal(namei_setattr(fs, ROOT, &attr, NAMEI_SET_SIZE, NULL, NULL), -EISDIR);
	closei(fs, ip);

	/* O_TRUNC empties the file. */
	assert_int_equal(namei_open(fs, ino, O_RDWR | O_TRUNC, &ip, NULL), 0);
	assert_int_equal(stat_of(fs, ino).st_size, 0);
	assert_int_equal(stat_of(fs, ino).st_blocks, 0);
	assert_int_equal(bfree(fs), free0);
	closei(fs, ip);

	/* Mode, owner and times. */
	memset(&attr, 0, sizeof(attr));
	attr.st_mode = 0600;
	attr.st_uid = 42;
	attr.st_gid = 43;
	attr.st_mtim.tv_sec = 1000000;
	attr.st_mtim.tv_nsec = 5;
	assert_int_equal(namei_setattr(fs, ino, &attr, NAMEI_SET_MODE | NAMEI_SET_UID | NAMEI_SET_GID | NAMEI_SET_MTIME, &out, NULL), 0);
	assert_int_equal(out.st_mode, S_IFREG | 0600);
	assert_int_equal(out.st_uid, 42);
	assert_int_equal(out.st_mtim.tv_sec, 1000000);

	remount(f);
	struct stat st = stat_of(f->fs, ino);
	assert_int_equal(st.st_size, 0);
	assert_int_equal(st.st_mode, S_IFREG | 0600);
	assert_int_equal(st.st_uid, 42);
	assert_int_equal(st.st_gid, 43);
	assert_int_equal(st.st_mtim.tv_sec, 1000000);
	assert_int_equal(st.st_mtim.tv_nsec, 5);
}

#define NENT 20000

static void test_big_directory(void **state)
{
	struct fixture *f = *state;
	struct fs *fs = f->fs;
	uint64_t *ino = calloc(NENT, sizeof(*ino));
	char name[32];
	struct entry e;
	struct names nm;

	assert_non_null(ino);
	uint64_t ff0 = ffree(fs);
	uint64_t d = mkdir_(fs, ROOT, "big");
	for (int i = 0; i < NENT; i++) {
		snprintf(name, sizeof(name), "file-%05d", i);
		ino[i] = mkfile(fs, d, name);
	}
	assert_int_equal(ffree(fs), ff0 - 1 - NENT);
	/* The directory grew to whole blocks and holds every name. */
	struct stat st = stat_of(fs, d);
	assert_true(st.st_size >= (off_t)(NENT * DAXFS_DIRENT_LEN(10)));
	assert_int_equal(st.st_size % BS, 0);
	for (int i = 0; i < NENT; i++) {
		snprintf(name, sizeof(name), "file-%05d", i);
		assert_int_equal(lookup(fs, d, name), ino[i]);
	}
	/* Remove the even ones. */
	for (int i = 0; i < NENT; i += 2) {
		snprintf(name, sizeof(name), "file-%05d", i);
		assert_int_equal(namei_unlink(fs, d, name), 0);
	}
	assert_int_equal(ffree(fs), ff0 - 1 - NENT / 2);

	for (int pass = 0; pass < 2; pass++) {
		for (int i = 0; i < NENT; i++) {
			snprintf(name, sizeof(name), "file-%05d", i);
			int ret = namei_lookup(fs, d, name, &e);

			if (i % 2) {
				assert_int_equal(ret, 0);
				assert_int_equal(e.ino, ino[i]);
				forget(fs, e.ino);
			} else if (ret != -ENOENT) {
				fail_msg("pass %d: removed %s still found (%d)", pass, name, ret);
			}
		}
		/* readdir: ".", "..", then exactly the survivors, each once; in one go and in chunks. */
		for (int chunk = 0; chunk < 2; chunk++) {
			uint8_t *seen = calloc(NENT, 1);

			assert_non_null(seen);
			list_dir(fs, d, chunk ? 97 : 0, &nm);
			assert_int_equal(nm.n, 2 + NENT / 2);
			assert_string_equal(nm.name[0], ".");
			assert_int_equal(nm.ino[0], d);
			assert_string_equal(nm.name[1], "..");
			assert_int_equal(nm.ino[1], ROOT);
			for (size_t k = 2; k < nm.n; k++) {
				int i;

				if (sscanf(nm.name[k], "file-%05d", &i) != 1 || i < 0 || i >= NENT)
					fail_msg("unexpected name %s", nm.name[k]);
				if (i % 2 == 0)
					fail_msg("removed name %s listed", nm.name[k]);
				if (seen[i])
					fail_msg("%s listed twice", nm.name[k]);
				seen[i] = 1;
				assert_int_equal(nm.ino[k], ino[i]);
			}
			free_names(&nm);
			free(seen);
		}
		if (pass == 0) {
			remount(f);
			fs = f->fs;
			assert_int_equal(ffree(fs), ff0 - 1 - NENT / 2);
			/* Look the directory up again and keep the reference, as the kernel would. */
			assert_int_equal(namei_lookup(fs, ROOT, "big", &e), 0);
			assert_int_equal(e.ino, d);
		}
	}
	/* Freed room is reused: adding back as many names does not grow the directory. */
	off_t size = stat_of(fs, d).st_size;
	for (int i = 0; i < NENT; i += 2) {
		snprintf(name, sizeof(name), "file-%05d", i);
		ino[i] = mkfile(fs, d, name);
	}
	assert_int_equal(stat_of(fs, d).st_size, size);
	free(ino);
}

static void test_rename(void **state)
{
	struct fixture *f = *state;
	struct fs *fs = f->fs;
	struct entry e;
	char back[16];

	uint64_t a = mkfile(fs, ROOT, "a"), b = mkfile(fs, ROOT, "b"), c = mkfile(fs, ROOT, "c");
	struct inode *ip = openi(fs, a);
	wr(fs, ip, 0, "AAAA", 4);
	closei(fs, ip);
	ip = openi(fs, b);
	wr(fs, ip, 0, "BBBB", 4);
	closei(fs, ip);
	uint64_t free0 = bfree(fs), ff0 = ffree(fs);

	/* Over an existing file: the target's inode and blocks go away. */
	assert_int_equal(namei_rename(fs, ROOT, "a", ROOT, "b", 0), 0);
	assert_int_equal(namei_lookup(fs, ROOT, "a", &e), -ENOENT);
	assert_int_equal(lookup(fs, ROOT, "b"), a);
	assert_int_equal(bfree(fs), free0 + 1);
	assert_int_equal(ffree(fs), ff0 + 1);
	ip = openi(fs, a);
	assert_int_equal(rd(fs, ip, 0, back, sizeof(back)), 4);
	assert_memory_equal(back, "AAAA", 4);
	closei(fs, ip);

	/* NOREPLACE and EXCHANGE. */
	assert_int_equal(namei_rename(fs, ROOT, "c", ROOT, "b", NAMEI_RENAME_NOREPLACE), -EEXIST);
	assert_int_equal(namei_rename(fs, ROOT, "c", ROOT, "b", NAMEI_RENAME_EXCHANGE), 0);
	assert_int_equal(lookup(fs, ROOT, "b"), c);
	assert_int_equal(lookup(fs, ROOT, "c"), a);
	assert_int_equal(namei_rename(fs, ROOT, "c", ROOT, "zz", NAMEI_RENAME_EXCHANGE), -ENOENT);
	assert_int_equal(namei_rename(fs, ROOT, "c", ROOT, "b", NAMEI_RENAME_EXCHANGE | NAMEI_RENAME_NOREPLACE), -EINVAL);
	assert_int_equal(namei_rename(fs, ROOT, "nope", ROOT, "x", 0), -ENOENT);
	/* Two names of one inode: nothing happens. */
	assert_int_equal(namei_link(fs, a, ROOT, "c2", &e), 0);
	forget(fs, a);
	assert_int_equal(stat_of(fs, a).st_nlink, 2);
	assert_int_equal(namei_rename(fs, ROOT, "c", ROOT, "c2", 0), 0);
	assert_int_equal(lookup(fs, ROOT, "c"), a);
	assert_int_equal(lookup(fs, ROOT, "c2"), a);
	assert_int_equal(stat_of(fs, a).st_nlink, 2);

	/* Directories: moving between parents fixes link counts and "..". */
	uint64_t d1 = mkdir_(fs, ROOT, "d1"), d2 = mkdir_(fs, ROOT, "d2");
	uint64_t sub = mkdir_(fs, d1, "sub");
	mkfile(fs, sub, "inner");
	assert_int_equal(stat_of(fs, d1).st_nlink, 3);
	assert_int_equal(namei_rename(fs, d1, "sub", d2, "moved", 0), 0);
	assert_int_equal(stat_of(fs, d1).st_nlink, 2);
	assert_int_equal(stat_of(fs, d2).st_nlink, 3);
	assert_int_equal(lookup(fs, sub, ".."), d2);
	assert_int_equal(lookup(fs, d2, "moved"), sub);
	/* Not below itself; not over a non-empty directory; kinds must match. */
	assert_int_equal(namei_rename(fs, ROOT, "d2", sub, "loop", 0), -EINVAL);
	assert_int_equal(namei_rename(fs, d2, "moved", sub, "loop", 0), -EINVAL);
	uint64_t d3 = mkdir_(fs, ROOT, "d3");
	assert_int_equal(namei_rename(fs, ROOT, "d3", d2, "moved", 0), -ENOTEMPTY);
	assert_int_equal(namei_rename(fs, ROOT, "c", ROOT, "d3", 0), -EISDIR);
	assert_int_equal(namei_rename(fs, ROOT, "d3", ROOT, "c", 0), -ENOTDIR);
	assert_int_equal(namei_rename(fs, ROOT, ".", ROOT, "x", 0), -EBUSY);
	/* Exchanging a directory and a file between parents moves one ".." link. */
	uint64_t fx = mkfile(fs, d1, "fx");
	assert_int_equal(namei_rename(fs, d2, "moved", d1, "fx", NAMEI_RENAME_EXCHANGE), 0);
	assert_int_equal(lookup(fs, d1, "fx"), sub);
	assert_int_equal(lookup(fs, d2, "moved"), fx);
	assert_int_equal(lookup(fs, sub, ".."), d1);
	assert_int_equal(stat_of(fs, d1).st_nlink, 3);
	assert_int_equal(stat_of(fs, d2).st_nlink, 2);
	assert_int_equal(namei_rename(fs, d1, "fx", d2, "moved", NAMEI_RENAME_EXCHANGE), 0);	/* and back */
	assert_int_equal(lookup(fs, sub, ".."), d2);
	assert_int_equal(stat_of(fs, d1).st_nlink, 2);
	assert_int_equal(stat_of(fs, d2).st_nlink, 3);
	/* Over an empty directory. */
	uint64_t d4 = mkdir_(fs, ROOT, "d4");
	forget(fs, d4);	/* or its number stays taken after the rename frees it */
	uint64_t ff1 = ffree(fs);
	assert_int_equal(namei_rename(fs, ROOT, "d3", ROOT, "d4", 0), 0);
	assert_int_equal(lookup(fs, ROOT, "d4"), d3);
	assert_int_equal(ffree(fs), ff1 + 1);

	remount(f);
	fs = f->fs;
	assert_int_equal(lookup(fs, ROOT, "b"), c);
	assert_int_equal(lookup(fs, ROOT, "c"), a);
	assert_int_equal(lookup(fs, d2, "moved"), sub);
	assert_int_equal(lookup(fs, sub, ".."), d2);
	assert_int_equal(lookup(fs, sub, "inner") > 0, 1);
	assert_int_equal(stat_of(fs, d1).st_nlink, 2);
	assert_int_equal(stat_of(fs, d2).st_nlink, 3);
	assert_int_equal(lookup(fs, ROOT, "d4"), d3);
	assert_int_equal(namei_lookup(fs, ROOT, "d3", &e), -ENOENT);
	/* root: ".", "..", b, c, c2, d1, d2, d4 */
	assert_int_equal(stat_of(fs, ROOT).st_nlink, 2 + 3);
}

static void test_orphans(void **state)
{
	struct fixture *f = *state;
	struct fs *fs = f->fs;
	char data[10 * BS], back[10 * BS];
	struct entry e;

	memset(data, 0x3c, sizeof(data));
	uint64_t ff0 = ffree(fs);
	uint64_t ino = mkfile(fs, ROOT, "open-unlinked");
	uint64_t free0 = bfree(fs);	/* after the root directory got its first block */
	struct inode *ip = openi(fs, ino);
	wr(fs, ip, 0, data, sizeof(data));
	assert_int_equal(namei_unlink(fs, ROOT, "open-unlinked"), 0);
	assert_int_equal(namei_lookup(fs, ROOT, "open-unlinked", &e), -ENOENT);
	/* Still open: data readable, blocks and inode kept, the inode on the orphan list. */
	assert_int_equal(fs->orphans.used, 1);
	assert_int_equal(stat_of(fs, ino).st_nlink, 0);
	assert_int_equal(rd(fs, ip, 0, back, sizeof(back)), sizeof(back));
	assert_memory_equal(back, data, sizeof(back));
	wr(fs, ip, sizeof(data), "more", 4);
	assert_int_equal(bfree(fs), free0 - 11);
	assert_int_equal(ffree(fs), ff0 - 1);
	/* The last close frees everything. */
	closei(fs, ip);
	assert_int_equal(fs->orphans.used, 0);
	assert_int_equal(bfree(fs), free0);
	assert_int_equal(ffree(fs), ff0);

	/* Unlinked while open, then the daemon goes away without closing: mount finishes the job. */
	ino = mkfile(fs, ROOT, "left-behind");
	ip = openi(fs, ino);
	wr(fs, ip, 0, data, sizeof(data));
	assert_int_equal(namei_unlink(fs, ROOT, "left-behind"), 0);
	assert_int_equal(fs->orphans.used, 1);
	assert_int_equal(bfree(fs), free0 - 10);
	remount(f);	/* the open file is never released */
	fs = f->fs;
	assert_int_equal(fs->orphans_recovered, 1);
	assert_int_equal(fs->orphans.used, 0);
	assert_int_equal(bfree(fs), free0);
	assert_int_equal(ffree(fs), ff0);
	/* And the list stays empty on the next mount. */
	remount(f);
	assert_int_equal(f->fs->orphans_recovered, 0);
	assert_int_equal(f->fs->orphans.used, 0);
	assert_int_equal(bfree(f->fs), free0);
}

static void test_hard_links(void **state)
{
	struct fixture *f = *state;
	struct fs *fs = f->fs;
	struct entry e;
	char back[8];

	uint64_t ino = mkfile(fs, ROOT, "one");
	struct inode *ip = openi(fs, ino);
	wr(fs, ip, 0, "linked", 6);
	closei(fs, ip);
	uint64_t free0 = bfree(fs);
	uint64_t d = mkdir_(fs, ROOT, "dir");
	assert_int_equal(namei_link(fs, ino, d, "two", &e), 0);
	assert_int_equal(e.ino, ino);
	assert_int_equal(e.st.st_nlink, 2);
	forget(fs, e.ino);
	assert_int_equal(namei_link(fs, ino, d, "two", &e), -EEXIST);
	assert_int_equal(namei_link(fs, d, ROOT, "dirlink", &e), -EPERM);
	assert_int_equal(namei_unlink(fs, ROOT, "one"), 0);
	assert_int_equal(stat_of(fs, ino).st_nlink, 1);
	assert_int_equal(bfree(fs), free0 - 1);	/* the directory's new block; nothing freed */
	remount(f);
	fs = f->fs;
	assert_int_equal(lookup(fs, d, "two"), ino);
	ip = openi(fs, ino);
	assert_int_equal(rd(fs, ip, 0, back, sizeof(back)), 6);
	assert_memory_equal(back, "linked", 6);
	closei(fs, ip);
	assert_int_equal(namei_unlink(fs, d, "two"), 0);
	assert_int_equal(bfree(fs), free0);
}

static void test_symlinks(void **state)
{
	struct fixture *f = *state;
	struct fs *fs = f->fs;
	struct entry e;
	char target[3000], back[4096];

	assert_int_equal(namei_symlink(fs, &root_cred, ROOT, "short", "some/where", &e), 0);
	assert_int_equal(e.st.st_mode, S_IFLNK | 0777);
	assert_int_equal(e.st.st_size, 10);
	uint64_t s = e.ino;
	forget(fs, s);
	memset(target, 't', sizeof(target) - 1);
	target[sizeof(target) - 1] = 0;
	assert_int_equal(namei_symlink(fs, &root_cred, ROOT, "long", target, &e), 0);
	uint64_t l = e.ino;
	forget(fs, l);
	assert_int_equal(e.st.st_blocks, BS / 512);
	assert_int_equal(namei_symlink(fs, &root_cred, ROOT, "empty", "", &e), -ENOENT);
	/* Both sides of the inline limit. */
	char edge[DAXFS_INLINE_SYMLINK + 1];
	memset(edge, 'e', sizeof(edge));
	edge[DAXFS_INLINE_SYMLINK - 1] = 0;
	assert_int_equal(namei_symlink(fs, &root_cred, ROOT, "edge119", edge, &e), 0);
	forget(fs, e.ino);
	uint64_t e119 = e.ino;
	assert_int_equal(e.st.st_blocks, 0);
	edge[DAXFS_INLINE_SYMLINK - 1] = 'e';
	edge[DAXFS_INLINE_SYMLINK] = 0;
	assert_int_equal(namei_symlink(fs, &root_cred, ROOT, "edge120", edge, &e), 0);
	forget(fs, e.ino);
	uint64_t e120 = e.ino;
	assert_int_equal(e.st.st_blocks, BS / 512);
	remount(f);
	fs = f->fs;
	assert_int_equal(namei_readlink(fs, s, back, sizeof(back)), 10);
	assert_memory_equal(back, "some/where", 10);
	assert_int_equal(namei_readlink(fs, l, back, sizeof(back)), sizeof(target) - 1);
	assert_memory_equal(back, target, sizeof(target) - 1);
	assert_int_equal(namei_readlink(fs, ROOT, back, sizeof(back)), -EINVAL);
	assert_int_equal(namei_readlink(fs, e119, back, sizeof(back)), DAXFS_INLINE_SYMLINK - 1);
	assert_int_equal(namei_readlink(fs, e120, back, sizeof(back)), DAXFS_INLINE_SYMLINK);
	assert_memory_equal(back, edge, DAXFS_INLINE_SYMLINK);
	/* A short buffer gets a truncated target, as readlink(2) does. */
	assert_int_equal(namei_readlink(fs, l, back, 5), 5);
	uint64_t free0 = bfree(fs);
	assert_int_equal(namei_unlink(fs, ROOT, "long"), 0);
	assert_int_equal(bfree(fs), free0 + 1);
}

static void test_xattrs(void **state)
{
	struct fixture *f = *state;
	struct fs *fs = f->fs;
	char buf[256];

	uint64_t ino = mkfile(fs, ROOT, "attrs");
	uint64_t free0 = bfree(fs);
	struct inode *ip = openi(fs, ino);
	assert_int_equal(xattr_get(fs, ip, "user.a", buf, sizeof(buf)), -ENODATA);
	assert_int_equal(xattr_list(fs, ip, buf, sizeof(buf)), 0);
	assert_int_equal(xattr_set(fs, ip, "user.a", "hello", 5, 0), 0);
	assert_int_equal(bfree(fs), free0 - 1);
	assert_int_equal(stat_of(fs, ino).st_blocks, BS / 512);
	assert_int_equal(xattr_get(fs, ip, "user.a", buf, sizeof(buf)), 5);
	assert_memory_equal(buf, "hello", 5);
	assert_int_equal(xattr_get(fs, ip, "user.a", NULL, 0), 5);	/* size query */
	assert_int_equal(xattr_get(fs, ip, "user.a", buf, 3), -ERANGE);
	assert_int_equal(xattr_get(fs, ip, "trusted.a", buf, sizeof(buf)), -ENODATA);	/* other namespace */
	/* Create and replace semantics. */
	assert_int_equal(xattr_set(fs, ip, "user.a", "x", 1, XATTR_CREATE), -EEXIST);
	assert_int_equal(xattr_set(fs, ip, "user.b", "x", 1, XATTR_REPLACE), -ENODATA);
	assert_int_equal(xattr_set(fs, ip, "user.a", "world!", 6, XATTR_REPLACE), 0);
	assert_int_equal(xattr_set(fs, ip, "trusted.t", "T", 1, 0), 0);
	assert_int_equal(xattr_set(fs, ip, "security.s", "", 0, 0), 0);
	assert_int_equal(bfree(fs), free0 - 1);	/* still one block */
	int n = xattr_list(fs, ip, buf, sizeof(buf));
	assert_int_equal(n, sizeof("user.a") + sizeof("trusted.t") + sizeof("security.s"));
	assert_int_equal(xattr_list(fs, ip, NULL, 0), n);
	assert_int_equal(xattr_list(fs, ip, buf, 5), -ERANGE);
	/* Each name once, NUL-separated. */
	int found = 0;
	for (char *p = buf; p < buf + n; p += strlen(p) + 1)
		found |= (!strcmp(p, "user.a") ? 1 : 0) | (!strcmp(p, "trusted.t") ? 2 : 0) |
			 (!strcmp(p, "security.s") ? 4 : 0);
	assert_int_equal(found, 7);

	/* Names and sizes we refuse. */
	assert_int_equal(xattr_set(fs, ip, "system.posix_acl_access", "x", 1, 0), -EOPNOTSUPP);
	assert_int_equal(xattr_set(fs, ip, "user.", "x", 1, 0), -EINVAL);
	assert_int_equal(xattr_set(fs, ip, "nonsense", "x", 1, 0), -EOPNOTSUPP);
	char *big = calloc(1, 5000);
	assert_non_null(big);
	assert_int_equal(xattr_set(fs, ip, "user.big", big, 5000, 0), -ENOSPC);
	free(big);
	assert_int_equal(xattr_set(fs, ip, "user.x", "x", 1, 0x100), -EINVAL);
	closei(fs, ip);

	remount(f);
	fs = f->fs;
	ip = openi(fs, ino);
	assert_int_equal(xattr_get(fs, ip, "user.a", buf, sizeof(buf)), 6);
	assert_memory_equal(buf, "world!", 6);
	assert_int_equal(xattr_get(fs, ip, "trusted.t", buf, sizeof(buf)), 1);
	assert_int_equal(xattr_get(fs, ip, "security.s", buf, sizeof(buf)), 0);
	assert_int_equal(xattr_remove(fs, ip, "user.a"), 0);
	assert_int_equal(xattr_remove(fs, ip, "user.a"), -ENODATA);
	assert_int_equal(xattr_get(fs, ip, "user.a", buf, sizeof(buf)), -ENODATA);
	assert_int_equal(xattr_remove(fs, ip, "trusted.t"), 0);
	assert_int_equal(bfree(fs), free0 - 1);
	/* The last attribute gone: the block goes too. */
	assert_int_equal(xattr_remove(fs, ip, "security.s"), 0);
	assert_int_equal(bfree(fs), free0);
	assert_int_equal(stat_of(fs, ino).st_blocks, 0);
	assert_int_equal(xattr_list(fs, ip, buf, sizeof(buf)), 0);
	/* An inode with attributes frees its block when deleted. */
	assert_int_equal(xattr_set(fs, ip, "user.k", "v", 1, 0), 0);
	closei(fs, ip);
	assert_int_equal(namei_unlink(fs, ROOT, "attrs"), 0);
	assert_int_equal(bfree(fs), free0);

	/* user.* only on files and directories. */
	struct entry e;
	assert_int_equal(namei_symlink(fs, &root_cred, ROOT, "lnk", "t", &e), 0);
	forget(fs, e.ino);
	assert_int_equal(namei_open(fs, e.ino, O_RDONLY, &ip, NULL), 0);
	assert_int_equal(xattr_set(fs, ip, "user.a", "x", 1, 0), -EPERM);
	assert_int_equal(xattr_set(fs, ip, "trusted.a", "x", 1, 0), 0);
	closei(fs, ip);
}

/* Create and delete names in one directory for a long time: the index and the blocks are reused. */
static void test_dir_churn(void **state)
{
	struct fixture *f = *state;
	struct fs *fs = f->fs;
	char name[64];
	struct entry e;

	uint64_t d = mkdir_(fs, ROOT, "churn");
	for (int i = 0; i < 8000; i++) {
		snprintf(name, sizeof(name), "churn-entry-with-a-longish-name-%06d", i);
		mkfile(fs, d, name);
		if (i >= 8) {
			snprintf(name, sizeof(name), "churn-entry-with-a-longish-name-%06d", i - 8);
			assert_int_equal(namei_unlink(fs, d, name), 0);
		}
	}
	/* Eight live names: one block, not one block per thousand creates. */
	assert_int_equal(stat_of(fs, d).st_size, BS);
	for (int i = 0; i < 8000; i++) {
		snprintf(name, sizeof(name), "churn-entry-with-a-longish-name-%06d", i);
		int ret = namei_lookup(fs, d, name, &e);

		if (i >= 8000 - 8) {
			assert_int_equal(ret, 0);
			forget(fs, e.ino);
		} else if (ret != -ENOENT) {
			fail_msg("%s: %d after its removal", name, ret);
		}
	}
	struct names nm;
	list_dir(fs, d, 0, &nm);
	assert_int_equal(nm.n, 2 + 8);
	free_names(&nm);
	remount(f);
	list_dir(f->fs, d, 0, &nm);
	assert_int_equal(nm.n, 2 + 8);
	free_names(&nm);
}

/* readdir cookies survive changes between calls: nothing repeats, nothing removed reappears. */
static void test_readdir_cookies(void **state)
{
	struct fixture *f = *state;
	struct fs *fs = f->fs;
	char name[32];
	struct inode *dp;
	struct names nm = { 0 };
	uint8_t seen[600] = { 0 };

	uint64_t d = mkdir_(fs, ROOT, "cookies");
	for (int i = 0; i < 600; i++) {
		snprintf(name, sizeof(name), "n%03d", i);
		mkfile(fs, d, name);
	}
	assert_int_equal(namei_open(fs, d, O_RDONLY, &dp, NULL), 0);
	nm.limit = 100;
	assert_int_equal(namei_readdir(fs, dp, 0, collect, &nm), 0);
	assert_int_equal(nm.n, 100);
	/* Between calls: remove every third name (listed or not) and add new ones. */
	for (int i = 0; i < 600; i += 3) {
		snprintf(name, sizeof(name), "n%03d", i);
		assert_int_equal(namei_unlink(fs, d, name), 0);
	}
	for (int i = 0; i < 50; i++) {
		snprintf(name, sizeof(name), "new%02d", i);
		mkfile(fs, d, name);
	}
	uint64_t pos = nm.next;
	for (;;) {
		size_t before = nm.n;

		nm.this_call = 0;
		assert_int_equal(namei_readdir(fs, dp, pos, collect, &nm), 0);
		if (nm.n == before)
			break;
		pos = nm.next;
	}
	closei(fs, dp);
	for (size_t k = 2; k < nm.n; k++) {
		int i;

		if (sscanf(nm.name[k], "n%03d", &i) != 1)
			continue;	/* a new name: may or may not be listed */
		if (seen[i])
			fail_msg("%s listed twice", nm.name[k]);
		seen[i] = 1;
		if (i % 3 == 0 && k >= 100)
			fail_msg("%s listed after its removal", nm.name[k]);
	}
	/* Every name that existed throughout was listed. */
	for (int i = 0; i < 600; i++)
		if (i % 3 && !seen[i])
			fail_msg("n%03d never listed", i);
	free_names(&nm);
}

/* Offsets far beyond 4 GiB and up to the maximum file size. */
static void test_huge_offsets(void **state)
{
	struct fixture *f = *state;
	struct fs *fs = f->fs;
	char back[64];
	uint64_t pos;

	uint64_t ino = mkfile(fs, ROOT, "huge");
	struct inode *ip = openi(fs, ino);
	const uint64_t far = 5ull << 40;	/* 5 TiB */
	wr(fs, ip, far + 10, "far away", 8);
	assert_int_equal(stat_of(fs, ino).st_size, far + 18);
	assert_int_equal(stat_of(fs, ino).st_blocks, BS / 512);
	assert_int_equal(file_lseek(fs, ip, 0, SEEK_DATA, &pos), 0);
	assert_int_equal(pos, far);
	assert_int_equal(file_lseek(fs, ip, far, SEEK_HOLE, &pos), 0);
	assert_int_equal(pos, far + 18);
	/* The last byte a file can hold; one more is EFBIG. */
	wr(fs, ip, DAXFS_MAX_FILE_SIZE - 1, "z", 1);
	assert_int_equal(stat_of(fs, ino).st_size, DAXFS_MAX_FILE_SIZE);
	struct iovec iov = { "zz", 2 };
	assert_int_equal(file_write(fs, ip, DAXFS_MAX_FILE_SIZE, &iov, 1), -EFBIG);
	/* A write that would cross the limit is cut at it. */
	assert_int_equal(file_write(fs, ip, DAXFS_MAX_FILE_SIZE - 1, &iov, 1), 1);
	closei(fs, ip);
	remount(f);
	fs = f->fs;
	ip = openi(fs, ino);
	assert_int_equal(rd(fs, ip, far, back, 18), 18);
	assert_true(all_zero(back, 10));
	assert_memory_equal(back + 10, "far away", 8);
	assert_int_equal(rd(fs, ip, DAXFS_MAX_FILE_SIZE - 1, back, 10), 1);
	assert_int_equal(back[0], 'z');
	assert_int_equal(emap_count(ip), 2);
	/* Truncating down frees both ends. */
	struct stat attr = { .st_size = 1 };
	assert_int_equal(namei_setattr(fs, ino, &attr, NAMEI_SET_SIZE, NULL, NULL), 0);
	assert_int_equal(emap_count(ip), 0);
	assert_int_equal(stat_of(fs, ino).st_blocks, 0);
	closei(fs, ip);
}

/* The same operations on a file system with 16 KiB blocks: nothing may assume 4 KiB. */
static int setup_16k(void **state)
{
	return mount_fixture(state, "fs-16k", 128 * MiB, &(struct mkfs_params){ .block_size = 16384 });
}

static unsigned char byte_at(uint64_t off)
{
	return (unsigned char)((off * 2654435761u) >> 13);
}

static void test_block_size_16k(void **state)
{
	struct fixture *f = *state;
	struct fs *fs = f->fs;
	const uint64_t bs = 16384, nblk = 1600;	/* 800 extents: more than one extent block holds */
	const int mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
	char *buf = malloc(bs * 4), *back = malloc(nblk * bs);

	assert_non_null(buf);
	assert_non_null(back);
	assert_int_equal(fs_bs(fs), bs);
	uint64_t ino = mkfile(fs, ROOT, "f");
	uint64_t free0 = bfree(fs);
	struct inode *ip = openi(fs, ino);
	/* Every other block: 800 one-block extents. */
	for (uint64_t b = 0; b < nblk; b += 2) {
		for (uint64_t i = 0; i < bs; i++)
			buf[i] = (char)byte_at(b * bs + i);
		wr(fs, ip, b * bs, buf, bs);
	}
	assert_int_equal(emap_count(ip), nblk / 2);
	assert_true(ip->map.nleaves > 2);
	uint64_t eblocks = ip->map.nleaves - 1;
	assert_int_equal(stat_of(fs, ino).st_blocks, (nblk / 2 + eblocks) * (bs / 512));
	assert_int_equal(bfree(fs), free0 - nblk / 2 - eblocks);
	/* Unaligned write across three blocks (one of them a hole). */
	for (uint64_t i = 0; i < 2 * bs + 100; i++)
		buf[i] = (char)byte_at(7 * bs + 50 + i);
	wr(fs, ip, 7 * bs + 50, buf, 2 * bs + 100);
	/* Punch inside an extent block's range and partial blocks. */
	assert_int_equal(namei_fallocate(fs, ip, mode, 500 * bs + 1000, 300 * bs, NULL), 0);
	closei(fs, ip);

	remount(f);
	fs = f->fs;
	ip = openi(fs, ino);
	uint64_t size = stat_of(fs, ino).st_size;
	assert_int_equal(size, (nblk - 1) * bs);
	assert_int_equal(rd(fs, ip, 0, back, nblk * bs), size);
	for (uint64_t off = 0; off < size; off++) {
		uint64_t b = off / bs;
		bool written = b % 2 == 0 || (off >= 7 * bs + 50 && off < 9 * bs + 150);
		bool punched = off >= 500 * bs + 1000 && off < 800 * bs + 1000;
		unsigned char want = written && !punched ? byte_at(off) : 0;

		if ((unsigned char)back[off] != want)
			fail_msg("byte %llu (block %llu): %#x, want %#x", (unsigned long long)off,
				 (unsigned long long)b, (unsigned char)back[off], want);
	}
	closei(fs, ip);

	/* A directory of 16 KiB blocks, and an attribute that would not fit a 4 KiB block. */
	uint64_t d = mkdir_(fs, ROOT, "dir");
	char name[32];
	for (int i = 0; i < 3000; i++) {
		snprintf(name, sizeof(name), "entry%d", i);
		mkfile(fs, d, name);
	}
	assert_int_equal(stat_of(fs, d).st_size % bs, 0);
	char *val = calloc(1, 10000);
	assert_non_null(val);
	memset(val, 'v', 10000);
	ip = openi(fs, ino);
	assert_int_equal(xattr_set(fs, ip, "user.big", val, 10000, 0), 0);
	closei(fs, ip);
	remount(f);
	fs = f->fs;
	for (int i = 0; i < 3000; i += 7) {
		snprintf(name, sizeof(name), "entry%d", i);
		lookup(fs, d, name);
	}
	ip = openi(fs, ino);
	assert_int_equal(xattr_get(fs, ip, "user.big", back, 20000), 10000);
	assert_memory_equal(back, val, 10000);
	closei(fs, ip);
	/* Everything goes back. */
	assert_int_equal(namei_unlink(fs, ROOT, "f"), 0);
	assert_int_equal(bfree(fs), free0 - (uint64_t)stat_of(fs, d).st_blocks / (bs / 512));
	free(val);
	free(buf);
	free(back);
}

/* ---- threads ---- */

#define NTHREADS 4
#define ITERS 250

struct worker {
	struct fs *fs;
	int id;
	uint64_t shared, own;	/* directories */
	char err[200];		/* the first failure (cmocka's asserts are for the main thread) */
};

#define WCHECK(w, cond, ...)                                                   \
	do {                                                                   \
		if (!(cond)) {                                                 \
			if (!(w)->err[0])                                      \
				snprintf((w)->err, sizeof((w)->err), __VA_ARGS__); \
			return NULL;                                           \
		}                                                              \
	} while (0)

struct wread {
	char *dst;
	size_t got, cap;
};

static int wread_send(void *ctx, const struct iovec *iov, int niov)
{
	struct wread *r = ctx;

	for (int i = 0; i < niov; i++) {
		if (r->got + iov[i].iov_len > r->cap)
			return -EOVERFLOW;
		memcpy(r->dst + r->got, iov[i].iov_base, iov[i].iov_len);
		r->got += iov[i].iov_len;
	}
	return 0;
}

static int dummy_emit(void *arg, const char *name, size_t len, uint64_t ino, uint8_t type, uint64_t next)
{
	(void)name, (void)len, (void)ino, (void)type, (void)next;
	++*(size_t *)arg;
	return 0;
}

/*
 * Each worker creates files in a shared directory, writes and reads them back, punches and
 * truncates, renames them into its own directory and deletes some; it also lists the shared one.
 */
static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct fs *fs = w->fs;
	uint64_t rng = 0x1234567ull * (uint64_t)(w->id + 1);
	static __thread char buf[40 * BS], back[40 * BS];
	char name[64], name2[64];

	for (int it = 0; it < ITERS; it++) {
		struct entry e;
		struct inode *ip;
		int ret;

		snprintf(name, sizeof(name), "w%d-%d", w->id, it);
		ret = namei_mknod(fs, &root_cred, w->shared, name, S_IFREG | 0644, 0, &e);
		WCHECK(w, ret == 0, "mknod %s: %d", name, ret);
		inode_forget(fs, e.ino, 1);
		ret = namei_open(fs, e.ino, O_RDWR, &ip, NULL);
		WCHECK(w, ret == 0, "open %s: %d", name, ret);
		size_t len = (size_t)(1 + rng_below(&rng, sizeof(buf) - 1));
		uint64_t off = rng_below(&rng, 64 * BS);
		for (size_t i = 0; i < len; i++)
			buf[i] = (char)(it + i * 7 + w->id);
		struct iovec iov = { buf, len };
		ssize_t n = file_write(fs, ip, off, &iov, 1);
		WCHECK(w, n == (ssize_t)len, "write %s: %zd", name, n);
		struct wread r = { back, 0, sizeof(back) };
		ret = file_read(fs, ip, off, len, wread_send, &r);
		WCHECK(w, ret == 0 && r.got == len && !memcmp(back, buf, len), "read back %s: %d, %zu of %zu", name,
		       ret, r.got, len);
		if (rng_below(&rng, 3) == 0) {
			ret = namei_fallocate(fs, ip, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len / 2 + 1, NULL);
			WCHECK(w, ret == 0, "punch %s: %d", name, ret);
		}
		if (rng_below(&rng, 3) == 0) {
			struct stat attr = { .st_size = (off_t)(off + len / 3) };

			ret = namei_setattr(fs, e.ino, &attr, NAMEI_SET_SIZE, NULL, NULL);
			WCHECK(w, ret == 0, "truncate %s: %d", name, ret);
		}
		ret = namei_release(fs, ip);
		WCHECK(w, ret == 0, "release %s: %d", name, ret);
		snprintf(name2, sizeof(name2), "moved-%d", it);
		ret = namei_rename(fs, w->shared, name, w->own, name2, 0);
		WCHECK(w, ret == 0, "rename %s: %d", name, ret);
		if (it % 2) {
			ret = namei_unlink(fs, w->own, name2);
			WCHECK(w, ret == 0, "unlink %s: %d", name2, ret);
		}
		if (it % 16 == 0) {
			struct inode *dp;
			size_t count = 0;

			ret = namei_open(fs, w->shared, O_RDONLY, &dp, NULL);
			WCHECK(w, ret == 0, "open shared: %d", ret);
			ret = namei_readdir(fs, dp, 0, dummy_emit, &count);
			WCHECK(w, ret == 0 && count >= 2, "readdir shared: %d", ret);
			namei_release(fs, dp);
		}
	}
	return NULL;
}

static void test_concurrent(void **state)
{
	struct fixture *f = *state;
	struct fs *fs = f->fs;
	struct worker w[NTHREADS];
	pthread_t th[NTHREADS];
	char name[32];

	uint64_t shared = mkdir_(fs, ROOT, "shared");
	for (int i = 0; i < NTHREADS; i++) {
		snprintf(name, sizeof(name), "own%d", i);
		w[i] = (struct worker){ .fs = fs, .id = i, .shared = shared, .own = mkdir_(fs, ROOT, name) };
	}
	uint64_t free0 = bfree(fs), ff0 = ffree(fs);
	for (int i = 0; i < NTHREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < NTHREADS; i++)
		if (w[i].err[0])
			fail_msg("worker %d: %s", i, w[i].err);
	assert_false(fs->sbi.aborted);

	/* The shared directory is empty, each own directory holds the even-numbered files. */
	struct names nm;
	list_dir(fs, shared, 0, &nm);
	assert_int_equal(nm.n, 2);
	free_names(&nm);
	remount(f);
	fs = f->fs;
	for (int i = 0; i < NTHREADS; i++) {
		list_dir(fs, w[i].own, 0, &nm);
		assert_int_equal(nm.n, 2 + ITERS / 2);
		for (size_t k = 2; k < nm.n; k++)
			assert_int_equal(namei_unlink(fs, w[i].own, nm.name[k]), 0);
		free_names(&nm);
	}
	/* Nothing leaked: only the directories' blocks remain. */
	uint64_t dir_blocks = (uint64_t)stat_of(fs, shared).st_blocks / (BS / 512);
	for (int i = 0; i < NTHREADS; i++)
		dir_blocks += (uint64_t)stat_of(fs, w[i].own).st_blocks / (BS / 512);
	assert_int_equal(ffree(fs), ff0);
	assert_int_equal(bfree(fs), free0 - dir_blocks);
}

/* ---- a full file system ---- */

static int setup_small(void **state)
{
	return mount_fixture(state, "fs-small", 16 * MiB, NULL);
}

static void test_enospc(void **state)
{
	struct fixture *f = *state;
	struct fs *fs = f->fs;
	const size_t len = 32 * MiB;	/* twice the image */
	char *buf = malloc(len), *back = malloc(len);

	assert_non_null(buf);
	assert_non_null(back);
	for (size_t i = 0; i < len; i += BS)
		block_pattern(buf + i, i / BS, 7);
	uint64_t ino = mkfile(fs, ROOT, "filler");
	mkfile(fs, ROOT, "second");	/* the root directory block exists before space runs out */
	uint64_t free0 = bfree(fs);
	struct statvfs sv;
	assert_int_equal(namei_statfs(fs, &sv), 0);
	uint64_t avail = sv.f_bavail;
	assert_true(avail < free0);	/* the metadata reserve */

	/* A write larger than the space is short, not an error, and ends on a block boundary. */
	struct inode *ip = openi(fs, ino);
	struct iovec iov = { buf, len };
	ssize_t n = file_write(fs, ip, 0, &iov, 1);
	print_message("16 MiB image: %llu blocks available, short write of %zd bytes, %llu extents\n",
		      (unsigned long long)avail, n, (unsigned long long)emap_count(ip));
	assert_true(n > 0);
	assert_int_equal(n % BS, 0);
	assert_true((uint64_t)n <= avail * BS);
	assert_true((uint64_t)n >= (avail - 64) * BS);	/* nearly everything was usable */
	assert_int_equal(stat_of(fs, ino).st_size, n);
	assert_int_equal(namei_statfs(fs, &sv), 0);
	assert_int_equal(sv.f_bavail, 0);
	/* Now nothing: -ENOSPC, the file unchanged. */
	iov.iov_len = BS;
	assert_int_equal(file_write(fs, ip, (uint64_t)n, &iov, 1), -ENOSPC);
	assert_int_equal(namei_fallocate(fs, ip, 0, (uint64_t)n, BS, NULL), -ENOSPC);
	assert_int_equal(stat_of(fs, ino).st_size, n);
	/* Overwriting allocated blocks still works. */
	wr(fs, ip, 0, buf, BS);
	assert_int_equal(rd(fs, ip, 0, back, (size_t)n), n);
	assert_memory_equal(back, buf, (size_t)n);
	/* Metadata that needs no new block still works; the other file can take no data. */
	struct entry e;
	assert_int_equal(namei_mknod(fs, &root_cred, ROOT, "third", S_IFREG | 0644, 0, &e), 0);
	forget(fs, e.ino);
	struct inode *ip2 = openi(fs, lookup(fs, ROOT, "second"));
	assert_int_equal(file_write(fs, ip2, 0, &iov, 1), -ENOSPC);
	closei(fs, ip2);
	closei(fs, ip);

	remount(f);
	fs = f->fs;
	assert_int_equal(stat_of(fs, ino).st_size, n);
	ip = openi(fs, ino);
	assert_int_equal(rd(fs, ip, 0, back, (size_t)n), n);
	assert_memory_equal(back, buf, (size_t)n);
	closei(fs, ip);
	/* Deleting the file gives everything back. */
	assert_int_equal(namei_unlink(fs, ROOT, "filler"), 0);
	assert_int_equal(bfree(fs), free0);
	ip = openi(fs, lookup(fs, ROOT, "second"));
	wr(fs, ip, 0, buf, 4 * MiB);
	closei(fs, ip);
	free(buf);
	free(back);
}

/* ---- crash recovery ---- */

#define CHILD_CHECK(cond, code)            \
	do {                               \
		if (!(cond))               \
			_exit(code);       \
	} while (0)

static uint64_t child_create(struct fs *fs, uint64_t parent, const char *name, mode_t mode, int code)
{
	struct entry e;
	int ret = S_ISDIR(mode) ? namei_mkdir(fs, &root_cred, parent, name, mode & 07777, &e)
				: namei_mknod(fs, &root_cred, parent, name, mode, 0, &e);

	CHILD_CHECK(ret == 0, code);
	inode_forget(fs, e.ino, 1);
	return e.ino;
}

static void child_write(struct fs *fs, struct inode *ip, uint64_t off, size_t len, unsigned tag, int code)
{
	static char buf[512 * BS];

	for (size_t i = 0; i < len; i += BS)
		block_pattern(buf + i, (off + i) / BS, tag);
	struct iovec iov = { buf, len };
	CHILD_CHECK(file_write(fs, ip, off, &iov, 1) == (ssize_t)len, code);
}

/*
 * The crash child: mount and run a mix of operations (several of which commit more than one
 * transaction), dying at the n-th drain.  Exits 0 only if it got through without reaching it.
 */
static void crash_child(const char *path, int n)
{
	struct mount_config cfg = { 0 };
	struct fs *fs;
	struct inode *f1, *x, *g;
	char err[256], num[32], target[2000];

	snprintf(num, sizeof(num), "%d", n);
	setenv("DAXFS_CRASH_AT", num, 1);
	CHILD_CHECK(mount_open(&fs, path, &cfg, err, sizeof(err)) == 0, 10);
	uint64_t i1 = child_create(fs, ROOT, "f1", S_IFREG | 0644, 11);
	CHILD_CHECK(namei_open(fs, i1, O_RDWR, &f1, NULL) == 0, 12);
	child_write(fs, f1, 0, 4 * BS, 1, 13);
	child_write(fs, f1, 4 * BS, 4 * BS, 1, 14);
	uint64_t d = child_create(fs, ROOT, "d", S_IFDIR | 0755, 15);
	uint64_t ix = child_create(fs, d, "x", S_IFREG | 0644, 16);
	CHILD_CHECK(namei_open(fs, ix, O_RDWR, &x, NULL) == 0, 17);
	child_write(fs, x, 0, 3 * BS, 2, 18);
	CHILD_CHECK(namei_release(fs, x) == 0, 19);
	CHILD_CHECK(xattr_set(fs, f1, "user.k", "v", 1, 0) == 0, 20);
	CHILD_CHECK(namei_rename(fs, ROOT, "f1", d, "x", 0) == 0, 21);	/* frees the old x */
	CHILD_CHECK(namei_fallocate(fs, f1, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 2 * BS, 3 * BS, NULL) == 0, 22);
	CHILD_CHECK(namei_unlink(fs, d, "x") == 0, 23);	/* open: an orphan */
	child_write(fs, f1, 8 * BS, 2 * BS, 3, 24);
	CHILD_CHECK(namei_release(fs, f1) == 0, 25);	/* the orphan is freed */
	uint64_t ig = child_create(fs, d, "g", S_IFREG | 0644, 26);
	CHILD_CHECK(namei_open(fs, ig, O_RDWR, &g, NULL) == 0, 27);
	child_write(fs, g, 0, 300 * BS, 4, 28);
	struct stat attr = { .st_size = 10 * BS + 100 };
	CHILD_CHECK(namei_setattr(fs, ig, &attr, NAMEI_SET_SIZE, NULL, NULL) == 0, 29);
	CHILD_CHECK(namei_release(fs, g) == 0, 30);
	memset(target, 's', sizeof(target) - 1);
	target[sizeof(target) - 1] = 0;
	struct entry e;
	CHILD_CHECK(namei_symlink(fs, &root_cred, d, "link", target, &e) == 0, 31);
	CHILD_CHECK(namei_rmdir(fs, ROOT, "d") == -ENOTEMPTY, 32);
	mount_close(fs);
	_exit(0);
}

/* Read every file below dir and remove everything: returns the number of objects removed. */
static uint64_t read_and_remove_all(struct fs *fs, uint64_t dir)
{
	struct names nm;
	uint64_t removed = 0;

	list_dir(fs, dir, 0, &nm);
	for (size_t k = 2; k < nm.n; k++) {
		struct stat st = stat_of(fs, nm.ino[k]);

		if (S_ISDIR(st.st_mode)) {
			removed += read_and_remove_all(fs, nm.ino[k]);
			assert_int_equal(namei_rmdir(fs, dir, nm.name[k]), 0);
		} else {
			if (S_ISREG(st.st_mode)) {
				struct inode *ip = openi(fs, nm.ino[k]);
				char *buf = malloc((size_t)st.st_size + 1);

				assert_non_null(buf);
				assert_int_equal(rd(fs, ip, 0, buf, (size_t)st.st_size), st.st_size);
				free(buf);
				closei(fs, ip);
			} else if (S_ISLNK(st.st_mode)) {
				char buf[4096];

				assert_int_equal(namei_readlink(fs, nm.ino[k], buf, sizeof(buf)), st.st_size);
			}
			assert_int_equal(namei_unlink(fs, dir, nm.name[k]), 0);
		}
		removed++;
	}
	free_names(&nm);
	return removed;
}

/* Whatever the crash point: the image mounts, every file reads, and deleting everything leaks nothing. */
static void check_after_crash(struct fixture *f, int n)
{
	struct mount_config cfg = { 0 };
	char err[256] = "";

	for (int round = 0; round < 2; round++) {
		if (mount_open(&f->fs, f->img.path, &cfg, err, sizeof(err)))
			fail_msg("crash point %d: mount failed: %s", n, err);
		struct fs *fs = f->fs;
		if (round == 0)
			read_and_remove_all(fs, ROOT);
		/* In use: the slot list heads and the root directory's blocks (directories never shrink). */
		uint64_t root_blocks = (uint64_t)stat_of(fs, ROOT).st_blocks / (BS / 512);
		uint64_t want_free = fs->sbi.data_blocks - 3 - root_blocks;
		if (bfree(fs) != want_free || ffree(fs) != fs->sbi.sb.ninodes - 1)
			fail_msg("crash point %d, %s: %lld blocks and %lld inodes leaked", n,
				 round ? "after a remount" : "after deleting everything",
				 (long long)(want_free - bfree(fs)), (long long)(fs->sbi.sb.ninodes - 1 - ffree(fs)));
		assert_int_equal(fs->orphans.used, 0);
		assert_int_equal(stat_of(fs, ROOT).st_nlink, 2);
		/* The bitmap agrees with the allocator. */
		assert_int_equal(fs->sbi.bbm.nset, fs->sbi.sb.data_start + 4 + root_blocks);
		mount_close(fs);
		f->fs = NULL;
	}
}

static int setup_crash(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	image_name(&f->img, "fs-crash");
	*state = f;
	return 0;
}

static void test_crash_recovery(void **state)
{
	struct fixture *f = *state;
	int n, survived = 0;

	for (n = 1; n < 2000; n++) {
		int status;

		image_format(&f->img, 32 * MiB, NULL);
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0)
			crash_child(f->img.path, n);
		assert_int_equal(waitpid(pid, &status, 0), pid);
		if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
			survived = 1;
			break;	/* past the last drain: every crash point was tried */
		}
		if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
			fail_msg("crash point %d: the child failed at step %d instead", n,
				 WIFEXITED(status) ? WEXITSTATUS(status) : -1);
		check_after_crash(f, n);
	}
	assert_true(survived);
	/* The full run, cleanly unmounted, checks out too. */
	check_after_crash(f, n);
	print_message("crash recovery: %d crash points\n", n - 1);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_mount_fresh),
		T(test_root_dir_stays_cached),
		T(test_namespace_basics),
		T(test_write_read_merge),
		T(test_large_write_aligned),
		T(test_fragmented_file),
		T(test_fill_holes),
		cmocka_unit_test_setup_teardown(test_free_many_extents, setup_small_journal, teardown),
		T(test_emap_merge_across_leaves),
		T(test_punch_holes),
		T(test_punch_splits_full_leaf),
		T(test_fallocate),
		T(test_truncate),
		T(test_big_directory),
		T(test_rename),
		T(test_orphans),
		T(test_hard_links),
		T(test_symlinks),
		T(test_xattrs),
		T(test_dir_churn),
		T(test_concurrent),
		T(test_readdir_cookies),
		T(test_huge_offsets),
		cmocka_unit_test_setup_teardown(test_block_size_16k, setup_16k, teardown),
		cmocka_unit_test_setup_teardown(test_enospc, setup_small, teardown),
		cmocka_unit_test_setup_teardown(test_crash_recovery, setup_crash, teardown),
	};

	/* UNIT_FILTER=test_name (cmocka's glob) runs a subset while debugging. */
	if (getenv("UNIT_FILTER"))
		cmocka_set_test_filter(getenv("UNIT_FILTER"));
	return cmocka_run_group_tests_name("fs", tests, NULL, NULL);
}
