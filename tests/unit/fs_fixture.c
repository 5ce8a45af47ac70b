/* SPDX-License-Identifier: MIT */
/*
 * The mounted-file-system fixture of the unit programs that test the layers from the inodes up
 * (inode, emap, file, dir, xattr, orphan, namei, mount): a scratch image formatted and mounted with
 * mount_open (no FUSE, no workers), remounted to check what reached the media, and the small
 * helpers those tests share (moved here from test_fs.c when it was split by module).  Also the
 * helpers of the programs above the files (policy, policy_api, dma, reclaim, mount): a mount with
 * its workers running, files, pins and the statistics.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/statvfs.h>
#include <sys/uio.h>

#include "fs_fixture.h"

const struct cred root_cred = { .uid = 0, .gid = 0 };

/* Format an image of `bytes` (p NULL: mkfs defaults) and mount it: the setup of every mounted fixture. */
int mount_fixture(void **state, const char *name, uint64_t bytes, const struct mkfs_params *p)
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
int setup(void **state)
{
	return mount_fixture(state, "fs", 256 * MiB, &(struct mkfs_params){ .ninodes = 32768 });
}

int teardown(void **state)
{
	struct fixture *f = *state;

	if (f->fs)
		mount_close(f->fs);
	image_remove(&f->img);
	free(f);
	return 0;
}

void remount(struct fixture *f)
{
	struct mount_config cfg = { 0 };
	char err[256] = "";

	mount_close(f->fs);
	f->fs = NULL;
	if (mount_open(&f->fs, f->img.path, &cfg, err, sizeof(err)))
		fail_msg("mount_open: %s", err);
}

/*
 * Drop the lookup reference an entry reply carries, as the kernel eventually does: until then an
 * unlinked inode keeps its number (and stays cached).
 */
void forget(struct fs *fs, uint64_t ino)
{
	inode_forget(fs, ino, 1);
}

uint64_t mkfile(struct fs *fs, uint64_t parent, const char *name)
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
uint64_t mkdir_(struct fs *fs, uint64_t parent, const char *name)
{
	struct entry e;
	int ret = namei_mkdir(fs, &root_cred, parent, name, 0755, &e);

	if (ret)
		fail_msg("mkdir %s: %d", name, ret);
	return e.ino;
}

uint64_t lookup(struct fs *fs, uint64_t parent, const char *name)
{
	struct entry e;
	int ret = namei_lookup(fs, parent, name, &e);

	if (ret)
		fail_msg("lookup %s: %d", name, ret);
	forget(fs, e.ino);
	return e.ino;
}

struct inode *openi(struct fs *fs, uint64_t ino)
{
	struct inode *ip;
	int ret = namei_open(fs, ino, O_RDWR, &ip, NULL);

	if (ret)
		fail_msg("open %llu: %d", (unsigned long long)ino, ret);
	return ip;
}

void closei(struct fs *fs, struct inode *ip)
{
	assert_int_equal(namei_release(fs, ip), 0);
}

void wr(struct fs *fs, struct inode *ip, uint64_t off, const void *buf, size_t len)
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
size_t rd(struct fs *fs, struct inode *ip, uint64_t off, void *buf, size_t len)
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

struct stat stat_of(struct fs *fs, uint64_t ino)
{
	struct stat st;

	assert_int_equal(namei_getattr(fs, ino, &st), 0);
	return st;
}

uint64_t bfree(struct fs *fs)
{
	struct statvfs sv;

	assert_int_equal(namei_statfs(fs, &sv), 0);
	return sv.f_bfree;
}

uint64_t ffree(struct fs *fs)
{
	struct statvfs sv;

	assert_int_equal(namei_statfs(fs, &sv), 0);
	return sv.f_ffree;
}

/* Contents of block lblk of a test file: differs per block and per version (tag). */
void block_pattern(char *buf, uint64_t lblk, unsigned tag)
{
	uint64_t x = lblk * 0x9E3779B97F4A7C15ull + tag;

	for (size_t i = 0; i < BS; i += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(buf + i, &x, 8);
	}
}

