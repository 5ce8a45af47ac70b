/* SPDX-License-Identifier: MIT */
/*
 * trace.c: the event trace.  Every record is one whole JSON object on a line of its own, with its
 * timestamp and name; trace_stop writes out everything queued before it; several threads emitting
 * at once never interleave; a full ring drops records whole and counts them, without waiting for
 * the writer; a record too long for a line is refused whole; one without fields (TRACE0) has no
 * stray comma; start/stop cycles truncate and reset; a failed start leaves tracing off.
 */
#include <pthread.h>
#include <sys/stat.h>

#include "unit_common.h"
#include "jsonl.h"
#include "trace.h"

struct tfix {
	struct image a, b;	/* not images: two scratch trace files */
	struct trace t;
};

static int setup(void **state)
{
	struct tfix *x = calloc(1, sizeof(*x));

	if (!x)
		return -1;
	image_name(&x->a, "trace-a");
	image_name(&x->b, "trace-b");
	trace_init(&x->t);
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	struct tfix *x = *state;

	trace_destroy(&x->t);
	image_remove(&x->a);
	image_remove(&x->b);
	free(x);
	return 0;
}

/*
 * Check that buf holds whole JSON lines only, each an object starting with "t" and "ev": returns
 * the number of lines; *last_ev gets the ev of each line through fn when given.
 */
typedef void (*line_fn)(void *arg, const char *line, size_t len);

static size_t check_lines(const char *buf, size_t len, line_fn fn, void *arg)
{
	size_t n = 0;

	if (len && buf[len - 1] != '\n')
		fail_msg("the trace ends with a partial line");
	for (const char *p = buf, *end = buf + len; p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t l = (size_t)(nl - p);

		if (!json_object_line(p, l))
			fail_msg("line %zu is not one JSON object: %.*s", n + 1, (int)(l > 200 ? 200 : l), p);
		if (strncmp(p, "{\"t\":", 5))
			fail_msg("line %zu does not start with its timestamp: %.*s", n + 1, (int)(l > 200 ? 200 : l), p);
		char ev[64];
		if (!json_field(p, l, "ev", ev, sizeof(ev)) || ev[0] != '"')
			fail_msg("line %zu has no event name", n + 1);
		if (fn)
			fn(arg, p, l);
		n++;
		p = nl + 1;
	}
	return n;
}

static size_t file_lines(const char *path, line_fn fn, void *arg)
{
	size_t len;
	char *buf = unit_read_file(path, &len);
	size_t n = check_lines(buf, len, fn, arg);

	free(buf);
	return n;
}

struct seq_check {
	unsigned long long next;	/* expected seq */
	unsigned long long last_t;
};

/* Lines of one emitter: seq 0, 1, 2, ... in order, timestamps never going back. */
static void check_seq(void *arg, const char *line, size_t len)
{
	struct seq_check *sc = arg;
	unsigned long long seq = json_u64(line, len, "seq", ~0ull), t = json_u64(line, len, "t", 0);

	if (seq != sc->next)
		fail_msg("record seq %llu where %llu was expected: %.*s", seq, sc->next, (int)len, line);
	if (t < sc->last_t)
		fail_msg("timestamp %llu after %llu", t, sc->last_t);
	sc->next++;
	sc->last_t = t;
}

static void test_records_are_json_lines(void **state)
{
	struct tfix *x = *state;
	struct trace *t = &x->t;

	assert_false(trace_on(t));
	assert_false(trace_on(NULL));
	TRACE((struct trace *)NULL, "nothing", "%s", "");	/* a NULL trace is off */
	TRACE(t, "ignored", "\"seq\":%d", 99);			/* not started: nothing happens */
	assert_int_equal(trace_start(t, x->a.path), 0);
	assert_true(trace_on(t));
	for (int i = 0; i < 100; i++)
		TRACE(t, "rec", "\"seq\":%d,\"s\":\"x%d\",\"neg\":%d,\"b\":%s", i, i, -i, i % 2 ? "true" : "false");
	assert_int_equal(t->records, 100);
	assert_int_equal(t->dropped, 0);
	trace_stop(t);
	assert_false(trace_on(t));
	/* After stop: records are ignored, the file keeps what it had. */
	trace_emit(t, "late", "\"seq\":%d", 100);
	assert_int_equal(t->records, 100);
	struct seq_check sc = { 0, 0 };
	assert_int_equal(file_lines(x->a.path, check_seq, &sc), 100);
}

/*
 * A record with no fields: TRACE0, or any format that expands to nothing (a literal "" is an error
 * under -Wformat-zero-length), is {"t":N,"ev":"NAME"}: trace_emit decides on the comma from what
 * the format printed, not from fmt[0].
 */
