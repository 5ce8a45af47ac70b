/* SPDX-License-Identifier: MIT */
/*
 * Red-black trees from libbsd's <sys/tree.h>.  libbsd disables its __unused marker, so generate the
 * static functions with our own: each user needs only some of them.
 */
#ifndef DAXFS_RBTREE_H
#define DAXFS_RBTREE_H

#include <bsd/sys/tree.h>

#define RB_GENERATE_STATIC_UNUSED(name, type, field, cmp) \
	RB_GENERATE_INTERNAL(name, type, field, cmp, __attribute__((unused)) static)

#endif
