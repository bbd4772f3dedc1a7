package render

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/facts"
	"installer.dev/installer/pkg/manifests"
)

func TestWriteLayoutModesAndMasking(t *testing.T) {
	dir := t.TempDir()
	out := &Output{
		Kubeadm: map[string]manifests.File{"cp1": {Path: "/etc/kubernetes/installer/kubeadm.yaml", Mode: 0o600, Content: []byte("token: real\n"), Sensitive: true, Masked: []byte("token: shown\n")}},
		Hosts: map[string][]manifests.File{"cp1": {
			{Path: "/etc/containerd/config.toml", Mode: 0o644, Content: []byte("version = 2\n")},
			{Path: "/etc/keepalived/keepalived.conf", Mode: 0o644, Content: []byte("auth_pass s3cret\n"), Sensitive: true},
		}},
		Cluster: []manifests.File{{Path: "cni.yaml", Mode: 0o644, Content: []byte("kind: List\n")}},
	}
	if err := Write(dir, out); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		rel     string
		mode    os.FileMode
		content string
	}{
		{"hosts/cp1/kubeadm.yaml", 0o600, "token: shown\n"},
		{"hosts/cp1/rootfs/etc/containerd/config.toml", 0o644, "version = 2\n"},
		// Sensitive files are never wider than 0600, and without Masked they are fully hidden.
		{"hosts/cp1/rootfs/etc/keepalived/keepalived.conf", 0o600, manifests.Redacted + "\n"},
		{"cluster/cni.yaml", 0o644, "kind: List\n"},
	} {
		p := filepath.Join(dir, tc.rel)
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := os.ReadFile(p)
		if fi.Mode().Perm() != tc.mode || string(data) != tc.content {
			t.Errorf("%s: mode %v content %q, want %v %q", tc.rel, fi.Mode().Perm(), data, tc.mode, tc.content)
		}
	}
	// Rewriting narrows a file that was wider.
	p := filepath.Join(dir, "hosts/cp1/kubeadm.yaml")
	if err := os.Chmod(p, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := Write(dir, out); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v after rewrite", fi.Mode().Perm())
	}
}

func TestWriteRefusesEscapes(t *testing.T) {
	for _, out := range []*Output{
		{Cluster: []manifests.File{{Path: "../escape.yaml"}}},
		{Hosts: map[string][]manifests.File{"cp1": {{Path: "relative/path"}}}},
		{Kubeadm: map[string]manifests.File{"../../x": {}}},
	} {
		dir := t.TempDir()
		if err := Write(filepath.Join(dir, "out"), out); err == nil {
			t.Errorf("%+v written", out)
		}
		if _, err := os.Stat(filepath.Join(dir, "escape.yaml")); err == nil {
			t.Error("a file escaped the output directory")
		}
	}
}

func TestWriteRootfsStaysInside(t *testing.T) {
	dir := t.TempDir()
	out := &Output{Hosts: map[string][]manifests.File{"cp1": {{Path: "/../../../x", Mode: 0o644, Content: []byte("x")}}}}
	if err := Write(dir, out); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "hosts", "cp1", "rootfs", "x")); err != nil {
		t.Error(err)
	}
}

func TestRenderKubeadmPerHost(t *testing.T) {
	c, err := v1alpha1.LoadFile("../../configs/ha-keepalived-haproxy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c.Default()
	in := Input{Cluster: c, Facts: map[string]facts.Host{}, Token: "abcdef.0123456789abcdef", CACertHashes: []string{"sha256:" + strings.Repeat("0", 64)},
		Inputs: manifests.Inputs{VRRPPassword: "vrrppass"}}
	for _, h := range c.Spec.Hosts {
		in.Facts[h.Name] = facts.Assumed(&c.Spec, h)
	}
	out, err := Render(in)
	if err != nil {
		t.Fatal(err)
	}
	// Every host also gets its manifests, control planes the HA endpoint's static pods, and with
	// install.source package (the default) every host the package repository create writes.
	for _, tc := range []struct{ host, path string }{
		{"cp1", "/etc/kubernetes/manifests/haproxy.yaml"}, {"w1", "/etc/containerd/config.toml"},
		{"cp1", manifests.AptSourcesPath}, {"w1", manifests.AptSourcesPath},
	} {
		found := false
		for _, f := range out.Hosts[tc.host] {
			found = found || f.Path == tc.path
		}
		if !found {
			t.Errorf("host %s lacks %s", tc.host, tc.path)
		}
	}
	if len(out.Cluster) == 0 || out.Cluster[0].Path != "cni.yaml" {
		t.Errorf("cluster files = %v", out.Cluster)
	}
	if len(out.Kubeadm) != len(c.Spec.Hosts) {
		t.Fatalf("%d kubeadm files for %d hosts", len(out.Kubeadm), len(c.Spec.Hosts))
	}
	if f := out.Kubeadm["cp1"]; !strings.Contains(string(f.Content), "kind: InitConfiguration") || !f.Sensitive {
		t.Errorf("cp1: %+v", f)
	}
	if f := out.Kubeadm["w2"]; !strings.Contains(string(f.Content), "kind: JoinConfiguration") {
		t.Errorf("w2: %s", f.Content)
	}
	if _, err := Render(Input{}); err == nil {
		t.Error("no error without a spec")
	}
}
