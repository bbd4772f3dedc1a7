#!/bin/sh
# facts.sh: prints every fact the installer needs of a host in one round trip, as "==<section>"
# headers each followed by that section's output (pkg/facts parses it). No arguments. Commands that
# may be absent print nothing, which the parser reads as "not installed". Runs as root:
# product_uuid is root-only.
section() { printf '==%s\n' "$1"; }
section os-release; cat /etc/os-release 2>/dev/null
section arch; uname -m
section hostname; hostname
section cgroupfs; stat -fc %T /sys/fs/cgroup 2>/dev/null
section init; cat /proc/1/comm 2>/dev/null
section addrs; ip -o addr show 2>/dev/null
section default-route; ip -4 route show default 2>/dev/null
section product-uuid; cat /sys/class/dmi/id/product_uuid 2>/dev/null
section swaps; cat /proc/swaps 2>/dev/null
section kubeadm-running; for d in /proc/[0-9]*; do read -r c < "$d/comm" 2>/dev/null && [ "$c" = kubeadm ] && echo "${d#/proc/}"; done
section containerd; command -v containerd >/dev/null 2>&1 && containerd --version 2>/dev/null
section runc; command -v runc >/dev/null 2>&1 && runc --version 2>/dev/null | head -n 1
section kubelet; [ -x /usr/bin/kubelet ] && /usr/bin/kubelet --version 2>/dev/null
section kubeadm; [ -x /usr/bin/kubeadm ] && /usr/bin/kubeadm version -o short 2>/dev/null
section kubectl; [ -x /usr/bin/kubectl ] && /usr/bin/kubectl version --client 2>/dev/null
section packages; if command -v dpkg-query >/dev/null 2>&1; then dpkg-query -W -f='${db:Status-Abbrev} ${Package} ${Version}\n' kubeadm kubelet kubectl cri-tools kubernetes-cni 2>/dev/null; elif command -v rpm >/dev/null 2>&1; then rpm -q --qf 'ii %{NAME} %{VERSION}-%{RELEASE}\n' kubeadm kubelet kubectl cri-tools kubernetes-cni 2>/dev/null | grep '^ii '; fi
section files; for f in /etc/kubernetes/kubelet.conf /etc/kubernetes/admin.conf; do [ -f "$f" ] && echo "$f"; done
section cluster-paths; for f in /etc/kubernetes/admin.conf /etc/kubernetes/super-admin.conf /etc/kubernetes/kubelet.conf /etc/kubernetes/controller-manager.conf /etc/kubernetes/scheduler.conf /etc/kubernetes/manifests/etcd.yaml /etc/kubernetes/manifests/kube-apiserver.yaml /etc/kubernetes/manifests/kube-controller-manager.yaml /etc/kubernetes/manifests/kube-scheduler.yaml /var/lib/etcd/member; do [ -e "$f" ] && echo "$f"; done
section pki-sums; (cd /etc/kubernetes/pki 2>/dev/null && for f in ca.crt ca.key front-proxy-ca.crt front-proxy-ca.key etcd/ca.crt etcd/ca.key sa.key sa.pub; do [ -f "$f" ] && sha256sum "$f"; done)
section cluster-ca; cat /etc/kubernetes/pki/ca.crt 2>/dev/null
section init-marker; cat /var/lib/installer/kubeadm-init.started 2>/dev/null
section join-marker; cat /var/lib/installer/kubeadm-join.started 2>/dev/null
section listening; (ss -Hltn 2>/dev/null || netstat -ltn 2>/dev/null) | awk '{print $4}'
section time; date +%s.%N
section end
