/* SPDX-License-Identifier: MIT */
/*
 * Crashes and full devices through a real mount:
 *   - kill -9 of the daemon in the middle of a metadata-heavy workload, round after round: after
 *     each, fsck -n is clean (the journal replays in its private copy; orphans are not errors),
 *     the remount recovers, every file fsync'ed before the kill is intact, and after unmount fsck
 *     finds nothing leaked;
 *   - several processes writing until the device is full: ENOSPC, never a corrupt image.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <linux/falloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define WORKERS 3
#define ROUNDS 8
#define FIRST_ACK_S 60	/* a round's first fsync'ed file: only a hang takes this long */

static void pattern(char *buf, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (char)(seed * 131 + i * 7);
}

static size_t size_of(unsigned seed)
{
	return 1 + (seed * 2654435761u) % 70000;
}

static void fsck_clean(struct mnt *m, const char *when)
{
	char out[8192];
	int rc = h_run(out, sizeof(out), "%s -n %s 2>&1", h_fsck_bin(), m->image);

	if (rc != 0)
		fail_msg("fsck -n %s: exit %d\n%s", when, rc, out);
}

/*
 * A worker: files w<id>-<n> written, fsync'ed (file and directory) and then reported; between them
 * churn that needs no checking: temporary files renamed and removed, directories made and
 * removed, xattrs set, files truncated and punched.
 */
static void worker(const struct mnt *m, int id, int round, int report)
{
	static char buf[70000];
	char dir[512], path[600], tmp[600];

	snprintf(dir, sizeof(dir), "%s/w%d", m->dir, id);
	mkdir(dir, 0755);
	for (unsigned n = 0;; n++) {
		unsigned seed = (unsigned)(round * 100000 + id * 10000) + n;
		size_t len = size_of(seed);

		snprintf(tmp, sizeof(tmp), "%s/tmp-%u", dir, seed);
		snprintf(path, sizeof(path), "%s/f-%u", dir, seed);
		int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd < 0)
			_exit(0);
		pattern(buf, len, seed);
		if (write(fd, buf, len) != (ssize_t)len || fsync(fd) < 0)
			_exit(0);
		close(fd);
		if (rename(tmp, path) < 0)
			_exit(0);
		int dfd = open(dir, O_RDONLY | O_DIRECTORY);
		if (dfd < 0 || fsync(dfd) < 0)
			_exit(0);
		close(dfd);
		if (write(report, &seed, sizeof(seed)) != sizeof(seed))
			_exit(0);
		/* Churn. */
		snprintf(tmp, sizeof(tmp), "%s/churn-%u", dir, n % 7);
		fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC, 0644);
		if (fd >= 0) {
			if (write(fd, buf, 30000) < 0 || fsetxattr(fd, "user.n", &n, sizeof(n), 0) < 0 ||
			    ftruncate(fd, 10000 + n % 5000) < 0 ||
			    fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 4096, 4096) < 0)
				_exit(0);
			close(fd);
		}
		snprintf(tmp, sizeof(tmp), "%s/d-%u", dir, n % 5);
		if (mkdir(tmp, 0700) == 0)
			rmdir(tmp);
		if (n % 3 == 0) {
			snprintf(tmp, sizeof(tmp), "%s/churn-%u", dir, (n + 3) % 7);
			unlink(tmp);
		}
	}
}

static void check_file(const char *dir, unsigned seed)
{
	static char want[70000], got[70001];
	char path[600];
	size_t len = size_of(seed);

	snprintf(path, sizeof(path), "%s/f-%u", dir, seed);
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		fail_msg("fsync'ed file %s lost: %s", path, strerror(errno));
	pattern(want, len, seed);
	ssize_t n = read(fd, got, sizeof(got));
	close(fd);
	if (n != (ssize_t)len || memcmp(want, got, len))
		fail_msg("fsync'ed file %s: %zd bytes read, %zu written, or different data", path, n, len);
}

/* One acknowledged seed from the workers' pipe, waiting up to secs; false if none came. */
static bool read_ack(int fd, unsigned *seed, int secs)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int r;

	while ((r = poll(&p, 1, secs * 1000)) < 0 && errno == EINTR)
		;
	return r > 0 && read(fd, seed, sizeof(*seed)) == (ssize_t)sizeof(*seed);
}

