package kubeadm

import (
	"fmt"

	kubeadmv1beta4 "k8s.io/kubernetes/cmd/kubeadm/app/apis/kubeadm/v1beta4"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/manifests"
	"installer.dev/installer/pkg/versions"
)

// Upgrade renders the UpgradeConfiguration used by `kubeadm upgrade plan`, `apply` (first control
// plane) and `node` (every other node, workers included) on the way to target. Naming the version
// keeps kubeadm from looking it up on dl.k8s.io (20 s of time-outs offline); the spec's
// ignorePreflightErrors go to every step, because kubeadm ≥ 1.35 checks cgroup v1 in apply and node
// alike (lab-upgrade-ha.md §3).
func Upgrade(spec *v1alpha1.ClusterSpec, target string) ([]byte, error) {
	r, ok := versions.Lookup(target)
	if !ok {
		return nil, fmt.Errorf("kubeadm: upgrade target %s is not supported (supported: %s)", target, versions.SupportedList())
	}
	ignore := ignorePreflightErrors(spec)
	u := &kubeadmv1beta4.UpgradeConfiguration{
		TypeMeta: typeMeta("UpgradeConfiguration"),
		Apply: kubeadmv1beta4.UpgradeApplyConfiguration{
			KubernetesVersion:     r.Kubernetes,
			IgnorePreflightErrors: ignore,
		},
		Plan: kubeadmv1beta4.UpgradePlanConfiguration{
			KubernetesVersion:     r.Kubernetes,
			IgnorePreflightErrors: ignore,
		},
		Node: kubeadmv1beta4.UpgradeNodeConfiguration{
			IgnorePreflightErrors: ignore,
		},
	}
	return marshalDocuments(u)
}

// UpgradeFile is Upgrade as the file uploaded to UpgradeConfigPath on every node. It holds no secret.
func UpgradeFile(spec *v1alpha1.ClusterSpec, target string) (manifests.File, error) {
	data, err := Upgrade(spec, target)
	if err != nil {
		return manifests.File{}, err
	}
	return manifests.File{Path: UpgradeConfigPath, Mode: 0o644, Content: data}, nil
}
