#!/bin/sh
# file-states.sh PATH...: one line per PATH, in order: "missing" when it is not a regular file, else
# its mode (octal), owner, group and SHA-256 ("644 root root <hex digest>"). A directory is an error
# (exit 1). The phases compare a whole group of files in this one round trip (ssh.ParseFileStates);
# one stat and one sha256sum read them all, so a group costs a handful of processes, not a few per
# file.
for p in "$@"; do
	if [ -d "$p" ]; then echo "$p is a directory" >&2; exit 1; fi
done
{
	for p in "$@"; do if [ -f "$p" ]; then printf 'P f %s\n' "$p"; else printf 'P m %s\n' "$p"; fi; done
	stat -c 'S %a %U %G %n' -- "$@" 2>/dev/null
	sha256sum -- "$@" 2>/dev/null | sed 's/^/H /'
} | awk '
	$1 == "P" { n++; kind[n] = $2; path[n] = substr($0, 5); next }
	$1 == "S" { p = $0; sub(/^S [^ ]+ [^ ]+ [^ ]+ /, "", p); meta[p] = $2 " " $3 " " $4; next }
	$1 == "H" { p = substr($0, length($2) + 5); sum[p] = $2 }
	END {
		for (i = 1; i <= n; i++) {
			p = path[i]
			if (kind[i] == "f" && (p in meta) && (p in sum)) print meta[p] " " sum[p]; else print "missing"
		}
	}'
