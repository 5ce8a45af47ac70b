/* SPDX-License-Identifier: MIT */
/*
 * The event trace: started at mount (-o trace=FILE) or at run time (DAXFS_IOC_TRACE), one JSON
 * object per line, every pin ending in an unpin that says whether it was revoked, and the busy
 * bytes recomputed from busy_add and reclaim records equal to the daemon's own count.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pins_fx.h"
#include "pins_util.h"

/* The unsigned number after "key": in a record, or false. */
static bool field_u64(const char *rec, const char *key, uint64_t *out)
{
	char pat[64];

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	const char *p = strstr(rec, pat);
	if (!p)
		return false;
	*out = strtoull(p + strlen(pat), NULL, 10);
	return true;
}

static bool is_event(const char *rec, const char *ev)
{
	char pat[64];

	snprintf(pat, sizeof(pat), "\"ev\":\"%s\"", ev);
	return strstr(rec, pat) != NULL;
}

struct trace_summary {
	uint64_t records;
	uint64_t pins, unpins, revokes;
	uint64_t unpins_revoked;	/* unpin records saying "revoked":true (each after its revoke) */
	int64_t busy_bytes;		/* busy_add minus reclaim */
	uint64_t frees, lease_breaks, waits_started, waits_ended, policies;
	uint64_t notes;			/* policy_note records */
	char first_note[512];
	uint64_t max_pin;		/* the highest pin id seen */
	uint64_t last_t;
};

/* Read a finished trace: every line one object, timestamps never going back; pins matched to unpins. */
static struct trace_summary read_trace(const char *path)
{
	struct trace_summary s = { 0 };
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	uint8_t *open_pins = calloc(1 << 16, 1);	/* 1 pinned, 2 pinned and revoked */

	if (!f)
		fail_msg("%s: %s", path, strerror(errno));
	assert_non_null(open_pins);
	while ((n = getline(&line, &cap, f)) > 0) {
		uint64_t t, id, len;

		s.records++;
		if (line[0] != '{' || n < 3 || line[n - 1] != '\n' || line[n - 2] != '}')
			fail_msg("trace line %llu is not one JSON object: %s", (unsigned long long)s.records, line);
		if (strncmp(line, "{\"t\":", 5) || !field_u64(line, "t", &t) || !strstr(line, "\"ev\":\""))
			fail_msg("trace line %llu has no time or event: %s", (unsigned long long)s.records, line);
		if (t < s.last_t)
			fail_msg("trace line %llu goes back in time: %s", (unsigned long long)s.records, line);
		s.last_t = t;
		/* Quotes balance: no string broke the line. */
		int quotes = 0;
		for (char *c = line; *c; c++)
			quotes += *c == '"' && (c == line || c[-1] != '\\');
		assert_int_equal(quotes % 2, 0);
		if (is_event(line, "pin")) {
			assert_true(field_u64(line, "pin", &id) && id < (1 << 16));
			assert_int_equal(open_pins[id], 0);
			open_pins[id] = 1;
			s.pins++;
			s.max_pin = id > s.max_pin ? id : s.max_pin;
		} else if (is_event(line, "unpin")) {
			assert_true(field_u64(line, "pin", &id) && id < (1 << 16));
			assert_true(open_pins[id] != 0);	/* every unpin has its pin */
			/* "revoked" says whether the pin was revoked before it went: true exactly then. */
			bool revoked = strstr(line, "\"revoked\":true") != NULL;
			if (!revoked && !strstr(line, "\"revoked\":false"))
				fail_msg("unpin record without a revoked flag: %s", line);
			if (revoked != (open_pins[id] == 2))
				fail_msg("pin %llu %s revoked, but its unpin record says \"revoked\":%s",
					 (unsigned long long)id, open_pins[id] == 2 ? "was" : "was not",
					 revoked ? "true" : "false");
			s.unpins_revoked += revoked;
			open_pins[id] = 0;
			s.unpins++;
		} else if (is_event(line, "revoke")) {
			assert_true(field_u64(line, "pin", &id) && id < (1 << 16));
			assert_int_equal(open_pins[id], 1);
			open_pins[id] = 2;
			s.revokes++;
		} else if (is_event(line, "busy_add")) {
			assert_true(field_u64(line, "len", &len));
			s.busy_bytes += (int64_t)len;
		} else if (is_event(line, "reclaim")) {
			assert_true(field_u64(line, "len", &len));
			s.busy_bytes -= (int64_t)len;
		} else if (is_event(line, "free")) {
			s.frees++;
		} else if (is_event(line, "lease_break")) {
			s.lease_breaks++;
		} else if (is_event(line, "wait_start")) {
			s.waits_started++;
		} else if (is_event(line, "wait_end")) {
			s.waits_ended++;
		} else if (is_event(line, "policy")) {
			s.policies++;
		} else if (is_event(line, "policy_note")) {
			if (!s.notes++)
				snprintf(s.first_note, sizeof(s.first_note), "%s", line);
		}
	}
	for (uint32_t i = 0; i < (1 << 16); i++)
		if (open_pins[i])
			fail_msg("pin %u has no unpin in the trace", i);
	free(open_pins);
	free(line);
	fclose(f);
	return s;
}

