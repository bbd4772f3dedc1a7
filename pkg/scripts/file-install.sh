#!/bin/sh
# file-install.sh SRC TMP DEST MODE OWNER: puts a file in place atomically. SRC is the source (a file,
# "-" for stdin, or TMP itself when already uploaded there), TMP a temporary name in DEST's directory,
# MODE the octal mode, OWNER the owner ("user" or "user:group") or "" to leave it. The temporary
# files are removed whatever happens.
set -e
trap 'rm -f -- "$2"; [ "$1" = - ] || [ "$1" = "$2" ] || rm -f -- "$1"' EXIT
# DEST is absolute (pkg/ssh checks): its directory without a dirname process, created 0755 only when
# missing. The success path runs cat, chmod, chown and mv and nothing else.
dir=${3%/*}
[ -n "$dir" ] || dir=/
if [ ! -d "$dir" ]; then (umask 022 && mkdir -p -- "$dir"); fi
umask 077
if [ "$1" = - ]; then cat > "$2"; elif [ "$1" != "$2" ]; then cat -- "$1" > "$2"; fi
chmod -- "$4" "$2"
if [ -n "$5" ]; then chown -- "$5" "$2"; fi
mv -f -- "$2" "$3"
[ "$1" = - ] || [ "$1" = "$2" ] || rm -f -- "$1"
trap - EXIT
