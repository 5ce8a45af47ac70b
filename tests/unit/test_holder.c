/* SPDX-License-Identifier: MIT */
/*
 * holder.c: processes as holders of pins.  A thread identifies as its process, with a start time;
 * a child is alive until it exits (a zombie is not), its pidfd turns readable when it does, and
 * once it is reaped nothing reaches its pid any more; a pid whose start time differs (a reused pid)
 * is a stranger: not alive, no pidfd, no signal.  Signals carry their 64-bit value, to this process
 * and to a child; only notification signals may be asked for; CAP_LEASE is read per thread, as
 * root and after a child drops it.
 */
#include <limits.h>
#include <linux/capability.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "unit_common.h"
#include "holder.h"

#define CHILD_CHECK(cond, code)            \
	do {                               \
		if (!(cond))               \
			_exit(code);       \
	} while (0)

static pid_t tid_self(void)
{
	return (pid_t)syscall(SYS_gettid);
}

/* ---- identity ---- */

struct tid_box {
	pid_t tid;
	int go[2];	/* the thread waits here until the test is done with it */
	int ready[2];
};

static void *thread_main(void *arg)
{
	struct tid_box *b = arg;
	char c = 0;

	b->tid = tid_self();
	if (write(b->ready[1], &c, 1) != 1)
		return NULL;
	if (read(b->go[0], &c, 1) < 0)
		return NULL;
	return NULL;
}

static void test_identify_self_and_thread(void **state)
{
	struct holder_id me, again, th;
	struct tid_box b;
	pthread_t t;
	char c;

	(void)state;
	assert_int_equal(holder_identify(getpid(), &me), 0);
	assert_int_equal(me.pid, getpid());
	assert_true(me.start > 0);
	assert_int_equal(holder_identify(getpid(), &again), 0);
	assert_int_equal(again.pid, me.pid);
	assert_int_equal(again.start, me.start);
	assert_true(holder_alive(&me));

	/* Another thread of this process is this process. */
	assert_int_equal(pipe(b.go), 0);
	assert_int_equal(pipe(b.ready), 0);
	assert_int_equal(pthread_create(&t, NULL, thread_main, &b), 0);
	assert_int_equal(read(b.ready[0], &c, 1), 1);
	assert_true(b.tid != getpid());
	assert_int_equal(holder_identify(b.tid, &th), 0);
	assert_int_equal(th.pid, getpid());
	assert_int_equal(th.start, me.start);
	assert_int_equal(write(b.go[1], &c, 1), 1);
	pthread_join(t, NULL);
	for (int i = 0; i < 2; i++) {
		close(b.go[i]);
		close(b.ready[i]);
	}
}

static void test_nobody(void **state)
{
	struct holder_id h = { .pid = 12345, .start = 7 };
	const struct holder_id zero = { 0 }, negative = { .pid = -1, .start = 1 };

	(void)state;
	/* No process can have a pid above the largest pid_max. */
	assert_int_equal(holder_identify(INT_MAX, &h), -ESRCH);
	assert_false(holder_alive(&zero));
	assert_false(holder_alive(&negative));
	assert_int_equal(holder_pidfd(&zero), -ESRCH);
	assert_int_equal(holder_pidfd(&negative), -ESRCH);
	assert_int_equal(holder_signal(&zero, SIGUSR1, 1), -ESRCH);
	h = (struct holder_id){ .pid = INT_MAX, .start = 1 };
	assert_false(holder_alive(&h));
	assert_true(holder_pidfd(&h) < 0);
	assert_false(holder_has_cap_lease(INT_MAX));
}

/* ---- a child's life ---- */

static bool readable(int fd, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	return poll(&pfd, 1, timeout_ms) == 1 && (pfd.revents & POLLIN);
}

static void test_child_alive_exit_reaped(void **state)
{
	struct holder_id h, self;
	siginfo_t si;
	int release, status;

	(void)state;
	pid_t pid = unit_waiting_child(&release, 7);
	assert_int_equal(holder_identify(pid, &h), 0);
	assert_int_equal(h.pid, pid);
	assert_int_equal(holder_identify(getpid(), &self), 0);
	assert_true(h.start >= self.start);	/* started after us */
	assert_true(holder_alive(&h));
	int pfd = holder_pidfd(&h);
	assert_true(pfd >= 0);
	assert_false(readable(pfd, 0));

	/* It exits: a zombie until reaped, and a zombie is not alive. */
	close(release);
	memset(&si, 0, sizeof(si));
	assert_int_equal(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT), 0);
	assert_int_equal(si.si_pid, pid);
	assert_true(readable(pfd, 0));	/* the pidfd says so at once */
	assert_false(holder_alive(&h));
	/*
	 * A pidfd asked for now names the zombie (holder.h): not -ESRCH, which waits for the reaping,
	 * but a pidfd readable at once, so a watcher still learns of the exit without delay.
	 */
	int zfd = holder_pidfd(&h);
	assert_true(zfd >= 0);
	assert_true(readable(zfd, 0));
	close(zfd);

	/* Reaped: gone for good. */
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 7);
	assert_false(holder_alive(&h));
	assert_int_equal(holder_pidfd(&h), -ESRCH);
	assert_int_equal(holder_signal(&h, SIGUSR1, 1), -ESRCH);
	assert_true(readable(pfd, 0));
	close(pfd);
}

