/* SPDX-License-Identifier: MIT */
/*
 * daxfs-lab: run the debate of the 2017 "dax: fix dma vs truncate" thread and see what each answer
 * costs.  See lab.h for the modules and the usage text below for the commands.
 */
#include "lab.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daxfs/libdaxfs.h"
#include "toolutil.h"

#define PROG "daxfs-lab"

extern const struct lab_scenario lab_scen_truncate, lab_scen_punch, lab_scen_unlink, lab_scen_otrunc,
	lab_scen_enospc, lab_scen_gup, lab_scen_gup_write, lab_scen_ignoring, lab_scen_churn;

/* The scenarios, in the order of the table.  churn-soak is churn for ten minutes: not in compare's default set. */
static int churn_soak(struct lab_ctx *c)
{
	return lab_scen_churn.run(c);
}

static const struct lab_scenario lab_scen_soak = { "churn-soak", "churn for --duration (default 10 minutes)",
						    churn_soak };

static const struct lab_scenario *const scenarios[] = {
	&lab_scen_truncate, &lab_scen_punch, &lab_scen_unlink, &lab_scen_otrunc, &lab_scen_enospc,
	&lab_scen_gup, &lab_scen_gup_write, &lab_scen_ignoring, &lab_scen_churn, &lab_scen_soak,
};
#define NSCENARIOS (sizeof(scenarios) / sizeof(scenarios[0]))

static const struct lab_scenario *scenario_find(const char *name)
{
	for (size_t i = 0; i < NSCENARIOS; i++)
		if (!strcmp(scenarios[i]->name, name))
			return scenarios[i];
	return NULL;
}

/*
 * The parameters compare gives the built-in policies: grace periods short enough that a run takes
 * about a second, long enough that a cooperative device answers first.  A policy named in
 * --policies with its own parameters overrides these.
 */
static const struct {
	const char *name;
	const char *params;
} compare_params[] = {
	{ "revoke", "grace_ms=100" },
	{ "odp", "ack_ms=100" },
	{ "busy-quota", "quota=2M,fallback=revoke,grace_ms=100" },
};

static void usage(FILE *f)
{
	fprintf(f,
"usage: daxfs-lab compare [--scenarios LIST] [--policies LIST] [--load PATH.so[:K=V,...]]... [--out DIR]\n"
"                         [--no-plots] [OPTIONS]\n"
"       daxfs-lab run SCENARIO [--policy SPEC] [--json] [--out DIR] [OPTIONS]\n"
"       daxfs-lab list\n"
"       daxfs-lab --help\n"
"\n"
"The policy comparison: what each answer to \"dax: fix dma vs truncate\" costs.  A run formats a fresh\n"
"emulated-pmem image in /dev/shm, mounts it with the policy and an event trace, runs the scenario with\n"
"the simulated RDMA device writing registered file ranges, scans the files for stray device writes\n"
"(the detector), unmounts and runs fsck.daxfs -n.  Each run is one row of the results.\n"
"\n"
"compare runs every scenario (but churn-soak) under every built-in policy and the loaded ones, writes\n"
"DIR/results.txt (the table), results.csv, results.json, DIR/runs/SCENARIO/POLICY/ (trace.jsonl,\n"
"ops.csv, strays.txt, daemon.log, fsck.log, timeline.csv) and DIR/plots/*.png (daxfs-lab-plot).\n"
"\n"
"  --scenarios A,B      scenarios to run (default: all but churn-soak)\n"
"  --policies P;Q       policy specs, separated by ';' (default: every built-in policy)\n"
"  --load PATH.so[:KV]  a policy object to compare too (repeatable)\n"
"  --out DIR            where results go (default ./daxfs-lab-results)\n"
"  --no-plots           do not draw the plots\n"
"  --policy SPEC        run: the policy (default busy)\n"
"  --json               run: print the row as JSON\n"
"\n"
"A policy SPEC is NAME[:KEY=VALUE,...] (a built-in policy and its parameters) or\n"
"/ABSOLUTE/PATH.so[:KEY=VALUE,...] (a policy object, see daxfs-policy(7)).\n"
"\n"
"Scenario options (sizes take K, M, G):\n"
"  --image-size SIZE    the image (default 32M)\n"
"  --file-size SIZE     the registered file (default 4M)\n"
"  --rate SIZE          device bytes per second per registration (default 128M; 0: as fast as it goes)\n"
"  --wr-size SIZE       bytes per work request (default 64K)\n"
"  --depth N            work requests in flight per registration (default 8)\n"
"  --hold MS            the holder deregisters MS after the cut began (default 300)\n"
"  --rounds N           cuts per DMA scenario run (default 2)\n"
"  --duration MS        churn: how long (default 3000; churn-soak 600000)\n"
"  --clients N          registrations (enospc) or registering threads (churn) (default 4)\n"
"  --writers N          writers that need space (default 2)\n"
"  --deadlock-timeout MS  gup-vs-punch: B waiting this long is examined for a deadlock (default 1000)\n"
"  --fill PCT           enospc: share of the data area the registrations hold (default 75)\n"
"  --device B           cooperative (default), slow:MS or ignore (ignoring-device always ignores)\n"
"  --pin-flags F,...    what registrations claim: longterm, odp, revocable (default all three)\n"
"  --seed N             churn's random choices (default 1)\n"
"  --mount-opts OPTS    more daemon -o options for every run\n"
"  --timeout S          kill a run after S seconds (default 120; churn-soak: duration + 120)\n"
"  --keep-image         leave each run's image in /dev/shm\n"
"\n"
"Exit status: 0 every run completed (whatever it found), 1 a run failed, timed out or crashed,\n"
"2 usage, 3 the lab could not start.\n");
}

