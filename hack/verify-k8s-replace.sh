#!/usr/bin/env bash
# Checks that go.mod's replace block maps exactly the staging modules that the pinned
# k8s.io/kubernetes go.mod maps to ./staging/..., each to its published v0.<minor>.<patch> twin.
# Run by `make test`; with --fix it rewrites the block (after a Kubernetes bump).
set -euo pipefail
cd "$(dirname "$0")/.."
# The pinned version is the one the replace block names (k8s.io/api => k8s.io/api v0.34.10 -> v1.34.10);
# when go.mod also requires k8s.io/kubernetes, the two must agree.
staging=$(awk '$1 == "k8s.io/api" && $2 == "=>" {print $4}' go.mod)
[ -n "$staging" ] || { echo "verify-k8s-replace: go.mod has no k8s.io/api replace line" >&2; exit 1; }
k8s="v1.${staging#v0.}"
required=$(awk '($1 == "k8s.io/kubernetes" || $2 == "k8s.io/kubernetes") {print $NF}' go.mod | grep '^v' | head -1 || true)
if [ -n "$required" ] && [ "$required" != "$k8s" ]; then
  echo "go.mod requires k8s.io/kubernetes $required but its replace block pins staging modules at $staging" >&2
  exit 1
fi
kmod=$(go mod download -json "k8s.io/kubernetes@$k8s" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
[ -f "$kmod" ] || { echo "verify-k8s-replace: cannot find the go.mod of k8s.io/kubernetes@$k8s" >&2; exit 1; }
want=$(sed -n '/^replace (/,/^)/p' "$kmod" | awk -v sv="$staging" '$2 == "=>" && $3 ~ /^\.\/staging\// {print $1 " => " $1 " " sv}' | sort)
have=$(sed -n '/^replace (/,/^)/p' go.mod | awk '$2 == "=>" {print $1 " => " $3 " " $4}' | sort)
if [ "$want" != "$have" ]; then
  echo "go.mod's replace block does not match k8s.io/kubernetes@$k8s (want every staging module at $staging):" >&2
  diff <(echo "$want") <(echo "$have") >&2 || true
  exit 1
fi
echo "go.mod replace block matches k8s.io/kubernetes@$k8s ($(echo "$want" | wc -l) staging modules at $staging)"
