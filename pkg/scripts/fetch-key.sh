#!/bin/sh
# fetch-key.sh URL PROXY: prints a package repository's signing key, downloaded from URL through the
# HTTP(S) proxy PROXY ("" for none). Anything but an armored OpenPGP key is refused. Nothing is
# written: the installer checks the key's fingerprint and then installs it.
set -eu
if [ -n "${2:-}" ]; then export https_proxy="$2" http_proxy="$2"; fi
key=$(curl -fsSL --retry 3 --max-time 60 "$1")
case "$key" in
*"BEGIN PGP PUBLIC KEY BLOCK"*) printf '%s\n' "$key" ;;
*) echo "$1 is not an armored OpenPGP key" >&2; exit 1 ;;
esac
