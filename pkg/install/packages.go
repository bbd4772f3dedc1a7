package install

import (
	"fmt"
	"strings"
	"time"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/facts"
	"installer.dev/installer/pkg/scripts"
)

// AptLockTimeout is how long apt commands wait for apt's and dpkg's locks held by another process
// (unattended-upgrades, an operator's apt) before giving up. The holder is never killed.
const AptLockTimeout = 5 * time.Minute

// AptLockHeldExit is the exit status of an apt command that gave up waiting for a lock; its stderr
// names the holder ("apt lock held by unattended-upgr (pid 812)").
const AptLockHeldExit = 75

// AptGet returns an apt-get command through the spec's package proxy: apt.sh, which runs it
// non-interactively, without HTTP pipelining and under deadlines (apt-get update is retried when it
// hangs), and first waits up to AptLockTimeout for another process's apt or dpkg lock.
func AptGet(s *v1alpha1.ClusterSpec, args ...string) []string {
	return scripts.Apt.Args(append([]string{s.Install.PackageProxy}, args...)...)
}

// DNF returns a dnf/yum command through the spec's package proxy (dnf.sh: non-interactive).
func DNF(s *v1alpha1.ClusterSpec, pm facts.PackageManager, args ...string) []string {
	return scripts.DNF.Args(append([]string{string(pm), s.Install.PackageProxy}, args...)...)
}

// PackageInstall returns the command installing pkgs with the host's package manager (apt, dnf, yum).
func PackageInstall(s *v1alpha1.ClusterSpec, pm facts.PackageManager, pkgs ...string) ([]string, error) {
	if err := pm.Check(); err != nil {
		return nil, err
	}
	if pm.Deb() {
		return AptGet(s, append([]string{"install", "--no-install-recommends"}, pkgs...)...), nil
	}
	return DNF(s, pm, append([]string{"install"}, pkgs...)...), nil
}

// PackageRefresh returns the command refreshing the package index (apt-get update; dnf makecache).
func PackageRefresh(s *v1alpha1.ClusterSpec, pm facts.PackageManager) ([]string, error) {
	if err := pm.Check(); err != nil {
		return nil, err
	}
	if pm.Deb() {
		return AptGet(s, "update"), nil
	}
	return DNF(s, pm, "makecache"), nil
}

// ContainerdPackages names the runtime packages: Debian and Ubuntu ship containerd and runc;
// RHEL-family hosts need Docker's containerd.io from a repository the host already has.
func ContainerdPackages(s *v1alpha1.ClusterSpec, pm facts.PackageManager) []string {
	v := s.ContainerRuntime.Containerd.Version
	if pm.Deb() {
		if v != "" {
			return []string{"containerd=" + v, "runc"}
		}
		return []string{"containerd", "runc"}
	}
	if v != "" {
		return []string{"containerd.io-" + v}
	}
	return []string{"containerd.io"}
}

// KubePackages are the packages of the Kubernetes repository the installer pins, in install order
// (KubePackageVersions has their versions; the RPM repository file excludes them from routine
// upgrades).
var KubePackages = []string{"kubeadm", "kubelet", "kubectl", "cri-tools", "kubernetes-cni"}

// KubePackageVersions are the exact package versions of a release in the Kubernetes package
// repository ("1.34.10-1.1").
func KubePackageVersions(s *v1alpha1.ClusterSpec) (map[string]string, error) {
	r, err := Release(s)
	if err != nil {
		return nil, err
	}
	k := strings.TrimPrefix(r.Kubernetes, "v") + "-" + r.PackageRevision
	return map[string]string{
		"kubeadm": k, "kubelet": k, "kubectl": k,
		"cri-tools": r.CRIToolsPackage, "kubernetes-cni": r.CNIPackage,
	}, nil
}

// RepositoryURL is the package repository of the spec's minor: <base>/v1.34/deb/ for apt, else
// /rpm/.
func RepositoryURL(s *v1alpha1.ClusterSpec, pm facts.PackageManager) (string, error) {
	r, err := Release(s)
	if err != nil {
		return "", err
	}
	kind := "rpm"
	if pm.Deb() {
		kind = "deb"
	}
	return fmt.Sprintf("%s/%s/%s/", strings.TrimRight(s.Install.PackageRepository, "/"), r.Minor(), kind), nil
}
