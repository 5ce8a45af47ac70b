/* SPDX-License-Identifier: MIT */
/*
 * Crash consistency, swept: every durability point of a workload that touches every metadata path.
 *
 * The workload runs once without crashing, recording the whole visible state of the file system
 * (names, types, modes, sizes, link counts, block counts, contents, symlink targets, xattrs) after
 * each step.  Then, for every N, a child runs it with DAXFS_CRASH_AT=N and dies at its N-th drain,
 * having reported each step it completed (each is fsync'ed).  After the crash:
 *   - the checker, read-only, finds the image consistent (journal replayed in a private copy);
 *   - a mount recovers, and the state is exactly the one after the last completed step or after
 *     the step that was in flight (each step is atomic);
 *   - after unmount the checker finds it consistent again, with nothing leaked.
 * Each N runs three times: stores kept (a process crash), every store since the last drain lost
 * (DAXFS_CRASH_TORN=all), and a random half of them lost (DAXFS_CRASH_TORN=random).
 *
 * DAXFS_CRASH_LONG=1 (the crash-long suite) adds more random seeds per point and repeats the
 * workload three times over.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cmocka.h>

#include "check.h"
#include "csum.h"
#include "super.h"
#include "file.h"
#include "inode.h"
#include "mount.h"
#include "namei.h"
#include "xattr.h"

static char image[128];
static struct cred root;
static int rounds = 1;	/* workload repetitions */
static int seeds = 1;	/* random tears per point */

/* ---- helpers over the fs API ---- */

static uint64_t resolve(struct fs *fs, const char *path)
{
	char buf[512], *save = NULL;
	uint64_t ino = DAXFS_ROOT_INO;

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *name = strtok_r(buf, "/", &save); name; name = strtok_r(NULL, "/", &save)) {
		struct entry e;

		if (namei_lookup(fs, ino, name, &e))
			return 0;
		inode_forget(fs, e.ino, 1);
		ino = e.ino;
	}
	return ino;
}

/* Split "/a/b/c" into the parent's inode and "c". */
static uint64_t parent_of(struct fs *fs, const char *path, const char **name)
{
	char dir[512];
	const char *slash = strrchr(path, '/');

	snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	*name = slash + 1;
	return dir[0] ? resolve(fs, dir) : DAXFS_ROOT_INO;
}

#define CHECK(x)                                                                          \
	do {                                                                              \
		long __r = (long)(x);                                                     \
		if (__r < 0) {                                                            \
			fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #x, strerror((int)-__r)); \
			abort();                                                          \
		}                                                                         \
	} while (0)

static void pattern(char *buf, size_t len, int seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (char)(seed * 31 + i * 7 + (i >> 9));
}

static struct inode *open_path(struct fs *fs, const char *path)
{
	struct inode *ip;

	CHECK(namei_open(fs, resolve(fs, path), O_RDWR, &ip, NULL));
	return ip;
}

static void create_file(struct fs *fs, const char *path, size_t len, int seed)
{
	const char *name;
	uint64_t dir = parent_of(fs, path, &name);
	struct entry e;
	static char buf[1 << 20];

	CHECK(namei_mknod(fs, &root, dir, name, S_IFREG | 0640, 0, &e));
	inode_forget(fs, e.ino, 1);
	if (len) {
		struct inode *ip = open_path(fs, path);

		for (size_t off = 0; off < len;) {
			size_t n = len - off < sizeof(buf) ? len - off : sizeof(buf);
			pattern(buf, n, seed + (int)(off >> 20));
			struct iovec iov = { buf, n };
			ssize_t w = file_write(fs, ip, off, &iov, 1);
			CHECK(w);
			off += (size_t)w;
		}
		CHECK(namei_fsync(fs, ip));
		CHECK(namei_release(fs, ip));
	}
}

static void write_at(struct fs *fs, const char *path, uint64_t off, size_t len, int seed)
{
	struct inode *ip = open_path(fs, path);
	char *buf = malloc(len);

	pattern(buf, len, seed);
	struct iovec iov = { buf, len };
	CHECK(file_write(fs, ip, off, &iov, 1));
	CHECK(namei_fsync(fs, ip));
	CHECK(namei_release(fs, ip));
	free(buf);
}

static void truncate_path(struct fs *fs, const char *path, uint64_t size)
{
	struct stat st = { .st_size = (off_t)size };

	CHECK(namei_setattr(fs, resolve(fs, path), &st, NAMEI_SET_SIZE, NULL, NULL));
}

