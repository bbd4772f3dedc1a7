package build

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"installer.dev/installer/pkg/versions"
)

// TestStandinsBuildAndCache builds the small stand-in unit into a fresh cache (seconds: stdlib only),
// checks the pause program's -v contract, and that a second call is served from the cache.
func TestStandinsBuildAndCache(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	b := New(Options{CacheDir: t.TempDir()})
	v := versions.Oldest().Kubernetes
	pause, err := b.Binary(ctx, "pause", v)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(ctx, pause, "-v").CombinedOutput()
	if err != nil {
		t.Fatalf("pause -v: %v: %s", err, out)
	}
	if !strings.Contains(string(out), PauseVersion) {
		t.Errorf("pause -v = %q, want it to name %s", out, PauseVersion)
	}
	start := time.Now()
	again, err := b.Binary(ctx, "pause", v)
	if err != nil {
		t.Fatal(err)
	}
	if again != pause {
		t.Errorf("warm call returned %s, want %s", again, pause)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("warm call took %s, want well under a second", d)
	}
}

func TestUnknownBinaryAndVersion(t *testing.T) {
	b := New(Options{CacheDir: t.TempDir()})
	if _, err := b.Binary(context.Background(), "kubeadm", "v1.0.0"); err == nil || !strings.Contains(err.Error(), "not supported") {
		t.Errorf("unsupported version: err = %v", err)
	}
	if _, err := b.Binary(context.Background(), "no-such-tool", versions.Oldest().Kubernetes); err == nil || !strings.Contains(err.Error(), "no binary") {
		t.Errorf("unknown binary: err = %v", err)
	}
}

func TestK8sModLines(t *testing.T) {
	gomod := []byte(`module k8s.io/kubernetes

go 1.24.0

godebug default=go1.24

require (
	k8s.io/api v0.0.0
)

replace (
	k8s.io/api => ./staging/src/k8s.io/api
	k8s.io/kubelet => ./staging/src/k8s.io/kubelet
	github.com/x/y => github.com/x/y v1.0.0
)
`)
	head, repl, err := k8sModLines(gomod, stagingVersion("v1.36.5"))
	if err != nil {
		t.Fatal(err)
	}
	if head != "go 1.24.0\n\ngodebug default=go1.24\n" {
		t.Errorf("head = %q", head)
	}
	want := "\tk8s.io/api => k8s.io/api v0.36.5\n\tk8s.io/kubelet => k8s.io/kubelet v0.36.5\n"
	if repl != want {
		t.Errorf("replaces = %q, want %q", repl, want)
	}
}

// The suites must compile with the Kubernetes commands' build settings: then Go's build cache, warm
// from `make lab`, already holds every package they share, and only test code compiles (CI's time).
func TestSuitesShareTheCommandsBuildSettings(t *testing.T) {
	for _, r := range versions.Releases() {
		var cmds *unit
		for _, u := range unitsFor(r, map[string]string{}) {
			if u.ID == "kubernetes-"+r.Kubernetes {
				cmds = u
			}
		}
		if cmds == nil {
			t.Fatalf("%s: no kubernetes unit", r.Kubernetes)
		}
		want, _ := cmds.tool("kubelet")
		suite := testUnit(r)
		if suite.K8s != cmds.K8s {
			t.Errorf("%s: suite builds against %s, commands against %s", r.Kubernetes, suite.K8s, cmds.K8s)
		}
		for _, tl := range suite.Tools {
			if !strings.HasPrefix(tl.Package, "k8s.io/") {
				continue
			}
			if tl.Tags != want.Tags || tl.CGO != want.CGO {
				t.Errorf("%s: %s builds with tags %q cgo %v; the commands with %q cgo %v", r.Kubernetes, tl.Name, tl.Tags, tl.CGO, want.Tags, want.CGO)
			}
		}
	}
}
