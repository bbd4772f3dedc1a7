#!/bin/sh
# kubelet-pods.sh: prints when the kubelet last started (Unix seconds), then the ready pod sandboxes
# of the control plane's static pods (kubeadm labels them tier=control-plane), as crictl's JSON.
set -eu
date -d "$(systemctl show -p ExecMainStartTimestamp --value kubelet)" +%s
crictl pods --label tier=control-plane --state ready -o json
