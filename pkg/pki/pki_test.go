package pki

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/kubernetes/cmd/kubeadm/app/util/pubkeypin"

	"installer.dev/installer/lab/build"
	"installer.dev/installer/pkg/ssh"
	"installer.dev/installer/pkg/ssh/sshtest"
	"installer.dev/installer/pkg/versions"
)

var allFiles = []string{"ca.crt", "ca.key", "etcd/ca.crt", "etcd/ca.key", "front-proxy-ca.crt", "front-proxy-ca.key", "sa.key", "sa.pub"}

func readAll(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	m := map[string][]byte{}
	for _, f := range allFiles {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		m[f] = b
	}
	return m
}

func TestLoadOrGenerateIsIdempotent(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	b1, err := LoadOrGenerate(dir, Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	written := slices.Clone(b1.Written)
	slices.Sort(written)
	if !slices.Equal(written, allFiles) {
		t.Errorf("written %v", written)
	}
	first := readAll(t, dir)
	b2, err := LoadOrGenerate(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(b2.Written) != 0 {
		t.Errorf("second run wrote %v", b2.Written)
	}
	for name, data := range readAll(t, dir) {
		if !bytes.Equal(data, first[name]) {
			t.Errorf("%s changed", name)
		}
	}
	if b1.DiscoveryHash() != b2.DiscoveryHash() {
		t.Error("discovery hash changed")
	}

	// Modes: directories 0700, keys 0600 — also when someone loosened them in between.
	must(t, os.Chmod(dir, 0o755))
	must(t, os.Chmod(filepath.Join(dir, "ca.key"), 0o644))
	if _, err := LoadOrGenerate(dir, Options{}); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{dir, filepath.Join(dir, "etcd")} {
		if fi, _ := os.Stat(d); fi.Mode().Perm() != 0o700 {
			t.Errorf("%s mode %v", d, fi.Mode().Perm())
		}
	}
	for _, f := range allFiles {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		want := fs.FileMode(0o644)
		if strings.HasSuffix(f, ".key") {
			want = 0o600
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s mode %v, want %v", f, fi.Mode().Perm(), want)
		}
	}
	// No temporary files left behind.
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".tmp") {
			t.Errorf("leftover %s", e.Name())
		}
	}

	// kubeadm's defaults: RSA 2048, ten years from five minutes ago, CA key usage, its names.
	for _, kp := range b1.Pairs() {
		c := kp.Cert
		if c.Subject.CommonName != kp.CA.CommonName || !c.IsCA || !c.BasicConstraintsValid {
			t.Errorf("%s: subject %s IsCA %v", kp.CA.BaseName, c.Subject, c.IsCA)
		}
		if k, ok := c.PublicKey.(*rsa.PublicKey); !ok || k.N.BitLen() != 2048 {
			t.Errorf("%s: key %T", kp.CA.BaseName, c.PublicKey)
		}
		if !c.NotBefore.Equal(now.Add(-5*time.Minute)) || !c.NotAfter.Equal(now.Add(10*365*24*time.Hour)) {
			t.Errorf("%s: validity %v - %v", kp.CA.BaseName, c.NotBefore, c.NotAfter)
		}
		if c.KeyUsage&x509.KeyUsageCertSign == 0 {
			t.Errorf("%s: cannot sign certificates", kp.CA.BaseName)
		}
		if !bytes.HasPrefix(kp.KeyPEM, []byte("-----BEGIN RSA PRIVATE KEY-----")) {
			t.Errorf("%s: key is not PKCS #1 PEM", kp.CA.BaseName)
		}
	}
	if b1.SAKey.N.BitLen() != 2048 || !bytes.HasPrefix(b1.SAPubPEM, []byte("-----BEGIN PUBLIC KEY-----")) {
		t.Error("service-account key pair")
	}
}

