/* SPDX-License-Identifier: MIT */
/*
 * One run: a scenario under a policy, from a fresh image to fsck, in a child process of its own
 * process group (the daemon in it too), so that a run that hangs or crashes is killed whole and
 * cleaned up after by the parent, and the next run starts clean.
 */
#include "lab.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daxfs/detect.h"
#include "daxfs/libdaxfs.h"

/* The run in progress, for the signal handler: it takes the whole run group down with the lab. */
static volatile pid_t running_child;
static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	pid_t c = running_child;

	interrupted = sig;
	if (c > 0)
		kill(-c, SIGKILL);
}

bool lab_interrupted(void)
{
	return interrupted != 0;
}

static void catch_signals(void)
{
	static bool done;
	struct sigaction sa = { .sa_handler = on_signal };

	if (done)
		return;
	done = true;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

static void describe_stray(const struct daxfs_stray *s, char *buf, size_t len)
{
	snprintf(buf, len, "%s@%llu+%llu: pin %llu (ino %llu, %s)", s->path, (unsigned long long)s->file_off,
		 (unsigned long long)s->len, (unsigned long long)s->tag.pin_id, (unsigned long long)s->tag.ino,
		 daxfs_stray_str(s->reason));
}

/* What the detector finds, into r and strays.txt. */
static void scan(struct lab_ctx *c, const char *mnt, const char *trace, const char *out_dir)
{
	struct daxfs_scan_opts so = { .trace = trace, .max_strays = 1000 };
	struct daxfs_scan_report rep;
	char path[700];
	int ret = daxfs_scan(mnt, &so, &rep);

	if (ret) {
		lab_note(c, "the detector could not run: %s (%s)", strerror(-ret), rep.first_error);
		c->r->stray_units = UINT64_MAX;
		return;
	}
	c->r->stray_units = rep.stray;
	c->r->stray_runs = rep.nstrays;
	c->r->tags_seen = rep.tags;
	if (rep.errors)
		lab_note(c, "the detector could not read %llu files or ranges: %s", (unsigned long long)rep.errors,
			 rep.first_error);
	if (rep.nstrays)
		describe_stray(&rep.strays[0], c->r->stray_first, sizeof(c->r->stray_first));
	snprintf(path, sizeof(path), "%s/strays.txt", out_dir);
	FILE *f = fopen(path, "w");
	if (f) {
		for (uint32_t i = 0; i < rep.nstrays; i++) {
			char d[600];

			describe_stray(&rep.strays[i], d, sizeof(d));
			fprintf(f, "%s seq %llu-%llu\n", d, (unsigned long long)rep.strays[i].seq_min,
				(unsigned long long)rep.strays[i].seq_max);
		}
		if (rep.truncated)
			fprintf(f, "(more runs left out)\n");
		fclose(f);
	}
	daxfs_scan_free(&rep);
}

/*
 * Wait (up to 10 s) until nothing is being reclaimed or waiting, so that the counters read now are
 * the ones the trace ends with.  True when it settled; *st the counters then.
 */
static bool settle(int fd, struct daxfs_ioc_stats *st)
{
	uint64_t deadline = lab_now_ns() + 10000000000ull;

	for (;;) {
		if (daxfs_stats(fd, st))
			return false;
		if (st->reclaim_queued == 0 && st->waiting == 0)
			return true;
		if (lab_now_ns() > deadline)
			return false;
		nanosleep(&(struct timespec){ .tv_nsec = 1000000 }, NULL);
	}
}

static bool same_counts(const struct daxfs_ioc_stats *a, const struct daxfs_ioc_stats *b)
{
	return a->busy_blocks == b->busy_blocks && a->reclaimed_blocks == b->reclaimed_blocks &&
	       a->pins_created == b->pins_created && a->pins_released == b->pins_released &&
	       a->invalidations == b->invalidations && a->invalidations_acked == b->invalidations_acked;
}

/* Busy bytes, reclaim, pins and invalidations recomputed from the trace match the daemon's counters. */
static void check_counters(struct lab_ctx *c, int fd, const struct lab_trace_sum *ts, const struct daxfs_ioc_stats *st)
{
	struct daxfs_ioc_info info;
	char why[400] = "";
	size_t n = 0;

	if (daxfs_info(fd, &info))
		return;
	uint64_t bs = info.block_size;
#define DISAGREE(what, traced, counted)                                                                       \
	do {                                                                                                  \
		if ((uint64_t)(traced) != (uint64_t)(counted) && n < sizeof(why))                             \
			n += (size_t)snprintf(why + n, sizeof(why) - n, " %s %llu in the trace, %llu counted;", \
					      what, (unsigned long long)(traced), (unsigned long long)(counted)); \
	} while (0)
	DISAGREE("busy bytes", ts->busy_added - ts->reclaimed, st->busy_blocks * bs);
	DISAGREE("reclaimed bytes", ts->reclaimed, st->reclaimed_blocks * bs);
	DISAGREE("pins", ts->pins, st->pins_created);
	DISAGREE("unpins", ts->unpins, st->pins_released);
	DISAGREE("invalidations", ts->invalidates, st->invalidations);
	DISAGREE("acknowledgements", ts->invalidate_acks, st->invalidations_acked);
#undef DISAGREE
	if (n)
		lab_note(c, "trace and counters disagree:%s", why);
}

static void run_child(const struct lab_scenario *s, const char *spec, const struct lab_run_opts *o,
		      const char *image, const char *dir, struct lab_result *r)
{
	const struct lab_params *p = o->params;
	struct lab_mount m = { 0 };
	struct lab_ctx c = { .p = p, .mnt = dir, .run_dir = o->out_dir, .r = r };
	char opts[2048], trace[700], ops[700], msg[512] = "";
	struct daxfs_ioc_policy pol;

	pthread_mutex_init(&c.lock, NULL);
	snprintf(m.image, sizeof(m.image), "%s", image);
	snprintf(m.dir, sizeof(m.dir), "%s", dir);
	snprintf(m.log, sizeof(m.log), "%s/daemon.log", o->out_dir);
	snprintf(trace, sizeof(trace), "%s/trace.jsonl", o->out_dir);
	unlink(m.log);
	if (lab_mkfs(o->bins, image, p->image_size, msg, sizeof(msg))) {
		lab_note(&c, "%s", msg);
		return;
	}
	int n = 0;
	if (lab_policy_opts(spec, opts, sizeof(opts)) == 0)
		n = (int)strlen(opts);
	else
		lab_note(&c, "bad policy spec %s", spec);
	snprintf(opts + n, sizeof(opts) - (size_t)n, "%strace=%s%s%s", n ? "," : "", trace,
		 o->mount_opts && *o->mount_opts ? "," : "", o->mount_opts ? o->mount_opts : "");
	if (lab_mount(o->bins, &m, opts, msg, sizeof(msg))) {
		lab_note(&c, "mount -o %s: %s", opts, msg);
		return;
	}
	if (daxfs_policy_get(m.fd, &pol) == 0)
		lab_strlcpy(r->policy, sizeof(r->policy), pol.name);
	c.mnt_fd = m.fd;
	lab_strlcpy(c.policy, sizeof(c.policy), r->policy);
	snprintf(ops, sizeof(ops), "%s/ops.csv", o->out_dir);
	if ((c.ops = fopen(ops, "w")))
		fprintf(c.ops, "kind,start_ns,latency_ns,errno\n");

	uint64_t t0 = lab_now_ns();
	int ret = s->run(&c);
	r->duration_ns = lab_now_ns() - t0;
	r->cut = lab_samples_summary(&c.cut);
	if (c.ops)
		fclose(c.ops);
	c.ops = NULL;

	/* The trace is complete once stopped: the detector's trace rules and the busy accounting read it. */
	struct daxfs_ioc_stats before, after;
	struct daxfs_ioc_trace tr = { 0 };
	bool quiet = settle(m.fd, &before);
	daxfs_trace(m.fd, DAXFS_TRACE_STOP, NULL, &tr);
	quiet = quiet && daxfs_stats(m.fd, &after) == 0 && same_counts(&before, &after) && tr.dropped == 0;
	scan(&c, dir, trace, o->out_dir);
	struct lab_trace_sum ts;
	if (lab_trace_read(trace, lab_now_ns(), &ts) == 0) {
		if (quiet)
			check_counters(&c, m.fd, &ts, &after);
		else
			lab_info(&c, "trace not checked against the counters: %s",
				 tr.dropped ? "records dropped" : "the file system did not settle");
		r->busy_peak = ts.busy_peak;
		r->busy_byte_s = ts.busy_byte_s;
		r->reclaim = lab_samples_summary(&ts.reclaim);
		r->enospc_waits = ts.enospc_waits;
		r->lease_breaks = ts.lease_breaks;
		r->revokes = ts.revokes;
		r->invalidates = ts.invalidates;
		r->acks = ts.invalidate_acks;
		r->refaults = ts.refaults;
		r->unsafe_frees = ts.unsafe_frees;
		r->trace_records = ts.records;
		if (ts.unpaired_pins)
			lab_note(&c, "trace: %llu pins without their unpin", (unsigned long long)ts.unpaired_pins);
		lab_trace_sum_free(&ts);
	} else {
		lab_note(&c, "no trace at %s", trace);
	}
	msg[0] = 0;
	int um = lab_umount(&m, msg, sizeof(msg));
	if (um)
		lab_note(&c, "%s", msg);
	char fsck_log[700];
	snprintf(fsck_log, sizeof(fsck_log), "%s/fsck.log", o->out_dir);
	unlink(fsck_log);
	if (!m.mounted && m.daemon == 0) {
		r->fsck = lab_fsck(o->bins, image, fsck_log);
		FILE *f = r->fsck > 0 ? fopen(fsck_log, "r") : NULL;
		char line[160];

		/* Under unsafe the device may have written into blocks that became metadata: say what fsck saw. */
		if (f && fgets(line, sizeof(line), f)) {
			line[strcspn(line, "\n")] = 0;
			lab_note(&c, "fsck: %s", line);
		}
		if (f)
			fclose(f);
	}
	if (ret == 0 && um == 0)
		snprintf(r->status, sizeof(r->status), "ok");
	lab_samples_free(&c.cut);
}

static int mkdir_p(const char *path)
{
	char buf[1024];

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *q = buf + 1; *q; q++) {
		if (*q != '/')
			continue;
		*q = 0;
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -errno;
		*q = '/';
	}
	return mkdir(buf, 0755) < 0 && errno != EEXIST ? -errno : 0;
}

