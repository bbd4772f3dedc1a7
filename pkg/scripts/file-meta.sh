#!/bin/sh
# file-meta.sh PATH MODE OWNER: sets the mode (octal) of PATH and, unless OWNER is "", its owner.
chmod -- "$2" "$1" && if [ -n "$3" ]; then chown -- "$3" "$1"; fi
