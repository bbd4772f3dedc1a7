#!/bin/sh
# file-states.sh PATH...: one line per PATH, in order: "missing" when it is not a regular file, else
# its mode (octal), owner, group and SHA-256 ("644 root root <hex digest>"). A directory is an error
# (exit 1). The phases compare a whole group of files in this one round trip (ssh.ParseFileStates).
for p in "$@"; do
	if [ -d "$p" ]; then echo "$p is a directory" >&2; exit 1; fi
	if [ -f "$p" ]; then
		meta=$(stat -c '%a %U %G' -- "$p") || exit 1
		sum=$(sha256sum -- "$p") || exit 1
		printf '%s %s\n' "$meta" "${sum%% *}"
	else
		echo missing
	fi
done
