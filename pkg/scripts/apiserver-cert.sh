#!/bin/sh
# apiserver-cert.sh CONFIG BACKUP: issues a new apiserver serving certificate with kubeadm from
# CONFIG (kubeadm's reconfiguration). kubeadm keeps an existing certificate, so the old one and its
# key are first copied to the directory BACKUP (kept there) and only then removed: a run killed in
# between finds either both files in place or the copy complete.
set -eu
config=$1
backup=$2
pki=/etc/kubernetes/pki
if [ -f "$pki/apiserver.crt" ]; then
  umask 077
  mkdir -p "$backup"
  cp -p "$pki/apiserver.crt" "$pki/apiserver.key" "$backup/"
  rm -f "$pki/apiserver.crt" "$pki/apiserver.key"
fi
kubeadm init phase certs apiserver --config "$config"
