package images

import (
	"testing"
)

// A trimmed copy of the shape of test/utils/image/manifest.go (v1.37): default registries, then one
// configs[...] line per image.
const manifestSample = `
func initReg() RegistryList {
	registry := RegistryList{
		GcAuthenticatedRegistry:  "gcr.io/authenticated-image-pulling",
		PromoterE2eRegistry:      "registry.k8s.io/e2e-test-images",
		GcRegistry:               "registry.k8s.io",
		PrivateRegistry:          "gcr.io/k8s-authenticated-test",
	}
	repoList := os.Getenv("KUBE_TEST_REPO_LIST")
	return registry
}

func initImageConfigs(list RegistryList) (map[ImageID]Config, map[ImageID]Config) {
	configs := map[ImageID]Config{}
	configs[Agnhost] = Config{list.PromoterE2eRegistry, "agnhost", "2.66.1"}
	configs[AgnhostPrivate] = Config{list.PrivateRegistry, "agnhost", "2.6"}
	configs[BusyBox] = Config{list.PromoterE2eRegistry, "busybox", "1.37.0-2"}
	configs[Pause] = Config{list.GcRegistry, "pause", "3.10.2"}
	configs[VolumeNFSServer] = Config{list.PromoterE2eRegistry, "volume/nfs", "1.6.0"}
`

func TestParseImageManifest(t *testing.T) {
	got, err := ParseImageManifest([]byte(manifestSample))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"Agnhost":         "registry.k8s.io/e2e-test-images/agnhost:2.66.1",
		"AgnhostPrivate":  "gcr.io/k8s-authenticated-test/agnhost:2.6",
		"BusyBox":         "registry.k8s.io/e2e-test-images/busybox:1.37.0-2",
		"Pause":           "registry.k8s.io/pause:3.10.2",
		"VolumeNFSServer": "registry.k8s.io/e2e-test-images/volume/nfs:1.6.0",
	}
	if len(got) != len(want) {
		t.Errorf("parsed %d images, want %d: %v", len(got), len(want), got)
	}
	for id, name := range want {
		if got[id] != name {
			t.Errorf("%s = %q, want %q", id, got[id], name)
		}
	}
	if _, err := ParseImageManifest([]byte("package image\n")); err == nil {
		t.Error("a manifest without image configs must be an error (the file changed shape)")
	}
	bad := manifestSample + "\tconfigs[Perl] = Config{list.NoSuchRegistry, \"perl\", \"5.26\"}\n"
	if _, err := ParseImageManifest([]byte(bad)); err == nil {
		t.Error("an image of a registry without a default must be an error")
	}
}

// Every image the lab builds or declines has exactly one entry: a recipe or a reason.
func TestTestRecipesAndReasonsAreDisjoint(t *testing.T) {
	for id := range testRecipes {
		if _, ok := TestImagesNotBuilt[id]; ok {
			t.Errorf("%s has a recipe and a reason not to build it", id)
		}
	}
	for id, reason := range TestImagesNotBuilt {
		if reason == "" {
			t.Errorf("%s: empty reason", id)
		}
	}
}
