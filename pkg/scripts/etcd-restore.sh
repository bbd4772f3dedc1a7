#!/bin/sh
# etcd-restore.sh ACTION [ID [ARGS]]: one control plane's steps of restoring etcd from a snapshot.
# Every step can be repeated: it checks what an earlier, interrupted run already did. A restore keeps
# its files in /var/lib/installer/etcd-restore/ID (0700), ID being <UTC time>-<snapshot SHA-256>:
#   snapshot.db      the snapshot (receive), removed by finish
#   data/member      the restored data (prepare), moved into /var/lib/etcd by swap
#   manifests/       the control plane's static pod manifests while it is stopped (stop, start)
#   before/member    etcd's data as it was before the restore (swap); kept for the operator
#   done             the restore finished here (finish)
#
#   etcd-restore.sh status                 prints "ID step" for each restore (step "done" when finished)
#   etcd-restore.sh receive ID SHA256      stores stdin as snapshot.db if it has that SHA-256
#   etcd-restore.sh prepare ID NAME CLUSTER PEER-URL TOKEN
#                                          restores snapshot.db into data/ as member NAME of CLUSTER
#                                          with etcdutl from the etcd image (ctr), the revision bumped
#                                          and marked compacted so every watcher lists again
#   etcd-restore.sh stop ID TIMEOUT        moves the etcd, kube-apiserver, kube-controller-manager and
#                                          kube-scheduler manifests into manifests/, stops the kubelet
#                                          and those containers, and waits up to TIMEOUT seconds for
#                                          them to stop
#   etcd-restore.sh swap ID                moves /var/lib/etcd/member to before/, data/member in
#   etcd-restore.sh start ID etcd|rest     moves etcd's manifest (etcd) or the others (rest) back and
#                                          starts the kubelet
#   etcd-restore.sh finish ID              marks the restore done and removes snapshot.db
set -eu
# Everything the restore makes is root's only: directories 0700, the snapshot 0600.
umask 077
base=/var/lib/installer/etcd-restore
manifests=/etc/kubernetes/manifests
etcd_data=/var/lib/etcd
components="etcd kube-apiserver kube-controller-manager kube-scheduler"
pattern='^(etcd|kube-apiserver|kube-controller-manager|kube-scheduler)$'
action=$1
if [ "$action" = status ]; then
  [ -d "$base" ] || exit 0
  for d in "$base"/*/; do
    [ -d "$d" ] || continue
    id=$(basename "$d")
    if [ -e "$d/done" ]; then
      echo "$id done"
      continue
    fi
    step=received
    [ -d "$d/data/member" ] && step=prepared
    [ -n "$(ls -A "$d/manifests" 2>/dev/null)" ] && step=stopped
    [ -d "$d/before" ] && step=swapped
    echo "$id $step"
  done
  exit 0
fi
id=$2
dir="$base/$id"
case "$id" in
*/* | .* | "") echo "bad restore id $id" >&2; exit 2 ;;
esac
mkdir -p "$base" "$dir"
image() {
  for m in "$manifests/etcd.yaml" "$dir/manifests/etcd.yaml"; do
    if [ -f "$m" ]; then
      sed -n 's/^[[:space:]]*image:[[:space:]]*//p' "$m" | head -n 1
      return
    fi
  done
  echo "no etcd manifest in $manifests or $dir/manifests" >&2
  exit 1
}
case "$action" in
receive)
  want=$3
  if [ -f "$dir/snapshot.db" ] && [ "$(sha256sum "$dir/snapshot.db" | cut -d' ' -f1)" = "$want" ]; then
    cat >/dev/null
    exit 0
  fi
  cat >"$dir/snapshot.db.part"
  got=$(sha256sum "$dir/snapshot.db.part" | cut -d' ' -f1)
  if [ "$got" != "$want" ]; then
    rm -f "$dir/snapshot.db.part"
    echo "the snapshot arrived damaged: SHA-256 $got, sent $want" >&2
    exit 1
  fi
  mv "$dir/snapshot.db.part" "$dir/snapshot.db" ;;
