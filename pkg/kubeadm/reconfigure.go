package kubeadm

import (
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	kubeadmv1beta4 "k8s.io/kubernetes/cmd/kubeadm/app/apis/kubeadm/v1beta4"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/manifests"
)

// ReconfigurePath is where `installer apply` leaves the documents kubeadm's init phases read on a
// running control plane.
const ReconfigurePath = ConfigDir + "/apply.yaml"

// Reconfigure renders what `kubeadm init phase ...` reads on a running control plane when apply
// changes it (kubeadm's documented reconfiguration): an InitConfiguration for this host (its
// advertise address and node registration; no bootstrap token, which those phases never create),
// then the spec's ClusterConfiguration, KubeletConfiguration and KubeProxyConfiguration.
func Reconfigure(spec *v1alpha1.ClusterSpec, h v1alpha1.Host) (manifests.File, error) {
	if spec == nil {
		return manifests.File{}, errors.New("kubeadm: no spec")
	}
	if h.Role != v1alpha1.RoleControlPlane {
		return manifests.File{}, fmt.Errorf("kubeadm: host %s is not a control plane", h.Name)
	}
	kubelet, errs := kubeletConfiguration(spec)
	proxy, e := kubeProxyConfiguration(spec)
	errs = append(errs, e...)
	cluster, e := clusterConfiguration(spec)
	errs = append(errs, e...)
	if len(errs) > 0 {
		return manifests.File{}, fmt.Errorf("kubeadm: %w", errs.ToAggregate())
	}
	init := &kubeadmv1beta4.InitConfiguration{
		TypeMeta:         typeMeta("InitConfiguration"),
		NodeRegistration: nodeRegistration(spec, h),
		LocalAPIEndpoint: localAPIEndpoint(h),
	}
	content, err := marshalDocuments(init, cluster, kubelet, proxy)
	if err != nil {
		return manifests.File{}, err
	}
	return manifests.File{Path: ReconfigurePath, Mode: 0o600, Content: content}, nil
}

// ClusterConfiguration is the ClusterConfiguration the spec renders (what kubeadm-config holds once
// init, an upgrade or apply wrote it).
func ClusterConfiguration(spec *v1alpha1.ClusterSpec) (*kubeadmv1beta4.ClusterConfiguration, error) {
	c, errs := clusterConfiguration(spec)
	if len(errs) > 0 {
		return nil, fmt.Errorf("kubeadm: %w", errs.ToAggregate())
	}
	return c, nil
}

// KubeletConfiguration is the KubeletConfiguration document the spec renders.
func KubeletConfiguration(spec *v1alpha1.ClusterSpec) (map[string]any, error) {
	c, errs := kubeletConfiguration(spec)
	if len(errs) > 0 {
		return nil, fmt.Errorf("kubeadm: %w", errs.ToAggregate())
	}
	return c, nil
}

// Taints are the taints the spec gives host h's node: the control-plane taint on control planes
// when there are workers, then the host's own.
func Taints(spec *v1alpha1.ClusterSpec, h v1alpha1.Host) []corev1.Taint { return taints(spec, h) }

// ArgsMap turns kubeadm's flag list back into a map.
func ArgsMap(a []kubeadmv1beta4.Arg) map[string]string {
	out := make(map[string]string, len(a))
	for _, x := range a {
		out[x.Name] = x.Value
	}
	return out
}

// KubeProxyConfiguration is the KubeProxyConfiguration document the spec renders.
func KubeProxyConfiguration(spec *v1alpha1.ClusterSpec) (map[string]any, error) {
	c, errs := kubeProxyConfiguration(spec)
	if len(errs) > 0 {
		return nil, fmt.Errorf("kubeadm: %w", errs.ToAggregate())
	}
	return c, nil
}

// KubeletFlags are the kubelet flags the spec gives host h's kubelet at join (kubeadm writes them
// to kubeadm-flags.env), without node-labels: a node's labels are changed through the API.
func KubeletFlags(spec *v1alpha1.ClusterSpec, h v1alpha1.Host) map[string]string {
	m := kubeletArgs(spec, h)
	delete(m, flagNodeLabels)
	return m
}
