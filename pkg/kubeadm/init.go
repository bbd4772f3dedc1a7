package kubeadm

import (
	"fmt"
	"maps"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	bootstraptokenv1 "k8s.io/kubernetes/cmd/kubeadm/app/apis/bootstraptoken/v1"
	kubeadmv1beta4 "k8s.io/kubernetes/cmd/kubeadm/app/apis/kubeadm/v1beta4"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/constants"
)

func typeMeta(kind string) metav1.TypeMeta {
	return metav1.TypeMeta{APIVersion: kubeadmv1beta4.SchemeGroupVersion.String(), Kind: kind}
}

// kubeadm's default groups and usages for node bootstrap tokens, written out so the file says what
// the token may do.
var (
	tokenGroups = []string{"system:bootstrappers:kubeadm:default-node-token"}
	tokenUsages = []string{"authentication", "signing"}
)

func renderInit(in Input) ([]byte, error) {
	kubelet, errs := kubeletConfiguration(in.Spec)
	proxy, e := kubeProxyConfiguration(in.Spec)
	errs = append(errs, e...)
	cluster, e := clusterConfiguration(in.Spec)
	errs = append(errs, e...)
	if len(errs) > 0 {
		return nil, fmt.Errorf("kubeadm: %w", errs.ToAggregate())
	}
	init, err := initConfiguration(in)
	if err != nil {
		return nil, err
	}
	return marshalDocuments(init, cluster, kubelet, proxy)
}

func initConfiguration(in Input) (*kubeadmv1beta4.InitConfiguration, error) {
	token, err := bootstraptokenv1.NewBootstrapTokenString(in.Token)
	if err != nil {
		// The error would quote the token; say only what is wrong.
		return nil, fmt.Errorf("kubeadm: host %s: invalid bootstrap token", in.Host.Name)
	}
	return &kubeadmv1beta4.InitConfiguration{
		TypeMeta: typeMeta("InitConfiguration"),
		BootstrapTokens: []bootstraptokenv1.BootstrapToken{{
			Token:       token,
			Description: "installer: joins of this run",
			TTL:         &metav1.Duration{Duration: TokenTTL},
			Groups:      append([]string(nil), tokenGroups...),
			Usages:      append([]string(nil), tokenUsages...),
		}},
		NodeRegistration: nodeRegistration(in.Spec, in.Host),
		LocalAPIEndpoint: localAPIEndpoint(in.Host),
	}, nil
}

// localAPIEndpoint pins the apiserver to the private address: with several NICs kubeadm would pick
// the default-route interface, and without a default route it fails with "cannot use 0.0.0.0".
func localAPIEndpoint(h v1alpha1.Host) kubeadmv1beta4.APIEndpoint {
	return kubeadmv1beta4.APIEndpoint{AdvertiseAddress: h.NodeIP(), BindPort: constants.APIServerPort}
}

func clusterConfiguration(spec *v1alpha1.ClusterSpec) (*kubeadmv1beta4.ClusterConfiguration, field.ErrorList) {
	etcd, dns, errs := kubeadmImageOverrides(spec)
	c := &kubeadmv1beta4.ClusterConfiguration{
		TypeMeta:             typeMeta("ClusterConfiguration"),
		KubernetesVersion:    spec.KubernetesVersion,
		ControlPlaneEndpoint: ControlPlaneEndpoint(spec),
		ImageRepository:      spec.Images.Repository,
		Networking: kubeadmv1beta4.Networking{
			PodSubnet:     spec.Networking.PodSubnet,
			ServiceSubnet: spec.Networking.ServiceSubnet,
			DNSDomain:     spec.Networking.DNSDomain,
		},
		APIServer: kubeadmv1beta4.APIServer{
			ControlPlaneComponent: controlPlaneComponent(spec.APIServer),
			CertSANs:              CertSANs(spec),
		},
		ControllerManager: controlPlaneComponent(spec.ControllerManager),
		Scheduler:         controlPlaneComponent(spec.Scheduler),
		DNS:               kubeadmv1beta4.DNS{ImageMeta: dns},
	}
	if etcd != (kubeadmv1beta4.ImageMeta{}) {
		c.Etcd.Local = &kubeadmv1beta4.LocalEtcd{ImageMeta: etcd, DataDir: constants.EtcdDataDir}
	}
	return c, errs
}

// ControlPlaneEndpoint is host:port of the API endpoint every client and joining node uses.
func ControlPlaneEndpoint(spec *v1alpha1.ClusterSpec) string {
	return net.JoinHostPort(spec.ControlPlaneEndpoint.Host, strconv.Itoa(int(spec.ControlPlaneEndpoint.Port)))
}

