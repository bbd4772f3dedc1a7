package install

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/pins"
	"installer.dev/installer/pkg/versions"
)

func pinSpec(mirror string) *v1alpha1.ClusterSpec {
	s := &v1alpha1.ClusterSpec{KubernetesVersion: versions.Default().Kubernetes}
	s.Install = v1alpha1.Install{Source: v1alpha1.InstallBinary, BinaryMirror: mirror, ArtifactMirror: mirror}
	s.ContainerRuntime.Containerd = v1alpha1.Containerd{Source: v1alpha1.InstallBinary, Version: versions.Containerd().Containerd}
	return s
}

// TestVerifierNeverTrustsAMirror: a file on a mirror is checked against a pin, the user's before
// the built-in one; without a pin only upstream's own servers' published checksums are used.
func TestVerifierNeverTrustsAMirror(t *testing.T) {
	kubeadm := "release/v1.37.2/bin/linux/amd64/kubeadm"
	user, builtin := strings.Repeat("a", 64), strings.Repeat("b", 64)

	mirror := pinSpec("https://mirror.example.com/k8s/")
	v := &Verifier{spec: mirror, user: pins.Table{kubeadm: user}, builtin: pins.Table{kubeadm: builtin, "release/v1.37.2/bin/linux/amd64/kubelet": builtin}}
	for url, want := range map[string]Checksum{
		"https://mirror.example.com/k8s/" + kubeadm:                              {Digest: user},
		"https://mirror.example.com/k8s/release/v1.37.2/bin/linux/amd64/kubelet": {Digest: builtin},
	} {
		if got, err := v.For(url); err != nil || got != want {
			t.Errorf("%s: %+v, %v; want %+v", url, got, err, want)
		}
	}
	_, err := v.For("https://mirror.example.com/k8s/release/v1.37.2/bin/linux/amd64/kubectl")
	if err == nil || !strings.Contains(err.Error(), "no pinned SHA-256 for release/v1.37.2/bin/linux/amd64/kubectl") ||
		!strings.Contains(err.Error(), "install.checksumsFile") {
		t.Errorf("an unpinned mirror file: %v", err)
	}

	up := pinSpec("")
	up.Install.BinaryMirror, up.Install.ArtifactMirror = v1alpha1.DefaultBinaryMirror, v1alpha1.DefaultArtifactMirror
	v = &Verifier{spec: up, builtin: pins.Table{kubeadm: builtin}}
	if got, err := v.For("https://dl.k8s.io/" + kubeadm); err != nil || got.Digest != builtin {
		t.Errorf("upstream, pinned: %+v %v", got, err)
	}
	runc := "https://github.com/opencontainers/runc/releases/download/v1.5.3/runc.amd64"
	if got, err := v.For(runc); err != nil || got.PublishedAt != "https://github.com/opencontainers/runc/releases/download/v1.5.3/runc.sha256sum" {
		t.Errorf("upstream, unpinned: %+v %v", got, err)
	}
	// A host name that merely starts like upstream's is another server.
	if _, err := v.For("https://dl.k8s.io.evil.example/" + kubeadm); err == nil {
		t.Error("https://dl.k8s.io.evil.example was taken for upstream")
	}
}

// TestReleasePathNestedMirrors: with the artifact mirror below the binary mirror, each file's
// path is taken after the mirror it comes from.
func TestReleasePathNestedMirrors(t *testing.T) {
	s := pinSpec("https://m")
	s.Install.ArtifactMirror = "https://m/github/"
	for url, want := range map[string]string{
		KubeBinaryURL(s.Install.BinaryMirror, "v1.37.2", "amd64", "kubeadm"): "release/v1.37.2/bin/linux/amd64/kubeadm",
		RuncURL(s.Install.ArtifactMirror, "v1.5.3", "amd64"):                 "opencontainers/runc/releases/download/v1.5.3/runc.amd64",
		"https://elsewhere/x": "https://elsewhere/x",
	} {
		if got := ReleasePath(s, url); got != want {
			t.Errorf("ReleasePath(%s) = %s, want %s", url, got, want)
		}
	}
}

// TestUnverifiable lists every download of a spec that has no trusted checksum, per architecture,
// before any host is touched; a bundle and package installs download nothing of the mirrors.
func TestUnverifiable(t *testing.T) {
	s := pinSpec("http://10.0.0.1:5000")
	v, err := NewVerifier(s, pins.Table{"opencontainers/runc/releases/download/v1.5.3/runc.amd64": strings.Repeat("c", 64)})
	if err != nil {
		t.Fatal(err)
	}
	paths, err := v.Unverifiable([]string{"amd64", "arm64", "amd64"})
	if err != nil {
		t.Fatal(err)
	}
	// kubeadm, kubelet, kubectl, crictl, CNI plugins, runc, containerd per architecture, less the pinned runc.
	if len(paths) != 13 {
		t.Fatalf("%d unverifiable: %v", len(paths), paths)
	}
	all := strings.Join(paths, " ")
	for _, want := range []string{"release/v1.37.2/bin/linux/arm64/kubelet", "cni-plugins-linux-amd64", "containerd-2.3.7-linux-arm64.tar.gz", "runc.arm64"} {
		if !strings.Contains(all, want) {
			t.Errorf("missing %s in %s", want, all)
		}
	}
	s.Install.Source = v1alpha1.InstallPackage
	if paths, _ := v.Unverifiable([]string{"amd64"}); len(paths) != 1 || paths[0] != "containerd/containerd/releases/download/v2.3.7/containerd-2.3.7-linux-amd64.tar.gz" {
		t.Errorf("package install: %v", paths)
	}
	s.ContainerRuntime.Containerd.Source = v1alpha1.InstallPackage
	if paths, _ := v.Unverifiable([]string{"amd64"}); len(paths) != 0 {
		t.Errorf("everything from packages: %v", paths)
	}
	s.Install.Source = v1alpha1.InstallBundle
	s.ContainerRuntime.Containerd.Source = v1alpha1.InstallBinary
	if paths, _ := v.Unverifiable([]string{"amd64"}); len(paths) != 0 {
		t.Errorf("bundle: %v", paths)
	}
}