static void falloc(struct fs *fs, const char *path, int mode, uint64_t off, uint64_t len)
{
	struct inode *ip = open_path(fs, path);

	CHECK(namei_fallocate(fs, ip, mode, off, len, NULL));
	CHECK(namei_release(fs, ip));
}

static void mkdir_path(struct fs *fs, const char *path)
{
	const char *name;
	uint64_t dir = parent_of(fs, path, &name);
	struct entry e;

	CHECK(namei_mkdir(fs, &root, dir, name, 0750, &e));
	inode_forget(fs, e.ino, 1);
}

static void rename_path(struct fs *fs, const char *from, const char *to, unsigned flags)
{
	const char *n1, *n2;
	uint64_t d1 = parent_of(fs, from, &n1), d2 = parent_of(fs, to, &n2);

	CHECK(namei_rename(fs, d1, n1, d2, n2, flags));
}

static void unlink_path(struct fs *fs, const char *path, bool dir)
{
	const char *name;
	uint64_t parent = parent_of(fs, path, &name);

	CHECK(dir ? namei_rmdir(fs, parent, name) : namei_unlink(fs, parent, name));
}

/* ---- the workload: one step per durability-relevant path ---- */

struct wl {
	struct fs *fs;
	struct inode *held;	/* a file kept open after its unlink */
	char pfx[16];
};