enum {
	OPT_SCENARIOS = 256, OPT_POLICIES, OPT_LOAD, OPT_OUT, OPT_NO_PLOTS, OPT_POLICY, OPT_JSON, OPT_IMAGE_SIZE,
	OPT_FILE_SIZE, OPT_RATE, OPT_WR_SIZE, OPT_DEPTH, OPT_HOLD, OPT_ROUNDS, OPT_DURATION, OPT_CLIENTS,
	OPT_WRITERS, OPT_DEADLOCK, OPT_FILL, OPT_DEVICE, OPT_PIN_FLAGS, OPT_SEED, OPT_MOUNT_OPTS, OPT_TIMEOUT,
	OPT_KEEP_IMAGE, OPT_HELP,
};

static const struct option long_opts[] = {
	{ "scenarios", required_argument, NULL, OPT_SCENARIOS },
	{ "policies", required_argument, NULL, OPT_POLICIES },
	{ "load", required_argument, NULL, OPT_LOAD },
	{ "out", required_argument, NULL, OPT_OUT },
	{ "no-plots", no_argument, NULL, OPT_NO_PLOTS },
	{ "policy", required_argument, NULL, OPT_POLICY },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "image-size", required_argument, NULL, OPT_IMAGE_SIZE },
	{ "file-size", required_argument, NULL, OPT_FILE_SIZE },
	{ "rate", required_argument, NULL, OPT_RATE },
	{ "wr-size", required_argument, NULL, OPT_WR_SIZE },
	{ "depth", required_argument, NULL, OPT_DEPTH },
	{ "hold", required_argument, NULL, OPT_HOLD },
	{ "rounds", required_argument, NULL, OPT_ROUNDS },
	{ "duration", required_argument, NULL, OPT_DURATION },
	{ "clients", required_argument, NULL, OPT_CLIENTS },
	{ "writers", required_argument, NULL, OPT_WRITERS },
	{ "deadlock-timeout", required_argument, NULL, OPT_DEADLOCK },
	{ "fill", required_argument, NULL, OPT_FILL },
	{ "device", required_argument, NULL, OPT_DEVICE },
	{ "pin-flags", required_argument, NULL, OPT_PIN_FLAGS },
	{ "seed", required_argument, NULL, OPT_SEED },
	{ "mount-opts", required_argument, NULL, OPT_MOUNT_OPTS },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "keep-image", no_argument, NULL, OPT_KEEP_IMAGE },
	{ "help", no_argument, NULL, OPT_HELP },
	{ NULL, 0, NULL, 0 },
};

