/* SPDX-License-Identifier: MIT */
/*
 * daxfsctl: look into a mounted daxfs, and set its policy.
 *
 *   daxfsctl [--json] stat|pins|busy|waits|info|policies PATH
 *   daxfsctl [--json] policy PATH [NAME|/PATH.so] [KEY=VALUE...]
 *   daxfsctl [--json] trace PATH [on FILE|off|follow]
 *
 * PATH is the mount point or any file or directory on the mount.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daxfs/libdaxfs.h"
#include "toolutil.h"

static bool json;

static void usage(FILE *f)
{
	fprintf(f,
		"usage: daxfsctl [--json] COMMAND PATH [ARGS]\n"
		"\n"
		"  stat PATH       counters: pins, busy extents, reclaim, waits, events, policy actions, DMA;\n"
		"                  the transport (/dev/fuse or io_uring) and its requests per queue\n"
		"  pins PATH       every pin: id, inode, range, flags, state, holder pid and uid, age\n"
		"  busy PATH       every busy extent: media range, former inode, state, pin count, age\n"
		"  waits PATH      requests waiting for the policy, and what each waits for\n"
		"  info PATH       the media: path, size, block size, uuid, whether it is real pmem\n"
		"  policy PATH [NAME|/PATH.so] [KEY=VALUE...]\n"
		"                  show the policy, switch to another (built in, or a policy object), or\n"
		"                  change its parameters\n"
		"  policies PATH   the policies the daemon knows, with their parameters\n"
		"  trace PATH [on FILE|off|follow]\n"
		"                  show, start (into FILE, an absolute path), stop or follow (print the\n"
		"                  records as they are written) the event trace\n"
		"\n"
		"  --json          machine-readable output\n"
		"\n"
		"PATH is the mount point or anything on the mount.  Changing the policy or the trace needs root\n"
		"or the daemon's user.  Exit: 0, 1 on errors, 2 on usage errors.\n");
}

static int open_path(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		die("daxfsctl: %s: %s", path, strerror(errno));
	return fd;
}

static void check(int ret, const char *what, const char *path)
{
	if (ret == -ENOTTY)
		die("daxfsctl: %s: not on a daxfs mount", path);
	if (ret)
		die("daxfsctl: %s: %s: %s", path, what, strerror(-ret));
}

static double ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

/* How requests reach the daemon; false from a daemon that predates DAXFS_IOC_TRANSPORT. */
static bool get_transport(int fd, const char *path, struct daxfs_ioc_transport *t)
{
	memset(t, 0, sizeof(*t));
	t->size = sizeof(*t);
	if (ioctl(fd, DAXFS_IOC_TRANSPORT, t) == 0)
		return true;
	if (errno != ENOTTY)
		check(-errno, "transport", path);
	return false;
}

static void json_transport(const struct daxfs_ioc_transport *t)
{
	printf(",\"transport\":\"%s\",\"transport_requested\":\"%s\",\"transport_reason\":",
	       daxfs_transport_str(t->transport), daxfs_transport_str(t->requested));
	json_str(stdout, t->reason);
	printf(",\"dev_requests\":%llu,\"queues\":[", t->dev_requests);
	for (uint32_t i = 0; i < t->nqueues && i < DAXFS_TRANSPORT_QUEUES_MAX; i++) {
		const struct daxfs_transport_queue *q = &t->queues[i];

		printf("%s{\"cpu\":%u,\"requests\":%llu,\"deferred\":%llu,\"entries\":%u,\"threads\":%u,"
		       "\"kicks\":%u,\"kick_failures\":%u}",
		       i ? "," : "", q->cpu, q->requests, q->deferred, q->entries, q->threads, q->kicks, q->kick_failures);
	}
	printf("]");
}