static const char *P(struct wl *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static const char *P(struct wl *w, const char *fmt, ...)
{
	static char bufs[4][256];
	static int next;
	char *b = bufs[next++ % 4];
	va_list ap;
	int n = snprintf(b, 256, "/%s", w->pfx);

	va_start(ap, fmt);
	vsnprintf(b + n, 256 - (size_t)n, fmt, ap);
	va_end(ap);
	return b;
}

/* Each step is one operation, so after a crash it has happened entirely or not at all. */
static void step(struct wl *w, int i)
{
	struct fs *fs = w->fs;
	struct entry e;
	const char *name;

	switch (i) {
	case 0: mkdir_path(fs, P(w, "%s", "")); break;
	case 1: mkdir_path(fs, P(w, "/a")); break;
	case 2: mkdir_path(fs, P(w, "/b")); break;
	case 3: create_file(fs, P(w, "/a/f1"), 0, 0); break;
	case 4: write_at(fs, P(w, "/a/f1"), 0, 10000, 1); break;			/* allocate, extend */
	case 5: write_at(fs, P(w, "/a/f1"), 200000, 4096, 2); break;		/* sparse extend */
	case 6: truncate_path(fs, P(w, "/a/f1"), 5000); break;			/* shrink, tail zeroed */
	case 7: write_at(fs, P(w, "/a/f1"), 5000, 20000, 3); break;		/* extend from mid-block */
	case 8: falloc(fs, P(w, "/a/f1"), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 3000, 9000); break;
	case 9: rename_path(fs, P(w, "/a/f1"), P(w, "/b/g1"), 0); break;		/* across directories */
	case 10: create_file(fs, P(w, "/a/f2"), 0, 0); break;
	case 11: write_at(fs, P(w, "/a/f2"), 0, 3000, 4); break;
	case 12: rename_path(fs, P(w, "/a/f2"), P(w, "/b/g1"), NAMEI_RENAME_EXCHANGE); break;
	case 13: {
		uint64_t ino = resolve(fs, P(w, "/b/g1"));
		uint64_t dir = parent_of(fs, P(w, "/a/l1"), &name);
		CHECK(namei_link(fs, ino, dir, name, &e));
		inode_forget(fs, e.ino, 1);
		break;
	}
	case 14: create_file(fs, P(w, "/a/open"), 0, 0); break;
	case 15: write_at(fs, P(w, "/a/open"), 0, 9000, 5); break;
	case 16:	/* unlink while open: an orphan until the last close */
		w->held = open_path(fs, P(w, "/a/open"));
		unlink_path(fs, P(w, "/a/open"), false);
		break;
	case 17: {
		static char buf[50000];
		pattern(buf, sizeof(buf), 6);
		struct iovec iov = { buf, sizeof(buf) };
		CHECK(file_write(fs, w->held, 9000, &iov, 1));
		CHECK(namei_fsync(fs, w->held));
		break;
	}
	case 18: mkdir_path(fs, P(w, "/a/sub")); break;
	case 19: create_file(fs, P(w, "/a/sub/x"), 0, 0); break;
	case 20: unlink_path(fs, P(w, "/a/sub/x"), false); break;
	case 21: unlink_path(fs, P(w, "/a/sub"), true); break;
	case 22: case 23: case 24: case 25: {
		struct inode *ip = open_path(fs, P(w, "/b/g1"));
		char big[2000];
		pattern(big, sizeof(big), 8);
		if (i == 22)
			CHECK(xattr_set(fs, ip, "user.k", "v1", 2, 0));
		else if (i == 23)
			CHECK(xattr_set(fs, ip, "user.big", big, sizeof(big), 0));
		else if (i == 24)
			CHECK(xattr_remove(fs, ip, "user.k"));
		else
			CHECK(xattr_set(fs, ip, "trusted.t", "x", 1, 0));
		CHECK(namei_release(fs, ip));
		break;
	}
	case 26: case 27: {
		char target[300];
		memset(target, 'x', sizeof(target) - 1);
		target[sizeof(target) - 1] = 0;
		uint64_t dir = parent_of(fs, P(w, "/a/s"), &name);
		CHECK(namei_symlink(fs, &root, dir, i == 26 ? "s" : "long", i == 26 ? "../b/g1" : target, &e));
		inode_forget(fs, e.ino, 1);
		break;
	}
	case 28: falloc(fs, P(w, "/b/g1"), FALLOC_FL_KEEP_SIZE, 0, 100000); break;
	case 29: falloc(fs, P(w, "/a/l1"), 0, 0, 30000); break;
	case 30: CHECK(namei_release(fs, w->held)); w->held = NULL; break;	/* the orphan goes */
	case 31: unlink_path(fs, P(w, "/a/l1"), false); break;
	case 32: create_file(fs, P(w, "/b/big"), 0, 0); break;
	case 33: write_at(fs, P(w, "/b/big"), 0, 700 << 10, 9); break;
	case 34: truncate_path(fs, P(w, "/b/big"), 100 << 10); break;
	case 35: {
		struct stat st = { .st_mode = 0600, .st_uid = 1000, .st_gid = 1000 };
		CHECK(namei_setattr(fs, resolve(fs, P(w, "/b/big")), &st, NAMEI_SET_MODE | NAMEI_SET_UID | NAMEI_SET_GID, NULL, NULL));
		break;
	}
	case 36: unlink_path(fs, P(w, "/b/big"), false); break;
	case 37: rename_path(fs, P(w, "/b"), P(w, "/c"), 0); break;		/* a directory moves */
	case 38: rename_path(fs, P(w, "/a/s"), P(w, "/c/s2"), NAMEI_RENAME_NOREPLACE); break;
	}
}

#define STEPS 39

/* ---- the visible state, canonically ---- */

struct sbuf {
	char *s;
	size_t len;
	size_t cap;
};

static void sb_printf(struct sbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(struct sbuf *sb, const char *fmt, ...)
{
	va_list ap;

	for (;;) {
		va_start(ap, fmt);
		int n = vsnprintf(sb->s + sb->len, sb->cap - sb->len, fmt, ap);
		va_end(ap);
		if ((size_t)n < sb->cap - sb->len) {
			sb->len += (size_t)n;
			return;
		}
		sb->cap = sb->cap * 2 + (size_t)n + 1024;
		sb->s = realloc(sb->s, sb->cap);
	}
}

struct names {
	char (*v)[256];
	size_t n;
};

static int collect(void *arg, const char *name, size_t len, uint64_t ino, uint8_t type, uint64_t next)
{
	struct names *nm = arg;

	(void)ino;
	(void)type;
	(void)next;
	if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
		return 0;
	nm->v = realloc(nm->v, (nm->n + 1) * sizeof(*nm->v));
	snprintf(nm->v[nm->n], 256, "%.*s", (int)len, name);
	nm->n++;
	return 0;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(a, b);
}

struct crc_ctx {
	uint32_t crc;
	uint64_t bytes;
};

static int crc_send(void *arg, const struct iovec *iov, int n)
{
	struct crc_ctx *c = arg;

	for (int i = 0; i < n; i++) {
		c->crc = csum_crc32c(c->crc, iov[i].iov_base, iov[i].iov_len);
		c->bytes += iov[i].iov_len;
	}
	return 0;
}

static void dump(struct fs *fs, uint64_t ino, const char *path, struct sbuf *sb)
{
	struct stat st;
	struct inode *ip;

	CHECK(namei_getattr(fs, ino, &st));
	sb_printf(sb, "%s mode=%o nlink=%lu uid=%u gid=%u size=%ld blocks=%ld", path, st.st_mode,
		  (unsigned long)st.st_nlink, st.st_uid, st.st_gid, (long)st.st_size, (long)st.st_blocks);
	CHECK(inode_get(fs, ino, &ip));
	if (S_ISREG(st.st_mode)) {
		struct crc_ctx c = { 0, 0 };

		for (uint64_t off = 0; off < (uint64_t)st.st_size; off += 1 << 20)
			CHECK(file_read(fs, ip, off, 1 << 20, crc_send, &c));
		sb_printf(sb, " data=%08x/%llu", c.crc, (unsigned long long)c.bytes);
	} else if (S_ISLNK(st.st_mode)) {
		char t[4097];
		int n = namei_readlink(fs, ino, t, sizeof(t) - 1);
		CHECK(n);
		sb_printf(sb, " -> %.*s", n, t);
	}
	char list[4096];
	int ln = xattr_list(fs, ip, list, sizeof(list));
	CHECK(ln);
	/* xattr_list keeps block order; sort the names for a canonical form. */
	char *names[64];
	int nn = 0;
	for (int off = 0; off < ln && nn < 64; off += (int)strlen(list + off) + 1)
		names[nn++] = list + off;
	for (int a = 1; a < nn; a++)
		for (int b = a; b > 0 && strcmp(names[b - 1], names[b]) > 0; b--) {
			char *t = names[b];
			names[b] = names[b - 1];
			names[b - 1] = t;
		}
	for (int k = 0; k < nn; k++) {
		char v[4096];
		int vl = xattr_get(fs, ip, names[k], v, sizeof(v));
		CHECK(vl);
		sb_printf(sb, " %s=%08x", names[k], csum_crc32c(0, v, (size_t)vl));
	}
	sb_printf(sb, "\n");
	if (S_ISDIR(st.st_mode)) {
		struct names nm = { 0 };

		CHECK(namei_readdir(fs, ip, 0, collect, &nm));
		if (nm.n)
			qsort(nm.v, nm.n, sizeof(*nm.v), cmp_names);
		for (size_t k = 0; k < nm.n; k++) {
			struct entry e;
			char child[1024];

			CHECK(namei_lookup(fs, ino, nm.v[k], &e));
			snprintf(child, sizeof(child), "%s/%s", path, nm.v[k]);
			dump(fs, e.ino, child, sb);
			inode_forget(fs, e.ino, 1);
		}
		free(nm.v);
	}
	inode_put(fs, ip);
}

static char *state_of(struct fs *fs)
{
	struct sbuf sb = { .s = malloc(4096), .cap = 4096 };

	sb.s[0] = 0;
	dump(fs, DAXFS_ROOT_INO, "", &sb);
	return sb.s;
}

/* ---- driver ---- */

static void format_image(void)
{
	struct mkfs_params p = { .journal_bytes = 256 << 10 };
	struct media m;
	char err[256];
	int fd = open(image, O_RDWR | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 64 << 20), 0);
	close(fd);
	assert_int_equal(media_open(&m, image, 0, err, sizeof(err)), 0);
	assert_int_equal(super_format(&m, &p, err, sizeof(err)), 0);
	media_close(&m);
}

static struct fs *mount_it(void)
{
	struct mount_config cfg = { 0 };
	struct fs *fs;
	char err[512];

	if (mount_open(&fs, image, &cfg, err, sizeof(err)))
		fail_msg("mount after crash: %s", err);
	return fs;
}

/* Run the workload; after each step call ack(k). */
static void run_workload(struct fs *fs, void (*ack)(void *, int), void *arg)
{
	struct wl w = { .fs = fs };
	int k = 0;

	for (int r = 0; r < rounds; r++) {
		snprintf(w.pfx, sizeof(w.pfx), "r%d", r);
		for (int i = 0; i < STEPS; i++, k++) {
			step(&w, i);
			ack(arg, k);
		}
	}
}

static char **reference;	/* reference[k + 1]: the state after step k; reference[0]: empty */

static void ack_record(void *arg, int k)
{
	reference[k + 1] = state_of(arg);
}

static void ack_pipe(void *arg, int k)
{
	if (write(*(int *)arg, &k, sizeof(k)) != sizeof(k))
		_exit(99);
}

/* fsck -n, quietly unless it finds something; the number of orphans waiting goes to *orphans. */
static int check_quiet(uint64_t *orphans)
{
	struct check_opts o = { .mode = CHECK_READONLY };
	struct check_result r;
	FILE *null = fopen("/dev/null", "w");

	o.out = null;
	int rc = check_image(image, &o, &r);
	fclose(null);
	if (rc != FSCK_OK) {
		/* Say why. */
		o.out = stderr;
		check_image(image, &o, &r);
	}
	*orphans = r.orphans;
	return rc;
}

/* Crash at drain n with the given tear mode; returns false once n is past the last drain. */
static bool crash_at(int n, const char *torn, int nsteps)
{
	int fds[2];

	format_image();
	assert_int_equal(pipe(fds), 0);
	pid_t pid = fork();
	if (pid == 0) {
		char v[32];

		close(fds[0]);
		snprintf(v, sizeof(v), "%d", n);
		setenv("DAXFS_CRASH_AT", v, 1);
		if (torn)
			setenv("DAXFS_CRASH_TORN", torn, 1);
		struct mount_config cfg = { 0 };
		struct fs *fs;
		char err[256];
		if (mount_open(&fs, image, &cfg, err, sizeof(err)))
			_exit(98);
		run_workload(fs, ack_pipe, &fds[1]);
		mount_close(fs);
		_exit(0);
	}
	close(fds[1]);
	int k = -1, v;
	while (read(fds[0], &v, sizeof(v)) == sizeof(v))
		k = v;
	close(fds[0]);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	if (WIFEXITED(st)) {
		assert_int_equal(WEXITSTATUS(st), 0);
		assert_int_equal(k, nsteps - 1);
		return false;	/* no drain number n: the sweep is complete */
	}
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);

	uint64_t orphans;
	if (check_quiet(&orphans) != FSCK_OK)
		fail_msg("crash at drain %d (%s), after step %d: fsck -n is not clean", n, torn ? torn : "plain", k);
	struct fs *fs = mount_it();
	char *s = state_of(fs);
	bool before = strcmp(s, reference[k + 1]) == 0;
	bool after = k + 2 <= nsteps && strcmp(s, reference[k + 2]) == 0;
	if (!before && !after)
		fail_msg("crash at drain %d (%s) after step %d: state is neither before nor after step %d:\n%s\n"
			 "expected:\n%s",
			 n, torn ? torn : "plain", k, k + 1, s, reference[k + 1]);
	free(s);
	mount_close(fs);
	if (check_quiet(&orphans) != FSCK_OK)
		fail_msg("crash at drain %d (%s): fsck -n not clean after recovery", n, torn ? torn : "plain");
	if (orphans)
		fail_msg("crash at drain %d (%s): %llu orphans left after a mount recovered", n, torn ? torn : "plain",
			 (unsigned long long)orphans);
	return true;
}

