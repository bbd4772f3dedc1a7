package manifests

import (
	"fmt"
	"strings"

	"installer.dev/installer/pkg/versions"
)

// Image is one default container image and what the installer's manifests (or kubeadm's) rely on
// inside it. Mirrors change where an image is pulled from, never its name.
type Image struct {
	// Component is the stable key renderers and the lab look images up by ("kube-apiserver", "flannel").
	Component string
	// Name is the full reference, registry/repository:tag.
	Name string
	// Kubeadm marks images kubeadm itself deploys (and lists with `kubeadm config images list`); the
	// spec's images.repository replaces their registry.
	Kubeadm bool
	// Feature is the spec setting that makes the installer render the image ("" = always):
	// "cni=flannel", "loadBalancer=keepalived-haproxy", "loadBalancer=kube-vip".
	Feature string
	// Entrypoint is the image entrypoint the manifests rely on (they pass only args); nil when every
	// manifest sets the command itself.
	Entrypoint []string
	// Binaries are absolute paths of executables the manifests or their scripts run. Those run by bare
	// name are found through the image's PATH, so their directory must be on it.
	Binaries []string
	// Tools are programs a manifest's shell snippet or health-check script calls by name (on PATH).
	Tools []string
}

// Repository returns the name without the tag ("registry.k8s.io/kube-apiserver").
func (i Image) Repository() string {
	if at := strings.LastIndex(i.Name, ":"); at > strings.LastIndex(i.Name, "/") {
		return i.Name[:at]
	}
	return i.Name
}

// Tag returns the tag ("v1.34.10").
func (i Image) Tag() string {
	if at := strings.LastIndex(i.Name, ":"); at > strings.LastIndex(i.Name, "/") {
		return i.Name[at+1:]
	}
	return ""
}

// Tags of images whose versions do not follow the Kubernetes release. kube-vip cannot be built from
// the Go module proxy, so the lab does not serve it (DESIGN.md §4); keepalived and haproxy follow
// kubeadm's HA guide (static pods) and are served in the lab from Debian 12's packages.
const (
	KeepalivedImage = "docker.io/osixia/keepalived:2.0.20"
	HAProxyImage    = "docker.io/library/haproxy:2.6.12"
	KubeVIPImage    = "ghcr.io/kube-vip/kube-vip:v1.0.4"
)

// iptablesTools are what kube-proxy (iptables and nftables modes) and flanneld exec.
var iptablesTools = []string{
	"iptables", "iptables-save", "iptables-restore", "ip6tables", "ip6tables-save", "ip6tables-restore", "nft",
}

// DefaultImages returns every image the installer may render for a release, kubeadm's first in
// kubeadm's own order. The slice is new on every call.
func DefaultImages(r versions.Release) []Image {
	const k8s = "registry.k8s.io/"
	ctl := func(c string) Image {
		return Image{Component: c, Name: k8s + c + ":" + r.Kubernetes, Kubeadm: true,
			Binaries: []string{"/usr/local/bin/" + c}}
	}
	proxy := ctl("kube-proxy")
	proxy.Tools = append([]string(nil), iptablesTools...)
	return []Image{
		ctl("kube-apiserver"),
		ctl("kube-controller-manager"),
		ctl("kube-scheduler"),
		proxy,
		{Component: "coredns", Name: k8s + "coredns/coredns:" + r.CoreDNS, Kubeadm: true,
			Entrypoint: []string{"/coredns"}, Binaries: []string{"/coredns"}},
		{Component: "pause", Name: k8s + "pause:" + r.Pause, Kubeadm: true,
			Entrypoint: []string{"/pause"}, Binaries: []string{"/pause"}},
		{Component: "etcd", Name: k8s + "etcd:" + r.Etcd, Kubeadm: true,
			// etcdctl and etcdutl take and verify snapshots inside the etcd static pod.
			Binaries: []string{"/usr/local/bin/etcd", "/usr/local/bin/etcdctl", "/usr/local/bin/etcdutl"}},
		{Component: "flannel", Name: "ghcr.io/flannel-io/flannel:" + r.Flannel, Feature: "cni=flannel",
			Entrypoint: []string{"/opt/bin/flanneld"}, Binaries: []string{"/opt/bin/flanneld"},
			// The install-cni init container copies the conflist with cp.
			Tools: append([]string{"cp"}, iptablesTools...)},
		{Component: "flannel-cni-plugin", Name: "ghcr.io/flannel-io/flannel-cni-plugin:" + r.FlannelCNIPlugin,
			Feature: "cni=flannel", Binaries: []string{"/flannel"}, Tools: []string{"cp"}},
		{Component: "keepalived", Name: KeepalivedImage, Feature: "loadBalancer=keepalived-haproxy",
			// The VRRP check script probes the local apiserver with curl.
			Binaries: []string{"/usr/sbin/keepalived"}, Tools: []string{"sh", "curl"}},
		{Component: "haproxy", Name: HAProxyImage, Feature: "loadBalancer=keepalived-haproxy",
			Binaries: []string{"/usr/local/sbin/haproxy"}},
		{Component: "kube-vip", Name: KubeVIPImage, Feature: "loadBalancer=kube-vip",
			Entrypoint: []string{"/kube-vip"}, Binaries: []string{"/kube-vip"}},
	}
}