static void test_record_without_fields(void **state)
{
	struct tfix *x = *state;
	struct trace *t = &x->t;

	assert_int_equal(trace_start(t, x->a.path), 0);
	trace_emit(t, "bare", "%s", "");
	TRACE0(t, "bare0");
	TRACE(t, "full", "\"seq\":%d", 7);
	trace_stop(t);
	size_t len;
	char *buf = unit_read_file(x->a.path, &len);
	assert_int_equal(check_lines(buf, len, NULL, NULL), 3);
	/* Each line ends with its name and fields, the next one starting right after. */
	static const char *const ends[] = { ",\"ev\":\"bare\"}\n", ",\"ev\":\"bare0\"}\n",
					    ",\"ev\":\"full\",\"seq\":7}\n" };
	const char *line = buf;
	for (int i = 0; i < 3; i++) {
		const char *next = strchr(line, '\n') + 1;
		size_t n = strlen(ends[i]);

		if ((size_t)(next - line) < n || memcmp(next - n, ends[i], n))
			fail_msg("line %d is %.*s", i + 1, (int)(next - line - 1), line);
		line = next;
	}
	free(buf);
}

/* The writer has taken everything queued out of the ring (it looks every 20 ms at most). */
static bool ring_empty(void *arg)
{
	struct trace *t = arg;

	pthread_mutex_lock(&t->lock);
	bool empty = t->len == 0;
	pthread_mutex_unlock(&t->lock);
	return empty;
}

/* Everything queued before trace_stop reaches the file, across the end of the ring too. */
static void test_stop_writes_everything(void **state)
{
	struct tfix *x = *state;
	struct trace *t = &x->t;
	char pad[101];
	struct stat st;

	memset(pad, 'p', 100);
	pad[100] = 0;
	assert_int_equal(trace_start(t, x->a.path), 0);
	/* About 2.3 MB, then wait until the writer has taken it all out of the ring. */
	int i = 0;
	for (; i < 15000; i++)
		trace_emit(t, "fill", "\"seq\":%d,\"pad\":\"%s\"", i, pad);
	assert_int_equal(t->dropped, 0);
	assert_true(unit_wait(ring_empty, t, 10000));
	/* About 3.4 MB more: less than the ring, but past its end, so records wrap around it. */
	for (; i < 15000 + 22000; i++)
		trace_emit(t, "fill", "\"seq\":%d,\"pad\":\"%s\"", i, pad);
	assert_int_equal(t->dropped, 0);
	assert_int_equal(t->records, 37000);
	trace_stop(t);
	struct seq_check sc = { 0, 0 };
	assert_int_equal(file_lines(x->a.path, check_seq, &sc), 37000);
	assert_int_equal(stat(x->a.path, &st), 0);
	print_message("37000 records, %lld bytes written\n", (long long)st.st_size);
}

/* ---- several emitters ---- */

#define EMITTERS 4
#define PER_EMITTER 10000

struct emitter {
	struct trace *t;
	int id;
};

static void *emit_main(void *arg)
{
	struct emitter *e = arg;

	for (int i = 0; i < PER_EMITTER; i++)
		TRACE(e->t, "thread", "\"th\":%d,\"seq\":%d", e->id, i);
	return NULL;
}

struct per_thread {
	struct seq_check sc[EMITTERS];
};

static void check_thread(void *arg, const char *line, size_t len)
{
	struct per_thread *pt = arg;
	unsigned long long th = json_u64(line, len, "th", ~0ull);

	if (th >= EMITTERS)
		fail_msg("record of no thread: %.*s", (int)len, line);
	unsigned long long seq = json_u64(line, len, "seq", ~0ull);
	if (seq != pt->sc[th].next)
		fail_msg("thread %llu: seq %llu where %llu was expected", th, seq, pt->sc[th].next);
	pt->sc[th].next++;
}

/* Records of threads emitting at once are whole lines, each thread's in its order. */
static void test_concurrent_emitters(void **state)
{
	struct tfix *x = *state;
	struct emitter e[EMITTERS];
	pthread_t th[EMITTERS];
	struct per_thread pt = { 0 };

	assert_int_equal(trace_start(&x->t, x->a.path), 0);
	for (int i = 0; i < EMITTERS; i++) {
		e[i] = (struct emitter){ &x->t, i };
		assert_int_equal(pthread_create(&th[i], NULL, emit_main, &e[i]), 0);
	}
	for (int i = 0; i < EMITTERS; i++)
		pthread_join(th[i], NULL);
	/* 40000 short records are about 2 MiB: the ring holds them all even if the writer never ran. */
	assert_int_equal(x->t.dropped, 0);
	assert_int_equal(x->t.records, EMITTERS * PER_EMITTER);
	trace_stop(&x->t);
	assert_int_equal(file_lines(x->a.path, check_thread, &pt), EMITTERS * PER_EMITTER);
	for (int i = 0; i < EMITTERS; i++)
		assert_int_equal(pt.sc[i].next, PER_EMITTER);
}