void lab_params_default(struct lab_params *p)
{
	*p = (struct lab_params){
		.image_size = 32 * LAB_MiB,
		.file_size = 4 * LAB_MiB,
		.rate = 128 * LAB_MiB,
		.wr_size = 64 * 1024,
		.depth = 8,
		.hold_ms = 300,
		.rounds = 2,
		.duration_ms = 0,
		.clients = 4,
		.writers = 2,
		.deadlock_ms = 1000,
		.fill_pct = 75,
		.pin_flags = DAXFS_PIN_LONGTERM | DAXFS_PIN_ODP | DAXFS_PIN_REVOCABLE,
		.behaviour = DAXFS_DEV_COOPERATIVE,
		.seed = 1,
	};
}

struct cli {
	struct lab_params p;
	const char *scenarios;
	char *policies;
	const char *loads[32];
	unsigned nloads;
	const char *out;
	const char *policy;
	const char *mount_opts;
	uint32_t timeout_s;
	bool no_plots, json, keep_image;
};

static uint32_t parse_u32(const char *opt, const char *s, uint32_t max)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);

	if (!*s || *end || errno || v > max)
		die_usage(PROG, "%s: %s is not a number up to %u", opt, s, max);
	return (uint32_t)v;
}

static uint64_t parse_bytes(const char *opt, const char *s)
{
	uint64_t v;

	if (parse_size(s, &v))
		die_usage(PROG, "%s: %s is not a size", opt, s);
	return v;
}

static uint32_t parse_pin_flags(const char *s)
{
	uint32_t flags = 0;
	char *copy = strdup(s), *save = NULL;

	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (!strcmp(t, "longterm"))
			flags |= DAXFS_PIN_LONGTERM;
		else if (!strcmp(t, "odp"))
			flags |= DAXFS_PIN_ODP;
		else if (!strcmp(t, "revocable"))
			flags |= DAXFS_PIN_REVOCABLE;
		else if (strcmp(t, "none"))
			die_usage(PROG, "--pin-flags: %s is not longterm, odp, revocable or none", t);
	}
	free(copy);
	return flags;
}

