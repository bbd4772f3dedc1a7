package state

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Lock is held for the whole of a run so two runs on one cluster cannot overlap. It is an flock on
// <dir>/lock: the kernel releases it when the process dies, so a crashed run never leaves it stuck.
type Lock struct {
	f *os.File
}

// ErrLocked means another run holds the lock.
var ErrLocked = errors.New("another installer run holds the state directory's lock")

// Ensure creates the state directory (0700) and its subdirectories.
func Ensure(dir Dir) error {
	for _, d := range []string{string(dir), dir.Logs()} {
		if err := ensureDir(d); err != nil {
			return fmt.Errorf("state dir: %w", err)
		}
	}
	return nil
}

// ensureDir creates d with mode 0700, or accepts an existing directory that this user owns and no
// one else can write. It never changes the mode of a directory it did not create (--state-dir /tmp
// kept 1777 and lost its sticky bit before), and refuses one that others can write: they could
// plant files or symlinks where the installer writes keys and kubeconfigs.
func ensureDir(d string) error {
	st, err := os.Stat(d)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
		return os.Chmod(d, 0o700) // whatever the umask
	}
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return fmt.Errorf("%s is not a directory", d)
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && int(sys.Uid) != os.Geteuid() {
		return fmt.Errorf("%s belongs to uid %d, not to you: use a directory of your own (the installer creates a missing one with mode 0700)", d, sys.Uid)
	}
	if st.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("%s is writable by other users (mode %v): use a directory only you can write (the installer creates a missing one with mode 0700)", d, st.Mode().Perm())
	}
	return nil
}

// Acquire takes the lock without waiting. When another process holds it, the error names its pid.
func Acquire(dir Dir) (*Lock, error) {
	if err := Ensure(dir); err != nil {
		return nil, err
	}
	path := dir.Lock()
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("state dir lock: %w", err)
	}
	if err := flockNow(f, syscall.LOCK_EX, path); err != nil {
		return nil, err
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &Lock{f: f}, nil
}

// AcquireShared takes the lock for reading without waiting and without writing anything: readers
// (render) share it, a run that changes the directory excludes them. A directory that has no lock
// file has never been written by a run, so there is nothing to lock (nil, nil).
func AcquireShared(dir Dir) (*Lock, error) {
	path := dir.Lock()
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("state dir lock: %w", err)
	}
	if err := flockNow(f, syscall.LOCK_SH, path); err != nil {
		return nil, err
	}
	return &Lock{f: f}, nil
}

// flockNow takes an flock of kind (LOCK_EX or LOCK_SH) on f without waiting; on failure it closes f,
// and when another process holds the lock the error names the pid the holder wrote.
func flockNow(f *os.File, kind int, path string) error {
	err := syscall.Flock(int(f.Fd()), kind|syscall.LOCK_NB)
	if err == nil {
		return nil
	}
	holder, _ := os.ReadFile(path)
	f.Close()
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return fmt.Errorf("%w (pid %s, %s); wait for it to finish", ErrLocked, strings.TrimSpace(string(holder)), path)
	}
	return fmt.Errorf("state dir lock: %w", err)
}

// Release frees the lock.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	cerr := l.f.Close()
	l.f = nil
	return errors.Join(err, cerr)
}

// RunLogDir creates logs/<time>-<command>/ for one run's per-host log files.
func RunLogDir(dir Dir, command string, now time.Time) (string, error) {
	d := filepath.Join(dir.Logs(), now.UTC().Format("20060102T150405Z")+"-"+strings.ReplaceAll(command, " ", "-"))
	if err := os.MkdirAll(d, 0o700); err != nil {
		return "", fmt.Errorf("run log dir: %w", err)
	}
	return d, nil
}
