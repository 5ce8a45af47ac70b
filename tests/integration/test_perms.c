/* SPDX-License-Identifier: MIT */
/*
 * Ownership and permissions, mounted with -o default_permissions,allow_other so the kernel checks
 * modes as it does for a local file system.  Other users run in forked children (see as_user);
 * root prepares the files.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "itest.h"

static struct mnt M;

static const struct cred_spec U1000 = { 1000, 1000, 1, { 1000 } };
static const struct cred_spec U1001 = { 1001, 1001, 1, { 1001 } };
/* In group 1000 through its primary group. */
static const struct cred_spec U1001_G1000 = { 1001, 1000, 1, { 1000 } };
/* In group 1000 through a supplementary group only. */
static const struct cred_spec U1002_SUPP = { 1002, 1002, 2, { 1002, 1000 } };

/* The harness's work directory is 0700 (mkdtemp): let other users through to the mount points. */
static void open_workdir(const struct mnt *m)
{
	char parent[sizeof(m->dir)];

	snprintf(parent, sizeof(parent), "%s", m->dir);
	*strrchr(parent, '/') = 0;
	chmod(parent, 0711);
}

static int setup(void **state)
{
	(void)state;
	if (h_group_up(&M, "perms", "-s 64M", "-o default_permissions,allow_other"))
		return -1;
	open_workdir(&M);
	if (chmod(M.dir, 0755) || chown(M.dir, 0, 0))
		return -1;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	return h_group_down(&M);
}

/* Root makes a directory or file with the given owner and mode (chmod after chown: chown clears bits). */
static void mkdir_as(const char *path, uid_t uid, gid_t gid, mode_t mode)
{
	assert_ok(mkdir(path, 0700));
	assert_ok(chown(path, uid, gid));
	assert_ok(chmod(path, mode));
}

static void file_as(const char *path, uid_t uid, gid_t gid, mode_t mode, const char *content)
{
	write_str(path, content);
	assert_ok(chown(path, uid, gid));
	assert_ok(chmod(path, mode));
}

#define RUN_AS(cred, fn) assert_int_equal(as_user(&(cred), fn, NULL), 0)

/* ---- owner of new files ---- */

static int create_things(void *arg)
{
	(void)arg;
	umask(022);
	int fd = open(P(&M, "own/file"), O_WRONLY | O_CREAT | O_EXCL, 0666);
	C_TRUE(fd >= 0);
	close(fd);
	C_OK(mkdir(P(&M, "own/dir"), 0777));
	C_OK(symlink("file", P(&M, "own/sym")));
	C_OK(mkfifo(P(&M, "own/fifo"), 0666));
	static const char *names[] = { "own/file", "own/dir", "own/sym", "own/fifo" };
	for (int i = 0; i < 4; i++) {
		struct stat st;
		C_OK(lstat(P(&M, "%s", names[i]), &st));
		C_TRUE(st.st_uid == 1000);
		C_TRUE(st.st_gid == 1000);
	}
	struct stat st;
	C_OK(stat(P(&M, "own/file"), &st));
	C_TRUE(st.st_mode == (S_IFREG | 0644));
	C_OK(stat(P(&M, "own/dir"), &st));
	C_TRUE(st.st_mode == (S_IFDIR | 0755));
	/* The owner may use its own files. */
	fd = open(P(&M, "own/file"), O_RDWR);
	C_TRUE(fd >= 0);
	C_TRUE(write(fd, "mine", 4) == 4);
	close(fd);
	C_OK(chmod(P(&M, "own/file"), 0600));
	C_OK(unlink(P(&M, "own/sym")));
	return 0;
}

/* The file system's idea of the group is the caller's fsgid, i.e. its effective gid. */
static int create_with_egid(void *arg)
{
	(void)arg;
	int fd = open(P(&M, "own/egid"), O_WRONLY | O_CREAT | O_EXCL, 0644);
	C_TRUE(fd >= 0);
	close(fd);
	struct stat st;
	C_OK(stat(P(&M, "own/egid"), &st));
	C_TRUE(st.st_uid == 1002 && st.st_gid == 1002);
	return 0;
}

