/* SPDX-License-Identifier: MIT */
/*
 * Hostile images: corrupt every kind of metadata structure of a well-populated image (superblock
 * and its copy, journal, both bitmaps, inode records, directory blocks, extent blocks, xattr blocks,
 * the orphan and busy lists), truncate images, and feed random bytes.  For each, in a child with a
 * time limit:
 *   - mounting either fails with a message or succeeds; a mounted image survives a walk of
 *     everything and some changes (errors are fine, crashes and hangs are not);
 *   - fsck -y ends in 0, 1 or 4, and when it says 0 or 1 a following fsck -n is clean;
 *   - fsck never crashes or hangs.
 * Under AddressSanitizer (the test command's second build) any out-of-bounds read is caught too.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "check.h"
#include "csum.h"
#include "super.h"
#include "treewalk.h"
#include "util.h"
#include "mount.h"

#define IMAGE_BYTES (16u << 20)
#define TRIALS 30

static char base_path[128], work_path[128];
static char *base;		/* the pristine image */
static struct cred root;
static uint64_t rng = 0x2545f4914f6cdd1dull;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

#define CHECK(x)                                                                           \
	do {                                                                               \
		long __r = (long)(x);                                                      \
		if (__r < 0) {                                                             \
			fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #x, strerror((int)-__r)); \
			_exit(90);                                                         \
		}                                                                          \
	} while (0)

/* ---- a populated image: built by a process that then dies, leaving an orphan and busy extents ---- */

static uint64_t mk(struct fs *fs, uint64_t dir, const char *name, mode_t mode)
{
	struct entry e;

	if (S_ISDIR(mode))
		CHECK(namei_mkdir(fs, &root, dir, name, mode & 07777, &e));
	else
		CHECK(namei_mknod(fs, &root, dir, name, mode, 0, &e));
	return e.ino;
}

static void fill(struct fs *fs, struct inode *ip, uint64_t off, size_t len, int seed)
{
	char *buf = malloc(len);

	for (size_t i = 0; i < len; i++)
		buf[i] = (char)(seed + i * 13);
	struct iovec iov = { buf, len };
	CHECK(file_write(fs, ip, off, &iov, 1));
	free(buf);
}

static void build_base(void)
{
	struct mount_config cfg = { 0 };
	struct fs *fs;
	struct entry e;
	struct inode *ip;
	char err[256];

	if (mount_open(&fs, base_path, &cfg, err, sizeof(err)))
		_exit(91);
	CHECK(mount_start(fs));
	uint64_t d = mk(fs, DAXFS_ROOT_INO, "dir", S_IFDIR | 0755);
	for (int i = 0; i < 300; i++) {	/* several directory blocks */
		char name[64];

		snprintf(name, sizeof(name), "entry-with-a-longish-name-%04d", i);
		mk(fs, d, name, S_IFREG | 0644);
	}
	/* A file of ~300 extents: extent blocks in a chain. */
	uint64_t f = mk(fs, DAXFS_ROOT_INO, "fragmented", S_IFREG | 0644);
	CHECK(namei_open(fs, f, O_RDWR, &ip, NULL));
	for (int b = 0; b < 600; b += 2)
		fill(fs, ip, (uint64_t)b * 4096, 4096, b);
	CHECK(xattr_set(fs, ip, "user.note", "some value", 10, 0));
	CHECK(xattr_set(fs, ip, "security.label", "sec", 3, 0));
	CHECK(namei_release(fs, ip));
	uint64_t g = mk(fs, DAXFS_ROOT_INO, "big", S_IFREG | 0600);
	CHECK(namei_open(fs, g, O_RDWR, &ip, NULL));
	fill(fs, ip, 0, 1 << 20, 7);
	CHECK(namei_release(fs, ip));
	CHECK(namei_link(fs, g, d, "hardlink", &e));
	CHECK(namei_symlink(fs, &root, DAXFS_ROOT_INO, "short", "dir/hardlink", &e));
	char longt[1000];
	memset(longt, 'L', sizeof(longt) - 1);
	longt[sizeof(longt) - 1] = 0;
	CHECK(namei_symlink(fs, &root, d, "long", longt, &e));
	mk(fs, d, "sub", S_IFDIR | 0700);
	/* An orphan: unlinked while open, never closed. */
	uint64_t o = mk(fs, DAXFS_ROOT_INO, "orphan", S_IFREG | 0644);
	CHECK(namei_open(fs, o, O_RDWR, &ip, NULL));
	fill(fs, ip, 0, 50000, 3);
	CHECK(namei_unlink(fs, DAXFS_ROOT_INO, "orphan"));
	/* Busy extents: pinned ranges of a file truncated under the pins. */
	uint64_t p = mk(fs, DAXFS_ROOT_INO, "pinned", S_IFREG | 0644);
	struct inode *pp;
	struct pin_owner owner;
	uint64_t id;
	pin_owner_init(&owner);
	CHECK(namei_open(fs, p, O_RDWR, &pp, NULL));
	fill(fs, pp, 0, 256 << 10, 9);
	for (int i = 0; i < 8; i++)
		CHECK(policy_pin(fs, &owner, pp, &(struct policy_pin_args){ .offset = (uint64_t)i * 32768, .length = 4096, .flags = DAXFS_PIN_WRITE, .pid = getpid(), .writable = true }, NULL, &id));
	struct stat st = { .st_size = 0 };
	CHECK(namei_setattr(fs, p, &st, NAMEI_SET_SIZE, NULL, NULL));
	/* Die: the journal holds the last transaction, the orphan and busy records stay. */
	_exit(0);
}