static void parse_cli(int argc, char **argv, struct cli *c)
{
	int o;

	lab_params_default(&c->p);
	while ((o = getopt_long(argc, argv, "h", long_opts, NULL)) != -1) {
		switch (o) {
		case OPT_SCENARIOS: c->scenarios = optarg; break;
		case OPT_POLICIES: c->policies = optarg; break;
		case OPT_LOAD:
			if (c->nloads == 32)
				die_usage(PROG, "at most 32 --load");
			c->loads[c->nloads++] = optarg;
			break;
		case OPT_OUT: c->out = optarg; break;
		case OPT_NO_PLOTS: c->no_plots = true; break;
		case OPT_POLICY: c->policy = optarg; break;
		case OPT_JSON: c->json = true; break;
		case OPT_IMAGE_SIZE: c->p.image_size = parse_bytes("--image-size", optarg); break;
		case OPT_FILE_SIZE: c->p.file_size = parse_bytes("--file-size", optarg); break;
		case OPT_RATE: c->p.rate = parse_bytes("--rate", optarg); break;
		case OPT_WR_SIZE: c->p.wr_size = (uint32_t)parse_bytes("--wr-size", optarg); break;
		case OPT_DEPTH: c->p.depth = parse_u32("--depth", optarg, 4096); break;
		case OPT_HOLD: c->p.hold_ms = parse_u32("--hold", optarg, 3600000); break;
		case OPT_ROUNDS: c->p.rounds = parse_u32("--rounds", optarg, 1000); break;
		case OPT_DURATION: c->p.duration_ms = parse_u32("--duration", optarg, 86400000); break;
		case OPT_CLIENTS: c->p.clients = parse_u32("--clients", optarg, 64); break;
		case OPT_WRITERS: c->p.writers = parse_u32("--writers", optarg, 64); break;
		case OPT_DEADLOCK: c->p.deadlock_ms = parse_u32("--deadlock-timeout", optarg, 3600000); break;
		case OPT_FILL: c->p.fill_pct = parse_u32("--fill", optarg, 95); break;
		case OPT_DEVICE: {
			struct daxfs_dev_attr a = { 0 };

			if (daxfs_dev_parse_behaviour(optarg, &a))
				die_usage(PROG, "--device: %s is not cooperative, slow:MS or ignore", optarg);
			c->p.behaviour = a.behaviour;
			c->p.slow_ms = a.slow_ms;
			break;
		}
		case OPT_PIN_FLAGS: c->p.pin_flags = parse_pin_flags(optarg); break;
		case OPT_SEED: c->p.seed = parse_u32("--seed", optarg, UINT32_MAX); break;
		case OPT_MOUNT_OPTS: c->mount_opts = optarg; break;
		case OPT_TIMEOUT: c->timeout_s = parse_u32("--timeout", optarg, 86400); break;
		case OPT_KEEP_IMAGE: c->keep_image = true; break;
		case 'h':
		case OPT_HELP: usage(stdout); exit(0);
		default: exit(2);
		}
	}
	if (c->p.wr_size < DAXFS_TAG_UNIT || c->p.wr_size % DAXFS_TAG_UNIT || c->p.wr_size > 4 * LAB_MiB)
		die_usage(PROG, "--wr-size must be a multiple of 64 up to 4M");
	if (c->p.file_size < 64 * 1024 || c->p.file_size % (64 * 1024))
		die_usage(PROG, "--file-size must be a multiple of 64K");
	if (!c->p.depth || !c->p.rounds || !c->p.clients || !c->p.writers)
		die_usage(PROG, "--depth, --rounds, --clients and --writers must not be 0");
}

/* The parameters of one run of scenario s. */
static struct lab_params run_params(const struct cli *c, const struct lab_scenario *s, uint32_t *timeout_s)
{
	struct lab_params p = c->p;

	if (!p.duration_ms)
		p.duration_ms = s == &lab_scen_soak ? 600000 : 3000;
	*timeout_s = c->timeout_s ? c->timeout_s : 120 + (s == &lab_scen_soak ? p.duration_ms / 1000 : 0);
	return p;
}

static void sanitize(char *dst, size_t len, const char *src)
{
	/* A policy spec as a directory name: its base name, and no '/' or ':'. */
	const char *base = strrchr(src, '/') ? strrchr(src, '/') + 1 : src;
	size_t i = 0;

	for (; base[i] && base[i] != ':' && i + 1 < len; i++)
		dst[i] = (base[i] == '/' || base[i] == ' ') ? '_' : base[i];
	dst[i] = 0;
}

static int cmd_list(void)
{
	printf("scenarios:\n");
	for (size_t i = 0; i < NSCENARIOS; i++)
		printf("  %-26s %s\n", scenarios[i]->name, scenarios[i]->summary);
	return 0;
}