bool all_zero(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

int collect(void *arg, const char *name, size_t len, uint64_t ino, uint8_t type, uint64_t next)
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
void list_dir(struct fs *fs, uint64_t dino, size_t chunk, struct names *nm)
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

void free_names(struct names *nm)
{
	free(nm->name);
	free(nm->ino);
}

/* ---- pins and policies ---- */

struct fs *fx_mount(const char *image, const struct mount_config *cfg)
{
	struct mount_config defaults = { .enospc_wait_ms = 1000 };
	struct fs *fs;
	char err[512] = "";

	if (mount_open(&fs, image, cfg ? cfg : &defaults, err, sizeof(err)))
		fail_msg("mount_open: %s", err);
	assert_int_equal(mount_start(fs), 0);
	return fs;
}

struct inode *fx_file(struct fs *fs, const char *name, uint64_t blocks, int byte)
{
	struct entry e;
	struct inode *ip;
	char *buf = malloc(1 * MiB);

	assert_non_null(buf);
	memset(buf, byte, 1 * MiB);
	assert_int_equal(namei_mknod(fs, &root_cred, ROOT, name, S_IFREG | 0644, 0, &e), 0);
	forget(fs, e.ino);
	assert_int_equal(namei_open(fs, e.ino, O_RDWR, &ip, NULL), 0);
	uint64_t bytes = blocks * fs_bs(fs);
	for (uint64_t off = 0; off < bytes;) {
		struct iovec iov = { buf, bytes - off < 1 * MiB ? bytes - off : 1 * MiB };
		ssize_t w = file_write(fs, ip, off, &iov, 1);

		if (w <= 0)
			fail_msg("write %s at %llu: %zd", name, (unsigned long long)off, w);
		off += (uint64_t)w;
	}
	free(buf);
	return ip;
}

struct policy_pin_args fx_pin_args(uint64_t off, uint64_t len, uint32_t flags)
{
	return (struct policy_pin_args){ .offset = off, .length = len, .flags = flags, .uid = 0, .pid = getpid(),
					 .writable = true };
}

uint64_t fx_pin(struct fs *fs, struct pin_owner *o, struct inode *ip, uint64_t off, uint64_t len, uint32_t flags)
{
	struct policy_pin_args a = fx_pin_args(off, len, flags);
	uint64_t id = 0;
	int ret = policy_pin(fs, o, ip, &a, NULL, &id);

	if (ret)
		fail_msg("pin %llu+%llu of inode %llu: %d", (unsigned long long)off, (unsigned long long)len,
			 (unsigned long long)ip->ino, ret);
	return id;
}

uint64_t fx_pin_media(struct fs *fs, struct pin_owner *o, uint64_t id)
{
	struct daxfs_pin_extent ext[1];
	uint32_t n = 0;

	assert_true(policy_pin_extents(fs, o, id, 0, ext, 1, &n, NULL, NULL) >= 1);
	assert_int_equal(n, 1);
	return ext[0].media_off;
}

int fx_truncate(struct fs *fs, uint64_t ino, uint64_t size, struct policy_op *op)
{
	struct stat st = { .st_size = (off_t)size };

	return namei_setattr(fs, ino, &st, NAMEI_SET_SIZE, NULL, op);
}

uint64_t fx_busy_blocks(struct fs *fs)
{
	lock_take(&fs->busy.lock);
	uint64_t n = fs->busy.nblocks;
	lock_drop(&fs->busy.lock);
	return n;
}

struct daxfs_ioc_stats fx_stats(struct fs *fs)
{
	struct daxfs_ioc_stats st;

	policy_stats(fs, &st);
	return st;
}

static bool nothing_busy(void *arg)
{
	return fx_busy_blocks(arg) == 0;
}

void fx_wait_reclaimed(struct fs *fs)
{
	if (!unit_wait(nothing_busy, fs, 10000))
		fail_msg("reclaim left %llu blocks busy after 10 s", (unsigned long long)fx_busy_blocks(fs));
}
