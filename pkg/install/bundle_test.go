package install

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
)

// runBundle runs a bundle-install.sh argv for real with data on its stdin and TMPDIR set to tmpdir.
// Before sending any byte it checks what the script has staged: one directory, mode 0700.
func runBundle(t *testing.T, argv []string, tmpdir string, data []byte) error {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "TMPDIR="+tmpdir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	w, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var entries []os.DirEntry
	for deadline := time.Now().Add(10 * time.Second); len(entries) == 0 && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		entries, _ = os.ReadDir(tmpdir)
	}
	if len(entries) != 1 || !entries[0].IsDir() {
		t.Errorf("staging while the file arrives: %v, want one directory", entries)
	} else if info, err := entries[0].Info(); err != nil || info.Mode().Perm() != 0o700 {
		t.Errorf("staging directory %s: mode %v (%v), want 0700", entries[0].Name(), info.Mode().Perm(), err)
	}
	_, _ = w.Write(data)
	_ = w.Close()
	err = cmd.Wait()
	if err != nil {
		t.Logf("stderr: %s", stderr.String())
	}
	if left, _ := os.ReadDir(tmpdir); len(left) != 0 {
		t.Errorf("staging left behind: %v", left)
	}
	return err
}

func sum(b []byte) string {
	d := sha256.Sum256(b)
	return hex.EncodeToString(d[:])
}

func names(t *testing.T, dir string) string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return strings.Join(out, " ")
}

func TestBundleBinary(t *testing.T) {
	tmpdir, bin := t.TempDir(), t.TempDir()
	data := []byte("#!/bin/sh\necho kubeadm\n")
	dest := filepath.Join(bin, "kubeadm")
	if err := os.WriteFile(dest, []byte("old"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Run("checksum mismatch installs nothing", func(t *testing.T) {
		if err := runBundle(t, BundleBinary(sum([]byte("other")), dest), tmpdir, data); err == nil {
			t.Fatal("a file with another checksum was accepted")
		}
		if got, _ := os.ReadFile(dest); string(got) != "old" {
			t.Errorf("dest = %q, want it untouched", got)
		}
		if got := names(t, bin); got != "kubeadm" {
			t.Errorf("bin dir holds %q, want only kubeadm", got)
		}
	})
	t.Run("installs", func(t *testing.T) {
		if err := runBundle(t, BundleBinary(sum(data), dest), tmpdir, data); err != nil {
			t.Fatal(err)
		}
		info, err := os.Stat(dest)
		if err != nil || info.Mode().Perm() != 0o755 {
			t.Fatalf("dest: %v, %v; want mode 0755", info, err)
		}
		if got, _ := os.ReadFile(dest); !bytes.Equal(got, data) {
			t.Errorf("dest = %q", got)
		}
		// No .sha256 or temporary file beside the binary.
		if got := names(t, bin); got != "kubeadm" {
			t.Errorf("bin dir holds %q, want only kubeadm", got)
		}
	})
}

func TestBundleArchive(t *testing.T) {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	body := []byte("plugin")
	if err := tw.WriteHeader(&tar.Header{Name: "./bridge", Mode: 0o755, Size: int64(len(body)), Uid: 1234, Gid: 1234}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(body); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	tmpdir, dir := t.TempDir(), filepath.Join(t.TempDir(), "opt/cni/bin")
	marker := filepath.Join(dir, ".installer-cni-plugins-version")
	if err := runBundle(t, BundleArchive(sum(buf.Bytes()), dir, "v1.8.0", marker), tmpdir, buf.Bytes()); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(dir, "bridge")); err != nil || !bytes.Equal(got, body) {
		t.Errorf("bridge = %q, %v", got, err)
	}
	if got, _ := os.ReadFile(marker); string(got) != "v1.8.0\n" {
		t.Errorf("marker = %q", got)
	}
	if got := names(t, dir); got != ".installer-cni-plugins-version bridge" {
		t.Errorf("dir holds %q", got)
	}
}

func TestBundleFile(t *testing.T) {
	bundle := t.TempDir()
	s := &v1alpha1.ClusterSpec{}
	s.Install.BundleDir = bundle
	s.Install.BinaryMirror = "https://dl.k8s.io"
	rel := "release/v1.34.1/bin/linux/amd64/kubeadm"
	local := filepath.Join(bundle, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(local), 0o755); err != nil {
		t.Fatal(err)
	}
	data := []byte("kubeadm")
	if err := os.WriteFile(local, data, 0o644); err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifier(s, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ published, want, wantErr string }{
		{strings.ToUpper(sum(data)) + "  kubeadm\n", sum(data), ""},
		{sum(data), sum(data), ""},
		{"not-a-digest\n", "", "is not a SHA-256 digest"},
		{"", "", "no checksum for kubeadm"},
		{sum([]byte("other")) + "  kubelet\n", "", "no checksum for kubeadm"},
	} {
		if err := os.WriteFile(local+".sha256", []byte(tc.published), 0o644); err != nil {
			t.Fatal(err)
		}
		got, digest, err := v.BundleFile("https://dl.k8s.io/" + rel)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%q: err %v, want %q", tc.published, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !bytes.Equal(got, data) || digest != tc.want {
			t.Errorf("%q: %q, %q, %v", tc.published, got, digest, err)
		}
	}
	if _, _, err := v.BundleFile("https://dl.k8s.io/release/v9/missing"); err == nil {
		t.Error("a missing bundle file gave no error")
	}
}
