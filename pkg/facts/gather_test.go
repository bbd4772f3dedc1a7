package facts

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"
	"installer.dev/installer/pkg/scripts"
	"installer.dev/installer/pkg/ssh"
	"installer.dev/installer/pkg/ssh/sshtest"
)

// labHostOutput is the script's output on a lab host (Debian 12 in podman, two NICs, kubelet joined).
const labHostOutput = `==os-release
PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
ID=debian
==arch
x86_64
==hostname
w1
==cgroupfs
tmpfs
==init
systemd
==addrs
1: lo    inet 127.0.0.1/8 scope host lo\       valid_lft forever preferred_lft forever
2: eth0@if14    inet 172.30.0.21/24 brd 172.30.0.255 scope global eth0\       valid_lft forever preferred_lft forever
2: eth0@if14    inet6 fe80::ff:fe00:15/64 scope link \       valid_lft forever preferred_lft forever
3: eth1@if15    inet 172.31.0.21/24 brd 172.31.0.255 scope global eth1\       valid_lft forever preferred_lft forever
==default-route
default via 172.30.0.1 dev eth0 onlink
==product-uuid
==swaps
Filename				Type		Size		Used		Priority
==containerd
containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+deb12u3
==kubelet
Kubernetes v1.36.5
==kubeadm
v1.36.5
==kubectl
Client Version: v1.36.5
Kustomize Version: v5.7.1
==packages
hi  cri-tools 1.36.0-1.1
hi  kubeadm 1.36.5-1.1
hi  kubectl 1.36.5-1.1
hi  kubelet 1.36.5-1.1
ii  kubernetes-cni 1.9.1-1.1
==files
/etc/kubernetes/kubelet.conf
==listening
0.0.0.0:22
127.0.0.1:10248
*:10250
[::]:22
==time
1795000000.250000000
==end
`

func TestParse(t *testing.T) {
	h, err := Parse(labHostOutput)
	if err != nil {
		t.Fatal(err)
	}
	want := Host{
		Hostname:      "w1",
		OS:            OS{ID: "debian", VersionID: "12", PackageManager: "apt"},
		Arch:          "amd64",
		CgroupVersion: 1,
		InitSystem:    "systemd",
		Interfaces: []Interface{
			{Name: "lo", Addrs: []string{"127.0.0.1/8"}},
			{Name: "eth0", Addrs: []string{"172.30.0.21/24", "fe80::ff:fe00:15/64"}},
			{Name: "eth1", Addrs: []string{"172.31.0.21/24"}},
		},
		DefaultRouteInterface: "eth0",
		ContainerdVersion:     "1.6.20",
		KubeletVersion:        "v1.36.5",
		KubeadmVersion:        "v1.36.5",
		KubectlVersion:        "v1.36.5",
		Packages: map[string]string{"cri-tools": "1.36.0-1.1", "kubeadm": "1.36.5-1.1", "kubectl": "1.36.5-1.1",
			"kubelet": "1.36.5-1.1", "kubernetes-cni": "1.9.1-1.1"},
		HeldPackages:       []string{"cri-tools", "kubeadm", "kubectl", "kubelet"},
		KubeletConfPresent: true,
		ListeningPorts:     []int{22, 10248, 10250},
		RemoteTime:         1795000000.25,
	}
	if !reflect.DeepEqual(h, want) {
		t.Errorf("Parse =\n%+v\nwant\n%+v", h, want)
	}
	if got := h.InterfaceFor("172.31.0.21"); got != "eth1" {
		t.Errorf("InterfaceFor(private) = %q", got)
	}
	if !h.Listening(10250) || h.Listening(6443) {
		t.Error("Listening is wrong")
	}
	// A kubeadm still running (its PID listed) is a fact: GatherFacts waits and reads again.
	running := strings.Replace(labHostOutput, "==swaps\n", "==kubeadm-running\n4242\n==swaps\n", 1)
	if h, err := Parse(running); err != nil || !h.KubeadmRunning {
		t.Errorf("KubeadmRunning = %v, %v; want true", h.KubeadmRunning, err)
	}
}