static void test_owner_of_new_files(void **state)
{
	(void)state;
	mkdir_as(P(&M, "own"), 0, 0, 0777);
	RUN_AS(U1000, create_things);
	RUN_AS(U1002_SUPP, create_with_egid);
	struct stat st = st_of(P(&M, "own/file"));
	assert_int_equal(st.st_uid, 1000);
	assert_int_equal(st.st_mode, S_IFREG | 0600);
	/* Root's files are root's. */
	write_str(P(&M, "own/rootfile"), "");
	st = st_of(P(&M, "own/rootfile"));
	assert_int_equal(st.st_uid, 0);
	assert_int_equal(st.st_gid, 0);
}

/* ---- access checks ---- */

static int others_denied(void *arg)
{
	(void)arg;
	struct stat st;
	char c;

	C_ERRNO(open(P(&M, "acc/secret"), O_RDONLY), EACCES);
	C_ERRNO(open(P(&M, "acc/secret"), O_WRONLY), EACCES);
	int fd = open(P(&M, "acc/public"), O_RDONLY);
	C_TRUE(fd >= 0);
	C_TRUE(read(fd, &c, 1) == 1 && c == 'p');
	close(fd);
	C_ERRNO(open(P(&M, "acc/public"), O_WRONLY), EACCES);
	C_ERRNO(open(P(&M, "acc/public"), O_RDONLY | O_TRUNC), EACCES);
	C_ERRNO(truncate(P(&M, "acc/public"), 0), EACCES);
	C_ERRNO(setxattr(P(&M, "acc/public"), "user.x", "1", 1, 0), EACCES);
	/* Not the owner: no chmod, no setting explicit times, but "now" needs only write access. */
	C_ERRNO(chmod(P(&M, "acc/public"), 0666), EPERM);
	struct timespec ts[2] = { { 1, 0 }, { 1, 0 } };
	C_ERRNO(utimensat(AT_FDCWD, P(&M, "acc/public"), ts, 0), EPERM);
	C_ERRNO(utimensat(AT_FDCWD, P(&M, "acc/public"), NULL, 0), EACCES);
	C_OK(utimensat(AT_FDCWD, P(&M, "acc/writable"), NULL, 0));
	C_ERRNO(utimensat(AT_FDCWD, P(&M, "acc/writable"), ts, 0), EPERM);
	/* Directory without search or read permission for others. */
	C_ERRNO(open(P(&M, "acc/private"), O_RDONLY | O_DIRECTORY), EACCES);
	C_ERRNO(stat(P(&M, "acc/private/f"), &st), EACCES);
	C_ERRNO(open(P(&M, "acc/private/f"), O_RDONLY), EACCES);
	/* Search but no read: names can be used, not listed. */
	C_ERRNO(open(P(&M, "acc/searchonly"), O_RDONLY | O_DIRECTORY), EACCES);
	C_OK(stat(P(&M, "acc/searchonly/f"), &st));
	/* Read but no search: can list, cannot reach anything inside. */
	fd = open(P(&M, "acc/listonly"), O_RDONLY | O_DIRECTORY);
	C_TRUE(fd >= 0);
	close(fd);
	C_ERRNO(stat(P(&M, "acc/listonly/f"), &st), EACCES);
	/* Not writable: no create, unlink, rename, mkdir, link, symlink, mknod in it. */
	C_ERRNO(open(P(&M, "acc/new"), O_WRONLY | O_CREAT, 0644), EACCES);
	C_ERRNO(mkdir(P(&M, "acc/newdir"), 0755), EACCES);
	C_ERRNO(unlink(P(&M, "acc/public")), EACCES);
	C_ERRNO(rename(P(&M, "acc/public"), P(&M, "acc/moved")), EACCES);
	C_ERRNO(symlink("x", P(&M, "acc/sym")), EACCES);
	C_ERRNO(mkfifo(P(&M, "acc/fifo"), 0644), EACCES);
	C_ERRNO(rmdir(P(&M, "acc/private")), EACCES);
	/* A file with no permission bits at all. */
	C_ERRNO(open(P(&M, "acc/none"), O_RDONLY), EACCES);
	C_ERRNO(access(P(&M, "acc/public"), W_OK), EACCES);
	C_OK(access(P(&M, "acc/public"), R_OK));
	return 0;
}