static void print_transport(const struct daxfs_ioc_transport *t)
{
	if (t->transport == DAXFS_TRANSPORT_URING) {
		unsigned long long total = 0;

		for (uint32_t i = 0; i < t->nqueues && i < DAXFS_TRANSPORT_QUEUES_MAX; i++)
			total += t->queues[i].requests;
		printf("transport       io_uring, %u queues: %llu requests; %llu through /dev/fuse (before the "
		       "queues, forgets, interrupts)\n", t->nqueues, total, t->dev_requests);
		for (uint32_t i = 0; i < t->nqueues && i < DAXFS_TRANSPORT_QUEUES_MAX; i++) {
			const struct daxfs_transport_queue *q = &t->queues[i];

			printf("  queue cpu %-4u %llu requests, %llu replied later; %u entries, %u threads, %u kicks"
			       " (%u failed)\n", q->cpu, q->requests, q->deferred, q->entries, q->threads, q->kicks,
			       q->kick_failures);
		}
	} else {
		printf("transport       /dev/fuse: %llu requests", t->dev_requests);
		if (t->requested != DAXFS_TRANSPORT_DEV)
			printf(" (transport=%s: %s)", daxfs_transport_str(t->requested), t->reason);
		printf("\n");
	}
}

static int cmd_stat(int fd, const char *path)
{
	struct daxfs_ioc_stats s;
	struct daxfs_ioc_policy p;
	struct daxfs_ioc_transport *t = malloc(sizeof(*t));
	bool have_t;

	if (!t)
		die("daxfsctl: out of memory");
	check(daxfs_stats(fd, &s), "stats", path);
	check(daxfs_policy_get(fd, &p), "policy", path);
	have_t = get_transport(fd, path, t);
	double avg = s.reclaimed_extents ? ms(s.reclaim_latency_ns_total) / (double)s.reclaimed_extents : 0;
	if (json) {
		printf("{\"policy\":");
		json_str(stdout, p.name);
		printf(",\"blocks\":%llu,\"free_blocks\":%llu,"
		       "\"pins_active\":%llu,\"pins_created\":%llu,\"pins_released\":%llu,\"pins_revoked\":%llu,"
		       "\"pins_refused\":%llu,\"pinned_blocks\":%llu,\"busy_extents\":%llu,\"busy_blocks\":%llu,"
		       "\"busy_created\":%llu,\"reclaim_queued\":%llu,\"reclaimed_extents\":%llu,"
		       "\"reclaimed_blocks\":%llu,\"reclaim_latency_ms_avg\":%.3f,\"reclaim_latency_ms_max\":%.3f,"
		       "\"frees_waited\":%llu,\"free_wait_ms_total\":%.3f,\"frees_failed\":%llu,\"unsafe_frees\":%llu,"
		       "\"unsafe_blocks\":%llu,\"dma_ops\":%llu,\"dma_bytes\":%llu,\"enospc_waits\":%llu,"
		       "\"waiting\":%llu,\"waits_interrupted\":%llu,\"invalidations\":%llu,\"invalidations_acked\":%llu,"
		       "\"events\":%llu,\"quarantined_blocks\":%llu,\"revoked_held_blocks\":%llu",
		       s.blocks, s.free_blocks,
		       s.pins_active, s.pins_created, s.pins_released, s.pins_revoked, s.pins_refused, s.pinned_blocks,
		       s.busy_extents, s.busy_blocks, s.busy_created, s.reclaim_queued, s.reclaimed_extents,
		       s.reclaimed_blocks, avg, ms(s.reclaim_latency_ns_max), s.frees_waited, ms(s.free_wait_ns_total),
		       s.frees_failed, s.unsafe_frees, s.unsafe_blocks, s.dma_ops, s.dma_bytes, s.enospc_waits,
		       s.waiting, s.waits_interrupted, s.invalidations, s.invalidations_acked, s.events,
		       s.quarantined_blocks, s.revoked_held_blocks);
		if (have_t)
			json_transport(t);
		printf("}\n");
		free(t);
		return 0;
	}
	printf("policy          %s (%s)\n", p.name, p.params);
	printf("space           %llu blocks, %llu free\n", s.blocks, s.free_blocks);
	printf("pins            %llu active, %llu created, %llu released, %llu revoked, %llu refused\n",
	       s.pins_active, s.pins_created, s.pins_released, s.pins_revoked, s.pins_refused);
	printf("pinned blocks   %llu (%llu held by revoked pins until their files close, %llu quarantined)\n",
	       s.pinned_blocks, s.revoked_held_blocks, s.quarantined_blocks);
	printf("busy            %llu extents, %llu blocks (%llu made busy so far)\n", s.busy_extents, s.busy_blocks,
	       s.busy_created);
	printf("reclaim         %llu queued; %llu extents, %llu blocks reclaimed; latency avg %.3f ms, max %.3f ms\n",
	       s.reclaim_queued, s.reclaimed_extents, s.reclaimed_blocks, avg, ms(s.reclaim_latency_ns_max));
	printf("waits           %llu waiting now; %llu frees waited (%.3f ms in all), %llu refused, %llu interrupted\n",
	       s.waiting, s.frees_waited, ms(s.free_wait_ns_total), s.frees_failed, s.waits_interrupted);
	printf("events          %llu sent; %llu invalidations, %llu acknowledged\n", s.events, s.invalidations,
	       s.invalidations_acked);
	printf("unsafe          %llu frees of pinned blocks (%llu blocks)\n", s.unsafe_frees, s.unsafe_blocks);
	printf("dma             %llu operations, %llu bytes\n", s.dma_ops, s.dma_bytes);
	printf("enospc waits    %llu\n", s.enospc_waits);
	if (have_t)
		print_transport(t);
	free(t);
	return 0;
}

