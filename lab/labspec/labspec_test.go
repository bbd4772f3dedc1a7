package labspec

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"installer.dev/installer/lab/debrepo"
	"installer.dev/installer/pkg/apis/installer/v1alpha1"
)

func labInput(t *testing.T) (Input, string) {
	dir := t.TempDir()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "id_ed25519"), pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "known_hosts"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	key, err := debrepo.LoadOrCreateKey(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	pub, err := os.ReadFile(key.PublicFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "apt-key.asc"), pub, 0o644); err != nil {
		t.Fatal(err)
	}
	return Input{
		Name: "lab",
		Hosts: []Host{
			{Name: "cp1", Address: "172.30.0.11", PrivateAddress: "172.31.0.11", Role: "control-plane"},
			{Name: "w1", Address: "172.30.0.12", PrivateAddress: "172.31.0.12", Role: "worker"},
		},
		User: "lab", KeyFile: "id_ed25519", KnownHostsFile: "known_hosts",
		PackageProxy: "http://172.30.0.1:3142",
	}, dir
}

// The lab's spec must load strictly, default and validate exactly like a user's spec.
func TestSpecValidates(t *testing.T) {
	in, dir := labInput(t)
	cases := map[string]func(*Input){
		"plain": func(*Input) {},
		"keepalived": func(in *Input) {
			in.Hosts[1].Role = "control-plane"
			in.Hosts = append(in.Hosts, Host{Name: "cp3", Address: "172.30.0.13", PrivateAddress: "172.31.0.13",
				Role: "control-plane"})
			in.LoadBalancer, in.VIP, in.VIPInterface = "keepalived-haproxy", "172.31.0.100", "eth1"
		},
		"mirror": func(in *Input) {
			in.Mirror = labMirror(dir)
		},
		"package": func(in *Input) {
			in.Mirror = labMirror(dir)
			in.Install = "package"
		},
	}
	// What only the package variant carries (the repository and its key), and what every variant has.
	packageLines := []string{"source: package", "packageRepository: 'http://172.30.0.1:5000/core:/stable:'",
		"packageRepositoryKeyFile: apt-key.asc"}
	for name, mod := range cases {
		t.Run(name, func(t *testing.T) {
			in := in
			in.Hosts = append([]Host(nil), in.Hosts...)
			mod(&in)
			data, err := Marshal(in)
			if err != nil {
				t.Fatal(err)
			}
			c, err := v1alpha1.Load(data)
			if err != nil {
				t.Fatalf("Load:\n%s\n%v", data, err)
			}
			c.ResolvePaths(dir, "/nonexistent-home")
			c.Default()
			if errs, _ := v1alpha1.Validate(c); len(errs) > 0 {
				t.Fatalf("Validate:\n%s\n%v", data, errs.ToAggregate())
			}
			if errs := v1alpha1.CheckLocalInputs(c); len(errs) > 0 {
				t.Fatalf("CheckLocalInputs: %v", errs.ToAggregate())
			}
			for _, want := range []string{"failCgroupV1: false", "maxPerCore: 0", "restrictOOMScoreAdj: true",
				"SystemVerification", "hostKeyPolicy: strict", "packageProxy: http://172.30.0.1:3142",
				"privateAddress: 172.31.0.12"} {
				if !strings.Contains(string(data), want) {
					t.Errorf("spec lacks %q:\n%s", want, data)
				}
			}
			for _, l := range packageLines {
				if got := strings.Contains(string(data), l); got != (name == "package") {
					t.Errorf("spec has %q: %v, want %v:\n%s", l, got, name == "package", data)
				}
			}
			if strings.Contains(string(data), "{}") {
				t.Errorf("spec has empty sections:\n%s", data)
			}
		})
	}
}

// labMirror is the mirror part of a lab spec, with a real signing key (CheckLocalInputs reads it).
func labMirror(dir string) *Mirror {
	return &Mirror{BinaryMirror: "http://172.30.0.1:5000", ArtifactMirror: "http://172.30.0.1:5000",
		Registries: map[string][]string{"registry.k8s.io": {"http://172.30.0.1:5000"}},
		CCMImage:   "registry.k8s.io/lab/ccm:v1", CCMArgs: []string{"--cloud-provider=lab"},
		PackageRepository: "http://172.30.0.1:5000/core:/stable:", PackageRepositoryKeyFile: "apt-key.asc"}
}

func TestNoHosts(t *testing.T) {
	in, _ := labInput(t)
	in.Hosts = nil
	if _, err := Marshal(in); err == nil || !strings.Contains(err.Error(), "no hosts") {
		t.Fatalf("Marshal without hosts: %v", err)
	}
}
