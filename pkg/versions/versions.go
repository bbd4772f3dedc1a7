// Package versions is the one table of Kubernetes releases the installer supports and the component
// versions that belong to each. Validation, the renderers and the lab builder all read it, so a new
// release is added here and nowhere else.
package versions

import (
	"fmt"
	"sort"
	"strings"

	utilversion "k8s.io/apimachinery/pkg/util/version"
)

// Release is one pinned Kubernetes patch release and what kubeadm of that release expects beside it.
type Release struct {
	// Kubernetes is the full version, e.g. "v1.34.10".
	Kubernetes string
	// Etcd is the etcd image tag kubeadm deploys ("3.6.5-0"); EtcdModule the etcd release it is built from.
	Etcd       string
	EtcdModule string
	// CoreDNS is the CoreDNS image tag kubeadm deploys ("v1.12.1").
	CoreDNS string
	// Pause is the sandbox image tag kubeadm recommends ("3.10.1").
	Pause string
	// CRITools is the crictl release installed beside the kubelet.
	CRITools string
	// CNIPlugins is the containernetworking/plugins release installed in /opt/cni/bin.
	CNIPlugins string
	// PackageRevision is the Debian/RPM revision of the upstream packages ("1.1" as in 1.34.10-1.1).
	PackageRevision string
	// CRIToolsPackage and CNIPackage are the versions of the cri-tools and kubernetes-cni packages
	// published in the same minor's package repository.
	CRIToolsPackage string
	CNIPackage      string
	// Flannel is the flannel release (image tag of ghcr.io/flannel-io/flannel) rendered for this release;
	// FlannelCNIPlugin the tag of the matching ghcr.io/flannel-io/flannel-cni-plugin image.
	Flannel          string
	FlannelCNIPlugin string
	// EndOfLife is upstream's end-of-life date of the minor (kubernetes.io/releases).
	EndOfLife string
	// MinContainerd is the oldest containerd this release runs on: 1.36 and later need containerd
	// 2.x (1.35 is the last minor that supports 1.x).
	MinContainerd string
}

// Minor returns "v1.34" for "v1.34.10".
func (r Release) Minor() string {
	v := utilversion.MustParseSemantic(r.Kubernetes)
	return fmt.Sprintf("v%d.%d", v.Major(), v.Minor())
}

// releases is ordered oldest first: the newest patch of each minor upstream supports that the Go
// module proxy served on 2026-12-05 (v1.35.8, v1.36.5, v1.37.2; it refused v1.35.9, v1.36.6 and
// v1.37.3). The image tags are each release's `kubeadm config images list`; only versions proven in
// the lab are listed (DESIGN.md §2, §5).
var releases = []Release{
	{
		Kubernetes: "v1.35.8", Etcd: "3.6.6-0", EtcdModule: "v3.6.6", CoreDNS: "v1.13.1", Pause: "3.10.1",
		CRITools: "v1.36.0", CNIPlugins: "v1.9.1",
		PackageRevision: "1.1", CRIToolsPackage: "1.36.0-1.1", CNIPackage: "1.9.1-1.1",
		Flannel: "v0.28.10", FlannelCNIPlugin: "v1.9.1-flannel3",
		EndOfLife: "2027-02-28", MinContainerd: "v1.6.0",
	},
	{
		Kubernetes: "v1.36.5", Etcd: "3.6.8-0", EtcdModule: "v3.6.8", CoreDNS: "v1.14.2", Pause: "3.10.2",
		CRITools: "v1.36.0", CNIPlugins: "v1.9.1",
		PackageRevision: "1.1", CRIToolsPackage: "1.36.0-1.1", CNIPackage: "1.9.1-1.1",
		Flannel: "v0.28.10", FlannelCNIPlugin: "v1.9.1-flannel3",
		EndOfLife: "2027-06-28", MinContainerd: "v2.0.0",
	},
	{
		Kubernetes: "v1.37.2", Etcd: "3.7.0-0", EtcdModule: "v3.7.0", CoreDNS: "v1.14.6", Pause: "3.10.2",
		CRITools: "v1.37.0", CNIPlugins: "v1.9.1",
		PackageRevision: "1.1", CRIToolsPackage: "1.37.0-1.1", CNIPackage: "1.9.1-1.1",
		Flannel: "v0.28.10", FlannelCNIPlugin: "v1.9.1-flannel3",
		EndOfLife: "2027-10-28", MinContainerd: "v2.0.0",
	},
}

