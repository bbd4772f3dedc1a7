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
}

// Minor returns "v1.34" for "v1.34.10".
func (r Release) Minor() string {
	v := utilversion.MustParseSemantic(r.Kubernetes)
	return fmt.Sprintf("v%d.%d", v.Major(), v.Minor())
}

// releases is ordered oldest first. Only versions proven in the lab are listed (DESIGN.md §2, §5).
var releases = []Release{
	{
		Kubernetes: "v1.34.10", Etcd: "3.6.5-0", EtcdModule: "v3.6.5", CoreDNS: "v1.12.1", Pause: "3.10.1",
		CRITools: "v1.36.0", CNIPlugins: "v1.9.1",
		PackageRevision: "1.1", CRIToolsPackage: "1.36.0-1.1", CNIPackage: "1.9.1-1.1",
		Flannel: "v0.28.10", FlannelCNIPlugin: "v1.9.1-flannel3",
	},
	{
		Kubernetes: "v1.35.8", Etcd: "3.6.6-0", EtcdModule: "v3.6.6", CoreDNS: "v1.13.1", Pause: "3.10.1",
		CRITools: "v1.36.0", CNIPlugins: "v1.9.1",
		PackageRevision: "1.1", CRIToolsPackage: "1.36.0-1.1", CNIPackage: "1.9.1-1.1",
		Flannel: "v0.28.10", FlannelCNIPlugin: "v1.9.1-flannel3",
	},
}

// Releases returns every supported release, oldest first. The slice is a copy.
func Releases() []Release {
	return append([]Release(nil), releases...)
}

// Default is the release a spec gets when it names none: the newest supported one.
func Default() Release { return releases[len(releases)-1] }

// Oldest is the oldest supported release; the kubeadm API the installer renders is pinned to it.
func Oldest() Release { return releases[0] }

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
