// Package rootfs builds the lab's Debian root filesystem once with mmdebstrap and caches the tarball,
// keyed by everything that goes into it. The lab hosts (lab/hosts) and the userland copied into lab
// images (lab/build) share this one cache, so a machine pays the ~70 s build once per package set.
package rootfs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"installer.dev/installer/lab/aptsources"
	"installer.dev/installer/lab/internal/flock"
)

// Suite is the Debian release of every lab root filesystem.
const Suite = "bookworm"

// formatVersion changes whenever the way the tarball is built changes, so old caches are not reused.
const formatVersion = "1"

// BasePackages are always installed (minbase variant plus these): what a lab host needs to look like
// a real server. A new slice on every call, so callers cannot change it for others.
func BasePackages() []string {
	return []string{
		"systemd", "systemd-sysv", "dbus", "libpam-systemd", "openssh-server", "sudo", "iproute2",
		"iptables", "ca-certificates", "curl", "kmod", "procps", "conntrack", "socat", "ethtool",
		"iputils-ping", "less",
	}
}

// Tarball is a cached root filesystem.
type Tarball struct {
	Path     string   // the tar file (root-owned tree, numeric owners)
	Key      string   // hash of the inputs; names the cache directory
	Packages []string // sorted --include list
}

// DefaultCacheDir is ~/.cache/installer-lab (or $XDG_CACHE_HOME/installer-lab).
func DefaultCacheDir() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("cache dir: %w", err)
	}
	return filepath.Join(dir, "installer-lab"), nil
}

// Ensure returns the cached tarball for the base packages plus extra, building it first if needed.
// The Debian mirror comes from the machine's own apt sources. Concurrent callers wait on a file lock.
func Ensure(ctx context.Context, cacheDir string, extra ...string) (Tarball, error) {
	mirrors, err := mirrorLines()
	if err != nil {
		return Tarball{}, err
	}
	pkgs := packageSet(extra)
	key := cacheKey(pkgs, mirrors)
	dir := filepath.Join(cacheDir, "rootfs", key)
	t := Tarball{Path: filepath.Join(dir, "rootfs.tar"), Key: key, Packages: pkgs}
	if _, err := os.Stat(t.Path); err == nil {
		return t, nil
	}
	lock, err := flock.Acquire(ctx, filepath.Join(cacheDir, "rootfs", key+".lock"))
	if err != nil {
		return Tarball{}, err
	}
	defer lock.Unlock()
	if _, err := os.Stat(t.Path); err == nil { // built by whoever held the lock before us
		return t, nil
	}
	if err := build(ctx, dir, t.Path, pkgs, mirrors); err != nil {
		return Tarball{}, fmt.Errorf("build root filesystem %s: %w", key, err)
	}
	return t, nil
}

func packageSet(extra []string) []string {
	seen := map[string]bool{}
	var pkgs []string
	for _, p := range append(BasePackages(), extra...) {
		if p = strings.TrimSpace(p); p != "" && !seen[p] {
			seen[p] = true
			pkgs = append(pkgs, p)
		}
	}
	sort.Strings(pkgs)
	return pkgs
}

func cacheKey(pkgs, mirrors []string) string {
	h := sha256.New()
	fmt.Fprintf(h, "format=%s\nsuite=%s\nvariant=minbase\n", formatVersion, Suite)
	for _, p := range pkgs {
		fmt.Fprintf(h, "pkg=%s\n", p)
	}
	for _, m := range mirrors {
		fmt.Fprintf(h, "mirror=%s\n", m)
	}
	return Suite + "-" + hex.EncodeToString(h.Sum(nil))[:16]
}

// mirrorLines turns the machine's Debian archive and security URIs into sources.list lines for Suite.
func mirrorLines() ([]string, error) {
	srcs, err := aptsources.ReadSystem()
	if err != nil {
		return nil, err
	}
	archive, err := aptsources.DebianMirror(srcs)
	if err != nil {
		return nil, err
	}
	lines := []string{
		fmt.Sprintf("deb %s %s main", archive, Suite),
		fmt.Sprintf("deb %s %s-updates main", archive, Suite),
	}
	if sec, err := aptsources.SecurityMirror(srcs); err == nil {
		lines = append(lines, fmt.Sprintf("deb %s %s-security main", sec, Suite))
	}
	return lines, nil
}

func build(ctx context.Context, dir, out string, pkgs, mirrors []string) error {
	if _, err := exec.LookPath("mmdebstrap"); err != nil {
		return fmt.Errorf("mmdebstrap not installed (apt-get install mmdebstrap): %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp := out + ".partial"
	_ = os.Remove(tmp)
	logPath := filepath.Join(dir, "build.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logf.Close()
	args := []string{"--mode=root", "--variant=minbase", "--format=tar",
		"--include=" + strings.Join(pkgs, ","), Suite, tmp}
	args = append(args, mirrors...)
	cmd := exec.CommandContext(ctx, "mmdebstrap", args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Run(); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("mmdebstrap: %w (log: %s)", err, logPath)
	}
	if err := os.Rename(tmp, out); err != nil {
		return err
	}
	return nil
}