// Cloud-controller-manager preset images. They follow each provider's own release line (the CCMs of
// AWS, OpenStack and vSphere track the Kubernetes minor); none of them can be built from the Go module
// proxy, so the lab does not serve them and runs its own CCM through the custom provider instead.
// The pins were taken from the providers' published manifests and cannot be checked offline here;
// cloudProvider.image (or images.overrides) replaces them.
func cloudProviderTags(r versions.Release) map[string]string {
	minor := r.Minor() + ".0" // v1.34 -> v1.34.0
	return map[string]string{
		"ccm-aws":          "registry.k8s.io/provider-aws/cloud-controller-manager:" + minor,
		"ccm-openstack":    "registry.k8s.io/provider-os/openstack-cloud-controller-manager:" + minor,
		"ccm-vsphere":      "registry.k8s.io/cloud-pv-vsphere/cloud-provider-vsphere:" + minor,
		"ccm-hetzner":      "docker.io/hetznercloud/hcloud-cloud-controller-manager:v1.26.0",
		"ccm-digitalocean": "docker.io/digitalocean/digitalocean-cloud-controller-manager:v0.1.63",
	}
}

// CloudProviderImages returns the image of every cloud-controller-manager preset, keyed in the table
// by "ccm-<provider>". They are part of the table (ImageFor and AllImages find them) but kept out of
// DefaultImages, which lists what the lab builds and serves.
func CloudProviderImages(r versions.Release) []Image {
	tags := cloudProviderTags(r)
	img := func(provider, binary string) Image {
		c := "ccm-" + provider
		// The manifests set the command to this binary, so the image's entrypoint does not matter.
		return Image{Component: c, Name: tags[c], Feature: "cloudProvider=" + provider, Binaries: []string{binary}}
	}
	return []Image{
		img("aws", "/bin/aws-cloud-controller-manager"),
		img("openstack", "/bin/openstack-cloud-controller-manager"),
		img("hetzner", "/bin/hcloud-cloud-controller-manager"),
		img("digitalocean", "/bin/digitalocean-cloud-controller-manager"),
		img("vsphere", "/bin/vsphere-cloud-controller-manager"),
	}
}

// AllImages is DefaultImages followed by CloudProviderImages: every image the installer can render.
func AllImages(r versions.Release) []Image {
	return append(DefaultImages(r), CloudProviderImages(r)...)
}

// KubeadmImages returns the names kubeadm deploys for a release (what `kubeadm config images list`
// prints, in its order).
func KubeadmImages(r versions.Release) []string {
	var out []string
	for _, i := range DefaultImages(r) {
		if i.Kubeadm {
			out = append(out, i.Name)
		}
	}
	return out
}

// ImageFor returns the default image of a component for a release.
func ImageFor(r versions.Release, component string) (Image, error) {
	for _, i := range AllImages(r) {
		if i.Component == component {
			return i, nil
		}
	}
	return Image{}, fmt.Errorf("no default image for component %q", component)
}
