#!/bin/sh
# api-lb.sh ACTION ARG...: this control plane's part of the API endpoint's load balancer
# (loadBalancer keepalived-haproxy), for taking a control plane out of service during an upgrade.
#
#   api-lb.sh state SOCKET MARKER CHECK VIP
#       prints "marker yes|no" (MARKER exists: this host is in maintenance), "keepalived yes|no"
#       (its check script CHECK honours MARKER), "vip yes|no" (an interface holds VIP), then
#       "haproxy none" when haproxy's runtime API SOCKET is missing, else "haproxy" and the CSV of
#       `show stat` for its servers
#   api-lb.sh haproxy SOCKET COMMAND   sends one command line to haproxy's runtime API, prints the answer
#   api-lb.sh hold MARKER              creates MARKER: keepalived's check fails and the VIP moves away
#   api-lb.sh release MARKER           removes MARKER
set -eu
yn() { if "$@"; then echo yes; else echo no; fi; }
holds() { ip -o addr show | grep -qF " $1/"; }
case "$1" in
state)
  echo "marker $(yn test -e "$3")"
  echo "keepalived $(yn grep -qF "$3" "$4")"
  echo "vip $(yn holds "$5")"
  if [ -S "$2" ]; then
    echo haproxy
    printf 'show stat\n' | socat -t 5 stdio "UNIX-CONNECT:$2"
  else
    echo "haproxy none"
  fi ;;
haproxy) printf '%s\n' "$3" | socat -t 5 stdio "UNIX-CONNECT:$2" ;;
hold) mkdir -p "$(dirname "$2")" && : > "$2" ;;
release) rm -f "$2" ;;
*) echo "unknown action $1" >&2; exit 2 ;;
esac
