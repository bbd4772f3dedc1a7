#!/bin/sh
# manifest-images.sh FILE...: prints "<file> <image>" for each static pod manifest FILE: the first
# image it names, or nothing after the file name when the file is missing or names none.
for f in "$@"; do printf '%s %s\n' "$f" "$(sed -n 's/^ *image: *//p' "$f" 2>/dev/null | head -n 1)"; done