func TestLoadOrGenerateRefusesHalfPairs(t *testing.T) {
	for _, tc := range []struct {
		remove string
		want   string
	}{
		{"ca.key", "ca.crt exists but"},
		{"etcd/ca.crt", "etcd/ca.key exists but"},
		{"sa.pub", "only one of"},
	} {
		t.Run(tc.remove, func(t *testing.T) {
			dir := t.TempDir()
			if _, err := LoadOrGenerate(dir, Options{}); err != nil {
				t.Fatal(err)
			}
			before := readAll(t, dir)
			must(t, os.Remove(filepath.Join(dir, tc.remove)))
			_, err := LoadOrGenerate(dir, Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
			for name, data := range before {
				if name == tc.remove {
					if _, err := os.Stat(filepath.Join(dir, name)); !errors.Is(err, fs.ErrNotExist) {
						t.Errorf("%s was regenerated", name)
					}
					continue
				}
				if got, _ := os.ReadFile(filepath.Join(dir, name)); !bytes.Equal(got, data) {
					t.Errorf("%s changed", name)
				}
			}
		})
	}
}

func TestLoadRejectsMismatchedPair(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadOrGenerate(dir, Options{}); err != nil {
		t.Fatal(err)
	}
	other, err := NewCA(ClusterCA, Options{})
	if err != nil {
		t.Fatal(err)
	}
	must(t, os.WriteFile(filepath.Join(dir, "ca.key"), other.KeyPEM, 0o600))
	if _, err := LoadOrGenerate(dir, Options{}); err == nil || !strings.Contains(err.Error(), "does not belong") {
		t.Errorf("got %v", err)
	}
}

// TestDiscoveryHashMatchesKubeadm: our hash equals kubeadm's own computation (its pubkeypin package)
// and the openssl pipeline kubeadm's documentation gives, for a CA we generated and for one the real
// kubeadm generated (which LoadOrGenerate adopts without touching).
func TestDiscoveryHashMatchesKubeadm(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 35*time.Minute)
	defer cancel()
	ours := filepath.Join(t.TempDir(), "pki")
	if _, err := LoadOrGenerate(ours, Options{}); err != nil {
		t.Fatal(err)
	}
	bin, err := build.New(build.Options{}).Binary(ctx, "kubeadm", versions.Oldest().Kubernetes)
	if err != nil {
		t.Fatalf("build kubeadm: %v", err)
	}
	theirs := filepath.Join(t.TempDir(), "pki")
	out, err := exec.CommandContext(ctx, bin, "init", "phase", "certs", "ca", "--cert-dir", theirs, "--kubernetes-version", versions.Oldest().Kubernetes).CombinedOutput()
	if err != nil {
		t.Fatalf("kubeadm init phase certs ca: %v\n%s", err, out)
	}
	kubeadmCA, err := os.ReadFile(filepath.Join(theirs, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	for name, dir := range map[string]string{"ours": ours, "kubeadm's": theirs} {
		b, err := LoadOrGenerate(dir, Options{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if name == "kubeadm's" {
			if !bytes.Equal(b.Cluster.CertPEM, kubeadmCA) || slices.Contains(b.Written, "ca.crt") {
				t.Fatal("kubeadm's CA was not adopted as it is")
			}
		}
		got := b.DiscoveryHash()
		if want := pubkeypin.Hash(b.Cluster.Cert); got != want {
			t.Errorf("%s CA: %s, kubeadm's pubkeypin says %s", name, got, want)
		}
		if want := "sha256:" + opensslHash(t, filepath.Join(dir, "ca.crt")); got != want {
			t.Errorf("%s CA: %s, openssl says %s", name, got, want)
		}
		// kubeadm's own pin set accepts the CA under our hash.
		pins := pubkeypin.NewSet()
		if err := pins.Allow(got); err != nil {
			t.Fatal(err)
		}
		if err := pins.CheckAny([]*x509.Certificate{b.Cluster.Cert}); err != nil {
			t.Errorf("%s CA: %v", name, err)
		}
	}
}

// opensslHash is kubeadm's documented recipe: openssl x509 -pubkey | openssl rsa -pubin -outform der
// | sha256sum.
func opensslHash(t *testing.T, certPath string) string {
	t.Helper()
	cmd := exec.Command("sh", "-c", `openssl x509 -pubkey -in "$1" | openssl rsa -pubin -outform der 2>/dev/null | sha256sum`, "sh", certPath)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("openssl: %v", err)
	}
	return strings.Fields(string(out))[0]
}

func TestControlPlaneFiles(t *testing.T) {
	b, err := LoadOrGenerate(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	files := b.ControlPlaneFiles()
	var paths []string
	for _, f := range files {
		paths = append(paths, f.Path)
		key := strings.HasSuffix(f.Path, ".key")
		if f.Sensitive != key || (key && f.Mode != 0o600) || (!key && f.Mode != 0o644) {
			t.Errorf("%s: sensitive %v mode %v", f.Path, f.Sensitive, f.Mode)
		}
		if key && bytes.Contains(f.Display(), []byte("PRIVATE KEY")) {
			t.Errorf("%s: key shown", f.Path)
		}
	}
	var want []string
	for _, f := range allFiles {
		want = append(want, "/etc/kubernetes/pki/"+f)
	}
	if !slices.Equal(paths, want) {
		t.Errorf("paths %v", paths)
	}
}

func TestFetch(t *testing.T) {
	src := t.TempDir()
	orig, err := LoadOrGenerate(src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	host := sshtest.NewFake("cp1")
	for _, f := range orig.ControlPlaneFiles() {
		host.SetFile(f.Path, f.Content, f.Mode, "root")
	}
	r := ReaderFunc(func(ctx context.Context, p string) ([]byte, error) {
		return host.ReadFile(ctx, p, ssh.ReadOptions{Sudo: true})
	})

	b, err := Fetch(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	if b.DiscoveryHash() != orig.DiscoveryHash() {
		t.Errorf("fetched CA %s, want %s", b.DiscoveryHash(), orig.DiscoveryHash())
	}
	if !bytes.Equal(b.DeriveKey("x"), orig.DeriveKey("x")) || bytes.Equal(b.DeriveKey("x"), b.DeriveKey("y")) {
		t.Error("a derived key differs after the fetch, or does not depend on its purpose")
	}
	// Saved, the fetched files are the control plane's byte for byte and load as they are.
	dst := filepath.Join(t.TempDir(), "pki")
	if err := b.Save(dst); err != nil {
		t.Fatal(err)
	}
	for name, data := range readAll(t, src) {
		if got, _ := os.ReadFile(filepath.Join(dst, name)); !bytes.Equal(got, data) {
			t.Errorf("%s differs", name)
		}
	}
	if lb, err := LoadOrGenerate(dst, Options{}); err != nil || len(lb.Written) != 0 {
		t.Errorf("load after fetch: %v %v", lb, err)
	}
	// A PKI already in place is never replaced.
	if err := b.Save(src); err == nil {
		t.Error("Save replaced a PKI")
	}
	// A missing file on the host is an error naming it.
	host2 := sshtest.NewFake("cp2")
	r2 := ReaderFunc(func(ctx context.Context, p string) ([]byte, error) { return host2.ReadFile(ctx, p, ssh.ReadOptions{}) })
	if _, err := Fetch(context.Background(), r2); err == nil || !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "/etc/kubernetes/pki/ca.crt") {
		t.Errorf("got %v", err)
	}
	// A host whose key does not match its certificate is refused.
	host.SetFile("/etc/kubernetes/pki/front-proxy-ca.key", orig.Cluster.KeyPEM, 0o600, "root")
	if _, err := Fetch(context.Background(), r); err == nil || !strings.Contains(err.Error(), "front-proxy-ca") {
		t.Errorf("got %v", err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestLoadGenerateSave: Load never generates (an empty directory is ErrNoPKI, a partial one an
// error naming what is missing), Generate writes nothing, Save writes the whole PKI once.
func TestLoadGenerateSave(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	if _, err := Load(dir); !errors.Is(err, ErrNoPKI) {
		t.Fatalf("empty: %v, want ErrNoPKI", err)
	}
	b, err := Generate(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("Generate wrote %s", dir)
	}
	must(t, b.Save(dir))
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
		t.Errorf("%s mode %v", dir, fi.Mode().Perm())
	}
	loaded, err := Load(dir)
	if err != nil || loaded.DiscoveryHash() != b.DiscoveryHash() || len(loaded.Written) != 0 {
		t.Fatalf("load after save: %v", err)
	}
	for name, sum := range loaded.FileSums() {
		if b.FileSums()[name] != sum {
			t.Errorf("%s differs after a round trip", name)
		}
	}
	other, err := Generate(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Save(dir); err == nil {
		t.Fatal("Save replaced an existing PKI")
	}
	must(t, os.Remove(filepath.Join(dir, "front-proxy-ca.key")))
	must(t, os.Remove(filepath.Join(dir, "front-proxy-ca.crt")))
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "front-proxy-ca.crt and") || errors.Is(err, ErrNoPKI) {
		t.Errorf("partial PKI: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "front-proxy-ca.crt")); !os.IsNotExist(err) {
		t.Error("Load generated a missing CA")
	}
}

func TestFingerprint(t *testing.T) {
	b, err := Generate(Options{})
	if err != nil {
		t.Fatal(err)
	}
	fp, err := CertFingerprint(b.Cluster.CertPEM)
	if err != nil || fp != Fingerprint(b.Cluster.Cert) || len(fp) != len("sha256:")+64 {
		t.Fatalf("%q %v", fp, err)
	}
	cmd := exec.Command("openssl", "x509", "-noout", "-fingerprint", "-sha256")
	cmd.Stdin = bytes.NewReader(b.Cluster.CertPEM)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("openssl: %v", err)
	}
	want := "sha256:" + strings.ToLower(strings.ReplaceAll(strings.TrimSpace(strings.SplitN(string(out), "=", 2)[1]), ":", ""))
	if fp != want {
		t.Errorf("fingerprint %s, openssl says %s", fp, want)
	}
}
