// Package proc finds, signals and waits for background processes the lab started, identified by
// recorded PID plus a check of their command line, so a recycled PID never gets someone else killed.
package proc

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Cmdline returns the argv of a process, or nil if it is gone.
func Cmdline(pid int) []string {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil || len(data) == 0 {
		return nil
	}
	return strings.Split(string(bytes.TrimRight(data, "\x00")), "\x00")
}

// Alive tells whether pid exists and is not a zombie.
func Alive(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name, which may itself hold spaces.
	i := bytes.LastIndexByte(data, ')')
	return i >= 0 && i+2 < len(data) && data[i+2] != 'Z'
}

// Matches tells whether pid runs a command line containing every one of the given parts.
func Matches(pid int, parts ...string) bool {
	joined := strings.Join(Cmdline(pid), " ")
	if joined == "" {
		return false
	}
	for _, p := range parts {
		if !strings.Contains(joined, p) {
			return false
		}
	}
	return true
}

// Stop sends SIGTERM to pid if its command line still matches, waits up to grace for it to exit, then
// sends SIGKILL. A process that is already gone is not an error.
func Stop(ctx context.Context, pid int, grace time.Duration, parts ...string) error {
	if pid <= 0 || !Alive(pid) || !Matches(pid, parts...) {
		return nil
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && err != syscall.ESRCH {
		return fmt.Errorf("signal %d: %w", pid, err)
	}
	if waitGone(ctx, pid, grace) {
		return nil
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && err != syscall.ESRCH {
		return fmt.Errorf("kill %d: %w", pid, err)
	}
	if !waitGone(ctx, pid, 5*time.Second) {
		return fmt.Errorf("process %d still running after SIGKILL", pid)
	}
	return nil
}

func waitGone(ctx context.Context, pid int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if !Alive(pid) {
			return true
		}
		select {
		case <-ctx.Done():
			return !Alive(pid)
		case <-time.After(50 * time.Millisecond):
		}
	}
	return !Alive(pid)
}