/* w or r, then L (long-term), R (revocable), O (on-demand paging) or - */
static void flags_str(uint32_t f, char *out)
{
	snprintf(out, 8, "%c%c%c%c", f & DAXFS_PIN_WRITE ? 'w' : 'r', f & DAXFS_PIN_LONGTERM ? 'L' : '-',
		 f & DAXFS_PIN_REVOCABLE ? 'R' : '-', f & DAXFS_PIN_ODP ? 'O' : '-');
}

static int cmd_pins(int fd, const char *path)
{
	struct daxfs_pin_info *v;
	uint32_t n;

	check(daxfs_list_pins(fd, &v, &n), "list pins", path);
	if (json) {
		printf("[");
		for (uint32_t i = 0; i < n; i++)
			printf("%s{\"id\":%llu,\"ino\":%llu,\"offset\":%llu,\"length\":%llu,\"flags\":%u,\"state\":\"%s\","
			       "\"pid\":%d,\"uid\":%u,\"extents\":%u,\"gen\":%u,\"age_ms\":%.3f,\"deadline_ms\":%.3f}",
			       i ? "," : "", v[i].pin_id, v[i].ino, v[i].offset, v[i].length, v[i].flags,
			       daxfs_pin_state_str(v[i].state), v[i].pid, v[i].uid, v[i].nextents, v[i].gen,
			       ms(v[i].age_ns), ms(v[i].deadline_ns));
		printf("]\n");
	} else {
		printf("%8s %10s %14s %14s %5s %9s %8s %6s %7s %10s\n", "ID", "INODE", "OFFSET", "LENGTH", "FLAGS",
		       "STATE", "PID", "UID", "EXTENTS", "AGE(s)");
		for (uint32_t i = 0; i < n; i++) {
			char f[8];

			flags_str(v[i].flags, f);
			printf("%8llu %10llu %14llu %14llu %5s %9s %8d %6u %7u %10.3f\n", v[i].pin_id, v[i].ino, v[i].offset,
			       v[i].length, f, daxfs_pin_state_str(v[i].state), v[i].pid, v[i].uid, v[i].nextents,
			       (double)v[i].age_ns / 1e9);
		}
		printf("%u pins\n", n);
	}
	free(v);
	return 0;
}