// TestPinnedDownloadRefusesAMatchingPair is finding M3: a mirror that serves a substitute file with
// its own matching checksum file. Checked against what the mirror publishes (the old way), the
// substitute installs; checked against the pin, the real download.sh refuses it and leaves the
// installed file alone.
func TestPinnedDownloadRefusesAMatchingPair(t *testing.T) {
	real, evil := []byte("#!/bin/sh\necho kubeadm\n"), []byte("#!/bin/sh\necho owned\n")
	p := "/release/v1.37.2/bin/linux/amd64/kubeadm"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case p:
			w.Write(evil)
		case p + ".sha256":
			w.Write([]byte(sha(evil) + "\n"))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	s := pinSpec(srv.URL)
	dir := t.TempDir()
	dest := filepath.Join(dir, "kubeadm")
	if err := os.WriteFile(dest, real, 0o755); err != nil {
		t.Fatal(err)
	}

	v, err := NewVerifier(s, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.For(srv.URL + p); err == nil {
		t.Fatal("a mirror's own checksum was trusted")
	}
	v, err = NewVerifier(s, pins.Table{strings.TrimPrefix(p, "/"): sha(real)})
	if err != nil {
		t.Fatal(err)
	}
	sum, err := v.For(srv.URL + p)
	if err != nil || sum.Digest != sha(real) {
		t.Fatalf("pinned: %+v %v", sum, err)
	}
	argv := DownloadBinary(srv.URL+p, sum, dest, "")
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "checksum mismatch for "+srv.URL+p+": got "+sha(evil)+", pinned "+sha(real)) {
		t.Fatalf("the substitute was not refused: %v\n%s", err, out)
	}
	if got, _ := os.ReadFile(dest); !bytes.Equal(got, real) {
		t.Error("the refused download replaced the installed file")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("leftovers: %v", entries)
	}
	// The same command checked against what the mirror publishes installs the substitute: the hole.
	argv = DownloadBinary(srv.URL+p, published(srv.URL+p), dest, "")
	if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("published-checksum download: %v\n%s", err, out)
	}
	if got, _ := os.ReadFile(dest); !bytes.Equal(got, evil) {
		t.Error("the mirror's matching pair did not install: this test no longer shows the attack")
	}
}

// TestBundleFileHonoursPins: a bundle file that differs from its pin is refused before anything is
// sent, whatever the bundle's own checksum file says.
func TestBundleFileHonoursPins(t *testing.T) {
	bundle := t.TempDir()
	s := pinSpec("https://dl.k8s.io")
	s.Install.Source, s.Install.BundleDir = v1alpha1.InstallBundle, bundle
	rel := "release/v1.37.2/bin/linux/amd64/kubeadm"
	local := filepath.Join(bundle, filepath.FromSlash(rel))
	data := []byte("kubeadm from the bundle")
	if err := os.MkdirAll(filepath.Dir(local), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(local, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(local+".sha256", []byte(sha(data)), 0o644); err != nil {
		t.Fatal(err)
	}
	pinned := strings.Repeat("d", 64)
	v, err := NewVerifier(s, pins.Table{rel: pinned})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := v.BundleFile("https://dl.k8s.io/" + rel); err == nil || !strings.Contains(err.Error(), "is pinned to "+pinned) {
		t.Errorf("a bundle file that differs from its pin: %v", err)
	}
	v, _ = NewVerifier(s, pins.Table{rel: sha(data)})
	if got, digest, err := v.BundleFile("https://dl.k8s.io/" + rel); err != nil || digest != sha(data) || !bytes.Equal(got, data) {
		t.Errorf("pinned bundle file: %v %s", err, digest)
	}
}

// TestBuiltinPinsParse: the checked-in table is readable and lists only supported releases' files.
func TestBuiltinPinsParse(t *testing.T) {
	table, err := BuiltinPins()
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, r := range versions.Releases() {
		s := pinSpec("https://m")
		s.KubernetesVersion = r.Kubernetes
		for _, arch := range []string{"amd64", "arm64"} {
			urls, err := Downloads(s, arch)
			if err != nil {
				t.Fatal(err)
			}
			for _, u := range urls {
				known[ReleasePath(s, u)] = true
			}
		}
	}
	for p := range table {
		if !known[p] {
			t.Errorf("checksums.txt pins %s, which no supported release downloads", p)
		}
	}
}
