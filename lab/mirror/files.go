package mirror

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"installer.dev/installer/lab/build"
	"installer.dev/installer/pkg/install"
	"installer.dev/installer/pkg/versions"
)

// file is one file of the binary mirror: a binary linked from the build cache, or an archive of
// several; Checksum says how its .sha256 is written upstream.
type file struct {
	Path     string            // URL path, e.g. /release/v1.34.10/bin/linux/amd64/kubeadm
	Source   string            // single binary
	Archive  map[string]string // archive member name -> source binary (gzip'd tar)
	Checksum checksumStyle
}

// checksumStyle is the format of a .sha256 file: the zero value is dl.k8s.io's and cri-tools'
// (the hex digest alone), sha256sum containernetworking/plugins' ("<hex>  <file name>").
type checksumStyle int

const sha256sum checksumStyle = 1

// Paths of the binary mirror for one release set, in upstream layout.
func releaseFiles(set build.Set) []file {
	r := set.Release
	var out []file
	for _, c := range []string{"kubeadm", "kubelet", "kubectl"} {
		out = append(out, file{Path: "/release/" + r.Kubernetes + "/bin/linux/amd64/" + c, Source: set.Path(c)})
	}
	cni := map[string]string{}
	for _, p := range []string{"bridge", "host-local", "loopback", "portmap"} {
		cni["./"+p] = set.Path(p)
	}
	out = append(out,
		file{Path: CNIPluginsPath(r.CNIPlugins), Archive: cni, Checksum: sha256sum},
		file{Path: CrictlPath(r.CRITools), Archive: map[string]string{"crictl": set.Path("crictl")}},
		file{Path: RuncPath(versions.Containerd().Runc), Source: set.Path("runc"), Checksum: sha256sum},
		file{Path: ContainerdPath(versions.Containerd().Containerd), Checksum: sha256sum, Archive: map[string]string{
			"bin/containerd":              set.Path("containerd"),
			"bin/containerd-shim-runc-v2": set.Path("containerd-shim-runc-v2"),
			"bin/ctr":                     set.Path("ctr"),
		}},
	)
	return out
}

// RuncPath is the upstream release path of the runc binary.
func RuncPath(version string) string {
	return "/opencontainers/runc/releases/download/" + version + "/runc.amd64"
}

// ContainerdPath is the upstream release path of containerd's archive (bin/containerd, the runc
// shim and ctr).
func ContainerdPath(version string) string {
	return fmt.Sprintf("/containerd/containerd/releases/download/%s/containerd-%s-linux-amd64.tar.gz", version, strings.TrimPrefix(version, "v"))
}

// CNIPluginsPath is the upstream release path of the CNI plugins archive.
func CNIPluginsPath(version string) string {
	return fmt.Sprintf("/containernetworking/plugins/releases/download/%s/cni-plugins-linux-amd64-%s.tgz", version, version)
}

// CrictlPath is the upstream release path of the crictl archive.
func CrictlPath(version string) string {
	return fmt.Sprintf("/kubernetes-sigs/cri-tools/releases/download/%s/crictl-%s-linux-amd64.tar.gz", version, version)
}

// KubernetesBinaryPath is dl.k8s.io's path of kubeadm, kubelet or kubectl.
func KubernetesBinaryPath(version, command string) string {
	return "/release/" + version + "/bin/linux/amd64/" + command
}

// writeFiles lays the files out under root, skipping those already up to date (a link to the same
// cached binary, or an archive of the same sources), so a warm start costs no hashing.
func writeFiles(root string, files []file) error {
	for _, f := range files {
		dst := filepath.Join(root, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return fmt.Errorf("mirror file %s: %w", f.Path, err)
		}
		var err error
		if f.Source != "" {
			err = linkFile(f, dst)
		} else {
			err = archiveFile(f, dst)
		}
		if err != nil {
			return fmt.Errorf("mirror file %s: %w", f.Path, err)
		}
	}
	return nil
}

