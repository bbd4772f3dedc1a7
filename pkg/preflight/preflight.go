// Package preflight decides, from the spec and every host's facts, whether the installer may start
// changing hosts. It is pure: the facts were gathered before. All findings are reported together,
// each with its fix; blocking ones stop the run (exit code 5). kubeadm's own preflight runs later.
package preflight

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/constants"
	"installer.dev/installer/pkg/facts"
	"installer.dev/installer/pkg/versions"
)

// Finding is one problem on one host (Host is empty for cluster-wide findings).
type Finding struct {
	Host     string
	Check    string
	Message  string
	Fix      string
	Blocking bool
}

func (f Finding) String() string {
	kind := "warning"
	if f.Blocking {
		kind = "error"
	}
	where := f.Host
	if where == "" {
		where = "cluster"
	}
	s := fmt.Sprintf("[%s] %s %s: %s", kind, where, f.Check, f.Message)
	if f.Fix != "" {
		s += "; fix: " + f.Fix
	}
	return s
}

// Blocking reports whether any finding stops the run.
func Blocking(findings []Finding) bool {
	for _, f := range findings {
		if f.Blocking {
			return true
		}
	}
	return false
}

// Limits on clock skew between the operator's machine (which signs the CAs) and a host.
const (
	SkewWarning  = 5 * time.Second
	SkewBlocking = 60 * time.Second
)

// Check runs every check for the named hosts (all hosts of the spec when names is empty) and returns
// the findings sorted by host and check.
func Check(c *v1alpha1.Cluster, hostFacts map[string]facts.Host, names []string) []Finding {
	s := &c.Spec
	selected := map[string]bool{}
	for _, n := range names {
		selected[n] = true
	}
	var out []Finding
	add := func(host, check string, blocking bool, fix, format string, args ...any) {
		out = append(out, Finding{Host: host, Check: check, Blocking: blocking, Fix: fix, Message: fmt.Sprintf(format, args...)})
	}
	byHostname := map[string][]string{}
	byUUID := map[string][]string{}
	for _, h := range s.Hosts {
		if len(selected) > 0 && !selected[h.Name] {
			continue
		}
		f, ok := hostFacts[h.Name]
		if !ok {
			add(h.Name, "Facts", true, "", "no facts were gathered")
			continue
		}
		checkOS(f, func(check string, blocking bool, fix, format string, args ...any) {
			add(h.Name, check, blocking, fix, format, args...)
		})
		if f.SwapEnabled {
			add(h.Name, "Swap", false, "", "swap is on; the prepare phase turns it off and comments it out of /etc/fstab")
		}
		if f.InterfaceFor(h.NodeIP()) == "" {
			add(h.Name, "PrivateAddress", true, "set spec.hosts[].privateAddress to an address the host has, or add the address to the host",
				"no interface holds %s (addresses: %s)", h.NodeIP(), listAddrs(f))
		}
		if f.DefaultRouteInterface == "" {
			add(h.Name, "DefaultRoute", true, "add a default route (kubeadm and kube-proxy need one)", "the host has no IPv4 default route")
		}
		if !f.KubeletConfPresent {
			for _, p := range requiredPorts(s, h) {
				if f.Listening(p.port) {
					add(h.Name, "Port-"+strconv.Itoa(p.port), true, "stop what listens there, or reset the host if it ran Kubernetes before",
						"port %d (%s) is already in use on a host that is not a node yet", p.port, p.what)
				}
			}
		}
		switch skew := f.ClockSkew; {
		case skew > SkewBlocking || skew < -SkewBlocking:
			add(h.Name, "ClockSkew", true, "synchronise the clock (chrony or systemd-timesyncd)", "the host's clock is %s off the installer's; certificates and etcd need agreeing clocks", skew.Round(time.Second))
		case skew > SkewWarning || skew < -SkewWarning:
			add(h.Name, "ClockSkew", false, "synchronise the clock (chrony or systemd-timesyncd)", "the host's clock is %s off the installer's", skew.Round(time.Second))
		}
		checkContainerd(s, f, func(blocking bool, fix, format string, args ...any) {
			add(h.Name, "Containerd", blocking, fix, format, args...)
		})
		if f.CgroupVersion == 1 {
			checkCgroupV1(s, func(blocking bool, fix, format string, args ...any) {
				add(h.Name, "CgroupV1", blocking, fix, format, args...)
			})
		}
		if f.Hostname != "" {
			byHostname[f.Hostname] = append(byHostname[f.Hostname], h.Name)
		}
		if f.ProductUUID != "" {
			byUUID[f.ProductUUID] = append(byUUID[f.ProductUUID], h.Name)
		}
	}
	for _, dup := range duplicates(byHostname) {
		add("", "UniqueHostname", true, "give every host its own hostname", "hosts %s share hostname %s", strings.Join(dup.hosts, ", "), dup.key)
	}
	for _, dup := range duplicates(byUUID) {
		add("", "UniqueProductUUID", true, "clone VMs with new identities (product_uuid must be unique for kubeadm)", "hosts %s share product_uuid %s", strings.Join(dup.hosts, ", "), dup.key)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Host != out[j].Host {
			return out[i].Host < out[j].Host
		}
		return out[i].Check < out[j].Check
	})
	return out
}

type reportFunc func(check string, blocking bool, fix, format string, args ...any)

