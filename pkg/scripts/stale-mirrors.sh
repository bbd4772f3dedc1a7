#!/bin/sh
# stale-mirrors.sh list|remove MARKER REGISTRY...: the registry mirror files
# /etc/containerd/certs.d/<registry>/hosts.toml that the installer wrote (their first line starts
# with MARKER) for registries not among REGISTRY...: the spec no longer mirrors them. Prints each
# path; remove also deletes it (containerd then pulls from the registry itself; no restart needed).
set -eu
mode=$1
marker=$2
shift 2
for f in /etc/containerd/certs.d/*/hosts.toml; do
  [ -f "$f" ] || continue
  registry=$(basename "$(dirname "$f")")
  keep=no
  for r in "$@"; do
    if [ "$r" = "$registry" ]; then
      keep=yes
    fi
  done
  [ "$keep" = no ] || continue
  IFS= read -r first < "$f" || true
  case $first in
  "$marker"*) ;;
  *) continue ;;
  esac
  echo "$f"
  if [ "$mode" = remove ]; then
    rm -f "$f"
  fi
done
