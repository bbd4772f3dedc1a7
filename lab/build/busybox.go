package build

import (
	"archive/tar"
	"compress/bzip2"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"installer.dev/installer/lab/aptsources"
	"installer.dev/installer/lab/internal/flock"
)

// Busybox is the name of the busybox binary in a release's conformance Set.
const Busybox = "busybox"

// busyboxSource is the busybox release the e2e busybox image is built on upstream (test/images/
// busybox/BASEIMAGE: busybox:1.37.0), as Debian's archive serves its unmodified tarball. The
// checksum is pinned here, never taken from the mirror.
var busyboxSource = struct {
	Version, Path, SHA256 string
}{
	Version: "1.37.0",
	Path:    "pool/main/b/busybox/busybox_1.37.0.orig.tar.bz2",
	SHA256:  "3311dff32e746499f4df0d5df04d7eb396382d7e108bb9250e7b519b837043a4",
}

// busyboxConfig is what the build changes in busybox's defconfig: a static binary, as the image has
// no libc.
var busyboxConfig = map[string]string{"CONFIG_STATIC": "y"}

// BusyboxBinary builds (or finds cached) upstream's busybox from its release tarball with the
// default configuration. Debian's busybox cannot stand in for it: Debian reverts upstream's change
// that keeps environment variables whose names are not shell identifiers ("data-1") when sh starts,
// and four [sig-node] conformance specs read such variables back with `sh -c env`; other specs
// expect busybox sh's own messages ("can't create /file: Read-only file system"), so no other
// shell can either. Needs gcc, make and libc6-dev (hack/lab-prereqs.sh); about 2 min on 2 cores.
func (b *Builder) BusyboxBinary(ctx context.Context) (string, error) {
	cache, err := b.CacheDir()
	if err != nil {
		return "", err
	}
	out := filepath.Join(cache, "bin", "busybox-"+busyboxSource.Version+"-"+busyboxKey(), Busybox)
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	lock, err := flock.Acquire(ctx, filepath.Join(cache, "locks", "busybox.lock"))
	if err != nil {
		return "", err
	}
	defer lock.Unlock()
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	start := time.Now()
	srcs, err := aptsources.ReadSystem()
	if err != nil {
		return "", fmt.Errorf("busybox source: %w", err)
	}
	mirror, err := aptsources.DebianMirror(srcs)
	if err != nil {
		return "", fmt.Errorf("busybox source: %w", err)
	}
	work := filepath.Join(cache, "work", "busybox-"+busyboxSource.Version+"-"+busyboxKey())
	if err := os.RemoveAll(work); err != nil {
		return "", fmt.Errorf("busybox: %w", err)
	}
	if err := os.MkdirAll(work, 0o755); err != nil {
		return "", fmt.Errorf("busybox: %w", err)
	}
	tarball := filepath.Join(work, filepath.Base(busyboxSource.Path))
	if err := fetchPinned(ctx, mirror+"/"+busyboxSource.Path, busyboxSource.SHA256, tarball); err != nil {
		return "", fmt.Errorf("busybox source: %w", err)
	}
	if err := untarBzip2(tarball, work); err != nil {
		return "", fmt.Errorf("busybox source: %w", err)
	}
	src := filepath.Join(work, "busybox-"+busyboxSource.Version)
	runMake := func(args ...string) error {
		cmd := exec.CommandContext(ctx, "make", args...)
		cmd.Dir = src
		if o, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("make %s: %w\n%s", strings.Join(args, " "), err, tail(string(o), 4000))
		}
		return nil
	}
	if err := runMake("defconfig"); err != nil {
		return "", fmt.Errorf("busybox: %w", err)
	}
	if err := setKconfig(filepath.Join(src, ".config"), busyboxConfig); err != nil {
		return "", fmt.Errorf("busybox: %w", err)
	}
	if err := runMake("-j", fmt.Sprint(b.opts.Parallel), "busybox"); err != nil {
		return "", fmt.Errorf("busybox: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return "", fmt.Errorf("busybox: %w", err)
	}
	// Rename last (the work tree is in the same cache): a binary that exists is complete.
	if err := os.Rename(filepath.Join(src, "busybox"), out); err != nil {
		return "", fmt.Errorf("busybox: %w", err)
	}
	_ = os.RemoveAll(work)
	fmt.Fprintf(b.opts.Log, "build: busybox %s in %s\n", busyboxSource.Version, time.Since(start).Round(time.Second))
	return out, nil
}

// busyboxKey names the build by everything that goes into it.
func busyboxKey() string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%s\n", revision, busyboxSource.SHA256, busyboxSource.Version)
	for _, k := range sortedKeys(busyboxConfig) {
		fmt.Fprintf(h, "%s=%s\n", k, busyboxConfig[k])
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// fetchPinned downloads url to dest and fails unless its SHA-256 is want.
func fetchPinned(ctx context.Context, url, want, dest string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	f, err := os.Create(dest)
	if err != nil {
		return err
	}
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(f, h), resp.Body); err != nil {
		f.Close()
		return fmt.Errorf("GET %s: %w", url, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		_ = os.Remove(dest)
		return fmt.Errorf("GET %s: sha256 %s, pinned %s", url, got, want)
	}
	return nil
}

// untarBzip2 unpacks regular files, directories and symlinks of a .tar.bz2 under dir, refusing
// paths that leave it.
func untarBzip2(path, dir string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(bzip2.NewReader(f))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		name := filepath.Clean(h.Name)
		if filepath.IsAbs(name) || name == ".." || strings.HasPrefix(name, "../") {
			return fmt.Errorf("%s: entry %q leaves the directory", path, h.Name)
		}
		target := filepath.Join(dir, name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			w, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(h.Mode)&0o777)
			if err != nil {
				return err
			}
			if _, err := io.Copy(w, tr); err != nil {
				w.Close()
				return err
			}
			if err := w.Close(); err != nil {
				return err
			}
		case tar.TypeSymlink:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			if err := os.Symlink(h.Linkname, target); err != nil {
				return err
			}
		}
	}
}

// setKconfig sets options in a Kconfig .config, whether they were set, unset ("# X is not set")
// or absent.
func setKconfig(path string, opts map[string]string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	done := map[string]bool{}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	for i, l := range lines {
		for k, v := range opts {
			if strings.HasPrefix(l, k+"=") || l == "# "+k+" is not set" {
				lines[i] = k + "=" + v
				done[k] = true
			}
		}
	}
	for _, k := range sortedKeys(opts) {
		if !done[k] {
			lines = append(lines, k+"="+opts[k])
		}
	}
	return os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
