/* SPDX-License-Identifier: MIT */
#include "pins_fx.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void fx_setup_flags(struct fx *x, const char *name, const char *opts, uint32_t pin_flags)
{
	struct stat st;

	pu_setup(&x->m, name, "64M", opts);
	snprintf(x->f, sizeof(x->f), "%s", P(&x->m, "F"));
	snprintf(x->g, sizeof(x->g), "%s", P(&x->m, "G"));
	x->dfd = pu_dirfd(&x->m);
	pu_write_file(x->f, FSIZE, 1);
	x->fd = open(x->f, O_RDWR);
	assert_true(x->fd >= 0);
	assert_ok(fstat(x->fd, &st));
	x->ino = st.st_ino;
	x->blocks = (uint64_t)st.st_blocks * 512 / BS;
	assert_int_equal(x->blocks, FSIZE / BS);
	x->p = pu_pin(x->fd, PIN_OFF, PIN_LEN, pin_flags);
	assert_int_equal(x->p.offset, PIN_OFF);
	assert_int_equal(x->p.length, PIN_LEN);
}

void fx_setup(struct fx *x, const char *name, const char *opts)
{
	fx_setup_flags(x, name, opts, DAXFS_PIN_WRITE);
}

void fx_done(struct fx *x)
{
	daxfs_pin_free(&x->p);
	if (x->fd >= 0)
		close(x->fd);
	close(x->dfd);
	pu_finish(&x->m);
}

/* DMA a pattern through the pin and check it reached the media the pin's extents name. */
void dma_write_checked(struct fx *x, uint64_t tag)
{
	uint64_t mis = 1;

	assert_int_equal(daxfs_dma(x->fd, x->p.id, DAXFS_DMA_WRITE_PATTERN, 0, PIN_LEN, tag, NULL, NULL), 0);
	assert_int_equal(daxfs_dma(x->fd, x->p.id, DAXFS_DMA_VERIFY_PATTERN, 0, PIN_LEN, tag, &mis, NULL), 0);
	assert_int_equal(mis, 0);
	for (uint32_t i = 0; i < x->p.nextents; i++) {
		char *buf = malloc(x->p.ext[i].len);

		assert_non_null(buf);
		pu_read_media(&x->m, x->p.ext[i].media_off, buf, x->p.ext[i].len);
		assert_int_equal(pu_count_units(buf, x->p.ext[i].len, x->p.id, tag), x->p.ext[i].len / DAXFS_TAG_UNIT);
		free(buf);
	}
}

uint64_t verify_mismatches(struct fx *x, uint64_t tag)
{
	uint64_t mis = UINT64_MAX;
	int r = daxfs_dma(x->fd, x->p.id, DAXFS_DMA_VERIFY_PATTERN, 0, PIN_LEN, tag, &mis, NULL);

	if (r)
		fail_msg("DMA verify through pin %llu: %s", (unsigned long long)x->p.id, strerror(-r));
	return mis;
}

/* Bytes of media the extent lists a and b share. */
uint64_t overlap_bytes(const struct daxfs_pin_extent *a, uint32_t na, const struct daxfs_pin_extent *b,
			      uint32_t nb)
{
	uint64_t n = 0;

	for (uint32_t i = 0; i < na; i++) {
		for (uint32_t k = 0; k < nb; k++) {
			uint64_t s = a[i].media_off > b[k].media_off ? a[i].media_off : b[k].media_off;
			uint64_t ea = a[i].media_off + a[i].len, eb = b[k].media_off + b[k].len;
			uint64_t e = ea < eb ? ea : eb;

			n += e > s ? e - s : 0;
		}
	}
	return n;
}

/* Media bytes G maps that the pin holds (G pinned read-only for the look, then unpinned). */
uint64_t g_overlap_with_pin(struct fx *x, uint64_t glen)
{
	int gfd = open(x->g, O_RDONLY);

	assert_true(gfd >= 0);
	struct daxfs_pin gp = pu_pin(gfd, 0, glen, 0);
	assert_int_equal(gp.length, glen);
	uint64_t n = overlap_bytes(gp.ext, gp.nextents, x->p.ext, x->p.nextents);
	assert_int_equal(daxfs_unpin(gfd, gp.id), 0);
	daxfs_pin_free(&gp);
	close(gfd);
	return n;
}

