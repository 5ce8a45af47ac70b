/* SPDX-License-Identifier: MIT */
/*
 * daxfsctl: look into a mounted daxfs, and set its policy.
 *
 *   daxfsctl [--json] stat|pins|busy|info PATH
 *   daxfsctl [--json] policy PATH [busy|wait|fail|revoke|unsafe|deny-longterm] [pins=allow|deny-longterm]
 *                                 [grace_ms=N] [wait_timeout_ms=N]
 *
 * PATH is the mount point or any file or directory on the mount.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daxfs/libdaxfs.h"
#include "toolutil.h"

static bool json;

static void usage(FILE *f)
{
	fprintf(f,
		"usage: daxfsctl [--json] COMMAND PATH [ARGS]\n"
		"\n"
		"  stat PATH     counters: pins, busy extents, reclaim, policy actions, DMA\n"
		"  pins PATH     every pin: id, inode, range, flags, state, holder pid, age\n"
		"  busy PATH     every busy extent: media range, former inode, state, pin count, age\n"
		"  info PATH     the media: path, size, block size, uuid, whether it is real pmem\n"
		"  policy PATH [POLICY] [pins=allow|deny-longterm] [grace_ms=N] [wait_timeout_ms=N]\n"
		"                show, or change, what truncate does with pinned blocks; POLICY is\n"
		"                busy, wait, fail, revoke, unsafe or deny-longterm\n"
		"\n"
		"  --json        machine-readable output\n");
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

static int cmd_stat(int fd, const char *path)
{
	struct daxfs_ioc_stats s;
	struct daxfs_ioc_policy p;

	check(daxfs_stats(fd, &s), "stats", path);
	check(daxfs_policy_get(fd, &p), "policy", path);
	double avg = s.reclaimed_extents ? ms(s.reclaim_latency_ns_total) / (double)s.reclaimed_extents : 0;
	if (json) {
		printf("{\"policy\":\"%s\",\"admission\":\"%s\",\"blocks\":%llu,\"free_blocks\":%llu,"
		       "\"pins_active\":%llu,\"pins_created\":%llu,\"pins_released\":%llu,\"pins_revoked\":%llu,"
		       "\"pins_refused\":%llu,\"pinned_blocks\":%llu,\"busy_extents\":%llu,\"busy_blocks\":%llu,"
		       "\"busy_created\":%llu,\"reclaim_queued\":%llu,\"reclaimed_extents\":%llu,"
		       "\"reclaimed_blocks\":%llu,\"reclaim_latency_ms_avg\":%.3f,\"reclaim_latency_ms_max\":%.3f,"
		       "\"frees_waited\":%llu,\"free_wait_ms_total\":%.3f,\"frees_failed\":%llu,\"unsafe_frees\":%llu,"
		       "\"unsafe_blocks\":%llu,\"dma_ops\":%llu,\"dma_bytes\":%llu,\"enospc_waits\":%llu}\n",
		       daxfs_policy_str(p.policy), daxfs_admission_str(p.admission), s.blocks, s.free_blocks,
		       s.pins_active, s.pins_created, s.pins_released, s.pins_revoked, s.pins_refused, s.pinned_blocks,
		       s.busy_extents, s.busy_blocks, s.busy_created, s.reclaim_queued, s.reclaimed_extents,
		       s.reclaimed_blocks, avg, ms(s.reclaim_latency_ns_max), s.frees_waited, ms(s.free_wait_ns_total),
		       s.frees_failed, s.unsafe_frees, s.unsafe_blocks, s.dma_ops, s.dma_bytes, s.enospc_waits);
		return 0;
	}
	printf("policy          %s (pins: %s)\n", daxfs_policy_str(p.policy), daxfs_admission_str(p.admission));
	printf("space           %llu blocks, %llu free\n", s.blocks, s.free_blocks);
	printf("pins            %llu active, %llu created, %llu released, %llu revoked, %llu refused\n",
	       s.pins_active, s.pins_created, s.pins_released, s.pins_revoked, s.pins_refused);
	printf("pinned blocks   %llu\n", s.pinned_blocks);
	printf("busy            %llu extents, %llu blocks (%llu made busy so far)\n", s.busy_extents, s.busy_blocks,
	       s.busy_created);
	printf("reclaim         %llu queued; %llu extents, %llu blocks reclaimed; latency avg %.3f ms, max %.3f ms\n",
	       s.reclaim_queued, s.reclaimed_extents, s.reclaimed_blocks, avg, ms(s.reclaim_latency_ns_max));
	printf("waits           %llu frees waited (%.3f ms in all), %llu refused with EBUSY\n", s.frees_waited,
	       ms(s.free_wait_ns_total), s.frees_failed);
	printf("unsafe          %llu frees of pinned blocks (%llu blocks)\n", s.unsafe_frees, s.unsafe_blocks);
	printf("dma             %llu operations, %llu bytes\n", s.dma_ops, s.dma_bytes);
	printf("enospc waits    %llu\n", s.enospc_waits);
	return 0;
}

static void flags_str(uint32_t f, char *out)
{
	snprintf(out, 8, "%c%c", f & DAXFS_PIN_WRITE ? 'w' : 'r', f & DAXFS_PIN_LONGTERM ? 'L' : '-');
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
			       "\"pid\":%d,\"extents\":%u,\"age_ms\":%.3f}",
			       i ? "," : "", v[i].pin_id, v[i].ino, v[i].offset, v[i].length, v[i].flags,
			       daxfs_pin_state_str(v[i].state), v[i].pid, v[i].nextents, ms(v[i].age_ns));
		printf("]\n");
	} else {
		printf("%8s %10s %14s %14s %5s %9s %8s %7s %10s\n", "ID", "INODE", "OFFSET", "LENGTH", "FLAGS", "STATE",
		       "PID", "EXTENTS", "AGE(s)");
		for (uint32_t i = 0; i < n; i++) {
			char f[8];

			flags_str(v[i].flags, f);
			printf("%8llu %10llu %14llu %14llu %5s %9s %8d %7u %10.3f\n", v[i].pin_id, v[i].ino, v[i].offset,
			       v[i].length, f, daxfs_pin_state_str(v[i].state), v[i].pid, v[i].nextents,
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

static int cmd_policy(int fd, const char *path, int argc, char **argv)
{
	struct daxfs_ioc_policy p;

	check(daxfs_policy_get(fd, &p), "policy", path);
	if (argc > 0) {
		for (int i = 0; i < argc; i++) {
			uint64_t v;

			if (strncmp(argv[i], "pins=", 5) == 0) {
				if (strcmp(argv[i] + 5, "allow") == 0)
					p.admission = DAXFS_ADMIT_ALL;
				else if (strcmp(argv[i] + 5, "deny-longterm") == 0)
					p.admission = DAXFS_ADMIT_DENY_LONGTERM;
				else
					die_usage("daxfsctl", "pins=%s: expected allow or deny-longterm", argv[i] + 5);
			} else if (strncmp(argv[i], "grace_ms=", 9) == 0 && parse_size(argv[i] + 9, &v) == 0) {
				p.grace_ms = v;
			} else if (strncmp(argv[i], "wait_timeout_ms=", 16) == 0 && parse_size(argv[i] + 16, &v) == 0) {
				p.wait_timeout_ms = v;
			} else if (strcmp(argv[i], "deny-longterm") == 0) {
				p.policy = DAXFS_POLICY_WAIT;
				p.admission = DAXFS_ADMIT_DENY_LONGTERM;
			} else {
				uint32_t k;

				for (k = DAXFS_POLICY_BUSY; k <= DAXFS_POLICY_UNSAFE; k++)
					if (strcmp(argv[i], daxfs_policy_str(k)) == 0)
						break;
				if (k > DAXFS_POLICY_UNSAFE)
					die_usage("daxfsctl", "unknown policy setting '%s'", argv[i]);
				p.policy = k;
			}
		}
		check(daxfs_policy_set(fd, p.policy, p.admission, p.grace_ms, p.wait_timeout_ms), "set policy", path);
		check(daxfs_policy_get(fd, &p), "policy", path);
	}
	if (json)
		printf("{\"policy\":\"%s\",\"admission\":\"%s\",\"grace_ms\":%llu,\"wait_timeout_ms\":%llu}\n",
		       daxfs_policy_str(p.policy), daxfs_admission_str(p.admission), p.grace_ms, p.wait_timeout_ms);
	else
		printf("policy %s, pins %s, grace_ms %llu, wait_timeout_ms %llu\n", daxfs_policy_str(p.policy),
		       daxfs_admission_str(p.admission), p.grace_ms, p.wait_timeout_ms);
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
	else if (strcmp(cmd, "policy") == 0)
		ret = cmd_policy(fd, path, argc - i - 2, argv + i + 2);
	else {
		usage(stderr);
		ret = 2;
	}
	close(fd);
	return ret;
}
