/* SPDX-License-Identifier: MIT */
/* The results: an aligned table for people, CSV and JSON for programs (base units: ns, bytes). */
#include "lab.h"

#include <string.h>

#include "toolutil.h"

static const char *ms(uint64_t ns, bool have, char *buf, size_t len)
{
	double v = (double)ns / 1e6;

	if (!have)
		snprintf(buf, len, "-");
	else if (v < 10)
		snprintf(buf, len, "%.2f", v);
	else if (v < 100)
		snprintf(buf, len, "%.1f", v);
	else
		snprintf(buf, len, "%.0f", v);
	return buf;
}

static const char *bytes(uint64_t b, char *buf, size_t len)
{
	if (b < 1024)
		snprintf(buf, len, "%llu", (unsigned long long)b);
	else if (b < LAB_MiB)
		snprintf(buf, len, "%.1fK", (double)b / 1024);
	else if (b < 1024 * LAB_MiB)
		snprintf(buf, len, "%.1fM", (double)b / (double)LAB_MiB);
	else
		snprintf(buf, len, "%.1fG", (double)b / (double)(1024 * LAB_MiB));
	return buf;
}

static const char *stray(const struct lab_result *r, char *buf, size_t len)
{
	if (r->stray_units == UINT64_MAX)
		return "?";
	if (!r->stray_units)
		return "0";
	return bytes(r->stray_units * DAXFS_TAG_UNIT, buf, len);
}

void lab_report_table(FILE *f, const struct lab_result *r, unsigned n)
{
	const char *prev = NULL;

	fprintf(f, "%-26s %-14s %7s %21s %-20s %-20s %7s %8s %15s %6s %7s %5s %4s %-7s\n", "scenario", "policy",
		"corrupt", "cut ms p50/p99/max", "cut errors", "device errors", "busy", "busy MiB*s",
		"reclaim ms p50/p99", "ENOSPC", "stall ms", "dlock", "fsck", "status");
	for (unsigned i = 0; i < n; i++) {
		const struct lab_result *x = &r[i];
		char a[16], b[16], c[16], d[16], e[16], s[16], ce[64], de[64], cut[48], rec[40], busy[16], st[16];

		if (prev && strcmp(prev, x->scenario))
			fputc('\n', f);
		prev = x->scenario;
		snprintf(cut, sizeof(cut), "%s/%s/%s", ms(x->cut.p50, x->cut.n, a, sizeof(a)),
			 ms(x->cut.p99, x->cut.n, b, sizeof(b)), ms(x->cut.max, x->cut.n, c, sizeof(c)));
		snprintf(rec, sizeof(rec), "%s/%s", ms(x->reclaim.p50, x->reclaim.n, d, sizeof(d)),
			 ms(x->reclaim.p99, x->reclaim.n, e, sizeof(e)));
		fprintf(f, "%-26s %-14.14s %7s %21s %-20.20s %-20.20s %7s %8.1f %15s %6llu %7s %5u %4s %-7s\n", x->scenario,
			x->policy, stray(x, s, sizeof(s)), cut, lab_errs_str(&x->cut_errs, ce, sizeof(ce)),
			lab_errs_str(&x->dev_errs, de, sizeof(de)), bytes(x->busy_peak, busy, sizeof(busy)),
			x->busy_byte_s / (double)LAB_MiB, rec, (unsigned long long)x->enospc,
			ms(x->writer_stall_ns, true, st, sizeof(st)), x->deadlocks,
			x->fsck < 0 ? "-" : x->fsck == 0 ? "ok" : "BAD", x->status);
	}
}

static void csv_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"')
			fputc('"', f);
		fputc(*s, f);
	}
	fputc('"', f);
}

void lab_report_csv(FILE *f, const struct lab_result *r, unsigned n)
{
	fprintf(f, "scenario,policy,spec,status,stray_bytes,stray_runs,cut_n,cut_p50_ns,cut_p99_ns,cut_max_ns,"
		   "cut_errors,device_errors,device_bytes,writer_bytes,busy_peak_bytes,busy_byte_s,reclaim_n,"
		   "reclaim_p50_ns,reclaim_p99_ns,enospc,writer_stall_ns,enospc_waits,deadlocks,fsck,lease_breaks,"
		   "revokes,invalidates,acks,refaults,unsafe_frees,duration_ns,note,info\n");
	for (unsigned i = 0; i < n; i++) {
		const struct lab_result *x = &r[i];
		char ce[128], de[128];

		fprintf(f, "%s,%s,", x->scenario, x->policy);
		csv_str(f, x->spec);
		fprintf(f, ",%s,%lld,%llu,%llu,%llu,%llu,%llu,%s,%s,%llu,%llu,%llu,%.3f,%llu,%llu,%llu,%llu,%llu,%llu,%u,%d,"
			   "%llu,%llu,%llu,%llu,%llu,%llu,%llu,",
			x->status, x->stray_units == UINT64_MAX ? -1ll : (long long)(x->stray_units * DAXFS_TAG_UNIT),
			(unsigned long long)x->stray_runs, (unsigned long long)x->cut.n, (unsigned long long)x->cut.p50,
			(unsigned long long)x->cut.p99, (unsigned long long)x->cut.max,
			lab_errs_total(&x->cut_errs) ? lab_errs_str(&x->cut_errs, ce, sizeof(ce)) : "",
			lab_errs_total(&x->dev_errs) ? lab_errs_str(&x->dev_errs, de, sizeof(de)) : "",
			(unsigned long long)x->dev_bytes, (unsigned long long)x->writer_bytes,
			(unsigned long long)x->busy_peak, x->busy_byte_s, (unsigned long long)x->reclaim.n,
			(unsigned long long)x->reclaim.p50, (unsigned long long)x->reclaim.p99,
			(unsigned long long)x->enospc, (unsigned long long)x->writer_stall_ns,
			(unsigned long long)x->enospc_waits, x->deadlocks, x->fsck, (unsigned long long)x->lease_breaks,
			(unsigned long long)x->revokes, (unsigned long long)x->invalidates, (unsigned long long)x->acks,
			(unsigned long long)x->refaults, (unsigned long long)x->unsafe_frees,
			(unsigned long long)x->duration_ns);
		csv_str(f, x->note);
		fputc(',', f);
		csv_str(f, x->info);
		fputc('\n', f);
	}
}

