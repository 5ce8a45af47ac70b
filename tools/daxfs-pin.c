/* SPDX-License-Identifier: MIT */
/*
 * daxfs-pin: pin a range of a daxfs file as a device would, show where it lives on the media, run
 * simulated DMA through the pin, and hold it.
 *
 *   daxfs-pin [-w] [-l] [-r] [-O] [-t SECONDS] [-d write|verify|zero] [-T SEQ] [-q] [-j] FILE OFFSET LENGTH
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
static bool json;

static void on_signal(int sig)
{
	(void)sig;
	done = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: daxfs-pin [-w] [-l] [-r] [-O] [-t SECONDS] [-d write|verify|zero] [-T SEQ] [-q] [-j]\n"
		"                 FILE OFFSET LENGTH\n"
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
		"  -j, --json\n"
		"            machine-readable output, one JSON object per line as it happens: the pin with its\n"
		"            extents, the DMA result, each event, the unpin (errors stay text on stderr)\n"
		"\n"
		"OFFSET and LENGTH take K, M, G suffixes.  Exit: 0, 1 on errors, 3 if verify found mismatches.\n");
}

static double ms_left(uint64_t deadline_ns)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	uint64_t now_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	return deadline_ns > now_ns ? (double)(deadline_ns - now_ns) / 1e6 : 0.0;
}

static void print_pin(const char *path, const struct daxfs_pin *pin, uint32_t flags)
{
	if (json) {
		printf("{\"ev\":\"pin\",\"pin\":%llu,\"file\":", (unsigned long long)pin->id);
		json_str(stdout, path);
		printf(",\"offset\":%llu,\"length\":%llu,\"flags\":%u,\"gen\":%u,\"extents\":%u,\"map\":[",
		       (unsigned long long)pin->offset, (unsigned long long)pin->length, flags, pin->gen, pin->nextents);
		for (uint32_t i = 0; i < pin->nextents; i++) {
			const struct daxfs_pin_extent *e = &pin->ext[i];

			printf("%s{\"file_off\":%llu,\"media_off\":", i ? "," : "", (unsigned long long)e->file_off);
			if (e->media_off == DAXFS_MEDIA_ZERO)
				printf("null");
			else
				printf("%llu", (unsigned long long)e->media_off);
			printf(",\"len\":%llu}", (unsigned long long)e->len);
		}
		printf("]}\n");
		return;
	}
	printf("pin %llu: %s bytes [%llu, %llu), %u extents\n", (unsigned long long)pin->id, path,
	       (unsigned long long)pin->offset, (unsigned long long)(pin->offset + pin->length), pin->nextents);
	printf("%16s %16s %14s\n", "FILE OFFSET", "MEDIA OFFSET", "LENGTH");
	for (uint32_t i = 0; i < pin->nextents; i++) {
		if (pin->ext[i].media_off == DAXFS_MEDIA_ZERO)
			printf("%16llu %16s %14llu\n", pin->ext[i].file_off, "(hole)", pin->ext[i].len);
		else
			printf("%16llu %16llu %14llu\n", pin->ext[i].file_off, pin->ext[i].media_off, pin->ext[i].len);
	}
}

/* What DMA through the pin did: op's name, and for verify the units that differ and the first. */
/* What a DMA did: the bytes it covered; for a verify, the units of them that differ. */
static void print_dma(const struct daxfs_pin *pin, uint32_t op, uint64_t bytes, uint64_t mism, uint64_t first)
{
	const char *name = op == DAXFS_DMA_WRITE_PATTERN ? "write" : op == DAXFS_DMA_ZERO ? "zero" : "verify";
	uint64_t units = bytes / DAXFS_TAG_UNIT;

	if (json) {
		printf("{\"ev\":\"dma\",\"pin\":%llu,\"op\":\"%s\",\"bytes\":%llu", (unsigned long long)pin->id, name,
		       (unsigned long long)bytes);
		if (op == DAXFS_DMA_VERIFY_PATTERN) {
			printf(",\"units\":%llu,\"mismatches\":%llu,\"first\":", (unsigned long long)units,
			       (unsigned long long)mism);
			if (mism)
				printf("%llu", (unsigned long long)first);
			else
				printf("null");
		}
		printf("}\n");
	} else if (op == DAXFS_DMA_VERIFY_PATTERN) {
		printf("verify: %llu of %llu units differ", (unsigned long long)mism, (unsigned long long)units);
		if (mism)
			printf(", first at pin offset %llu", (unsigned long long)first);
		printf("\n");
	} else {
		printf("dma %s: %llu bytes\n", name, (unsigned long long)bytes);
	}
}

