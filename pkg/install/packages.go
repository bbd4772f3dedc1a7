package install

import (
	"fmt"
	"strings"
	"time"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
)

// AptLockTimeout is how long apt commands wait for apt's and dpkg's locks held by another process
// (unattended-upgrades, an operator's apt) before giving up. The holder is never killed.
const AptLockTimeout = 5 * time.Minute

// AptLockHeldExit is the exit status of an apt command that gave up waiting for a lock; its stderr
// names the holder ("apt lock held by unattended-upgr (pid 812)").
const AptLockHeldExit = 75

// aptScript runs apt-get non-interactively, without HTTP pipelining (measured in the lab: with
// apt-cacher-ng as the proxy, a pipelined request was never answered and apt-get update waited
// forever on a half-closed connection, and it happened again, less often, without pipelining) and
// under deadlines: `apt-get update` (seconds normally, ~20 s from a cold cache) is killed after 60 s
// and tried again (up to 4 times; the hang hit about a third of lab runs), anything
// else after 30 minutes, so a hung apt fails the run (which a re-run resumes) instead of hanging it: $1 is the apt cache proxy ("" for none), the rest are
// apt-get's arguments. It first waits (up to 300 s, AptLockTimeout) while another process holds
// dpkg's or apt's lists lock, then exits 75 naming the holder; apt's own DPkg::Lock::Timeout covers
// a lock taken in between. lslocks is util-linux's (essential on Debian and Ubuntu).
const aptScript = `set -eu
proxy=$1; shift
export DEBIAN_FRONTEND=noninteractive
deadline=$(( $(date +%s) + 300 ))
while holder=$(lslocks -n -o COMMAND,PID,PATH 2>/dev/null | awk '$3 == "/var/lib/dpkg/lock-frontend" || $3 == "/var/lib/dpkg/lock" || $3 == "/var/lib/apt/lists/lock" { print $1 " (pid " $2 ")"; exit }') && [ -n "$holder" ]; do
  if [ "$(date +%s)" -ge "$deadline" ]; then echo "apt lock held by $holder" >&2; exit 75; fi
  sleep 2
done
sub=$1
set -- -q -y -o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
  -o Acquire::http::Pipeline-Depth=0 -o Acquire::http::Timeout=60 "$@"
if [ -n "$proxy" ]; then set -- -o "Acquire::http::Proxy=$proxy" "$@"; fi
if [ "$sub" = update ]; then
  # Refreshing the index changes nothing on its own: a hung attempt is killed and tried again.
  for attempt in 1 2 3 4; do
    rc=0; timeout --kill-after=10 60 apt-get "$@" || rc=$?
    case $rc in 0) exit 0;; 124|137) echo "apt-get update hung (attempt $attempt of 4)" >&2;; *) exit $rc;; esac
  done
  exit 124
fi
exec timeout --kill-after=30 1800 apt-get "$@"
`

// AptGet returns an apt-get command through the spec's package proxy.
func AptGet(s *v1alpha1.ClusterSpec, args ...string) []string {
	return append([]string{"sh", "-c", aptScript, "apt", s.Install.PackageProxy}, args...)
}

// dnfScript runs dnf (or yum) non-interactively: $1 is the package manager, $2 the proxy.
const dnfScript = `set -eu
pm=$1 proxy=$2; shift 2
if [ -n "$proxy" ]; then set -- --setopt=proxy="$proxy" "$@"; fi
exec "$pm" -y "$@"
`

// DNF returns a dnf/yum command through the spec's package proxy.
func DNF(s *v1alpha1.ClusterSpec, pm string, args ...string) []string {
	return append([]string{"sh", "-c", dnfScript, "dnf", pm, s.Install.PackageProxy}, args...)
}

// PackageInstall returns the command installing pkgs with the host's package manager (apt, dnf, yum).
func PackageInstall(s *v1alpha1.ClusterSpec, pm string, pkgs ...string) ([]string, error) {
	switch pm {
	case "apt":
		return AptGet(s, append([]string{"install", "--no-install-recommends"}, pkgs...)...), nil
	case "dnf", "yum":
		return DNF(s, pm, append([]string{"install"}, pkgs...)...), nil
	}
	return nil, fmt.Errorf("no supported package manager (found %q)", pm)
}

// PackageRefresh returns the command refreshing the package index (apt-get update; dnf makecache).
func PackageRefresh(s *v1alpha1.ClusterSpec, pm string) ([]string, error) {
	switch pm {
	case "apt":
		return AptGet(s, "update"), nil
	case "dnf", "yum":
		return DNF(s, pm, "makecache"), nil
	}
	return nil, fmt.Errorf("no supported package manager (found %q)", pm)
}

// ContainerdPackages names the runtime packages: Debian and Ubuntu ship containerd and runc;
// RHEL-family hosts need Docker's containerd.io from a repository the host already has.
func ContainerdPackages(s *v1alpha1.ClusterSpec, pm string) []string {
	v := s.ContainerRuntime.Containerd.Version
	switch pm {
	case "apt":
		if v != "" {
			return []string{"containerd=" + v, "runc"}
		}
		return []string{"containerd", "runc"}
	default:
		if v != "" {
			return []string{"containerd.io-" + v}
		}
		return []string{"containerd.io"}
	}
}

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

// RepositoryURL is the package repository of the spec's minor: <base>/v1.34/deb/ (or /rpm/).
func RepositoryURL(s *v1alpha1.ClusterSpec, pm string) (string, error) {
	r, err := Release(s)
	if err != nil {
		return "", err
	}
	kind := "deb"
	if pm != "apt" {
		kind = "rpm"
	}
	return fmt.Sprintf("%s/%s/%s/", strings.TrimRight(s.Install.PackageRepository, "/"), r.Minor(), kind), nil
}