/*
 * A reused pid: the pid names a live process, but not the one recorded (its start time differs).
 * Arranging a real reuse means cycling through pid_max; a different start time on a live pid is
 * exactly what holder.c has to tell apart, so this process plays the stranger.
 */
static void test_pid_reused(void **state)
{
	struct holder_id me, stranger;
	sigset_t block, old, pending;

	(void)state;
	assert_int_equal(holder_identify(getpid(), &me), 0);
	for (int delta = -1; delta <= 1; delta += 2) {
		stranger = me;
		stranger.start = me.start + (uint64_t)(int64_t)delta;
		assert_false(holder_alive(&stranger));
		assert_int_equal(holder_pidfd(&stranger), -ESRCH);
		/* No signal reaches the stranger. */
		sigemptyset(&block);
		sigaddset(&block, SIGUSR2);
		assert_int_equal(sigprocmask(SIG_BLOCK, &block, &old), 0);
		assert_int_equal(holder_signal(&stranger, SIGUSR2, 5), -ESRCH);
		assert_int_equal(sigpending(&pending), 0);
		assert_false(sigismember(&pending, SIGUSR2));
		assert_int_equal(sigprocmask(SIG_SETMASK, &old, NULL), 0);
	}
}

/* ---- signals ---- */

static void test_signal_self_queued_value(void **state)
{
	struct holder_id me;
	sigset_t block, old;
	siginfo_t si;
	const struct timespec five = { 5, 0 };
	const int sig = SIGRTMIN + 1;
	const uint64_t values[3] = { 0x1122334455667788ull, 0, UINT64_MAX };

	(void)state;
	assert_int_equal(holder_identify(getpid(), &me), 0);
	sigemptyset(&block);
	sigaddset(&block, sig);
	assert_int_equal(sigprocmask(SIG_BLOCK, &block, &old), 0);
	/* Real-time signals queue: three values, delivered in order. */
	for (int i = 0; i < 3; i++)
		assert_int_equal(holder_signal(&me, sig, values[i]), 0);
	for (int i = 0; i < 3; i++) {
		memset(&si, 0, sizeof(si));
		assert_int_equal(sigtimedwait(&block, &si, &five), sig);
		assert_int_equal(si.si_code, SI_QUEUE);
		assert_int_equal(si.si_pid, getpid());
		assert_int_equal(si.si_uid, getuid());
		assert_int_equal((uint64_t)(uintptr_t)si.si_value.sival_ptr, values[i]);
	}
	assert_int_equal(sigprocmask(SIG_SETMASK, &old, NULL), 0);
}

static void test_signal_child(void **state)
{
	struct holder_id h;
	int ready[2], status;
	char c;
	const uint64_t value = 0xfeedfacecafebeefull;

	(void)state;
	assert_int_equal(pipe(ready), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		sigset_t set;
		siginfo_t si;
		const struct timespec ten = { 10, 0 };

		close(ready[0]);
		sigemptyset(&set);
		sigaddset(&set, SIGUSR1);
		CHILD_CHECK(sigprocmask(SIG_BLOCK, &set, NULL) == 0, 2);
		CHILD_CHECK(write(ready[1], "r", 1) == 1, 3);
		CHILD_CHECK(sigtimedwait(&set, &si, &ten) == SIGUSR1, 4);
		CHILD_CHECK(si.si_code == SI_QUEUE, 5);
		CHILD_CHECK((uint64_t)(uintptr_t)si.si_value.sival_ptr == value, 6);
		CHILD_CHECK(si.si_pid == getppid(), 7);
		_exit(0);
	}
	close(ready[1]);
	assert_int_equal(read(ready[0], &c, 1), 1);	/* the signal is blocked there now */
	close(ready[0]);
	assert_int_equal(holder_identify(pid, &h), 0);
	assert_int_equal(holder_signal(&h, SIGUSR1, value), 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("the child did not get the signal and its value (status %#x)", status);
}

static void test_signal_allowed(void **state)
{
	const int allowed[] = { SIGUSR1, SIGUSR2, SIGIO, SIGPOLL, SIGURG, SIGRTMIN, SIGRTMIN + 1, SIGRTMAX - 1,
				SIGRTMAX };
	const int refused[] = { 0, -1, SIGHUP, SIGINT, SIGQUIT, SIGILL, SIGTRAP, SIGABRT, SIGBUS, SIGFPE, SIGKILL,
				SIGSEGV, SIGPIPE, SIGALRM, SIGTERM, SIGCHLD, SIGCONT, SIGSTOP, SIGTSTP, SIGTTIN,
				SIGTTOU, SIGXCPU, SIGXFSZ, SIGVTALRM, SIGPROF, SIGWINCH, SIGSYS, SIGRTMAX + 1, 1000 };

	(void)state;
	for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
		if (!holder_signal_allowed(allowed[i]))
			fail_msg("signal %d refused", allowed[i]);
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
		if (holder_signal_allowed(refused[i]))
			fail_msg("signal %d allowed", refused[i]);
}

/* ---- CAP_LEASE ---- */

#ifndef CAP_LEASE
#define CAP_LEASE 28
#endif

/* Set the calling thread's effective capabilities to its permitted ones, minus `drop` (a mask). */
static int set_effective(uint64_t drop)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct data[2];

	if (syscall(SYS_capget, &hdr, data))
		return -1;
	uint64_t perm = data[0].permitted | (uint64_t)data[1].permitted << 32, eff = perm & ~drop;
	data[0].effective = (uint32_t)eff;
	data[1].effective = (uint32_t)(eff >> 32);
	return (int)syscall(SYS_capset, &hdr, data);
}

