#!/bin/sh
# missing-modules.sh: prints the kernel modules a node needs (overlay, br_netfilter) that are neither
# loaded nor built in, one a line (modprobe cannot help for built-in ones, and fails without
# /lib/modules).
grep -qw overlay /proc/filesystems || echo overlay
[ -e /proc/sys/net/bridge/bridge-nf-call-iptables ] || echo br_netfilter
true
