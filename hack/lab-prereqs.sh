#!/usr/bin/env bash
# The machine prerequisites of `make lab`, `make test` and .ci/run: the one list of the Debian packages
# they need, checked in about a second (one dpkg-query; no apt-get update) and installed when missing.
# The Makefile runs it before lab, lab-build, e2e and test build anything; .ci/run before its first step.
#
#   hack/lab-prereqs.sh check   [--need-root]  print what is missing and one line with the fix; exit 1 if anything is
#   hack/lab-prereqs.sh install [--need-root]  install the missing packages (as root, else through sudo -n;
#                                              without either it prints the command to run and fails), then verify
#
# --need-root: the caller itself must run as root (the Makefile's targets: the lab runs rootful podman and
# mmdebstrap --mode=root; make test's tests add users and network namespaces). Not being root is then a
# missing prerequisite, reported before anything is installed.
set -euo pipefail

packages=(
  # pkg/ssh's integration tests start a real sshd, ssh-agent and sudo.
  openssh-server openssh-client sudo
  # the lab: Debian root filesystem, rootful podman hosts, apt cache, image userland.
  mmdebstrap podman runc conmon netavark aardvark-dns iptables nftables uidmap catatonit apt-cacher-ng busybox-static
  # lab/build: runc is a static cgo binary with seccomp (kubeadm's static pods ask for RuntimeDefault).
  # lab/build also compiles upstream busybox (static) for the conformance test images.
  gcc libc6-dev libseccomp-dev
  git make ca-certificates curl
  # make lint and pkg/scripts' tests check the scripts the installer runs on hosts.
  shellcheck
)

usage() { echo "usage: $0 check|install [--need-root]" >&2; exit 2; }
if [ $# -lt 1 ] || [ $# -gt 2 ]; then usage; fi
mode=$1
case "$mode" in check | install) ;; *) usage ;; esac
need_root=false
case "${2:-}" in "") ;; --need-root) need_root=true ;; *) usage ;; esac

self="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
uid=$(id -u)
as_root() { if [ "$uid" -eq 0 ]; then "$@"; else sudo -n "$@"; fi; }

command -v dpkg-query >/dev/null || {
  echo "lab-prereqs: dpkg-query not found: make lab and make test need a Debian machine (12, bookworm)" >&2
  exit 1
}

# find_missing sets missing to the listed packages that are not installed: one dpkg-query for all of them
# (it exits 1 when it knows a name not at all). db:Status-Status is "installed" for held packages too.
find_missing() {
  local installed p
  installed=$(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "${packages[@]}" 2>/dev/null | awk '$2 == "installed" {print $1}' || true)
  missing=()
  for p in "${packages[@]}"; do grep -qxF -- "$p" <<<"$installed" || missing+=("$p"); done
}

find_missing
if [ ${#missing[@]} -gt 0 ]; then echo "lab-prereqs: missing apt packages: ${missing[*]}" >&2; fi

if $need_root && [ "$uid" -ne 0 ]; then
  echo "lab-prereqs: not root (uid $uid): the lab runs rootful podman and mmdebstrap --mode=root, and make test's tests add users and network namespaces" >&2
  if [ ${#missing[@]} -gt 0 ]; then
    echo "fix: run make as root (e.g. in a shell from sudo -i); it installs the missing packages itself" >&2
  else
    echo "fix: run make as root (e.g. in a shell from sudo -i)" >&2
  fi
  exit 1
fi

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$mode" = check ]; then
    if [ "$uid" -eq 0 ]; then echo "fix: $self install" >&2; else echo "fix: sudo $self install" >&2; fi
    exit 1
  fi
  if [ "$uid" -ne 0 ] && ! sudo -n true 2>/dev/null; then
    echo "lab-prereqs: installing them needs root (and sudo -n is not allowed here); run: sudo $self install" >&2
    exit 1
  fi
  # Services such as apt-cacher-ng and sshd would start listening on every interface as they are
  # installed; the tests and the lab run their own instances. Keep them from starting (a temporary
  # policy-rc.d, left alone when the machine already has one).
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    as_root sh -c "printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d"
    trap 'as_root rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  installing=("${missing[@]}")
  find_missing
  for p in "${missing[@]}"; do echo "lab-prereqs: apt package $p did not install" >&2; done
  [ ${#missing[@]} -eq 0 ] || exit 1
  echo "lab-prereqs: installed ${installing[*]}"
fi

# openssh-server installed but no sshd (pkg/ssh's tests start /usr/sbin/sshd).
test -x /usr/sbin/sshd || {
  echo "lab-prereqs: /usr/sbin/sshd missing although openssh-server is installed; fix: apt-get install --reinstall openssh-server" >&2
  exit 1
}
echo "lab-prereqs: all ${#packages[@]} apt packages installed"