static int owner_allowed(void *arg)
{
	(void)arg;
	char buf[16];

	/* 0600, owned by us. */
	int fd = open(P(&M, "acc/mine"), O_RDWR);
	C_TRUE(fd >= 0);
	C_TRUE(read(fd, buf, sizeof(buf)) == 4);
	C_TRUE(pwrite(fd, "M", 1, 0) == 1);
	close(fd);
	/* 0070 owned by us: the owner class applies, the group bits do not help us. */
	C_ERRNO(open(P(&M, "acc/owner-none"), O_RDONLY), EACCES);
	/* ... but the owner can chmod it back. */
	C_OK(chmod(P(&M, "acc/owner-none"), 0600));
	fd = open(P(&M, "acc/owner-none"), O_RDONLY);
	C_TRUE(fd >= 0);
	close(fd);
	/* Explicit times on our own file. */
	struct timespec ts[2] = { { 5, 5 }, { 6, 6 } };
	C_OK(utimensat(AT_FDCWD, P(&M, "acc/mine"), ts, 0));
	C_OK(setxattr(P(&M, "acc/mine"), "user.x", "1", 1, 0));
	/* Our own writable directory. */
	C_OK(mkdir(P(&M, "acc/mydir/sub"), 0755));
	C_OK(rmdir(P(&M, "acc/mydir/sub")));
	return 0;
}

static int group_reader(void *arg)
{
	(void)arg;
	int fd = open(P(&M, "acc/group"), O_RDONLY);
	C_TRUE(fd >= 0);
	close(fd);
	C_ERRNO(open(P(&M, "acc/group"), O_WRONLY), EACCES);
	return 0;
}

static int not_in_group(void *arg)
{
	(void)arg;
	C_ERRNO(open(P(&M, "acc/group"), O_RDONLY), EACCES);
	return 0;
}

static void test_access(void **state)
{
	(void)state;
	mkdir_as(P(&M, "acc"), 0, 0, 0755);
	file_as(P(&M, "acc/secret"), 0, 0, 0600, "s");
	file_as(P(&M, "acc/public"), 0, 0, 0644, "p");
	file_as(P(&M, "acc/writable"), 0, 0, 0666, "w");
	file_as(P(&M, "acc/none"), 0, 0, 0, "n");
	mkdir_as(P(&M, "acc/private"), 0, 0, 0700);
	write_str(P(&M, "acc/private/f"), "");
	mkdir_as(P(&M, "acc/searchonly"), 0, 0, 0711);
	write_str(P(&M, "acc/searchonly/f"), "");
	mkdir_as(P(&M, "acc/listonly"), 0, 0, 0744);
	write_str(P(&M, "acc/listonly/f"), "");
	file_as(P(&M, "acc/mine"), 1000, 1000, 0600, "mine");
	file_as(P(&M, "acc/owner-none"), 1000, 1000, 0070, "");
	mkdir_as(P(&M, "acc/mydir"), 1000, 1000, 0755);
	file_as(P(&M, "acc/group"), 0, 1000, 0640, "g");

	RUN_AS(U1000, others_denied);
	RUN_AS(U1000, owner_allowed);
	RUN_AS(U1001_G1000, group_reader);
	RUN_AS(U1002_SUPP, group_reader);
	RUN_AS(U1001, not_in_group);
	/* Root is not bound by modes. */
	check_str(P(&M, "acc/secret"), "s");
	check_str(P(&M, "acc/none"), "n");
	check_str(P(&M, "acc/mine"), "Mine");
	struct stat st = st_of(P(&M, "acc/mine"));
	assert_int_equal(st.st_mtim.tv_sec, 6);
	assert_int_equal(st.st_mtim.tv_nsec, 6);
	assert_int_equal(st_of(P(&M, "acc/owner-none")).st_mode, S_IFREG | 0600);
}

/* ---- setgid directories ---- */

static int sgid_create(void *arg)
{
	(void)arg;
	struct stat st;

	umask(022);
	int fd = open(P(&M, "sg/file"), O_WRONLY | O_CREAT | O_EXCL, 0644);
	C_TRUE(fd >= 0);
	close(fd);
	C_OK(stat(P(&M, "sg/file"), &st));
	C_TRUE(st.st_uid == 1000);
	C_TRUE(st.st_gid == 3000);
	C_OK(mkdir(P(&M, "sg/sub"), 0755));
	C_OK(stat(P(&M, "sg/sub"), &st));
	C_TRUE(st.st_gid == 3000);
	C_TRUE(st.st_mode == (S_IFDIR | S_ISGID | 0755));
	/* Inherited again one level down. */
	C_OK(mkdir(P(&M, "sg/sub/deeper"), 0700));
	C_OK(stat(P(&M, "sg/sub/deeper"), &st));
	C_TRUE(st.st_gid == 3000);
	C_TRUE(st.st_mode == (S_IFDIR | S_ISGID | 0700));
	C_OK(mkfifo(P(&M, "sg/fifo"), 0644));
	C_OK(stat(P(&M, "sg/fifo"), &st));
	C_TRUE(st.st_gid == 3000);
	C_OK(symlink("x", P(&M, "sg/sym")));
	C_OK(lstat(P(&M, "sg/sym"), &st));
	C_TRUE(st.st_gid == 3000);
	/* A file asking for setgid in a group we are not in loses the bit (the kernel strips it). */
	fd = open(P(&M, "sg/wants-sgid"), O_WRONLY | O_CREAT | O_EXCL, 02755);
	C_TRUE(fd >= 0);
	close(fd);
	C_OK(stat(P(&M, "sg/wants-sgid"), &st));
	C_TRUE(st.st_gid == 3000);
	C_TRUE((st.st_mode & 07777) == 0755);
	return 0;
}

