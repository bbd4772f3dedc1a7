#!/bin/sh
# held-manifests.sh list|restore: the static pod manifests an interrupted restart-static-pod.sh or
# render-static-pod.sh left in /var/lib/installer/restart while their pod stopped. Prints "NAME"
# for one whose place in /etc/kubernetes/manifests is empty (the pod is down): restore moves it
# back, so the kubelet starts the pod again as it was. Prints "stale NAME" for one whose place holds
# a newer manifest (the run was killed after writing the new one): restore removes the held copy.
set -eu
mode=$1
manifests=/etc/kubernetes/manifests
hold=/var/lib/installer/restart
for f in "$hold"/*.yaml; do
  [ -f "$f" ] || continue
  name=$(basename "$f" .yaml)
  if [ -e "$manifests/$name.yaml" ]; then
    [ -n "$(find "$manifests/$name.yaml" -newer "$f")" ] || continue
    echo "stale $name"
    if [ "$mode" = restore ]; then
      rm -f "$f"
    fi
    continue
  fi
  echo "$name"
  if [ "$mode" = restore ]; then
    mv "$f" "$manifests/$name.yaml"
  fi
done