/* ---- where each kind of structure lives ---- */

enum kind { K_SUPER, K_BACKUP, K_JOURNAL, K_IBITMAP, K_BBITMAP, K_INODE, K_DIR, K_EXTENT, K_XATTR, K_SLOTS, NKINDS };
static const char *kind_name[] = { "superblock", "superblock copy", "journal", "inode bitmap", "block bitmap",
				   "inode records", "directory blocks", "extent blocks", "xattr blocks", "slot lists" };

struct ranges {
	uint64_t (*v)[2];
	size_t n;
};
static struct ranges where[NKINDS];

static void add(enum kind k, uint64_t off, uint64_t len)
{
	where[k].v = realloc(where[k].v, (where[k].n + 1) * sizeof(*where[k].v));
	where[k].v[where[k].n][0] = off;
	where[k].v[where[k].n][1] = len;
	where[k].n++;
}

static void locate(void)
{
	struct mount_config cfg = { .norecovery = true, .readonly = true, .private_map = true, .shared = true };
	struct fs *fs;
	char err[256];

	assert_int_equal(mount_open(&fs, base_path, &cfg, err, sizeof(err)), 0);
	struct sbi *s = &fs->sbi;
	uint32_t bs = s->bs;
	add(K_SUPER, 0, sizeof(struct daxfs_super));
	add(K_BACKUP, s->sb.backup_sb * bs, sizeof(struct daxfs_super));
	const struct daxfs_journal_header *jh = sbi_block(s, s->sb.journal_start);
	add(K_JOURNAL, s->sb.journal_start * bs, sizeof(*jh) + jh->len);
	add(K_IBITMAP, s->sb.ibitmap_start * bs, 64);
	add(K_BBITMAP, s->sb.bbitmap_start * bs, DIV_ROUND_UP(s->sb.data_start, 8) + 256);
	for (uint64_t ino = 1; ino <= s->sb.ninodes; ino++) {
		struct inode *ip;

		if (!journal_bitmap_test(&s->ibm, ino - 1) || inode_read(fs, ino, &ip))
			continue;
		add(K_INODE, s->sb.itable_start * bs + (ino - 1) * DAXFS_INODE_SIZE, DAXFS_INODE_SIZE);
		for (uint32_t li = 1; li < ip->map.nleaves; li++)
			add(K_EXTENT, ip->map.leaves[li].pblk * bs, bs);
		if (S_ISDIR(ip->d.mode)) {
			struct emap_cursor c;
			struct daxfs_extent e;

			for (bool more = emap_seek(ip, 0, &c, &e); more; more = emap_next(ip, &c, &e))
				add(K_DIR, e.pblk * bs, (uint64_t)e.len * bs);
		}
		if (ip->d.xattr_blk)
			add(K_XATTR, ip->d.xattr_blk * bs, bs);
		inode_free(ip);
	}
	struct slotlist sl;
	static const uint32_t kinds[] = { DAXFS_SLOTS_ORPHAN, DAXFS_SLOTS_BUSY, DAXFS_SLOTS_HOLDER };
	for (int l = 0; l < 3; l++) {
		uint64_t head = l == 0 ? s->sb.orphan_head : l == 1 ? s->sb.busy_head : s->sb.holder_head;

		assert_int_equal(slots_load(&sl, s, kinds[l], head, NULL, NULL, err, sizeof(err)), 0);
		for (size_t i = 0; i < sl.nblocks; i++)
			add(K_SLOTS, sl.blocks[i] * bs, 32 + 8 * 32);	/* header and the first slots */
		slots_destroy(&sl);
	}
	mount_close(fs);
	for (int k = 0; k < NKINDS; k++)
		if (where[k].n == 0)
			fail_msg("the base image has no %s to corrupt", kind_name[k]);
}

