package manifests

import (
	"bytes"
	"strings"
	"testing"

	toml "github.com/pelletier/go-toml/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/client-go/kubernetes/scheme"
)

// strictDecoder decodes YAML into client-go's typed objects and fails on unknown or duplicate fields.
func strictDecoder() runtime.Decoder {
	return json.NewSerializerWithOptions(json.DefaultMetaFactory, scheme.Scheme, scheme.Scheme,
		json.SerializerOptions{Yaml: true, Strict: true})
}

// yamlDocuments splits a multi-document YAML file.
func yamlDocuments(b []byte) [][]byte {
	var out [][]byte
	for _, d := range bytes.Split(b, []byte("\n---\n")) {
		if len(bytes.TrimSpace(d)) > 0 {
			out = append(out, d)
		}
	}
	return out
}

// TestRenderedDocumentsDecodeStrictly decodes every rendered Kubernetes document of every spec into
// its typed object (the real content, secrets included), and parses every TOML file back.
func TestRenderedDocumentsDecodeStrictly(t *testing.T) {
	dec := strictDecoder()
	for _, sp := range specFiles(t) {
		t.Run(goldenName(sp), func(t *testing.T) {
			r := renderSpec(t, sp)
			for name, f := range r.tree() {
				switch {
				case strings.HasSuffix(name, ".yaml") && !strings.HasSuffix(name, "crictl.yaml"):
					docs := yamlDocuments(f.Content)
					if len(docs) == 0 {
						t.Errorf("%s: no documents", name)
					}
					for i, d := range docs {
						obj, gvk, err := dec.Decode(d, nil, nil)
						if err != nil {
							t.Errorf("%s document %d: %v", name, i+1, err)
							continue
						}
						if strings.Contains(name, "/manifests/") {
							if _, ok := obj.(*corev1.Pod); !ok {
								t.Errorf("%s: static pod decodes as %v", name, gvk)
							}
						}
					}
				case strings.HasSuffix(name, ".toml"):
					var m map[string]any
					if err := toml.Unmarshal(f.Content, &m); err != nil {
						t.Errorf("%s: %v", name, err)
					}
				}
			}
		})
	}
}

// TestContainerdConfigParsesBack checks the settings the cluster depends on in both config versions.
func TestContainerdConfigParsesBack(t *testing.T) {
	for _, tc := range []struct {
		spec, host       string
		version          int64
		criImages, criRT string
		sandboxKey       string
		sandbox          string
		restrict         bool
	}{
		{"../../configs/single-control-plane.yaml", "w1", 3, "io.containerd.cri.v1.images", "io.containerd.cri.v1.runtime", "", "registry.k8s.io/pause:3.10.2", false},
		{"../../configs/china-mirror.yaml", "cp1", 3, "io.containerd.cri.v1.images", "io.containerd.cri.v1.runtime", "", "registry.aliyuncs.com/google_containers/pause:3.10.2", false},
		{"testdata/specs/kube-vip.yaml", "cp1", 3, "io.containerd.cri.v1.images", "io.containerd.cri.v1.runtime", "", "registry.k8s.io/pause:3.10.2", true},
		{"testdata/specs/package-mirror.yaml", "w1", 2, "io.containerd.grpc.v1.cri", "io.containerd.grpc.v1.cri", "sandbox_image", "registry.k8s.io/pause:3.10.1", false},
	} {
		t.Run(goldenName(tc.spec), func(t *testing.T) {
			r := renderSpec(t, tc.spec)
			var cfg []byte
			for _, f := range r.hosts[tc.host] {
				if f.Path == ContainerdConfigPath {
					cfg = f.Content
				}
			}
			var m map[string]any
			if err := toml.Unmarshal(cfg, &m); err != nil {
				t.Fatal(err)
			}
			get := func(keys ...string) any {
				var cur any = m
				for _, k := range keys {
					mm, ok := cur.(map[string]any)
					if !ok {
						return nil
					}
					cur = mm[k]
				}
				return cur
			}
			if v := get("version"); v != tc.version {
				t.Errorf("version = %v", v)
			}
			sandbox := get("plugins", tc.criImages, "sandbox_image")
			if tc.version == 3 {
				sandbox = get("plugins", tc.criImages, "pinned_images", "sandbox")
			}
			if sandbox != tc.sandbox {
				t.Errorf("sandbox image = %v, want %s", sandbox, tc.sandbox)
			}
			if v := get("plugins", tc.criRT, "containerd", "runtimes", "runc", "options", "SystemdCgroup"); v != true {
				t.Errorf("SystemdCgroup = %v", v)
			}
			if v := get("plugins", tc.criRT, "restrict_oom_score_adj"); v != tc.restrict {
				t.Errorf("restrict_oom_score_adj = %v", v)
			}
			if v := get("plugins", tc.criImages, "registry", "config_path"); v != ContainerdCertsDir {
				t.Errorf("config_path = %v", v)
			}
			if strings.Contains(tc.spec, "kube-vip") {
				// Merged from the spec's extra TOML, beside the rendered keys of the same table.
				if v := get("plugins", tc.criImages, "max_concurrent_downloads"); v != int64(5) {
					t.Errorf("merged max_concurrent_downloads = %v (%T)", v, v)
				}
				if v := get("debug", "level"); v != "info" {
					t.Errorf("merged debug.level = %v", v)
				}
			}
		})
	}
}