/* The built-in policies, from a daemon on a scratch image. */
static int builtin_policies(const struct lab_bins *bins, char names[][DAXFS_POLICY_NAME_MAX], unsigned max, unsigned *n)
{
	struct lab_mount m = { 0 };
	char dir[64], msg[512];
	struct daxfs_policy_desc *d = NULL;
	uint32_t nd = 0;
	int ret = -1;

	snprintf(m.image, sizeof(m.image), "/dev/shm/daxfs-lab-%d-list.img", getpid());
	snprintf(dir, sizeof(dir), "/tmp/daxfs-lab-%d.XXXXXX", getpid());
	if (!mkdtemp(dir))
		return -1;
	snprintf(m.dir, sizeof(m.dir), "%s", dir);
	snprintf(m.log, sizeof(m.log), "/dev/null");
	if (lab_mkfs(bins, m.image, 16 * LAB_MiB, msg, sizeof(msg)) || lab_mount(bins, &m, NULL, msg, sizeof(msg))) {
		fprintf(stderr, "%s: %s\n", PROG, msg);
		goto out;
	}
	if (daxfs_list_policies(m.fd, &d, &nd) == 0) {
		*n = 0;
		for (uint32_t i = 0; i < nd && *n < max; i++)
			/* "(common)" lists the parameters every policy has: not a policy. */
			if (!(d[i].flags & DAXFS_POLICY_F_LOADED) && d[i].name[0] != '(')
				snprintf(names[(*n)++], DAXFS_POLICY_NAME_MAX, "%s", d[i].name);
		ret = 0;
	}
	free(d);
	lab_umount(&m, msg, sizeof(msg));
out:
	lab_env_scrub(m.image, dir);
	return ret;
}

static int cmd_run(struct cli *c, const struct lab_bins *bins, const char *name)
{
	const struct lab_scenario *s = scenario_find(name);
	struct lab_result r;
	char out[1024];

	if (!s)
		die_usage(PROG, "no scenario %s (daxfs-lab list)", name);
	const char *spec = c->policy ? c->policy : "busy";
	char tmp[1024];
	if (lab_policy_opts(spec, tmp, sizeof(tmp)))
		die_usage(PROG, "bad policy spec %s", spec);
	char pol[128];
	sanitize(pol, sizeof(pol), spec);
	snprintf(out, sizeof(out), "%s/runs/%s/%s", c->out ? c->out : "daxfs-lab-results", s->name, pol);
	uint32_t timeout_s;
	struct lab_params p = run_params(c, s, &timeout_s);
	char abs_out[1600];
	struct lab_run_opts o = { .bins = bins, .params = &p, .out_dir = out, .mount_opts = c->mount_opts,
				  .timeout_s = timeout_s, .keep_image = c->keep_image };
	if (out[0] != '/') {
		char cwd[512] = "";

		/* The daemon writes the trace: it needs the absolute path. */
		if (!getcwd(cwd, sizeof(cwd)))
			die("getcwd: %s", strerror(errno));
		snprintf(abs_out, sizeof(abs_out), "%s/%s", cwd, out);
		o.out_dir = abs_out;
	}
	if (lab_run(s, spec, &o, &r)) {
		fprintf(stderr, "%s: %s\n", PROG, r.note);
		return 3;
	}
	if (lab_interrupted())
		return 130;
	if (c->json) {
		lab_report_json_row(stdout, &r);
		fputc('\n', stdout);
	} else {
		lab_report_table(stdout, &r, 1);
		if (r.note[0])
			printf("\nnote: %s\n", r.note);
		if (r.info[0])
			printf("also: %s\n", r.info);
		if (r.stray_first[0])
			printf("first stray: %s\n", r.stray_first);
		printf("files: %s\n", o.out_dir);
	}
	return strcmp(r.status, "ok") ? 1 : 0;
}

