package main

import (
	"bytes"
	"installer.dev/installer/pkg/pki"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRender: render writes each host's kubeadm.yaml (0600, token masked), creates the PKI in the
// state directory once and keeps it on the next run, and never dials.
func TestRender(t *testing.T) {
	dir := t.TempDir()
	spec := validSpec(t, dir)
	state := filepath.Join(dir, "state")
	out := filepath.Join(dir, "out")
	r := runCLI(t, nil, dir, "render", "-f", spec, "-o", out, "--state-dir", state)
	if r.code != 0 {
		t.Fatalf("render: %+v", r)
	}
	for _, h := range []string{"cp1", "w1"} {
		p := filepath.Join(out, "hosts", h, "kubeadm.yaml")
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v", p, fi.Mode().Perm())
		}
		data, _ := os.ReadFile(p)
		if !bytes.Contains(data, []byte("token: abcdef.0123456789abcdef")) {
			t.Errorf("%s lacks the placeholder token:\n%s", p, data)
		}
	}
	// Without a PKI in the state directory render uses a throw-away one and writes nothing there.
	if !strings.Contains(r.stderr, "rendered with a throw-away PKI") {
		t.Errorf("stderr: %s", r.stderr)
	}
	for _, f := range []string{"pki", "secrets"} {
		if _, err := os.Stat(filepath.Join(state, f)); !os.IsNotExist(err) {
			t.Errorf("render wrote state/%s (%v)", f, err)
		}
	}
	// With the cluster's PKI there, render shows it.
	b, err := pki.Generate(pki.Options{})
	if err != nil {
		t.Fatal(err)
	}
	must(t, b.Save(filepath.Join(state, "pki")))
	r = runCLI(t, nil, dir, "render", "-f", spec, "-o", out, "--state-dir", state)
	if r.code != 0 || strings.Contains(r.stderr, "throw-away") {
		t.Fatalf("render with a PKI: %+v", r)
	}
	if got, _ := os.ReadFile(filepath.Join(out, "hosts", "cp1", "rootfs", "etc", "kubernetes", "pki", "ca.crt")); !bytes.Equal(got, b.Cluster.CertPEM) {
		t.Errorf("rendered ca.crt is not the state directory's:\n%s", got)
	}
}

// TestRenderRejectsWhatKubeadmWould: unknown kubelet config keys are invalid input, with their path,
// before anything is written.
func TestRenderRejectsWhatKubeadmWould(t *testing.T) {
	dir := t.TempDir()
	spec := validSpec(t, dir)
	data, _ := os.ReadFile(spec)
	must(t, os.WriteFile(spec, append(data, []byte("  kubelet: {config: {maxPodz: 3}}\n")...), 0o644))
	state := filepath.Join(dir, "state")
	r := runCLI(t, nil, dir, "render", "-f", spec, "-o", filepath.Join(dir, "out"), "--state-dir", state)
	if r.code != 2 || !strings.Contains(r.stderr, "spec.kubelet.config.maxPodz: Unsupported value: unknown field of KubeletConfiguration") {
		t.Fatalf("%+v", r)
	}
	if _, err := os.Stat(state); !os.IsNotExist(err) {
		t.Error("state directory created for invalid input")
	}
}
