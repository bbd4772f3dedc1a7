#!/bin/sh
# reset-host.sh MODE PODNETS [FILE...]: lists (MODE "list") or removes (MODE "remove") what a cluster
# leaves on a host besides the firewall: the kubelet's unit state, pods, mounts below
# /var/lib/kubelet, kubeadm's and the CNI's files, the CNI's links and routes into the pod network.
# PODNETS are the pod subnets (comma-separated, may be empty); the FILEs are extra files of the
# installer's own (the HA endpoint's configuration). It prints one "<kind> <item>" line per thing
# present (list) or removed (remove), so a second run prints nothing, plus "have kubeadm" when
# kubeadm is installed. Containerd, the binaries and the images stay: the host is meant to be reused
# by create cluster or join node.
mode=$1 podnets=$2
shift 2
say() { printf '%s %s\n' "$1" "$2"; }
rm_mode() { [ "$mode" = remove ]; }
command -v kubeadm >/dev/null 2>&1 && say have kubeadm

# The kubelet: kubeadm reset only stops it; enabled, it would start again at boot.
en=$(systemctl is-enabled kubelet 2>/dev/null) act=$(systemctl is-active kubelet 2>/dev/null)
if [ "$en" = enabled ] || [ "$act" = active ] || [ "$act" = activating ]; then
  say unit "kubelet ($en, $act)"
  if rm_mode; then systemctl disable --now kubelet >/dev/null 2>&1 || exit 1; fi
fi

# Pods kubeadm reset left (it failed, or there is no kubeadm): through the CRI.
if command -v crictl >/dev/null 2>&1; then
  n=$(crictl --timeout 10s pods -q 2>/dev/null | wc -l)
  if [ "$n" -gt 0 ]; then
    say pods "$n pod sandboxes"
    if rm_mode; then crictl --timeout 60s rmp -fa >/dev/null || exit 1; fi
  fi
fi

# Mounts below /var/lib/kubelet (volumes); never delete through a mount.
for m in $(findmnt -rn -o TARGET | grep -E '^/var/lib/kubelet(/|$)' | sort -r); do
  say mount "$m"
  if rm_mode; then umount "$m" 2>/dev/null || umount -l "$m" || exit 1; fi
done
if rm_mode && findmnt -rn -o TARGET | grep -qE '^/var/lib/kubelet(/|$)'; then
  echo "still mounted below /var/lib/kubelet; nothing was deleted there" >&2
  exit 1
fi

# Files (/var/lib/installer holds the installer's markers). A directory that is a mount point (a
# dedicated etcd disk) is emptied, not removed.
for p in /etc/kubernetes /var/lib/kubelet /var/lib/etcd /var/lib/cni /run/flannel /var/lib/installer "$@"; do
  [ -e "$p" ] || [ -L "$p" ] || continue
  if [ -d "$p" ] && mountpoint -q "$p"; then
    [ -n "$(ls -A "$p")" ] || continue
    say path "$p/*"
    if rm_mode; then find "$p" -xdev -mindepth 1 -delete || exit 1; fi
  else
    say path "$p"
    if rm_mode; then
      rm -rf --one-file-system -- "$p" || exit 1
      case "$p" in /etc/keepalived/*|/etc/haproxy/*|/run/installer/*) rmdir "${p%/*}" 2>/dev/null ;; esac
    fi
  fi
done
# The CNI's configuration directory stays: containerd watches it and would miss a re-created one.
if [ -d /etc/cni/net.d ] && [ -n "$(ls -A /etc/cni/net.d)" ]; then
  for f in /etc/cni/net.d/* /etc/cni/net.d/.[!.]*; do
    [ -e "$f" ] || continue
    say path "$f"
    if rm_mode; then rm -rf -- "$f" || exit 1; fi
  done
fi

# Links of the CNI and kube-proxy; their routes go with them.
for l in cni0 flannel.1 flannel-v6.1 kube-ipvs0; do
  ip link show dev "$l" >/dev/null 2>&1 || continue
  say link "$l"
  if rm_mode; then ip link delete "$l" || exit 1; fi
done
# Routes into the pod network on other links (flannel's host-gw backend).
IFS=,
for c in $podnets; do
  IFS=' '
  case "$c" in *:*) fam=-6 ;; *) fam=-4 ;; esac
  ip "$fam" route show root "$c" | while read -r first rest; do
    case "$first" in
      unreachable|blackhole|prohibit|throw) typ=$first dst=${rest%% *} ;;
      *) typ="" dst=$first ;;
    esac
    say route "$dst"
    if rm_mode; then ip "$fam" route del ${typ:+"$typ"} "$dst" || exit 1; fi
  done || exit 1
done
exit 0