/* An event about the pin, and what the holder does about it (ack or unpin). */
static void print_event(const struct daxfs_event *ev, const char *action)
{
	if (json) {
		printf("{\"ev\":\"event\",\"pin\":%llu,\"type\":\"%s\",\"seq\":%llu,\"file_off\":%llu,\"len\":%llu,"
		       "\"deadline_ms\":",
		       (unsigned long long)ev->pin_id, daxfs_event_str(ev->type), (unsigned long long)ev->seq,
		       (unsigned long long)ev->file_off, (unsigned long long)ev->len);
		if (ev->deadline_ns)
			printf("%.3f", ms_left(ev->deadline_ns));
		else
			printf("null");
		printf(",\"action\":\"%s\"}\n", action);
		return;
	}
	printf("pin %llu: %s", (unsigned long long)ev->pin_id, daxfs_event_str(ev->type));
	if (ev->type == DAXFS_EV_INVALIDATE)
		printf(" [%llu, +%llu)", (unsigned long long)ev->file_off, (unsigned long long)ev->len);
	if (ev->deadline_ns)
		printf(" (%.0f ms left)", ms_left(ev->deadline_ns));
	printf("\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	uint32_t flags = 0, op = 0;
	double hold = -1;
	uint64_t tag = 1, off, len;
	bool quiet = false;
	int c, rc = 0;

	while ((c = getopt_long(argc, argv, "wlrOt:d:T:qjh", opts, NULL)) != -1) {
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
		case 'j': json = true; break;
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
		print_pin(path, &pin, flags);
		fflush(stdout);
	}
	if (op) {
		struct daxfs_ioc_dma d = { .op = op, .pin_id = pin.id, .offset = 0, .length = pin.length, .seq = tag };

		ret = daxfs_dma_run(fd, &d);
		if (ret) {
			fprintf(stderr, "daxfs-pin: dma: %s\n", strerror(-ret));
			rc = 1;
		} else {
			if (!quiet || d.mismatches)
				print_dma(&pin, op, d.done, d.mismatches, d.first_mismatch);
			if (d.mismatches)
				rc = 3;
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
	const char *why = "time";	/* what ended the hold: -t, a signal, or the event that told it to let go */
	while (!done && hold != 0 && !let_go) {
		struct daxfs_event ev[32];
		uint32_t n = 0;

		/* next_seq is past the events read, not past those that did not fit: none is lost. */
		int eret = daxfs_events(fd, next_seq, ev, 32, &n, &next_seq);
		if (eret && eret != -EINTR) {
			/* The mount is gone (ENOTCONN after the daemon died) or refuses us: holding means nothing. */
			fprintf(stderr, "daxfs-pin: reading events: %s\n", strerror(-eret));
			rc = 1;
			break;
		}
		if (eret == 0) {
			for (uint32_t i = 0; i < n; i++) {
				if (ev[i].pin_id != pin.id)
					continue;
				bool ack = ev[i].type == DAXFS_EV_INVALIDATE;

				if (!quiet) {
					print_event(&ev[i], ack ? "ack" : "unpin");
					fflush(stdout);
				}
				/* A well-behaved holder: it lets go when told, and stops using what is invalidated. */
				if (ack) {
					int aret = daxfs_event_ack(fd, pin.id, ev[i].seq);

					if (aret) {
						fprintf(stderr, "daxfs-pin: acknowledging invalidation %llu: %s\n",
							(unsigned long long)ev[i].seq, strerror(-aret));
						rc = 1;
					}
				} else if (!let_go) {
					let_go = true;
					why = daxfs_event_str(ev[i].type);
				}
			}
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (hold > 0 && (double)(now.tv_sec - t0.tv_sec) + (double)(now.tv_nsec - t0.tv_nsec) / 1e9 >= hold)
			break;
		if (n < 32)
			usleep(20000);	/* a full page: more may be queued, read on at once */
	}
	if (done && !let_go)
		why = "signal";
	clock_gettime(CLOCK_MONOTONIC, &now);
	ret = daxfs_unpin(fd, pin.id);
	if (ret) {
		fprintf(stderr, "daxfs-pin: unpin %llu: %s\n", (unsigned long long)pin.id, strerror(-ret));
		rc = 1;
	} else if (json && !quiet) {
		printf("{\"ev\":\"unpin\",\"pin\":%llu,\"reason\":\"%s\",\"held_ms\":%.3f}\n", (unsigned long long)pin.id,
		       why, (double)(now.tv_sec - t0.tv_sec) * 1e3 + (double)(now.tv_nsec - t0.tv_nsec) / 1e6);
	} else if (!quiet) {
		printf("unpinned %llu\n", (unsigned long long)pin.id);
	}
	daxfs_pin_free(&pin);
	close(fd);
	return rc;
}
