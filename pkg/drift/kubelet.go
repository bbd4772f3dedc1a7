package drift

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	kubeproxyv1alpha1 "k8s.io/kube-proxy/config/v1alpha1"
	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"
	"sigs.k8s.io/yaml"
)

// kubeadmKubeletFields are the KubeletConfiguration fields kubeadm fills in itself when it stores
// the configuration (its defaults for a kubeadm node): a stored value there that the spec does not
// set is kubeadm's, not a setting the spec dropped.
var kubeadmKubeletFields = map[string]bool{
	"authentication": true, "authorization": true, "healthzBindAddress": true, "healthzPort": true,
	"rotateCertificates": true, "staticPodPath": true, "resolvConf": true, "containerRuntimeEndpoint": true,
	"cgroupDriver": true, "clusterDNS": true, "clusterDomain": true,
}

// KubeletConfig compares the KubeletConfiguration the spec renders (want) with the one the cluster
// stores (kubelet-config ConfigMap, or a node's config.yaml; have, YAML). Both go through the typed
// v1beta1 struct, so "60s" and "1m0s" or 120 and 120.0 are the same. A field want sets must hold
// its value; a field only have sets is a setting the spec dropped, unless kubeadm fills it in
// itself or it is empty. Returns one line per top-level field that differs, sorted.
func KubeletConfig(want map[string]any, have []byte) ([]string, error) {
	w, err := normalKubelet(want)
	if err != nil {
		return nil, fmt.Errorf("the spec's kubelet configuration: %w", err)
	}
	var hm map[string]any
	if err := yaml.Unmarshal(have, &hm); err != nil {
		return nil, fmt.Errorf("the cluster's kubelet configuration: %w", err)
	}
	h, err := normalKubelet(hm)
	if err != nil {
		return nil, fmt.Errorf("the cluster's kubelet configuration: %w", err)
	}
	var out []string
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if k == "apiVersion" || k == "kind" || reflect.DeepEqual(w[k], h[k]) {
			continue
		}
		if hv, ok := h[k]; ok && !isEmpty(hv) {
			out = append(out, fmt.Sprintf("~ %s: %s (now %s)", k, compact(w[k]), compact(hv)))
		} else {
			out = append(out, fmt.Sprintf("+ %s: %s", k, compact(w[k])))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(h)) {
		if _, set := want[k]; set || kubeadmKubeletFields[k] || isEmpty(h[k]) || reflect.DeepEqual(w[k], h[k]) {
			continue
		}
		out = append(out, fmt.Sprintf("- %s: %s", k, compact(h[k])))
	}
	slices.SortStableFunc(out, func(a, b string) int { return strings.Compare(a[2:], b[2:]) })
	return out, nil
}

// normalKubelet round-trips a kubelet configuration through the typed struct: field names checked,
// values in their canonical form, apiVersion and kind dropped.
func normalKubelet(m map[string]any) (map[string]any, error) {
	out, err := normal[kubeletv1beta1.KubeletConfiguration](m)
	delete(out, "apiVersion")
	delete(out, "kind")
	return out, err
}

// isEmpty reports whether a JSON value is what the typed struct writes for a field nobody set:
// "", 0, "0s", null, or a map or list of such values only. false is a value: only a pointer field
// writes it, so someone set it.
func isEmpty(v any) bool {
	switch t := v.(type) {
	case nil:
		return true
	case string:
		return t == "" || t == "0s" || t == "0"
	case float64:
		return t == 0
	case map[string]any:
		for _, e := range t {
			if !isEmpty(e) {
				return false
			}
		}
		return true
	case []any:
		return len(t) == 0
	}
	return false
}

func compact(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// KubeletRunning compares the fields a spec sets (set: its kubelet configuration document) with
// what a running kubelet reports (its configz), field by field; fields set does not name are not
// compared. Returns the fields that differ, sorted.
func KubeletRunning(set, configz map[string]any) ([]string, error) {
	w, err := normalKubelet(set)
	if err != nil {
		return nil, fmt.Errorf("the spec's kubelet configuration: %w", err)
	}
	h, err := normalKubelet(configz)
	if err != nil {
		return nil, fmt.Errorf("the kubelet's configz: %w", err)
	}
	var out []string
	for _, k := range slices.Sorted(maps.Keys(set)) {
		if k == "apiVersion" || k == "kind" {
			continue
		}
		if !reflect.DeepEqual(w[k], h[k]) {
			out = append(out, fmt.Sprintf("%s: %s (runs with %s)", k, compact(w[k]), compact(h[k])))
		}
	}
	return out, nil
}

// KubeProxyConfig compares the fields the spec sets in its KubeProxyConfiguration (want) with the
// configuration the cluster stores for kube-proxy (the kube-proxy ConfigMap's config.conf, YAML);
// fields want does not set are not compared. Returns the fields that differ, sorted.
func KubeProxyConfig(want map[string]any, have []byte) ([]string, error) {
	var hm map[string]any
	if err := yaml.Unmarshal(have, &hm); err != nil {
		return nil, fmt.Errorf("the cluster's kube-proxy configuration: %w", err)
	}
	w, err := normal[kubeproxyv1alpha1.KubeProxyConfiguration](want)
	if err != nil {
		return nil, fmt.Errorf("the spec's kube-proxy configuration: %w", err)
	}
	h, err := normal[kubeproxyv1alpha1.KubeProxyConfiguration](hm)
	if err != nil {
		return nil, fmt.Errorf("the cluster's kube-proxy configuration: %w", err)
	}
	var out []string
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if k == "apiVersion" || k == "kind" || reflect.DeepEqual(w[k], h[k]) {
			continue
		}
		out = append(out, fmt.Sprintf("%s: %s (the cluster has %s)", k, compact(w[k]), compact(h[k])))
	}
	return out, nil
}

// normal round-trips a configuration through its typed struct T: field names checked, values in
// their canonical form ("60s" and "1m0s", 120 and 120.0 are the same).
func normal[T any](m map[string]any) (map[string]any, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	var typed T
	if err := json.Unmarshal(b, &typed); err != nil {
		return nil, err
	}
	if b, err = json.Marshal(&typed); err != nil {
		return nil, err
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	return out, nil
}