// retired are releases past upstream's end of life: no new cluster gets them, but a cluster that
// runs one can still be upgraded to the next minor (CheckUpgrade reads the version from the cluster,
// not from this table).
var retired = []Retired{
	{Minor: "v1.34", EndOfLife: "2026-10-27", UpgradeTo: "v1.35.8"},
}

// Retired is a minor the installer no longer installs.
type Retired struct {
	Minor     string // "v1.34"
	EndOfLife string // upstream's end-of-life date
	UpgradeTo string // the supported release an existing cluster upgrades to
}

// RetiredMinor reports whether version (any patch, "v" optional) belongs to a retired minor.
func RetiredMinor(version string) (Retired, bool) {
	if !strings.HasPrefix(version, "v") {
		version = "v" + version
	}
	v, err := utilversion.ParseSemantic(version)
	if err != nil {
		return Retired{}, false
	}
	minor := fmt.Sprintf("v%d.%d", v.Major(), v.Minor())
	for _, r := range retired {
		if r.Minor == minor {
			return r, true
		}
	}
	return Retired{}, false
}

// Containerd is the containerd release a binary install puts on every node, with the runc it
// runs. 2.3 is containerd's first long-term-support line; every supported Kubernetes runs on it.
type ContainerdRelease struct {
	Containerd string // "v2.3.7"
	Runc       string // "v1.5.3"
}

// Containerd returns the containerd and runc a binary install uses.
func Containerd() ContainerdRelease {
	return ContainerdRelease{Containerd: "v2.3.7", Runc: "v1.5.3"}
}

// Releases returns every supported release, oldest first. The slice is a copy.
func Releases() []Release {
	return append([]Release(nil), releases...)
}

// Default is the release a spec gets when it names none: the newest supported one.
func Default() Release { return releases[len(releases)-1] }

// Oldest is the oldest supported release.
func Oldest() Release { return releases[0] }

// From returns the supported releases from version (exact) up to the default, oldest first: what a
// cluster at version can be upgraded through. Nil when version is not supported.
func From(version string) []Release {
	for i, r := range releases {
		if r.Kubernetes == version {
			return append([]Release(nil), releases[i:]...)
		}
	}
	return nil
}

// Lookup finds the release for an exact version such as "v1.34.10" (the "v" is optional).
func Lookup(version string) (Release, bool) {
	if !strings.HasPrefix(version, "v") {
		version = "v" + version
	}
	for _, r := range releases {
		if r.Kubernetes == version {
			return r, true
		}
	}
	return Release{}, false
}

// SupportedList renders the supported versions for error messages: "v1.34.10, v1.35.8".
func SupportedList() string {
	names := make([]string, 0, len(releases))
	for _, r := range releases {
		names = append(names, r.Kubernetes)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// ContainerdAtLeast compares a containerd version as a package or the binary reports it ("1.6.20",
// "1.6.20~ds1-1+deb12u3", "2.3.7", "v2.3.7") with a minimum ("v2.0.0"). A version it cannot read
// counts as too old.
func ContainerdAtLeast(version, minimum string) bool {
	v := strings.TrimPrefix(version, "v")
	if i := strings.IndexAny(v, "~+-"); i >= 0 {
		v = v[:i]
	}
	got, err := utilversion.ParseGeneric(v)
	if err != nil {
		return false
	}
	return !got.LessThan(utilversion.MustParseGeneric(strings.TrimPrefix(minimum, "v")))
}
