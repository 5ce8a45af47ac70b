#!/usr/bin/env bash
# Fuzz the image parser and checker (tests/fuzz/fuzz_image.c) with libFuzzer for a bounded time:
#
#   scripts/fuzz.sh [SECONDS]      (default 60)
#
# Builds with clang, AddressSanitizer and UBSan in build-fuzz/, fuzzes from a copy of the corpus
# (tests/fuzz/corpus stays small; add an input there when it finds something), and prints the
# number of executions.  Crashing inputs are saved as build-fuzz/crash-*.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_TO_RUN=${1:-60}

scripts/deps.sh
command -v clang >/dev/null || { apt-get install -y -qq clang >/dev/null; }
if [ ! -f build-fuzz/build.ninja ]; then
	CC=clang meson setup build-fuzz -Dfuzz=true -Dbench=false -Db_sanitize=address,undefined -Db_lundef=false \
		-Dc_args=-fsanitize=fuzzer-no-link -Dbuildtype=debugoptimized >/dev/null
fi
ninja -C build-fuzz tests/fuzz/fuzz-image
WORK=$(mktemp -d /tmp/daxfs-fuzz.XXXXXX)
trap 'rm -rf "$WORK"; rm -f /dev/shm/daxfs-fuzz-*.img' EXIT
cp tests/fuzz/corpus/* "$WORK"/
cd build-fuzz
./tests/fuzz/fuzz-image -max_total_time="$SECONDS_TO_RUN" -print_final_stats=1 -rss_limit_mb=4096 "$WORK" 2>&1 |
	grep -E "^(#|Done|stat::number_of_executed_units|stat::peak_rss|==|SUMMARY)" | tail -n 12
