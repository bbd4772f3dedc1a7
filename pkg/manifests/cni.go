package manifests

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
)

// DecodeManifest splits a multi-document YAML (or JSON) manifest into objects; List kinds are
// flattened and empty documents skipped. Every object must have apiVersion and kind.
func DecodeManifest(b []byte) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(b), 4096)
	var out []*unstructured.Unstructured
	for i := 0; ; i++ {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, fmt.Errorf("document %d: %w", i+1, err)
		}
		if len(m) == 0 {
			continue
		}
		u := &unstructured.Unstructured{Object: m}
		if u.GetAPIVersion() == "" || u.GetKind() == "" {
			return nil, fmt.Errorf("document %d: no apiVersion or kind", i+1)
		}
		if u.IsList() {
			l, err := u.ToList()
			if err != nil {
				return nil, fmt.Errorf("document %d: %w", i+1, err)
			}
			for j := range l.Items {
				out = append(out, &l.Items[j])
			}
			continue
		}
		out = append(out, u)
	}
}

// EncodeManifest writes objects as one multi-document YAML.
func EncodeManifest(objs []*unstructured.Unstructured) ([]byte, error) {
	var buf bytes.Buffer
	for i, o := range objs {
		b, err := yaml.Marshal(o.Object)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", o.GetKind(), o.GetName(), err)
		}
		if i > 0 {
			buf.WriteString("---\n")
		}
		buf.Write(b)
	}
	return buf.Bytes(), nil
}

// podSpecPath locates the pod spec inside each workload kind.
func podSpecPath(kind string) ([]string, bool) {
	switch kind {
	case "Pod":
		return []string{"spec"}, true
	case "DaemonSet", "Deployment", "StatefulSet", "ReplicaSet", "Job":
		return []string{"spec", "template", "spec"}, true
	case "CronJob":
		return []string{"spec", "jobTemplate", "spec", "template", "spec"}, true
	}
	return nil, false
}

// TransformCNI adapts a calico, cilium or custom manifest to the spec: the pod CIDR where the manifest
// carries it, image names through images.overrides, and DaemonSets tolerating every taint a new node
// can carry (the external CCM's uninitialized taint included). No Helm: the manifest is decoded into
// objects, changed and written back.
func TransformCNI(spec *v1alpha1.ClusterSpec, manifest []byte) ([]byte, error) {
	objs, err := DecodeManifest(manifest)
	if err != nil {
		return nil, err
	}
	if len(objs) == 0 {
		return nil, fmt.Errorf("the manifest holds no objects")
	}
	cidr := spec.Networking.PodSubnet
	for _, o := range objs {
		what := o.GetKind() + " " + o.GetName()
		switch o.GetKind() {
		case "ConfigMap":
			if err := configMapCIDR(o, cidr); err != nil {
				return nil, fmt.Errorf("%s: %w", what, err)
			}
		case "Installation":
			// The Tigera operator's Installation resource carries calico's IP pools.
			if err := installationCIDR(o, cidr); err != nil {
				return nil, fmt.Errorf("%s: %w", what, err)
			}
		}
		p, ok := podSpecPath(o.GetKind())
		if !ok {
			continue
		}
		ps, found, err := unstructured.NestedMap(o.Object, p...)
		if err != nil || !found {
			continue
		}
		for _, key := range []string{"initContainers", "containers", "ephemeralContainers"} {
			cs, _ := ps[key].([]any)
			for _, c := range cs {
				cm, ok := c.(map[string]any)
				if !ok {
					continue
				}
				if img, ok := cm["image"].(string); ok {
					cm["image"] = overrideImage(spec, img)
				}
				if spec.CNI.Plugin == v1alpha1.CNICalico && o.GetKind() == "DaemonSet" && cm["name"] == "calico-node" {
					setEnv(cm, "CALICO_IPV4POOL_CIDR", cidr)
				} else {
					replaceEnv(cm, "CALICO_IPV4POOL_CIDR", cidr)
				}
			}
		}
		if o.GetKind() == "DaemonSet" {
			ps["tolerations"] = tolerateAll(ps["tolerations"])
		}
		if err := unstructured.SetNestedMap(o.Object, ps, p...); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
	}
	return EncodeManifest(objs)
}