static void test_sweep(void **state)
{
	int nsteps = STEPS * rounds, points = 0;

	(void)state;
	reference = calloc((size_t)nsteps + 1, sizeof(*reference));
	format_image();
	struct fs *fs = mount_it();
	reference[0] = state_of(fs);
	run_workload(fs, ack_record, fs);
	mount_close(fs);

	for (int n = 1;; n++) {
		if (!crash_at(n, NULL, nsteps))
			break;
		assert_true(crash_at(n, "all", nsteps));
		for (int s = 0; s < seeds; s++) {
			char t[32];

			snprintf(t, sizeof(t), "random:%d", n * 7919 + s);
			assert_true(crash_at(n, t, nsteps));
		}
		points = n;
	}
	print_message("%d crash points swept, %d crashes checked (%d steps of workload)\n", points,
		      points * (2 + seeds), nsteps);
	assert_true(points > 50);
	for (int k = 0; k <= nsteps; k++)
		free(reference[k]);
	free(reference);
}

/* Killed by the test runner's timeout: the image must not stay behind in /dev/shm. */
static void on_term(int sig)
{
	unlink(image);
	signal(sig, SIG_DFL);
	raise(sig);
}

int main(void)
{
	snprintf(image, sizeof(image), "/dev/shm/daxfs-crash-%d.img", getpid());
	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);
	if (getenv("DAXFS_CRASH_LONG")) {
		rounds = 3;
		seeds = 4;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sweep),
	};
	int rc = cmocka_run_group_tests_name("crash", tests, NULL, NULL);
	unlink(image);
	return rc;
}
