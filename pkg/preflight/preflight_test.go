package preflight

import (
	"strings"
	"testing"
	"time"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/facts"
)

func cluster(version string, mutate func(*v1alpha1.ClusterSpec)) *v1alpha1.Cluster {
	c := &v1alpha1.Cluster{Metadata: v1alpha1.ObjectMeta{Name: "t"}, Spec: v1alpha1.ClusterSpec{
		KubernetesVersion: version,
		Hosts: []v1alpha1.Host{
			{Name: "cp1", Address: "203.0.113.1", PrivateAddress: "10.0.0.1", Role: v1alpha1.RoleControlPlane},
			{Name: "w1", Address: "203.0.113.2", PrivateAddress: "10.0.0.2", Role: v1alpha1.RoleWorker},
		},
	}}
	if mutate != nil {
		mutate(&c.Spec)
	}
	c.Default()
	return c
}

func healthy(name, ip string) facts.Host {
	return facts.Host{Name: name, Hostname: name, OS: facts.OS{ID: "debian", VersionID: "12", PackageManager: "apt"},
		Arch: "amd64", CgroupVersion: 2, InitSystem: "systemd", DefaultRouteInterface: "eth0",
		Interfaces:     []facts.Interface{{Name: "eth0", Addrs: []string{"203.0.113.9/24"}}, {Name: "eth1", Addrs: []string{ip + "/24"}}},
		ListeningPorts: []int{22}, ProductUUID: "uuid-" + name}
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name    string
		version string
		spec    func(*v1alpha1.ClusterSpec)
		facts   func(cp, w *facts.Host)
		want    []string // Finding.String() of every finding
	}{
		{"healthy", "v1.36.5", nil, nil, nil},
		{"everything wrong on one host", "v1.36.5", nil, func(cp, w *facts.Host) {
			w.OS = facts.OS{ID: "ubuntu", VersionID: "18.04"}
			w.Arch = "s390x"
			w.InitSystem = "init"
			w.SwapEnabled = true
			w.DefaultRouteInterface = ""
			w.Interfaces = nil
			w.ListeningPorts = []int{22, 10250}
			w.ClockSkew = -90 * time.Second
		}, []string{
			`[error] w1 Arch: architecture "s390x" is not supported (amd64, arm64)`,
			`[error] w1 ClockSkew: the host's clock is -1m30s off the installer's; certificates and etcd need agreeing clocks; fix: synchronise the clock (chrony or systemd-timesyncd)`,
			`[error] w1 DefaultRoute: the host has no IPv4 default route; fix: add a default route (kubeadm and kube-proxy need one)`,
			`[error] w1 InitSystem: PID 1 is "init", not systemd; fix: use a systemd-based distribution`,
			`[error] w1 OS: ubuntu 18.04 is too old (need 20.04 or newer); fix: upgrade the distribution`,
			`[error] w1 Port-10250: port 10250 (kubelet) is already in use on a host that is not a node yet; fix: stop what listens there, or reset the host if it ran Kubernetes before`,
			`[error] w1 PrivateAddress: no interface holds 10.0.0.2 (addresses: none); fix: set spec.hosts[].privateAddress to an address the host has, or add the address to the host`,
			`[warning] w1 Swap: swap is on; the prepare phase turns it off and comments it out of /etc/fstab`,
		}},
		{"ports of a node that already runs are fine; haproxy port checked on fresh control planes", "v1.36.5",
			func(s *v1alpha1.ClusterSpec) {
				s.LoadBalancer = v1alpha1.LoadBalancer{Type: v1alpha1.LoadBalancerKeepalivedHAProxy, VIP: "10.0.0.100"}
			}, func(cp, w *facts.Host) {
				cp.ListeningPorts = []int{8443, 6443}
				w.ListeningPorts = []int{10250}
				w.KubeletConfPresent = true
			}, []string{
				`[error] cp1 Port-6443: port 6443 (kube-apiserver) is already in use on a host that is not a node yet; fix: stop what listens there, or reset the host if it ran Kubernetes before`,
				`[error] cp1 Port-8443: port 8443 (haproxy) is already in use on a host that is not a node yet; fix: stop what listens there, or reset the host if it ran Kubernetes before`,
			}},
		{"small skew warns", "v1.36.5", nil, func(cp, w *facts.Host) { cp.ClockSkew = 7 * time.Second }, []string{
			`[warning] cp1 ClockSkew: the host's clock is 7s off the installer's; fix: synchronise the clock (chrony or systemd-timesyncd)`,
		}},
		{"duplicates", "v1.36.5", nil, func(cp, w *facts.Host) { w.Hostname = "cp1"; w.ProductUUID = cp.ProductUUID }, []string{
			`[error] cluster UniqueHostname: hosts cp1, w1 share hostname cp1; fix: give every host its own hostname`,
			`[error] cluster UniqueProductUUID: hosts cp1, w1 share product_uuid uuid-cp1; fix: clone VMs with new identities (product_uuid must be unique for kubeadm)`,
		}},
		{"containerd 1.6 on a fresh host: the binary install replaces it", "v1.37.2", nil, func(cp, w *facts.Host) { cp.ContainerdVersion = "1.6.20" }, nil},
		{"containerd 1.6 on a node: only the upgrade replaces it", "v1.37.2", nil, func(cp, w *facts.Host) { cp.ContainerdVersion, cp.KubeletConfPresent = "1.6.20", true }, []string{
			`[error] cp1 Containerd: this node runs containerd 1.6.20, too old for Kubernetes v1.37.2 (needs v2.0.0 or newer); fix: run installer upgrade: it replaces containerd node by node, drained`,
		}},
		{"containerd 1.6 on a 1.35 node is enough", "v1.35.8", nil, func(cp, w *facts.Host) { cp.ContainerdVersion, cp.KubeletConfPresent = "1.6.20", true }, nil},
		{"distribution containerd too old", "v1.36.5", func(s *v1alpha1.ClusterSpec) {
			s.ContainerRuntime.Containerd = v1alpha1.Containerd{Source: v1alpha1.InstallPackage}
		}, func(cp, w *facts.Host) { w.ContainerdVersion = "1.7.25" }, []string{
			`[error] w1 Containerd: containerd 1.7.25 is too old for Kubernetes v1.36.5 (needs v2.0.0 or newer); fix: set spec.containerRuntime.containerd.source: binary (containerd v2.3.7), or upgrade the host's containerd package`,
		}},
		{"cgroup v1 on 1.35 blocks without both allowances", "v1.37.2", func(s *v1alpha1.ClusterSpec) {
			s.Kubelet.Config = map[string]any{"failCgroupV1": false}
		}, func(cp, w *facts.Host) { w.CgroupVersion = 1 }, []string{
			`[error] w1 CgroupV1: Kubernetes v1.37.2 refuses cgroup v1 hosts; fix: move the host to cgroup v2, or set spec.kubelet.config.failCgroupV1: false and add SystemVerification to spec.kubeadm.ignorePreflightErrors`,
		}},
		{"cgroup v1 on 1.35 with both allowances warns", "v1.37.2", func(s *v1alpha1.ClusterSpec) {
			s.Kubelet.Config = map[string]any{"failCgroupV1": false}
			s.Kubeadm.IgnorePreflightErrors = []string{"SystemVerification"}
		}, func(cp, w *facts.Host) { w.CgroupVersion = 1 }, []string{
			`[warning] w1 CgroupV1: the host uses cgroup v1; allowed by spec.kubelet.config.failCgroupV1: false and SystemVerification in spec.kubeadm.ignorePreflightErrors`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := cluster(tt.version, tt.spec)
			cp, w := healthy("cp1", "10.0.0.1"), healthy("w1", "10.0.0.2")
			if tt.facts != nil {
				tt.facts(&cp, &w)
			}
			got := Check(c, map[string]facts.Host{"cp1": cp, "w1": w}, nil)
			var lines []string
			for _, f := range got {
				lines = append(lines, f.String())
			}
			if strings.Join(lines, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("findings:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(tt.want, "\n"))
			}
			wantBlocking := false
			for _, w := range tt.want {
				if strings.HasPrefix(w, "[error]") {
					wantBlocking = true
				}
			}
			if Blocking(got) != wantBlocking {
				t.Errorf("Blocking = %v, want %v", Blocking(got), wantBlocking)
			}
		})
	}
}

func TestCheckOnlySelectedHosts(t *testing.T) {
	c := cluster("v1.36.5", nil)
	bad := healthy("w1", "10.0.0.2")
	bad.Arch = "mips"
	got := Check(c, map[string]facts.Host{"cp1": healthy("cp1", "10.0.0.1"), "w1": bad}, []string{"cp1"})
	if len(got) != 0 {
		t.Errorf("join of cp1 only must not report w1: %v", got)
	}
	got = Check(c, map[string]facts.Host{"cp1": healthy("cp1", "10.0.0.1")}, nil)
	if len(got) != 1 || got[0].String() != "[error] w1 Facts: no facts were gathered" {
		t.Errorf("missing facts: %v", got)
	}
}
