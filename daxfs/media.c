/* SPDX-License-Identifier: MIT */
#include "media.h"

#include <errno.h>
#include <fcntl.h>
#include <libpmem.h>
#include <pthread.h>
#include <linux/fs.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "util.h"

#define PAGE 4096ul

/*
 * msync mode: pages flushed by this thread and not yet drained.  Kept per thread because a drain
 * only has to cover the caller's own stores, as a store fence does.
 */
#define PENDING_MAX 32
static __thread struct {
	uintptr_t start, end;
} pending[PENDING_MAX];
static __thread int npending;

static void sync_pending(void)
{
	for (int i = 0; i < npending; i++)
		msync((void *)pending[i].start, pending[i].end - pending[i].start, MS_SYNC);
	npending = 0;
}

void media_flush(struct media *m, const void *addr, size_t len)
{
	if (len == 0 || m->private_map)
		return;
	if (m->is_pmem) {
		pmem_flush(addr, len);
		return;
	}
	uintptr_t start = (uintptr_t)addr & ~(PAGE - 1);
	uintptr_t end = ROUND_UP((uintptr_t)addr + len, PAGE);

	/* Coalesce with a queued range that touches this one; usually the last. */
	for (int i = npending - 1; i >= 0; i--) {
		if (start <= pending[i].end && pending[i].start <= end) {
			pending[i].start = MIN(pending[i].start, start);
			pending[i].end = MAX(pending[i].end, end);
			return;
		}
	}
	if (npending == PENDING_MAX)
		sync_pending();
	pending[npending].start = start;
	pending[npending].end = end;
	npending++;
}

/* ---- crash simulation ---- */

struct undo {
	struct undo *next;
	char *addr;
	size_t len;
	char old[];
};

static pthread_mutex_t undo_lock = PTHREAD_MUTEX_INITIALIZER;

/* Remember what [addr, addr + len) held, so a torn crash can put it back. */
static void undo_record(struct media *m, void *addr, size_t len)
{
	struct undo *u = malloc(sizeof(*u) + len);

	if (!u)
		return;
	u->addr = addr;
	u->len = len;
	memcpy(u->old, addr, len);
	pthread_mutex_lock(&undo_lock);
	u->next = m->undo;
	m->undo = u;
	pthread_mutex_unlock(&undo_lock);
}

static void undo_forget(struct media *m)
{
	pthread_mutex_lock(&undo_lock);
	while (m->undo) {
		struct undo *u = m->undo;

		m->undo = u->next;
		free(u);
	}
	pthread_mutex_unlock(&undo_lock);
}

/*
 * The tear's starting state for DAXFS_CRASH_TORN=random:SEED.  xorshift stays at 0 forever, but
 * forcing the state odd (seed | 1) made seeds 2k and 2k + 1 tear the same lines; splitmix64's
 * finaliser is a bijection that spreads neighbouring seeds far apart, and the one seed it maps to
 * 0 gets a fixed nonzero state instead.
 */
static uint64_t torn_state(uint64_t seed)
{
	uint64_t z = seed + 0x9e3779b97f4a7c15ull;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	z ^= z >> 31;
	return z ? z : 0x9e3779b97f4a7c15ull;
}

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* The crash: undo (all or some) stores that no drain made durable, newest first. */
static void undo_tear(struct media *m)
{
	for (struct undo *u = m->undo; u; u = u->next) {
		if (m->torn == MEDIA_TORN_ALL) {
			memcpy(u->addr, u->old, u->len);
			continue;
		}
		for (size_t off = 0; off < u->len;) {
			size_t line = 64 - ((uintptr_t)(u->addr + off) & 63);
			size_t n = MIN(line, u->len - off);

			if (xorshift(&m->torn_seed) & 1)
				memcpy(u->addr + off, u->old + off, n);
			off += n;
		}
	}
}

void media_drain(struct media *m)
{
	if (unlikely(m->crash_at != 0)) {
		uint64_t n = __atomic_add_fetch(&m->drains, 1, __ATOMIC_SEQ_CST);

		if (n == m->crash_at) {
			if (m->torn)
				undo_tear(m);
			kill(getpid(), SIGKILL);
		}
		if (m->torn)
			undo_forget(m);
	}
	if (m->is_pmem)
		pmem_drain();
	else
		sync_pending();
}

/*
 * Emulated pmem takes exactly the pmem path (libpmem's copy, which streams large ranges and flushes
 * the lines), then queues the msync that makes it durable there.  Measured on these machines,
 * libpmem's no-flush variants are two to three times slower than that, cache flushes included.
 */
void media_copy(struct media *m, void *dst, const void *src, size_t len)
{
	if (unlikely(m->torn))
		undo_record(m, dst, len);
	pmem_memcpy(dst, src, len, PMEM_F_MEM_NODRAIN);
	if (!m->is_pmem)
		media_flush(m, dst, len);
}

void media_fill(struct media *m, void *dst, int c, size_t len)
{
	if (unlikely(m->torn))
		undo_record(m, dst, len);
	pmem_memset(dst, c, len, PMEM_F_MEM_NODRAIN);
	if (!m->is_pmem)
		media_flush(m, dst, len);
}

