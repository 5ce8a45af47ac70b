/* SPDX-License-Identifier: MIT */
/*
 * daxfs-lab's modules below the scenarios: latency summaries, errno tallies, what a trace says
 * (busy bytes and their integral, reclaim latency, unpaired pins), policy specs, the CSV and JSON.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "lab.h"

static void test_percentiles(void **state)
{
	struct lab_samples s = { 0 };

	(void)state;
	struct lab_lat none = lab_samples_summary(&s);
	assert_int_equal(none.n, 0);
	assert_int_equal(none.max, 0);
	for (uint64_t v = 100; v >= 1; v--)	/* unsorted on purpose */
		lab_samples_add(&s, v);
	struct lab_lat l = lab_samples_summary(&s);
	assert_int_equal(l.n, 100);
	assert_int_equal(l.p50, 50);
	assert_int_equal(l.p99, 99);
	assert_int_equal(l.max, 100);
	lab_samples_free(&s);
	lab_samples_add(&s, 7);
	l = lab_samples_summary(&s);
	assert_int_equal(l.p50, 7);
	assert_int_equal(l.p99, 7);
	lab_samples_free(&s);
}

static void test_errs(void **state)
{
	struct lab_errs e = { 0 }, f = { 0 };
	char buf[128];

	(void)state;
	assert_string_equal(lab_errs_str(&e, buf, sizeof(buf)), "-");
	lab_errs_add(&e, -EBUSY, 1);
	lab_errs_add(&e, ENOSPC, 3);
	lab_errs_add(&e, 0, 5);		/* not an error */
	lab_errs_add(&e, EBUSY, 1);
	assert_int_equal(lab_errs_total(&e), 5);
	assert_string_equal(lab_errs_str(&e, buf, sizeof(buf)), "ENOSPC:3 EBUSY:2");
	/* Past LAB_ERRNOS kinds, the rest is counted as other. */
	for (int err = 1; err <= LAB_ERRNOS + 2; err++)
		lab_errs_add(&f, err, 1);
	assert_int_equal(f.n, LAB_ERRNOS);
	assert_int_equal(f.other, 2);
	lab_errs_merge(&e, &f);
	assert_int_equal(lab_errs_total(&e), 5 + LAB_ERRNOS + 2);
	assert_string_equal(lab_errno_name(EOPNOTSUPP), "EOPNOTSUPP");
	assert_string_equal(lab_errno_name(-ENOLINK), "ENOLINK");
	assert_string_equal(lab_errno_name(4000), "E4000");
	/* A short buffer is cut, never overrun. */
	char small[8];
	lab_errs_str(&e, small, sizeof(small));
	assert_true(strlen(small) < sizeof(small));
}

static const char *write_trace(const char *text)
{
	static char path[64];
	snprintf(path, sizeof(path), "/dev/shm/test-lab-%d.jsonl", getpid());
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return path;
}

static void test_trace_busy(void **state)
{
	struct lab_trace_sum s;

	(void)state;
	/* 1 MiB busy from t=1 s to t=3 s, another 2 MiB from t=2 s to the end (t=4 s, given). */
	const char *path = write_trace(
		"{\"t\":1000000000,\"ev\":\"pin\",\"pin\":1,\"ino\":5}\n"
		"{\"t\":1000000000,\"ev\":\"busy_add\",\"ino\":5,\"media\":0,\"len\":1048576,\"pins\":1}\n"
		"{\"t\":1500000000,\"ev\":\"pin\",\"pin\":2,\"ino\":5}\n"
		"not a record\n"
		"{\"t\":2000000000,\"ev\":\"busy_add\",\"ino\":5,\"media\":1048576,\"len\":2097152,\"pins\":1}\n"
		"{\"t\":2500000000,\"ev\":\"unpin\",\"pin\":1,\"ino\":5,\"revoked\":false}\n"
		"{\"t\":3000000000,\"ev\":\"reclaim\",\"media\":0,\"len\":1048576,\"ino\":5,\"latency\":500000000}\n"
		"{\"t\":3100000000,\"ev\":\"enospc_wait\",\"ns\":7000,\"ok\":false}\n"
		"{\"t\":3200000000,\"ev\":\"lease_break\",\"pin\":2}\n"
		"{\"t\":3300000000,\"ev\":\"revoke\",\"pin\":2}\n");
	assert_int_equal(lab_trace_read(path, 4000000000ull, &s), 0);
	assert_int_equal(s.records, 9);
	assert_int_equal(s.bad_lines, 1);
	assert_int_equal(s.busy_peak, 3 * 1048576);
	assert_int_equal(s.busy_now, 2 * 1048576);
	assert_int_equal(s.busy_added, 3 * 1048576);
	assert_int_equal(s.reclaimed, 1048576);
	/* 1 MiB for 2 s + 2 MiB for 2 s = 6 MiB*s. */
	assert_true(s.busy_byte_s > 6.0 * 1048576 - 1 && s.busy_byte_s < 6.0 * 1048576 + 1);
	assert_int_equal(s.reclaim.n, 1);
	assert_int_equal(s.reclaim.v[0], 500000000);
	assert_int_equal(s.enospc_waits, 1);
	assert_int_equal(s.enospc_failed, 1);
	assert_int_equal(s.enospc_wait_ns, 7000);
	assert_int_equal(s.pins, 2);
	assert_int_equal(s.unpins, 1);
	assert_int_equal(s.unpaired_pins, 1);	/* pin 2 was revoked, never unpinned */
	assert_int_equal(s.lease_breaks, 1);
	assert_int_equal(s.revokes, 1);
	lab_trace_sum_free(&s);
	unlink(path);
	assert_int_equal(lab_trace_read(path, 0, &s), -ENOENT);
}

