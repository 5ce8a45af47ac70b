/* SPDX-License-Identifier: MIT */
/*
 * daxfs-lab: the policy comparison.  A scenario runs against a freshly formatted and mounted image
 * with the simulated RDMA device (daxfs/device.h) pinning and writing, while other processes cut
 * and fill files; the detector (daxfs/detect.h) and the daemon's event trace then say what it cost:
 * corruption, latency, errors, busy space, deadlocks.  One scenario under one policy is a run; its
 * outcome is a struct lab_result, a row of the results table.
 *
 * Modules, lowest first (each calls only those before it):
 *   stats.c      latency samples and percentiles, errno tallies, time
 *   trace_read.c what a run's event trace says (busy bytes, reclaim latency, events)
 *   env.c        the programs (mkfs, daemon, fsck), an image, its mount, and cleaning up after it
 *   pump.c       a DMA stream: one registration written at a set rate by the device
 *   scen_util.c  what scenarios share: the device, files, writers that need space, recording
 *   scen_*.c     the scenarios
 *   run.c        one run: format, mount, scenario, detector, unmount, fsck, in a supervised child
 *   report.c     the table, CSV and JSON
 *   main.c       the command line
 */
#ifndef DAXFS_LAB_H
#define DAXFS_LAB_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "daxfs/device.h"

#define LAB_MiB (1024ull * 1024)

/* ---- stats.c ---- */

uint64_t lab_now_ns(void);
/* Copy src into dst[len], cut short if it does not fit (names and messages only). */
void lab_strlcpy(char *dst, size_t len, const char *src);
/* Sleep for ns (a driver's pacing, never a test's synchronisation). */
void lab_sleep_ns(uint64_t ns);

/* Latency samples (ns); grows as needed.  Not locked: one writer, or the caller locks. */
struct lab_samples {
	uint64_t *v;
	size_t n, cap;
};
void lab_samples_add(struct lab_samples *s, uint64_t ns);
void lab_samples_free(struct lab_samples *s);

/* What the table shows of a set of samples. */
struct lab_lat {
	uint64_t n;
	uint64_t p50, p99, max;		/* ns */
};
/* Sorts s. */
struct lab_lat lab_samples_summary(struct lab_samples *s);

/* Errors by errno: the most frequent first when printed. */
#define LAB_ERRNOS 6
struct lab_errs {
	uint32_t n;
	struct {
		int32_t err;		/* positive errno */
		uint32_t count;
	} e[LAB_ERRNOS];
	uint32_t other;			/* errors past LAB_ERRNOS kinds */
};
/* Count one error (err > 0; a negative errno is turned around). */
void lab_errs_add(struct lab_errs *e, int err, uint32_t count);
void lab_errs_merge(struct lab_errs *to, const struct lab_errs *from);
uint64_t lab_errs_total(const struct lab_errs *e);
/* "EBUSY:3 ENOSPC:1" or "-"; returns buf. */
const char *lab_errs_str(const struct lab_errs *e, char *buf, size_t len);
/* "EBUSY", or the number. */
const char *lab_errno_name(int err);

/* ---- trace_read.c ---- */

/* What a trace says about a run (all times CLOCK_MONOTONIC ns, as the trace's "t"). */
struct lab_trace_sum {
	uint64_t records;
	uint64_t bad_lines;		/* lines that are not a record */
	uint64_t first_ns, last_ns;
	uint64_t busy_now;		/* busy_add minus reclaim, at the end */
	uint64_t busy_added, reclaimed;	/* bytes of every busy_add, of every reclaim */
	uint64_t busy_peak;
	double busy_byte_s;		/* integral of busy bytes over time */
	struct lab_samples reclaim;	/* "latency" of each reclaim record */
	uint64_t enospc_waits, enospc_wait_ns, enospc_failed;
	uint64_t pins, unpins, lease_breaks, revokes, invalidates, invalidate_acks, refaults, unsafe_frees;
	uint64_t unpaired_pins;		/* pins with no unpin record */
};
/*
 * Read the trace at path.  until_ns bounds the byte-second integral (0: the last record).  0, or
 * -errno when it cannot be read.  Free with lab_trace_sum_free.
 */
