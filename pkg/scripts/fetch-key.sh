#!/bin/sh
# fetch-key.sh URL PATH PROXY: downloads a package repository's signing key from URL to PATH unless
# PATH already exists (and is not empty), through the HTTP(S) proxy PROXY ("" for none). Anything
# but an armored OpenPGP key is refused.
set -eu
[ -s "$2" ] && exit 0
if [ -n "${3:-}" ]; then export https_proxy="$3" http_proxy="$3"; fi
mkdir -p "$(dirname "$2")"
curl -fsSL --retry 3 -o "$2.tmp" "$1"
grep -q 'BEGIN PGP PUBLIC KEY BLOCK' "$2.tmp" || { echo "$1 is not an armored OpenPGP key" >&2; rm -f "$2.tmp"; exit 1; }
chmod 0644 "$2.tmp"
mv -f "$2.tmp" "$2"