static void json_errs(FILE *f, const struct lab_errs *e)
{
	fputc('{', f);
	for (uint32_t i = 0; i < e->n; i++)
		fprintf(f, "%s\"%s\":%u", i ? "," : "", lab_errno_name(e->e[i].err), e->e[i].count);
	if (e->other)
		fprintf(f, "%s\"other\":%u", e->n ? "," : "", e->other);
	fputc('}', f);
}

static void json_lat(FILE *f, const char *name, const struct lab_lat *l)
{
	fprintf(f, "\"%s\":{\"n\":%llu,\"p50_ns\":%llu,\"p99_ns\":%llu,\"max_ns\":%llu}", name, (unsigned long long)l->n,
		(unsigned long long)l->p50, (unsigned long long)l->p99, (unsigned long long)l->max);
}

void lab_report_json_row(FILE *f, const struct lab_result *x)
{
	fprintf(f, "{\"scenario\":");
	json_str(f, x->scenario);
	fprintf(f, ",\"policy\":");
	json_str(f, x->policy);
	fprintf(f, ",\"spec\":");
	json_str(f, x->spec);
	fprintf(f, ",\"status\":");
	json_str(f, x->status);
	fprintf(f, ",\"stray_bytes\":%lld,\"stray_runs\":%llu,\"tags_seen\":%llu,\"stray_first\":",
		x->stray_units == UINT64_MAX ? -1ll : (long long)(x->stray_units * DAXFS_TAG_UNIT),
		(unsigned long long)x->stray_runs, (unsigned long long)x->tags_seen);
	json_str(f, x->stray_first);
	fputc(',', f);
	json_lat(f, "cut", &x->cut);
	fprintf(f, ",\"cut_errors\":");
	json_errs(f, &x->cut_errs);
	fprintf(f, ",\"device_errors\":");
	json_errs(f, &x->dev_errs);
	fprintf(f, ",\"device_bytes\":%llu,\"writer_bytes\":%llu,\"busy_peak_bytes\":%llu,\"busy_byte_s\":%.3f,",
		(unsigned long long)x->dev_bytes, (unsigned long long)x->writer_bytes, (unsigned long long)x->busy_peak,
		x->busy_byte_s);
	json_lat(f, "reclaim", &x->reclaim);
	fprintf(f, ",\"enospc\":%llu,\"writer_stall_ns\":%llu,\"enospc_waits\":%llu,\"deadlocks\":%u,\"fsck\":%d,"
		   "\"lease_breaks\":%llu,\"revokes\":%llu,\"invalidates\":%llu,\"acks\":%llu,\"refaults\":%llu,"
		   "\"unsafe_frees\":%llu,\"trace_records\":%llu,\"duration_ns\":%llu,\"note\":",
		(unsigned long long)x->enospc, (unsigned long long)x->writer_stall_ns, (unsigned long long)x->enospc_waits,
		x->deadlocks, x->fsck, (unsigned long long)x->lease_breaks, (unsigned long long)x->revokes,
		(unsigned long long)x->invalidates, (unsigned long long)x->acks, (unsigned long long)x->refaults,
		(unsigned long long)x->unsafe_frees, (unsigned long long)x->trace_records,
		(unsigned long long)x->duration_ns);
	json_str(f, x->note);
	fprintf(f, ",\"info\":");
	json_str(f, x->info);
	fprintf(f, ",\"dir\":");
	json_str(f, x->dir);
	fputc('}', f);
}

void lab_report_json(FILE *f, const struct lab_result *r, unsigned n, const struct lab_params *p)
{
	fprintf(f, "{\"params\":{\"image_size\":%llu,\"file_size\":%llu,\"rate\":%llu,\"wr_size\":%u,\"depth\":%u,"
		   "\"hold_ms\":%u,\"rounds\":%u,\"duration_ms\":%u,\"clients\":%u,\"writers\":%u,\"deadlock_ms\":%u,"
		   "\"fill_pct\":%u,\"pin_flags\":%u,\"seed\":%u},\n\"results\":[\n",
		(unsigned long long)p->image_size, (unsigned long long)p->file_size, (unsigned long long)p->rate,
		p->wr_size, p->depth, p->hold_ms, p->rounds, p->duration_ms, p->clients, p->writers, p->deadlock_ms,
		p->fill_pct, p->pin_flags, p->seed);
	for (unsigned i = 0; i < n; i++) {
		lab_report_json_row(f, &r[i]);
		fputs(i + 1 < n ? ",\n" : "\n", f);
	}
	fputs("]}\n", f);
}
