#!/bin/sh
# Written by installer: keepalived's health check on this host. It asks the API through this host's
# own haproxy, as kubeadm's HA recipe does: the VIP belongs on a host whose haproxy reaches a ready
# apiserver, even while its own apiserver restarts. It fails while the installer has this host in
# maintenance (an upgrade about to restart its haproxy and keepalived).
[ ! -e /run/installer/keepalived/maintenance ] || exit 1
exec curl -sfk --max-time 2 -o /dev/null https://127.0.0.1:8443/livez
