#!/bin/sh
# restart-static-pod.sh TIMEOUT NAME...: restarts the static pods NAME (their manifests
# /etc/kubernetes/manifests/NAME.yaml) one after the other, as kubeadm's documentation advises: the
# manifest is moved out of the kubelet's directory until the pod's container has stopped, then back,
# and the kubelet starts a new pod (a fresh pod, so no restart back-off delays it). Each wait lasts
# up to TIMEOUT seconds. Prints "NAME OLD-ID NEW-ID" per pod, or "NAME - -" when it has no manifest
# (kube-vip where the spec does not use it). A manifest an interrupted run left in the holding
# directory /var/lib/installer/restart is put back first.
set -eu
timeout=$1
shift
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
umask 077
mkdir -p "$hold"
for f in "$hold"/*.yaml; do
  [ -f "$f" ] || continue
  if [ -e "$manifests/$(basename "$f")" ]; then
    echo "$f and $manifests/$(basename "$f") both exist: sort it out by hand" >&2
    exit 1
  fi
  mv "$f" "$manifests/"
done
stopped() { [ "$(running "$1")" != "$2" ]; }
restarted() {
  new=$(running "$1")
  [ -n "$new" ] && [ "$new" != "$2" ]
}
for name in "$@"; do
  if [ ! -f "$manifests/$name.yaml" ]; then
    echo "$name - -"
    continue
  fi
  old=$(running "$name")
  mv "$manifests/$name.yaml" "$hold/$name.yaml"
  if [ -n "$old" ]; then
    wait_until "$name's container $old to stop once its manifest was moved away" stopped "$name" "$old"
  fi
  mv "$hold/$name.yaml" "$manifests/$name.yaml"
  wait_until "a new $name container to run" restarted "$name" "$old"
  echo "$name ${old:--} $new"
done
