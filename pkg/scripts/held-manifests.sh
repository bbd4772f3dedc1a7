#!/bin/sh
# held-manifests.sh list|restore: the static pod manifests an interrupted restart-static-pod.sh or
# render-static-pod.sh left in /var/lib/installer/restart while their pod stopped, whose place in
# /etc/kubernetes/manifests is empty (the pod is down). Prints each pod's name; restore moves the
# manifests back, so the kubelet starts the pods again as they were.
set -eu
mode=$1
manifests=/etc/kubernetes/manifests
hold=/var/lib/installer/restart
for f in "$hold"/*.yaml; do
  [ -f "$f" ] || continue
  name=$(basename "$f" .yaml)
  [ -e "$manifests/$name.yaml" ] && continue
  echo "$name"
  if [ "$mode" = restore ]; then
    mv "$f" "$manifests/$name.yaml"
  fi
done
