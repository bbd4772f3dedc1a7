package kubeadm

import (
	"bytes"
	"maps"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	kubeletconfig "k8s.io/kubernetes/pkg/kubelet/apis/config"
	kubeletscheme "k8s.io/kubernetes/pkg/kubelet/apis/config/scheme"
	kubeletvalidation "k8s.io/kubernetes/pkg/kubelet/apis/config/validation"
	proxyconfig "k8s.io/kubernetes/pkg/proxy/apis/config"
	proxyscheme "k8s.io/kubernetes/pkg/proxy/apis/config/scheme"
	proxyvalidation "k8s.io/kubernetes/pkg/proxy/apis/config/validation"
)

// kubeadm does not validate component configs (componentconfigs.Validate is a placeholder): a bad
// kubelet or kube-proxy document would only show when those start. So each is decoded with the
// component's own scheme (which applies its defaults) and checked by its own validation package.
func validateComponents(t *testing.T, data []byte) error {
	t.Helper()
	for _, doc := range bytes.Split(data, []byte("\n---\n")) {
		switch {
		case bytes.Contains(doc, []byte("kind: KubeletConfiguration")):
			_, codecs, err := kubeletscheme.NewSchemeAndCodecs()
			if err != nil {
				t.Fatal(err)
			}
			obj, err := runtime.Decode(codecs.UniversalDecoder(), doc)
			if err != nil {
				return err
			}
			kc, ok := obj.(*kubeletconfig.KubeletConfiguration)
			if !ok {
				t.Fatalf("decoded %T", obj)
			}
			if err := kubeletvalidation.ValidateKubeletConfiguration(kc, utilfeature.DefaultFeatureGate); err != nil {
				return err
			}
		case bytes.Contains(doc, []byte("kind: KubeProxyConfiguration")):
			obj, err := runtime.Decode(proxyscheme.Codecs.UniversalDecoder(), doc)
			if err != nil {
				return err
			}
			pc, ok := obj.(*proxyconfig.KubeProxyConfiguration)
			if !ok {
				t.Fatalf("decoded %T", obj)
			}
			// kube-proxy fills these from its flags and the node at start-up.
			pc.HostnameOverride = "node"
			if err := proxyvalidation.Validate(pc).ToAggregate(); err != nil {
				return err
			}
		}
	}
	return nil
}

func TestComponentConfigsValidate(t *testing.T) {
	files := goldenFiles(t)
	n := 0
	for _, path := range slices.Sorted(maps.Keys(files)) {
		if !bytes.Contains(files[path], []byte("kind: InitConfiguration")) {
			continue
		}
		n++
		if err := validateComponents(t, files[path]); err != nil {
			t.Errorf("%s: %v", path, err)
		}
	}
	if n < 8 {
		t.Errorf("validated %d init renderings, want one per spec", n)
	}
	// Not vacuous: the same check rejects a broken document.
	init := files["testdata/golden/lone-control-plane/solo1.yaml"]
	for _, tc := range []struct{ from, to, want string }{
		{"maxPods: 200", "maxPods: -3", "maxPods"},
		{"mode: nftables", "mode: carrier-pigeon", "carrier-pigeon"},
	} {
		err := validateComponents(t, bytes.Replace(init, []byte(tc.from), []byte(tc.to), 1))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error about %s", tc.to, err, tc.want)
		}
	}
}
