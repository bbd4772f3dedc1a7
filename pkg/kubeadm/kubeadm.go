// Package kubeadm renders the documents kubeadm reads on each host, as kubeadm's own typed v1beta4
// API (InitConfiguration, ClusterConfiguration, JoinConfiguration, UpgradeConfiguration) plus the
// KubeletConfiguration and KubeProxyConfiguration component configs. It is the only importer of
// kubeadm's API, pinned to the oldest supported Kubernetes release so every field it writes is
// accepted by every supported kubeadm. Renderers are pure functions of (spec, host, facts) and the
// join secrets; output is stable (sorted lists, multi-document YAML) and golden-tested.
package kubeadm

import (
	"bytes"
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/constants"
	"installer.dev/installer/pkg/facts"
	"installer.dev/installer/pkg/manifests"
)

// Where the installer leaves kubeadm's configuration on a host. Not under /etc/kubernetes/tmp or
// manifests/, which kubeadm itself empties; reset removes this directory.
const (
	ConfigDir         = constants.KubernetesDir + "/installer"
	ConfigPath        = ConfigDir + "/kubeadm.yaml"
	UpgradeConfigPath = ConfigDir + "/upgrade.yaml"
)

// CRISocket is containerd's CRI endpoint, the only runtime the installer sets up.
const CRISocket = "unix:///run/containerd/containerd.sock"

// Input is everything one host's documents are rendered from.
type Input struct {
	// Spec is the defaulted, validated cluster spec.
	Spec *v1alpha1.ClusterSpec
	// Host is the host the documents are for; its role and position decide init or join.
	Host v1alpha1.Host
	// Facts are the host's facts (facts.Assumed for offline rendering). The documents depend on no
	// fact today (node-ip comes from the spec's privateAddress and the CRI socket is containerd's
	// everywhere); phases pass them so a renderer that needs one does not change signature.
	Facts facts.Host
	// Token is the bootstrap token created by init and used by every join ([a-z0-9]{6}.[a-z0-9]{16}).
	Token string
	// CACertHashes pin the cluster CA for joining nodes (pki.DiscoveryHash of the cluster CA).
	CACertHashes []string
}

// Kind says which kubeadm command a host's documents are for.
type Kind string

const (
	// KindInit: the first control plane runs `kubeadm init`.
	KindInit Kind = "init"
	// KindJoinControlPlane: every further control plane runs `kubeadm join` as a control plane.
	KindJoinControlPlane Kind = "join-control-plane"
	// KindJoinWorker: workers run `kubeadm join`.
	KindJoinWorker Kind = "join-worker"
)

// KindFor tells what a host does: the first control plane in spec order initialises the cluster.
func KindFor(spec *v1alpha1.ClusterSpec, h v1alpha1.Host) Kind {
	if h.Role != v1alpha1.RoleControlPlane {
		return KindJoinWorker
	}
	if cps := spec.ControlPlanes(); len(cps) > 0 && cps[0].Name == h.Name {
		return KindInit
	}
	return KindJoinControlPlane
}

// Render returns the host's kubeadm documents: Init+Cluster+Kubelet+KubeProxy configuration for the
// first control plane, a JoinConfiguration for everyone else.
func Render(in Input) ([]byte, error) {
	if in.Spec == nil {
		return nil, errors.New("kubeadm: no spec")
	}
	if err := ValidateToken(in.Token); err != nil {
		return nil, fmt.Errorf("kubeadm: host %s: %w", in.Host.Name, err)
	}
	if errs := CheckSpec(in.Spec); len(errs) > 0 {
		return nil, fmt.Errorf("kubeadm: %w", errs.ToAggregate())
	}
	switch KindFor(in.Spec, in.Host) {
	case KindInit:
		return renderInit(in)
	default:
		if len(in.CACertHashes) == 0 {
			return nil, fmt.Errorf("kubeadm: host %s: joining needs the cluster CA's discovery hash", in.Host.Name)
		}
		return marshalDocuments(joinConfiguration(in))
	}
}

// File renders the host's documents as the file uploaded to ConfigPath. It holds the bootstrap
// token, so it is Sensitive; Masked is the same documents with manifests.PlaceholderToken, which
// `kubeadm config validate` still accepts.
func File(in Input) (manifests.File, error) {
	content, err := Render(in)
	if err != nil {
		return manifests.File{}, err
	}
	masked := in
	masked.Token = manifests.PlaceholderToken
	shown, err := Render(masked)
	if err != nil {
		return manifests.File{}, err
	}
	return manifests.File{Path: ConfigPath, Mode: 0o600, Content: content, Sensitive: true, Masked: shown}, nil
}

// CheckSpec reports, with spec paths, what the spec asks of kubeadm that kubeadm or the kubelet
// would refuse: unknown or mistyped keys in spec.kubelet.config and spec.kubeProxy.config, flags
// the renderer derives per host, labels a kubelet may not set on itself, image overrides kubeadm
// cannot express. Validate cannot see these (it does not know kubeadm's types); commands call this
// right after it, before any connection.
func CheckSpec(spec *v1alpha1.ClusterSpec) field.ErrorList {
	var errs field.ErrorList
	_, e := kubeletConfiguration(spec)
	errs = append(errs, e...)
	_, e = kubeProxyConfiguration(spec)
	errs = append(errs, e...)
	errs = append(errs, checkKubeletArgs(spec)...)
	errs = append(errs, checkLabels(spec)...)
	_, _, e = kubeadmImageOverrides(spec)
	errs = append(errs, e...)
	return errs
}

// marshalDocuments writes objects as one multi-document YAML stream, in order.
func marshalDocuments(objs ...any) ([]byte, error) {
	var buf bytes.Buffer
	for i, o := range objs {
		data, err := yaml.Marshal(o)
		if err != nil {
			return nil, fmt.Errorf("kubeadm: marshal %T: %w", o, err)
		}
		if i > 0 {
			buf.WriteString("---\n")
		}
		buf.Write(data)
	}
	return buf.Bytes(), nil
}
