/* SPDX-License-Identifier: MIT */
/*
 * namei.c: the namespace operations below FUSE, on a mounted scratch image and again after a
 * remount: create, lookup, remove, rename (plain, NOREPLACE, EXCHANGE, directories between
 * parents), hard links, symlinks (inline and in a block), several threads at once, readdirplus and
 * its lookup references, clearing setuid/setgid on writes, fsync.
 */
#include <pthread.h>
#include <linux/falloc.h>
#include <sys/sysmacros.h>

#include "fs_fixture.h"

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
	assert_false(sbi_aborted(&fs->sbi));

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

struct plus {
	int n, stop_after;
	char name[16][32];
	struct entry e[16];
	uint64_t next;
};

static int plus_emit(void *arg, const char *name, const struct entry *e, uint64_t next)
{
	struct plus *p = arg;

	if (p->n == p->stop_after)
		return 1;	/* the reply is full */
	snprintf(p->name[p->n], sizeof(p->name[p->n]), "%s", name);
	p->e[p->n] = *e;
	p->n++;
	p->next = next;
	return 0;
}

static uint64_t nlookup_of(struct fs *fs, uint64_t ino)
{
	struct inode *ip;

	assert_int_equal(inode_get(fs, ino, &ip), 0);
	uint64_t n = ip->nlookup;
	inode_put(fs, ip);
	return n;
}

/*
 * readdirplus: entries with their attributes; each one sent holds a lookup reference (none for "."
 * and ".."), the ones the reply had no room for hold none; the cookie resumes after the last sent.
 */
static void test_readdirplus(void **state)
{
	struct fixture *f = *state;
	struct fs *fs = f->fs;
	uint64_t ino[6];
	char name[16];
	struct inode *dp;

	uint64_t d = mkdir_(fs, ROOT, "plus");
	for (int i = 0; i < 6; i++) {
		snprintf(name, sizeof(name), "p%d", i);
		ino[i] = mkfile(fs, d, name);	/* no lookup reference left */
	}
	assert_int_equal(namei_open(fs, d, O_RDONLY, &dp, NULL), 0);
	struct plus p = { .stop_after = 5 };
	assert_int_equal(namei_readdirplus(fs, dp, 0, 16, plus_emit, &p), 0);
	assert_int_equal(p.n, 5);
	assert_string_equal(p.name[0], ".");
	assert_string_equal(p.name[1], "..");
	assert_int_equal(p.e[0].st.st_ino, d);
	assert_true(S_ISDIR(p.e[1].st.st_mode));
	uint64_t sent = 0;
	for (int k = 2; k < 5; k++) {
		struct stat st = stat_of(fs, p.e[k].ino);

		assert_int_equal(p.e[k].st.st_ino, p.e[k].ino);
		assert_int_equal(p.e[k].st.st_mode, st.st_mode);
		struct entry le;
		assert_int_equal(namei_lookup(fs, d, p.name[k], &le), 0);
		assert_int_equal(le.ino, p.e[k].ino);
		assert_int_equal(le.generation, p.e[k].generation);
		assert_int_equal(nlookup_of(fs, p.e[k].ino), 2);	/* readdirplus's and this lookup's */
		forget(fs, le.ino);
		assert_int_equal(nlookup_of(fs, p.e[k].ino), 1);
		sent |= 1ull << (p.e[k].ino - ino[0]);
	}
	/* The three not sent: no reference (looked up now, they were not cached). */
	for (int i = 0; i < 6; i++)
		if (!(sent & (1ull << (ino[i] - ino[0]))))
			assert_int_equal(nlookup_of(fs, ino[i]), 0);
	/* The rest from the cookie, a page of at most two. */
	struct plus q = { .stop_after = 16 };
	assert_int_equal(namei_readdirplus(fs, dp, p.next, 2, plus_emit, &q), 0);
	assert_int_equal(q.n, 2);
	struct plus r = { .stop_after = 16 };
	assert_int_equal(namei_readdirplus(fs, dp, q.next, 16, plus_emit, &r), 0);
	assert_int_equal(r.n, 1);
	struct plus end = { .stop_after = 16 };
	assert_int_equal(namei_readdirplus(fs, dp, r.next, 16, plus_emit, &end), 0);
	assert_int_equal(end.n, 0);
	for (int k = 0; k < 2; k++)
		sent |= 1ull << (q.e[k].ino - ino[0]);
	sent |= 1ull << (r.e[0].ino - ino[0]);
	assert_int_equal(sent, 0x3f);
	closei(fs, dp);
	for (int i = 0; i < 6; i++)
		forget(fs, ino[i]);
}

