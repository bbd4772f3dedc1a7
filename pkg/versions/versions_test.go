package versions

import (
	"strings"
	"testing"

	utilversion "k8s.io/apimachinery/pkg/util/version"
)

func TestLookup(t *testing.T) {
	for _, v := range []string{"v1.35.8", "1.36.5", "v1.37.2"} {
		if _, ok := Lookup(v); !ok {
			t.Errorf("Lookup(%q) not found", v)
		}
	}
	for _, v := range []string{"v1.34.10", "v1.37", "v1.37.3", "v1.36.4", ""} {
		if _, ok := Lookup(v); ok {
			t.Errorf("Lookup(%q) found an unsupported version", v)
		}
	}
	r, _ := Lookup("v1.37.2")
	if r.Minor() != "v1.37" || r.Etcd != "3.7.0-0" || r.CoreDNS != "v1.14.6" || r.Pause != "3.10.2" {
		t.Errorf("v1.37.2 = %+v", r)
	}
	if Default().Kubernetes != "v1.37.2" || Oldest().Kubernetes != "v1.35.8" {
		t.Errorf("Default %s, Oldest %s", Default().Kubernetes, Oldest().Kubernetes)
	}
	if SupportedList() != "v1.35.8, v1.36.5, v1.37.2" {
		t.Errorf("SupportedList = %q", SupportedList())
	}
	rs := Releases()
	rs[0].Kubernetes = "mutated"
	if Oldest().Kubernetes != "v1.35.8" {
		t.Error("Releases must return a copy")
	}
}

// One release per minor, oldest first, consecutive minors: the upgrade chain needs every step.
func TestOneReleasePerConsecutiveMinor(t *testing.T) {
	rs := Releases()
	for i := 1; i < len(rs); i++ {
		prev, cur := utilversion.MustParseSemantic(rs[i-1].Kubernetes), utilversion.MustParseSemantic(rs[i].Kubernetes)
		if cur.Minor() != prev.Minor()+1 {
			t.Errorf("%s follows %s: minors must be consecutive", rs[i].Kubernetes, rs[i-1].Kubernetes)
		}
	}
	for _, r := range rs {
		if r.EndOfLife == "" || r.MinContainerd == "" {
			t.Errorf("%s: end of life %q, minimum containerd %q", r.Kubernetes, r.EndOfLife, r.MinContainerd)
		}
		if !ContainerdAtLeast(Containerd().Containerd, r.MinContainerd) {
			t.Errorf("%s: the binary containerd %s is older than its minimum %s", r.Kubernetes, Containerd().Containerd, r.MinContainerd)
		}
	}
}

func TestRetiredMinor(t *testing.T) {
	for _, v := range []string{"v1.34.10", "1.34.0", "v1.34.3"} {
		r, ok := RetiredMinor(v)
		if !ok || r.Minor != "v1.34" || r.UpgradeTo != "v1.35.8" || r.EndOfLife != "2026-10-27" {
			t.Errorf("RetiredMinor(%q) = %+v, %v", v, r, ok)
		}
		if _, ok := Lookup(r.UpgradeTo); !ok {
			t.Errorf("a retired minor upgrades to %s, which is not supported", r.UpgradeTo)
		}
	}
	for _, v := range []string{"v1.35.8", "v1.33.1", "garbage", ""} {
		if _, ok := RetiredMinor(v); ok {
			t.Errorf("RetiredMinor(%q) reported retired", v)
		}
	}
}

func TestContainerdAtLeast(t *testing.T) {
	for _, c := range []struct {
		version, min string
		want         bool
	}{
		{"1.6.20", "v1.6.0", true},
		{"1.6.20~ds1-1+deb12u3", "v2.0.0", false},
		{"1.7.25", "v2.0.0", false},
		{"2.3.7", "v2.0.0", true},
		{"v2.0.0", "v2.0.0", true},
		{"2.0.0-rc.1", "v2.0.0", true},
		{"", "v1.6.0", false},
		{"unknown", "v1.6.0", false},
	} {
		if got := ContainerdAtLeast(c.version, c.min); got != c.want {
			t.Errorf("ContainerdAtLeast(%q, %q) = %v, want %v", c.version, c.min, got, c.want)
		}
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