/* Make tf (a mkstemp template) an empty file for a trace to go to; the test unlinks it. */
static void trace_tmp(char *tf)
{
	int fd = mkstemp(tf);

	assert_true(fd >= 0);
	close(fd);
}

static void test_trace_at_mount(void **state)
{
	char tf[] = "/tmp/daxfs-trace-XXXXXX";
	char opts[256];
	struct fx x;

	(void)state;
	trace_tmp(tf);
	snprintf(opts, sizeof(opts), "trace=%s", tf);
	fx_setup(&x, "trace", opts);
	dma_write_checked(&x, 1);
	assert_ok(truncate(x.f, 0));	/* the pinned range goes busy */
	struct daxfs_ioc_trace t;
	assert_int_equal(daxfs_trace(x.dfd, DAXFS_TRACE_GET, NULL, &t), 0);
	assert_int_equal(t.on, 1);
	assert_string_equal(t.path, tf);
	/* A policy switch under way, and a revocation, are in the trace too. */
	assert_int_equal(daxfs_policy_set(x.dfd, "revoke", "grace_ms=50", NULL, 0), 0);
	pu_write_file(x.g, 1 * MiB, 2);
	int gfd = open(x.g, O_RDWR);
	assert_true(gfd >= 0);
	struct daxfs_pin q = pu_pin(gfd, 0, 64 * KiB, DAXFS_PIN_WRITE | DAXFS_PIN_REVOCABLE);
	assert_ok(truncate(x.g, 0));	/* waits out the grace period, then revokes q */
	assert_int_equal(daxfs_unpin(gfd, q.id), 0);
	daxfs_pin_free(&q);
	close(gfd);
	unpin_and_check_reclaim(&x);	/* the busy range comes back */
	/* Stop: the writer has put everything out.  The counters the daemon keeps agree with it. */
	assert_int_equal(daxfs_trace(x.dfd, DAXFS_TRACE_STOP, NULL, &t), 0);
	assert_int_equal(t.on, 0);
	struct daxfs_ioc_stats st = pu_stats(x.dfd);
	struct trace_summary s = read_trace(tf);
	print_message("trace: %llu records, %llu pins\n", (unsigned long long)s.records, (unsigned long long)s.pins);
	assert_int_equal(s.pins, st.pins_created);
	assert_int_equal(s.unpins, st.pins_released);
	assert_int_equal(s.revokes, st.pins_revoked);
	assert_int_equal(s.revokes, 1);
	/* The revoked pin's unpin says so, the others' say not. */
	assert_int_equal(s.unpins_revoked, 1);
	assert_true(s.unpins > s.unpins_revoked);
	assert_int_equal(s.lease_breaks, 1);
	assert_true(s.frees >= 2);
	assert_int_equal(s.waits_started, s.waits_ended);
	assert_true(s.waits_started >= 1);
	assert_int_equal(s.policies, 1);
	assert_int_equal(s.busy_bytes, (int64_t)(st.busy_blocks * BS));
	assert_int_equal(s.busy_bytes, 0);
	unlink(tf);
	fx_done(&x);
}