/* The busy list is exactly the pin's media, detached from F and still pinned. */
void check_busy_is_pin(struct fx *x)
{
	uint32_t n;
	struct daxfs_busy_info *b = pu_busy(x->dfd, &n);
	uint64_t total = 0;

	assert_true(n >= 1);
	for (uint32_t i = 0; i < n; i++) {
		struct daxfs_pin_extent e = { .media_off = b[i].media_off, .len = b[i].len };

		/* Each busy extent lies wholly inside the pin; with the total equal, they tile it. */
		assert_int_equal(overlap_bytes(&e, 1, x->p.ext, x->p.nextents), b[i].len);
		assert_int_equal(b[i].ino, x->ino);
		assert_int_equal(b[i].state, DAXFS_BUSY_PINNED);
		assert_int_equal(b[i].pins, 1);
		total += b[i].len;
	}
	free(b);
	assert_int_equal(total, PIN_LEN);
	assert_int_equal(x->p.ext[0].media_off % BS, 0);
	struct daxfs_ioc_stats s = pu_stats(x->dfd);
	assert_int_equal(s.busy_blocks, PIN_BLOCKS);
	assert_int_equal(s.busy_extents, n);
}

/* Fill the file system with G; G must own none of the pinned blocks nor ever see the pin's DMA. */
void fill_and_check_isolation(struct fx *x)
{
	uint64_t glen = pu_fill(x->g);

	assert_true(glen >= 8 * MiB);
	assert_int_equal(g_overlap_with_pin(x, glen), 0);
	struct scan s = pu_scan(x->g);
	assert_int_equal(s.units, 0);
	assert_int_equal(s.foreign, 0);
	/* The device keeps writing through its pin: that must still land in the pinned blocks only. */
	dma_write_checked(x, 0x2222);
	s = pu_scan(x->g);
	if (s.units || s.foreign)
		fail_msg("DMA through pin %llu landed in G: %llu units (first: pin %llu seq %#llx media %llu), %llu foreign bytes",
			 (unsigned long long)x->p.id, (unsigned long long)s.units, (unsigned long long)s.first.pin_id,
			 (unsigned long long)s.first.seq, (unsigned long long)s.first.media_off,
			 (unsigned long long)s.foreign);
	assert_int_equal(verify_mismatches(x, 0x2222), 0);
}

/* Unpin: within 5 s the busy blocks are back in the allocator, scrubbed, and the list is empty. */
void unpin_and_check_reclaim(struct fx *x)
{
	uint64_t bfree = pu_bfree(&x->m);
	struct daxfs_ioc_stats s0 = pu_stats(x->dfd);

	assert_int_equal(daxfs_unpin(x->fd, x->p.id), 0);
	if (!PU_POLL(pu_nbusy(x->dfd) == 0 && pu_bfree(&x->m) == bfree + PIN_BLOCKS, PU_WAIT_MS))
		fail_msg("5 s after unpin: %u busy extents, %llu blocks free (expected %llu)", pu_nbusy(x->dfd),
			 (unsigned long long)pu_bfree(&x->m), (unsigned long long)(bfree + PIN_BLOCKS));
	struct daxfs_ioc_stats s = pu_stats(x->dfd);
	assert_true(s.reclaimed_extents >= s0.reclaimed_extents + 1);
	assert_int_equal(s.reclaimed_blocks, s0.reclaimed_blocks + PIN_BLOCKS);
	assert_int_equal(s.busy_blocks, 0);
	assert_int_equal(s.reclaim_queued, 0);
	assert_int_equal(s.pins_active, 0);
	/* reclaim=zero: the device's pattern does not survive into the next owner of the blocks. */
	for (uint32_t i = 0; i < x->p.nextents; i++)
		assert_true(pu_media_zero(&x->m, x->p.ext[i].media_off, x->p.ext[i].len));
}