static int cmd_compare(struct cli *c, const struct lab_bins *bins)
{
	const struct lab_scenario *sel[NSCENARIOS];
	unsigned nsel = 0;
	char specs[64][512];
	unsigned nspecs = 0;

	/* Scenarios. */
	if (!c->scenarios || !strcmp(c->scenarios, "all")) {
		for (size_t i = 0; i < NSCENARIOS; i++)
			if (scenarios[i] != &lab_scen_soak)
				sel[nsel++] = scenarios[i];
	} else {
		char *copy = strdup(c->scenarios), *save = NULL;

		for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
			const struct lab_scenario *s = scenario_find(t);

			if (!s)
				die_usage(PROG, "no scenario %s (daxfs-lab list)", t);
			if (nsel < NSCENARIOS)
				sel[nsel++] = s;
		}
		free(copy);
	}
	/* Policies: the built-in ones with compare's parameters, or those given; then the loaded ones. */
	if (!c->policies || !strcmp(c->policies, "all")) {
		char names[32][DAXFS_POLICY_NAME_MAX];
		unsigned n = 0;

		if (builtin_policies(bins, names, 32, &n)) {
			fprintf(stderr, "%s: cannot list the built-in policies\n", PROG);
			return 3;
		}
		for (unsigned i = 0; i < n && nspecs < 64; i++) {
			const char *params = NULL;

			for (size_t k = 0; k < sizeof(compare_params) / sizeof(compare_params[0]); k++)
				if (!strcmp(compare_params[k].name, names[i]))
					params = compare_params[k].params;
			char *spec = specs[nspecs++];
			size_t len = strnlen(names[i], DAXFS_POLICY_NAME_MAX - 1);

			memcpy(spec, names[i], len);
			spec[len] = 0;
			if (params) {
				spec[len] = ':';
				lab_strlcpy(spec + len + 1, sizeof(specs[0]) - len - 1, params);
			}
		}
	} else {
		char *save = NULL;

		for (char *t = strtok_r(c->policies, ";", &save); t && nspecs < 64; t = strtok_r(NULL, ";", &save)) {
			const char *params = NULL;

			/* A built-in named without parameters gets compare's, as with no list at all. */
			for (size_t k = 0; !strchr(t, ':') && k < sizeof(compare_params) / sizeof(compare_params[0]); k++)
				if (!strcmp(compare_params[k].name, t))
					params = compare_params[k].params;
			snprintf(specs[nspecs++], sizeof(specs[0]), "%s%s%s", t, params ? ":" : "", params ? params : "");
		}
	}
	for (unsigned i = 0; i < c->nloads && nspecs < 64; i++) {
		if (c->loads[i][0] != '/')
			die_usage(PROG, "--load %s: a policy object is given by its absolute path", c->loads[i]);
		lab_strlcpy(specs[nspecs++], sizeof(specs[0]), c->loads[i]);
	}
	for (unsigned i = 0; i < nspecs; i++) {
		char tmp[1024];

		if (lab_policy_opts(specs[i], tmp, sizeof(tmp)))
			die_usage(PROG, "bad policy spec %s", specs[i]);
	}

	char out[1024], cwd[512];
	const char *dir = c->out ? c->out : "daxfs-lab-results";
	if (dir[0] != '/' && !getcwd(cwd, sizeof(cwd)))
		die("getcwd: %s", strerror(errno));
	snprintf(out, sizeof(out), "%s%s%s", dir[0] == '/' ? "" : cwd, dir[0] == '/' ? "" : "/", dir);
	mkdir(out, 0755);

	unsigned total = nsel * nspecs, k = 0, failed = 0;
	struct lab_result *res = calloc(total ? total : 1, sizeof(*res));
	if (!res)
		die("out of memory");
	uint64_t t0 = lab_now_ns();
	for (unsigned si = 0; si < nsel; si++) {
		for (unsigned pi = 0; pi < nspecs; pi++, k++) {
			char rdir[1400], pol[128];
			uint32_t timeout_s;
			struct lab_params p = run_params(c, sel[si], &timeout_s);

			sanitize(pol, sizeof(pol), specs[pi]);
			snprintf(rdir, sizeof(rdir), "%s/runs/%s/%s", out, sel[si]->name, pol);
			struct lab_run_opts o = { .bins = bins, .params = &p, .out_dir = rdir, .mount_opts = c->mount_opts,
						  .timeout_s = timeout_s, .keep_image = c->keep_image };
			fprintf(stderr, "[%2u/%u] %-26s %-14s ", k + 1, total, sel[si]->name, pol);
			uint64_t r0 = lab_now_ns();
			lab_run(sel[si], specs[pi], &o, &res[k]);
			if (lab_interrupted()) {
				fprintf(stderr, "interrupted: the run in progress was stopped and cleaned up\n");
				free(res);
				return 130;
			}
			failed += strcmp(res[k].status, "ok") != 0;
			fprintf(stderr, "%s%s (%.1f s)\n", res[k].status,
				res[k].stray_units && res[k].stray_units != UINT64_MAX ? ", stray writes found" : "",
				(double)(lab_now_ns() - r0) / 1e9);
		}
	}

	char path[1200];
	FILE *f;
	snprintf(path, sizeof(path), "%s/results.txt", out);
	if ((f = fopen(path, "w"))) {
		lab_report_table(f, res, total);
		fprintf(f, "\n");
		for (unsigned i = 0; i < total; i++)
			if (res[i].note[0] || res[i].info[0])
				fprintf(f, "%s / %s: %s%s%s\n", res[i].scenario, res[i].policy, res[i].note,
					res[i].note[0] && res[i].info[0] ? "; " : "", res[i].info);
		fclose(f);
	}
	snprintf(path, sizeof(path), "%s/results.csv", out);
	if ((f = fopen(path, "w"))) {
		lab_report_csv(f, res, total);
		fclose(f);
	}
	snprintf(path, sizeof(path), "%s/results.json", out);
	if ((f = fopen(path, "w"))) {
		lab_report_json(f, res, total, &c->p);
		fclose(f);
	}
	printf("\n");
	lab_report_table(stdout, res, total);
	/* Notes say what the columns cannot: refusals, deadlock chains, failures. */
	unsigned noted = 0;
	for (unsigned i = 0; i < total; i++)
		if (res[i].note[0])
			printf("%s  %s / %s: %s\n", noted++ ? "" : "\nnotes:\n", res[i].scenario, res[i].policy,
			       res[i].note);
	printf("\n%u runs in %.0f s.  Results: %s/results.txt, results.csv, results.json; runs: %s/runs/\n", total,
	       (double)(lab_now_ns() - t0) / 1e9, out, out);

	int plot_status = 0;
	if (!c->no_plots) {
		fflush(NULL);
		pid_t pid = fork();

		if (pid == 0) {
			execl(bins->plot, bins->plot, out, (char *)NULL);
			_exit(127);
		}
		int st = 0;
		if (pid < 0 || waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st)) {
			fprintf(stderr, "%s: the plots could not be drawn (%s; it needs python3-matplotlib)\n", PROG,
				bins->plot);
			plot_status = 1;
		} else {
			printf("Plots: %s/plots/\n", out);
		}
	}
	free(res);
	return failed || plot_status ? 1 : 0;
}

