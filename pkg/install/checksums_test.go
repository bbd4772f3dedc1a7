package install

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"installer.dev/installer/pkg/scripts"
)

func TestChecksumURL(t *testing.T) {
	for url, want := range map[string]string{
		KubeBinaryURL("https://dl.k8s.io", "v1.37.2", "amd64", "kubeadm"):                     "https://dl.k8s.io/release/v1.37.2/bin/linux/amd64/kubeadm.sha256",
		CrictlURL("https://github.com", "v1.37.0", "amd64"):                                   "https://github.com/kubernetes-sigs/cri-tools/releases/download/v1.37.0/crictl-v1.37.0-linux-amd64.tar.gz.sha256",
		CNIPluginsURL("https://github.com", "v1.9.1", "amd64"):                                "https://github.com/containernetworking/plugins/releases/download/v1.9.1/cni-plugins-linux-amd64-v1.9.1.tgz.sha256",
		ContainerdURL("https://github.com", "v2.3.7", "amd64"):                                "https://github.com/containerd/containerd/releases/download/v2.3.7/containerd-2.3.7-linux-amd64.tar.gz.sha256sum",
		RuncURL("https://github.com", "v1.5.3", "arm64"):                                      "https://github.com/opencontainers/runc/releases/download/v1.5.3/runc.sha256sum",
		"/containerd/containerd/releases/download/v2.3.7/containerd-2.3.7-linux-amd64.tar.gz": "/containerd/containerd/releases/download/v2.3.7/containerd-2.3.7-linux-amd64.tar.gz.sha256sum",
	} {
		if got := ChecksumURL(url); got != want {
			t.Errorf("ChecksumURL(%s) = %s, want %s", url, got, want)
		}
	}
}

func hexSum(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// TestDownloadScriptReadsEveryChecksumStyle runs the real download.sh with curl against a local
// HTTP server that publishes checksums in each upstream style (a bare digest, a sha256sum line
// beside the file, one sha256sum file for several files), and checks that it installs the file
// only when the digest for that file name matches, and that PickChecksum agrees with it.
func TestDownloadScriptReadsEveryChecksumStyle(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("curl is needed (the hosts have it too)")
	}
	good, other := []byte("the runc binary"), []byte("another file")
	files := map[string][]byte{
		"/release/v1/bin/linux/amd64/kubeadm":              good,
		"/release/v1/bin/linux/amd64/kubeadm.sha256":       []byte(hexSum(good) + "\n"),
		"/c/containerd-2.3.7-linux-amd64.tar.gz":           good,
		"/c/containerd-2.3.7-linux-amd64.tar.gz.sha256sum": []byte(hexSum(good) + "  containerd-2.3.7-linux-amd64.tar.gz\n"),
		"/r/runc.amd64":     good,
		"/r/runc.arm64":     good,
		"/r/runc.sha256sum": []byte(hexSum(other) + "  runc.arm64\n" + hexSum(good) + " *runc.amd64\n"),
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(b)
	}))
	defer srv.Close()
	for _, tc := range []struct {
		path string
		ok   bool
	}{
		{"/release/v1/bin/linux/amd64/kubeadm", true},
		{"/c/containerd-2.3.7-linux-amd64.tar.gz", true},
		{"/r/runc.amd64", true},
		{"/r/runc.arm64", false}, // the sums file names another digest for it
	} {
		url := srv.URL + tc.path
		dest := filepath.Join(t.TempDir(), "bin")
		argv := DownloadBinary(url, published(url), dest, "")
		if _, _, ok := scripts.Parse(argv); !ok {
			t.Fatalf("not download.sh: %q", argv[:2])
		}
		out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput() // as a host runs it: sh -c BODY download.sh ...
		got, readErr := os.ReadFile(dest)
		if tc.ok != (err == nil) || tc.ok != (readErr == nil && string(got) == string(good)) {
			t.Errorf("%s: err %v, installed %v: %s", tc.path, err, readErr == nil, out)
		}
		if !tc.ok && !strings.Contains(string(out), "checksum mismatch") {
			t.Errorf("%s: %s", tc.path, out)
		}
		sums := files[strings.TrimPrefix(ChecksumURL(url), srv.URL)]
		digest, err := PickChecksum(sums, filepath.Base(tc.path))
		if err != nil || (digest == hexSum(good)) != tc.ok {
			t.Errorf("PickChecksum disagrees with download.sh for %s: %s %v", tc.path, digest, err)
		}
	}
}