/*
 * What a policy writes with daxfs_policy_trace is a "policy_note" record naming the policy, never
 * taken for "policy", the daemon's record of a change of policy: unsafe notes every pinned range it
 * frees.
 */
static void test_policy_notes(void **state)
{
	char tf[] = "/tmp/daxfs-trace-XXXXXX";
	char opts[256];
	struct fx x;

	(void)state;
	trace_tmp(tf);
	snprintf(opts, sizeof(opts), "policy=unsafe,trace=%s", tf);
	fx_setup(&x, "notes", opts);
	assert_ok(truncate(x.f, 0));	/* unsafe frees the pinned range, and says so */
	assert_int_equal(daxfs_unpin(x.fd, x.p.id), 0);
	assert_int_equal(daxfs_trace(x.dfd, DAXFS_TRACE_STOP, NULL, NULL), 0);
	struct trace_summary s = read_trace(tf);
	assert_int_equal(s.policies, 0);
	assert_true(s.notes >= 1);	/* one per run of pinned blocks freed */
	assert_non_null(strstr(s.first_note, "\"policy\":\"unsafe\""));
	assert_non_null(strstr(s.first_note, "\"msg\":\"freed "));
	unlink(tf);
	fx_done(&x);
}

/* Started and stopped at run time; only root (or the daemon's user) may, and only to an absolute path. */
static void test_trace_at_run_time(void **state)
{
	char tf[] = "/tmp/daxfs-trace-XXXXXX";
	struct daxfs_ioc_trace t;
	struct fx x;

	(void)state;
	trace_tmp(tf);
	fx_setup(&x, "tracert", NULL);
	assert_int_equal(daxfs_trace(x.dfd, DAXFS_TRACE_GET, NULL, &t), 0);
	assert_int_equal(t.on, 0);
	assert_int_equal(daxfs_trace(x.dfd, DAXFS_TRACE_START, "relative/path", NULL), -EINVAL);
	assert_int_equal(daxfs_trace(x.dfd, DAXFS_TRACE_START, "/nonexistent-dir/x", NULL), -ENOENT);
	assert_int_equal(daxfs_trace(x.dfd, DAXFS_TRACE_START, tf, &t), 0);
	assert_int_equal(t.on, 1);
	/* The pin taken before the trace started ends in it: only its unpin is there. */
	assert_int_equal(daxfs_unpin(x.fd, x.p.id), 0);
	for (int i = 0; i < 100; i++) {
		struct daxfs_pin p = pu_pin(x.fd, (uint64_t)i * BS, BS, 0);
		assert_int_equal(daxfs_unpin(x.fd, p.id), 0);
		daxfs_pin_free(&p);
	}
	assert_int_equal(daxfs_trace(x.dfd, DAXFS_TRACE_STOP, NULL, &t), 0);
	FILE *f = fopen(tf, "r");
	assert_non_null(f);
	char line[1024];
	uint64_t pins = 0, unpins = 0;
	while (fgets(line, sizeof(line), f)) {
		pins += is_event(line, "pin");
		unpins += is_event(line, "unpin");
	}
	fclose(f);
	assert_int_equal(pins, 100);
	assert_int_equal(unpins, 101);
	assert_int_equal(t.dropped, 0);
	unlink(tf);
	fx_done(&x);
}

