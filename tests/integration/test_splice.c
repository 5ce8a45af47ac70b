/* SPDX-License-Identifier: MIT */
/*
 * Writes through the splice path (-o splice=write): the payload of a large FUSE write
 * stays in libfuse's pipe and is read() from there straight into the media.
 *   - the path is taken (the daemon holds its pipes) and the data reads back, at any alignment;
 *   - a write cut short by ENOSPC takes what fits and leaves no bytes behind in the pipe: the
 *     requests after it are whole;
 *   - a crash at every persist point of a workload of such writes (an overwrite, an append, a
 *     write past EOF), with the stores since the last drain kept, all lost or half lost: fsck -n
 *     is clean, every acknowledged write is there, the write in flight is entirely before or
 *     after (an overwrite byte by byte; a size change only with all its data), nothing stale.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "itest.h"

#define MIB (1u << 20)
/*
 * A 1 MiB write spliced whole needs a 2 MiB pipe, which a daemon without CAP_SYS_RESOURCE gets only
 * when fs.pipe-max-size allows it (1 MiB by default).  A test must not change that setting under
 * the other daemons of the machine: these mount with writes of at most 1 MiB - 4 KiB, whose pipe
 * is 1 MiB.
 */
#define SPLICE_OPTS "-o splice=write,max_write=1044480"
#define REQ_MAX 1044480u

/* Pipes among the daemon's descriptors: libfuse's splice buffers, there only when it splices. */
static int daemon_pipes(const struct mnt *m)
{
	char out[64];

	h_run(out, sizeof(out), "ls -l /proc/%d/fd 2>/dev/null | grep -c 'pipe:'", m->daemon);
	return atoi(out);
}

static void *page_buf(size_t len)
{
	void *p = NULL;

	if (posix_memalign(&p, 4096, len))
		fail_msg("posix_memalign");
	return p;
}

static void pwrite_all(int fd, const void *buf, size_t len, off_t off)
{
	assert_int_equal(pwrite(fd, buf, len, off), (ssize_t)len);
}

/* The file's bytes [off, off + len) follow stream seed from stream position pos. */
static void check_range(const char *path, off_t off, size_t len, uint64_t pos, unsigned seed)
{
	char *got = page_buf(len);
	int fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, got, len, off), (ssize_t)len);
	long d = pat_diff(got, len, pos, seed);
	if (d >= 0)
		fail_msg("%s: byte %lld differs", path, (long long)off + d);
	close(fd);
	free(got);
}

static void test_splice_taken(void **state)
{
	(void)state;
	struct mnt m;
	char *buf = page_buf(4 * MIB + 8192);

	/* splice=none: the buffer path; the pipes the daemon has anyway are the baseline. */
	assert_int_equal(h_group_up(&m, "splice", "-s 64M", "-s -o splice=none,max_write=1044480"), 0);
	const char *f = P(&m, "f");
	int fd = open(f, O_RDWR | O_CREAT, 0644);
	assert_true(fd >= 0);
	pat_fill(buf, 2 * MIB, 0, 2);
	pwrite_all(fd, buf, 2 * MIB, MIB);
	assert_ok(close(fd));
	check_range(f, MIB, 2 * MIB, 0, 2);
	int without = daemon_pipes(&m);
	assert_int_equal(h_umount(&m), 0);

	/* splice=write: libfuse's loop thread has its pipe (a pair of descriptors) more. */
	assert_int_equal(h_mount(&m, "-s " SPLICE_OPTS), 0);
	fd = open(f, O_RDWR);
	assert_true(fd >= 0);
	pat_fill(buf, 4 * MIB + 8192, 0, 1);
	/* Aligned and not, whole requests and split ones (max_write and an odd address split them). */
	pwrite_all(fd, buf, MIB, 0);
	pwrite_all(fd, buf + MIB + 17, MIB, MIB + 17);
	pwrite_all(fd, buf + 2 * MIB + 17, 2 * MIB - 17, 2 * MIB + 17);
	pwrite_all(fd, buf + MIB, 17, MIB);
	pwrite_all(fd, buf + 4 * MIB, 8192, 4 * MIB);
	assert_ok(close(fd));
	assert_int_equal(daemon_pipes(&m), without + 2);
	check_range(f, 0, 4 * MIB + 8192, 0, 1);
	assert_int_equal(h_umount(&m), 0);
	assert_int_equal(h_mount(&m, NULL), 0);
	check_range(f, 0, 4 * MIB + 8192, 0, 1);
	h_group_down(&m);
	free(buf);
}