int lab_run(const struct lab_scenario *s, const char *policy_spec, const struct lab_run_opts *o,
	    struct lab_result *r)
{
	static unsigned counter;
	char image[256], dir[256];
	int pfd[2];

	memset(r, 0, sizeof(*r));
	snprintf(r->scenario, sizeof(r->scenario), "%s", s->name);
	snprintf(r->spec, sizeof(r->spec), "%s", policy_spec);
	snprintf(r->policy, sizeof(r->policy), "%.*s", (int)strcspn(policy_spec, ":"), policy_spec);
	snprintf(r->status, sizeof(r->status), "error");
	r->fsck = -1;
	if (mkdir_p(o->out_dir)) {
		snprintf(r->note, sizeof(r->note), "cannot create %s: %s", o->out_dir, strerror(errno));
		return -1;
	}
	snprintf(image, sizeof(image), "/dev/shm/daxfs-lab-%d-%u.img", getpid(), counter++);
	snprintf(dir, sizeof(dir), "/tmp/daxfs-lab-%d.XXXXXX", getpid());
	if (!mkdtemp(dir) || pipe2(pfd, O_CLOEXEC) < 0) {
		snprintf(r->note, sizeof(r->note), "mkdtemp/pipe: %s", strerror(errno));
		rmdir(dir);
		return -1;
	}
	catch_signals();
	if (interrupted) {
		snprintf(r->note, sizeof(r->note), "interrupted");
		rmdir(dir);
		close(pfd[0]);
		close(pfd[1]);
		return -1;
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		snprintf(r->note, sizeof(r->note), "fork: %s", strerror(errno));
		close(pfd[0]);
		close(pfd[1]);
		rmdir(dir);
		return -1;
	}
	if (pid == 0) {
		/* A group of its own: on a timeout the parent kills the run, daemon and all. */
		setpgid(0, 0);
		close(pfd[0]);
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		/* And if the lab dies without a word (kill -9), the run goes with it. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() == 1)
			_exit(1);
		run_child(s, policy_spec, o, image, dir, r);
		if (!o->keep_image)
			unlink(image);
		rmdir(dir);
		ssize_t w = write(pfd[1], r, sizeof(*r));
		_exit(w == (ssize_t)sizeof(*r) ? 0 : 1);
	}
	setpgid(pid, pid);	/* also here: no race with the child's own call */
	running_child = pid;
	if (interrupted)
		kill(-pid, SIGKILL);
	close(pfd[1]);

	struct lab_result got;
	size_t have = 0;
	uint64_t deadline = lab_now_ns() + (uint64_t)(o->timeout_s ? o->timeout_s : 300) * 1000000000ull;
	bool timed_out = false;
	while (have < sizeof(got)) {
		uint64_t now = lab_now_ns();
		if (now >= deadline) {
			timed_out = true;
			break;
		}
		struct pollfd pf = { .fd = pfd[0], .events = POLLIN };
		int pr = poll(&pf, 1, (int)((deadline - now) / 1000000 + 1));
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0)
			continue;
		ssize_t n = read(pfd[0], (char *)&got + have, sizeof(got) - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		have += (size_t)n;
	}
	close(pfd[0]);
	running_child = 0;
	if (have == sizeof(got)) {
		*r = got;
		waitpid(pid, NULL, 0);
	} else {
		kill(-pid, SIGKILL);
		waitpid(pid, NULL, 0);
		snprintf(r->status, sizeof(r->status), "%s", interrupted ? "stopped" : timed_out ? "timeout" : "crashed");
		if (interrupted)
			snprintf(r->note, sizeof(r->note), "interrupted by signal %d", (int)interrupted);
		else if (timed_out)
			snprintf(r->note, sizeof(r->note), "killed after %u s (see %s)", o->timeout_s, o->out_dir);
		else
			snprintf(r->note, sizeof(r->note), "the run died (see %s)", o->out_dir);
	}
	lab_strlcpy(r->dir, sizeof(r->dir), o->out_dir);
	/* Whatever the run left: its daemon is dead by now, so a lazy unmount frees the mount point. */
	lab_env_scrub(o->keep_image ? NULL : image, dir);
	return 0;
}