static int cmd_busy(int fd, const char *path)
{
	struct daxfs_busy_info *v;
	uint32_t n;
	uint64_t bytes = 0;

	check(daxfs_list_busy(fd, &v, &n), "list busy extents", path);
	if (json) {
		printf("[");
		for (uint32_t i = 0; i < n; i++)
			printf("%s{\"media_off\":%llu,\"len\":%llu,\"ino\":%llu,\"state\":\"%s\",\"pins\":%u,\"age_ms\":%.3f}",
			       i ? "," : "", v[i].media_off, v[i].len, v[i].ino, daxfs_busy_state_str(v[i].state),
			       v[i].pins, ms(v[i].age_ns));
		printf("]\n");
	} else {
		printf("%16s %14s %10s %11s %5s %10s\n", "MEDIA OFFSET", "LENGTH", "FROM INODE", "STATE", "PINS", "AGE(s)");
		for (uint32_t i = 0; i < n; i++) {
			printf("%16llu %14llu %10llu %11s %5u %10.3f\n", v[i].media_off, v[i].len, v[i].ino,
			       daxfs_busy_state_str(v[i].state), v[i].pins, (double)v[i].age_ns / 1e9);
			bytes += v[i].len;
		}
		printf("%u busy extents, %llu bytes\n", n, (unsigned long long)bytes);
	}
	free(v);
	return 0;
}

static int cmd_info(int fd, const char *path)
{
	struct daxfs_ioc_info in;
	char u[37];

	check(daxfs_info(fd, &in), "info", path);
	format_uuid(in.uuid, u);
	const char *kind = in.media_kind == DAXFS_MEDIA_DEVDAX ? "devdax" : in.media_kind == DAXFS_MEDIA_BLOCKDEV ? "block" : "file";
	if (json) {
		printf("{\"media\":\"%s\",\"kind\":\"%s\",\"size\":%llu,\"block_size\":%u,\"data_offset\":%llu,"
		       "\"uuid\":\"%s\",\"label\":\"%s\",\"is_pmem\":%s}\n",
		       in.media_path, kind, in.media_size, in.block_size, in.data_offset, u, in.label,
		       in.is_pmem ? "true" : "false");
		return 0;
	}
	printf("media        %s (%s)\n", in.media_path, kind);
	printf("size         %llu bytes, blocks of %u, data area from byte %llu\n", in.media_size, in.block_size,
	       in.data_offset);
	printf("uuid         %s%s%s\n", u, in.label[0] ? ", label " : "", in.label);
	printf("persistence  %s\n", in.is_pmem ? "pmem (cache flush + fence)" : "not pmem (msync)");
	return 0;
}

