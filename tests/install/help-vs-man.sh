#!/usr/bin/env bash
# Every option a program's usage text shows is documented in its man page, so the two cannot drift
# apart.  Table-driven: the arguments are rows of three, PROGRAM HELP-FLAG PAGE.
#
# An option, in the usage text, is:
#   - a short option, -x, and a long one, --long;
#   - a KEY= anywhere (daxfs -o cache=..., daxfsctl's grace_ms=N);
#   - in a block whose header names (-o), up to the next blank line: the bare words a line starts
#     with ("    ro   mount read-only", "    relatime, nodiratime   ...") and the comma-separated
#     words after the header itself ("FUSE options (-o): allow_other, default_permissions, ...").
# Each must appear in the rendered page as a word of its own.
#
#   help-vs-man.sh PROGRAM HELP-FLAG PAGE [PROGRAM HELP-FLAG PAGE]...
. "$(dirname "$0")/lib.sh"

command -v man >/dev/null || skip "no man(1) (man-db)"
(($# > 0 && $# % 3 == 0)) || fail "usage: help-vs-man.sh PROGRAM HELP-FLAG PAGE..."

# The options of the usage text (first file), and the ones the page (second file) lacks: one awk,
# since every process costs here.  Prints "have OPTION" or "missing OPTION" lines.
check_options() {	# usage-file page-text-file
	awk '
	function found(o) { opts[o] = 1 }
	# Every match of re in s, minus its first `skip` characters and last `trim`.
	function each(s, re, skip, trim) {
		while (match(s, re)) {
			found(substr(s, RSTART + skip, RLENGTH - skip - trim))
			s = substr(s, RSTART + RLENGTH - trim)
		}
	}
	FNR == NR {
		line = " " $0 " "
		each(line, "[][ ,|(]-[A-Za-z0-9][^A-Za-z0-9_-]", 1, 1)
		each(line, "--[a-z][a-z0-9-]*", 0, 0)
		each(line, "[^a-z0-9_][a-z][a-z0-9_]*=", 1, 0)
		if ($0 ~ /\(-o\):/) {
			block = 1
			n = split(substr($0, index($0, "(-o):") + 5), w, ",")
			for (i = 1; i <= n; i++) { gsub(/^ +| +$/, "", w[i]); if (w[i] ~ /^[a-z][a-z0-9_]*$/) found(w[i]) }
			next
		}
		if ($0 == "") block = 0
		if (block && $0 ~ /^    [a-z]/) {
			head = substr($0, 5); sub(/  .*/, "", head)
			n = split(head, w, ", *")
			for (i = 1; i <= n; i++) if (w[i] ~ /^[a-z][a-z0-9_]*$/) found(w[i])
		}
		next
	}
	{ text = text "\n" $0 }
	END {
		text = text "\n"
		for (o in opts) {
			if (o ~ /=$/) re = "[^a-z0-9_]" o
			else if (o ~ /^-/) re = "[^A-Za-z0-9_-]" o "[^A-Za-z0-9_-]"
			else re = "[^a-z0-9_]" o "[^a-z0-9_=]"
			print (text ~ re ? "have " : "missing ") o
		}
	}' "$1" "$2" | sort -k2
}

missing=0
while (($#)); do
	prog=$1 flag=$2 page=$3
	shift 3
	"$prog" "$flag" >"$T/usage" || fail "${prog##*/} $flag failed"
	# One line per paragraph (no hyphenation at line ends), as a user reads it.
	MANWIDTH=1000 man -E UTF-8 -l "$page" >"$T/page" 2>/dev/null || fail "man -l $page"
	check_options "$T/usage" "$T/page" >"$T/result"
	[ -s "$T/result" ] || fail "${prog##*/} $flag: no options found in its usage text"
	while read -r state o; do
		if [ "$state" = missing ]; then
			echo "${page##*/} does not document '$o', which '${prog##*/} $flag' shows" >&2
			missing=$((missing + 1))
		fi
	done <"$T/result"
	note "${prog##*/}: $(tr '\n' ' ' <"$T/result")"
done
((missing == 0)) || fail "$missing options missing from the man pages"