/* ---- one trial ---- */

static void use(struct fs *fs)
{
	struct entry e;
	struct inode *ip;

	treewalk(fs, DAXFS_ROOT_INO, 0, 16, 64u << 20);
	/* Changes too: allocation and freeing run on whatever the bitmaps now say. */
	if (namei_mknod(fs, &root, DAXFS_ROOT_INO, "new", S_IFREG | 0644, 0, &e) == 0) {
		if (namei_open(fs, e.ino, O_RDWR, &ip, NULL) == 0) {
			static char buf[300 << 10];
			struct iovec iov = { buf, sizeof(buf) };
			file_write(fs, ip, 0, &iov, 1);
			namei_release(fs, ip);
		}
		inode_forget(fs, e.ino, 1);
	}
	struct stat st = { .st_size = 4096 };
	if (namei_lookup(fs, DAXFS_ROOT_INO, "fragmented", &e) == 0) {
		namei_setattr(fs, e.ino, &st, NAMEI_SET_SIZE, NULL, NULL);
		inode_forget(fs, e.ino, 1);
	}
	namei_unlink(fs, DAXFS_ROOT_INO, "short");
	namei_mkdir(fs, &root, DAXFS_ROOT_INO, "newdir", 0755, &e);
}

/* Corruption reports are the expected outcome here; counting them is enough. */
static uint64_t reports;
static void quiet(void *arg, const char *msg)
{
	(void)arg;
	(void)msg;
	reports++;
}

/* In a child: the rules above; exit 0 when they held. */
static int trial_child(void)
{
	struct mount_config cfg = { .enospc_wait_ms = 100, .report = quiet };
	struct check_opts o = { .mode = CHECK_REPAIR };
	struct check_result r;
	struct fs *fs;
	char err[512];
	FILE *null = fopen("/dev/null", "w");

	alarm(20);	/* a hang is a failure: SIGALRM kills the child */
	if (mount_open(&fs, work_path, &cfg, err, sizeof(err)) == 0) {
		mount_start(fs);
		use(fs);
		mount_close(fs);
	} else if (!err[0]) {
		fprintf(stderr, "mount failed without a message\n");
		return 1;
	}
	o.out = null;
	int rc = check_image(work_path, &o, &r);
	if (rc != FSCK_OK && rc != FSCK_FIXED && rc != FSCK_UNFIXED && rc != FSCK_FAILED) {
		fprintf(stderr, "fsck -y returned %d\n", rc);
		return 1;
	}
	if (rc <= FSCK_FIXED) {
		o.mode = CHECK_READONLY;
		int rc2 = check_image(work_path, &o, &r);
		if (rc2 != FSCK_OK) {
			o.out = stderr;
			check_image(work_path, &o, &r);
			fprintf(stderr, "fsck -y returned %d but fsck -n then returned %d\n", rc, rc2);
			return 1;
		}
		/* Repaired: it mounts and works. */
		if (mount_open(&fs, work_path, &cfg, err, sizeof(err))) {
			fprintf(stderr, "repaired image does not mount: %s\n", err);
			return 1;
		}
		mount_start(fs);
		use(fs);
		mount_close(fs);
	}
	fclose(null);
	return 0;
}

