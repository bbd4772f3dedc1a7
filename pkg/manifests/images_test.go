package manifests

import (
	"strings"
	"testing"

	"installer.dev/installer/pkg/versions"
)

func TestDefaultImagesTable(t *testing.T) {
	for _, r := range versions.Releases() {
		imgs := DefaultImages(r)
		names, comps := map[string]bool{}, map[string]bool{}
		for _, i := range imgs {
			if names[i.Name] || comps[i.Component] {
				t.Errorf("%s: duplicate %s / %s", r.Kubernetes, i.Name, i.Component)
			}
			names[i.Name], comps[i.Component] = true, true
			if i.Tag() == "" || !strings.Contains(i.Repository(), "/") {
				t.Errorf("%s: %q is not registry/repository:tag", r.Kubernetes, i.Name)
			}
			if len(i.Binaries) == 0 {
				t.Errorf("%s: %s names no binary", r.Kubernetes, i.Name)
			}
			for _, b := range i.Binaries {
				if !strings.HasPrefix(b, "/") {
					t.Errorf("%s: %s: binary %q is not absolute", r.Kubernetes, i.Name, b)
				}
			}
		}
		want := []string{
			"registry.k8s.io/kube-apiserver:" + r.Kubernetes,
			"registry.k8s.io/kube-controller-manager:" + r.Kubernetes,
			"registry.k8s.io/kube-scheduler:" + r.Kubernetes,
			"registry.k8s.io/kube-proxy:" + r.Kubernetes,
			"registry.k8s.io/coredns/coredns:" + r.CoreDNS,
			"registry.k8s.io/pause:" + r.Pause,
			"registry.k8s.io/etcd:" + r.Etcd,
		}
		if got := KubeadmImages(r); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("%s: kubeadm images = %v, want %v", r.Kubernetes, got, want)
		}
	}
}

func TestImageFor(t *testing.T) {
	r, _ := versions.Lookup("v1.36.5")
	i, err := ImageFor(r, "flannel")
	if err != nil {
		t.Fatal(err)
	}
	if i.Name != "ghcr.io/flannel-io/flannel:v0.28.10" || i.Binaries[0] != "/opt/bin/flanneld" {
		t.Errorf("flannel image = %+v", i)
	}
	if i.Repository() != "ghcr.io/flannel-io/flannel" || i.Tag() != "v0.28.10" {
		t.Errorf("repository/tag = %q %q", i.Repository(), i.Tag())
	}
	if _, err := ImageFor(r, "nope"); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("unknown component: err = %v", err)
	}
}
