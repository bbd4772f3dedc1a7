#!/bin/sh
# render-static-pod.sh TIMEOUT CONFIG PHASE POD: replaces the static pod POD with the manifest
# `kubeadm init phase control-plane PHASE --config CONFIG` renders. kubeadm rewrites a manifest in
# place, and a kubelet that reads the file while it is half written can take minutes to start the
# new pod (measured: 5 min for kube-apiserver); so, as restart-static-pod.sh does, the manifest is
# first moved out to /var/lib/installer/restart until the pod's container has stopped, then kubeadm
# writes the new one into the empty place and the kubelet starts a fresh pod. Each wait lasts up to
# TIMEOUT seconds. A run killed after the move finds no manifest and only renders. Prints
# "POD OLD-ID NEW-ID".
set -eu
timeout=$1
config=$2
phase=$3
pod=$4
manifests=/etc/kubernetes/manifests
hold=/var/lib/installer/restart
running() { crictl ps -q --name "^$1\$" --state running | head -n 1; }
# wait_until DESCRIPTION COMMAND...: polls COMMAND every second until it succeeds.
wait_until() {
  what=$1
  shift
  waited=0
  until "$@"; do
    if [ "$waited" -ge "$timeout" ]; then
      echo "$what: not within ${timeout}s" >&2
      exit 1
    fi
    sleep 1
    waited=$((waited + 1))
  done
}
stopped() { [ "$(running "$1")" != "$2" ]; }
restarted() {
  new=$(running "$1")
  [ -n "$new" ] && [ "$new" != "$2" ]
}
umask 077
mkdir -p "$hold"
old=$(running "$pod")
if [ -f "$manifests/$pod.yaml" ]; then
  mv "$manifests/$pod.yaml" "$hold/$pod.yaml"
fi
if [ -n "$old" ]; then
  wait_until "$pod's container $old to stop once its manifest was moved away" stopped "$pod" "$old"
fi
umask 022
kubeadm init phase control-plane "$phase" --config "$config"
rm -f "$hold/$pod.yaml"
wait_until "a new $pod container to run" restarted "$pod" "$old"
echo "$pod ${old:--} $new"
