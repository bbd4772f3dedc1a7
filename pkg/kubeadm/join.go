package kubeadm

import (
	"sort"

	kubeadmv1beta4 "k8s.io/kubernetes/cmd/kubeadm/app/apis/kubeadm/v1beta4"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
)

// joinConfiguration is the JoinConfiguration for a further control plane or a worker. Discovery
// always pins the cluster CA by its hash (never unsafeSkipCAVerification). Control planes get no
// certificate key: the installer uploads the CAs before the join and kubeadm adopts them.
func joinConfiguration(in Input) *kubeadmv1beta4.JoinConfiguration {
	hashes := append([]string(nil), in.CACertHashes...)
	sort.Strings(hashes)
	j := &kubeadmv1beta4.JoinConfiguration{
		TypeMeta:         typeMeta("JoinConfiguration"),
		NodeRegistration: nodeRegistration(in.Spec, in.Host),
		Discovery: kubeadmv1beta4.Discovery{
			BootstrapToken: &kubeadmv1beta4.BootstrapTokenDiscovery{
				Token:             in.Token,
				APIServerEndpoint: ControlPlaneEndpoint(in.Spec),
				CACertHashes:      hashes,
			},
		},
	}
	if in.Host.Role == v1alpha1.RoleControlPlane {
		j.ControlPlane = &kubeadmv1beta4.JoinControlPlane{LocalAPIEndpoint: localAPIEndpoint(in.Host)}
	}
	return j
}
