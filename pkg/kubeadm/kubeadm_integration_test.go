package kubeadm

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"installer.dev/installer/lab/build"
	"installer.dev/installer/pkg/versions"
)

// TestRealKubeadmValidatesGoldens runs `kubeadm config validate --config` of every supported release
// (built by the lab builder; the first build takes many minutes) on every golden file. A kubeadm that
// cannot be built fails the test: it is never skipped.
func TestRealKubeadmValidatesGoldens(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 35*time.Minute)
	defer cancel()
	goldens, err := filepath.Glob(filepath.Join("testdata", "golden", "*", "*.yaml"))
	if err != nil || len(goldens) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	b := build.New(build.Options{})
	for _, r := range versions.Releases() {
		t.Run(r.Kubernetes, func(t *testing.T) {
			bin, err := b.Binary(ctx, "kubeadm", r.Kubernetes)
			if err != nil {
				t.Fatalf("build kubeadm %s: %v", r.Kubernetes, err)
			}
			out, err := exec.CommandContext(ctx, bin, "version", "-o", "short").CombinedOutput()
			if err != nil || strings.TrimSpace(string(out)) != r.Kubernetes {
				t.Fatalf("kubeadm version: %q %v", out, err)
			}
			for _, g := range goldens {
				// `kubeadm config validate` ignores UpgradeConfiguration documents; those are checked
				// in-process (TestKubeadmValidatesEveryRendering).
				if filepath.Base(g) == "upgrade.yaml" {
					continue
				}
				out, err := exec.CommandContext(ctx, bin, "config", "validate", "--config", g).CombinedOutput()
				if err != nil || strings.TrimSpace(string(out)) != "ok" {
					t.Errorf("kubeadm %s config validate %s: %v\n%s", r.Kubernetes, g, err, out)
				}
			}
		})
	}
}

// TestRealKubeadmRejectsBrokenConfig: the check above is not vacuous.
func TestRealKubeadmRejectsBrokenConfig(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 35*time.Minute)
	defer cancel()
	bin, err := build.New(build.Options{}).Binary(ctx, "kubeadm", versions.Oldest().Kubernetes)
	if err != nil {
		t.Fatalf("build kubeadm: %v", err)
	}
	data, err := os.ReadFile(filepath.Join("testdata", "golden", "ha-keepalived-haproxy", "w1.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(string(data), "caCertHashes:", "caCertHash:", 1)
	path := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(ctx, bin, "config", "validate", "--config", path).CombinedOutput()
	if err == nil || !strings.Contains(string(out), `unknown field "discovery.bootstrapToken.caCertHash"`) {
		t.Errorf("kubeadm accepted a broken file: %v\n%s", err, out)
	}
}
