#!/bin/sh
# Written by installer: keepalived's health check of the apiserver on this host.
exec curl -sfk --max-time 2 -o /dev/null https://127.0.0.1:6443/livez
