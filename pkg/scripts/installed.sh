#!/bin/sh
# installed.sh MARKER [PACKAGE:CHECK...]: prints what is installed beside what the facts already
# know, as three lines: "crictl=<version of /usr/local/bin/crictl>", "cni=<content of the CNI
# plugins' version file MARKER>" and "missing=<the PACKAGEs that are missing>" (space-separated).
# A PACKAGE is missing when its CHECK, a command (looked up on PATH) or an absolute path, is not
# there: install.NodePrerequisites (conntrack, socat, ethtool, iptables...), which the upstream
# packages no longer depend on.
crictl=""; [ -x /usr/local/bin/crictl ] && crictl=$(/usr/local/bin/crictl --version 2>/dev/null | awk '{print $NF}')
cni=""; [ -f "$1" ] && cni=$(cat "$1")
shift
missing=""
for p in "$@"; do
  pkg=${p%%:*} check=${p#*:}
  case "$check" in
    /*) [ -e "$check" ] || missing="$missing $pkg" ;;
    *) command -v "$check" >/dev/null 2>&1 || missing="$missing $pkg" ;;
  esac
done
printf 'crictl=%s\ncni=%s\nmissing=%s\n' "$crictl" "$cni" "$missing"
