package build

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"installer.dev/installer/lab/internal/flock"
)

// DebianPackage returns a directory holding the files of the machine's candidate version of a
// Debian package (apt-get download + dpkg -x, nothing installed), fetched once into the cache. The
// lab uses it to run Debian's containerd privately in tests.
func (b *Builder) DebianPackage(ctx context.Context, pkg string) (string, error) {
	cache, err := b.CacheDir()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(cache, "debs", pkg)
	root := filepath.Join(dir, "root")
	if _, err := os.Stat(filepath.Join(dir, ".done")); err == nil {
		return root, nil
	}
	lock, err := flock.Acquire(ctx, filepath.Join(cache, "locks", "debs.lock"))
	if err != nil {
		return "", err
	}
	defer lock.Unlock()
	if _, err := os.Stat(filepath.Join(dir, ".done")); err == nil {
		return root, nil
	}
	if err := os.RemoveAll(dir); err != nil {
		return "", fmt.Errorf("debian package %s: %w", pkg, err)
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", fmt.Errorf("debian package %s: %w", pkg, err)
	}
	cmd := exec.CommandContext(ctx, "apt-get", "download", pkg)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("apt-get download %s: %w: %s", pkg, err, out)
	}
	debs, err := filepath.Glob(filepath.Join(dir, pkg+"_*.deb"))
	if err != nil || len(debs) != 1 {
		return "", fmt.Errorf("apt-get download %s: expected one .deb, found %v", pkg, debs)
	}
	if out, err := exec.CommandContext(ctx, "dpkg", "-x", debs[0], root).CombinedOutput(); err != nil {
		return "", fmt.Errorf("dpkg -x %s: %w: %s", debs[0], err, out)
	}
	version := strings.TrimSuffix(filepath.Base(debs[0]), ".deb")
	if err := os.WriteFile(filepath.Join(dir, ".done"), []byte(version+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("debian package %s: %w", pkg, err)
	}
	fmt.Fprintf(b.opts.Log, "build: unpacked %s\n", version)
	return root, nil
}
