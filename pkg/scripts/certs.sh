#!/bin/sh
# certs.sh PATH...: prints the certificates of each file that exists, never a key: "=== PATH", then
# the base64 client-certificate-data of a kubeconfig (*.conf), or the CERTIFICATE blocks of a PEM file
# (the kubelet's client file holds its key too; that block is not printed).
set -eu
for f in "$@"; do
  [ -f "$f" ] || continue
  echo "=== $f"
  case "$f" in
    *.conf) sed -n 's/^ *client-certificate-data: *//p' "$f" ;;
    *) awk '/^-----BEGIN CERTIFICATE-----/{p=1} p{print} /^-----END CERTIFICATE-----/{p=0}' "$f" ;;
  esac
done
