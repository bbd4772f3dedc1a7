package versions

import (
	"strings"
	"testing"
)

func TestLookup(t *testing.T) {
	for _, v := range []string{"v1.34.10", "1.34.10", "v1.35.8"} {
		if _, ok := Lookup(v); !ok {
			t.Errorf("Lookup(%q) not found", v)
		}
	}
	for _, v := range []string{"v1.34", "v1.34.11", "v1.36.4", ""} {
		if _, ok := Lookup(v); ok {
			t.Errorf("Lookup(%q) found an unsupported version", v)
		}
	}
	r, _ := Lookup("v1.35.8")
	if r.Minor() != "v1.35" || r.Etcd != "3.6.6-0" || r.CoreDNS != "v1.13.1" {
		t.Errorf("v1.35.8 = %+v", r)
	}
	if Default().Kubernetes != "v1.35.8" || Oldest().Kubernetes != "v1.34.10" {
		t.Errorf("Default %s, Oldest %s", Default().Kubernetes, Oldest().Kubernetes)
	}
	if SupportedList() != "v1.34.10, v1.35.8" {
		t.Errorf("SupportedList = %q", SupportedList())
	}
	rs := Releases()
	rs[0].Kubernetes = "mutated"
	if Oldest().Kubernetes != "v1.34.10" {
		t.Error("Releases must return a copy")
	}
}

// The package versions follow pkgs.k8s.io's naming, <upstream version>-<revision> ("1.36.0-1.1"), and
// package exactly the crictl and CNI plugin releases the binary path installs.
func TestPackageVersionsMatchUpstreamNaming(t *testing.T) {
	for _, r := range Releases() {
		for _, c := range []struct{ name, pkg, release string }{
			{"cri-tools", r.CRIToolsPackage, r.CRITools},
			{"kubernetes-cni", r.CNIPackage, r.CNIPlugins},
		} {
			if want := strings.TrimPrefix(c.release, "v") + "-" + r.PackageRevision; c.pkg != want {
				t.Errorf("%s: %s package %q, want %q", r.Kubernetes, c.name, c.pkg, want)
			}
		}
		if r.PackageRevision != "1.1" {
			t.Errorf("%s: revision %q; pkgs.k8s.io's debs are -1.1", r.Kubernetes, r.PackageRevision)
		}
	}
}
