// Package facts describes what is true of a host: the types every renderer and phase reads, the
// command that gathers them over SSH (pkg/scripts' facts.sh) and its parser. Facts are gathered once
// per run and host; `render` works offline from facts assumed from the spec (Assumed).
package facts

import (
	"fmt"
	"strings"
	"time"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/constants"
)

// Host is everything the installer knows about one machine.
type Host struct {
	// Name is the spec's host name (the node name).
	Name     string
	Hostname string
	OS       OS
	// Arch is the Go/Kubernetes architecture name: amd64, arm64.
	Arch string
	// CgroupVersion is 1 or 2 (0 when unknown).
	CgroupVersion int
	// InitSystem is "systemd" on every supported host.
	InitSystem string
	Interfaces []Interface
	// DefaultRouteInterface is the interface of the IPv4 default route ("" when there is none).
	DefaultRouteInterface string
	ProductUUID           string
	SwapEnabled           bool
	// KubeadmRunning: a kubeadm process was running when the facts were read (one an earlier,
	// stopped run left is still changing the host; GatherFacts waits for it and reads again).
	KubeadmRunning bool
	// Installed versions ("" when absent), without a leading "v" for containerd ("1.6.20").
	ContainerdVersion string
	// RuncVersion is what `runc --version` reports ("1.5.3"; "" when absent).
	RuncVersion    string
	KubeletVersion string
	KubeadmVersion string
	KubectlVersion string
	// Packages are the installed Kubernetes packages (kubeadm, kubelet, kubectl, cri-tools,
	// kubernetes-cni) and their versions as the package manager reports them ("1.34.10-1.1"; nil when
	// none is installed); HeldPackages those of them apt holds, in the order listed.
	Packages     map[string]string
	HeldPackages []string
	// KubeletConfPresent: /etc/kubernetes/kubelet.conf exists (the host is a node already).
	KubeletConfPresent bool
	// AdminConfPresent: /etc/kubernetes/admin.conf exists (a control plane is initialised here).
	AdminConfPresent bool
	// Cluster is what the host holds of a kubeadm cluster: the proof a destructive step needs.
	Cluster ClusterFiles
	// ListeningPorts are the TCP ports something listens on.
	ListeningPorts []int
	// RemoteTime is the host's clock (Unix seconds) when the facts were read; ClockSkew is how far
	// it is ahead of the operator's clock (negative: behind).
	RemoteTime float64
	ClockSkew  time.Duration
	// Assumed marks facts made up from the spec for offline rendering, not read from the host.
	Assumed bool
}

// PKIDir is constants.PKIDir, kept for pkg/phases.
const PKIDir = constants.PKIDir

// InitMarkerPath is constants.InitMarker, kept for pkg/phases.
const InitMarkerPath = constants.InitMarker

// ClusterPaths are the files and directories whose presence says a host holds (part of) a kubeadm
// control plane or node: kubeconfigs, control-plane static pods and etcd's data. facts.sh spells
// them out (a test compares).
var ClusterPaths = []string{
	constants.AdminConf,
	constants.SuperAdminConf,
	constants.KubeletConf,
	constants.ControllerManagerConf,
	constants.SchedulerConf,
	constants.EtcdManifest,
	constants.KubeAPIServerManifest,
	constants.KubeControllerManagerManifest,
	constants.KubeSchedulerManifest,
	constants.EtcdDataDir + "/member",
}

// ClusterFiles is what a host holds of a kubeadm cluster, read before anything is changed.
type ClusterFiles struct {
	// PKISums are the SHA-256 (hex) of the cluster PKI files present in PKIDir, by name relative to
	// it ("ca.crt", "etcd/ca.key", "sa.pub"); nil when there are none.
	PKISums map[string]string
	// CACert is PKIDir/ca.crt (a public certificate; workers have it too), nil when absent.
	CACert []byte
	// Present lists the ClusterPaths that exist.
	Present []string
	// InitMarker is the content of InitMarkerPath, nil when absent.
	InitMarker *Marker
	// JoinMarker is the content of constants.JoinMarker, nil when absent.
	JoinMarker *Marker
}

