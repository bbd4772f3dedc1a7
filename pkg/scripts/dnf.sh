#!/bin/sh
# dnf.sh PM PROXY ARG...: runs the package manager PM (dnf or yum) non-interactively with ARG...,
# through the proxy PROXY ("" for none).
set -eu
pm=$1 proxy=$2; shift 2
if [ -n "$proxy" ]; then set -- --setopt=proxy="$proxy" "$@"; fi
exec "$pm" -y "$@"
