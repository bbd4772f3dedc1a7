package kubeadm

import (
	"bytes"
	"maps"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	kubeadmapi "k8s.io/kubernetes/cmd/kubeadm/app/apis/kubeadm"
	kubeadmscheme "k8s.io/kubernetes/cmd/kubeadm/app/apis/kubeadm/scheme"
	"k8s.io/kubernetes/cmd/kubeadm/app/apis/kubeadm/validation"
	configutil "k8s.io/kubernetes/cmd/kubeadm/app/util/config"
)

// kubeadmValidate runs kubeadm's own loading and validation on a rendered file, in-process: the same
// code path as `kubeadm config validate` (conversion to the internal types, defaulting, the
// component configs) and then the validation package directly on the result.
func kubeadmValidate(t *testing.T, data []byte) error {
	t.Helper()
	// Exactly what `kubeadm config validate` runs (strict: unknown fields are errors).
	if err := configutil.ValidateConfig(data, false); err != nil {
		return err
	}
	switch {
	case bytes.Contains(data, []byte("kind: InitConfiguration")):
		cfg, err := configutil.BytesToInitConfiguration(data, true)
		if err != nil {
			return err
		}
		return validation.ValidateInitConfiguration(cfg).ToAggregate()
	case bytes.Contains(data, []byte("kind: JoinConfiguration")):
		cfg, err := configutil.BytesToJoinConfiguration(data, configutil.LoadOrDefaultConfigurationOptions{SkipCRIDetect: true})
		if err != nil {
			return err
		}
		return validation.ValidateJoinConfiguration(cfg).ToAggregate()
	case bytes.Contains(data, []byte("kind: UpgradeConfiguration")):
		// `kubeadm config validate` ignores UpgradeConfiguration; decode and validate it here.
		obj, err := runtime.Decode(kubeadmscheme.Codecs.UniversalDecoder(), data)
		if err != nil {
			return err
		}
		cfg, ok := obj.(*kubeadmapi.UpgradeConfiguration)
		if !ok {
			t.Fatalf("decoded %T", obj)
		}
		return validation.ValidateUpgradeConfiguration(cfg).ToAggregate()
	}
	t.Fatalf("no kubeadm document in:\n%s", data)
	return nil
}

func TestKubeadmValidatesEveryRendering(t *testing.T) {
	files := goldenFiles(t)
	for _, path := range slices.Sorted(maps.Keys(files)) {
		t.Run(path, func(t *testing.T) {
			if err := kubeadmValidate(t, files[path]); err != nil {
				t.Errorf("kubeadm rejects %s: %v\n%s", path, err, files[path])
			}
		})
	}
}

// TestKubeadmValidationIsNotVacuous: the harness above really rejects what kubeadm rejects.
func TestKubeadmValidationIsNotVacuous(t *testing.T) {
	files := goldenFiles(t)
	init := files["testdata/golden/lone-control-plane/solo1.yaml"]
	join := files["testdata/golden/ha-keepalived-haproxy/w1.yaml"]
	upgrade := files["testdata/golden/lone-control-plane/upgrade.yaml"]
	for _, tc := range []struct {
		name, from, to string
		data           []byte
		want           string
	}{
		{"pod subnet", "podSubnet: 10.32.0.0/16", "podSubnet: 10.32.0.0/33", init, "podSubnet"},
		{"advertise address", "advertiseAddress: 192.168.50.7", "advertiseAddress: not-an-ip", init, "not-an-ip"},
		{"cert SAN", "  - solo.example.com", "  - solo..example.com", init, "solo..example.com"},
		{"unknown field", "dnsDomain: solo.internal", "dnsDomains: solo.internal", init, "dnsDomains"},
		{"discovery without hash", "    caCertHashes:\n    - sha256:", "    xcaCertHashes:\n    - sha256:", join, "caCertHashes"},
		{"token", "token: abcdef.0123456789abcdef", "token: abcdef", join, "token"},
		{"upgrade pull policy", "apply:\n", "apply:\n  imagePullPolicy: Sometimes\n", upgrade, "imagePullPolicy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !bytes.Contains(tc.data, []byte(tc.from)) {
				t.Fatalf("%q not in the rendering", tc.from)
			}
			bad := bytes.Replace(tc.data, []byte(tc.from), []byte(tc.to), 1)
			err := kubeadmValidate(t, bad)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error about %s", err, tc.want)
			}
		})
	}
}
