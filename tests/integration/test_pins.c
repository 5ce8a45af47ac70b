/* SPDX-License-Identifier: MIT */
/*
 * Pins through the control ABI on a mounted daxfs: what PIN returns, every documented errno, extent
 * and listing pagination, the pin limits, long-term admission and who may change the policy, and
 * pins dropping when their open file goes away (close, or the holder killed).  And daxfs-pin, the
 * tool that pins as a device would: its --json output.
 *
 * The busy-extent scenarios and the truncate policies are in test_pins_policy.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "jsonl.h"
#include "pins_util.h"

/* Check that every extent lies in the data area and that the media holds the file's stream there. */
static void check_extents_on_media(const struct mnt *m, const struct daxfs_ioc_info *in, const struct daxfs_pin *p,
				   unsigned seed)
{
	for (uint32_t i = 0; i < p->nextents; i++) {
		const struct daxfs_pin_extent *e = &p->ext[i];
		char *buf = malloc(e->len);

		assert_non_null(buf);
		if (e->media_off < in->data_offset || e->media_off + e->len > in->media_size)
			fail_msg("extent %u media [%llu, +%llu) outside the data area [%llu, %llu)", i,
				 (unsigned long long)e->media_off, (unsigned long long)e->len,
				 (unsigned long long)in->data_offset, (unsigned long long)in->media_size);
		pu_read_media(m, e->media_off, buf, e->len);
		long d = pu_pat_diff(buf, e->len, e->file_off, seed);
		if (d >= 0)
			fail_msg("extent %u: media byte %llu does not hold file byte %llu", i,
				 (unsigned long long)(e->media_off + (uint64_t)d), (unsigned long long)(e->file_off + (uint64_t)d));
		free(buf);
	}
}