static void write_image(const char *img, size_t len)
{
	int fd = open(work_path, O_RDWR | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, img, len), (ssize_t)len);
	close(fd);
}

static void run_trial(const char *img, size_t len, const char *what)
{
	write_image(img, len);
	pid_t pid = fork();
	if (pid == 0)
		_exit(trial_child());
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	if (WIFSIGNALED(st))
		fail_msg("%s: the trial died with signal %d (%s)", what, WTERMSIG(st),
			 WTERMSIG(st) == SIGALRM ? "hang" : "crash");
	if (WEXITSTATUS(st) != 0)
		fail_msg("%s: trial failed (exit %d)", what, WEXITSTATUS(st));
}

/* ---- the tests ---- */

static int setup(void **state)
{
	(void)state;
	snprintf(base_path, sizeof(base_path), "/dev/shm/daxfs-corrupt-base-%d.img", getpid());
	snprintf(work_path, sizeof(work_path), "/dev/shm/daxfs-corrupt-%d.img", getpid());
	struct mkfs_params p = { .ninodes = 1024, .journal_bytes = 256 << 10 };
	struct media m;
	char err[256];
	int fd = open(base_path, O_RDWR | O_CREAT | O_TRUNC, 0600);

	if (fd < 0 || ftruncate(fd, IMAGE_BYTES))
		return -1;
	close(fd);
	if (media_open(&m, base_path, 0, err, sizeof(err)) || super_format(&m, &p, err, sizeof(err)))
		return -1;
	media_close(&m);
	pid_t pid = fork();
	if (pid == 0)
		build_base();
	int st;
	waitpid(pid, &st, 0);
	if (!WIFEXITED(st) || WEXITSTATUS(st))
		return -1;
	base = malloc(IMAGE_BYTES);
	fd = open(base_path, O_RDONLY);
	if (fd < 0 || read(fd, base, IMAGE_BYTES) != IMAGE_BYTES)
		return -1;
	close(fd);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(base_path);
	unlink(work_path);
	free(base);
	for (int k = 0; k < NKINDS; k++)
		free(where[k].v);
	return 0;
}

/* The pristine image (with its orphan and busy extents) passes: the baseline for the rest. */
static void test_base_is_sound(void **state)
{
	(void)state;
	locate();
	run_trial(base, IMAGE_BYTES, "pristine image");
}

static void test_flip_every_structure(void **state)
{
	char *img = malloc(IMAGE_BYTES);
	int trials = 0;

	(void)state;
	for (int k = 0; k < NKINDS; k++) {
		for (int t = 0; t < TRIALS; t++) {
			char what[160];
			const uint64_t *r = where[k].v[rnd() % where[k].n];
			uint64_t off = r[0] + rnd() % r[1];
			int nbytes = 1 + (int)(rnd() % 4);

			memcpy(img, base, IMAGE_BYTES);
			for (int b = 0; b < nbytes && off + (uint64_t)b < IMAGE_BYTES; b++)
				img[off + (uint64_t)b] ^= (char)(1 + rnd() % 255);
			snprintf(what, sizeof(what), "%s: %d bytes changed at %llu", kind_name[k], nbytes,
				 (unsigned long long)off);
			run_trial(img, IMAGE_BYTES, what);
			trials++;
		}
	}
	print_message("%d corrupted images tried\n", trials);
	free(img);
}