func TestParseVariants(t *testing.T) {
	tests := []struct {
		name, section, body string
		check               func(Host) bool
	}{
		{"rocky 9 uses dnf", "os-release", "ID=\"rocky\"\nVERSION_ID=\"9.4\"", func(h Host) bool { return h.OS.PackageManager == "dnf" && h.OS.VersionID == "9.4" }},
		{"centos 7 uses yum", "os-release", "ID=\"centos\"\nVERSION_ID=\"7\"", func(h Host) bool { return h.OS.PackageManager == "yum" }},
		{"cgroup v2", "cgroupfs", "cgroup2fs", func(h Host) bool { return h.CgroupVersion == 2 }},
		{"arm64", "arch", "aarch64", func(h Host) bool { return h.Arch == "arm64" }},
		{"swap on", "swaps", "Filename Type Size Used Priority\n/swapfile file 1048572 0 -2", func(h Host) bool { return h.SwapEnabled }},
		{"containerd.io", "containerd", "containerd containerd.io v1.7.25 bcc810d", func(h Host) bool { return h.ContainerdVersion == "1.7.25" }},
		{"containerd 2 release binary", "containerd", "containerd github.com/containerd/containerd/v2 v2.3.7 3a4de459", func(h Host) bool { return h.ContainerdVersion == "2.3.7" }},
		{"runc release binary", "runc", "runc version 1.5.3", func(h Host) bool { return h.RuncVersion == "1.5.3" }},
		{"Debian's runc", "runc", "runc version 1.1.5+ds1", func(h Host) bool { return h.RuncVersion == "1.1.5" }},
		{"no runc", "runc", "", func(h Host) bool { return h.RuncVersion == "" }},
		{"nothing installed", "kubelet", "", func(h Host) bool { return h.KubeletVersion == "" && !h.KubeletConfPresent }},
		{"no default route", "default-route", "", func(h Host) bool { return h.DefaultRouteInterface == "" }},
		{"no packages", "packages", "", func(h Host) bool { return h.Packages == nil && h.HeldPackages == nil }},
		{"removed package is absent", "packages", "rc  kubelet 1.36.5-1.1\nii  kubeadm 1.36.5-1.1",
			func(h Host) bool {
				return reflect.DeepEqual(h.Packages, map[string]string{"kubeadm": "1.36.5-1.1"}) && h.HeldPackages == nil
			}},
		{"rpm", "packages", "ii kubeadm 1.35.8-150500.1.1", func(h Host) bool { return h.Packages["kubeadm"] == "1.35.8-150500.1.1" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := "==" + tt.section + "\n" + tt.body + "\n==end\n"
			h, err := Parse(out)
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(h) {
				t.Errorf("unexpected facts: %+v", h)
			}
		})
	}
	if _, err := Parse("==os-release\nID=debian\n"); err == nil || !strings.Contains(err.Error(), "incomplete") {
		t.Errorf("truncated output must be an error, got %v", err)
	}
}

// TestGatherOverRealSSH runs the facts script through a real OpenSSH server on this machine (Debian's
// dash as /bin/sh) and checks what it read against what this machine says about itself.
func TestGatherOverRealSSH(t *testing.T) {
	dir := t.TempDir()
	keyFile, pub := sshtest.NewKey(t, dir, "id", "")
	srv := sshtest.StartServer(t, sshtest.ServerOptions{AuthorizedKeys: map[string][]gossh.PublicKey{"root": {pub}}})
	known := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(known, []byte(srv.KnownHostsLine()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := ssh.Dial(ctx, ssh.Config{Name: "local", Address: srv.Host, Port: srv.Port, User: "root", KeyFile: keyFile, KnownHostsFile: known}, ssh.Options{})
	if err != nil {
		t.Fatalf("dial test sshd: %v", err)
	}
	defer c.Close()
	h, err := Gather(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	hostname, _ := os.Hostname()
	if h.Name != "local" || h.Hostname != hostname || h.OS.ID != "debian" || h.OS.PackageManager != "apt" || h.Arch != "amd64" {
		t.Errorf("identity facts wrong: %+v", h)
	}
	if h.CgroupVersion != 1 && h.CgroupVersion != 2 {
		t.Errorf("cgroup version not read: %+v", h)
	}
	if !h.Listening(srv.Port) {
		t.Errorf("the test sshd's port %d is not among the listening ports %v", srv.Port, h.ListeningPorts)
	}
	if h.ClockSkew > 2*time.Second || h.ClockSkew < -2*time.Second {
		t.Errorf("same machine, yet clock skew %v", h.ClockSkew)
	}
	if h.InterfaceFor("127.0.0.1") != "lo" {
		t.Errorf("loopback not found in %+v", h.Interfaces)
	}
}

// TestParseClusterFiles: the cluster sections become the proof a destructive step needs.
func TestParseClusterFiles(t *testing.T) {
	out := "==cluster-paths\n/etc/kubernetes/admin.conf\n/var/lib/etcd/member\n" +
		"==pki-sums\n" + strings.Repeat("a", 64) + "  ca.crt\n" + strings.Repeat("b", 64) + "  etcd/ca.key\n" +
		"==cluster-ca\n-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n" +
		"==init-marker\ncluster=prod\nca=sha256:0011\nhost=cp1\nstarted=2026-12-05T04:00:00Z\n==end\n"
	h, err := Parse(out)
	if err != nil {
		t.Fatal(err)
	}
	c := h.Cluster
	if !slices.Equal(c.Present, []string{"/etc/kubernetes/admin.conf", "/var/lib/etcd/member"}) || len(c.PKISums) != 2 ||
		c.PKISums["etcd/ca.key"] != strings.Repeat("b", 64) || !strings.HasPrefix(string(c.CACert), "-----BEGIN CERTIFICATE-----\n") || !c.Holds() {
		t.Errorf("cluster files: %+v", c)
	}
	want := Marker{Cluster: "prod", CAFingerprint: "sha256:0011", Host: "cp1", Started: "2026-12-05T04:00:00Z"}
	if c.InitMarker == nil || *c.InitMarker != want || string(want.Render()) != "cluster=prod\nca=sha256:0011\nhost=cp1\nstarted=2026-12-05T04:00:00Z\n" {
		t.Errorf("marker: %+v", c.InitMarker)
	}
	empty, _ := Parse("==cluster-paths\n==pki-sums\n==cluster-ca\n==init-marker\n==end\n")
	if empty.Cluster.Holds() || empty.Cluster.InitMarker != nil {
		t.Errorf("a clean host holds %+v", empty.Cluster)
	}
	for _, p := range ClusterPaths {
		if !strings.Contains(scripts.Facts.Body, p) {
			t.Errorf("the facts script does not look for %s", p)
		}
	}
	if !strings.Contains(scripts.Facts.Body, InitMarkerPath) {
		t.Error("the facts script does not read the init marker")
	}
}