static void test_setgid_dir(void **state)
{
	(void)state;
	mkdir_as(P(&M, "sg"), 0, 3000, 02777);
	assert_int_equal(st_of(P(&M, "sg")).st_mode, S_IFDIR | 02777);
	RUN_AS(U1000, sgid_create);
	/* Also for root, and a plain directory does not do it. */
	write_str(P(&M, "sg/rootfile"), "");
	assert_int_equal(st_of(P(&M, "sg/rootfile")).st_gid, 3000);
	mkdir_as(P(&M, "nosg"), 0, 3000, 0777);
	write_str(P(&M, "nosg/f"), "");
	assert_int_equal(st_of(P(&M, "nosg/f")).st_gid, 0);
	assert_ok(mkdir(P(&M, "nosg/d"), 0755));
	assert_int_equal(st_of(P(&M, "nosg/d")).st_mode, S_IFDIR | 0755);
}

/* ---- sticky directories ---- */

static int sticky_owner_creates(void *arg)
{
	(void)arg;
	int fd = open(P(&M, "tmp/mine"), O_WRONLY | O_CREAT | O_EXCL, 0666);
	C_TRUE(fd >= 0);
	close(fd);
	fd = open(P(&M, "tmp/mine2"), O_WRONLY | O_CREAT | O_EXCL, 0666);
	C_TRUE(fd >= 0);
	close(fd);
	return 0;
}

static int sticky_other(void *arg)
{
	(void)arg;
	/* The file is writable for us (0666), the directory too, but it is not ours. */
	C_ERRNO(unlink(P(&M, "tmp/mine")), EPERM);
	C_ERRNO(rename(P(&M, "tmp/mine"), P(&M, "tmp/stolen")), EPERM);
	int fd = open(P(&M, "tmp/theirs"), O_WRONLY | O_CREAT | O_EXCL, 0644);
	C_TRUE(fd >= 0);
	close(fd);
	C_ERRNO(rename(P(&M, "tmp/theirs"), P(&M, "tmp/mine")), EPERM);
	/* Our own file we may remove. */
	C_OK(unlink(P(&M, "tmp/theirs")));
	return 0;
}

static int sticky_owner_removes(void *arg)
{
	(void)arg;
	C_OK(rename(P(&M, "tmp/mine"), P(&M, "tmp/renamed")));
	C_OK(unlink(P(&M, "tmp/renamed")));
	return 0;
}

static int sticky_dir_owner(void *arg)
{
	(void)arg;
	/* The directory's owner may remove anyone's file. */
	C_OK(unlink(P(&M, "tmp2/f")));
	return 0;
}

static void test_sticky_dir(void **state)
{
	(void)state;
	mkdir_as(P(&M, "tmp"), 0, 0, 01777);
	RUN_AS(U1000, sticky_owner_creates);
	RUN_AS(U1001, sticky_other);
	RUN_AS(U1000, sticky_owner_removes);
	assert_errno(access(P(&M, "tmp/mine"), F_OK), ENOENT);
	/* Root may remove anything. */
	assert_ok(unlink(P(&M, "tmp/mine2")));
	mkdir_as(P(&M, "tmp2"), 1001, 1001, 01777);
	file_as(P(&M, "tmp2/f"), 1000, 1000, 0644, "");
	RUN_AS(U1001, sticky_dir_owner);
	assert_errno(access(P(&M, "tmp2/f"), F_OK), ENOENT);
}

/* ---- setuid/setgid bits cleared on write, truncate and chown ---- */

