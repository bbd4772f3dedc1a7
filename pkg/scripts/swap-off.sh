#!/bin/sh
# swap-off.sh: turns swap off now and comments out the swap entries of /etc/fstab, so swap stays off
# after a reboot.
swapoff -a && sed -i -E 's@^([^#[:space:]][^[:space:]]*[[:space:]]+[^[:space:]]+[[:space:]]+swap[[:space:]])@#\1@' /etc/fstab
