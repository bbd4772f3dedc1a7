#!/bin/sh
# file-read.sh PATH: prints the file PATH, or exits 66 when it does not exist (pkg/ssh's ReadFile
# without SFTP, or under sudo).
[ -e "$1" ] || exit 66; exec cat -- "$1"
