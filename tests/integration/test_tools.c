/* SPDX-License-Identifier: MIT */
/*
 * What the programs tell their users: daxfsctl's reasons for a refused policy change (who asked,
 * or what was asked) and the library call that tells them apart.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "itest.h"
#include "pins_util.h"

static const char *quota_so(void)
{
	const char *p = getenv("POLICY_QUOTA_SO");

	if (!p)
		fail_msg("POLICY_QUOTA_SO is not set: run through meson test");
	return p;
}

/* Copy file `from` to a new temporary file; its path in `to` (a mkstemp template). */
static void copy_file(const char *from, char *to, mode_t mode)
{
	char buf[65536];
	ssize_t r;
	int in = open(from, O_RDONLY), out = mkstemp(to);

	assert_true(in >= 0 && out >= 0);
	while ((r = read(in, buf, sizeof(buf))) > 0)
		assert_int_equal(write(out, buf, (size_t)r), r);
	assert_ok(fchmod(out, mode));
	close(in);
	close(out);
}

/* Let other users reach m's mount point (the harness's work directory is private). */
static void open_mount_dir(const struct mnt *m)
{
	char parent[256];

	snprintf(parent, sizeof(parent), "%s", m->dir);
	assert_ok(chmod(dirname(parent), 0755));
}

/* ---- a refused policy change: who asked, or what was asked ---- */

struct change_job {
	int fd;
	int ret;
};

static int change_as_user(void *arg)
{
	struct change_job *j = arg;
	struct daxfs_ioc_policy p;

	j->ret = daxfs_policy_change(j->fd, "busy", NULL, &p);
	C_TRUE(j->ret == -EPERM);
	return 0;
}

/*
 * A policy object anyone could have written is refused for its permissions: result -EPERM in an
 * answered request, and daxfsctl says why.  A user who may not change the policy gets -EPERM from
 * the request itself, and daxfsctl says that instead.
 */
static void test_policy_refusals(void **state)
{
	struct mnt m;
	char out[4096], copy[] = "/tmp/daxfs-policy-XXXXXX";
	struct daxfs_ioc_policy p;

	(void)state;
	pu_setup(&m, "ctlpolicy", "64M", "allow_other");
	int dfd = pu_dirfd(&m);
	copy_file(quota_so(), copy, 0666);
	assert_int_equal(daxfs_policy_change(dfd, copy, NULL, &p), 0);
	assert_int_equal(p.result, -EPERM);
	assert_non_null(strstr(p.message, "writable by nobody else"));
	assert_string_equal(p.name, "busy");	/* the policy in force, unchanged */
	int rc = h_run(out, sizeof(out), "%s policy %s %s 2>&1", h_daxfsctl_bin(), m.dir, copy);
	assert_int_equal(rc, 1);
	assert_non_null(strstr(out, "writable by nobody else"));
	assert_null(strstr(out, "needs root"));
	/* The library's one-number form: the same -EPERM, with the reason. */
	char msg[256];
	assert_int_equal(daxfs_policy_set(dfd, copy, NULL, msg, sizeof(msg)), -EPERM);
	assert_non_null(strstr(msg, "writable by nobody else"));

	/* Someone else asks: the request itself is refused. */
	struct cred_spec nobody = { .uid = 65534, .gid = 65534 };
	struct change_job j = { .fd = dfd };
	assert_int_equal(as_user(&nobody, change_as_user, &j), 0);
	open_mount_dir(&m);
	rc = h_run(out, sizeof(out), "setpriv --reuid=65534 --regid=65534 --clear-groups %s policy %s busy 2>&1",
		   h_daxfsctl_bin(), m.dir);
	assert_int_equal(rc, 1);
	assert_non_null(strstr(out, "needs root or the daemon's user"));
	/* An accepted change prints the policy now in force. */
	rc = h_run(out, sizeof(out), "%s policy %s wait wait_timeout_ms=5 2>&1", h_daxfsctl_bin(), m.dir);
	assert_int_equal(rc, 0);
	assert_non_null(strstr(out, "policy wait"));
	assert_non_null(strstr(out, "wait_timeout_ms=5"));
	unlink(copy);
	close(dfd);
	pu_finish(&m);
}

static int run(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_policy_refusals),
	};
	return cmocka_run_group_tests_name("tools", tests, NULL, NULL);
}

int main(void)
{
	return h_main(run);
}