int lab_trace_read(const char *path, uint64_t until_ns, struct lab_trace_sum *sum);
void lab_trace_sum_free(struct lab_trace_sum *sum);

/* ---- env.c ---- */

/* Where the programs are: the build tree's when daxfs-lab runs from it, else the installed ones. */
struct lab_bins {
	char daemon[512];
	char mkfs[512];
	char fsck[512];
	char plot[512];			/* daxfs-lab-plot */
};
/* Find them (DAXFS_BIN, MKFS_BIN, FSCK_BIN, DAXFS_LAB_PLOT override).  0 or -ENOENT with a message. */
int lab_bins_find(struct lab_bins *b, char *msg, size_t msglen);

struct lab_mount {
	char image[256];
	char dir[256];			/* the mount point */
	char log[512];			/* the daemon's stderr */
	pid_t daemon;
	int fd;				/* the mount's root, open */
	bool mounted;
};
/* Turn a policy spec "NAME[:k=v,...]" into the daemon's "policy=NAME,k=v,...".  0 or -EINVAL. */
int lab_policy_opts(const char *spec, char *out, size_t len);
/* mkfs.daxfs -q -s size image.  0, or -1 with msg. */
int lab_mkfs(const struct lab_bins *b, const char *image, uint64_t size, char *msg, size_t msglen);
/* Start the daemon in the foreground with -o opts and wait (with a deadline) until it serves.  0 or -1 with msg. */
int lab_mount(const struct lab_bins *b, struct lab_mount *m, const char *opts, char *msg, size_t msglen);
/* Unmount (retrying while busy, with a deadline) and reap the daemon; it is killed if it will not go.  0 clean. */
int lab_umount(struct lab_mount *m, char *msg, size_t msglen);
/* fsck.daxfs -n image; its exit status (0 clean), output into log.  -1 when it could not run. */
int lab_fsck(const struct lab_bins *b, const char *image, const char *log);
/* Whatever is left of a run whose process died: detach the mount, remove it and the image. */
void lab_env_scrub(const char *image, const char *dir);
/*
 * What labs that were killed outright (kill -9) left: images /dev/shm/daxfs-lab-PID-* and mount
 * points /tmp/daxfs-lab-PID.* of processes that no longer exist.
 */
void lab_env_scrub_stale(void);

/* ---- pump.c ---- */

/*
 * A DMA stream: a thread posting WRITEs over one registration, `depth` in flight, at `rate` bytes
 * per second (0: as fast as it goes), cycling through it.  It stops when told, or when the device
 * lost the registration or a completion failed (an application stops using a buffer that errs).
 */
struct lab_pump {
	struct daxfs_dev *dev;
	struct daxfs_mr *mr;
	uint64_t rate;			/* bytes per second */
	uint32_t wr_size;
	uint32_t depth;
	/* results, read after lab_pump_stop */
	uint64_t bytes;			/* completed */
	uint64_t wrs;
	struct lab_errs errs;		/* refused posts and failed completions */
	bool lost;			/* the device let go of the registration */
	/* private */
	pthread_t thread;
	bool running;
	int stop;			/* atomic */
	uint64_t completed;		/* atomic: completions so far */
	uint64_t *bins;			/* optional: bytes completed per bin_ns since t0 */
	uint32_t nbins;
	uint64_t bin_ns, t0;
};
/* Start the stream (p's dev, mr, rate, wr_size, depth set).  0 or -errno. */
int lab_pump_start(struct lab_pump *p);
/* Wait until it completed n requests or stopped, up to timeout_ms.  True when it got there. */
bool lab_pump_wait_completed(struct lab_pump *p, uint64_t n, uint32_t timeout_ms);
/* Stop posting, wait for what is in flight, join.  Idempotent. */
void lab_pump_stop(struct lab_pump *p);

