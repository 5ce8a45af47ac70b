/* SPDX-License-Identifier: MIT */
/* rdma-write FILE: the simulated RDMA device writes the first 64 KiB of a daxfs file (as root). */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include "daxfs/device.h"

int main(int argc, char **argv)
{
	struct daxfs_dev *dev;
	struct daxfs_mr *mr;
	struct daxfs_qp *qp;
	struct daxfs_wc wc;
	int fd = argc == 2 ? open(argv[1], O_RDWR) : -1;

	if (fd < 0 || daxfs_dev_open(fd, NULL, NULL, &dev) ||	/* the media behind the mount */
	    daxfs_reg_mr(dev, fd, 0, 65536, DAXFS_PIN_WRITE | DAXFS_PIN_LONGTERM, &mr) ||	/* ibv_reg_mr */
	    daxfs_qp_create(dev, 16, &qp)) {
		fprintf(stderr, "rdma-write FILE: %s\n", fd < 0 ? "cannot open it" : daxfs_dev_errmsg());
		return 1;
	}
	struct daxfs_wr wr = { .wr_id = 7, .opcode = DAXFS_WR_WRITE, .mr = mr, .offset = 0, .length = 65536 };
	if (daxfs_post(qp, &wr) == 0 && daxfs_wait_cq(qp, &wc, 1, -1) == 1)	/* post, poll */
		printf("wr %llu: %s, %llu bytes, %llu us\n", (unsigned long long)wc.wr_id,
		       wc.status ? strerror(-wc.status) : "done", (unsigned long long)wc.bytes,
		       (unsigned long long)wc.latency_ns / 1000);
	daxfs_dev_close(dev);	/* fences (waits for what is in flight), then unpins */
	return 0;
}
