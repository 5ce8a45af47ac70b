#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Every event the daemon can put in its trace is documented: in daxfs(8)'s TRACE section and in the
# README's trace table.  A new TRACE(...) call with a new name fails here until both say what it is.
# usage: trace-events.sh SOURCE_ROOT
set -euo pipefail
root=$1
names=$(cat "$root"/daxfs/*.c "$root"/daxfs/policies/*.c |
	tr '\n' ' ' | grep -oE '(TRACE0?|trace_emit)\([^,]+, *"[a-z_]+"' | sed -E 's/.*"([a-z_]+)"$/\1/' | sort -u)
[ -n "$names" ] || { echo "no trace events found in $root/daxfs: the pattern is stale"; exit 1; }
man=$(sed -n '/^# TRACE/,/^# EXIT STATUS/p' "$root/man/daxfs.8.scd")
readme=$(sed -n '/^## The event trace/,/^## /p' "$root/README.md")
bad=0
for n in $names; do
	grep -q "\*$n\*" <<<"$man" || { echo "daxfs(8) TRACE does not document '$n'"; bad=1; }
	grep -q "\`$n\`" <<<"$readme" || { echo "README's event trace table does not document '$n'"; bad=1; }
done
[ $bad = 0 ] && echo "$(wc -w <<<"$names") trace events, each documented"
exit $bad
