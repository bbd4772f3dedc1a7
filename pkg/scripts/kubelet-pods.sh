#!/bin/sh
# kubelet-pods.sh NAME: prints when the kubelet last started (Unix seconds), then the ready pod
# sandboxes named NAME (the static pod of the local kube-apiserver), as crictl's JSON.
set -eu
date -d "$(systemctl show -p ExecMainStartTimestamp --value kubelet)" +%s
crictl pods --name "$1" --state ready -o json
