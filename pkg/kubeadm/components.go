package kubeadm

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"
	kubeproxyv1alpha1 "k8s.io/kube-proxy/config/v1alpha1"
	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"
	kubeletapis "k8s.io/kubelet/pkg/apis"
	kubeadmv1beta4 "k8s.io/kubernetes/cmd/kubeadm/app/apis/kubeadm/v1beta4"
	sigsjson "sigs.k8s.io/json"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/manifests"
	"installer.dev/installer/pkg/versions"
)

var specPath = field.NewPath("spec")

// kubeletConfiguration is the cluster-wide KubeletConfiguration given to `kubeadm init` (kubeadm
// stores it in the kubelet-config ConfigMap and every join and upgrade rewrites each node's
// /var/lib/kubelet/config.yaml from it). Derived values first, then spec.kubelet.config on top.
func kubeletConfiguration(spec *v1alpha1.ClusterSpec) (map[string]any, field.ErrorList) {
	base := map[string]any{
		"apiVersion": kubeletv1beta1.SchemeGroupVersion.String(),
		"kind":       "KubeletConfiguration",
		// containerd is configured with SystemdCgroup = true; both must agree.
		"cgroupDriver":  "systemd",
		"clusterDomain": spec.Networking.DNSDomain,
	}
	if ip, err := v1alpha1.DNSServiceIP(spec.Networking.ServiceSubnet); err == nil {
		base["clusterDNS"] = []any{ip.String()}
	}
	return mergeStrict(base, spec.Kubelet.Config, specPath.Child("kubelet", "config"), &kubeletv1beta1.KubeletConfiguration{})
}

// kubeProxyConfiguration is the KubeProxyConfiguration given to `kubeadm init`: the mode from
// spec.kubeProxy.mode and clusterCIDR from the pod subnet, then spec.kubeProxy.config on top.
func kubeProxyConfiguration(spec *v1alpha1.ClusterSpec) (map[string]any, field.ErrorList) {
	base := map[string]any{
		"apiVersion":  kubeproxyv1alpha1.SchemeGroupVersion.String(),
		"kind":        "KubeProxyConfiguration",
		"mode":        spec.KubeProxy.Mode,
		"clusterCIDR": spec.Networking.PodSubnet,
	}
	var errs field.ErrorList
	p := specPath.Child("kubeProxy", "config")
	if m, ok := spec.KubeProxy.Config["mode"]; ok && m != spec.KubeProxy.Mode {
		errs = append(errs, field.Invalid(p.Child("mode"), m, "set the mode with spec.kubeProxy.mode"))
	}
	doc, e := mergeStrict(base, spec.KubeProxy.Config, p, &kubeproxyv1alpha1.KubeProxyConfiguration{})
	return doc, append(errs, e...)
}

// apiVersion and kind belong to the renderer; the spec's map may not change them.
var reservedKeys = map[string]bool{"apiVersion": true, "kind": true}

