#!/bin/sh
# unit-state.sh UNIT: prints whether the systemd unit UNIT is enabled and whether it is active, as
# `systemctl is-enabled` and `systemctl is-active` say it ("enabled active"); a word is missing when
# systemctl prints nothing.
printf '%s %s\n' "$(systemctl is-enabled "$1" 2>/dev/null)" "$(systemctl is-active "$1" 2>/dev/null)"