/* ---- scenarios ---- */

/* A scenario's options: every size, rate and duration it uses. */
struct lab_params {
	uint64_t image_size;		/* --image-size */
	uint64_t file_size;		/* --file-size: the registered file */
	uint64_t rate;			/* --rate: device bytes per second per registration */
	uint32_t wr_size;		/* --wr-size */
	uint32_t depth;			/* --depth */
	uint32_t hold_ms;		/* --hold: the holder keeps its registration this long after the cut */
	uint32_t rounds;		/* --rounds: cuts per run */
	uint32_t duration_ms;		/* --duration: churn */
	uint32_t clients;		/* --clients: registrations (enospc), pinning threads (churn) */
	uint32_t writers;		/* --writers */
	uint32_t deadlock_ms;		/* --deadlock-timeout: gup-vs-punch */
	uint32_t fill_pct;		/* --fill: share of the data area the registrations hold (enospc) */
	uint32_t pin_flags;		/* DAXFS_PIN_* the device registers with (--pin-flags) */
	enum daxfs_dev_behaviour behaviour;	/* --device (the scenario may override) */
	uint32_t slow_ms;
	uint32_t seed;
};
void lab_params_default(struct lab_params *p);

struct lab_result;

/* What a scenario works with. */
struct lab_ctx {
	const struct lab_params *p;
	const char *mnt;		/* the mount point */
	int mnt_fd;
	const char *run_dir;		/* where its files go (ops.csv, timeline.csv) */
	struct lab_result *r;
	FILE *ops;			/* ops.csv: kind,start_ns,latency_ns,errno */
	char policy[64];		/* the policy in force (its name) */
	pthread_mutex_t lock;		/* ops, cut, r's counters: scenarios record from many threads */
	struct lab_samples cut;		/* cut latencies, summarised into r->cut at the end */
};

struct lab_scenario {
	const char *name;
	const char *summary;
	int (*run)(struct lab_ctx *c);	/* 0, or -1 with r->note saying why it could not run */
};

/* ---- scen_util.c: what the scenarios share ---- */