int media_probe_size(const char *path, uint64_t *size, enum media_kind *kind)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return -errno;
	if (S_ISREG(st.st_mode)) {
		*size = (uint64_t)st.st_size;
		*kind = MEDIA_FILE;
		return 0;
	}
	if (S_ISCHR(st.st_mode)) {
		/* Device DAX publishes its size in sysfs. */
		char p[128];
		unsigned long long sz;
		FILE *f;

		snprintf(p, sizeof(p), "/sys/dev/char/%u:%u/size", major(st.st_rdev), minor(st.st_rdev));
		f = fopen(p, "r");
		if (!f)
			return -ENODEV;
		int ok = fscanf(f, "%llu", &sz) == 1;
		fclose(f);
		if (!ok)
			return -ENODEV;
		*size = sz;
		*kind = MEDIA_DEVDAX;
		return 0;
	}
	if (S_ISBLK(st.st_mode)) {
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		uint64_t sz;

		if (fd < 0)
			return -errno;
		if (ioctl(fd, BLKGETSIZE64, &sz) < 0) {
			int e = -errno;
			close(fd);
			return e;
		}
		close(fd);
		*size = sz;
		*kind = MEDIA_BLOCKDEV;
		return 0;
	}
	return -EINVAL;
}

int media_open(struct media *m, const char *path, int flags, char *err, size_t errlen)
{
	bool priv = flags & MEDIA_PRIVATE;
	bool ro = (flags & MEDIA_RDONLY) && !priv;
	size_t maplen = 0;
	int is_pmem = 0;
	int ret;

	memset(m, 0, sizeof(*m));
	m->fd = -1;
	ret = media_probe_size(path, &m->size, &m->kind);
	if (ret < 0) {
		snprintf(err, errlen, "%s: %s", path,
			 ret == -EINVAL ? "not a regular file, block device or DAX device" : strerror(-ret));
		return ret;
	}
	m->fd = open(path, (ro || priv ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (m->fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return ret;
	}
	/* A mounted daemon holds an exclusive lock; tools take a shared one to detect it. */
	if (!(flags & MEDIA_NOLOCK) && flock(m->fd, ((flags & MEDIA_EXCL) ? LOCK_EX : LOCK_SH) | LOCK_NB) < 0) {
		ret = errno == EWOULDBLOCK ? -EBUSY : -errno;
		if (ret == -EBUSY && priv && !(flags & MEDIA_EXCL)) {
			m->in_use = true;	/* reading a private snapshot of a live image is allowed */
		} else {
			snprintf(err, errlen, "%s: %s", path,
				 ret == -EBUSY ? "in use (mounted by a running daxfs?)" : strerror(-ret));
			goto fail;
		}
	}
	if (m->size == 0) {
		ret = -EINVAL;
		snprintf(err, errlen, "%s: empty image", path);
		goto fail;
	}

	if (m->kind == MEDIA_BLOCKDEV || ro || priv) {
		/* libpmem maps files and DAX devices shared and read-write only; map these ourselves. */
		/*
		 * A private mapping only copies the pages written to it (a replayed journal, say): without
		 * MAP_NORESERVE the kernel would want swap for all of it, and refuse images bigger than RAM.
		 */
		void *p = mmap(NULL, m->size, ro ? PROT_READ : PROT_READ | PROT_WRITE,
			       priv ? MAP_PRIVATE | MAP_NORESERVE : MAP_SHARED, m->fd, 0);

		if (p == MAP_FAILED) {
			ret = -errno;
			snprintf(err, errlen, "%s: mmap: %s", path, strerror(errno));
			goto fail;
		}
		m->base = p;
		is_pmem = ro || priv ? 0 : pmem_is_pmem(p, m->size);
	} else {
		m->base = pmem_map_file(path, 0, 0, 0, &maplen, &is_pmem);
		if (!m->base) {
			ret = errno ? -errno : -EIO;
			snprintf(err, errlen, "%s: pmem_map_file: %s", path, pmem_errormsg());
			goto fail;
		}
		m->size = maplen;
	}
	/*
	 * 2 MiB pages where the backing allows them (a tmpfs mounted huge=advise or within_size, like
	 * device DAX): FUSE replies are copied out of this mapping page by page, so the page size
	 * decides much of the read cost.
	 */
	madvise(m->base, m->size, MADV_HUGEPAGE);
	m->is_pmem = is_pmem;
	m->readonly = ro;
	m->private_map = priv;
	m->path = strdup(path);
	const char *crash = getenv("DAXFS_CRASH_AT");
	if (crash && *crash)
		m->crash_at = strtoull(crash, NULL, 0);
	const char *torn = getenv("DAXFS_CRASH_TORN");
	if (m->crash_at && torn) {
		if (strcmp(torn, "all") == 0) {
			m->torn = MEDIA_TORN_ALL;
		} else if (strncmp(torn, "random", 6) == 0) {
			m->torn = MEDIA_TORN_RANDOM;
			m->torn_seed = torn_state(torn[6] == ':' ? strtoull(torn + 7, NULL, 0) : 0);
		}
	}
	return 0;
fail:
	close(m->fd);
	m->fd = -1;
	return ret;
}

void media_close(struct media *m)
{
	if (m->base) {
		if (!m->readonly && !m->private_map)
			media_drain(m);
		if (m->kind == MEDIA_BLOCKDEV || m->readonly || m->private_map)
			munmap(m->base, m->size);
		else
			pmem_unmap(m->base, m->size);
	}
	if (m->fd >= 0)
		close(m->fd);
	undo_forget(m);
	free(m->path);
	memset(m, 0, sizeof(*m));
	m->fd = -1;
}
