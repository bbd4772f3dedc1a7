// Package install builds the commands that put software on a host: distribution packages (apt,
// dnf/yum) and binaries downloaded from mirrors with their published SHA-256 checked. The commands
// are argv lists for pkg/ssh (values are positional parameters of pkg/scripts' scripts, never pasted
// into shell text); the phases decide when to run them from facts.
package install

import (
	"fmt"
	"strings"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/scripts"
	"installer.dev/installer/pkg/versions"
)

// Paths where binaries land in every install mode (as the upstream packages put them, so switching
// modes never leaves two copies).
const (
	BinDir       = "/usr/bin"
	CrictlPath   = "/usr/local/bin/crictl"
	CNIBinDir    = "/opt/cni/bin"
	CNIVersionAt = "/opt/cni/bin/.installer-cni-plugins-version"
	// ContainerdPrefix is where containerd's release archive unpacks (its bin/ holds containerd,
	// the runc shim and ctr), as containerd's getting-started guide does; RuncPath is where runc's
	// release binary goes. Both come before the distribution's /usr/bin and /usr/sbin on PATH.
	ContainerdPrefix = "/usr/local"
	RuncPath         = "/usr/local/sbin/runc"
)

// KubeBinaryURL is dl.k8s.io's layout: <mirror>/release/v1.34.10/bin/linux/amd64/kubeadm.
func KubeBinaryURL(mirror, version, arch, name string) string {
	return fmt.Sprintf("%s/release/%s/bin/linux/%s/%s", strings.TrimRight(mirror, "/"), version, arch, name)
}

// CNIPluginsURL is the containernetworking/plugins release archive in GitHub's layout.
func CNIPluginsURL(mirror, version, arch string) string {
	return fmt.Sprintf("%s/containernetworking/plugins/releases/download/%s/cni-plugins-linux-%s-%s.tgz",
		strings.TrimRight(mirror, "/"), version, arch, version)
}

// CrictlURL is the cri-tools release archive in GitHub's layout.
func CrictlURL(mirror, version, arch string) string {
	return fmt.Sprintf("%s/kubernetes-sigs/cri-tools/releases/download/%s/crictl-%s-linux-%s.tar.gz",
		strings.TrimRight(mirror, "/"), version, version, arch)
}

// ContainerdURL is containerd's release archive in GitHub's layout
// (<mirror>/containerd/containerd/releases/download/v2.3.7/containerd-2.3.7-linux-amd64.tar.gz).
func ContainerdURL(mirror, version, arch string) string {
	return fmt.Sprintf("%s/containerd/containerd/releases/download/%s/containerd-%s-linux-%s.tar.gz",
		strings.TrimRight(mirror, "/"), version, strings.TrimPrefix(version, "v"), arch)
}

// RuncURL is runc's release binary in GitHub's layout (<mirror>/opencontainers/runc/releases/download/v1.5.3/runc.amd64).
func RuncURL(mirror, version, arch string) string {
	return fmt.Sprintf("%s/opencontainers/runc/releases/download/%s/runc.%s", strings.TrimRight(mirror, "/"), version, arch)
}

// DownloadBinary returns the command that installs one verified binary at dest (download.sh: the
// file through proxy, checked against sum, moved into place atomically, mode 0755).
func DownloadBinary(url string, sum Checksum, dest, proxy string) []string {
	return scripts.Download.Args("binary", url, sum.arg(), dest, "0755", proxy)
}

// DownloadArchive returns the command that installs a verified .tar.gz into dir and, when marker is
// set, writes version into the file marker (so the next run can tell the version without executing
// anything).
func DownloadArchive(url string, sum Checksum, dir, version, marker, proxy string) []string {
	return scripts.Download.Args("archive", url, sum.arg(), dir, version, marker, proxy)
}

// BundleBinary returns the command that installs one binary of the local bundle at dest: the file
// goes to its stdin, sha256 is its verified digest (bundle-install.sh checks it again on the host).
func BundleBinary(sha256, dest string) []string {
	return scripts.BundleInstall.Args("binary", sha256, dest, "0755")
}

// BundleArchive returns the command that unpacks a .tar.gz of the local bundle into dir (its
// stdin, checked against sha256) and, when marker is set, writes version into it.
func BundleArchive(sha256, dir, version, marker string) []string {
	return scripts.BundleInstall.Args("archive", sha256, dir, version, marker)
}

// Proxy returns the proxy downloads on the host go through ("" for none).
func Proxy(s *v1alpha1.ClusterSpec) string {
	if s.Proxy.HTTPS != "" {
		return s.Proxy.HTTPS
	}
	return s.Proxy.HTTP
}

// Tool is one downloadable binary with the version it must report.
type Tool struct {
	Name    string // kubeadm, kubelet, kubectl
	Path    string
	Version string
	URL     string
}

// KubeTools lists kubeadm, kubelet and kubectl for a release from the binary mirror.
func KubeTools(s *v1alpha1.ClusterSpec, arch string) []Tool {
	var out []Tool
	for _, n := range []string{"kubeadm", "kubelet", "kubectl"} {
		out = append(out, Tool{Name: n, Path: BinDir + "/" + n, Version: s.KubernetesVersion,
			URL: KubeBinaryURL(s.Install.BinaryMirror, s.KubernetesVersion, arch, n)})
	}
	return out
}

// Release returns the pinned release of the spec. Validation admits only supported versions, but a
// spec changed after it (upgrade --to) or never validated gets an error here, not a zero release
// whose Minor panics.
func Release(s *v1alpha1.ClusterSpec) (versions.Release, error) {
	r, ok := versions.Lookup(s.KubernetesVersion)
	if !ok {
		return versions.Release{}, fmt.Errorf("kubernetes %q is not supported (supported: %s)", s.KubernetesVersion, versions.SupportedList())
	}
	return r, nil
}

// Prerequisite is a package a node needs and how to tell it is installed: a command on PATH, or an
// absolute path for packages that install no command.
type Prerequisite struct {
	Package string
	Check   string
}

// NodePrerequisites are what kubeadm's preflight and kube-proxy need on every node besides the
// runtime (the upstream kubelet/kubeadm packages depend on them; binary installs add them), plus
// curl and the CA bundle the downloads use.
var NodePrerequisites = []Prerequisite{
	{"conntrack", "conntrack"}, {"socat", "socat"}, {"ethtool", "ethtool"}, {"iptables", "iptables"},
	{"curl", "curl"}, {"ca-certificates", "/etc/ssl/certs/ca-certificates.crt"},
}

// PrerequisiteArgs renders the prerequisites as "package:check" arguments for installed.sh.
func PrerequisiteArgs() []string {
	out := make([]string, 0, len(NodePrerequisites))
	for _, p := range NodePrerequisites {
		out = append(out, p.Package+":"+p.Check)
	}
	return out
}