static int first_orphan(void *arg, uint64_t id, const uint64_t v[3])
{
	(void)id;
	if (!*(uint64_t *)arg)
		*(uint64_t *)arg = v[0];
	return 0;
}

/*
 * The orphan's inode marked free in the inode bitmap: its slot is stale.  fsck -y must remove the
 * slot exactly once (a slot released twice went onto the free stack twice, one past its end).
 */
static void test_stale_orphan_slot(void **state)
{
	struct mount_config cfg = { .norecovery = true, .readonly = true, .private_map = true, .shared = true };
	struct slotlist sl;
	struct fs *fs;
	char err[256];
	uint64_t ino = 0;

	(void)state;
	assert_int_equal(mount_open(&fs, base_path, &cfg, err, sizeof(err)), 0);
	struct sbi *s = &fs->sbi;
	assert_int_equal(slots_load(&sl, s, DAXFS_SLOTS_ORPHAN, s->sb.orphan_head, first_orphan, &ino, err,
				    sizeof(err)), 0);
	slots_destroy(&sl);
	assert_true(ino != 0);
	uint64_t off = s->sb.ibitmap_start * s->bs + (ino - 1) / 8;
	mount_close(fs);

	char *img = malloc(IMAGE_BYTES);
	memcpy(img, base, IMAGE_BYTES);
	img[off] = (char)(img[off] & ~(1 << ((ino - 1) % 8)));
	run_trial(img, IMAGE_BYTES, "orphan slot naming a free inode");
	free(img);
}

/* ---- a corrupt holder list ---- */

enum holder_damage {
	HD_CHECKSUM,	/* a record that does not verify */
	HD_NO_HOLDER,	/* a record that verifies but names no process (pid 0) */
	HD_CHAIN,	/* the list's head block does not verify: no record can be read */
};
static const char *const damage_name[] = { "a holder record with a bad checksum", "a holder record naming no process",
					   "a holder list whose head block is corrupt" };

/* Where the base image's first holder record and its list's head block are; the record with pid 0. */
struct holder_spot {
	uint64_t slot_off, head_off;
	struct daxfs_slot no_holder;
};

static int first_holder(void *arg, uint64_t id, const uint64_t v[3])
{
	(void)v;
	if (*(uint64_t *)arg == UINT64_MAX)
		*(uint64_t *)arg = id;
	return 0;
}

static struct holder_spot find_holder(void)
{
	struct mount_config cfg = { .norecovery = true, .readonly = true, .private_map = true, .shared = true };
	struct holder_spot h;
	struct slotlist sl;
	struct fs *fs;
	char err[256];
	uint64_t id = UINT64_MAX;

	assert_int_equal(mount_open(&fs, base_path, &cfg, err, sizeof(err)), 0);
	struct sbi *s = &fs->sbi;
	assert_true(s->sb.feature_compat & DAXFS_FEATURE_COMPAT_HOLDERS);
	assert_int_equal(slots_load(&sl, s, DAXFS_SLOTS_HOLDER, s->sb.holder_head, first_holder, &id, err,
				    sizeof(err)), 0);
	assert_true(id != UINT64_MAX);	/* build_base's pinning process */
	uint64_t blk = sl.blocks[id / sl.per_block];
	uint32_t idx = (uint32_t)(id % sl.per_block);
	h.slot_off = blk * s->bs + sizeof(struct daxfs_slot_block) + idx * sizeof(struct daxfs_slot);
	h.head_off = s->sb.holder_head * s->bs;
	h.no_holder = slots_block(&sl, id / sl.per_block)[idx];
	h.no_holder.v[2] = 0;
	h.no_holder.crc = csum_slot(s->seed, blk, idx, &h.no_holder);
	slots_destroy(&sl);
	mount_close(fs);
	return h;
}