// mergeStrict lays overlay over base (maps merged key by key, anything else replaced), decodes the
// result strictly into out (a pointer to the component config type) and returns the document to
// write: the typed value's own encoding, limited to the keys that were set, because the typed
// structs would otherwise spell out every zero value and pin what kubeadm and the component default.
// Every key of overlay is first decoded alone into a fresh value of out's type, strictly, so an
// unknown or mistyped key is reported at its own spec path.
func mergeStrict(base, overlay map[string]any, p *field.Path, out any) (map[string]any, field.ErrorList) {
	var errs field.ErrorList
	typ := reflect.TypeOf(out).Elem()
	for _, k := range slices.Sorted(maps.Keys(overlay)) {
		kp := p.Child(k)
		if reservedKeys[k] {
			errs = append(errs, field.Forbidden(kp, "set by the installer"))
			continue
		}
		data, err := json.Marshal(map[string]any{k: overlay[k]})
		if err != nil {
			errs = append(errs, field.Invalid(kp, overlay[k], err.Error()))
			continue
		}
		probe := reflect.New(typ).Interface()
		strict, err := sigsjson.UnmarshalStrict(data, probe)
		if err != nil {
			errs = append(errs, field.Invalid(kp, overlay[k], typeMessage(err)))
			continue
		}
		for _, se := range strict {
			path := kp
			if fe, ok := se.(sigsjson.FieldError); ok {
				path = p
				for _, part := range strings.Split(fe.FieldPath(), ".") {
					path = path.Child(part)
				}
			}
			errs = append(errs, &field.Error{Type: field.ErrorTypeNotSupported, Field: path.String(), BadValue: field.OmitValueType{},
				Detail: "unknown field of " + typ.Name()})
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	merged := merge(base, overlay)
	data, err := json.Marshal(merged)
	if err != nil {
		return nil, field.ErrorList{field.InternalError(p, err)}
	}
	if strict, err := sigsjson.UnmarshalStrict(data, out); err != nil || len(strict) > 0 {
		return nil, field.ErrorList{field.InternalError(p, fmt.Errorf("merged %s: %v %v", typ.Name(), err, strict))}
	}
	typed, err := json.Marshal(out)
	if err != nil {
		return nil, field.ErrorList{field.InternalError(p, err)}
	}
	var canonical map[string]any
	if err := json.Unmarshal(typed, &canonical); err != nil {
		return nil, field.ErrorList{field.InternalError(p, err)}
	}
	return project(canonical, merged), nil
}

// project keeps the keys of typed that set has, recursing where both are objects.
func project(typed, set map[string]any) map[string]any {
	out := map[string]any{}
	for k, sv := range set {
		tv, ok := typed[k]
		if !ok {
			continue
		}
		tm, tIsMap := tv.(map[string]any)
		sm, sIsMap := sv.(map[string]any)
		if tIsMap && sIsMap {
			out[k] = project(tm, sm)
			continue
		}
		out[k] = tv
	}
	return out
}

// typeMessage drops encoding/json's Go type names, which mean nothing to someone writing YAML.
func typeMessage(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, "cannot unmarshal "); i >= 0 {
		rest := msg[i+len("cannot unmarshal "):]
		if j := strings.Index(rest, " into"); j >= 0 {
			got := rest[:j]
			want := ""
			if k := strings.LastIndex(rest, " of type "); k >= 0 {
				want = rest[k+len(" of type "):]
			}
			return fmt.Sprintf("wrong type: got %s, want %s", got, want)
		}
	}
	return msg
}

func merge(base, overlay map[string]any) map[string]any {
	out := make(map[string]any, len(base)+len(overlay))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range overlay {
		if bm, ok := out[k].(map[string]any); ok {
			if om, ok := v.(map[string]any); ok {
				out[k] = merge(bm, om)
				continue
			}
		}
		out[k] = v
	}
	return out
}

// checkKubeletArgs refuses kubelet flags the renderer sets per host.
func checkKubeletArgs(spec *v1alpha1.ClusterSpec) field.ErrorList {
	var errs field.ErrorList
	p := specPath.Child("kubelet", "extraArgs")
	for _, k := range slices.Sorted(maps.Keys(spec.Kubelet.ExtraArgs)) {
		switch k {
		case flagNodeIP:
			errs = append(errs, field.Forbidden(p.Key(k), "set per host from spec.hosts[].privateAddress"))
		case flagNodeLabels:
			errs = append(errs, field.Forbidden(p.Key(k), "set per host from spec.hosts[].labels"))
		case flagCloudProvider:
			if spec.ExternalCCM() && spec.Kubelet.ExtraArgs[k] != "external" {
				errs = append(errs, field.Invalid(p.Key(k), spec.Kubelet.ExtraArgs[k], "with spec.cloudProvider set the kubelet runs with cloud-provider=external"))
			}
		}
	}
	return errs
}

// checkLabels refuses labels in the kubernetes.io and k8s.io namespaces that a kubelet may not set
// on its own Node (it would refuse to start); set those after the join instead.
func checkLabels(spec *v1alpha1.ClusterSpec) field.ErrorList {
	var errs field.ErrorList
	for i, h := range spec.Hosts {
		for _, k := range slices.Sorted(maps.Keys(h.Labels)) {
			ns := k
			if j := strings.Index(k, "/"); j >= 0 {
				ns = k[:j]
			} else {
				continue
			}
			restricted := ns == "kubernetes.io" || ns == "k8s.io" || strings.HasSuffix(ns, ".kubernetes.io") || strings.HasSuffix(ns, ".k8s.io")
			if restricted && !kubeletapis.IsKubeletLabel(k) {
				errs = append(errs, field.Invalid(specPath.Child("hosts").Index(i).Child("labels").Key(k), h.Labels[k],
					"the kubelet may not set labels in the kubernetes.io and k8s.io namespaces on itself (except kubelet's own); label the Node after it joins"))
			}
		}
	}
	return errs
}

// kubeadmImageOverrides maps spec.images.overrides of kubeadm's images onto what kubeadm can
// express: etcd and CoreDNS take their own repository and tag; the control-plane images, kube-proxy
// and pause only follow images.repository (pause is containerd's setting, rendered elsewhere).
func kubeadmImageOverrides(spec *v1alpha1.ClusterSpec) (etcd, dns kubeadmv1beta4.ImageMeta, errs field.ErrorList) {
	r, ok := versions.Lookup(spec.KubernetesVersion)
	if !ok {
		return etcd, dns, field.ErrorList{field.NotSupported(specPath.Child("kubernetesVersion"), spec.KubernetesVersion, []string{versions.SupportedList()})}
	}
	p := specPath.Child("images", "overrides")
	for _, img := range manifests.DefaultImages(r) {
		if !img.Kubeadm {
			continue
		}
		to, ok := spec.Images.Overrides[img.Name]
		if !ok {
			continue
		}
		switch img.Component {
		case "etcd", "coredns":
			meta, err := imageMeta(to, img.Component)
			if err != nil {
				errs = append(errs, field.Invalid(p.Key(img.Name), to, err.Error()))
				continue
			}
			if img.Component == "etcd" {
				etcd = meta
			} else {
				dns = meta
			}
		case "pause":
			// containerd's sandbox image; kubeadm 1.35 no longer passes it to the kubelet.
		default:
			errs = append(errs, field.Invalid(p.Key(img.Name), to, "kubeadm takes this image only from spec.images.repository"))
		}
	}
	return etcd, dns, errs
}

// imageMeta splits "registry/path/<name>:<tag>" into kubeadm's repository and tag; kubeadm appends
// the image name itself, so the last path element must be that name.
func imageMeta(ref, name string) (kubeadmv1beta4.ImageMeta, error) {
	colon := strings.LastIndex(ref, ":")
	slash := strings.LastIndex(ref, "/")
	if colon < slash || colon < 0 || slash < 0 || strings.Contains(ref, "@") {
		return kubeadmv1beta4.ImageMeta{}, fmt.Errorf("kubeadm needs <repository>/%s:<tag>", name)
	}
	if ref[slash+1:colon] != name {
		return kubeadmv1beta4.ImageMeta{}, fmt.Errorf("kubeadm appends the image name itself, so the image must be named %s (<repository>/%s:<tag>)", name, name)
	}
	return kubeadmv1beta4.ImageMeta{ImageRepository: ref[:slash], ImageTag: ref[colon+1:]}, nil
}
