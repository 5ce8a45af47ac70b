/* SPDX-License-Identifier: MIT */
/* Mount, persistence across remount, and recovery after the daemon is killed mid-workload. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

static void write_file(const char *path, const void *buf, size_t len, bool sync)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, len), (ssize_t)len);
	if (sync)
		assert_ok(fsync(fd));
	assert_ok(close(fd));
}

static void check_file(const char *path, const void *buf, size_t len)
{
	char *got = malloc(len + 1);
	int fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(read(fd, got, len + 1), (ssize_t)len);
	assert_memory_equal(got, buf, len);
	close(fd);
	free(got);
}

static void test_mount_umount(void **state)
{
	struct mnt m;

	(void)state;
	h_init(&m, "basic");
	assert_int_equal(h_mkfs(&m, "-s 64M"), 0);
	assert_int_equal(h_mount(&m, NULL), 0);
	write_file(P(&m, "hello"), "world\n", 6, false);
	check_file(P(&m, "hello"), "world\n", 6);
	assert_int_equal(h_umount(&m), 0);
	h_destroy(&m);
}

static void test_persist_remount(void **state)
{
	struct mnt m;
	char buf[100000];

	(void)state;
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (char)(i * 7 + 3);
	h_init(&m, "persist");
	assert_int_equal(h_mkfs(&m, "-s 64M"), 0);
	assert_int_equal(h_mount(&m, NULL), 0);
	assert_ok(mkdir(P(&m, "dir"), 0750));
	write_file(P(&m, "dir/data"), buf, sizeof(buf), false);
	assert_ok(symlink("dir/data", P(&m, "link")));
	assert_int_equal(h_umount(&m), 0);

	assert_int_equal(h_mount(&m, NULL), 0);
	check_file(P(&m, "dir/data"), buf, sizeof(buf));
	check_file(P(&m, "link"), buf, sizeof(buf));
	struct stat st;
	assert_ok(stat(P(&m, "dir"), &st));
	assert_int_equal(st.st_mode & 07777, 0750);
	assert_int_equal(h_umount(&m), 0);
	h_destroy(&m);
}

/*
 * kill -9 in the middle of a metadata-heavy workload: every file fsync'ed before the kill must
 * come back intact after remount.
 */
static void test_kill9_fsynced_files_survive(void **state)
{
	struct mnt m;
	int pipefd[2];

	(void)state;
	h_init(&m, "kill9");
	assert_int_equal(h_mkfs(&m, "-s 128M"), 0);
	assert_int_equal(h_mount(&m, NULL), 0);
	assert_ok(pipe(pipefd));
	pid_t w = fork();
	if (w == 0) {
		/* Writer: create, fill, fsync, report; also churn through renames and unlinks. */
		close(pipefd[0]);
		char buf[20000];
		for (int i = 0;; i++) {
			char path[512], tmp[512];

			for (size_t j = 0; j < sizeof(buf); j++)
				buf[j] = (char)(i + j);
			snprintf(tmp, sizeof(tmp), "%s/tmp-%d", m.dir, i);
			snprintf(path, sizeof(path), "%s/f-%d", m.dir, i);
			int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
			if (fd < 0 || write(fd, buf, (size_t)(1000 + i % 19000)) < 0 || fsync(fd) < 0)
				_exit(0);
			close(fd);
			if (rename(tmp, path) < 0)
				_exit(0);
			if (i % 3 == 0) {
				snprintf(tmp, sizeof(tmp), "%s/f-%d", m.dir, i - 3);
				unlink(tmp);
			}
			int dfd = open(m.dir, O_RDONLY | O_DIRECTORY);
			if (dfd < 0 || fsync(dfd) < 0)
				_exit(0);
			close(dfd);
			if (write(pipefd[1], &i, sizeof(i)) != sizeof(i))
				_exit(0);
		}
	}
	close(pipefd[1]);
	int last = -1, n;
	/* Let it run a while, then kill the daemon under it. */
	for (int k = 0; k < 300 && read(pipefd[0], &n, sizeof(n)) == sizeof(n); k++)
		last = n;
	/* The dead mount stays attached until the writer is gone (see h_kill): its next call fails. */
	h_kill(&m);
	while (read(pipefd[0], &n, sizeof(n)) == sizeof(n))
		last = n;
	close(pipefd[0]);
	waitpid(w, NULL, 0);
	h_crash(&m);
	assert_true(last > 10);

	assert_int_equal(h_mount(&m, NULL), 0);
	/*
	 * Iteration i reported means f-i was written, fsync'ed and renamed into place, and (when i % 3
	 * == 0) f-(i-3) was unlinked.  The unlink of iteration last + 1 may or may not have happened.
	 */
	char buf[20000];
	for (int i = 0; i <= last; i++) {
		char path[512];
		struct stat st;
		bool gone = i % 3 == 0 && i + 3 <= last, maybe = i % 3 == 0 && i + 3 == last + 1;

		snprintf(path, sizeof(path), "%s/f-%d", m.dir, i);
		if (gone) {
			assert_errno(stat(path, &st), ENOENT);
			continue;
		}
		if (maybe && stat(path, &st) < 0)
			continue;
		for (size_t j = 0; j < sizeof(buf); j++)
			buf[j] = (char)(i + j);
		check_file(path, buf, (size_t)(1000 + i % 19000));
	}
	assert_int_equal(h_umount(&m), 0);
	h_destroy(&m);
}

static int run(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mount_umount),
		cmocka_unit_test(test_persist_remount),
		cmocka_unit_test(test_kill9_fsynced_files_survive),
	};
	return cmocka_run_group_tests_name("basic", tests, NULL, NULL);
}

int main(void)
{
	return h_main(run);
}