prepare)
  name=$3 cluster=$4 peer=$5 token=$6
  [ -d "$dir/data/member" ] && exit 0
  [ -d "$dir/before" ] && exit 0
  [ -f "$dir/snapshot.db" ] || { echo "no snapshot in $dir" >&2; exit 1; }
  img=$(image)
  # An earlier prepare cut short left data.part, in this restore's own directory.
  rm -rf "$dir/data.part"
  ctr -n k8s.io run --rm --mount "type=bind,src=$dir,dst=/restore,options=rbind:rw" "$img" "installer-etcd-restore-$$" \
    etcdutl snapshot restore /restore/snapshot.db --data-dir /restore/data.part --name "$name" \
    --initial-cluster "$cluster" --initial-advertise-peer-urls "$peer" --initial-cluster-token "$token" \
    --bump-revision 1000000000 --mark-compacted >&2
  mv "$dir/data.part" "$dir/data" ;;
stop)
  timeout=$3
  mkdir -p "$dir/manifests"
  for c in $components; do
    if [ -f "$manifests/$c.yaml" ]; then
      if [ -f "$dir/manifests/$c.yaml" ]; then
        echo "$c.yaml is both in $manifests and in $dir/manifests: someone put it back; sort it out by hand" >&2
        exit 1
      fi
      mv "$manifests/$c.yaml" "$dir/manifests/$c.yaml"
    fi
  done
  # The kubelet stays stopped until etcd's data is swapped: a kubelet that cannot reach an API
  # server may leave a removed static pod running (measured after a kubelet restart), and none may
  # restart etcd on the data being replaced. The containers are stopped here instead; every other
  # container keeps running without its kubelet.
  systemctl stop kubelet
  for c in $(crictl ps -q --state running --name "$pattern"); do
    crictl stop --timeout 30 "$c" >/dev/null
  done
  waited=0
  while [ -n "$(crictl ps -q --state running --name "$pattern")" ]; do
    if [ "$waited" -ge "$timeout" ]; then
      echo "the control plane's containers still run ${timeout}s after they were stopped" >&2
      exit 1
    fi
    sleep 1
    waited=$((waited + 1))
  done ;;
swap)
  for c in $components; do
    if [ -f "$manifests/$c.yaml" ]; then
      echo "$c.yaml is in $manifests: the control plane is not stopped" >&2
      exit 1
    fi
  done
  if [ -d "$dir/data/member" ]; then
    if [ -d "$etcd_data/member" ]; then
      if [ -e "$dir/before/member" ]; then
        echo "$dir/before/member exists already; not moving $etcd_data/member over it" >&2
        exit 1
      fi
      mkdir -p "$dir/before"
      mv "$etcd_data/member" "$dir/before/member"
    fi
    mkdir -p "$etcd_data"
    mv "$dir/data/member" "$etcd_data/member"
  elif [ ! -d "$etcd_data/member" ]; then
    echo "neither restored data in $dir/data nor a data directory in $etcd_data" >&2
    exit 1
  fi ;;
start)
  case "$3" in
  etcd) which=etcd ;;
  rest) which="kube-apiserver kube-controller-manager kube-scheduler" ;;
  *) echo "start etcd|rest" >&2; exit 2 ;;
  esac
  for c in $which; do
    if [ -f "$dir/manifests/$c.yaml" ]; then
      mv "$dir/manifests/$c.yaml" "$manifests/$c.yaml"
    fi
  done
  systemctl start kubelet ;;
finish)
  : >"$dir/done"
  rm -f "$dir/snapshot.db"
  rmdir "$dir/data" "$dir/manifests" 2>/dev/null || true ;;
*)
  echo "unknown action $action" >&2
  exit 2 ;;
esac