// Holds reports whether the host has any trace of a kubeadm cluster (PKI or ClusterPaths).
func (c ClusterFiles) Holds() bool {
	return len(c.PKISums) > 0 || len(c.Present) > 0 || c.CACert != nil
}

// Marker records that the installer started a step that must complete before anything else may
// trust the host: which cluster (name and the fingerprint of its CA), on which host, and when.
type Marker struct {
	Cluster       string
	CAFingerprint string
	Host          string
	Started       string
}

// Render is the marker file's content: one key=value per line.
func (m Marker) Render() []byte {
	return []byte("cluster=" + m.Cluster + "\nca=" + m.CAFingerprint + "\nhost=" + m.Host + "\nstarted=" + m.Started + "\n")
}

// ParseMarker reads a marker file; fields it does not know are ignored.
func ParseMarker(lines []string) *Marker {
	m := &Marker{}
	for _, l := range lines {
		k, v, _ := strings.Cut(strings.TrimSpace(l), "=")
		switch k {
		case "cluster":
			m.Cluster = v
		case "ca":
			m.CAFingerprint = v
		case "host":
			m.Host = v
		case "started":
			m.Started = v
		}
	}
	return m
}

// Listening reports whether something listens on TCP port p.
func (h Host) Listening(p int) bool {
	for _, q := range h.ListeningPorts {
		if q == p {
			return true
		}
	}
	return false
}

// OS identifies the distribution from /etc/os-release.
type OS struct {
	ID        string // debian, ubuntu, rhel, rocky, ...
	VersionID string // 12, 22.04, 9.4
	// PackageManager is apt, dnf or yum ("" when the distribution is unknown).
	PackageManager PackageManager
}

// PackageManager is a host's package manager, by the name of its command.
type PackageManager string

// The package managers the installer drives.
const (
	Apt PackageManager = "apt"
	DNF PackageManager = "dnf"
	YUM PackageManager = "yum"
)

// Deb reports whether p installs Debian packages (apt).
func (p PackageManager) Deb() bool { return p == Apt }

// RPM reports whether p installs RPM packages (dnf, yum).
func (p PackageManager) RPM() bool { return p == DNF || p == YUM }

// Check returns nil for a package manager the installer drives and the error to report otherwise.
func (p PackageManager) Check() error {
	if p.Deb() || p.RPM() {
		return nil
	}
	return fmt.Errorf("no supported package manager (found %q)", string(p))
}

// Interface is one network interface and its addresses (CIDR notation).
type Interface struct {
	Name  string
	Addrs []string
}

// InterfaceFor returns the name of the interface holding ip ("" when none does).
func (h Host) InterfaceFor(ip string) string {
	for _, i := range h.Interfaces {
		for _, a := range i.Addrs {
			if addrIP(a) == ip {
				return i.Name
			}
		}
	}
	return ""
}

func addrIP(cidr string) string {
	for i := 0; i < len(cidr); i++ {
		if cidr[i] == '/' {
			return cidr[:i]
		}
	}
	return cidr
}

// AssumedContainerdVersion is what offline rendering assumes a package install brings: Debian 12's
// containerd, the one proven in the lab.
const AssumedContainerdVersion = "1.6.20"

// Assumed returns facts made up from the spec alone, for `render`: a fresh Debian 12 amd64 host on
// cgroup v2 whose private address sits on eth0, with nothing installed.
func Assumed(spec *v1alpha1.ClusterSpec, h v1alpha1.Host) Host {
	ifaces := []Interface{{Name: "eth0", Addrs: []string{h.NodeIP() + "/32"}}}
	if spec.LoadBalancer.Interface != "" {
		ifaces[0].Name = spec.LoadBalancer.Interface
	}
	return Host{
		Name:                  h.Name,
		Hostname:              h.Name,
		OS:                    OS{ID: "debian", VersionID: "12", PackageManager: Apt},
		Arch:                  "amd64",
		CgroupVersion:         2,
		InitSystem:            "systemd",
		Interfaces:            ifaces,
		DefaultRouteInterface: ifaces[0].Name,
		ContainerdVersion:     AssumedContainerdVersion,
		Assumed:               true,
	}
}