/* Open a device on the mount with the scenario's behaviour.  0 or -1 with r->note. */
int lab_dev_open(struct lab_ctx *c, enum daxfs_dev_behaviour b, struct daxfs_dev **dev);
/* Write len bytes of a pattern to path (created, or truncated).  0 or -errno. */
int lab_write_file(const char *path, uint64_t len, int fill);
/* Fill the file system up to `leave` bytes free with a ballast file at path.  Bytes written, or -errno. */
int64_t lab_fill_to(struct lab_ctx *c, const char *path, uint64_t leave);
/* The daemon's requests waiting for the policy now. */
uint64_t lab_waiting(struct lab_ctx *c);
/* Record one operation: ops.csv, and the cut latencies and errors of the result. */
void lab_op(struct lab_ctx *c, const char *kind, uint64_t start_ns, uint64_t lat_ns, int err, bool cut);
/* Count a device error (reg refusals, post refusals, failed completions). */
void lab_dev_err(struct lab_ctx *c, int err, uint32_t n);
void lab_note(struct lab_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same into r->info: figures the table has no column for. */
void lab_info(struct lab_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * A writer that needs space: writes len bytes into path in chunks, retrying a chunk that fails with
 * ENOSPC every 5 ms until it succeeds or deadline_ns.  Counts its ENOSPC failures and the time it
 * spent stalled: in failed writes, between retries, and in writes that took over 5 ms (they waited
 * in the daemon for space being reclaimed).
 */
struct lab_writer {
	const char *path;
	uint64_t len;
	uint64_t deadline_ns;
	uint64_t *bins;			/* optional timeline: bytes written per bin_ns since t0 */
	uint32_t nbins;
	uint64_t bin_ns, t0;
	/* results */
	uint64_t written;
	uint64_t enospc;
	uint64_t stall_ns;
	int err;			/* a failure other than ENOSPC, or ENOSPC at the deadline */
	int done;			/* atomic */
};
void *lab_writer_main(void *arg);

/* A cut: one truncate (to to_size), hole punch ([off, off + len) of fd), unlink or O_TRUNC open, timed and recorded. */
enum lab_cut_kind { LAB_CUT_TRUNCATE, LAB_CUT_PUNCH, LAB_CUT_UNLINK, LAB_CUT_OTRUNC };
struct lab_cut {
	struct lab_ctx *c;
	enum lab_cut_kind kind;
	const char *path;
	int fd;
	uint64_t off, len;
	uint64_t to_size;
	/* results */
	uint64_t start_ns, lat_ns;
	int err;
	int done;			/* atomic */
};
void *lab_cut_main(void *arg);
const char *lab_cut_name(enum lab_cut_kind k);
/* Wait until *flag is set, up to timeout_ms: whether it was. */
bool lab_wait_flag(const int *flag, uint32_t timeout_ms);

/* ---- results ---- */

#define LAB_NOTE_MAX 640

struct lab_result {
	char scenario[32];
	char policy[80];		/* the name it runs under (a loaded object's own name) */
	char spec[256];			/* as given: NAME[:k=v,...] or PATH.so[:k=v,...] */
	char status[16];		/* "ok", "error", "timeout", "crashed" */
	char note[LAB_NOTE_MAX];	/* refusals, deadlock chains, what went wrong */
	char info[192];			/* what else the run measured (B's latency, registrations made) */
	uint64_t stray_units;		/* 64-byte units the detector found where they do not belong */
	uint64_t stray_runs;
	uint64_t tags_seen;
	char stray_first[192];		/* the first: where, from which pin, why */
	struct lab_lat cut;		/* truncate/punch/unlink/O_TRUNC latency */
	struct lab_errs cut_errs;	/* errors the cutting processes saw */
	struct lab_errs dev_errs;	/* errors the device saw */
	uint64_t dev_bytes;
	uint64_t writer_bytes;
	uint64_t busy_peak;
	double busy_byte_s;
	struct lab_lat reclaim;		/* last unpin to space back */
	uint64_t enospc;		/* writes that failed with ENOSPC */
	uint64_t writer_stall_ns;	/* writers' time stalled for space */
	uint64_t enospc_waits;		/* the daemon's allocation waits for reclaim */
	uint32_t deadlocks;
	int32_t fsck;			/* fsck.daxfs -n exit status; -1 not run */
	uint64_t lease_breaks, revokes, invalidates, acks, refaults, unsafe_frees;
	uint64_t duration_ns;
	uint64_t trace_records;
	char dir[512];			/* the run's files */
};

/* ---- run.c ---- */

struct lab_run_opts {
	const struct lab_bins *bins;
	const struct lab_params *params;
	const char *out_dir;		/* the run's files go to out_dir (created) */
	const char *mount_opts;		/* extra daemon -o options, or NULL */
	uint32_t timeout_s;		/* the whole run, before it is killed */
	bool keep_image;
};
/*
 * Run one scenario under one policy spec in a child process: format, mount with the policy and a
 * trace, run, stop the device, scan, unmount, fsck.  Fills r (status "ok" when it ran to the end).
 * Returns 0 when r is filled, -1 when nothing could be started.
 */
int lab_run(const struct lab_scenario *s, const char *policy_spec, const struct lab_run_opts *o,
	    struct lab_result *r);
/* SIGINT, SIGTERM or SIGHUP came: the run in progress was killed (and cleaned up); stop. */
bool lab_interrupted(void);

/* ---- report.c ---- */

void lab_report_table(FILE *f, const struct lab_result *r, unsigned n);
void lab_report_csv(FILE *f, const struct lab_result *r, unsigned n);
void lab_report_json(FILE *f, const struct lab_result *r, unsigned n, const struct lab_params *p);
/* One result as a JSON object (one line). */
void lab_report_json_row(FILE *f, const struct lab_result *r);

#endif
