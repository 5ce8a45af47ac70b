/* SPDX-License-Identifier: MIT */
/*
 * The transports (-o transport=, daxfs/fuse_uring.h): requests made on a CPU are served through
 * that CPU's io_uring queue, not /dev/fuse (the daemon's own counters, DAXFS_IOC_TRANSPORT, say
 * so); transport=dev says it is /dev/fuse; parked requests (truncates waiting for a pin under the
 * wait policy) do not strand the requests queued behind them on their CPU; a daemon killed with
 * requests parked on its rings lets go of them and of the mount.
 *
 * The io_uring tests skip when the kernel has FUSE over io_uring off
 * (/sys/module/fuse/parameters/enable_uring; scripts/test.sh turns it on for its io_uring pass).
 * Nothing is timed: conditions are polled with deadlines, and a guard kills the daemon of a test
 * that hangs.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysinfo.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pins_util.h"

#define W DAXFS_PIN_WRITE

static bool uring_on(void)
{
	FILE *f = fopen("/sys/module/fuse/parameters/enable_uring", "r");
	int c = f ? fgetc(f) : EOF;

	if (f)
		fclose(f);
	return c == 'Y';
}

#define SKIP_WITHOUT_URING()                                                                      \
	do {                                                                                      \
		if (!uring_on()) {                                                                \
			print_message("FUSE over io_uring is off in this kernel: skipped\n");     \
			skip();                                                                   \
		}                                                                                 \
	} while (0)

static struct daxfs_ioc_transport *transport(int fd)
{
	struct daxfs_ioc_transport *t = calloc(1, sizeof(*t));

	assert_non_null(t);
	t->size = sizeof(*t);
	assert_ok(ioctl(fd, DAXFS_IOC_TRANSPORT, t));
	return t;
}

static uint64_t queue_requests(int fd, unsigned cpu)
{
	struct daxfs_ioc_transport *t = transport(fd);
	uint64_t n = cpu < t->nqueues ? t->queues[cpu].requests : 0;

	free(t);
	return n;
}

static void pin_self(unsigned cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	assert_ok(sched_setaffinity(0, sizeof(set), &set));
}

static void unpin_self(void)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	for (int i = 0; i < get_nprocs_conf() && i < CPU_SETSIZE; i++)
		CPU_SET(i, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

/* Requests made on each CPU arrive on that CPU's queue, and none of them through /dev/fuse. */
static void test_uring_serves_each_cpu(void **state)
{
	struct mnt m;

	(void)state;
	SKIP_WITHOUT_URING();
	pu_setup(&m, "uring", "32M", "transport=uring");
	int dfd = pu_dirfd(&m);
	pu_write_file(P(&m, "f"), 4096, 1);
	struct daxfs_ioc_transport *t = transport(dfd);
	assert_int_equal(t->transport, DAXFS_TRANSPORT_URING);
	assert_int_equal(t->requested, DAXFS_TRANSPORT_URING);
	assert_true(t->nqueues >= (unsigned)get_nprocs());
	uint64_t dev0 = t->dev_requests;
	free(t);

	for (int cpu = 0; cpu < get_nprocs(); cpu++) {
		pin_self((unsigned)cpu);
		uint64_t before = queue_requests(dfd, (unsigned)cpu);
		struct stat st;

		/* attr_timeout=0: each stat is a GETATTR. */
		for (int i = 0; i < 200; i++)
			assert_ok(stat(P(&m, "f"), &st));
		uint64_t after = queue_requests(dfd, (unsigned)cpu);
		if (after - before < 200)
			fail_msg("cpu %d: 200 stats made there, %llu requests served by its queue", cpu,
				 (unsigned long long)(after - before));
	}
	unpin_self();
	t = transport(dfd);
	/* FORGETs and INTERRUPTs still come through /dev/fuse: a few, never the 200 per CPU. */
	if (t->dev_requests - dev0 > 20)
		fail_msg("%llu requests came through /dev/fuse", (unsigned long long)(t->dev_requests - dev0));
	free(t);
	close(dfd);
	pu_finish(&m);
}

/* transport=dev: /dev/fuse, no queues, and the counter of /dev/fuse requests moves. */
static void test_dev_says_dev(void **state)
{
	struct mnt m;
	struct stat st;

	(void)state;
	pu_setup(&m, "dev", "32M", "transport=dev");
	int dfd = pu_dirfd(&m);
	struct daxfs_ioc_transport *t = transport(dfd);
	assert_int_equal(t->transport, DAXFS_TRANSPORT_DEV);
	assert_int_equal(t->requested, DAXFS_TRANSPORT_DEV);
	assert_int_equal(t->nqueues, 0);
	uint64_t dev0 = t->dev_requests;
	free(t);
	for (int i = 0; i < 50; i++)
		assert_ok(stat(m.dir, &st));
	t = transport(dfd);
	assert_true(t->dev_requests >= dev0 + 50);
	free(t);
	close(dfd);
	pu_finish(&m);
}

/* ---- parked requests on one CPU's queue ---- */

#define NPARKED 64	/* far more than the entries a queue keeps free (4) */