int main(int argc, char **argv)
{
	struct cli c = { 0 };
	struct lab_bins bins;
	char msg[600];

	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	const char *cmd = argv[1];
	if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help")) {
		usage(stdout);
		return 0;
	}
	if (strcmp(cmd, "list") && strcmp(cmd, "run") && strcmp(cmd, "compare"))
		die_usage(PROG, "no command %s", cmd);
	/* The scenario name of run comes first; getopt sees the rest. */
	const char *scenario = NULL;
	if (!strcmp(cmd, "run")) {
		if (argc < 3 || argv[2][0] == '-')
			die_usage(PROG, "run: which scenario?");
		scenario = argv[2];
		argv += 2;
		argc -= 2;
	} else {
		argv += 1;
		argc -= 1;
	}
	parse_cli(argc, argv, &c);
	if (optind < argc)
		die_usage(PROG, "unexpected argument %s", argv[optind]);
	if (!strcmp(cmd, "list"))
		return cmd_list();
	if (geteuid() != 0)
		fprintf(stderr, "%s: not root: mounting FUSE file systems and writing the media may fail\n", PROG);
	if (lab_bins_find(&bins, msg, sizeof(msg))) {
		fprintf(stderr, "%s: %s\n", PROG, msg);
		return 3;
	}
	signal(SIGPIPE, SIG_IGN);
	lab_env_scrub_stale();
	return scenario ? cmd_run(&c, &bins, scenario) : cmd_compare(&c, &bins);
}
