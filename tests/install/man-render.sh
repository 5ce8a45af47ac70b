#!/usr/bin/env bash
# Every generated man page renders without one groff warning (all warnings on, 80 columns), has the
# sections its kind of page needs, gives whatis(1) its NAME line, and refers only to daxfs pages that
# exist.
#
#   man-render.sh PAGE...
. "$(dirname "$0")/lib.sh"

command -v man >/dev/null || skip "no man(1) (man-db)"
pages=" ${*##*/} "

for page; do
	name=${page##*/}
	if ! MANWIDTH=80 man --warnings=w -E UTF-8 -l "$page" >"$T/text" 2>"$T/warnings" || [ -s "$T/warnings" ]; then
		fail "$name: $(cat "$T/warnings")"
	fi
	lexgrog "$page" >"$T/whatis" 2>&1 || fail "$name: lexgrog (whatis) cannot parse NAME: $(cat "$T/whatis")"
	grep -q "\"${name%.*} - " "$T/whatis" || fail "$name: whatis entry $(cat "$T/whatis")"
	# The sections its kind of page needs; references to daxfs pages that are not among the pages.
	problems=$(awk -v name="$name" -v pages="$pages" '
		BEGIN {
			s = substr(name, length(name))
			if (s == 1 || s == 8) need = "NAME|SYNOPSIS|DESCRIPTION|OPTIONS|EXIT STATUS|EXAMPLES|SEE ALSO"
			else if (s == 3) need = "NAME|SYNOPSIS|DESCRIPTION|RETURN VALUE|ERRORS|EXAMPLES|SEE ALSO"
			else need = "NAME|SYNOPSIS|DESCRIPTION|ERRORS|SEE ALSO"
			n = split(need, want, "|")
		}
		{ heading[$0] = 1 }
		{
			line = $0
			while (match(line, /[a-z.-]*daxfs[a-z.-]*\([0-9]\)/)) {
				ref = substr(line, RSTART, RLENGTH)
				line = substr(line, RSTART + RLENGTH)
				p = ref; sub(/\(/, ".", p); sub(/\)/, "", p)
				if (index(pages, " " p " ") == 0) print "refers to " ref ", which is not one of the pages"
			}
		}
		END { for (i = 1; i <= n; i++) if (!(want[i] in heading)) print "no " want[i] " section" }' "$T/text")
	[ -z "$problems" ] || fail "$name: $problems"
	note "$name: $(wc -l <"$T/text") lines, no warnings"
done
