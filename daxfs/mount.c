/* SPDX-License-Identifier: MIT */
/*
 * Mount and unmount: from a validated image to a live file system (journal replayed, orphans
 * recovered, busy extents queued), the workers started and stopped, and back to a clean image.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "file.h"
#include "inode.h"
#include "mount.h"
#include "orphan.h"
#include "util.h"

/* A mounted file system: the layers' state, allocated together; callers hold &m->fs. */
struct mount {
	struct fs fs;
	struct mount_config cfg;
	struct policy pol;
};

static struct mount *mount_of(struct fs *fs)
{
	return container_of(fs, struct mount, fs);
}

int mount_open(struct fs **out, const char *image, const struct mount_config *cfg, char *err, size_t errlen)
{
	struct mount *m = calloc(1, sizeof(*m));
	char msg[256];
	struct fs *fs;
	int ret;

	if (!m)
		return -ENOMEM;
	m->cfg = *cfg;
	fs = &m->fs;
	int flags = (cfg->readonly && !cfg->private_map ? SBI_RDONLY : 0) | (cfg->private_map ? SBI_PRIVATE : 0) |
		    (cfg->shared ? SBI_SHARED : 0) | (cfg->backup_sb ? SBI_BACKUP_SB : 0) |
		    (cfg->noreplay ? SBI_NOREPLAY : 0) | (cfg->norecovery ? SBI_CHECKER : 0);
	ret = sbi_open(&fs->sbi, image, flags, err, errlen);
	if (ret) {
		free(m);
		return ret;
	}
	fs->sbi.readonly = cfg->readonly;
	fs->sbi.report = cfg->report;
	fs->sbi.report_arg = cfg->report_arg;
	pthread_mutex_init(&fs->ns_lock, NULL);
	pthread_mutex_init(&fs->icache_lock, NULL);
	pthread_mutex_init(&fs->ino_lock, NULL);
	fs->nbuckets = 1024;
	fs->buckets = calloc(fs->nbuckets, sizeof(*fs->buckets));
	size_t words = DIV_ROUND_UP(fs->sbi.sb.ninodes, 64);
	fs->ino_map = malloc(words * 8);
	if (!fs->buckets || !fs->ino_map) {
		snprintf(err, errlen, "out of memory");
		ret = -ENOMEM;
		goto fail;
	}
	memcpy(fs->ino_map, fs->sbi.ibm.shadow, words * 8);
	fs->ino_taken = fs->sbi.ibm.nset;
	if (getrandom(&fs->next_generation, sizeof(fs->next_generation), 0) < 0)
		fs->next_generation = 1;

	ret = slots_load(&fs->orphans, &fs->sbi, DAXFS_SLOTS_ORPHAN, cfg->noorphans ? 0 : fs->sbi.sb.orphan_head,
			 NULL, NULL, msg, sizeof(msg));
	if (ret) {
		snprintf(err, errlen, "%s: %s", image, msg);
		goto fail;
	}
	trace_init(&fs->trace);
	if (cfg->trace && (ret = trace_start(&fs->trace, cfg->trace))) {
		snprintf(err, errlen, "trace file %s: %s", cfg->trace, strerror(-ret));
		goto fail;
	}
	if ((ret = policy_init(&m->pol, fs, cfg->policy, cfg->policy_params, &cfg->limits, msg, sizeof(msg)))) {
		snprintf(err, errlen, "%s", msg);
		goto fail;
	}
	/*
	 * The kernel never looks up the root, so no lookup reference would keep it cached; without this
	 * hold every operation in it would reload (and re-check) the whole directory.
	 */
	if ((ret = inode_get(fs, DAXFS_ROOT_INO, &fs->root))) {
		snprintf(err, errlen, "%s: the root directory: %s", image, strerror(-ret));
		goto fail_root;
	}
	/*
	 * No pin survives a restart, but a process that held one may: busy extents and files of holders
	 * still alive stay pinned until they exit (policy_recover); the rest is queued for reclaim
	 * (mount_start starts it).  The checker reads and judges the busy list itself, so it starts
	 * with none.
	 */
	reclaim_init(&fs->reclaim, &fs->sbi, &fs->busy, cfg->enospc_wait_ms, &fs->trace);
	/* Recovery decides which busy extents to reclaim: not those a live holder may still write. */
	bool recover = !cfg->readonly && !cfg->norecovery;
	ret = busy_load(&fs->busy, &fs->sbi, cfg->norecovery ? 0 : fs->sbi.sb.busy_head, false, msg, sizeof(msg));
	if (ret) {
		snprintf(err, errlen, "%s: %s", image, msg);
		goto fail_busy;
	}
	if (recover && (ret = policy_recover(fs, !cfg->reclaim_at_mount, msg, sizeof(msg)))) {
		snprintf(err, errlen, "%s: %s", image, msg);
		goto fail_busy;
	}
	if (recover) {
		sbi_set_state(&fs->sbi, DAXFS_STATE_DIRTY);
		struct file_free_sink sink = policy_sink(fs, NULL);

		ret = orphan_recover(fs, &sink, msg, sizeof(msg));
		if (ret) {
			snprintf(err, errlen, "%s: %s", image, msg);
			goto fail_busy;
		}
	}
	*out = fs;
	return 0;

fail_busy:
	busy_destroy(&fs->busy);
	inode_put(fs, fs->root);
fail_root:
	policy_destroy(&m->pol);
fail:
	trace_destroy(&fs->trace);
	slots_destroy(&fs->orphans);	/* safe on the zeroed struct too */
	free(fs->buckets);
	free(fs->ino_map);
	sbi_close(&fs->sbi);
	free(m);
	return ret;
}

int mount_start(struct fs *fs)
{
	struct mount *m = mount_of(fs);

	int ret;

	if ((ret = policy_start(fs)))
		return ret;
	if (fs->sbi.readonly || m->cfg.norecovery)
		return 0;
	return reclaim_start(&fs->reclaim, m->cfg.reclaim_discard);
}

void mount_close(struct fs *fs)
{
	struct mount *m = mount_of(fs);

	/* Requests still waiting fail; pins die with the mount; what they held is reclaimed before we close. */
	policy_stop(fs);
	policy_release_all(fs);
	reclaim_stop(&fs->reclaim);
	if (sbi_writable(&fs->sbi) == 0)
		inode_sync_all(fs);
	for (size_t b = 0; b < fs->nbuckets; b++) {
		for (struct inode *ip = fs->buckets[b], *next; ip; ip = next) {
			next = ip->hnext;
			inode_free(ip);
		}
	}
	/* Clean only if nothing went wrong: a failed commit leaves the image for replay and fsck. */
	if (sbi_writable(&fs->sbi) == 0)
		sbi_set_state(&fs->sbi, DAXFS_STATE_CLEAN);
	slots_destroy(&fs->orphans);
	busy_destroy(&fs->busy);
	policy_destroy(&m->pol);
	trace_destroy(&fs->trace);
	free(fs->buckets);
	free(fs->ino_map);
	sbi_close(&fs->sbi);
	pthread_mutex_destroy(&fs->ns_lock);
	pthread_mutex_destroy(&fs->icache_lock);
	pthread_mutex_destroy(&fs->ino_lock);
	free(m);
}
