package state

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestLock(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "prod")
	l, err := Acquire(Dir(dir))
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(dir)
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("state dir mode %v, %v", st.Mode(), err)
	}
	// A second holder in another process (flock is per open file description; use a real process
	// to be sure the kernel refuses it the way a second installer run would see).
	out, err := exec.Command("flock", "-n", filepath.Join(dir, "lock"), "true").CombinedOutput()
	if err == nil {
		t.Fatalf("another process took the held lock: %s", out)
	}
	if _, err := Acquire(Dir(dir)); !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "pid "+strconv.Itoa(os.Getpid())) {
		t.Fatalf("second Acquire = %v", err)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("flock", "-n", filepath.Join(dir, "lock"), "true").CombinedOutput(); err != nil {
		t.Fatalf("lock not released: %v %s", err, out)
	}
	l2, err := Acquire(Dir(dir))
	if err != nil {
		t.Fatalf("re-acquire: %v", err)
	}
	_ = l2.Release()
}

func TestRunLogDir(t *testing.T) {
	dir := t.TempDir()
	d, err := RunLogDir(Dir(dir), "create cluster", time.Date(2026, 11, 22, 4, 5, 6, 0, time.UTC))
	if err != nil || d != filepath.Join(dir, "logs", "20261122T040506Z-create-cluster") {
		t.Fatalf("RunLogDir = %q, %v", d, err)
	}
}
