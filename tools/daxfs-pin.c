/* SPDX-License-Identifier: MIT */
/*
 * daxfs-pin: pin a range of a daxfs file as a device would, show where it lives on the media, run
 * simulated DMA through the pin, and hold it.
 *
 *   daxfs-pin [-w] [-l] [-r] [-O] [-t SECONDS] [-d write|verify|zero] [-T SEQ] [-q] FILE OFFSET LENGTH
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daxfs/libdaxfs.h"
#include "toolutil.h"

static volatile sig_atomic_t done;

static void on_signal(int sig)
{
	(void)sig;
	done = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: daxfs-pin [-w] [-l] [-r] [-O] [-t SECONDS] [-d write|verify|zero] [-T SEQ] [-q] FILE OFFSET LENGTH\n"
		"\n"
		"Pin bytes [OFFSET, OFFSET+LENGTH) of FILE on a daxfs mount, print the media extents, and hold\n"
		"the pin until SECONDS pass or a signal arrives (SIGINT, SIGTERM); then unpin.  While holding,\n"
		"report the file system's events, and behave: unpin on a lease break or revocation, acknowledge\n"
		"an invalidation.\n"
		"\n"
		"  -w        write pin (FILE is opened read-write)\n"
		"  -l        long-term pin (like RDMA registration)\n"
		"  -r        revocable: the holder's device stops when the pin is revoked\n"
		"  -O        on-demand paging: the holder takes invalidate-range events\n"
		"  -t SEC    hold for SEC seconds (default: until signalled; 0: unpin at once)\n"
		"  -d OP     DMA through the pin over its whole range with the daemon's engine, after pinning:\n"
		"            write (tags), verify (count units not holding the tags of SEQ), zero\n"
		"  -T SEQ    sequence number written in (or expected from) the tags (default 1)\n"
		"  -q        print only errors\n"
		"\n"
		"OFFSET and LENGTH take K, M, G suffixes.  Exit: 0, 1 on errors, 3 if verify found mismatches.\n");
}

int main(int argc, char **argv)
{
	uint32_t flags = 0, op = 0;
	double hold = -1;
	uint64_t tag = 1, off, len;
	bool quiet = false;
	int c, rc = 0;

	while ((c = getopt(argc, argv, "wlrOt:d:T:qh")) != -1) {
		switch (c) {
		case 'w': flags |= DAXFS_PIN_WRITE; break;
		case 'l': flags |= DAXFS_PIN_LONGTERM; break;
		case 'r': flags |= DAXFS_PIN_REVOCABLE; break;
		case 'O': flags |= DAXFS_PIN_ODP; break;
		case 't': hold = atof(optarg); break;
		case 'd':
			op = strcmp(optarg, "write") == 0 ? DAXFS_DMA_WRITE_PATTERN
			     : strcmp(optarg, "verify") == 0 ? DAXFS_DMA_VERIFY_PATTERN
			     : strcmp(optarg, "zero") == 0 ? DAXFS_DMA_ZERO : 0;
			if (!op)
				die_usage("daxfs-pin", "-d %s: expected write, verify or zero", optarg);
			break;
		case 'T': tag = strtoull(optarg, NULL, 0); break;
		case 'q': quiet = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (argc - optind != 3 || parse_size(argv[optind + 1], &off) || parse_size(argv[optind + 2], &len)) {
		usage(stderr);
		return 2;
	}
	const char *path = argv[optind];
	int fd = open(path, ((flags & DAXFS_PIN_WRITE) ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	if (fd < 0)
		die("daxfs-pin: %s: %s", path, strerror(errno));

	struct daxfs_pin pin;
	int ret = daxfs_pin(fd, off, len, flags, &pin);
	if (ret)
		die("daxfs-pin: %s: pin [%llu, +%llu): %s", path, (unsigned long long)off, (unsigned long long)len,
		    ret == -ENOTTY ? "not on a daxfs mount" : strerror(-ret));
	if (!quiet) {
		printf("pin %llu: %s bytes [%llu, %llu), %u extents\n", (unsigned long long)pin.id, path,
		       (unsigned long long)pin.offset, (unsigned long long)(pin.offset + pin.length), pin.nextents);
		printf("%16s %16s %14s\n", "FILE OFFSET", "MEDIA OFFSET", "LENGTH");
		for (uint32_t i = 0; i < pin.nextents; i++) {
			if (pin.ext[i].media_off == DAXFS_MEDIA_ZERO)
				printf("%16llu %16s %14llu\n", pin.ext[i].file_off, "(hole)", pin.ext[i].len);
			else
				printf("%16llu %16llu %14llu\n", pin.ext[i].file_off, pin.ext[i].media_off, pin.ext[i].len);
		}
		fflush(stdout);
	}
	if (op) {
		struct daxfs_ioc_dma d = { .op = op, .pin_id = pin.id, .offset = 0, .length = pin.length, .seq = tag };

		ret = daxfs_dma_run(fd, &d);
		if (ret) {
			fprintf(stderr, "daxfs-pin: dma: %s\n", strerror(-ret));
			rc = 1;
		} else if (op == DAXFS_DMA_VERIFY_PATTERN) {
			if (!quiet || d.mismatches)
				printf("verify: %llu of %llu units differ%s", (unsigned long long)d.mismatches,
				       (unsigned long long)(d.done / DAXFS_TAG_UNIT), d.mismatches ? "" : "\n");
			if (d.mismatches) {
				printf(", first at pin offset %llu\n", (unsigned long long)d.first_mismatch);
				rc = 3;
			}
		} else if (!quiet) {
			printf("dma %s: %llu bytes\n", op == DAXFS_DMA_WRITE_PATTERN ? "write" : "zero",
			       (unsigned long long)d.done);
		}
		if (ret == 0 && d.result) {
			/* Stopped part-way (the pin was revoked or invalidated meanwhile): say where. */
			fprintf(stderr, "daxfs-pin: dma stopped after %llu of %llu bytes: %s\n",
				(unsigned long long)d.done, (unsigned long long)d.length, strerror(-d.result));
			rc = rc ? rc : 1;
		}
		fflush(stdout);
	}

	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	struct timespec t0, now;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	uint64_t next_seq = 1;
	bool let_go = false;
	while (!done && hold != 0 && !let_go) {
		struct daxfs_event ev[32];
		uint32_t n = 0;

		/* next_seq is past the events read, not past those that did not fit: none is lost. */
		if (daxfs_events(fd, next_seq, ev, 32, &n, &next_seq) == 0) {
			for (uint32_t i = 0; i < n; i++) {
				if (ev[i].pin_id != pin.id)
					continue;
				if (!quiet) {
					printf("pin %llu: %s", (unsigned long long)pin.id, daxfs_event_str(ev[i].type));
					if (ev[i].type == DAXFS_EV_INVALIDATE)
						printf(" [%llu, +%llu)", ev[i].file_off, ev[i].len);
					if (ev[i].deadline_ns) {
						struct timespec ts;

						clock_gettime(CLOCK_MONOTONIC, &ts);
						uint64_t now_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
						printf(" (%.0f ms left)",
						       ev[i].deadline_ns > now_ns ? (double)(ev[i].deadline_ns - now_ns) / 1e6 : 0.0);
					}
					printf("\n");
					fflush(stdout);
				}
				/* A well-behaved holder: it lets go when told, and stops using what is invalidated. */
				if (ev[i].type == DAXFS_EV_INVALIDATE)
					daxfs_event_ack(fd, pin.id, ev[i].seq);
				else
					let_go = true;
			}
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (hold > 0 && (double)(now.tv_sec - t0.tv_sec) + (double)(now.tv_nsec - t0.tv_nsec) / 1e9 >= hold)
			break;
		if (n < 32)
			usleep(20000);	/* a full page: more may be queued, read on at once */
	}
	ret = daxfs_unpin(fd, pin.id);
	if (ret) {
		fprintf(stderr, "daxfs-pin: unpin %llu: %s\n", (unsigned long long)pin.id, strerror(-ret));
		rc = 1;
	} else if (!quiet) {
		printf("unpinned %llu\n", (unsigned long long)pin.id);
	}
	daxfs_pin_free(&pin);
	close(fd);
	return rc;
}