struct parked {
	struct mnt m;
	int dfd;
	int fd[NPARKED];
	uint64_t id[NPARKED];
	pid_t child;		/* the truncates, every thread on CPU 0 */
};

static pthread_barrier_t start;

/* All at once, so that the kernel queues most of them behind the queue's few free entries. */
static void *trunc_one(void *arg)
{
	pthread_barrier_wait(&start);
	return (void *)(intptr_t)(truncate((const char *)arg, 0) ? errno : 0);
}

/* NPARKED pinned files, a truncate of each from CPU 0, all of them waiting in the daemon. */
static void park_truncates(struct parked *x, const char *name)
{
	static char path[NPARKED][256];

	pu_setup(&x->m, name, "64M", "transport=uring,policy=wait");
	x->dfd = pu_dirfd(&x->m);
	for (int i = 0; i < NPARKED; i++) {
		snprintf(path[i], sizeof(path[i]), "%s", P(&x->m, "f%d", i));
		pu_write_file(path[i], 8 * KiB, 1);
		x->fd[i] = open(path[i], O_RDWR);
		assert_true(x->fd[i] >= 0);
		struct daxfs_pin p = pu_pin(x->fd[i], 0, BS, W);
		x->id[i] = p.id;
		daxfs_pin_free(&p);
	}
	x->child = pu_fork();
	if (x->child == 0) {
		pthread_t t[NPARKED];
		int bad = 0;

		pin_self(0);
		pthread_barrier_init(&start, NULL, NPARKED);
		for (int i = 0; i < NPARKED; i++)
			if (pthread_create(&t[i], NULL, trunc_one, path[i]))
				_exit(100);
		for (int i = 0; i < NPARKED; i++) {
			void *r;

			pthread_join(t[i], &r);
			bad += r != NULL;
		}
		_exit(bad);
	}
	if (!PU_POLL(pu_stats(x->dfd).waiting >= NPARKED, 10000))
		fail_msg("only %llu of %d truncates ever waited in the daemon",
			 (unsigned long long)pu_stats(x->dfd).waiting, NPARKED);
}

/*
 * With NPARKED truncates parked on CPU 0's queue, requests made on CPU 0 are still served, and
 * the queue kicked itself (the kernel queued requests behind the parked ones' entries) with a
 * node every time.
 */
static void test_parked_do_not_strand(void **state)
{
	struct parked x;
	struct statvfs sv;
	char b[16];
	int st;

	(void)state;
	SKIP_WITHOUT_URING();
	park_truncates(&x, "parked");
	pu_guard(&x.m, "requests on CPU 0 behind 64 parked truncates", 30);
	pin_self(0);
	for (int i = 0; i < 100; i++) {
		assert_ok(statvfs(x.m.dir, &sv));
		assert_int_equal(pread(x.fd[i % NPARKED], b, sizeof(b), 0), (ssize_t)sizeof(b));
	}
	unpin_self();
	struct daxfs_ioc_transport *t = transport(x.dfd);
	assert_true(t->queues[0].kicks > 0);
	assert_int_equal(t->queues[0].kick_failures, 0);
	free(t);
	for (int i = 0; i < NPARKED; i++)
		assert_int_equal(daxfs_unpin(x.fd[i], x.id[i]), 0);
	if (!PU_POLL(waitpid(x.child, &st, WNOHANG) == x.child, 20000))
		fail_msg("truncates still waiting 20 s after every pin was dropped (%llu waiting)",
			 (unsigned long long)pu_stats(x.dfd).waiting);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	for (int i = 0; i < NPARKED; i++) {
		struct stat sb;

		assert_ok(fstat(x.fd[i], &sb));
		assert_int_equal(sb.st_size, 0);
		close(x.fd[i]);
	}
	pu_guard(&x.m, "the rest", PU_TEST_TIMEOUT);
	close(x.dfd);
	pu_finish(&x.m);
}

/* kill -9 with truncates parked on the rings: they fail, and the mount lets go. */
static void test_kill9_with_parked(void **state)
{
	struct parked x;
	int st;

	(void)state;
	SKIP_WITHOUT_URING();
	park_truncates(&x, "parkkill");
	pu_guard(NULL, NULL, 0);
	kill(x.m.daemon, SIGKILL);
	if (!PU_POLL(waitpid(x.child, &st, WNOHANG) == x.child, 20000))
		fail_msg("truncates still stuck 20 s after the daemon was killed");
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), NPARKED);	/* every one failed (ENOTCONN) */
	struct statvfs sv;
	assert_int_equal(statvfs(x.m.dir, &sv), -1);
	assert_int_equal(errno, ENOTCONN);
	for (int i = 0; i < NPARKED; i++)
		close(x.fd[i]);
	close(x.dfd);
	h_crash(&x.m);	/* reap the daemon, detach the dead mount */
	h_destroy(&x.m);
}

static int run(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_uring_serves_each_cpu),
		cmocka_unit_test(test_dev_says_dev),
		cmocka_unit_test(test_parked_do_not_strand),
		cmocka_unit_test(test_kill9_with_parked),
	};

	return cmocka_run_group_tests_name("transport", tests, NULL, NULL);
}

int main(void)
{
	return h_main(run);
}
