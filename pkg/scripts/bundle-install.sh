#!/bin/sh
# bundle-install.sh KIND SHA256 ...: installs a file of the local bundle that arrives on stdin. It is
# staged in a fresh root-only directory (mktemp -d: mode 0700) that is removed whatever happens, and
# checked against SHA256 (the hex digest from the bundle's .sha256 file): a different checksum
# installs nothing. Nothing else is left on the host (no .sha256 file).
#
#   bundle-install.sh binary SHA256 DEST MODE
#     moves the file to DEST with MODE through a temporary file beside DEST (so the move is atomic).
#   bundle-install.sh archive SHA256 DIR VERSION MARKER
#     unpacks the .tar.gz into DIR and, when MARKER is set, writes VERSION into the file MARKER.
set -eu
kind=$1 want=$2
case "$want" in *[!0-9a-f]*|'') echo "invalid checksum $want" >&2; exit 2;; esac
case "$kind" in
  binary|archive) ;;
  *) echo "unknown kind $kind" >&2; exit 2 ;;
esac
stage=$(mktemp -d)
tmp=
trap 'rm -rf -- "$stage"; [ -z "$tmp" ] || rm -f -- "$tmp"' EXIT
cat > "$stage/file"
got=$(sha256sum "$stage/file" | cut -d' ' -f1)
if [ "$got" != "$want" ]; then echo "checksum mismatch for the bundle file: got $got, want $want" >&2; exit 1; fi
if [ "$kind" = binary ]; then
  dest=$3 mode=$4
  tmp=$(mktemp "$dest.installer-XXXXXXXX")
  cat "$stage/file" > "$tmp"
  chmod "$mode" "$tmp"
  mv -f "$tmp" "$dest"
  tmp=
else
  dir=$3 version=$4 marker=$5
  mkdir -p "$dir"
  tar -C "$dir" -xzf "$stage/file" --no-same-owner
  if [ -n "$marker" ]; then printf '%s\n' "$version" > "$marker"; fi
fi