// Supported distributions: Debian ≥ 11, Ubuntu ≥ 20.04 (apt); RHEL-compatible ≥ 8 (dnf).
func checkOS(f facts.Host, add reportFunc) {
	if f.InitSystem != "systemd" {
		add("InitSystem", true, "use a systemd-based distribution", "PID 1 is %q, not systemd", f.InitSystem)
	}
	if f.Arch != "amd64" && f.Arch != "arm64" {
		add("Arch", true, "", "architecture %q is not supported (amd64, arm64)", f.Arch)
	}
	min := map[string]string{"debian": "11", "ubuntu": "20.04", "rhel": "8", "rocky": "8", "almalinux": "8", "centos": "9", "ol": "8", "fedora": "39"}
	want, known := min[f.OS.ID]
	if !known {
		add("OS", true, "", "distribution %q is not supported (Debian, Ubuntu, RHEL, Rocky, AlmaLinux, CentOS Stream, Oracle Linux, Fedora)", f.OS.ID)
		return
	}
	older, err := versionLess(f.OS.VersionID, want)
	if err != nil {
		add("OS", true, "", "cannot read the version of %s from %q", f.OS.ID, f.OS.VersionID)
		return
	}
	if older {
		add("OS", true, "upgrade the distribution", "%s %s is too old (need %s or newer)", f.OS.ID, f.OS.VersionID, want)
	}
}

// checkContainerd refuses a containerd the installer would keep but the release cannot run on: a
// distribution package (source package), or a node's runtime that only an upgrade replaces. A host
// that is not a node yet gets the release binaries (source binary) whatever it has.
func checkContainerd(s *v1alpha1.ClusterSpec, f facts.Host, add func(bool, string, string, ...any)) {
	rel, ok := versions.Lookup(s.KubernetesVersion)
	if !ok || f.ContainerdVersion == "" || versions.ContainerdAtLeast(f.ContainerdVersion, rel.MinContainerd) {
		return
	}
	c := s.ContainerRuntime.Containerd
	switch {
	case c.Source == v1alpha1.InstallPackage:
		add(true, "set spec.containerRuntime.containerd.source: binary (containerd "+versions.Containerd().Containerd+"), or upgrade the host's containerd package",
			"containerd %s is too old for Kubernetes %s (needs %s or newer)", f.ContainerdVersion, rel.Kubernetes, rel.MinContainerd)
	case f.KubeletConfPresent:
		add(true, "run installer upgrade: it replaces containerd node by node, drained",
			"this node runs containerd %s, too old for Kubernetes %s (needs %s or newer)", f.ContainerdVersion, rel.Kubernetes, rel.MinContainerd)
	}
}

// checkCgroupV1: every supported kubelet (1.35 and later) refuses cgroup v1 unless told otherwise,
// and kubeadm makes its check fatal (DESIGN.md §4). The installer never sets the allowances by itself.
func checkCgroupV1(s *v1alpha1.ClusterSpec, add func(bool, string, string, ...any)) {
	allowed := false
	if f, ok := s.Kubelet.Config["failCgroupV1"]; ok && f == false {
		allowed = true
	}
	ignored := false
	for _, e := range s.Kubeadm.IgnorePreflightErrors {
		if strings.EqualFold(e, "SystemVerification") || strings.EqualFold(e, "all") {
			ignored = true
		}
	}
	if allowed && ignored {
		add(false, "", "the host uses cgroup v1; allowed by spec.kubelet.config.failCgroupV1: false and SystemVerification in spec.kubeadm.ignorePreflightErrors")
		return
	}
	add(true, "move the host to cgroup v2, or set spec.kubelet.config.failCgroupV1: false and add SystemVerification to spec.kubeadm.ignorePreflightErrors",
		"Kubernetes %s refuses cgroup v1 hosts", s.KubernetesVersion)
}

// versionLess compares dotted numeric versions such as os-release's "12", "22.04" or "9.4".
func versionLess(a, b string) (bool, error) {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(pa) || i < len(pb); i++ {
		x, y := 0, 0
		var err error
		if i < len(pa) {
			if x, err = strconv.Atoi(pa[i]); err != nil {
				return false, fmt.Errorf("version %q: %w", a, err)
			}
		}
		if i < len(pb) {
			if y, err = strconv.Atoi(pb[i]); err != nil {
				return false, fmt.Errorf("version %q: %w", b, err)
			}
		}
		if x != y {
			return x < y, nil
		}
	}
	return false, nil
}

type port struct {
	port int
	what string
}

func requiredPorts(s *v1alpha1.ClusterSpec, h v1alpha1.Host) []port {
	ports := []port{{10250, "kubelet"}}
	if h.Role == v1alpha1.RoleControlPlane {
		ports = append(ports, port{constants.APIServerPort, "kube-apiserver"}, port{2379, "etcd client"}, port{2380, "etcd peer"},
			port{10257, "kube-controller-manager"}, port{10259, "kube-scheduler"})
		if s.LoadBalancer.Type == v1alpha1.LoadBalancerKeepalivedHAProxy {
			ports = append(ports, port{int(s.ControlPlaneEndpoint.Port), "haproxy"})
		}
	}
	sort.Slice(ports, func(i, j int) bool { return ports[i].port < ports[j].port })
	return ports
}

func listAddrs(f facts.Host) string {
	var all []string
	for _, i := range f.Interfaces {
		all = append(all, i.Addrs...)
	}
	if len(all) == 0 {
		return "none"
	}
	return strings.Join(all, ", ")
}

type dup struct {
	key   string
	hosts []string
}

func duplicates(m map[string][]string) []dup {
	var out []dup
	for k, hosts := range m {
		if len(hosts) > 1 {
			out = append(out, dup{k, hosts})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key < out[j].key })
	return out
}