static void test_kill9_rounds(void **state)
{
	struct mnt m;
	unsigned *acked = calloc(1 << 20, sizeof(*acked));
	int nacked = 0;
	struct timespec ts;

	(void)state;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	srand((unsigned)ts.tv_nsec);
	h_init(&m, "kill9");
	assert_int_equal(h_mkfs(&m, "-s 256M"), 0);
	for (int round = 0; round < ROUNDS; round++) {
		int fds[2];
		pid_t w[WORKERS];

		assert_int_equal(h_mount(&m, NULL), 0);
		assert_ok(pipe(fds));
		for (int i = 0; i < WORKERS; i++) {
			w[i] = fork();
			if (w[i] == 0) {
				close(fds[0]);
				worker(&m, i, round, fds[1]);
			}
		}
		close(fds[1]);
		/*
		 * Let them run until a first file is acknowledged (however long a loaded machine takes), then
		 * a random while more, then take the daemon away under them.
		 */
		unsigned seed;
		if (!read_ack(fds[0], &seed, FIRST_ACK_S))
			fail_msg("round %d: no file written and fsync'ed within %d s", round, FIRST_ACK_S);
		acked[nacked++] = seed;
		usleep(50000 + (unsigned)(rand() % 250000));
		/*
		 * The dead mount stays attached until the workers are gone: each fails on its next call.
		 * Detached at once, a worker that had not yet made its directory would make it in the
		 * directory under the mount and write and acknowledge files there, for ever.
		 */
		h_kill(&m);
		while (read(fds[0], &seed, sizeof(seed)) == sizeof(seed))
			acked[nacked++] = seed;
		close(fds[0]);
		for (int i = 0; i < WORKERS; i++)
			waitpid(w[i], NULL, 0);
		h_crash(&m);

		fsck_clean(&m, "after the kill");
		assert_int_equal(h_mount(&m, NULL), 0);
		for (int k = 0; k < nacked; k++) {
			char dir[512];

			snprintf(dir, sizeof(dir), "%s/w%u", m.dir, (acked[k] / 10000) % 10);
			check_file(dir, acked[k]);
		}
		assert_int_equal(h_umount(&m), 0);
		fsck_clean(&m, "after recovery and unmount");
	}
	print_message("%d rounds, %d fsync'ed files checked after each\n", ROUNDS, nacked);
	assert_true(nacked >= ROUNDS);	/* at least one per round, see above */
	h_destroy(&m);
	free(acked);
}

/* Several writers fill a small device: they all end on ENOSPC, and the image stays sound. */
static void test_concurrent_enospc(void **state)
{
	struct mnt m;
	pid_t w[4];

	(void)state;
	h_init(&m, "enospc");
	assert_int_equal(h_mkfs(&m, "-s 32M"), 0);
	assert_int_equal(h_mount(&m, NULL), 0);
	for (int i = 0; i < 4; i++) {
		w[i] = fork();
		if (w[i] == 0) {
			static char buf[256 << 10];
			char path[512];

			memset(buf, 'a' + i, sizeof(buf));
			for (int n = 0;; n++) {
				snprintf(path, sizeof(path), "%s/w%d-%d", m.dir, i, n);
				int fd = open(path, O_WRONLY | O_CREAT, 0644);
				if (fd < 0)
					_exit(errno == ENOSPC ? 0 : 10);
				for (int k = 0; k < 8; k++) {
					ssize_t r = write(fd, buf, sizeof(buf));
					if (r < 0) {
						close(fd);
						_exit(errno == ENOSPC ? 0 : 11);
					}
				}
				close(fd);
			}
		}
	}
	for (int i = 0; i < 4; i++) {
		int st;

		assert_int_equal(waitpid(w[i], &st, 0), w[i]);
		assert_true(WIFEXITED(st));
		assert_int_equal(WEXITSTATUS(st), 0);	/* each stopped on ENOSPC, not another error */
	}
	struct statvfs sv;
	assert_ok(statvfs(m.dir, &sv));
	assert_true(sv.f_bavail < 64);
	/* Still usable when full: metadata operations and reads work, deleting frees space. */
	DIR *d = opendir(m.dir);
	struct dirent *de;
	int files = 0;
	while ((de = readdir(d))) {
		if (de->d_name[0] != 'w')
			continue;
		char path[600];
		snprintf(path, sizeof(path), "%s/%s", m.dir, de->d_name);
		struct stat st;
		assert_ok(stat(path, &st));
		files++;
		if (files % 2)
			assert_ok(unlink(path));
	}
	closedir(d);
	assert_true(files > 4);
	assert_int_equal(h_umount(&m), 0);
	fsck_clean(&m, "after filling the device");
	assert_int_equal(h_mount(&m, NULL), 0);
	struct statvfs sv2;
	assert_ok(statvfs(m.dir, &sv2));
	assert_true(sv2.f_bavail > sv.f_bavail + 512);
	assert_int_equal(h_umount(&m), 0);
	h_destroy(&m);
}

static int run(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kill9_rounds),
		cmocka_unit_test(test_concurrent_enospc),
	};
	return cmocka_run_group_tests_name("crash-fuse", tests, NULL, NULL);
}

int main(void)
{
	return h_main(run);
}
