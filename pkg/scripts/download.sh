#!/bin/sh
# download.sh KIND URL ...: downloads URL and its published URL.sha256 (the hex digest, optionally
# followed by a file name), verifies the file against it and installs it; a missing or different
# checksum installs nothing. PROXY, when set, is an HTTPS/HTTP proxy.
#
#   download.sh binary URL DEST MODE [PROXY]
#     moves the file to DEST with MODE; the temporary file sits beside DEST so the move is atomic.
#   download.sh archive URL DIR VERSION MARKER [PROXY]
#     unpacks the .tar.gz into DIR and, when MARKER is set, writes VERSION into the file MARKER (so the
#     next run can tell the version without executing anything).
set -eu
kind=$1 url=$2
case "$kind" in
  binary) dest=$3 mode=$4 proxy=${5:-}; tmp="$dest.installer-download" ;;
  archive) dir=$3 version=$4 marker=$5 proxy=${6:-}; tmp=$(mktemp) ;;
  *) echo "unknown kind $kind" >&2; exit 2 ;;
esac
if [ -n "$proxy" ]; then export https_proxy="$proxy" http_proxy="$proxy"; fi
trap 'rm -f "$tmp"' EXIT
want=$(curl -fsSL --retry 3 --retry-connrefused "$url.sha256" | cut -d' ' -f1)
case "$want" in *[!0-9a-f]*|'') echo "no valid checksum at $url.sha256" >&2; exit 1;; esac
curl -fsSL --retry 3 --retry-connrefused -o "$tmp" "$url"
got=$(sha256sum "$tmp" | cut -d' ' -f1)
if [ "$got" != "$want" ]; then echo "checksum mismatch for $url: got $got, published $want" >&2; exit 1; fi
if [ "$kind" = binary ]; then
  chmod "$mode" "$tmp"
  mv -f "$tmp" "$dest"
else
  mkdir -p "$dir"
  tar -C "$dir" -xzf "$tmp" --no-same-owner
  if [ -n "$marker" ]; then printf '%s\n' "$version" > "$marker"; fi
fi
