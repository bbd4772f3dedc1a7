package manifests

import (
	"strings"
	"testing"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
)

// apply removes a registry's hosts.toml only when it starts with WrittenByMarker: every one the
// installer writes must.
func TestHostsTomlStartsWithTheMarker(t *testing.T) {
	spec := &v1alpha1.ClusterSpec{Images: v1alpha1.Images{Mirrors: map[string][]v1alpha1.MirrorEndpoint{
		"docker.io": {{URL: "https://mirror.example.com"}}, "example.com:5000": {{URL: "http://10.0.0.1:5000", SkipVerify: true}}}}}
	files, err := registryHosts(spec, Inputs{})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 {
		t.Fatalf("%d files", len(files))
	}
	for _, f := range files {
		if !strings.HasPrefix(string(f.Content), WrittenByMarker) {
			t.Errorf("%s starts with %q", f.Path, strings.SplitN(string(f.Content), "\n", 2)[0])
		}
	}
}