/* Records on the holder list of the image, or -1 when it does not load. */
static int holder_records(void)
{
	struct mount_config cfg = { .norecovery = true, .readonly = true, .private_map = true, .shared = true };
	struct slotlist sl;
	struct fs *fs;
	char err[256];
	int n = -1;

	if (mount_open(&fs, work_path, &cfg, err, sizeof(err)))
		return -1;
	if (slots_load(&sl, &fs->sbi, DAXFS_SLOTS_HOLDER, fs->sbi.sb.holder_head, NULL, NULL, err, sizeof(err)) == 0)
		n = (int)sl.used;
	slots_destroy(&sl);
	mount_close(fs);
	return n;
}

/* What a file holds, as a string (at most 8 KiB). */
static const char *slurp(FILE *f)
{
	static char buf[8192];
	size_t n;

	rewind(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = 0;
	return buf;
}

#define H_CHECK(cond, ...)                                                                 \
	do {                                                                               \
		if (!(cond)) {                                                             \
			fprintf(stderr, "%s: ", damage_name[d]);                           \
			fprintf(stderr, __VA_ARGS__);                                      \
			fputc('\n', stderr);                                               \
			return 1;                                                          \
		}                                                                          \
	} while (0)

/* Repaired or mounted, the image must check clean, mount with quarantine, and hold no holder record. */
static int holder_after(enum holder_damage d)
{
	struct check_opts o = { .mode = CHECK_READONLY };
	struct mount_config cfg = { .enospc_wait_ms = 100 };
	struct check_result r;
	struct fs *fs;
	char err[512];
	FILE *out = tmpfile();

	o.out = out;
	H_CHECK(check_image(work_path, &o, &r) == FSCK_OK, "fsck -n afterwards: %s", slurp(out));
	fclose(out);
	H_CHECK(holder_records() == 0, "%d holder records left", holder_records());
	H_CHECK(mount_open(&fs, work_path, &cfg, err, sizeof(err)) == 0, "the default mount afterwards: %s", err);
	mount_close(fs);
	return 0;
}

/* In a child: fsck -n reports what is wrong with the list; fsck -y drops it, and says so. */
static int holder_fsck_child(enum holder_damage d)
{
	struct check_opts o = { .mode = CHECK_READONLY };
	struct check_result r;
	FILE *out = tmpfile();

	alarm(20);
	o.out = out;
	int rc = check_image(work_path, &o, &r);
	const char *said = slurp(out);
	H_CHECK(rc == FSCK_UNFIXED, "fsck -n returned %d: %s", rc, said);
	H_CHECK(strstr(said, "holder"), "fsck -n said: %s", said);
	H_CHECK(holder_records() != 0, "fsck -n changed the list");
	fclose(out);
	o.mode = CHECK_REPAIR;
	o.out = out = tmpfile();
	rc = check_image(work_path, &o, &r);
	said = slurp(out);
	H_CHECK(rc == FSCK_FIXED, "fsck -y returned %d: %s", rc, said);
	H_CHECK(strstr(said, d == HD_CHAIN ? "holder list emptied" : "dropped"), "fsck -y said: %s", said);
	fclose(out);
	return holder_after(d);
}

/*
 * In a child: the default mount (quarantine) refuses a list it cannot read, saying what helps;
 * recover=reclaim mounts by discarding it, with a line on standard error.
 */
static int holder_mount_child(enum holder_damage d)
{
	struct mount_config cfg = { .enospc_wait_ms = 100 };
	struct fs *fs;
	char err[512];
	FILE *log = tmpfile();

	alarm(20);
	if (d != HD_NO_HOLDER) {
		H_CHECK(mount_open(&fs, work_path, &cfg, err, sizeof(err)) != 0, "mounted with quarantine");
		H_CHECK(strstr(err, "holder list") && strstr(err, "recover=reclaim") && strstr(err, "fsck.daxfs -y"),
			"the mount said: %s", err);
	}
	cfg.reclaim_at_mount = true;
	fflush(stderr);
	int saved = dup(2);
	dup2(fileno(log), 2);
	int ret = mount_open(&fs, work_path, &cfg, err, sizeof(err));
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	H_CHECK(ret == 0, "recover=reclaim did not mount: %s", err);
	mount_start(fs);
	use(fs);
	mount_close(fs);
	const char *said = slurp(log);
	if (d != HD_NO_HOLDER)
		H_CHECK(strstr(said, "holder list") && strstr(said, "discarded (recover=reclaim)"), "it logged: %s", said);
	fclose(log);
	return holder_after(d);
}

static void holder_trial(const char *img, enum holder_damage d, int (*child)(enum holder_damage))
{
	write_image(img, IMAGE_BYTES);
	pid_t pid = fork();
	if (pid == 0)
		_exit(child(d));
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	if (WIFSIGNALED(st))
		fail_msg("%s: the trial died with signal %d", damage_name[d], WTERMSIG(st));
	if (WEXITSTATUS(st))
		fail_msg("%s: trial failed (exit %d)", damage_name[d], WEXITSTATUS(st));
}

/*
 * A corrupt holder list (a record that does not verify, one naming no process, a head block that
 * does not verify): fsck -y drops the bad records or empties the list, and recover=reclaim mounts by
 * discarding it; either way the image checks clean and mounts with quarantine after.
 */
static void test_corrupt_holder_list(void **state)
{
	struct holder_spot h = find_holder();
	char *img = malloc(IMAGE_BYTES);

	(void)state;
	for (enum holder_damage d = HD_CHECKSUM; d <= HD_CHAIN; d++) {
		memcpy(img, base, IMAGE_BYTES);
		if (d == HD_CHECKSUM)
			img[h.slot_off + offsetof(struct daxfs_slot, v)] ^= 0x5a;
		else if (d == HD_NO_HOLDER)
			memcpy(img + h.slot_off, &h.no_holder, sizeof(h.no_holder));
		else
			img[h.head_off + offsetof(struct daxfs_slot_block, magic)] ^= 0x5a;
		holder_trial(img, d, holder_fsck_child);
		holder_trial(img, d, holder_mount_child);
	}
	free(img);
}

static void test_truncated_and_random(void **state)
{
	char *img = malloc(IMAGE_BYTES);
	const size_t cuts[] = { 0, 100, 511, 4096, 8192, 300000, IMAGE_BYTES / 2, IMAGE_BYTES - 4096, IMAGE_BYTES - 1 };

	(void)state;
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		char what[64];

		snprintf(what, sizeof(what), "image truncated to %zu bytes", cuts[i]);
		run_trial(base, cuts[i], what);
	}
	for (int t = 0; t < 5; t++) {
		for (size_t i = 0; i < IMAGE_BYTES / 8; i++)
			((uint64_t *)img)[i] = rnd();
		run_trial(img, IMAGE_BYTES, "random bytes");
		/* Random bytes behind a valid superblock: everything else is garbage. */
		memcpy(img, base, 4096);
		run_trial(img, IMAGE_BYTES, "valid superblock, random rest");
	}
	free(img);
}

/* Killed by the test runner's timeout: the images must not stay behind in /dev/shm. */
static void on_term(int sig)
{
	unlink(base_path);
	unlink(work_path);
	signal(sig, SIG_DFL);
	raise(sig);
}

int main(void)
{
	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_base_is_sound),
		cmocka_unit_test(test_flip_every_structure),
		cmocka_unit_test(test_stale_orphan_slot),
		cmocka_unit_test(test_corrupt_holder_list),
		cmocka_unit_test(test_truncated_and_random),
	};
	return cmocka_run_group_tests_name("corrupt", tests, setup, teardown);
}
