#!/bin/sh
# download.sh KIND URL SUM ...: downloads URL, verifies it against SUM and installs it; a missing or
# different checksum installs nothing. SUM is "sha256:<hex>", a digest the installer pins, or the URL
# of the checksum file upstream publishes (a bare hex digest as dl.k8s.io's URL.sha256, or sha256sum
# lines "<hex>  <name>" as containerd's URL.sha256sum and runc's one runc.sha256sum for every file),
# of which the digest for URL's file name is taken. PROXY, when set, is an HTTPS/HTTP proxy.
#
#   download.sh binary URL SUMS DEST MODE [PROXY]
#     moves the file to DEST with MODE; the temporary file sits beside DEST so the move is atomic.
#   download.sh archive URL SUMS DIR VERSION MARKER [PROXY]
#     unpacks the .tar.gz into DIR and, when MARKER is set, writes VERSION into the file MARKER (so the
#     next run can tell the version without executing anything).
set -eu
kind=$1 url=$2 sums=$3
case "$kind" in
  binary) dest=$4 mode=$5 proxy=${6:-}; tmp="$dest.installer-download" ;;
  archive) dir=$4 version=$5 marker=$6 proxy=${7:-}; tmp=$(mktemp) ;;
  *) echo "unknown kind $kind" >&2; exit 2 ;;
esac
if [ -n "$proxy" ]; then export https_proxy="$proxy" http_proxy="$proxy"; fi
trap 'rm -f "$tmp"' EXIT
name=${url##*/}
case "$sums" in
  sha256:*) want=${sums#sha256:} from=pinned ;;
  *)
    # The line naming the file ("<hex>  name" or "<hex> *name"), else a lone digest.
    want=$(curl -fsSL --retry 3 --retry-connrefused "$sums" | awk -v name="$name" '
      NF == 1 && lone == "" { lone = $1 }
      NF >= 2 { f = $2; sub(/^\*/, "", f); if (f == name) { print $1; found = 1; exit } }
      END { if (!found && lone != "") print lone }')
    from=published ;;
esac
case "$want" in *[!0-9a-f]*|'') echo "no valid checksum for $name at $sums" >&2; exit 1;; esac
curl -fsSL --retry 3 --retry-connrefused -o "$tmp" "$url"
got=$(sha256sum "$tmp" | cut -d' ' -f1)
if [ "$got" != "$want" ]; then echo "checksum mismatch for $url: got $got, $from $want" >&2; exit 1; fi
if [ "$kind" = binary ]; then
  chmod "$mode" "$tmp"
  mv -f "$tmp" "$dest"
else
  mkdir -p "$dir"
  tar -C "$dir" -xzf "$tmp" --no-same-owner
  if [ -n "$marker" ]; then printf '%s\n' "$version" > "$marker"; fi
fi