static void print_policy(const struct daxfs_ioc_policy *p)
{
	if (json) {
		printf("{\"policy\":");
		json_str(stdout, p->name);
		printf(",\"params\":{");
		/* params is "k=v,k=v": values never hold commas (the daemon splits on them too). */
		char copy[sizeof(p->params)], *save = NULL;
		int first = 1;
		snprintf(copy, sizeof(copy), "%s", p->params);
		for (char *kv = strtok_r(copy, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
			char *eq = strchr(kv, '=');
			if (!eq)
				continue;
			*eq = 0;
			printf("%s", first ? "" : ",");
			json_str(stdout, kv);
			putchar(':');
			json_str(stdout, eq + 1);
			first = 0;
		}
		printf("},\"summary\":");
		json_str(stdout, p->summary);
		printf(",\"stalls\":%s,\"loaded\":%s,\"generation\":%llu}\n",
		       p->flags & DAXFS_POLICY_F_STALLS ? "true" : "false", p->flags & DAXFS_POLICY_F_LOADED ? "true" : "false",
		       p->generation);
		return;
	}
	printf("policy %s%s: %s\n", p->name, p->flags & DAXFS_POLICY_F_LOADED ? " (loaded)" : "", p->summary);
	printf("parameters %s\n", p->params);
}

static int cmd_policy(int fd, const char *path, int argc, char **argv)
{
	struct daxfs_ioc_policy p;
	char params[DAXFS_POLICY_PARAMS_MAX] = "";
	const char *name = NULL;
	size_t n = 0;

	for (int i = 0; i < argc; i++) {
		if (!strchr(argv[i], '=')) {
			if (name || i > 0)
				die_usage("daxfsctl", "policy: the policy's name comes first, then KEY=VALUE parameters");
			name = argv[i];
			continue;
		}
		int w = snprintf(params + n, sizeof(params) - n, "%s%s", n ? "," : "", argv[i]);
		if (w < 0 || (size_t)w >= sizeof(params) - n)
			die_usage("daxfsctl", "policy: parameters too long");
		n += (size_t)w;
	}
	if (argc > 0) {
		int ret = daxfs_policy_change(fd, name, params, &p);

		/* The request refused (who asks), or the change refused (what was asked): two reasons. */
		if (ret == -EPERM)
			die("daxfsctl: %s: changing the policy needs root or the daemon's user", path);
		check(ret, "set policy", path);
		if (p.result)
			die("daxfsctl: %s: %s", path, p.message[0] ? p.message : strerror(-p.result));
	} else {
		check(daxfs_policy_get(fd, &p), "policy", path);
	}
	print_policy(&p);
	return 0;
}

static int cmd_policies(int fd, const char *path)
{
	struct daxfs_policy_desc *v;
	uint32_t n;

	check(daxfs_list_policies(fd, &v, &n), "list policies", path);
	if (json)
		printf("[");
	for (uint32_t i = 0; i < n; i++) {
		if (json) {
			printf("%s{\"name\":", i ? "," : "");
			json_str(stdout, v[i].name);
			printf(",\"summary\":");
			json_str(stdout, v[i].summary);
			printf(",\"stalls\":%s,\"params\":", v[i].flags & DAXFS_POLICY_F_STALLS ? "true" : "false");
			json_str(stdout, v[i].params);
			printf("}");
			continue;
		}
		printf("%-14s %s%s\n", v[i].name, v[i].summary,
		       v[i].flags & DAXFS_POLICY_F_STALLS ? " [truncates may wait]" : "");
		char copy[sizeof(v[i].params)], *save = NULL;
		snprintf(copy, sizeof(copy), "%s", v[i].params);
		for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
			printf("%14s   %s\n", "", line);
	}
	if (json)
		printf("]\n");
	free(v);
	return 0;
}

static int cmd_waits(int fd, const char *path)
{
	struct daxfs_wait_info *v;
	uint32_t n;

	check(daxfs_list_waits(fd, &v, &n), "list waits", path);
	if (json) {
		printf("[");
		for (uint32_t i = 0; i < n; i++)
			printf("%s{\"id\":%llu,\"kind\":\"%s\",\"pid\":%d,\"ino\":%llu,\"offset\":%llu,\"length\":%llu,"
			       "\"age_ms\":%.3f,\"deadline_ms\":%.3f,\"blocker_pin\":%llu,\"blocker_pid\":%d,\"pins\":%u,"
			       "\"behind\":%llu}",
			       i ? "," : "", v[i].wait_id, daxfs_wait_str(v[i].kind), v[i].pid, v[i].ino, v[i].offset,
			       v[i].length, ms(v[i].age_ns), ms(v[i].deadline_ns), v[i].blocker_pin, v[i].blocker_pid,
			       v[i].npins, v[i].blocker_wait);
		printf("]\n");
	} else {
		for (uint32_t i = 0; i < n; i++) {
			printf("wait %llu: %s by pid %d, inode %llu from byte %llu, %.3f s", v[i].wait_id,
			       daxfs_wait_str(v[i].kind), v[i].pid, v[i].ino, v[i].offset, (double)v[i].age_ns / 1e9);
			if (v[i].blocker_wait)
				printf(", behind wait %llu", v[i].blocker_wait);
			if (v[i].npins)
				printf(", for %u pins (pin %llu of pid %d first)", v[i].npins, v[i].blocker_pin,
				       v[i].blocker_pid);
			if (v[i].deadline_ns)
				printf(", decides again in %.0f ms", ms(v[i].deadline_ns));
			printf("\n");
		}
		printf("%u waiting\n", n);
	}
	free(v);
	return 0;
}

static volatile sig_atomic_t stop_following;

static void on_stop_following(int sig)
{
	(void)sig;
	stop_following = 1;
}

/* One record as "+SECONDS ev key=value ...", SECONDS from the first record shown. */
static void print_record(const char *line, uint64_t *t0)
{
	unsigned long long t = 0;
	const char *p = strstr(line, "\"t\":"), *ev = strstr(line, "\"ev\":\"");

	if (line[0] != '{' || !p || !ev) {
		printf("%s\n", line);	/* not a record: as it is */
		return;
	}
	t = strtoull(p + 4, NULL, 10);
	if (!*t0)
		*t0 = t;
	ev += 6;
	printf("+%.6f %.*s", (double)(t - *t0) / 1e9, (int)strcspn(ev, "\""), ev);
	/* The other fields: "key":value pairs after "ev", strings unquoted. */
	const char *q = ev + strcspn(ev, "\"") + 1;
	while (*q == ',' && q[1] == '"') {
		const char *k = q + 2, *kend = strchr(k, '"');

		if (!kend || kend[1] != ':')
			break;
		const char *v = kend + 2, *vend;
		if (*v == '"') {
			v++;
			for (vend = v; *vend && !(*vend == '"' && vend[-1] != '\\'); vend++)
				;
			printf(" %.*s=%.*s", (int)(kend - k), k, (int)(vend - v), v);
			q = *vend ? vend + 1 : vend;
		} else {
			vend = v + strcspn(v, ",}");
			printf(" %.*s=%.*s", (int)(kend - k), k, (int)(vend - v), v);
			q = vend;
		}
	}
	printf("\n");
}

/* The lines of a trace file as they come, cut at newlines (a record may arrive in two reads). */
struct follow {
	char *line;
	size_t len, cap;
	uint64_t t0;
};

static void follow_feed(struct follow *f, const char *buf, ssize_t n)
{
	for (ssize_t i = 0; i < n; i++) {
		if (f->len + 1 >= f->cap) {
			f->cap = f->cap ? 2 * f->cap : 4096;
			if (!(f->line = realloc(f->line, f->cap)))
				die("daxfsctl: out of memory");
		}
		if (buf[i] != '\n') {
			f->line[f->len++] = buf[i];
			continue;
		}
		f->line[f->len] = 0;
		if (json)
			printf("%s\n", f->line);
		else
			print_record(f->line, &f->t0);
		f->len = 0;
	}
}

/*
 * Follow the trace live, as tail -f: the records written from now on, until the trace stops (then
 * 0), or SIGINT/SIGTERM.  A trace restarted into another file is followed there.
 */
static int trace_follow(int fd, const char *path)
{
	struct daxfs_ioc_trace t;
	struct follow f = { 0 };
	char file[sizeof(t.path)], buf[65536];
	ssize_t n;
	off_t pos;
	int tf;

	check(daxfs_trace(fd, DAXFS_TRACE_GET, NULL, &t), "trace", path);
	if (!t.on)
		die("daxfsctl: %s: the trace is off (daxfsctl trace %s on FILE starts it)", path, path);
	snprintf(file, sizeof(file), "%s", t.path);
	if ((tf = open(file, O_RDONLY | O_CLOEXEC)) < 0)
		die("daxfsctl: %s: %s", file, strerror(errno));
	pos = lseek(tf, 0, SEEK_END);
	signal(SIGINT, on_stop_following);
	signal(SIGTERM, on_stop_following);
	setvbuf(stdout, NULL, _IOLBF, 0);
	while (!stop_following) {
		if ((n = pread(tf, buf, sizeof(buf), pos)) > 0) {
			pos += n;
			follow_feed(&f, buf, n);
			continue;
		}
		/* Nothing new: has the trace stopped, moved to another file, or started the same one again? */
		struct stat st;
		if (daxfs_trace(fd, DAXFS_TRACE_GET, NULL, &t) || !t.on)
			break;
		if (strcmp(t.path, file) || (fstat(tf, &st) == 0 && st.st_size < pos)) {
			close(tf);
			snprintf(file, sizeof(file), "%s", t.path);
			if ((tf = open(file, O_RDONLY | O_CLOEXEC)) < 0)
				die("daxfsctl: %s: %s", file, strerror(errno));
			pos = 0;
			f.len = 0;
			continue;
		}
		usleep(100000);
	}
	/* What the writer put out before the stop. */
	while (!stop_following && (n = pread(tf, buf, sizeof(buf), pos)) > 0) {
		pos += n;
		follow_feed(&f, buf, n);
	}
	free(f.line);
	close(tf);
	return 0;
}

static int cmd_trace(int fd, const char *path, int argc, char **argv)
{
	struct daxfs_ioc_trace t;
	int ret;

	if (argc == 1 && strcmp(argv[0], "follow") == 0)
		return trace_follow(fd, path);
	if (argc == 0)
		ret = daxfs_trace(fd, DAXFS_TRACE_GET, NULL, &t);
	else if (argc == 2 && strcmp(argv[0], "on") == 0)
		ret = daxfs_trace(fd, DAXFS_TRACE_START, argv[1], &t);
	else if (argc == 1 && strcmp(argv[0], "off") == 0)
		ret = daxfs_trace(fd, DAXFS_TRACE_STOP, NULL, &t);
	else
		die_usage("daxfsctl", "trace: expected nothing, 'on FILE', 'off' or 'follow'");
	if (ret == -EPERM)
		die("daxfsctl: %s: tracing needs root or the daemon's user", path);
	if (ret == -EINVAL && argc == 2)
		die("daxfsctl: %s: the trace file is written by the daemon: give an absolute path", path);
	check(ret, "trace", path);
	if (json) {
		printf("{\"on\":%s,\"file\":", t.on ? "true" : "false");
		json_str(stdout, t.path);
		printf(",\"records\":%llu,\"dropped\":%llu}\n", t.records, t.dropped);
	} else if (t.on) {
		printf("tracing to %s: %llu records, %llu dropped\n", t.path, t.records, t.dropped);
	} else {
		printf("tracing off\n");
	}
	return 0;
}

int main(int argc, char **argv)
{
	int i = 1;

	if (i < argc && strcmp(argv[i], "--json") == 0) {
		json = true;
		i++;
	}
	if (i < argc && (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)) {
		usage(stdout);
		return 0;
	}
	if (argc - i < 2) {
		usage(stderr);
		return 2;
	}
	const char *cmd = argv[i], *path = argv[i + 1];
	int fd = open_path(path), ret;

	if (strcmp(cmd, "stat") == 0 && argc - i == 2)
		ret = cmd_stat(fd, path);
	else if (strcmp(cmd, "pins") == 0 && argc - i == 2)
		ret = cmd_pins(fd, path);
	else if (strcmp(cmd, "busy") == 0 && argc - i == 2)
		ret = cmd_busy(fd, path);
	else if (strcmp(cmd, "info") == 0 && argc - i == 2)
		ret = cmd_info(fd, path);
	else if (strcmp(cmd, "waits") == 0 && argc - i == 2)
		ret = cmd_waits(fd, path);
	else if (strcmp(cmd, "policies") == 0 && argc - i == 2)
		ret = cmd_policies(fd, path);
	else if (strcmp(cmd, "policy") == 0)
		ret = cmd_policy(fd, path, argc - i - 2, argv + i + 2);
	else if (strcmp(cmd, "trace") == 0)
		ret = cmd_trace(fd, path, argc - i - 2, argv + i + 2);
	else {
		usage(stderr);
		ret = 2;
	}
	close(fd);
	return ret;
}