static int set_bits(void *arg)
{
	const char *path = arg;

	C_OK(chmod(path, 06755));
	struct stat st;
	C_OK(stat(path, &st));
	C_TRUE((st.st_mode & 07777) == 06755);
	return 0;
}

static int write_it(void *arg)
{
	int fd = open(arg, O_WRONLY);

	C_TRUE(fd >= 0);
	C_TRUE(write(fd, "changed", 7) == 7);
	close(fd);
	return 0;
}

static int truncate_it(void *arg)
{
	C_OK(truncate(arg, 1));
	return 0;
}

static void test_killpriv_write(void **state)
{
	(void)state;
	mkdir_as(P(&M, "kp"), 1000, 1000, 0755);
	file_as(P(&M, "kp/w"), 1000, 1000, 0644, "original");
	assert_int_equal(as_user(&U1000, set_bits, (void *)P(&M, "kp/w")), 0);
	assert_int_equal(as_user(&U1000, write_it, (void *)P(&M, "kp/w")), 0);
	check_str(P(&M, "kp/w"), "changedl");
	/* Like any local file system: a write by a user without CAP_FSETID clears both bits. */
	assert_int_equal(st_of(P(&M, "kp/w")).st_mode & 07777, 0755);
}

static void test_killpriv_truncate(void **state)
{
	(void)state;
	file_as(P(&M, "kp/t"), 1000, 1000, 0644, "original");
	assert_int_equal(as_user(&U1000, set_bits, (void *)P(&M, "kp/t")), 0);
	assert_int_equal(as_user(&U1000, truncate_it, (void *)P(&M, "kp/t")), 0);
	assert_int_equal(st_of(P(&M, "kp/t")).st_mode & 07777, 0755);
	assert_int_equal(st_of(P(&M, "kp/t")).st_size, 1);
}

static int open_trunc_it(void *arg)
{
	int fd = open(arg, O_WRONLY | O_TRUNC);

	C_TRUE(fd >= 0);
	close(fd);
	return 0;
}

static void test_killpriv_open_trunc(void **state)
{
	(void)state;
	file_as(P(&M, "kp/o"), 1000, 1000, 0644, "original");
	assert_int_equal(as_user(&U1000, set_bits, (void *)P(&M, "kp/o")), 0);
	assert_int_equal(as_user(&U1000, open_trunc_it, (void *)P(&M, "kp/o")), 0);
	assert_int_equal(st_of(P(&M, "kp/o")).st_size, 0);
	/* open(O_TRUNC) is a truncate: it clears the bits like truncate(2) does. */
	assert_int_equal(st_of(P(&M, "kp/o")).st_mode & 07777, 0755);
}

static void test_killpriv_chown(void **state)
{
	(void)state;
	/* Root's chown clears them too; setgid without group-exec (not an sgid executable) stays. */
	file_as(P(&M, "kp/c"), 1000, 1000, 06755, "");
	assert_ok(chown(P(&M, "kp/c"), 1001, 1001));
	struct stat st = st_of(P(&M, "kp/c"));
	assert_int_equal(st.st_uid, 1001);
	assert_int_equal(st.st_mode & 07777, 0755);
	file_as(P(&M, "kp/c2"), 1000, 1000, 02644, "");
	assert_ok(chown(P(&M, "kp/c2"), 1001, (gid_t)-1));
	assert_int_equal(st_of(P(&M, "kp/c2")).st_mode & 07777, 02644);
	/* Root writing keeps the bits (it has CAP_FSETID). */
	file_as(P(&M, "kp/r"), 1000, 1000, 06755, "");
	write_str(P(&M, "kp/r"), "root");
	assert_int_equal(st_of(P(&M, "kp/r")).st_mode & 07777, 06755);
}

/* ---- chown/chmod by non-owners ---- */

