#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The comparison runs, and says what the 2017 thread says each answer costs.

Runs `daxfs-lab compare` over every scenario (but the soak), every built-in policy and the example
policy object, in a short configuration, and checks each row against what its policy must do:
unsafe corrupts under DMA, busy never corrupts but holds space, wait blocks the truncater and
deadlocks in gup-vs-punch, fail returns EBUSY, revoke breaks the lease, deny-longterm refuses the
registration, odp invalidates and frees without busy space; every run ends with a clean fsck and a
trace in which every pin has its unpin, and whose busy bytes, reclaim, pins and invalidations
match the daemon's counters at the end.  Then the plots: valid PNGs of a sane size.

usage: check_compare.py DAXFS_LAB POLICY_QUOTA_SO FUSE_PROBE [POLICIES]

POLICIES (e.g. "busy;wait;unsafe") limits the built-in policies compared: sanitizer builds, three
times slower, compare a few; the normal build compares them all.
"""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

DMA = ["truncate-under-dma", "punch-under-dma", "otrunc-under-dma", "enospc-with-longterm-pins"]
SCENARIOS = DMA + ["unlink-under-dma", "gup-vs-punch", "gup-vs-punch-write", "ignoring-device", "churn"]
HOLD_MS = 200

failures = []


def check(cond, row, what):
    if not cond:
        failures.append("%s / %s: %s (note: %s)" % (row["scenario"], row["policy"], what, row["note"]))


def png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    if len(head) < 24 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", head[16:24])


def main():
    lab, quota_so, probe = sys.argv[1:4]
    only = sys.argv[4] if len(sys.argv) > 4 and sys.argv[4] else None
    if subprocess.run([probe]).returncode != 0:
        print("FUSE cannot be mounted here: skipped")
        return 77
    out = tempfile.mkdtemp(prefix="daxfs-lab-test.")
    try:
        # The demo's sizes (the defaults): a default a scenario cannot run with fails here.
        cmd = [lab, "compare", "--out", out, "--load", quota_so + ":per_holder=1M,wait_ms=5000",
               "--scenarios", ",".join(SCENARIOS), "--rounds", "1", "--hold", str(HOLD_MS),
               "--duration", "1000", "--timeout", "180"]
        if only:
            cmd += ["--policies", only]
        print("$ " + " ".join(cmd), flush=True)
        run = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        print(run.stdout)
        if run.returncode != 0:
            failures.append("daxfs-lab compare exited %d" % run.returncode)
        with open(os.path.join(out, "results.json")) as f:
            res = json.load(f)
        rows = res["results"]
        policies = sorted({r["policy"] for r in rows})
        wanted = only.split(";") + ["quota"] if only else \
            ["busy", "wait", "fail", "revoke", "unsafe", "deny-longterm", "odp", "busy-quota", "quota"]
        for want in wanted:
            if want not in policies:
                failures.append("no rows for policy %s (have %s)" % (want, policies))
        if len(rows) != len(SCENARIOS) * len(policies):
            failures.append("%d rows for %d scenarios x %d policies" % (len(rows), len(SCENARIOS), len(policies)))
        by = {(r["scenario"], r["policy"]): r for r in rows}

        for r in rows:
            s, p = r["scenario"], r["policy"]
            check(r["status"] == "ok", r, "status %s" % r["status"])
            # The device of an unsafe run may write into blocks that became metadata: fsck may see it.
            check(r["fsck"] == 0 or (p == "unsafe" and r["fsck"] == 4), r, "fsck exit %d" % r["fsck"])
            check("without their unpin" not in r["note"], r, "a pin without its unpin in the trace")
            # Busy bytes, reclaim, pins and invalidations recomputed from the trace match the counters.
            check("trace and counters disagree" not in r["note"], r, "the trace disagrees with the counters")
            check("not checked against the counters" not in r["info"], r, "the trace was not checked")
            check(r["stray_bytes"] >= 0, r, "the detector did not run")
            if p != "wait":
                check(r["deadlocks"] == 0, r, "a deadlock under %s" % p)
            # Only unsafe, and devices that lie about stopping, corrupt.
            if p in ("busy", "wait", "fail", "deny-longterm", "quota") or (p != "unsafe" and s != "ignoring-device"):
                check(r["stray_bytes"] == 0, r, "%d stray bytes" % r["stray_bytes"])

        for s in DMA:
            r = by.get((s, "unsafe"))
            if r:
                check(r["stray_bytes"] > 0 and r["unsafe_frees"] > 0, r, "unsafe did not corrupt under DMA")
            r = by.get((s, "busy"))
            if r:
                check(r["busy_peak_bytes"] > 0 and r["reclaim"]["n"] > 0, r, "busy held no space")
                check(r["cut"]["max_ns"] < HOLD_MS * 1e6, r, "busy made the cut wait")
            r = by.get((s, "wait"))
            if r:
                check(r["cut"]["p50_ns"] >= HOLD_MS * 0.9e6, r, "wait did not block the truncater")
                check(r["busy_peak_bytes"] == 0, r, "wait made busy space")
            r = by.get((s, "fail"))
            if r:
                check(r["cut_errors"].get("EBUSY", 0) > 0, r, "fail returned no EBUSY")
            r = by.get((s, "revoke"))
            if r:
                check(r["lease_breaks"] > 0, r, "revoke broke no lease")
            r = by.get((s, "deny-longterm"))
            if r:
                check(r["device_errors"].get("EOPNOTSUPP", 0) > 0, r, "deny-longterm admitted a long-term pin")
            r = by.get((s, "odp"))
            if r:
                check(r["invalidates"] > 0 and r["acks"] > 0, r, "odp sent or got no invalidation")
                check(r["busy_peak_bytes"] == 0, r, "odp made busy space")

        for s in ("gup-vs-punch", "gup-vs-punch-write"):
            r = by.get((s, "wait"))
            if r:
                check(r["deadlocks"] == 1 and "a cycle" in r["note"], r, "wait did not deadlock with a chain")
        for p in ("revoke", "odp"):
            r = by.get(("ignoring-device", p))
            if r:
                check(r["stray_bytes"] > 0 and r["revokes"] > 0, r,
                      "a device that claims revocation and ignores it did not corrupt under %s" % p)
        r = by.get(("ignoring-device", "busy"))
        if r:
            check(r["stray_bytes"] == 0 and r["busy_peak_bytes"] > 0, r, "busy with an ignoring device")
        r = by.get(("churn", "busy"))
        if r:
            check(r["device_bytes"] > 0 and r["writer_bytes"] > 0, r, "churn moved no data")

        # The table and the CSV have a line per row.
        with open(os.path.join(out, "results.csv")) as f:
            if len(f.read().splitlines()) != len(rows) + 1:
                failures.append("results.csv does not have one line per row")
        with open(os.path.join(out, "results.txt")) as f:
            table = f.read()
            for r in rows:
                if r["scenario"] not in table:
                    failures.append("results.txt lacks %s" % r["scenario"])

        plots = ["busy-truncate-under-dma.png", "busy-enospc-with-longterm-pins.png", "busy-churn.png",
                 "cut-latency.png", "reclaim-latency.png", "churn-throughput.png"]
        for name in plots:
            path = os.path.join(out, "plots", name)
            if not os.path.exists(path):
                failures.append("no plot %s" % name)
                continue
            size = png_size(path)
            if not size or not (400 <= size[0] <= 4000 and 300 <= size[1] <= 4000):
                failures.append("%s is not a PNG of a sane size: %s" % (name, size))
            elif os.path.getsize(path) < 10000:
                failures.append("%s is only %d bytes: an empty plot?" % (name, os.path.getsize(path)))
    finally:
        shutil.rmtree(out, ignore_errors=True)

    for f in failures:
        print("FAIL: " + f)
    print("%d failures" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
