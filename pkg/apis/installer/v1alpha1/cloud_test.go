package v1alpha1

import (
	"slices"
	"testing"
)

// TestCloudPresets checks the table both validation and pkg/manifests read.
func TestCloudPresets(t *testing.T) {
	seen := map[CloudProviderName]bool{}
	for _, p := range CloudPresets() {
		if p.Name == "" || p.Name == CloudNone || seen[p.Name] {
			t.Errorf("preset name %q is empty, none or repeated", p.Name)
		}
		seen[p.Name] = true
		if got, ok := CloudPresetFor(p.Name); !ok || got.Name != p.Name {
			t.Errorf("CloudPresetFor(%s) = %+v, %v", p.Name, got, ok)
		}
		// A preset either brings its image and --cloud-provider or takes both from the spec.
		if (p.Component == "") != p.NeedsImage || (p.Provider == "") != p.NeedsArgs {
			t.Errorf("%s: component %q, provider %q, needs image %v, needs args %v", p.Name, p.Component, p.Provider, p.NeedsImage, p.NeedsArgs)
		}
		if p.NeedsCloudConfig && p.ConfigKey == "" {
			t.Errorf("%s needs a cloud config but names no file for it", p.Name)
		}
		if keys := p.CredentialKeys(); !slices.IsSorted(keys) || len(slices.Compact(slices.Clone(keys))) != len(keys) {
			t.Errorf("%s: credential keys %v are not sorted and unique", p.Name, keys)
		}
		if (len(p.Credentials) > 0 || p.EnvFrom) && p.CredentialsSecret == "" {
			t.Errorf("%s takes credentials but names no Secret for them", p.Name)
		}
	}
	if _, ok := CloudPresetFor(CloudNone); ok {
		t.Error("none has a preset")
	}
	// The table is not shared: changing a returned preset changes no later one.
	p, _ := CloudPresetFor(CloudHetzner)
	p.Flags[0], p.Credentials[0].Key = "--changed", "changed"
	if again, _ := CloudPresetFor(CloudHetzner); again.Flags[0] == "--changed" || again.Credentials[0].Key == "changed" {
		t.Error("CloudPresetFor returned the table's own slices")
	}
}