// CertSANs are the extra names in the apiserver certificate: spec.certSANs, the VIP, the endpoint's
// host, every control plane's address, private address and name, 127.0.0.1 and localhost; sorted
// and without duplicates. kubeadm adds its own (kubernetes.default..., the service IP, the node's
// name and advertise address) on top.
func CertSANs(spec *v1alpha1.ClusterSpec) []string {
	set := map[string]bool{"127.0.0.1": true, "localhost": true}
	add := func(s string) {
		if s != "" {
			set[s] = true
		}
	}
	for _, s := range spec.CertSANs {
		add(s)
	}
	add(spec.LoadBalancer.VIP)
	add(spec.ControlPlaneEndpoint.Host)
	for _, h := range spec.ControlPlanes() {
		add(h.Address)
		add(h.PrivateAddress)
		add(h.Name)
	}
	return slices.Sorted(maps.Keys(set))
}

// controlPlaneComponent is a component's extra flags and extra volumes, the volumes in spec order
// (validation keeps their names unique).
func controlPlaneComponent(c v1alpha1.ControlPlaneComponent) kubeadmv1beta4.ControlPlaneComponent {
	out := kubeadmv1beta4.ControlPlaneComponent{ExtraArgs: args(c.ExtraArgs)}
	for _, v := range c.ExtraVolumes {
		out.ExtraVolumes = append(out.ExtraVolumes, kubeadmv1beta4.HostPathMount{
			Name: v.Name, HostPath: v.HostPath, MountPath: v.MountPath, ReadOnly: v.ReadOnly, PathType: corev1.HostPathType(v.PathType),
		})
	}
	return out
}

// args turns a flag map into v1beta4's {name, value} list, sorted by name for stable output.
func args(m map[string]string) []kubeadmv1beta4.Arg {
	if len(m) == 0 {
		return nil
	}
	out := make([]kubeadmv1beta4.Arg, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, kubeadmv1beta4.Arg{Name: k, Value: m[k]})
	}
	return out
}

// Taint keys kubeadm and the cloud provider use.
const (
	ControlPlaneTaintKey = "node-role.kubernetes.io/control-plane"
)

func nodeRegistration(spec *v1alpha1.ClusterSpec, h v1alpha1.Host) kubeadmv1beta4.NodeRegistrationOptions {
	return kubeadmv1beta4.NodeRegistrationOptions{
		Name:                  h.Name,
		CRISocket:             CRISocket,
		Taints:                taints(spec, h),
		KubeletExtraArgs:      args(kubeletArgs(spec, h)),
		IgnorePreflightErrors: ignorePreflightErrors(spec),
	}
}

// taints are always an explicit list: kubeadm reads a missing list as "the default" (the
// control-plane taint on control planes) but an empty one as "none". Without workers the control
// planes are the only place pods can run, so they stay untainted.
func taints(spec *v1alpha1.ClusterSpec, h v1alpha1.Host) []corev1.Taint {
	out := []corev1.Taint{}
	if h.Role == v1alpha1.RoleControlPlane && len(spec.Workers()) > 0 {
		out = append(out, corev1.Taint{Key: ControlPlaneTaintKey, Effect: corev1.TaintEffectNoSchedule})
	}
	for _, t := range h.Taints {
		out = append(out, corev1.Taint{Key: t.Key, Value: t.Value, Effect: corev1.TaintEffect(t.Effect)})
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Key != b.Key {
			return a.Key < b.Key
		}
		if a.Effect != b.Effect {
			return a.Effect < b.Effect
		}
		return a.Value < b.Value
	})
	return out
}

// Kubelet flags the renderer derives per host; the spec may not set them in kubelet.extraArgs.
const (
	flagNodeIP        = "node-ip"
	flagNodeLabels    = "node-labels"
	flagCloudProvider = "cloud-provider"
)

// kubeletArgs are spec.kubelet.extraArgs plus node-ip (the private address: kubeadm would take the
// default-route interface's), node-labels from the host, and cloud-provider=external when an
// external CCM initialises the nodes.
func kubeletArgs(spec *v1alpha1.ClusterSpec, h v1alpha1.Host) map[string]string {
	m := map[string]string{}
	for k, v := range spec.Kubelet.ExtraArgs {
		m[k] = v
	}
	m[flagNodeIP] = h.NodeIP()
	if len(h.Labels) > 0 {
		var kv []string
		for _, k := range slices.Sorted(maps.Keys(h.Labels)) {
			kv = append(kv, k+"="+h.Labels[k])
		}
		m[flagNodeLabels] = strings.Join(kv, ",")
	}
	if spec.ExternalCCM() {
		m[flagCloudProvider] = "external"
	}
	return m
}

// ignorePreflightErrors is the spec's list, sorted and without duplicates. Nothing is added behind
// the operator's back: on cgroup v1 with Kubernetes ≥ 1.35 the spec must name SystemVerification
// (validation warns), and kubeadm 1.34/1.35 have no DirAvailable--etc-kubernetes-manifests check
// that the HA static pods could trip (measured, DESIGN.md §3).
func ignorePreflightErrors(spec *v1alpha1.ClusterSpec) []string {
	set := map[string]bool{}
	for _, e := range spec.Kubeadm.IgnorePreflightErrors {
		set[e] = true
	}
	if len(set) == 0 {
		return nil
	}
	return slices.Sorted(maps.Keys(set))
}