/* ---- a full ring ---- */

static void check_increasing(void *arg, const char *line, size_t len)
{
	unsigned long long *next = arg, seq = json_u64(line, len, "seq", ~0ull);

	if (seq == ~0ull || seq < *next)
		fail_msg("record out of order: seq %llu after %llu", seq, *next);
	*next = seq + 1;
}

struct drain {
	int fd;
	char *buf;
	size_t len, cap;
};

static void *drain_main(void *arg)
{
	struct drain *d = arg;

	for (;;) {
		if (d->cap - d->len < 65536) {
			d->cap = d->cap ? d->cap * 2 : 1 << 20;
			d->buf = realloc(d->buf, d->cap);
			if (!d->buf)
				return NULL;
		}
		ssize_t n = read(d->fd, d->buf + d->len, d->cap - d->len);

		if (n <= 0)
			break;
		d->len += (size_t)n;
	}
	return NULL;
}

/*
 * The trace file is a FIFO nobody reads: the writer blocks on it, the ring fills up, and further
 * records are dropped and counted, never waited for.  Once the FIFO is read, exactly the records
 * counted come out, whole.
 */
static void test_full_ring_drops_counted(void **state)
{
	struct tfix *x = *state;
	struct trace *t = &x->t;
	const unsigned long long n = 600000;	/* about 60 MB of records: far more than any ring */
	char pad[61];

	memset(pad, 'q', 60);
	pad[60] = 0;
	unlink(x->a.path);
	assert_int_equal(mkfifo(x->a.path, 0600), 0);
	/* A reader must exist for the writer's open not to block; it reads nothing for now. */
	int rfd = open(x->a.path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	assert_true(rfd >= 0);
	assert_int_equal(trace_start(t, x->a.path), 0);
	for (unsigned long long i = 0; i < n; i++)
		trace_emit(t, "fill", "\"seq\":%llu,\"pad\":\"%s\"", i, pad);
	print_message("%llu records emitted: %llu queued, %llu dropped\n", n, (unsigned long long)t->records,
		      (unsigned long long)t->dropped);
	assert_true(t->dropped > 0);
	assert_int_equal(t->records + t->dropped, n);
	uint64_t records = t->records;

	/* Now read the FIFO to its end while the trace stops. */
	struct drain d = { .fd = rfd };
	pthread_t th;
	assert_int_equal(fcntl(rfd, F_SETFL, 0), 0);
	assert_int_equal(pthread_create(&th, NULL, drain_main, &d), 0);
	trace_stop(t);
	pthread_join(th, NULL);
	close(rfd);
	assert_non_null(d.buf);
	/* Each record got out whole or not at all; those that did are in order, with gaps. */
	unsigned long long next = 0;
	size_t lines = check_lines(d.buf, d.len, check_increasing, &next);
	assert_int_equal(lines, records);
	free(d.buf);
}

/* A record too long for one line is refused whole: never half of one in the file. */
static void test_too_long_refused_whole(void **state)
{
	struct tfix *x = *state;
	struct trace *t = &x->t;
	char *big = malloc(5001), mid[501];

	assert_non_null(big);
	memset(big, 'L', 5000);
	big[5000] = 0;
	memset(mid, 'm', 500);
	mid[500] = 0;
	assert_int_equal(trace_start(t, x->a.path), 0);
	trace_emit(t, "rec", "\"seq\":%d", 0);
	trace_emit(t, "huge", "\"s\":\"%s\"", big);
	trace_emit(t, "rec", "\"seq\":%d,\"s\":\"%s\"", 1, mid);	/* long, but a line holds it */
	trace_emit(t, "rec", "\"seq\":%d", 2);
	assert_int_equal(t->records, 3);
	print_message("refused record: dropped counter %llu\n", (unsigned long long)t->dropped);
	trace_stop(t);
	struct seq_check sc = { 0, 0 };
	assert_int_equal(file_lines(x->a.path, check_seq, &sc), 3);
	size_t len;
	char *buf = unit_read_file(x->a.path, &len);
	assert_null(strstr(buf, "huge"));
	assert_null(strstr(buf, "LLLL"));
	assert_non_null(strstr(buf, mid));
	free(buf);
	free(big);
}

/*
 * The request path stores raw values and the writer formats them: every conversion the call sites
 * use comes out as printf would have written it.
 */
static void test_conversions(void **state)
{
	struct tfix *x = *state;
	struct trace *t = &x->t;

	assert_int_equal(trace_start(t, x->a.path), 0);
	trace_emit(t, "conv", "\"d\":%d,\"u\":%u,\"llu\":%llu,\"lld\":%lld,\"ld\":%ld,\"zu\":%zu,\"x\":\"%x\","
		   "\"s\":\"%s\",\"pct\":\"100%%\",\"e\":\"%s\"",
		   -2147483647 - 1, 4294967295u, 18446744073709551615ull, -9223372036854775807ll - 1, -7l, (size_t)12345,
		   0xbeefu, "a \\\"quoted\\\" name", "");
	assert_int_equal(t->records, 1);
	trace_stop(t);
	size_t len;
	char *buf = unit_read_file(x->a.path, &len);
	const char *want = ",\"ev\":\"conv\",\"d\":-2147483648,\"u\":4294967295,\"llu\":18446744073709551615,"
			   "\"lld\":-9223372036854775808,\"ld\":-7,\"zu\":12345,\"x\":\"beef\",\"s\":\"a \\\"quoted\\\" name\","
			   "\"pct\":\"100%\",\"e\":\"\"}\n";
	char *got = strchr(buf, ',');
	assert_non_null(got);
	assert_string_equal(got, want);
	assert_true(strncmp(buf, "{\"t\":", 5) == 0);
	free(buf);
}

/* Each start truncates its file and starts counting again; a start stops the trace running. */
static void test_stop_start_cycles(void **state)
{
	struct tfix *x = *state;
	struct trace *t = &x->t;
	struct seq_check sc;

	trace_stop(t);	/* never started: nothing to do */
	for (int round = 0; round < 5; round++) {
		assert_int_equal(trace_start(t, x->a.path), 0);
		for (int i = 0; i < 10 + round; i++)
			trace_emit(t, "a", "\"seq\":%d", i);
		assert_int_equal(t->records, 10 + round);
		/* Starting again (another file) stops this one first: its records are all written. */
		assert_int_equal(trace_start(t, x->b.path), 0);
		assert_int_equal(t->records, 0);
		for (int i = 0; i < 3; i++)
			trace_emit(t, "b", "\"seq\":%d", i);
		sc = (struct seq_check){ 0, 0 };
		assert_int_equal(file_lines(x->a.path, check_seq, &sc), 10 + round);
		trace_stop(t);
		trace_stop(t);	/* twice: harmless */
		sc = (struct seq_check){ 0, 0 };
		assert_int_equal(file_lines(x->b.path, check_seq, &sc), 3);
	}
	/* The first file again: truncated, only the new records. */
	assert_int_equal(trace_start(t, x->a.path), 0);
	trace_emit(t, "a", "\"seq\":%d", 0);
	trace_stop(t);
	sc = (struct seq_check){ 0, 0 };
	assert_int_equal(file_lines(x->a.path, check_seq, &sc), 1);
}

/* A start that fails leaves tracing off, the previous trace stopped and complete. */
static void test_start_errors(void **state)
{
	struct tfix *x = *state;
	struct trace *t = &x->t;
	char *longpath = malloc(5000);

	assert_non_null(longpath);
	memset(longpath, 'a', 4999);
	longpath[0] = '/';
	longpath[4999] = 0;
	assert_int_equal(trace_start(t, "/nonexistent-dir/daxfs-trace"), -ENOENT);
	assert_false(trace_on(t));
	assert_int_equal(trace_start(t, longpath), -ENAMETOOLONG);
	assert_false(trace_on(t));

	assert_int_equal(trace_start(t, x->a.path), 0);
	trace_emit(t, "a", "\"seq\":%d", 0);
	trace_emit(t, "a", "\"seq\":%d", 1);
	assert_int_equal(trace_start(t, "/nonexistent-dir/daxfs-trace"), -ENOENT);
	assert_false(trace_on(t));
	trace_emit(t, "a", "\"seq\":%d", 2);	/* off: ignored */
	struct seq_check sc = { 0, 0 };
	assert_int_equal(file_lines(x->a.path, check_seq, &sc), 2);
	/* And it starts again afterwards. */
	assert_int_equal(trace_start(t, x->b.path), 0);
	trace_emit(t, "b", "\"seq\":%d", 0);
	trace_stop(t);
	sc = (struct seq_check){ 0, 0 };
	assert_int_equal(file_lines(x->b.path, check_seq, &sc), 1);
	free(longpath);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_records_are_json_lines),
		T(test_record_without_fields),
		T(test_stop_writes_everything),
		T(test_concurrent_emitters),
		T(test_full_ring_drops_counted),
		T(test_conversions),
		T(test_too_long_refused_whole),
		T(test_stop_start_cycles),
		T(test_start_errors),
	};

	if (getenv("UNIT_FILTER"))
		cmocka_set_test_filter(getenv("UNIT_FILTER"));
	return cmocka_run_group_tests_name("trace", tests, NULL, NULL);
}
