#!/bin/sh
# processes.sh NAME...: prints "PID COMMAND LINE" for every running process whose name (comm) is one
# of the NAMEs, read from /proc (procps is not needed); prints nothing when none runs.
set -u
for d in /proc/[0-9]*; do
	read -r comm < "$d/comm" 2>/dev/null || continue
	for n in "$@"; do
		if [ "$comm" = "$n" ]; then
			printf '%s %s\n' "${d#/proc/}" "$(tr '\0' ' ' < "$d/cmdline" 2>/dev/null)"
		fi
	done
done
