#!/bin/sh
# file-state.sh PATH: prints "missing" when PATH is not a regular file, else two lines: its mode
# (octal), owner and group ("644 root root"), then `sha256sum`'s line ("<hex digest>  PATH"). A
# directory is an error (exit 1). pkg/ssh's WriteFile and the phases' dry runs compare with it
# (ssh.ParseFileState reads it).
if [ -d "$1" ]; then echo "$1 is a directory" >&2; exit 1; fi
if [ -f "$1" ]; then stat -c '%a %U %G' -- "$1" && sha256sum -- "$1"; else echo missing; fi
