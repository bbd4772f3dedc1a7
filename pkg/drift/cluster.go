package drift

import (
	"strings"

	kubeadmv1beta4 "k8s.io/kubernetes/cmd/kubeadm/app/apis/kubeadm/v1beta4"
)

// ClusterConfig lists the cluster-wide settings of want (the spec's ClusterConfiguration) that
// differ from have (kubeadm-config) and that apply does not change, each with the reason and,
// where there is one, the way to change it.
func ClusterConfig(want, have *kubeadmv1beta4.ClusterConfiguration) []Refusal {
	var out []Refusal
	differs := func(field, w, h, reason string) {
		if w != h {
			out = append(out, Refusal{Field: field, Reason: "the cluster has " + quoteOrNone(h) + ", the spec " + quoteOrNone(w) + ": " + reason})
		}
	}
	differs("spec.kubernetesVersion", strings.TrimPrefix(want.KubernetesVersion, "v"), strings.TrimPrefix(have.KubernetesVersion, "v"),
		"a version changes with `installer upgrade`, one minor at a time")
	differs("spec.controlPlaneEndpoint", want.ControlPlaneEndpoint, have.ControlPlaneEndpoint,
		"every kubeconfig and kubelet of the cluster names the endpoint; moving it is a migration apply does not do")
	differs("spec.networking.podSubnet", want.Networking.PodSubnet, have.Networking.PodSubnet,
		"the pod network is fixed at creation (every node's pod range and the CNI depend on it)")
	differs("spec.networking.serviceSubnet", want.Networking.ServiceSubnet, have.Networking.ServiceSubnet,
		"the service network is fixed at creation (every Service's cluster IP, the DNS address and the apiserver certificate depend on it)")
	differs("spec.networking.dnsDomain", want.Networking.DNSDomain, have.Networking.DNSDomain,
		"the cluster's DNS domain is fixed at creation")
	differs("spec.images.repository", want.ImageRepository, have.ImageRepository,
		"apply does not move the control plane's images to another registry yet")
	var wantEtcd, haveEtcd kubeadmv1beta4.ImageMeta
	if want.Etcd.Local != nil {
		wantEtcd = want.Etcd.Local.ImageMeta
	}
	if have.Etcd.Local != nil {
		haveEtcd = have.Etcd.Local.ImageMeta
	}
	differs("spec.images.overrides (etcd)", imageMeta(wantEtcd), imageMeta(haveEtcd),
		"apply does not replace etcd's image yet")
	differs("spec.images.overrides (coredns)", imageMeta(want.DNS.ImageMeta), imageMeta(have.DNS.ImageMeta),
		"apply does not replace CoreDNS's image yet")
	return out
}

func imageMeta(m kubeadmv1beta4.ImageMeta) string {
	if m.ImageRepository == "" && m.ImageTag == "" {
		return ""
	}
	return m.ImageRepository + ":" + m.ImageTag
}

func quoteOrNone(s string) string {
	if s == "" {
		return "none"
	}
	return `"` + s + `"`
}