/* A write by someone other than root clears setuid, and setgid when group-executable. */
static void test_kill_priv(void **state)
{
	struct fixture *f = *state;
	struct fs *fs = f->fs;
	static const struct {
		mode_t mode;
		uint32_t uid;
		mode_t after;
	} cases[] = {
		{ 06755, 1000, 0755 },
		{ 04644, 1000, 0644 },
		{ 02644, 1000, 02644 },	/* setgid without group execute: mandatory locking, kept */
		{ 02754, 1000, 0754 },
		{ 06755, 0, 06755 },	/* root keeps them */
		{ 0755, 1000, 0755 },
	};

	uint64_t ino = mkfile(fs, ROOT, "suid");
	struct inode *ip = openi(fs, ino);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct stat attr = { .st_mode = cases[i].mode };

		assert_int_equal(namei_setattr(fs, ino, &attr, NAMEI_SET_MODE, NULL, NULL), 0);
		assert_int_equal(namei_kill_priv(fs, ip, cases[i].uid), 0);
		if ((stat_of(fs, ino).st_mode & 07777) != cases[i].after)
			fail_msg("mode %#o, uid %u: %#o, want %#o", cases[i].mode, cases[i].uid,
				 stat_of(fs, ino).st_mode & 07777, cases[i].after);
	}
	closei(fs, ip);
	/* Not for directories. */
	uint64_t d = mkdir_(fs, ROOT, "sgid-dir");
	struct stat attr = { .st_mode = 02775 };
	assert_int_equal(namei_setattr(fs, d, &attr, NAMEI_SET_MODE, NULL, NULL), 0);
	struct inode *dp = openi(fs, d);
	assert_int_equal(namei_kill_priv(fs, dp, 1000), 0);
	assert_int_equal(stat_of(fs, d).st_mode & 07777, 02775);
	closei(fs, dp);
	remount(f);
	assert_int_equal(stat_of(f->fs, ino).st_mode & 07777, 0755);
}

/* fsync: everything else is durable already; it writes back the lazy timestamps. */
static void test_fsync(void **state)
{
	struct fixture *f = *state;
	struct fs *fs = f->fs;
	char buf[4];

	uint64_t ino = mkfile(fs, ROOT, "sync");
	struct inode *ip = openi(fs, ino);
	wr(fs, ip, 0, "data", 4);
	struct stat attr = { .st_atim = { 1000, 0 } };
	assert_int_equal(namei_setattr(fs, ino, &attr, NAMEI_SET_ATIME, NULL, NULL), 0);
	assert_int_equal(rd(fs, ip, 0, buf, 4), 4);
	assert_true(ip->times_dirty);
	uint64_t commits = fs->sbi.journal.commits;
	assert_int_equal(namei_fsync(fs, ip), 0);
	assert_false(ip->times_dirty);
	assert_int_equal(fs->sbi.journal.commits, commits + 1);
	assert_int_equal(namei_fsync(fs, ip), 0);	/* nothing left: no commit */
	assert_int_equal(fs->sbi.journal.commits, commits + 1);
	closei(fs, ip);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_namespace_basics),
		T(test_rename),
		T(test_hard_links),
		T(test_symlinks),
		T(test_concurrent),
		T(test_readdirplus),
		T(test_kill_priv),
		T(test_fsync),
	};

	/* UNIT_FILTER=test_name (cmocka's glob) runs a subset while debugging. */
	if (getenv("UNIT_FILTER"))
		cmocka_set_test_filter(getenv("UNIT_FILTER"));
	return cmocka_run_group_tests_name("namei", tests, NULL, NULL);
}
