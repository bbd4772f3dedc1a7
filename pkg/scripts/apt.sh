#!/bin/sh
# apt.sh PROXY ARG...: runs apt-get ARG... non-interactively through the apt cache proxy PROXY ("" for
# none), without HTTP pipelining (measured in the lab: with apt-cacher-ng as the proxy, a pipelined
# request was never answered and apt-get update waited forever on a half-closed connection, and it
# happened again, less often, without pipelining) and under deadlines: `apt-get update` (seconds
# normally, ~20 s from a cold cache) is killed after 60 s and tried again (up to 4 times; the hang hit
# about a third of lab runs), anything else after 30 minutes, so a hung apt fails the run (which a
# re-run resumes) instead of hanging it.
#
# It first waits (up to 300 s, install.AptLockTimeout) while another process holds dpkg's or apt's
# lists lock, then exits 75 (install.AptLockHeldExit) naming the holder on stderr ("apt lock held by
# unattended-upgr (pid 812)"); apt's own DPkg::Lock::Timeout covers a lock taken in between. lslocks
# is util-linux's (essential on Debian and Ubuntu).
set -eu
proxy=$1; shift
export DEBIAN_FRONTEND=noninteractive
deadline=$(( $(date +%s) + 300 ))
while holder=$(lslocks -n -o COMMAND,PID,PATH 2>/dev/null | awk '$3 == "/var/lib/dpkg/lock-frontend" || $3 == "/var/lib/dpkg/lock" || $3 == "/var/lib/apt/lists/lock" { print $1 " (pid " $2 ")"; exit }') && [ -n "$holder" ]; do
  if [ "$(date +%s)" -ge "$deadline" ]; then echo "apt lock held by $holder" >&2; exit 75; fi
  sleep 2
done
sub=$1
set -- -q -y -o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
  -o Acquire::http::Pipeline-Depth=0 -o Acquire::http::Timeout=60 "$@"
if [ -n "$proxy" ]; then set -- -o "Acquire::http::Proxy=$proxy" "$@"; fi
if [ "$sub" = update ]; then
  # Refreshing the index changes nothing on its own: a hung attempt is killed and tried again.
  for attempt in 1 2 3 4; do
    rc=0; timeout --kill-after=10 60 apt-get "$@" || rc=$?
    case $rc in 0) exit 0;; 124|137) echo "apt-get update hung (attempt $attempt of 4)" >&2;; *) exit $rc;; esac
  done
  exit 124
fi
exec timeout --kill-after=30 1800 apt-get "$@"
