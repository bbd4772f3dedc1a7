#!/bin/sh
# restart-static-pod.sh TIMEOUT NAME...: restarts the running container of each named static-pod
# container in turn (crictl stop with 30 s to shut down gracefully; the kubelet starts a new one, the
# pod's restartPolicy being Always) and waits up to TIMEOUT seconds for a new running container of
# that name. Prints "NAME OLD-ID NEW-ID" per name, or "NAME - -" when none was running (a kube-vip
# the spec does not use).
set -eu
timeout=$1
shift
running() { crictl ps -q --name "^$1\$" --state running | head -n 1; }
for name in "$@"; do
  old=$(running "$name")
  if [ -z "$old" ]; then
    echo "$name - -"
    continue
  fi
  crictl stop --timeout 30 "$old" >/dev/null
  waited=0
  while :; do
    new=$(running "$name")
    if [ -n "$new" ] && [ "$new" != "$old" ]; then
      break
    fi
    if [ "$waited" -ge "$timeout" ]; then
      echo "$name: no new container within ${timeout}s of stopping $old" >&2
      exit 1
    fi
    sleep 1
    waited=$((waited + 1))
  done
  echo "$name $old $new"
done
