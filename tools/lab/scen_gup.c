/* SPDX-License-Identifier: MIT */
/*
 * gup-vs-punch: the deadlock of the 2017 thread.  The holder has block range A of a file
 * registered (the device writing it); a hole punch of A starts and, under a policy that waits,
 * waits for A's pin; the holder then needs a new registration of range B of the same file (the
 * write variant: needs to write B) before it would let go of A.  If B does not come within
 * --deadlock-timeout, the lab reads the daemon's list of waiting requests and prints the chain;
 * a chain that comes back to the holder is a deadlock.  The lab then breaks it (the holder
 * deregisters A), as nothing in a kernel would.
 */
#include "lab.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daxfs/libdaxfs.h"

struct b_job {
	struct lab_ctx *c;
	struct daxfs_dev *dev;
	int fd;
	uint64_t off, len;
	bool write;
	struct daxfs_mr *mr;	/* the pin variant's registration */
	int err;
	uint64_t lat_ns;
	int done;		/* atomic */
};

static void *b_main(void *arg)
{
	struct b_job *j = arg;
	uint64_t t0 = lab_now_ns();

	if (j->write) {
		char *buf = malloc(j->len);

		if (!buf) {
			j->err = ENOMEM;
		} else {
			memset(buf, 'B', j->len);
			ssize_t w = pwrite(j->fd, buf, j->len, (off_t)j->off);
			j->err = w == (ssize_t)j->len ? 0 : w < 0 ? errno : EIO;
			free(buf);
		}
	} else {
		int r = daxfs_reg_mr(j->dev, j->fd, j->off, j->len, j->c->p->pin_flags | DAXFS_PIN_WRITE, &j->mr);

		j->err = r < 0 ? -r : 0;
		if (r)
			j->mr = NULL;
	}
	j->lat_ns = lab_now_ns() - t0;
	lab_op(j->c, j->write ? "write_b" : "pin_b", t0, j->lat_ns, j->err, false);
	__atomic_store_n(&j->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/*
 * The chain from B's wait in the daemon's list: B (a pin) waits behind the punch, the punch waits
 * for a pin held by us.  For the write variant B is not on the list: FUSE holds the file's i_rwsem
 * across the punch request, so the write waits in the kernel; the chain starts at the punch.
 * True (with the chain in buf) when it closes on this process.
 */
static bool deadlock_chain(struct lab_ctx *c, uint64_t ino, bool write, char *buf, size_t len)
{
	struct daxfs_wait_info *w = NULL, *punch = NULL, *pin = NULL;
	uint32_t n = 0;
	pid_t me = getpid();

	buf[0] = 0;
	if (daxfs_list_waits(c->mnt_fd, &w, &n))
		return false;
	for (uint32_t i = 0; i < n; i++)
		if (w[i].ino == ino && w[i].kind == DAXFS_WAIT_PUNCH)
			punch = &w[i];
	for (uint32_t i = 0; punch && i < n; i++)
		if (w[i].kind == DAXFS_WAIT_PIN && w[i].blocker_wait == punch->wait_id)
			pin = &w[i];
	bool cycle = punch && punch->blocker_pid == me && (write || (pin && pin->pid == me));
	if (punch && write)
		snprintf(buf, len,
			 "write of B (pid %d) waits in the kernel for the file's i_rwsem, held by punch #%llu (pid %d) "
			 "of ino %llu, which waits for pin #%llu held by pid %d%s",
			 me, (unsigned long long)punch->wait_id, punch->pid, (unsigned long long)ino,
			 (unsigned long long)punch->blocker_pin, punch->blocker_pid, cycle ? ": a cycle" : "");
	else if (punch && pin)
		snprintf(buf, len,
			 "pin of B (pid %d) waits behind punch #%llu (pid %d) of ino %llu, which waits for pin #%llu "
			 "held by pid %d%s",
			 pin->pid, (unsigned long long)punch->wait_id, punch->pid, (unsigned long long)ino,
			 (unsigned long long)punch->blocker_pin, punch->blocker_pid, cycle ? ": a cycle" : "");
	else if (punch)
		snprintf(buf, len, "punch #%llu waits for pin #%llu (pid %d); B is not on the daemon's list",
			 (unsigned long long)punch->wait_id, (unsigned long long)punch->blocker_pin, punch->blocker_pid);
	free(w);
	return cycle;
}

static int gup_vs_punch(struct lab_ctx *c, bool write)
{
	const struct lab_params *p = c->p;
	uint64_t half = 1 * LAB_MiB;
	char f[600];
	struct daxfs_dev *dev;
	struct daxfs_mr *a = NULL;
	struct stat st;
	pthread_t pt, bt;
	int fd, ret;

	snprintf(f, sizeof(f), "%s/gup", c->mnt);
	if ((ret = lab_write_file(f, 2 * half, 'g')) || (fd = open(f, O_RDWR | O_CLOEXEC)) < 0 || fstat(fd, &st) < 0) {
		lab_note(c, "cannot write %s: %s", f, strerror(ret ? -ret : errno));
		return -1;
	}
	if (lab_dev_open(c, p->behaviour, &dev)) {
		close(fd);
		return -1;
	}
	ret = daxfs_reg_mr(dev, fd, 0, half, p->pin_flags | DAXFS_PIN_WRITE, &a);
	if (ret) {
		lab_dev_err(c, ret, 1);
		lab_note(c, "registration of A refused: %s (%s): no pin, no deadlock", lab_errno_name(ret),
			 daxfs_dev_errmsg());
		daxfs_dev_close(dev);
		close(fd);
		return 0;
	}
	struct lab_pump pump = { .dev = dev, .mr = a, .rate = p->rate, .wr_size = p->wr_size, .depth = p->depth };
	if (lab_pump_start(&pump) == 0)
		lab_pump_wait_completed(&pump, 1, 10000);

	struct lab_cut *punch = calloc(1, sizeof(*punch));
	struct b_job *b = calloc(1, sizeof(*b));
	if (!punch || !b) {
		lab_note(c, "out of memory");
		goto fail;
	}
	*punch = (struct lab_cut){ .c = c, .kind = LAB_CUT_PUNCH, .fd = fd, .off = 0, .len = half };
	if (pthread_create(&pt, NULL, lab_cut_main, punch))
		goto fail;
	uint64_t deadline = lab_now_ns() + 10000000000ull;
	while (!__atomic_load_n(&punch->done, __ATOMIC_ACQUIRE) && lab_waiting(c) == 0 && lab_now_ns() < deadline)
		lab_sleep_ns(1000000);

	*b = (struct b_job){ .c = c, .dev = dev, .fd = fd, .off = half, .len = half, .write = write };
	if (pthread_create(&bt, NULL, b_main, b)) {
		lab_note(c, "pthread_create failed");
		lab_pump_stop(&pump);
		daxfs_dereg_mr(a);
		lab_wait_flag(&punch->done, 20000);
		return -1;
	}
	if (!lab_wait_flag(&b->done, p->deadlock_ms)) {
		char chain[400];

		if (deadlock_chain(c, (uint64_t)st.st_ino, write, chain, sizeof(chain))) {
			c->r->deadlocks++;
			lab_note(c, "deadlock after %u ms: %s; broken by deregistering A", p->deadlock_ms, chain);
		} else {
			lab_note(c, "B still waits after %u ms%s%s", p->deadlock_ms, chain[0] ? ": " : "", chain);
		}
	}
	/* The holder lets go of A: whatever waited on it goes on. */
	lab_pump_stop(&pump);
	daxfs_dereg_mr(a);
	c->r->dev_bytes += pump.bytes;
	lab_errs_merge(&c->r->dev_errs, &pump.errs);
	bool hung = !lab_wait_flag(&punch->done, 20000) || !lab_wait_flag(&b->done, 20000);
	if (hung) {
		lab_note(c, "the punch or B still waits 20 s after A was deregistered");
		return -1;	/* the jobs stay: their threads may still use them */
	}
	pthread_join(pt, NULL);
	pthread_join(bt, NULL);
	if (b->err) {
		if (!write)
			lab_dev_err(c, b->err, 1);
		lab_note(c, "%s of B failed: %s", write ? "the write" : "the registration", lab_errno_name(b->err));
	} else if (!c->r->deadlocks) {
		lab_info(c, "%s of B took %.1f ms", write ? "the write" : "the registration", (double)b->lat_ns / 1e6);
	}
	if (b->mr)
		daxfs_dereg_mr(b->mr);
	free(punch);
	free(b);
	daxfs_dev_close(dev);
	close(fd);
	return 0;
fail:
	lab_pump_stop(&pump);
	daxfs_dereg_mr(a);
	daxfs_dev_close(dev);
	close(fd);
	free(punch);
	free(b);
	return -1;
}

static int gup_vs_punch_pin(struct lab_ctx *c)
{
	return gup_vs_punch(c, false);
}

static int gup_vs_punch_write(struct lab_ctx *c)
{
	return gup_vs_punch(c, true);
}

const struct lab_scenario lab_scen_gup = { "gup-vs-punch",
	"the holder of pinned A needs a new pin on B of the same file while a punch of A waits", gup_vs_punch_pin };
const struct lab_scenario lab_scen_gup_write = { "gup-vs-punch-write",
	"the holder of pinned A needs to write B of the same file while a punch of A waits", gup_vs_punch_write };