/* Does the process have CAP_LEASE in its effective set, according to /proc (read directly)? */
static bool self_has_lease(void)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct data[2];

	return syscall(SYS_capget, &hdr, data) == 0 && (data[0].effective >> CAP_LEASE) & 1;
}

struct cap_thread {
	int cmd[2];	/* parent -> thread: struct cap_cmd */
	int ack[2];	/* thread -> parent: its tid, then one byte per command */
};

struct cap_cmd {
	uint64_t drop;
	bool quit;
};

static void *cap_thread_main(void *arg)
{
	struct cap_thread *c = arg;
	pid_t tid = tid_self();
	struct cap_cmd cmd;

	if (write(c->ack[1], &tid, sizeof(tid)) != sizeof(tid))
		return NULL;
	while (read(c->cmd[0], &cmd, sizeof(cmd)) == sizeof(cmd) && !cmd.quit) {
		char ok = set_effective(cmd.drop) == 0 ? 'y' : 'n';

		if (write(c->ack[1], &ok, 1) != 1)
			break;
	}
	return NULL;
}

/*
 * As root: the test process has CAP_LEASE.  A child runs a thread that drops it from its own
 * effective set, then everything, then takes it back: holder_has_cap_lease follows that thread,
 * while the child's main thread keeps it.
 */
static void test_cap_lease(void **state)
{
	struct cap_thread c;
	int sync[2], status;
	pid_t tid;
	char ok;

	(void)state;
	if (geteuid() != 0 || !self_has_lease()) {
		print_message("not root with CAP_LEASE: skipped\n");
		skip();
	}
	assert_true(holder_has_cap_lease(getpid()));
	assert_true(holder_has_cap_lease(tid_self()));
	assert_int_equal(pipe(c.cmd), 0);
	assert_int_equal(pipe(c.ack), 0);
	assert_int_equal(pipe(sync), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		pthread_t t;
		char b;

		close(sync[1]);
		CHILD_CHECK(pthread_create(&t, NULL, cap_thread_main, &c) == 0, 2);
		CHILD_CHECK(read(sync[0], &b, 1) >= 0, 3);	/* until the parent is done (EOF) */
		struct cap_cmd quit = { .quit = true };
		CHILD_CHECK(write(c.cmd[1], &quit, sizeof(quit)) == sizeof(quit), 4);
		pthread_join(t, NULL);
		_exit(0);
	}
	close(sync[0]);
	assert_int_equal(read(c.ack[0], &tid, sizeof(tid)), sizeof(tid));
	assert_true(holder_has_cap_lease(pid));
	assert_true(holder_has_cap_lease(tid));
	const struct {
		uint64_t drop;
		bool lease;
	} steps[] = {
		{ 1ull << CAP_LEASE, false },	/* CAP_LEASE alone */
		{ 0, true },			/* back */
		{ ~0ull, false },		/* everything */
		{ ~(1ull << CAP_LEASE), true },	/* everything but CAP_LEASE */
	};
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		struct cap_cmd cmd = { .drop = steps[i].drop };

		assert_int_equal(write(c.cmd[1], &cmd, sizeof(cmd)), sizeof(cmd));
		assert_int_equal(read(c.ack[0], &ok, 1), 1);
		assert_int_equal(ok, 'y');
		if (holder_has_cap_lease(tid) != steps[i].lease)
			fail_msg("step %zu: the thread's CAP_LEASE should read %d", i, steps[i].lease);
		assert_true(holder_has_cap_lease(pid));	/* the child's main thread never changed */
	}
	close(sync[1]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	for (int i = 0; i < 2; i++) {
		close(c.cmd[i]);
		close(c.ack[i]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_identify_self_and_thread),
		cmocka_unit_test(test_nobody),
		cmocka_unit_test(test_child_alive_exit_reaped),
		cmocka_unit_test(test_pid_reused),
		cmocka_unit_test(test_signal_self_queued_value),
		cmocka_unit_test(test_signal_child),
		cmocka_unit_test(test_signal_allowed),
		cmocka_unit_test(test_cap_lease),
	};

	if (getenv("UNIT_FILTER"))
		cmocka_set_test_filter(getenv("UNIT_FILTER"));
	return cmocka_run_group_tests_name("holder", tests, NULL, NULL);
}
