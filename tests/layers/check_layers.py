#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Calls point down: check the module graph of the built daemon and core library.

Each object file is a module (its source file's name).  Module A depends on module B when A's
object references a function or variable that B's object defines (nm).  The check fails when
  - a module is missing from LAYERS (a new file must be given its place),
  - a module calls a module of a higher layer, or
  - the graph has a cycle (modules of one layer may call each other, but not in a circle).

usage: check_layers.py OBJECT_OR_ARCHIVE_OR_DIRECTORY...  (a directory stands for its *.o files)
"""
import collections
import os
import subprocess
import sys

# Lowest first, one list per layer: the layers of the README's source layout.
LAYERS = [
    ["csum", "trace", "holder"],
    ["media"],
    ["super", "journal", "alloc"],          # media: superblock; log: the journal; space: the free index
    ["sbi"],                                # space: the mounted image
    ["slots"],
    ["extent_busy"],                        # busy
    ["reclaim"],                            # reclaim
    ["emap"],                               # files
    ["dir"],
    ["inode"],
    ["file", "xattr"],
    ["orphan"],
    ["mmap_pin"],                           # pins
    ["policy_api"],                         # what a policy sees and may do (include/daxfs/policy.h)
    ["policies"],                           # the built-in policies (daxfs/policies/*.c)
    ["policy"],                             # policy dispatch
    ["dma"],                                # the DMA ioctl's engine
    ["namei"],                              # namespace
    ["mount"],                              # mount
    ["check"],                              # fsck's checker: a client of the library
    ["fuse_wait", "fuse_uring"],            # daemon: fuse_uring (FUSE over io_uring) under the hooks
    ["fuse_io"],                            #   of fuse_io that feed it INIT and replies
    ["ioctl"],
    ["fuse_ops"],
    ["main"],
]
RANK = {m: i for i, layer in enumerate(LAYERS) for m in layer}
POLICY_DIR_RANK = RANK["policies"]


def module_name(member):
    base = os.path.basename(member)
    for suffix in (".c.o", ".o"):
        if base.endswith(suffix):
            return base[: -len(suffix)]
    return base


def rank_of(mod):
    if mod in RANK:
        return RANK[mod]
    if mod.startswith("policies_"):     # daxfs/policies/<name>.c, built as policies_<name>.c.o
        return POLICY_DIR_RANK
    return None


def read_symbols(paths):
    defs, uses = {}, collections.defaultdict(set)
    for path in paths:
        out = subprocess.run(["nm", "-P", "-A", path], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            # POSIX format: "archive.a[member.o]: name type value size" or "file.o: name U"
            head, _, rest = line.partition(": ")
            member = head[head.index("[") + 1: -1] if head.endswith("]") else head
            mod = module_name(member)
            f = rest.split()
            if len(f) < 2:
                continue
            uses.setdefault(mod, set())
            if f[1] in "TDBRV":
                defs[f[0]] = mod
            elif f[1] == "U":
                uses[mod].add(f[0])
    return defs, uses


def main(args):
    paths = []
    for a in args:
        if os.path.isdir(a):
            paths += sorted(os.path.join(a, f) for f in os.listdir(a) if f.endswith(".o"))
        else:
            paths.append(a)
    defs, uses = read_symbols(paths)
    graph = collections.defaultdict(dict)
    for mod, syms in uses.items():
        for s in syms:
            target = defs.get(s)
            if target and target != mod:
                graph[mod].setdefault(target, []).append(s)
    errors = []
    mods = set(uses) | set(defs.values())
    for mod in sorted(mods):
        if rank_of(mod) is None:
            errors.append(f"{mod}: not in the layer table of {sys.argv[0]}: give it its layer")
    for mod, targets in sorted(graph.items()):
        for target, syms in sorted(targets.items()):
            rm, rt = rank_of(mod), rank_of(target)
            if rm is not None and rt is not None and rt > rm:
                errors.append(f"{mod} calls up into {target}: {', '.join(sorted(syms)[:4])}")
    # Cycles: depth-first search over the whole graph.
    state, stack = {}, []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for t in sorted(graph.get(m, {})):
            if state.get(t) == 1:
                errors.append("cycle: " + " -> ".join(stack[stack.index(t):] + [t]))
            elif t not in state:
                visit(t)
        stack.pop()
        state[m] = 2

    for m in sorted(mods):
        if m not in state:
            visit(m)
    if errors:
        print("\n".join(errors))
        return 1
    print(f"{len(mods)} modules, {sum(len(t) for t in graph.values())} dependencies: all point down, no cycle")
    return 0


if __name__ == "__main__":
    if len(sys.argv) < 2:
        print(__doc__)
        sys.exit(2)
    sys.exit(main(sys.argv[1:]))