func linkFile(f file, dst string) error {
	if f.Source == "" {
		return fmt.Errorf("no source binary")
	}
	if sameFile(f.Source, dst) && exists(install.ChecksumURL(dst)) {
		return nil
	}
	tmp := dst + ".tmp"
	os.Remove(tmp)
	// A hard link costs no space; fall back to a copy across file systems.
	if err := os.Link(f.Source, tmp); err != nil {
		if err := copyFile(f.Source, tmp); err != nil {
			return err
		}
	}
	if err := writeChecksum(f, tmp, dst); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}

func archiveFile(f file, dst string) error {
	names := make([]string, 0, len(f.Archive))
	for n, src := range f.Archive {
		if src == "" {
			return fmt.Errorf("no source binary for %s", n)
		}
		names = append(names, n)
	}
	sort.Strings(names)
	h := sha256.New()
	for _, n := range names {
		st, err := os.Stat(f.Archive[n])
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s=%s:%d\n", n, f.Archive[n], st.Size())
	}
	key := hex.EncodeToString(h.Sum(nil))
	if old, err := os.ReadFile(dst + ".key"); err == nil && string(old) == key && exists(dst) && exists(install.ChecksumURL(dst)) {
		return nil
	}
	tmp := dst + ".tmp"
	if err := writeTarGz(tmp, names, f.Archive); err != nil {
		return err
	}
	if err := writeChecksum(f, tmp, dst); err != nil {
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		return err
	}
	return os.WriteFile(dst+".key", []byte(key), 0o644)
}

// writeTarGz writes a reproducible archive: sorted members, mode 0755, root-owned, fixed times.
func writeTarGz(dst string, names []string, sources map[string]string) (err error) {
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := out.Close(); err == nil {
			err = cerr
		}
	}()
	gz, err := gzip.NewWriterLevel(out, gzip.BestSpeed)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(gz)
	for _, n := range names {
		if err := addMember(tw, n, sources[n]); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}

func addMember(tw *tar.Writer, name, src string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	hdr := &tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o755, Size: st.Size(), ModTime: time.Unix(0, 0), Uname: "root", Gname: "root"}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	_, err = io.Copy(tw, f)
	return err
}

func writeChecksum(f file, tmp, dst string) error {
	sum, err := sha256File(tmp)
	if err != nil {
		return err
	}
	// Where and how the release publishes it (install.ChecksumURL): containerd's and runc's
	// sha256sum files always name the file.
	sums := install.ChecksumURL(dst)
	line := sum + "\n"
	if f.Checksum == sha256sum || !strings.HasSuffix(sums, ".sha256") {
		line = sum + "  " + path.Base(f.Path) + "\n"
	}
	if err := os.WriteFile(sums+".tmp", []byte(line), 0o644); err != nil {
		return err
	}
	return os.Rename(sums+".tmp", sums)
}

// writtenDigest is the digest writeFiles published beside the mirror file at urlPath.
func writtenDigest(root, urlPath string) (string, error) {
	local := filepath.Join(root, filepath.FromSlash(urlPath))
	sums, err := os.ReadFile(install.ChecksumURL(local))
	if err != nil {
		return "", fmt.Errorf("mirror file %s: %w", urlPath, err)
	}
	digest, err := install.PickChecksum(sums, path.Base(urlPath))
	if err != nil {
		return "", fmt.Errorf("mirror file %s: %w", urlPath, err)
	}
	return digest, nil
}

func sha256File(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func sameFile(a, b string) bool {
	sa, err1 := os.Stat(a)
	sb, err2 := os.Stat(b)
	if err1 != nil || err2 != nil {
		return false
	}
	x, ok1 := sa.Sys().(*syscall.Stat_t)
	y, ok2 := sb.Sys().(*syscall.Stat_t)
	return ok1 && ok2 && x.Dev == y.Dev && x.Ino == y.Ino
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

// repoPath is where an image lives in the lab registry: its name without the registry host, which
// is what containerd asks a mirror for (registry.k8s.io/pause -> pause, docker.io/library/busybox ->
// library/busybox).
func repoPath(name string) (repo, tag string, err error) {
	at := strings.LastIndex(name, ":")
	slash := strings.Index(name, "/")
	if at < 0 || slash < 0 || at < slash {
		return "", "", fmt.Errorf("image %q is not registry/repository:tag", name)
	}
	return name[slash+1 : at], name[at+1:], nil
}
