package debrepo

import (
	"fmt"
	"strings"

	"installer.dev/installer/pkg/versions"
)

// Package is one Debian package: its control fields, the files it installs and its maintainer
// scripts. Sources are paths on this machine; Embedded names a file of this package's files/.
type Package struct {
	Name        string
	Version     string // upstream version, "1.34.10"
	Revision    string // Debian revision, "1.1"
	Section     string
	Description string
	Depends     []string
	Recommends  []string
	Files       []File
	// Dirs are created (and owned) by the package, like upstream's /etc/kubernetes/manifests.
	Dirs []string
	// PostInst, PreRm and PostRm name embedded maintainer scripts ("" for none).
	PostInst, PreRm, PostRm string
}

// File is one file of a package: from Source (a built binary) or Embedded (files/<name>).
type File struct {
	Dest     string
	Source   string
	Embedded string
	Mode     uint32
	// Conffile marks an operator-editable file dpkg keeps on upgrade (/etc/default/kubelet).
	Conffile bool
}

// FullVersion is the Debian version, "1.34.10-1.1".
func (p Package) FullVersion() string { return p.Version + "-" + p.Revision }

// FileName is the conventional .deb name, "kubeadm_1.34.10-1.1_amd64.deb".
func (p Package) FileName() string { return p.Name + "_" + p.FullVersion() + "_" + Arch + ".deb" }

// Arch is the only architecture the lab builds.
const Arch = "amd64"

// Binaries finds a built binary by name (build.Set satisfies it).
type Binaries interface {
	Path(name string) string
}

// Relationships as pkgs.k8s.io publishes them for Kubernetes >= 1.32 (its kubeadm 1.36.0-1.1 still
// depends on cri-tools; the kubelet package's spec requires mount and util-linux on Debian and only
// recommends iptables). Upstream no longer lists conntrack, ethtool or socat: the installer checks
// those itself.
var (
	kubeadmDepends    = []string{"cri-tools (>= 1.30.0)"}
	kubeletDepends    = []string{"kubernetes-cni (>= 1.2.0)", "mount", "util-linux"}
	kubeletRecommends = []string{"iptables (>= 1.8.4)"}
)

// CNIPlugins are the plugins of the kubernetes-cni package (what the lab builds of
// containernetworking/plugins; flannel's own plugin comes from its DaemonSet).
var CNIPlugins = []string{"bridge", "host-local", "loopback", "portmap"}

// ReleasePackages describes the five packages of one release, their files taken from bins.
func ReleasePackages(r versions.Release, bins Binaries) ([]Package, error) {
	kube := strings.TrimPrefix(r.Kubernetes, "v")
	criVersion, criRevision, err := splitVersion(r.CRIToolsPackage)
	if err != nil {
		return nil, fmt.Errorf("cri-tools: %w", err)
	}
	cniVersion, cniRevision, err := splitVersion(r.CNIPackage)
	if err != nil {
		return nil, fmt.Errorf("kubernetes-cni: %w", err)
	}
	bin := func(name, dest string) File { return File{Dest: dest, Source: bins.Path(name), Mode: 0o755} }
	cni := Package{Name: "kubernetes-cni", Version: cniVersion, Revision: cniRevision, Section: "net",
		Description: "Binaries required to provision kubernetes container networking",
		Dirs:        []string{"/etc/cni/net.d"}}
	for _, p := range CNIPlugins {
		cni.Files = append(cni.Files, bin(p, "/opt/cni/bin/"+p))
	}
	pkgs := []Package{
		{Name: "kubeadm", Version: kube, Revision: r.PackageRevision, Section: "admin",
			Description: "Command-line utility for administering a Kubernetes cluster",
			Depends:     kubeadmDepends,
			Files: []File{bin("kubeadm", "/usr/bin/kubeadm"),
				{Dest: "/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf", Embedded: "10-kubeadm.conf", Mode: 0o644}},
			PostInst: "reload.postinst", PostRm: "reload.postrm"},
		{Name: "kubelet", Version: kube, Revision: r.PackageRevision, Section: "net",
			Description: "Node agent for Kubernetes clusters",
			Depends:     kubeletDepends, Recommends: kubeletRecommends,
			Files: []File{bin("kubelet", "/usr/bin/kubelet"),
				{Dest: "/usr/lib/systemd/system/kubelet.service", Embedded: "kubelet.service", Mode: 0o644},
				{Dest: "/etc/default/kubelet", Embedded: "kubelet.default", Mode: 0o644, Conffile: true}},
			Dirs:     []string{"/etc/kubernetes", "/etc/kubernetes/manifests", "/var/lib/kubelet"},
			PostInst: "kubelet.postinst", PreRm: "kubelet.prerm", PostRm: "reload.postrm"},
		{Name: "kubectl", Version: kube, Revision: r.PackageRevision, Section: "admin",
			Description: "Command-line utility for interacting with a Kubernetes cluster",
			Files:       []File{bin("kubectl", "/usr/bin/kubectl")}},
		{Name: "cri-tools", Version: criVersion, Revision: criRevision, Section: "admin",
			Description: "Command-line utility for interacting with a container runtime",
			Files:       []File{bin("crictl", "/usr/bin/crictl")}},
		cni,
	}
	for _, p := range pkgs {
		for _, f := range p.Files {
			if f.Source == "" && f.Embedded == "" {
				return nil, fmt.Errorf("package %s: no binary for %s", p.Name, f.Dest)
			}
		}
	}
	return pkgs, nil
}

// splitVersion splits "1.36.0-1.1" into the upstream version and the Debian revision.
func splitVersion(v string) (string, string, error) {
	i := strings.LastIndexByte(v, '-')
	if i <= 0 || i == len(v)-1 {
		return "", "", fmt.Errorf("version %q is not <upstream>-<revision>", v)
	}
	return v[:i], v[i+1:], nil
}

// RepositoryPath is the URL path of one minor's repository in pkgs.k8s.io's layout:
// /core:/stable:/v1.34/deb/.
func RepositoryPath(minor string) string { return BasePath + "/" + minor + "/deb/" }

// BasePath is what a spec's install.packageRepository ends with: the installer appends /<minor>/deb/.
const BasePath = "/core:/stable:"
