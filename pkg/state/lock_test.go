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

// TestEnsureLeavesOthersDirectoriesAlone: a missing state directory is created 0700; an existing
// one of this user's is used as it is; one that others can write (like /tmp) is refused with its mode
// unchanged (security review, low: --state-dir /tmp lost its sticky bit).
func TestEnsureLeavesOthersDirectoriesAlone(t *testing.T) {
	base := t.TempDir()
	fresh := Dir(filepath.Join(base, "new", "state"))
	if err := Ensure(fresh); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{string(fresh), fresh.Logs()} {
		if st, err := os.Stat(d); err != nil || st.Mode().Perm() != 0o700 {
			t.Errorf("%s: %v %v, want 0700", d, st.Mode().Perm(), err)
		}
	}

	shared := filepath.Join(base, "shared")
	if err := os.Mkdir(shared, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(shared, os.ModeSticky|0o777); err != nil {
		t.Fatal(err)
	}
	err := Ensure(Dir(shared))
	if err == nil || !strings.Contains(err.Error(), "writable by other users") {
		t.Errorf("world-writable directory: err = %v", err)
	}
	if st, _ := os.Stat(shared); st.Mode()&(os.ModeSticky|os.ModePerm) != os.ModeSticky|0o777 {
		t.Errorf("mode changed to %v", st.Mode())
	}
	if _, err := os.Stat(Dir(shared).Logs()); !os.IsNotExist(err) {
		t.Errorf("logs created in a refused directory: %v", err)
	}

	own := filepath.Join(base, "own")
	if err := os.Mkdir(own, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(own, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := Ensure(Dir(own)); err != nil {
		t.Errorf("own 0750 directory: %v", err)
	}
	if st, _ := os.Stat(own); st.Mode().Perm() != 0o750 {
		t.Errorf("own directory's mode changed to %v", st.Mode().Perm())
	}
}

// TestAcquireShared: readers share the lock and write nothing; a run holding it excludes them and
// they exclude a run (security review, low: render read a state directory a running create wrote).
func TestAcquireShared(t *testing.T) {
	dir := Dir(filepath.Join(t.TempDir(), "prod"))
	if l, err := AcquireShared(dir); err != nil || l != nil {
		t.Fatalf("never-written directory: %v %v", l, err)
	}
	if _, err := os.Stat(string(dir)); !os.IsNotExist(err) {
		t.Fatalf("AcquireShared created the directory: %v", err)
	}
	run, err := Acquire(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := AcquireShared(dir); !errors.Is(err, ErrLocked) {
		t.Errorf("shared while a run holds it: %v", err)
	}
	if err := run.Release(); err != nil {
		t.Fatal(err)
	}
	r1, err := AcquireShared(dir)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := AcquireShared(dir)
	if err != nil {
		t.Errorf("two readers: %v", err)
	}
	if _, err := Acquire(dir); !errors.Is(err, ErrLocked) {
		t.Errorf("a run while readers hold it: %v", err)
	}
	_ = r1.Release()
	_ = r2.Release()
	again, err := Acquire(dir)
	if err != nil {
		t.Errorf("a run after the readers: %v", err)
	}
	_ = again.Release()
}