/* A full device: the spliced write that does not fit is short, and the next request is intact. */
static void test_splice_enospc(void **state)
{
	(void)state;
	struct mnt m;
	char *buf = page_buf(MIB);
	off_t off = 0;
	ssize_t w;

	assert_int_equal(h_group_up(&m, "splice-enospc", "-s 16M", SPLICE_OPTS), 0);
	const char *f = P(&m, "big"), *g = P(&m, "small");
	write_str(g, "keep");
	int fd = open(f, O_RDWR | O_CREAT, 0644);
	assert_true(fd >= 0);
	pat_fill(buf, MIB, 0, 3);
	while ((w = pwrite(fd, buf, REQ_MAX, off)) == (ssize_t)REQ_MAX)
		off += REQ_MAX;
	/* Short (what fitted), then ENOSPC. */
	if (w > 0) {
		assert_true(w % 4096 == 0);
		off += w;
		w = pwrite(fd, buf, REQ_MAX, off);
	}
	assert_int_equal(w, -1);
	assert_int_equal(errno, ENOSPC);
	/* Each request after it is whole: a rest left in the pipe would have shifted them. */
	check_str(g, "keep");
	assert_ok(ftruncate(fd, 2 * MIB));
	pat_fill(buf, MIB, 0, 4);
	pwrite_all(fd, buf, REQ_MAX, MIB);
	assert_ok(close(fd));
	check_range(f, MIB, REQ_MAX, 0, 4);
	h_group_down(&m);
	free(buf);
}

/* ---- crashes at every persist point ---- */

/* The workload: (offset, length, seed) of each write, one FUSE request each (at most REQ_MAX). */
static const struct {
	off_t off;
	size_t len;
	unsigned seed;
} steps[] = {
	{ 512 << 10, REQ_MAX, 11 },		/* overwrite inside the file: data only */
	{ 3 * MIB + 1234, 1000000, 12 },	/* append from an unaligned EOF: allocation, size */
	{ 6 * MIB + 100, 300000, 13 },		/* past EOF: a hole, the old EOF block's tail */
	{ 1000, 5000, 14 },			/* small: libfuse reads it into memory */
};
#define NSTEPS (sizeof(steps) / sizeof(steps[0]))
#define BASE_LEN (3 * MIB + 1234)
#define MODEL_LEN (8 * MIB)

/* The file as the first k steps leave it: content in buf (zero beyond), size returned. */
static size_t model(char *buf, size_t k)
{
	size_t size = BASE_LEN;

	memset(buf, 0, MODEL_LEN);
	pat_fill(buf, BASE_LEN, 0, 10);
	for (size_t i = 0; i < k; i++) {
		pat_fill(buf + steps[i].off, steps[i].len, 0, steps[i].seed);
		if ((size_t)steps[i].off + steps[i].len > size)
			size = (size_t)steps[i].off + steps[i].len;
	}
	return size;
}

/* The client: the steps in order, *done counting those acknowledged; stops at the first error. */
static void run_steps(const char *path, volatile int *done)
{
	char *buf = page_buf(MIB);
	int fd = open(path, O_WRONLY);

	if (fd < 0)
		_exit(1);
	for (size_t i = 0; i < NSTEPS; i++) {
		pat_fill(buf, steps[i].len, 0, steps[i].seed);
		if (pwrite(fd, buf, steps[i].len, steps[i].off) != (ssize_t)steps[i].len)
			_exit(2);
		*done = (int)i + 1;
	}
	_exit(0);
}

/*
 * After a crash with k steps acknowledged: the file is model(k), or model(k + 1) with step k in
 * flight, byte by byte between the two, a size of either, and all of a new size's data there.
 */
static void check_crashed(const char *path, int k, const char *what, char *before, char *after, char *got)
{
	size_t sb = model(before, (size_t)k);
	size_t sa = (size_t)k < NSTEPS ? model(after, (size_t)k + 1) : model(after, (size_t)k);
	struct stat st;
	int fd = open(path, O_RDONLY);

	if (fd < 0 || fstat(fd, &st) < 0)
		fail_msg("%s: open %s: %s", what, path, strerror(errno));
	size_t size = (size_t)st.st_size;
	if (size != sb && size != sa)
		fail_msg("%s: size %zu, expected %zu or %zu", what, size, sb, sa);
	assert_true(size <= MODEL_LEN);
	assert_int_equal(pread(fd, got, size, 0), (ssize_t)size);
	close(fd);
	for (size_t i = 0; i < size; i++) {
		if (got[i] == before[i] || got[i] == after[i])
			continue;
		fail_msg("%s: byte %zu is %d, neither %d (before step %d) nor %d (after)", what, i, got[i],
			 before[i], k, after[i]);
	}
	if (size == sa && sa > sb && memcmp(got + sb, after + sb, sa - sb))
		fail_msg("%s: the size grew to %zu without all of its data", what, sa);
}

