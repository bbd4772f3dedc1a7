#!/bin/sh
# Written by installer: keepalived's health check of the apiserver on this host. It fails while the
# installer has this control plane in maintenance (an upgrade restarting its apiserver and etcd).
[ ! -e /run/installer/keepalived/maintenance ] || exit 1
exec curl -sfk --max-time 2 -o /dev/null https://127.0.0.1:6443/livez
