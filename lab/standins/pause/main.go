// Command pause is the lab's sandbox (pause) image program: PID 1 of every pod, it waits for a
// termination signal and reaps orphaned children. Upstream's pause is C; kubeadm's upgrade health-check
// Job runs it with -v, so it prints a version and exits 0 then.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// version is stamped by the lab builder (-X main.version=...).
var version = "dev"

func main() {
	if len(os.Args) > 1 && (os.Args[1] == "-v" || os.Args[1] == "--version") {
		fmt.Printf("pause.go version %s (installer lab)\n", version)
		return
	}
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range sigs {
		if s == syscall.SIGCHLD {
			reap()
			continue
		}
		fmt.Fprintf(os.Stderr, "pause: %s, exiting\n", s)
		return
	}
}

// reap collects every exited child; SIGCHLD signals coalesce, so loop until none is left.
func reap() {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}