static void test_policy_opts(void **state)
{
	char out[256];

	(void)state;
	assert_int_equal(lab_policy_opts("busy", out, sizeof(out)), 0);
	assert_string_equal(out, "policy=busy");
	assert_int_equal(lab_policy_opts("revoke:grace_ms=100", out, sizeof(out)), 0);
	assert_string_equal(out, "policy=revoke,grace_ms=100");
	assert_int_equal(lab_policy_opts("/opt/p/quota.so:per_holder=1M,wait_ms=5", out, sizeof(out)), 0);
	assert_string_equal(out, "policy=/opt/p/quota.so,per_holder=1M,wait_ms=5");
	assert_int_equal(lab_policy_opts("odp:", out, sizeof(out)), 0);
	assert_string_equal(out, "policy=odp");
	assert_int_equal(lab_policy_opts("", out, sizeof(out)), -EINVAL);
	assert_int_equal(lab_policy_opts(":x=1", out, sizeof(out)), -EINVAL);
	assert_int_equal(lab_policy_opts("busy,trace=/x", out, sizeof(out)), -EINVAL);	/* no smuggled options */
	assert_int_equal(lab_policy_opts("a=b", out, sizeof(out)), -EINVAL);
	assert_int_equal(lab_policy_opts("revoke:grace_ms=100", out, 12), -EINVAL);
}

static void test_reports(void **state)
{
	struct lab_result r[2];
	struct lab_params p = { .image_size = 64 * LAB_MiB };
	char *buf = NULL;
	size_t len = 0;

	(void)state;
	memset(r, 0, sizeof(r));
	snprintf(r[0].scenario, sizeof(r[0].scenario), "truncate-under-dma");
	snprintf(r[0].policy, sizeof(r[0].policy), "unsafe");
	snprintf(r[0].spec, sizeof(r[0].spec), "unsafe");
	snprintf(r[0].status, sizeof(r[0].status), "ok");
	snprintf(r[0].note, sizeof(r[0].note), "a \"quoted\" note\nwith a newline\\");
	r[0].stray_units = 100;
	lab_errs_add(&r[0].cut_errs, EBUSY, 2);
	r[1] = r[0];
	snprintf(r[1].policy, sizeof(r[1].policy), "busy");
	r[1].stray_units = UINT64_MAX;	/* the detector did not run */
	lab_errs_add(&r[1].dev_errs, ENXIO, 57);
	lab_errs_add(&r[1].dev_errs, ENOLINK, 12);

	FILE *f = open_memstream(&buf, &len);
	lab_report_csv(f, r, 2);
	fclose(f);
	assert_non_null(strstr(buf, "truncate-under-dma,unsafe,\"unsafe\",ok,6400,"));
	assert_non_null(strstr(buf, "\"a \"\"quoted\"\" note"));	/* CSV doubles quotes */
	assert_non_null(strstr(buf, ",EBUSY:2,"));
	assert_non_null(strstr(buf, "truncate-under-dma,busy,\"unsafe\",ok,-1,"));
	free(buf);

	f = open_memstream(&buf, &len);
	lab_report_json(f, r, 2, &p);
	fclose(f);
	assert_non_null(strstr(buf, "\"stray_bytes\":6400"));
	assert_non_null(strstr(buf, "\"stray_bytes\":-1"));
	assert_non_null(strstr(buf, "a \\\"quoted\\\" note\\u000awith a newline\\\\"));
	assert_non_null(strstr(buf, "\"cut_errors\":{\"EBUSY\":2}"));
	assert_non_null(strstr(buf, "\"params\":{\"image_size\":67108864"));
	free(buf);

	f = open_memstream(&buf, &len);
	lab_report_table(f, r, 2);
	fclose(f);
	assert_non_null(strstr(buf, "6.2K"));	/* 100 units of 64 bytes */
	assert_non_null(strstr(buf, "  ?  ") || strstr(buf, " ? "));
	assert_non_null(strstr(buf, "ENOLINK:12 ENXIO:57 ") || strstr(buf, "ENXIO:57 ENOLINK:12 "));	/* whole */
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_percentiles),
		cmocka_unit_test(test_errs),
		cmocka_unit_test(test_trace_busy),
		cmocka_unit_test(test_policy_opts),
		cmocka_unit_test(test_reports),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