static int chown_rules(void *arg)
{
	(void)arg;
	/* Our file. */
	C_ERRNO(chown(P(&M, "co/mine"), 1001, (gid_t)-1), EPERM);
	C_OK(chown(P(&M, "co/mine"), 1002, (gid_t)-1));	/* to ourselves: allowed */
	C_OK(chown(P(&M, "co/mine"), (uid_t)-1, 1000));	/* a supplementary group of ours */
	C_ERRNO(chown(P(&M, "co/mine"), (uid_t)-1, 4242), EPERM);
	/* Someone else's. */
	C_ERRNO(chown(P(&M, "co/theirs"), 1002, 1002), EPERM);
	C_ERRNO(chown(P(&M, "co/theirs"), (uid_t)-1, 1002), EPERM);
	C_ERRNO(chmod(P(&M, "co/theirs"), 0777), EPERM);
	C_ERRNO(lchown(P(&M, "co/theirs-link"), 1002, 1002), EPERM);
	/* Setting S_ISGID for a group we are not in: the kernel drops the bit silently. */
	C_OK(chmod(P(&M, "co/othergroup"), 02755));
	struct stat st;
	C_OK(stat(P(&M, "co/othergroup"), &st));
	C_TRUE((st.st_mode & 07777) == 0755);
	return 0;
}

static void test_chown_rules(void **state)
{
	(void)state;
	mkdir_as(P(&M, "co"), 0, 0, 0755);
	file_as(P(&M, "co/mine"), 1002, 1002, 0644, "");
	file_as(P(&M, "co/theirs"), 1000, 1000, 0644, "");
	assert_ok(symlink("theirs", P(&M, "co/theirs-link")));
	assert_ok(lchown(P(&M, "co/theirs-link"), 1000, 1000));
	file_as(P(&M, "co/othergroup"), 1002, 4000, 0644, "");
	RUN_AS(U1002_SUPP, chown_rules);
	struct stat st = st_of(P(&M, "co/mine"));
	assert_int_equal(st.st_uid, 1002);
	assert_int_equal(st.st_gid, 1000);
	st = st_of(P(&M, "co/theirs"));
	assert_int_equal(st.st_uid, 1000);
	assert_int_equal(st.st_mode, S_IFREG | 0644);
}

/* ---- without allow_other, nobody but the mounter gets in ---- */

static int locked_out(void *arg)
{
	const char *dir = arg;
	struct stat st;
	char path[PATH_MAX];

	C_ERRNO(stat(dir, &st), EACCES);
	snprintf(path, sizeof(path), "%s/f", dir);
	C_ERRNO(open(path, O_RDONLY), EACCES);
	C_ERRNO(open(dir, O_RDONLY | O_DIRECTORY), EACCES);
	return 0;
}

static void test_no_allow_other(void **state)
{
	(void)state;
	struct mnt m2;

	h_init(&m2, "perms-private");
	assert_int_equal(h_mkfs(&m2, "-s 16M"), 0);
	assert_int_equal(h_mount(&m2, NULL), 0);
	assert_ok(chmod(m2.dir, 0777));
	write_str(P(&m2, "f"), "x");
	assert_ok(chmod(P(&m2, "f"), 0666));
	assert_int_equal(as_user(&U1000, locked_out, m2.dir), 0);
	check_str(P(&m2, "f"), "x");
	assert_int_equal(h_umount(&m2), 0);
	h_destroy(&m2);
}

static void test_remount(void **state)
{
	(void)state;
	close_leaked(&M);
	assert_int_equal(h_umount(&M), 0);
	fsck_clean(&M);
	assert_int_equal(h_mount(&M, "-o default_permissions,allow_other"), 0);
	struct stat st = st_of(P(&M, "sg/sub/deeper"));
	assert_int_equal(st.st_uid, 1000);
	assert_int_equal(st.st_gid, 3000);
	assert_int_equal(st.st_mode, S_IFDIR | S_ISGID | 0700);
	assert_int_equal(st_of(P(&M, "tmp")).st_mode, S_IFDIR | 01777);
	assert_int_equal(st_of(P(&M, "kp/r")).st_mode & 07777, 06755);
	assert_int_equal(st_of(P(&M, "co/mine")).st_gid, 1000);
	RUN_AS(U1001, not_in_group);
	assert_int_equal(h_umount(&M), 0);
}

static int run(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_owner_of_new_files),
		cmocka_unit_test(test_access),
		cmocka_unit_test(test_setgid_dir),
		cmocka_unit_test(test_sticky_dir),
		cmocka_unit_test(test_killpriv_write),
		cmocka_unit_test(test_killpriv_truncate),
		cmocka_unit_test(test_killpriv_open_trunc),
		cmocka_unit_test(test_killpriv_chown),
		cmocka_unit_test(test_chown_rules),
		cmocka_unit_test(test_no_allow_other),
		cmocka_unit_test(test_remount),
	};
	return cmocka_run_group_tests_name("perms", tests, setup, teardown);
}

int main(void)
{
	return h_main(run);
}