static void fsck_clean_after(const struct mnt *m, const char *what)
{
	char out[8192];
	int rc = h_run(out, sizeof(out), "%s -n %s 2>&1", h_fsck_bin(), m->image);

	if (rc != 0)
		fail_msg("%s: fsck -n exit %d\n%s", what, rc, out);
}

static void test_splice_crash_points(void **state)
{
	(void)state;
	static const char *const torn[] = { NULL, "all", "random:7" };
	char *before = malloc(MODEL_LEN), *after = malloc(MODEL_LEN), *got = malloc(MODEL_LEN);
	char base[300], cmd[700], what[128];
	volatile int *done = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	struct mnt m;
	int in_writes = 0;
	unsigned hit = 0;	/* bit k: a crash with step k in flight */

	assert_true(done != MAP_FAILED && before && after && got);
	/* The base image: the file of BASE_LEN bytes, written through the mount and unmounted. */
	h_init(&m, "splice-crash");
	assert_int_equal(h_mkfs(&m, "-s 32M"), 0);
	assert_int_equal(h_mount(&m, SPLICE_OPTS), 0);
	model(before, 0);
	const char *f = P(&m, "f");
	int fd = open(f, O_WRONLY | O_CREAT, 0644);
	assert_true(fd >= 0);
	char *buf = page_buf(BASE_LEN);
	memcpy(buf, before, BASE_LEN);
	pwrite_all(fd, buf, BASE_LEN, 0);
	free(buf);
	assert_ok(close(fd));
	assert_int_equal(h_umount(&m), 0);
	snprintf(base, sizeof(base), "%s.base", m.image);
	snprintf(cmd, sizeof(cmd), "cp %s %s", m.image, base);
	assert_int_equal(h_run(NULL, 0, "%s", cmd), 0);

	/*
	 * Crash the daemon at its N-th drain, for N = 1, 2, ...: the first ones fall in the mount,
	 * then come the writes' own; the sweep ends when the workload completes before the crash.
	 */
	for (int n = 1; n < 400; n++) {
		bool completed = false;

		for (size_t t = 0; t < sizeof(torn) / sizeof(torn[0]); t++) {
			assert_int_equal(h_run(NULL, 0, "cp %s %s", base, m.image), 0);
			char num[16];
			snprintf(num, sizeof(num), "%d", n);
			setenv("DAXFS_CRASH_AT", num, 1);
			if (torn[t])
				setenv("DAXFS_CRASH_TORN", torn[t], 1);
			int up = h_mount(&m, "-s " SPLICE_OPTS);
			unsetenv("DAXFS_CRASH_AT");
			unsetenv("DAXFS_CRASH_TORN");
			if (up != 0) {
				h_crash(&m);	/* died while mounting: not a point of the writes */
				continue;
			}
			*done = 0;
			pid_t c = fork();
			assert_true(c >= 0);
			if (c == 0)
				run_steps(f, done);
			int st;
			assert_int_equal(waitpid(c, &st, 0), c);
			siginfo_t si = { 0 };
			waitid(P_PID, (id_t)m.daemon, &si, WEXITED | WNOHANG | WNOWAIT);
			bool alive = si.si_pid == 0;	/* not exited (left for h_crash to reap) */
			if (alive && WIFEXITED(st) && WEXITSTATUS(st) == 0) {
				/* Past the workload's last point: the whole of it must be there, crash or not. */
				completed = true;
				h_crash(&m);
			} else {
				h_crash(&m);
				in_writes++;
				hit |= 1u << *done;
			}
			snprintf(what, sizeof(what), "crash at drain %d (%s), %d writes acknowledged", n,
				 torn[t] ? torn[t] : "stores kept", *done);
			fsck_clean_after(&m, what);
			assert_int_equal(h_mount(&m, NULL), 0);
			check_crashed(f, completed ? (int)NSTEPS : *done, what, before, after, got);
			assert_int_equal(h_umount(&m), 0);
			fsck_clean_after(&m, what);
		}
		if (completed)
			break;
	}
	/* Every step has persist points of its own, and the sweep must have hit them all. */
	if ((hit & ((1u << NSTEPS) - 1)) != (1u << NSTEPS) - 1)
		fail_msg("crashes with steps in flight: mask %#x of %zu steps", hit, NSTEPS);
	print_message("splice crash sweep: %d crashes inside the writes\n", in_writes);
	unlink(base);
	h_destroy(&m);
	munmap((void *)done, 4096);
	free(before);
	free(after);
	free(got);
}

static int run(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_splice_taken),
		cmocka_unit_test(test_splice_enospc),
		cmocka_unit_test(test_splice_crash_points),
	};
	return cmocka_run_group_tests_name("splice", tests, NULL, NULL);
}

int main(void)
{
	return h_main(run);
}
