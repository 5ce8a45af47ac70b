/* SPDX-License-Identifier: MIT */
/* fuse-probe: exit 0 when this process can mount FUSE file systems, else 77 with the reason. */
#include <stdio.h>

#include "fuse_probe.h"

int main(void)
{
	char why[512];

	if (fuse_probe(why, sizeof(why)) == 0)
		return 0;
	printf("%s\n", why);
	return EXIT_SKIP;
}