static void test_pin_extents_and_holes(void **state)
{
	struct daxfs_ioc_info in;
	struct daxfs_ioc_pin_status ps;
	struct mnt m;
	struct stat st;
	char f[512], h[512];

	(void)state;
	pu_setup(&m, "pinabi", "64M", NULL);
	snprintf(f, sizeof(f), "%s", P(&m, "F"));
	snprintf(h, sizeof(h), "%s", P(&m, "H"));
	int dfd = pu_dirfd(&m);
	assert_int_equal(daxfs_info(dfd, &in), 0);
	assert_int_equal(in.block_size, BS);
	assert_int_equal(in.media_size, 64 * MiB);
	assert_true(in.data_offset > 0 && in.data_offset < in.media_size && in.data_offset % BS == 0);
	assert_int_equal(in.media_kind, DAXFS_MEDIA_FILE);
	assert_string_equal(in.media_path, m.image);

	pu_write_file(f, 1 * MiB, 1);
	int fd = open(f, O_RDWR);
	assert_true(fd >= 0);
	assert_ok(fstat(fd, &st));

	/* An unaligned range widens to whole blocks: [5000, 15000) is blocks 1..3. */
	struct daxfs_pin p = pu_pin(fd, 5000, 10000, 0);
	assert_int_equal(p.offset, 4096);
	assert_int_equal(p.length, 3 * BS);
	assert_true(p.id != 0);
	check_extents_on_media(&m, &in, &p, 1);

	assert_int_equal(daxfs_pin_status(fd, p.id, &ps), 0);
	assert_int_equal(ps.state, DAXFS_PIN_ACTIVE);
	assert_int_equal(ps.offset, 4096);
	assert_int_equal(ps.length, 3 * BS);
	assert_int_equal(ps.flags, 0);
	assert_int_equal(ps.nextents, p.nextents);
	assert_int_equal(ps.deadline_ns, 0);

	struct daxfs_pin_info *pi;
	uint32_t n;
	assert_int_equal(daxfs_list_pins(dfd, &pi, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(pi[0].pin_id, p.id);
	assert_int_equal(pi[0].ino, st.st_ino);
	assert_int_equal(pi[0].offset, 4096);
	assert_int_equal(pi[0].length, 3 * BS);
	assert_int_equal(pi[0].state, DAXFS_PIN_ACTIVE);
	assert_int_equal(pi[0].pid, getpid());
	assert_int_equal(pi[0].nextents, p.nextents);
	free(pi);

	struct daxfs_ioc_stats s = pu_stats(dfd);
	assert_int_equal(s.pins_active, 1);
	assert_int_equal(s.pins_created, 1);
	assert_int_equal(s.pinned_blocks, 3);

	assert_int_equal(daxfs_unpin(fd, p.id), 0);
	assert_int_equal(daxfs_unpin(fd, p.id), -ENOENT);
	s = pu_stats(dfd);
	assert_int_equal(s.pins_active, 0);
	assert_int_equal(s.pins_released, 1);
	assert_int_equal(s.pinned_blocks, 0);
	daxfs_pin_free(&p);
	assert_true(pu_check_file(f, 0, 1 * MiB, 1));	/* a read pin changes nothing */

	/* Pinning a hole allocates zeroed blocks, as a DAX write fault would. */
	int hfd = open(h, O_RDWR | O_CREAT, 0644);
	assert_true(hfd >= 0);
	assert_ok(ftruncate(hfd, 1 * MiB));
	assert_ok(fstat(hfd, &st));
	assert_int_equal(st.st_blocks, 0);
	uint64_t bfree0 = pu_bfree(&m);
	p = pu_pin(hfd, 64 * KiB, 8 * KiB, DAXFS_PIN_WRITE);
	assert_int_equal(p.offset, 64 * KiB);
	assert_int_equal(p.length, 8 * KiB);
	assert_ok(fstat(hfd, &st));
	assert_int_equal(st.st_blocks, 16);
	assert_int_equal(st.st_size, 1 * MiB);
	assert_int_equal(pu_bfree(&m), bfree0 - 2);
	assert_true(pu_file_zero(h, 0, 1 * MiB));
	for (uint32_t i = 0; i < p.nextents; i++)
		assert_true(pu_media_zero(&m, p.ext[i].media_off, p.ext[i].len));
	assert_int_equal(lseek(hfd, 0, SEEK_DATA), 64 * KiB);
	/*
	 * The last byte of the file pins the last block.  A read pin over a hole maps the zero page, as
	 * a DAX read fault would: nothing is allocated, nothing pinned there.
	 */
	struct daxfs_pin q = pu_pin(hfd, 1 * MiB - 1, 1, 0);
	assert_int_equal(q.offset, 1 * MiB - BS);
	assert_int_equal(q.length, BS);
	assert_int_equal(q.nextents, 1);
	assert_true(q.ext[0].media_off == DAXFS_MEDIA_ZERO);
	assert_ok(fstat(hfd, &st));
	assert_int_equal(st.st_blocks, 16);
	assert_int_equal(pu_stats(dfd).pinned_blocks, 2);
	/* A read pin across data and holes pins the data only. */
	struct daxfs_pin r = pu_pin(hfd, 60 * KiB, 16 * KiB, 0);
	assert_int_equal(r.nextents, 3);
	assert_true(r.ext[0].media_off == DAXFS_MEDIA_ZERO && r.ext[0].len == 4 * KiB);
	assert_int_equal(r.ext[1].media_off, p.ext[0].media_off);
	assert_true(r.ext[2].media_off == DAXFS_MEDIA_ZERO && r.ext[2].len == 4 * KiB);
	assert_int_equal(pu_bfree(&m), bfree0 - 2);
	daxfs_pin_free(&r);
	daxfs_pin_free(&q);
	daxfs_pin_free(&p);

	assert_ok(close(hfd));
	assert_ok(close(fd));
	assert_true(PU_POLL(pu_npins(dfd) == 0, PU_WAIT_MS));
	assert_ok(close(dfd));
	pu_finish(&m);
}

/* Raw ioctl returning -errno, for the malformed requests libdaxfs cannot make. */
static int raw(int fd, unsigned long cmd, void *arg)
{
	return ioctl(fd, cmd, arg) < 0 ? -errno : 0;
}

static void test_pin_errors(void **state)
{
	struct mnt m;
	char f[512], e[512];

	(void)state;
	pu_setup(&m, "pinerr", "64M", NULL);
	snprintf(f, sizeof(f), "%s", P(&m, "F"));
	snprintf(e, sizeof(e), "%s", P(&m, "empty"));
	pu_write_file(f, 1 * MiB, 2);
	pu_write_file(e, 0, 0);
	int dfd = pu_dirfd(&m);
	int fd = open(f, O_RDWR), ro = open(f, O_RDONLY), efd = open(e, O_RDWR);
	assert_true(fd >= 0 && ro >= 0 && efd >= 0);
	struct daxfs_pin p;

	/* Ranges: nothing at or beyond EOF, nothing empty. */
	assert_int_equal(daxfs_pin(fd, 1 * MiB, 1, 0, &p), -EINVAL);
	assert_int_equal(daxfs_pin(fd, 1 * MiB - BS, 2 * BS, 0, &p), -EINVAL);
	assert_int_equal(daxfs_pin(fd, 2 * MiB, BS, 0, &p), -EINVAL);
	assert_int_equal(daxfs_pin(fd, 4096, UINT64_MAX, 0, &p), -EINVAL);
	assert_int_equal(daxfs_pin(fd, 0, 0, 0, &p), -EINVAL);
	assert_int_equal(daxfs_pin(efd, 0, 1, 0, &p), -EINVAL);
	/* Flags, and signals. */
	assert_int_equal(daxfs_pin(fd, 0, BS, 0x10, &p), -EINVAL);
	assert_int_equal(daxfs_pin_signal(fd, 0, BS, 0, SIGKILL, &p), -EINVAL);
	assert_int_equal(daxfs_pin_signal(fd, 0, BS, 0, SIGSEGV, &p), -EINVAL);
	assert_int_equal(daxfs_pin_signal(fd, 0, BS, 0, 65, &p), -EINVAL);
	assert_int_equal(daxfs_pin_signal(fd, 0, BS, 0, -1, &p), -EINVAL);
	assert_int_equal(daxfs_pin(fd, 0, BS, 0x80000000u, &p), -EINVAL);
	/* Access mode: write pins need a writable open file. */
	assert_int_equal(daxfs_pin(ro, 0, BS, DAXFS_PIN_WRITE, &p), -EBADF);
	assert_int_equal(daxfs_pin(ro, 0, BS, DAXFS_PIN_WRITE | DAXFS_PIN_LONGTERM, &p), -EBADF);
	struct daxfs_pin rp = pu_pin(ro, 0, BS, 0);
	struct daxfs_pin rlp = pu_pin(ro, BS, BS, DAXFS_PIN_LONGTERM);
	assert_int_equal(pu_stats(dfd).pins_active, 2);

	/* Commands daxfs does not know. */
	struct daxfs_ioc_unpin un = { .size = sizeof(un), .pin_id = rp.id };
	assert_int_equal(raw(fd, _IOWR(DAXFS_IOC_MAGIC, 77, struct daxfs_ioc_unpin), &un), -ENOTTY);
	assert_int_equal(raw(fd, _IOW(DAXFS_IOC_MAGIC, 1, struct daxfs_ioc_unpin), &un), -ENOTTY);
	assert_int_equal(raw(fd, _IOR('x', 3, uint64_t), &un), -ENOTTY);

	/* A wrong size field. */
	struct daxfs_ioc_pin *pa = calloc(1, sizeof(*pa));
	assert_non_null(pa);
	const uint32_t bad_sizes[] = { 0, sizeof(*pa) - 8, sizeof(*pa) + 8, 16 };
	for (size_t i = 0; i < sizeof(bad_sizes) / sizeof(bad_sizes[0]); i++) {
		memset(pa, 0, sizeof(*pa));
		pa->size = bad_sizes[i];
		pa->length = BS;
		assert_int_equal(raw(fd, DAXFS_IOC_PIN, pa), -EINVAL);
	}
	un.size = sizeof(un) - 4;
	assert_int_equal(raw(ro, DAXFS_IOC_UNPIN, &un), -EINVAL);
	struct daxfs_ioc_pin_status ps = { .size = sizeof(ps) + 1, .pin_id = rp.id };
	assert_int_equal(raw(ro, DAXFS_IOC_PIN_STATUS, &ps), -EINVAL);
	struct daxfs_ioc_policy pol = { .size = 8, .op = DAXFS_POLICY_GET };
	assert_int_equal(raw(dfd, DAXFS_IOC_POLICY, &pol), -EINVAL);
	/* Reserved fields. */
	for (int i = 0; i < 2; i++) {
		memset(pa, 0, sizeof(*pa));
		pa->size = sizeof(*pa);
		pa->length = BS;
		if (i)
			pa->reserved1 = 1;
		else
			pa->reserved0 = 1;
		assert_int_equal(raw(fd, DAXFS_IOC_PIN, pa), -EINVAL);
	}
	un = (struct daxfs_ioc_unpin){ .size = sizeof(un), .reserved = 1, .pin_id = rp.id };
	assert_int_equal(raw(ro, DAXFS_IOC_UNPIN, &un), -EINVAL);
	/* A policy name without its terminating NUL. */
	pol = (struct daxfs_ioc_policy){ .size = sizeof(pol), .op = DAXFS_POLICY_SET };
	memset(pol.name, 'a', sizeof(pol.name));
	assert_int_equal(raw(dfd, DAXFS_IOC_POLICY, &pol), -EINVAL);
	/* None of the refused requests did anything: the two pins are all there is. */
	struct daxfs_ioc_stats s = pu_stats(dfd);
	assert_int_equal(s.pins_active, 2);
	assert_int_equal(s.pins_created, 2);
	assert_int_equal(daxfs_pin_status(ro, rp.id, &ps), 0);

	/* Unknown pin ids. */
	assert_int_equal(daxfs_unpin(fd, 999999), -ENOENT);
	assert_int_equal(daxfs_unpin(fd, 0), -ENOENT);
	assert_int_equal(daxfs_pin_status(fd, 999999, &ps), -ENOENT);
	assert_int_equal(daxfs_dma(fd, 999999, DAXFS_DMA_VERIFY_PATTERN, 0, 64, 0, NULL, NULL), -ENOENT);
	struct daxfs_ioc_pin_extents *pe = calloc(1, sizeof(*pe));
	assert_non_null(pe);
	pe->size = sizeof(*pe);
	pe->pin_id = 999999;
	assert_int_equal(raw(fd, DAXFS_IOC_PIN_EXTENTS, pe), -ENOENT);

	/* DMA through a read pin may only read. */
	struct daxfs_pin wp = pu_pin(fd, 0, 64 * KiB, DAXFS_PIN_WRITE);
	struct daxfs_pin rdp = pu_pin(fd, 0, 64 * KiB, 0);
	uint64_t mis = 0, first = 0;
	assert_int_equal(daxfs_dma(fd, rdp.id, DAXFS_DMA_WRITE_PATTERN, 0, 64 * KiB, 1, NULL, NULL), -EACCES);
	assert_int_equal(daxfs_dma(fd, rdp.id, DAXFS_DMA_ZERO, 0, 64 * KiB, 1, NULL, NULL), -EACCES);
	assert_int_equal(daxfs_dma(fd, rdp.id, DAXFS_DMA_VERIFY_PATTERN, 0, 64 * KiB, 1, &mis, &first), 0);
	assert_int_equal(mis, 64 * KiB / DAXFS_TAG_UNIT);	/* the file holds its stream, no tags */
	assert_int_equal(first, 0);
	assert_true(pu_check_file(f, 0, 1 * MiB, 2));	/* the refused writes wrote nothing */

	/* DMA offsets and lengths: multiples of 64 inside the pin. */
	const struct { uint64_t off, len; } bad[] = {
		{ 32, 64 }, { 0, 96 }, { 0, 0 }, { 64 * KiB, 64 }, { 64 * KiB - 64, 128 }, { 0, 64 * KiB + 64 },
		{ 64, UINT64_MAX - 63 }, { UINT64_MAX - 63, 64 },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = daxfs_dma(fd, wp.id, DAXFS_DMA_WRITE_PATTERN, bad[i].off, bad[i].len, 1, NULL, NULL);
		if (r != -EINVAL)
			fail_msg("DMA offset %llu length %llu: expected EINVAL, got %d", (unsigned long long)bad[i].off,
				 (unsigned long long)bad[i].len, r);
	}
	assert_int_equal(daxfs_dma(fd, wp.id, 0, 0, 32, 1, NULL, NULL), -EINVAL);
	assert_int_equal(daxfs_dma(fd, wp.id, 4, 0, 32, 1, NULL, NULL), -EINVAL);
	struct daxfs_ioc_dma dma = { .size = sizeof(dma), .op = DAXFS_DMA_VERIFY_PATTERN, .pin_id = wp.id, .length = 64 };
	dma.reserved = 1;
	assert_int_equal(raw(fd, DAXFS_IOC_DMA, &dma), -EINVAL);
	assert_true(pu_check_file(f, 0, 1 * MiB, 2));

	/* A good DMA lands exactly where asked, as traceable units, and verify sees exactly that. */
	assert_int_equal(daxfs_dma(fd, wp.id, DAXFS_DMA_WRITE_PATTERN, 4096, 8192, 7, NULL, NULL), 0);
	assert_int_equal(daxfs_dma(fd, wp.id, DAXFS_DMA_VERIFY_PATTERN, 4096, 8192, 7, &mis, &first), 0);
	assert_int_equal(mis, 0);
	assert_int_equal(first, UINT64_MAX);
	assert_int_equal(daxfs_dma(fd, wp.id, DAXFS_DMA_VERIFY_PATTERN, 0, 64 * KiB, 7, &mis, &first), 0);
	assert_int_equal(mis, (64 * KiB - 8192) / DAXFS_TAG_UNIT);
	assert_int_equal(first, 0);
	assert_int_equal(daxfs_dma(fd, wp.id, DAXFS_DMA_VERIFY_PATTERN, 4096, 8192, 8, &mis, &first), 0);
	assert_int_equal(mis, 8192 / DAXFS_TAG_UNIT);
	assert_int_equal(first, 4096);
	char buf[8192];
	assert_int_equal(pread(fd, buf, sizeof(buf), 4096), (ssize_t)sizeof(buf));
	assert_int_equal(pu_count_units(buf, sizeof(buf), wp.id, 7), sizeof(buf) / DAXFS_TAG_UNIT);
	struct stat fst;
	assert_ok(fstat(fd, &fst));
	for (size_t i = 0; i < sizeof(buf); i += DAXFS_TAG_UNIT) {
		struct daxfs_tag u;

		assert_true(daxfs_tag_decode(buf + i, &u));
		/* The tag names its writer and where it meant to write: this file at this offset. */
		assert_int_equal(u.ino, fst.st_ino);
		assert_int_equal(u.file_off, 4096 + i);
		assert_int_equal(u.source, DAXFS_TAG_SRC_IOCTL);
		assert_int_equal(u.gen, 0);
		/* The unit names the media byte it sits at: the pin's extent for file offset 4096 + i. */
		uint64_t want = UINT64_MAX;
		for (uint32_t k = 0; k < wp.nextents; k++)
			if (wp.ext[k].file_off <= 4096 + i && 4096 + i < wp.ext[k].file_off + wp.ext[k].len)
				want = wp.ext[k].media_off + (4096 + i - wp.ext[k].file_off);
		assert_int_equal(u.media_off, want);
	}
	assert_true(pu_check_file(f, 0, 4096, 2));
	assert_true(pu_check_file(f, 12288, 1 * MiB - 12288, 2));
	assert_int_equal(daxfs_dma(fd, wp.id, DAXFS_DMA_ZERO, 4096, 4096, 0, NULL, NULL), 0);
	assert_true(pu_file_zero(f, 4096, 4096));
	assert_true(pu_check_file(f, 12288, 1 * MiB - 12288, 2));

	/* A pin belongs to the open file that took it: a second open of the same file may not use it. */
	int fd2 = open(f, O_RDWR);
	assert_true(fd2 >= 0);
	assert_int_equal(daxfs_unpin(fd2, wp.id), -EBADF);
	assert_int_equal(daxfs_pin_status(fd2, wp.id, &ps), -EBADF);
	assert_int_equal(daxfs_dma(fd2, wp.id, DAXFS_DMA_VERIFY_PATTERN, 0, 64, 7, NULL, NULL), -EBADF);
	assert_int_equal(daxfs_dma(fd2, wp.id, DAXFS_DMA_WRITE_PATTERN, 0, 64, 7, NULL, NULL), -EBADF);
	memset(pe, 0, sizeof(*pe));
	pe->size = sizeof(*pe);
	pe->pin_id = wp.id;
	assert_int_equal(raw(fd2, DAXFS_IOC_PIN_EXTENTS, pe), -EBADF);
	assert_int_equal(daxfs_unpin(efd, wp.id), -EBADF);	/* another file altogether */
	assert_int_equal(daxfs_unpin(dfd, wp.id), -EBADF);	/* the directory */
	assert_int_equal(daxfs_pin_status(fd, wp.id, &ps), 0);	/* still there for its owner */
	assert_int_equal(ps.state, DAXFS_PIN_ACTIVE);
	assert_int_equal(ps.flags, DAXFS_PIN_WRITE);
	assert_int_equal(raw(fd, DAXFS_IOC_PIN_EXTENTS, pe), 0);
	assert_int_equal(pe->nextents, wp.nextents);
	assert_int_equal(daxfs_unpin(fd, wp.id), 0);
	assert_int_equal(daxfs_unpin(fd, rdp.id), 0);
	assert_int_equal(daxfs_unpin(ro, rp.id), 0);
	assert_int_equal(daxfs_unpin(ro, rlp.id), 0);
	assert_int_equal(pu_stats(dfd).pins_active, 0);

	daxfs_pin_free(&wp);
	daxfs_pin_free(&rdp);
	daxfs_pin_free(&rp);
	daxfs_pin_free(&rlp);
	free(pa);
	free(pe);
	close(fd2);
	close(fd);
	close(ro);
	close(efd);
	close(dfd);
	pu_finish(&m);
}

/* A file of > DAXFS_PIN_EXT_MAX extents: the reply pages, and daxfs_pin gathers all of it in order. */
static void test_pin_extents_paging(void **state)
{
	struct daxfs_ioc_info in;
	struct mnt m;
	char a[512], b[512], buf[4096];
	const unsigned nblk = 300;

	(void)state;
	pu_setup(&m, "pinpage", "64M", NULL);
	snprintf(a, sizeof(a), "%s", P(&m, "A"));
	snprintf(b, sizeof(b), "%s", P(&m, "B"));
	int dfd = pu_dirfd(&m);
	assert_int_equal(daxfs_info(dfd, &in), 0);
	int fa = open(a, O_RDWR | O_CREAT, 0644), fb = open(b, O_RDWR | O_CREAT, 0644);
	assert_true(fa >= 0 && fb >= 0);
	/* Alternate single-block appends: each file's next block is taken by the other, so neither extends in place. */
	for (unsigned i = 0; i < nblk; i++) {
		pu_pat_fill(buf, sizeof(buf), (uint64_t)i * BS, 3);
		assert_int_equal(pwrite(fa, buf, BS, (off_t)(i * BS)), (ssize_t)BS);
		pu_pat_fill(buf, sizeof(buf), (uint64_t)i * BS, 4);
		assert_int_equal(pwrite(fb, buf, BS, (off_t)(i * BS)), (ssize_t)BS);
	}
	struct daxfs_pin pa = pu_pin(fa, 0, nblk * BS, 0);
	struct daxfs_pin pb = pu_pin(fb, 0, nblk * BS, 0);
	print_message("extents: A %u, B %u\n", pa.nextents, pb.nextents);
	if (pa.nextents <= DAXFS_PIN_EXT_MAX)
		fail_msg("could not fragment A: %u extents", pa.nextents);
	assert_int_equal(pa.length, nblk * BS);
	check_extents_on_media(&m, &in, &pa, 3);
	check_extents_on_media(&m, &in, &pb, 4);
	for (uint32_t i = 0; i < pb.nextents; i++)
		assert_false(pu_ext_overlap(pa.ext, pa.nextents, pb.ext[i].media_off, pb.ext[i].len));

	/* The paging command itself: the second page, an exact end, and past the end. */
	struct daxfs_ioc_pin_extents *pe = calloc(1, sizeof(*pe));
	assert_non_null(pe);
	pe->size = sizeof(*pe);
	pe->pin_id = pa.id;
	pe->start = DAXFS_PIN_EXT_MAX;
	assert_int_equal(ioctl(fa, DAXFS_IOC_PIN_EXTENTS, pe), 0);
	assert_int_equal(pe->nextents, pa.nextents);
	uint32_t want = pa.nextents - DAXFS_PIN_EXT_MAX < DAXFS_PIN_EXT_MAX ? pa.nextents - DAXFS_PIN_EXT_MAX
									    : DAXFS_PIN_EXT_MAX;
	assert_int_equal(pe->nreturned, want);
	assert_memory_equal(pe->ext, pa.ext + DAXFS_PIN_EXT_MAX, want * sizeof(pe->ext[0]));
	pe->start = pa.nextents;
	assert_int_equal(ioctl(fa, DAXFS_IOC_PIN_EXTENTS, pe), 0);
	assert_int_equal(pe->nreturned, 0);
	pe->start = UINT32_MAX;
	assert_int_equal(ioctl(fa, DAXFS_IOC_PIN_EXTENTS, pe), 0);
	assert_int_equal(pe->nreturned, 0);

	free(pe);
	daxfs_pin_free(&pa);
	daxfs_pin_free(&pb);
	close(fa);
	close(fb);
	close(dfd);
	pu_finish(&m);
}

/* The mount-wide commands work on the mount point; PIN on a directory does not. */
static void test_mount_point_ioctls(void **state)
{
	struct daxfs_ioc_info in, in2;
	struct daxfs_ioc_policy pol;
	struct mnt m;
	struct stat st;
	char f[512];

	(void)state;
	pu_setup(&m, "pindir", "64M", NULL);
	snprintf(f, sizeof(f), "%s", P(&m, "F"));
	int dfd = pu_dirfd(&m);
	assert_int_equal(daxfs_info(dfd, &in), 0);
	assert_int_equal(in.block_size, BS);
	assert_int_equal(in.media_size, 64 * MiB);
	struct daxfs_ioc_stats s = pu_stats(dfd);
	assert_true(s.blocks > 0 && s.blocks < 64 * MiB / BS);
	assert_int_equal(s.free_blocks, pu_bfree(&m));
	assert_int_equal(s.pins_active, 0);
	assert_int_equal(s.busy_extents, 0);
	assert_int_equal(pu_npins(dfd), 0);
	assert_int_equal(pu_nbusy(dfd), 0);
	assert_int_equal(daxfs_policy_get(dfd, &pol), 0);
	assert_string_equal(pol.name, "busy");
	assert_string_equal(pol.params, "pins=allow,grace_ms=1000,wait_timeout_ms=0");
	assert_int_equal(pol.flags, 0);
	struct daxfs_pin p;
	assert_int_equal(daxfs_pin(dfd, 0, 1, 0, &p), -EINVAL);
	assert_int_equal(daxfs_pin(dfd, 0, BS, DAXFS_PIN_LONGTERM, &p), -EINVAL);
	assert_ok(mkdir(P(&m, "sub"), 0755));
	int sub = open(P(&m, "sub"), O_RDONLY | O_DIRECTORY);
	assert_true(sub >= 0);
	assert_int_equal(daxfs_info(sub, &in2), 0);
	assert_memory_equal(in.uuid, in2.uuid, sizeof(in.uuid));
	assert_int_equal(daxfs_pin(sub, 0, 1, 0, &p), -EINVAL);
	close(sub);

	/* LIST_PINS pages at 200: 310 pins, one on every other block of a 4 MiB file. */
	const unsigned npins = 310;
	pu_write_file(f, 4 * MiB, 5);
	int fd = open(f, O_RDWR);
	assert_true(fd >= 0);
	assert_ok(fstat(fd, &st));
	uint64_t *ids = calloc(npins, sizeof(*ids)), *media = calloc(npins, sizeof(*media));
	assert_true(ids && media);
	for (unsigned i = 0; i < npins; i++) {
		p = pu_pin(fd, 2 * i * BS, BS, 0);
		assert_int_equal(p.nextents, 1);
		ids[i] = p.id;
		media[i] = p.ext[0].media_off;
		daxfs_pin_free(&p);
	}
	struct daxfs_pin_info *pi;
	uint32_t n;
	assert_int_equal(daxfs_list_pins(dfd, &pi, &n), 0);
	assert_int_equal(n, npins);
	for (unsigned i = 0; i < n; i++) {
		assert_int_equal(pi[i].pin_id, ids[i]);	/* id order, nothing lost or repeated across pages */
		assert_int_equal(pi[i].offset, 2 * i * BS);
		assert_int_equal(pi[i].ino, st.st_ino);
	}
	free(pi);

	/* LIST_BUSY pages at 300: truncating makes one busy extent per pinned block. */
	assert_ok(ftruncate(fd, 0));
	struct daxfs_busy_info *bi = pu_busy(dfd, &n);
	assert_int_equal(n, npins);
	s = pu_stats(dfd);
	assert_int_equal(s.busy_extents, npins);
	assert_int_equal(s.busy_blocks, npins);
	for (unsigned i = 0; i < n; i++) {
		if (i > 0)
			assert_true(bi[i].media_off > bi[i - 1].media_off);	/* media order */
		assert_int_equal(bi[i].len, BS);
		assert_int_equal(bi[i].ino, st.st_ino);
		assert_int_equal(bi[i].state, DAXFS_BUSY_PINNED);
		assert_int_equal(bi[i].pins, 1);
		bool found = false;
		for (unsigned k = 0; k < npins && !found; k++)
			found = media[k] == bi[i].media_off;
		assert_true(found);
	}
	free(bi);
	/* Closing the file drops every pin; reclaim then empties the list. */
	uint64_t bfree = pu_bfree(&m);
	assert_ok(close(fd));
	assert_true(PU_POLL(pu_npins(dfd) == 0, PU_WAIT_MS));
	assert_true(PU_POLL(pu_nbusy(dfd) == 0 && pu_bfree(&m) == bfree + npins, PU_WAIT_MS));
	s = pu_stats(dfd);
	assert_int_equal(s.reclaimed_blocks, npins);
	assert_int_equal(s.busy_blocks, 0);
	free(ids);
	free(media);
	close(dfd);
	pu_finish(&m);
}

/* max_pins_per_file=3 gives EMFILE on the 4th pin of one open file, max_pins=5 ENFILE on the 6th overall. */
static void test_pin_limits(void **state)
{
	struct daxfs_pin p[8], x;
	struct mnt m;
	char f[512], g[512];

	(void)state;
	pu_setup(&m, "pinlim", "64M", "max_pins_per_file=3,max_pins=5");
	snprintf(f, sizeof(f), "%s", P(&m, "F"));
	snprintf(g, sizeof(g), "%s", P(&m, "G"));
	pu_write_file(f, 1 * MiB, 6);
	pu_write_file(g, 1 * MiB, 7);
	int dfd = pu_dirfd(&m);
	int f1 = open(f, O_RDWR), f2 = open(f, O_RDWR), g1 = open(g, O_RDONLY);
	assert_true(f1 >= 0 && f2 >= 0 && g1 >= 0);
	for (int i = 0; i < 3; i++)
		p[i] = pu_pin(f1, (uint64_t)i * BS, BS, 0);
	assert_int_equal(daxfs_pin(f1, 0, BS, 0, &x), -EMFILE);
	assert_int_equal(daxfs_pin(f1, 0, BS, DAXFS_PIN_WRITE, &x), -EMFILE);
	p[3] = pu_pin(f2, 0, BS, 0);	/* the limit is per open file, not per inode */
	p[4] = pu_pin(g1, 0, BS, 0);
	assert_int_equal(pu_npins(dfd), 5);
	assert_int_equal(daxfs_pin(f2, 0, BS, 0, &x), -ENFILE);
	assert_int_equal(daxfs_pin(g1, BS, BS, 0, &x), -ENFILE);
	assert_int_equal(daxfs_pin(f1, 0, BS, 0, &x), -EMFILE);	/* both limits hit: the per-file one is reported */
	struct daxfs_ioc_stats s = pu_stats(dfd);
	assert_int_equal(s.pins_active, 5);
	assert_int_equal(s.pins_refused, 5);

	/* Unpinning makes room again, for exactly one more. */
	assert_int_equal(daxfs_unpin(f1, p[0].id), 0);
	p[5] = pu_pin(f2, BS, BS, 0);
	assert_int_equal(daxfs_pin(g1, BS, BS, 0, &x), -ENFILE);
	assert_int_equal(daxfs_unpin(f1, p[1].id), 0);
	p[6] = pu_pin(f1, 0, BS, 0);
	assert_int_equal(daxfs_pin(f1, 0, BS, 0, &x), -ENFILE);
	/* Closing a file gives its pins back to the global budget. */
	assert_ok(close(g1));
	assert_true(PU_POLL(pu_npins(dfd) == 4, PU_WAIT_MS));
	p[7] = pu_pin(f2, 2 * BS, BS, 0);
	assert_int_equal(daxfs_pin(f2, 3 * BS, BS, 0, &x), -EMFILE);
	for (int i = 0; i < 8; i++)
		daxfs_pin_free(&p[i]);
	close(f1);
	close(f2);
	assert_true(PU_POLL(pu_npins(dfd) == 0, PU_WAIT_MS));
	close(dfd);
	pu_finish(&m);
}

/* In a child as uid/gid 1000: POLICY SET on the inherited descriptor; exit 0 when refused with EPERM. */
static int policy_set_as_user(int dfd)
{
	pid_t pid = pu_fork();
	int st;

	if (pid == 0) {
		struct daxfs_ioc_policy pol;

		if (setgroups(0, NULL) || setgid(1000) || setuid(1000))
			_exit(10);
		if (daxfs_policy_get(dfd, &pol) != 0)
			_exit(11);	/* reading is for everyone */
		int r = daxfs_policy_set(dfd, "unsafe", NULL, NULL, 0);
		if (r != -EPERM)
			_exit(r == 0 ? 12 : 13);
		r = daxfs_policy_set(dfd, NULL, "grace_ms=1", NULL, 0);
		_exit(r == -EPERM ? 0 : r == 0 ? 14 : 15);
	}
	assert_true(pid > 0);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void test_admission(void **state)
{
	struct daxfs_ioc_policy pol;
	struct daxfs_pin p[4], x;
	struct mnt m;
	char f[512];

	(void)state;
	/* allow_other: the unprivileged child below may use the mount at all. */
	pu_setup(&m, "pinadm", "64M", "pins=deny-longterm,allow_other");
	snprintf(f, sizeof(f), "%s", P(&m, "F"));
	pu_write_file(f, 1 * MiB, 8);
	int dfd = pu_dirfd(&m);
	int fd = open(f, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(daxfs_policy_get(dfd, &pol), 0);
	assert_string_equal(pol.name, "busy");
	assert_string_equal(pol.params, "pins=deny-longterm,grace_ms=1000,wait_timeout_ms=0");

	assert_int_equal(daxfs_pin(fd, 0, BS, DAXFS_PIN_LONGTERM, &x), -EOPNOTSUPP);
	assert_int_equal(daxfs_pin(fd, 0, BS, DAXFS_PIN_LONGTERM | DAXFS_PIN_WRITE, &x), -EOPNOTSUPP);
	p[0] = pu_pin(fd, 0, BS, 0);
	p[1] = pu_pin(fd, 0, BS, DAXFS_PIN_WRITE);
	struct daxfs_ioc_stats s = pu_stats(dfd);
	assert_int_equal(s.pins_refused, 2);
	assert_int_equal(s.pins_active, 2);

	/* Switch at run time, and back. */
	assert_int_equal(daxfs_policy_set(dfd, NULL, "pins=allow", NULL, 0), 0);
	assert_int_equal(daxfs_policy_get(fd, &pol), 0);
	assert_string_equal(pol.params, "pins=allow,grace_ms=1000,wait_timeout_ms=0");
	p[2] = pu_pin(fd, BS, BS, DAXFS_PIN_LONGTERM | DAXFS_PIN_WRITE);
	assert_int_equal(daxfs_policy_set(dfd, NULL, "pins=deny-longterm", NULL, 0), 0);
	assert_int_equal(daxfs_pin(fd, 0, BS, DAXFS_PIN_LONGTERM, &x), -EOPNOTSUPP);
	p[3] = pu_pin(fd, 2 * BS, BS, 0);
	assert_int_equal(pu_npins(dfd), 4);	/* the admitted long-term pin stays */
	assert_int_equal(pu_stats(dfd).pins_refused, 3);
	/* revocable-only: long-term pins must say their device stops when revoked. */
	assert_int_equal(daxfs_policy_set(dfd, NULL, "pins=revocable-only", NULL, 0), 0);
	assert_int_equal(daxfs_pin(fd, 0, BS, DAXFS_PIN_LONGTERM, &x), -EOPNOTSUPP);
	x = pu_pin(fd, 0, BS, DAXFS_PIN_LONGTERM | DAXFS_PIN_REVOCABLE);
	assert_int_equal(daxfs_unpin(fd, x.id), 0);
	daxfs_pin_free(&x);
	assert_int_equal(daxfs_policy_set(dfd, NULL, "pins=deny-longterm", NULL, 0), 0);

	/* Malformed settings are refused with the reason, and change nothing. */
	assert_int_equal(daxfs_policy_get(dfd, &pol), 0);
	uint64_t gen = pol.generation;
	char msg[256];
	assert_int_equal(daxfs_policy_set(dfd, "nosuch", NULL, msg, sizeof(msg)), -ENOENT);
	assert_non_null(strstr(msg, "nosuch"));
	assert_int_equal(daxfs_policy_set(dfd, "busy", "pins=sometimes", msg, sizeof(msg)), -EINVAL);
	assert_non_null(strstr(msg, "pins=sometimes"));
	assert_int_equal(daxfs_policy_set(dfd, "busy", "colour=blue", msg, sizeof(msg)), -EINVAL);
	assert_non_null(strstr(msg, "colour"));
	assert_int_equal(daxfs_policy_set(dfd, "busy", "grace_ms=soon", msg, sizeof(msg)), -EINVAL);
	assert_int_equal(daxfs_policy_set(dfd, "busy", "novalue", msg, sizeof(msg)), -EINVAL);
	assert_int_equal(daxfs_policy_set(dfd, "busy-quota", "fallback=unsafe", msg, sizeof(msg)), -EINVAL);
	assert_int_equal(daxfs_policy_set(dfd, "odp", "ack_ms=x", msg, sizeof(msg)), -EINVAL);
	assert_int_equal(daxfs_policy_set(dfd, "relative/x.so", NULL, msg, sizeof(msg)), -ENOENT);
	assert_int_equal(daxfs_policy_set(dfd, "/nonexistent/x.so", NULL, msg, sizeof(msg)), -ENOENT);
	assert_int_equal(daxfs_policy_set(dfd, "/etc/passwd", NULL, msg, sizeof(msg)), -ENOEXEC);
	pol = (struct daxfs_ioc_policy){ .size = sizeof(pol), .op = 3 };
	assert_int_equal(ioctl(dfd, DAXFS_IOC_POLICY, &pol) < 0 ? errno : 0, EINVAL);
	assert_int_equal(daxfs_policy_get(dfd, &pol), 0);
	assert_string_equal(pol.name, "busy");
	assert_int_equal(pol.generation, gen);

	/* Only root (or the daemon's user) may change the policy of the whole mount. */
	assert_int_equal(policy_set_as_user(dfd), 0);
	assert_int_equal(daxfs_policy_get(dfd, &pol), 0);
	assert_string_equal(pol.name, "busy");
	assert_string_equal(pol.params, "pins=deny-longterm,grace_ms=1000,wait_timeout_ms=0");

	for (int i = 0; i < 4; i++)
		daxfs_pin_free(&p[i]);
	close(fd);
	close(dfd);
	pu_finish(&m);

	/* policy=deny-longterm is Linux's fsdax answer: wait, and no long-term pins. */
	pu_setup(&m, "pinadm2", "64M", "policy=deny-longterm");
	snprintf(f, sizeof(f), "%s", P(&m, "F"));
	pu_write_file(f, 1 * MiB, 8);
	dfd = pu_dirfd(&m);
	fd = open(f, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(daxfs_policy_get(dfd, &pol), 0);
	assert_string_equal(pol.name, "deny-longterm");
	assert_true(pol.flags & DAXFS_POLICY_F_STALLS);
	assert_int_equal(daxfs_pin(fd, 0, BS, DAXFS_PIN_LONGTERM, &x), -EOPNOTSUPP);
	p[0] = pu_pin(fd, 0, BS, DAXFS_PIN_WRITE);
	assert_int_equal(daxfs_unpin(fd, p[0].id), 0);
	daxfs_pin_free(&p[0]);
	close(fd);
	close(dfd);
	pu_finish(&m);
}

/* Pins belong to the open file: a dup keeps them, the last close drops them, even in another process. */
static void test_pin_drop_on_close(void **state)
{
	struct mnt m;
	char f[512];
	int go[2], ready[2];

	(void)state;
	pu_setup(&m, "pinclose", "64M", NULL);
	snprintf(f, sizeof(f), "%s", P(&m, "F"));
	pu_write_file(f, 1 * MiB, 9);
	int dfd = pu_dirfd(&m);

	int fd = open(f, O_RDWR);
	assert_true(fd >= 0);
	struct daxfs_pin p = pu_pin(fd, 0, 64 * KiB, DAXFS_PIN_WRITE);
	int dup_fd = dup(fd);
	assert_true(dup_fd >= 0);
	assert_ok(close(fd));
	/* The open file lives on in the dup: its pin stays usable. */
	struct daxfs_ioc_pin_status ps;
	assert_int_equal(daxfs_pin_status(dup_fd, p.id, &ps), 0);
	assert_int_equal(pu_npins(dfd), 1);
	assert_ok(close(dup_fd));
	assert_true(PU_POLL(pu_npins(dfd) == 0, PU_WAIT_MS));
	daxfs_pin_free(&p);

	/* A child pins, reports, and closes while still alive: the close alone drops the pin. */
	assert_ok(pipe(go));
	assert_ok(pipe(ready));
	pid_t pid = pu_fork();
	if (pid == 0) {
		char c;
		struct daxfs_pin cp;
		int cfd = open(f, O_RDWR);

		if (cfd < 0 || daxfs_pin(cfd, 0, BS, DAXFS_PIN_WRITE | DAXFS_PIN_LONGTERM, &cp))
			_exit(1);
		if (write(ready[1], &cp.id, sizeof(cp.id)) != sizeof(cp.id) || read(go[0], &c, 1) != 1)
			_exit(2);
		close(cfd);
		if (write(ready[1], "c", 1) != 1 || read(go[0], &c, 1) != 1)
			_exit(3);
		_exit(0);
	}
	uint64_t id;
	assert_int_equal(read(ready[0], &id, sizeof(id)), (ssize_t)sizeof(id));
	struct daxfs_pin_info *pi;
	uint32_t n;
	assert_int_equal(daxfs_list_pins(dfd, &pi, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(pi[0].pin_id, id);
	assert_int_equal(pi[0].pid, pid);
	assert_int_equal(pi[0].flags, DAXFS_PIN_WRITE | DAXFS_PIN_LONGTERM);
	free(pi);
	char c;
	assert_int_equal(write(go[1], "g", 1), 1);
	assert_int_equal(read(ready[0], &c, 1), 1);
	assert_true(PU_POLL(pu_npins(dfd) == 0, PU_WAIT_MS));
	assert_int_equal(kill(pid, 0), 0);	/* the child is still alive */
	assert_int_equal(write(go[1], "g", 1), 1);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	close(go[0]);
	close(go[1]);
	close(ready[0]);
	close(ready[1]);
	close(dfd);
	pu_finish(&m);
}

/* kill -9 the holder: its pin goes, and the busy extent a truncate made under it is reclaimed. */
static void test_pin_drop_on_holder_death(void **state)
{
	struct mnt m;
	char f[512];
	int ready[2];

	(void)state;
	pu_setup(&m, "pinkill", "64M", NULL);
	snprintf(f, sizeof(f), "%s", P(&m, "F"));
	pu_write_file(f, 4 * MiB, 10);
	int dfd = pu_dirfd(&m);
	assert_ok(pipe(ready));
	pid_t pid = pu_fork();
	if (pid == 0) {
		struct daxfs_pin cp;
		int cfd = open(f, O_RDWR);

		if (cfd < 0 || daxfs_pin(cfd, 0, 1 * MiB, DAXFS_PIN_WRITE | DAXFS_PIN_LONGTERM, &cp) ||
		    daxfs_dma(cfd, cp.id, DAXFS_DMA_WRITE_PATTERN, 0, 1 * MiB, 42, NULL, NULL))
			_exit(1);
		if (write(ready[1], &cp.id, sizeof(cp.id)) != sizeof(cp.id))
			_exit(2);
		for (;;)
			pause();
	}
	uint64_t id;
	assert_int_equal(read(ready[0], &id, sizeof(id)), (ssize_t)sizeof(id));
	struct daxfs_pin_info *pi;
	uint32_t n;
	assert_int_equal(daxfs_list_pins(dfd, &pi, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(pi[0].pid, pid);
	assert_int_equal(pi[0].length, 1 * MiB);
	free(pi);

	uint64_t bfree0 = pu_bfree(&m);
	assert_ok(truncate(f, 0));
	uint64_t bfree1 = pu_bfree(&m);
	assert_int_equal(bfree1, bfree0 + 3 * MiB / BS);	/* the pinned 1 MiB stays in use */
	struct daxfs_ioc_stats s = pu_stats(dfd);
	assert_int_equal(s.busy_blocks, 1 * MiB / BS);

	assert_ok(kill(pid, SIGKILL));
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFSIGNALED(st));
	assert_true(PU_POLL(pu_npins(dfd) == 0, PU_WAIT_MS));
	assert_true(PU_POLL(pu_nbusy(dfd) == 0 && pu_bfree(&m) == bfree1 + 1 * MiB / BS, PU_WAIT_MS));
	s = pu_stats(dfd);
	assert_true(s.reclaimed_extents >= 1);
	assert_int_equal(s.reclaimed_blocks, 1 * MiB / BS);
	assert_int_equal(s.pins_released, 1);
	close(ready[0]);
	close(ready[1]);
	close(dfd);
	pu_finish(&m);
}

/*
 * A read-only mount: read pins of data work; nothing may allocate, so a read pin over a hole is
 * refused (EROFS) rather than filling it, and the daemon must survive the request.
 */
static void test_pin_readonly_mount(void **state)
{
	struct daxfs_pin x;
	struct mnt m;
	char f[512], h[512];

	(void)state;
	pu_setup(&m, "pinro", "64M", NULL);
	snprintf(f, sizeof(f), "%s", P(&m, "F"));
	snprintf(h, sizeof(h), "%s", P(&m, "sparse"));
	pu_write_file(f, 1 * MiB, 11);
	int hfd = open(h, O_WRONLY | O_CREAT, 0644);
	assert_true(hfd >= 0);
	assert_ok(ftruncate(hfd, 1 * MiB));
	close(hfd);
	pu_release_barrier(&m);
	assert_int_equal(h_umount(&m), 0);
	assert_int_equal(h_mount(&m, "-o ro,attr_timeout=0"), 0);
	pu_guard(&m, "read-only mount", PU_TEST_TIMEOUT);

	int dfd = pu_dirfd(&m);
	int fd = open(f, O_RDONLY);
	hfd = open(h, O_RDONLY);
	assert_true(fd >= 0 && hfd >= 0);
	struct daxfs_pin p = pu_pin(fd, 0, 64 * KiB, 0);
	uint64_t mis = 0;
	assert_int_equal(daxfs_dma(fd, p.id, DAXFS_DMA_VERIFY_PATTERN, 0, 64 * KiB, 1, &mis, NULL), 0);
	assert_int_equal(mis, 64 * KiB / DAXFS_TAG_UNIT);
	assert_int_equal(daxfs_pin(fd, 0, BS, DAXFS_PIN_WRITE, &x), -EBADF);
	/* A read pin of a hole needs nothing written: it maps the zero page, on a read-only mount too. */
	x = pu_pin(hfd, 0, 8 * KiB, 0);
	assert_int_equal(x.nextents, 1);
	assert_true(x.ext[0].media_off == DAXFS_MEDIA_ZERO);
	assert_int_equal(daxfs_unpin(hfd, x.id), 0);
	daxfs_pin_free(&x);
	struct stat st;
	assert_ok(fstat(hfd, &st));
	assert_int_equal(st.st_blocks, 0);
	assert_int_equal(pu_npins(dfd), 1);
	assert_int_equal(daxfs_unpin(fd, p.id), 0);
	daxfs_pin_free(&p);
	close(fd);
	close(hfd);
	close(dfd);
	pu_finish(&m);
}

/* Pinning a hole on a full device: ENOSPC, no pin, and a consistent file system afterwards. */
static void test_pin_hole_enospc(void **state)
{
	struct daxfs_pin x;
	struct mnt m;
	char f[512], g[512];

	(void)state;
	pu_setup(&m, "pinnospc", "64M", NULL);
	snprintf(f, sizeof(f), "%s", P(&m, "sparse"));
	snprintf(g, sizeof(g), "%s", P(&m, "G"));
	int fd = open(f, O_RDWR | O_CREAT, 0644);
	assert_true(fd >= 0);
	assert_ok(ftruncate(fd, 8 * MiB));
	int dfd = pu_dirfd(&m);
	uint64_t bfree = pu_bfree(&m);
	pu_fill(g);
	assert_int_equal(daxfs_pin(fd, 0, 8 * MiB, DAXFS_PIN_WRITE, &x), -ENOSPC);
	assert_int_equal(pu_npins(dfd), 0);
	assert_true(pu_file_zero(f, 0, 8 * MiB));
	/*
	 * With room again, the same pin works.  G's blocks come back when the daemon has served the
	 * RELEASE of pu_fill's close, which may come after the unlink: wait for them.
	 */
	assert_ok(unlink(g));
	assert_true(PU_POLL(pu_bfree(&m) == bfree, PU_WAIT_MS));
	struct daxfs_pin p = pu_pin(fd, 0, 8 * MiB, DAXFS_PIN_WRITE);
	assert_true(pu_file_zero(f, 0, 8 * MiB));
	daxfs_pin_free(&p);
	close(fd);
	close(dfd);
	pu_finish(&m);
}

/* ---- daxfs-pin --json ---- */

#define PIN_JSON_MAX 16

/* daxfs-pin's output, split into its lines, each of which must be one whole JSON object. */
struct pin_json {
	char *line[PIN_JSON_MAX];
	size_t len[PIN_JSON_MAX];
	int n;
};

static void pin_json_split(char *out, struct pin_json *j)
{
	j->n = 0;
	for (char *p = out, *nl; *p; p = nl + 1) {
		if (!(nl = strchr(p, '\n')))
			fail_msg("daxfs-pin --json: an unfinished line: '%s'", p);
		if (j->n == PIN_JSON_MAX)
			fail_msg("daxfs-pin --json: more than %d lines:\n%s", PIN_JSON_MAX, out);
		if (!json_object_line(p, (size_t)(nl - p)))
			fail_msg("daxfs-pin --json: not one JSON object: '%.*s'", (int)(nl - p), p);
		j->line[j->n] = p;
		j->len[j->n++] = (size_t)(nl - p);
	}
}

/* Line i's field key, raw (strings keep their quotes); fails the test when it is missing. */
static const char *pj_field(const struct pin_json *j, int i, const char *key)
{
	static char buf[4096];

	if (i >= j->n || !json_field(j->line[i], j->len[i], key, buf, sizeof(buf)))
		fail_msg("daxfs-pin --json: line %d has no \"%s\": '%.*s'", i, key, i < j->n ? (int)j->len[i] : 0,
			 i < j->n ? j->line[i] : "");
	return buf;
}

static uint64_t pj_u64(const struct pin_json *j, int i, const char *key)
{
	const char *v = pj_field(j, i, key);

	if (*v < '0' || *v > '9')
		fail_msg("daxfs-pin --json: line %d: \"%s\" is %s, not a number", i, key, v);
	return strtoull(v, NULL, 10);
}

static void pj_is(const struct pin_json *j, int i, const char *key, const char *want)
{
	const char *v = pj_field(j, i, key);

	if (strcmp(v, want))
		fail_msg("daxfs-pin --json: line %d: \"%s\" is %s, expected %s", i, key, v, want);
}

/*
 * Line i is the pin of [off, off + len) of path: its extents, counted and listed in "map", cover the
 * range in file order, and are the extents a pin of our own finds there now (daxfs-pin has let go,
 * and nothing moved the file's blocks since).  Returns the pin id.
 */
static uint64_t pj_check_pin(const struct pin_json *j, int i, int fd, const char *path, uint64_t off, uint64_t len)
{
	char want[600];

	pj_is(j, i, "ev", "\"pin\"");
	snprintf(want, sizeof(want), "\"%s\"", path);
	pj_is(j, i, "file", want);
	uint64_t id = pj_u64(j, i, "pin");
	assert_true(id > 0);
	assert_int_equal(pj_u64(j, i, "offset"), off);
	assert_int_equal(pj_u64(j, i, "length"), len);
	uint64_t n = pj_u64(j, i, "extents");
	assert_true(n > 0);

	struct daxfs_pin p = pu_pin(fd, off, len, 0);
	assert_int_equal(n, p.nextents);
	/* The map, rebuilt from our own pin, must be exactly what daxfs-pin printed. */
	char map[4096];
	size_t k = (size_t)snprintf(map, sizeof(map), "[");
	for (uint32_t e = 0; e < p.nextents && k < sizeof(map); e++) {
		char media[32];

		if (p.ext[e].media_off == DAXFS_MEDIA_ZERO)
			snprintf(media, sizeof(media), "null");
		else
			snprintf(media, sizeof(media), "%llu", (unsigned long long)p.ext[e].media_off);
		k += (size_t)snprintf(map + k, sizeof(map) - k, "%s{\"file_off\":%llu,\"media_off\":%s,\"len\":%llu}",
				      e ? "," : "", (unsigned long long)p.ext[e].file_off, media,
				      (unsigned long long)p.ext[e].len);
	}
	if (k < sizeof(map))
		snprintf(map + k, sizeof(map) - k, "]");
	pj_is(j, i, "map", map);
	assert_int_equal(daxfs_unpin(fd, p.id), 0);
	daxfs_pin_free(&p);
	return id;
}

/* daxfs-pin ARGS on path: its exit status, its standard output (stderr goes to the test's log). */
static int run_daxfs_pin(char *out, size_t outlen, const char *args, const char *path, const char *range)
{
	const char *bin = getenv("DAXFS_PIN_BIN");

	if (!bin)
		fail_msg("DAXFS_PIN_BIN is not set: run through meson test");
	return h_run(out, outlen, "%s %s %s %s", bin, args, path, range);
}

/*
 * daxfs-pin --json: one JSON object per line, as it happens.  A read pin over data and a hole held
 * for no time (the pin with its extents, the unpin), DMA write and verify (the result), and a pin
 * held until a truncate breaks its lease (the event, and the unpin it caused).
 */
static void test_daxfs_pin_json(void **state)
{
	struct pin_json j;
	struct mnt m;
	char f[512], out[16384];

	(void)state;
	/* revoke: a truncate breaks the lease and waits (up to grace_ms) for the holder to let go. */
	pu_setup(&m, "pinjson", "64M", "policy=revoke,grace_ms=60000");
	snprintf(f, sizeof(f), "%s", P(&m, "F"));
	pu_write_file(f, 1 * MiB, 3);
	assert_ok(truncate(f, 3 * MiB));	/* [1M, 3M) a hole */
	int fd = open(f, O_RDWR);
	assert_true(fd >= 0);

	/* A read pin held for no time: the pin, with a hole in its map, then the unpin. */
	assert_int_equal(run_daxfs_pin(out, sizeof(out), "--json -t 0", f, "0 3M"), 0);
	pin_json_split(out, &j);
	assert_int_equal(j.n, 2);
	uint64_t id = pj_check_pin(&j, 0, fd, f, 0, 3 * MiB);
	if (!strstr(pj_field(&j, 0, "map"), "\"media_off\":null"))
		fail_msg("daxfs-pin --json: no hole in the map of [0, 3M): %.*s", (int)j.len[0], j.line[0]);
	pj_is(&j, 0, "flags", "0");
	pj_is(&j, 1, "ev", "\"unpin\"");
	assert_int_equal(pj_u64(&j, 1, "pin"), id);
	pj_is(&j, 1, "reason", "\"time\"");
	(void)pj_field(&j, 1, "held_ms");

	/* DMA: a write through a write pin, then a verify through a new pin, which matches none of it. */
	assert_int_equal(run_daxfs_pin(out, sizeof(out), "-j -w -d write -T 9 -t 0", f, "0 1M"), 0);
	pin_json_split(out, &j);
	assert_int_equal(j.n, 3);
	id = pj_check_pin(&j, 0, fd, f, 0, 1 * MiB);
	pj_is(&j, 0, "flags", "1");
	pj_is(&j, 1, "ev", "\"dma\"");
	assert_int_equal(pj_u64(&j, 1, "pin"), id);
	pj_is(&j, 1, "op", "\"write\"");
	assert_int_equal(pj_u64(&j, 1, "bytes"), 1 * MiB);
	pj_is(&j, 2, "ev", "\"unpin\"");
	assert_int_equal(run_daxfs_pin(out, sizeof(out), "--json -d verify -T 9 -t 0", f, "0 1M"), 3);
	pin_json_split(out, &j);
	assert_int_equal(j.n, 3);
	pj_is(&j, 1, "ev", "\"dma\"");
	pj_is(&j, 1, "op", "\"verify\"");
	assert_int_equal(pj_u64(&j, 1, "units"), 1 * MiB / DAXFS_TAG_UNIT);
	assert_int_equal(pj_u64(&j, 1, "mismatches"), 1 * MiB / DAXFS_TAG_UNIT);
	pj_is(&j, 1, "first", "0");
	pj_is(&j, 2, "ev", "\"unpin\"");

	/*
	 * Held (at most a minute, so that it ends even if the daemon dies) until the truncate breaks
	 * its lease: the event, what daxfs-pin did about it, and the unpin it caused.
	 */
	const char *bin = getenv("DAXFS_PIN_BIN");
	int pfd[2], st;
	assert_ok(pipe(pfd));
	pid_t c = pu_fork();
	if (c == 0) {
		dup2(pfd[1], 1);
		close(pfd[0]);
		close(pfd[1]);
		execl(bin, bin, "--json", "-t", "60", f, "0", "1M", (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	FILE *in = fdopen(pfd[0], "r");
	assert_non_null(in);
	size_t len = 0;
	/* The pin line first: the truncate must come while the pin is held. */
	if (!fgets(out, (int)sizeof(out), in))
		fail_msg("daxfs-pin --json printed nothing");
	len = strlen(out);
	assert_ok(truncate(f, 0));
	while (len < sizeof(out) - 1 && fgets(out + len, (int)(sizeof(out) - len), in))
		len += strlen(out + len);
	fclose(in);
	assert_int_equal(waitpid(c, &st, 0), c);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	pin_json_split(out, &j);
	assert_int_equal(j.n, 3);
	pj_is(&j, 0, "ev", "\"pin\"");
	id = pj_u64(&j, 0, "pin");
	pj_is(&j, 1, "ev", "\"event\"");
	assert_int_equal(pj_u64(&j, 1, "pin"), id);
	pj_is(&j, 1, "type", "\"lease-break\"");
	pj_is(&j, 1, "action", "\"unpin\"");
	assert_int_equal(pj_u64(&j, 1, "file_off"), 0);
	assert_int_equal(pj_u64(&j, 1, "len"), 1 * MiB);
	(void)pj_u64(&j, 1, "seq");
	(void)pj_u64(&j, 1, "deadline_ms");	/* a number: the lease has a deadline */
	pj_is(&j, 2, "ev", "\"unpin\"");
	assert_int_equal(pj_u64(&j, 2, "pin"), id);
	pj_is(&j, 2, "reason", "\"lease-break\"");
	struct stat sb;
	assert_ok(stat(f, &sb));
	assert_int_equal(sb.st_size, 0);

	close(fd);
	pu_finish(&m);
}

/* A holder whose daemon dies stops holding: daxfs-pin says why and exits 1, it does not poll forever. */
static void test_daxfs_pin_daemon_death(void **state)
{
	struct mnt m;
	char f[512], line[4096];
	int pfd[2], efd[2], st;

	(void)state;
	pu_setup(&m, "pindeath", "64M", NULL);
	snprintf(f, sizeof(f), "%s", P(&m, "F"));
	pu_write_file(f, 1 * MiB, 3);
	const char *bin = getenv("DAXFS_PIN_BIN");
	assert_ok(pipe(pfd));
	assert_ok(pipe(efd));
	pid_t c = pu_fork();
	if (c == 0) {
		dup2(pfd[1], 1);
		dup2(efd[1], 2);
		close(pfd[0]);
		close(efd[0]);
		execl(bin, bin, "--json", f, "0", "1M", (char *)NULL);	/* no -t: until told */
		_exit(127);
	}
	close(pfd[1]);
	close(efd[1]);
	FILE *in = fdopen(pfd[0], "r"), *err = fdopen(efd[0], "r");
	assert_true(in && err);
	if (!fgets(line, (int)sizeof(line), in) || !strstr(line, "\"ev\":\"pin\""))
		fail_msg("daxfs-pin printed no pin line");
	h_kill(&m);
	/* It notices at its next poll of the events: well within the deadline. */
	if (!PU_POLL(waitpid(c, &st, WNOHANG) == c, PU_WAIT_MS)) {
		kill(c, SIGKILL);
		waitpid(c, NULL, 0);
		fail_msg("daxfs-pin still holding 30 s after its daemon died");
	}
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 1);
	if (!fgets(line, (int)sizeof(line), err) || !strstr(line, "reading events"))
		fail_msg("daxfs-pin did not say why it stopped: %s", line);
	fclose(in);
	fclose(err);
	h_crash(&m);
	pu_guard(NULL, NULL, 0);
	h_destroy(&m);
}

static int run(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pin_extents_and_holes),
		cmocka_unit_test(test_pin_errors),
		cmocka_unit_test(test_pin_extents_paging),
		cmocka_unit_test(test_mount_point_ioctls),
		cmocka_unit_test(test_pin_limits),
		cmocka_unit_test(test_admission),
		cmocka_unit_test(test_pin_drop_on_close),
		cmocka_unit_test(test_pin_drop_on_holder_death),
		cmocka_unit_test(test_pin_hole_enospc),
		cmocka_unit_test(test_pin_readonly_mount),
		cmocka_unit_test(test_daxfs_pin_json),
		cmocka_unit_test(test_daxfs_pin_daemon_death),
	};
	return cmocka_run_group_tests_name("pins", tests, NULL, NULL);
}

int main(void)
{
	return h_main(run);
}