// overrideImage applies images.overrides to a name as written, or in its fully qualified form
// (calico/node:v3 is docker.io/calico/node:v3).
func overrideImage(spec *v1alpha1.ClusterSpec, img string) string {
	if to, ok := spec.Images.Overrides[img]; ok {
		return to
	}
	if to, ok := spec.Images.Overrides[qualifyImage(img)]; ok {
		return to
	}
	return img
}

func qualifyImage(img string) string {
	first, _, hasSlash := strings.Cut(img, "/")
	if !hasSlash {
		return "docker.io/library/" + img
	}
	if !strings.ContainsAny(first, ".:") && first != "localhost" {
		return "docker.io/" + img
	}
	return img
}

func setEnv(c map[string]any, name, value string) {
	if replaceEnv(c, name, value) {
		return
	}
	env, _ := c["env"].([]any)
	c["env"] = append(env, map[string]any{"name": name, "value": value})
}

func replaceEnv(c map[string]any, name, value string) bool {
	env, _ := c["env"].([]any)
	for _, e := range env {
		if em, ok := e.(map[string]any); ok && em["name"] == name {
			em["value"] = value
			delete(em, "valueFrom")
			return true
		}
	}
	return false
}

// tolerateAll makes sure a DaemonSet's pods run on every node: it adds Exists tolerations for the
// NoSchedule and NoExecute effects unless the list already tolerates everything.
func tolerateAll(v any) []any {
	ts, _ := v.([]any)
	has := map[string]bool{}
	for _, t := range ts {
		tm, ok := t.(map[string]any)
		if !ok || tm["operator"] != "Exists" || tm["key"] != nil && tm["key"] != "" {
			continue
		}
		e, _ := tm["effect"].(string)
		has[e] = true
	}
	if has[""] {
		return ts
	}
	for _, e := range []string{"NoSchedule", "NoExecute"} {
		if !has[e] {
			ts = append(ts, map[string]any{"operator": "Exists", "effect": e})
		}
	}
	return ts
}

func configMapCIDR(o *unstructured.Unstructured, cidr string) error {
	data, found, err := unstructured.NestedStringMap(o.Object, "data")
	if err != nil || !found {
		return nil
	}
	changed := false
	// cilium's cluster-pool IPAM.
	for _, k := range []string{"cluster-pool-ipv4-cidr"} {
		if _, ok := data[k]; ok {
			data[k], changed = cidr, true
		}
	}
	// flannel-style net-conf.json.
	if nc, ok := data["net-conf.json"]; ok {
		var m map[string]any
		if err := json.Unmarshal([]byte(nc), &m); err != nil {
			return fmt.Errorf("net-conf.json: %w", err)
		}
		if _, ok := m["Network"]; ok {
			m["Network"] = cidr
			b, err := json.MarshalIndent(m, "", "  ")
			if err != nil {
				return err
			}
			data["net-conf.json"], changed = string(b)+"\n", true
		}
	}
	if !changed {
		return nil
	}
	return unstructured.SetNestedStringMap(o.Object, data, "data")
}

func installationCIDR(o *unstructured.Unstructured, cidr string) error {
	pools, found, err := unstructured.NestedSlice(o.Object, "spec", "calicoNetwork", "ipPools")
	if err != nil || !found {
		return nil
	}
	for _, p := range pools {
		if pm, ok := p.(map[string]any); ok {
			pm["cidr"] = cidr
		}
	}
	return unstructured.SetNestedSlice(o.Object, pools, "spec", "calicoNetwork", "ipPools")
}

// addonFiles writes spec.addons as cluster/addons/NN-<name>.yaml after checking each decodes.
func addonFiles(spec *v1alpha1.ClusterSpec, in Inputs) ([]File, error) {
	if len(in.Addons) != len(spec.Addons) {
		return nil, fmt.Errorf("spec.addons: %d entries but %d were loaded", len(spec.Addons), len(in.Addons))
	}
	var files []File
	for i, a := range spec.Addons {
		objs, err := DecodeManifest(in.Addons[i])
		if err != nil {
			return nil, fmt.Errorf("spec.addons[%d] %s: %w", i, a.Manifest, err)
		}
		b, err := EncodeManifest(objs)
		if err != nil {
			return nil, fmt.Errorf("spec.addons[%d]: %w", i, err)
		}
		name := strings.TrimSuffix(strings.TrimSuffix(path.Base(a.Manifest), ".yaml"), ".yml")
		files = append(files, File{Path: fmt.Sprintf("addons/%02d-%s.yaml", i+1, name), Mode: 0o644, Content: b})
	}
	return files, nil
}
