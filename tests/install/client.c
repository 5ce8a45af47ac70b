/* SPDX-License-Identifier: MIT */
/*
 * A libdaxfs client built against the installed tree (pkg-config --cflags --libs daxfs):
 *
 *   client MOUNTPOINT IMAGE LABEL FILE
 *
 * checks what the mount says about itself (daxfs_info, daxfs_stats), then pins 8 KiB of FILE (at
 * least that long), writes and verifies the DMA pattern through the pin and unpins.  Exit 0 when
 * everything is as expected.
 */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <daxfs/libdaxfs.h>

static int failures;

#define CHECK(cond)                                                                     \
	do {                                                                            \
		if (!(cond)) {                                                          \
			fprintf(stderr, "client: %s:%d: %s\n", __FILE__, __LINE__, #cond); \
			failures++;                                                     \
		}                                                                       \
	} while (0)

static void must(int ret, const char *what)
{
	if (ret) {
		fprintf(stderr, "client: %s: %s\n", what, strerror(-ret));
		exit(1);
	}
}

int main(int argc, char **argv)
{
	struct daxfs_ioc_info info;
	struct daxfs_ioc_stats st;
	struct daxfs_pin pin;
	char image[PATH_MAX];
	uint64_t mism = 1, first = 0;

	if (argc != 5 || !realpath(argv[2], image)) {
		fprintf(stderr, "usage: client MOUNTPOINT IMAGE LABEL FILE\n");
		return 2;
	}
	int dir = open(argv[1], O_RDONLY | O_DIRECTORY);
	int fd = open(argv[4], O_RDWR);
	if (dir < 0 || fd < 0) {
		perror("client: open");
		return 1;
	}

	must(daxfs_info(dir, &info), "daxfs_info");
	CHECK(strcmp(info.media_path, image) == 0);
	CHECK(strcmp(info.label, argv[3]) == 0);
	CHECK(info.media_kind == DAXFS_MEDIA_FILE);
	CHECK(info.block_size == 4096);
	CHECK(info.data_offset > 0 && info.data_offset < info.media_size);

	must(daxfs_stats(dir, &st), "daxfs_stats");
	CHECK(st.blocks > 0 && st.free_blocks > 0 && st.free_blocks <= st.blocks);
	CHECK(st.pins_active == 0);
	uint64_t dma_ops = st.dma_ops;	/* the mount's, since it was mounted */

	must(daxfs_pin(fd, 0, 8192, DAXFS_PIN_WRITE, &pin), "daxfs_pin");
	CHECK(pin.length == 8192 && pin.nextents >= 1);
	must(daxfs_stats(dir, &st), "daxfs_stats");
	CHECK(st.pins_active == 1 && st.pinned_blocks == 2);
	must(daxfs_dma(fd, pin.id, DAXFS_DMA_WRITE_PATTERN, 0, pin.length, 7, NULL, NULL), "daxfs_dma write");
	must(daxfs_dma(fd, pin.id, DAXFS_DMA_VERIFY_PATTERN, 0, pin.length, 7, &mism, &first), "daxfs_dma verify");
	CHECK(mism == 0);
	daxfs_pin_free(&pin);
	must(daxfs_unpin(fd, pin.id), "daxfs_unpin");
	must(daxfs_stats(dir, &st), "daxfs_stats");
	CHECK(st.pins_active == 0 && st.dma_ops == dma_ops + 2);

	printf("client: %s on %s, label '%s', %llu blocks, %llu free: %s\n", info.media_path, argv[1], info.label,
	       st.blocks, st.free_blocks, failures ? "FAILED" : "ok");
	close(fd);
	close(dir);
	return failures ? 1 : 0;
}
