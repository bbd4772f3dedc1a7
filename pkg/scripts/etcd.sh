#!/bin/sh
# etcd.sh ACTION [ARG]: runs etcdctl inside the local etcd static pod's container, as the member
# itself: with its own certificate (server.crt, which kubeadm issues for client authentication too;
# the pod mounts /etc/kubernetes/pki/etcd and /var/lib/etcd at the same paths).
#
#   etcd.sh member-list         etcd's members, `etcdctl member list -w simple`
#   etcd.sh member-remove ID    removes the member with the hex ID
#   etcd.sh health              every member's health, as JSON
#   etcd.sh snapshot NAME       saves a snapshot to /var/lib/etcd/NAME, then prints etcdutl's status
#                               of it (JSON), an empty line and its SHA-256
set -eu
c=$(crictl ps -q --name '^etcd$' --state running | head -n 1)
[ -n "$c" ] || { echo "no running etcd container on this host" >&2; exit 1; }
ctl() {
  crictl exec "$c" etcdctl --endpoints https://127.0.0.1:2379 --cacert /etc/kubernetes/pki/etcd/ca.crt \
    --cert /etc/kubernetes/pki/etcd/server.crt --key /etc/kubernetes/pki/etcd/server.key "$@"
}
case "$1" in
member-list) ctl member list -w simple ;;
member-remove) ctl member remove "$2" ;;
health) ctl endpoint health --cluster -w json ;;
snapshot)
  f="/var/lib/etcd/$2"
  ctl snapshot save "$f" >&2
  crictl exec "$c" etcdutl snapshot status "$f" -w json
  echo
  sha256sum "$f" | cut -d' ' -f1 ;;
*) echo "unknown action $1" >&2; exit 2 ;;
esac