/* Read what the child printed into buf (appending), up to timeout_ms; whether want appeared. */
static bool read_until(int fd, char *buf, size_t cap, size_t *len, const char *want, int timeout_ms)
{
	struct pollfd pf = { .fd = fd, .events = POLLIN };

	if (strstr(buf, want))
		return true;
	if (poll(&pf, 1, timeout_ms) <= 0)
		return false;
	ssize_t n = read(fd, buf + *len, cap - 1 - *len);
	if (n > 0) {
		*len += (size_t)n;
		buf[*len] = 0;
	}
	return strstr(buf, want) != NULL;
}

/* daxfsctl trace PATH follow prints the records as they are written, and ends when the trace stops. */
static void test_trace_follow(void **state)
{
	char tf[] = "/tmp/daxfs-trace-XXXXXX", out[65536] = "", want[128];
	const char *ctl = getenv("DAXFSCTL_BIN");
	size_t len = 0;
	int pfd[2], st;
	struct fx x;

	(void)state;
	if (!ctl)
		fail_msg("DAXFSCTL_BIN is not set: run through meson test");
	trace_tmp(tf);
	fx_setup(&x, "tracefollow", NULL);
	assert_int_equal(daxfs_trace(x.dfd, DAXFS_TRACE_START, tf, NULL), 0);
	assert_int_equal(pipe(pfd), 0);
	pid_t c = fork();
	assert_true(c >= 0);
	if (c == 0) {
		dup2(pfd[1], 1);
		close(pfd[0]);
		execl(ctl, ctl, "trace", x.m.dir, "follow", (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	/* It follows from where the file ends when it starts: pin until it shows one. */
	uint64_t deadline = pu_now_ms() + PU_WAIT_MS;
	while (!read_until(pfd[0], out, sizeof(out), &len, " pin pin=", 100)) {
		if (pu_now_ms() > deadline)
			fail_msg("daxfsctl trace follow printed no pin in %d ms: '%s'", PU_WAIT_MS, out);
		struct daxfs_pin p = pu_pin(x.fd, 0, BS, 0);
		assert_int_equal(daxfs_unpin(x.fd, p.id), 0);
		daxfs_pin_free(&p);
	}
	/* A pin of its own, recognisable by its offset: both its records come. */
	struct daxfs_pin p = pu_pin(x.fd, 3 * BS, BS, 0);
	assert_int_equal(daxfs_unpin(x.fd, p.id), 0);
	snprintf(want, sizeof(want), " pin pin=%llu ino=%llu off=%llu len=%llu", (unsigned long long)p.id,
		 (unsigned long long)x.ino, (unsigned long long)(3 * BS), (unsigned long long)BS);
	deadline = pu_now_ms() + PU_WAIT_MS;
	while (!read_until(pfd[0], out, sizeof(out), &len, want, 100))
		if (pu_now_ms() > deadline)
			fail_msg("no '%s' in '%s'", want, out);
	snprintf(want, sizeof(want), " unpin pin=%llu ", (unsigned long long)p.id);
	while (!read_until(pfd[0], out, sizeof(out), &len, want, 100))
		if (pu_now_ms() > deadline)
			fail_msg("no '%s' in '%s'", want, out);
	daxfs_pin_free(&p);
	/* The trace stops: so does the follower, by itself. */
	assert_int_equal(daxfs_trace(x.dfd, DAXFS_TRACE_STOP, NULL, NULL), 0);
	if (!PU_POLL(waitpid(c, &st, WNOHANG) == c, PU_WAIT_MS)) {
		kill(c, SIGKILL);
		waitpid(c, &st, 0);
		fail_msg("daxfsctl trace follow still runs after the trace stopped");
	}
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	close(pfd[0]);
	unlink(tf);
	fx_done(&x);
}

static int run(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_trace_at_mount),
		cmocka_unit_test(test_trace_at_run_time),
		cmocka_unit_test(test_policy_notes),
		cmocka_unit_test(test_trace_follow),
	};
	return cmocka_run_group_tests_name("trace", tests, NULL, NULL);
}

int main(void)
{
	return h_main(run);
}
