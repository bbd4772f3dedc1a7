package build

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"installer.dev/installer/pkg/versions"
)

// Names of the conformance binaries a release's test unit builds (TestBinaries, TestBinary).
const (
	// E2ETest is k8s.io/kubernetes/test/e2e's test binary (the conformance suite).
	E2ETest = "e2e.test"
	// E2EKubeadmTest is k8s.io/kubernetes/test/e2e_kubeadm's test binary (the kubeadm suite).
	E2EKubeadmTest = "e2e_kubeadm.test"
	// Ginkgo is the ginkgo CLI at the version k8s.io/kubernetes's go.mod pins.
	Ginkgo = "ginkgo"
	// Agnhost is the e2e test images' multi-purpose server (k8s.io/kubernetes/test/images/agnhost).
	Agnhost = "agnhost"
	// SampleAPIServer is k8s.io/sample-apiserver's command (the aggregator conformance test's image).
	SampleAPIServer = "sample-apiserver"
	// NoNewPrivs is test/images/nonewprivs's nnp (the nonewprivs image's setuid program).
	NoNewPrivs = "nnp"
)

// testUnits are the units of a release's conformance binaries.
func testUnits(r versions.Release) []*unit {
	// nnp is one stdlib-only file: copied out of the module into a wrapper of its own (seconds),
	// rather than added to the suite's unit.
	nnp := &unit{
		ID: "nonewprivs-" + r.Kubernetes, Module: "lab.local/nnpbuild", GoLine: "go 1.26",
		Derived: []derivedFile{{Dest: "nnp/main.go", Module: "k8s.io/kubernetes", Version: r.Kubernetes, File: "test/images/nonewprivs/nnp.go"}},
		Tools:   []tool{{Name: NoNewPrivs, Package: "./nnp", LDFlags: ldStrip}},
	}
	return []*unit{testUnit(r), nnp}
}

// testUnit builds the conformance suite of one release in a wrapper module of its own, so the
// Kubernetes commands' unit (and `make lab`) never pays for it. go mod tidy keeps only what main
// packages import; `go get -t` adds the test-only dependencies of the two suites.
func testUnit(r versions.Release) *unit {
	v := r.Kubernetes
	ld := k8sLDFlags(r)
	return &unit{
		ID:      "kubernetes-test-" + v,
		Module:  "lab.local/k8stestbuild",
		K8s:     v,
		Require: []string{"k8s.io/kubernetes " + v},
		PostTidy: [][]string{
			{"get", "-t", "k8s.io/kubernetes/test/e2e@" + v, "k8s.io/kubernetes/test/e2e_kubeadm@" + v},
		},
		// The Kubernetes commands' tags, as upstream's hack/lib/golang.sh builds its test binaries:
		// with the same tags (and CGO_ENABLED=0) Go's build cache already holds every package the
		// commands share with the suites, so only test code compiles. grpcnotrace alone, missing,
		// would recompile everything that imports grpc.
		Tools: []tool{
			{Name: E2EKubeadmTest, Package: "k8s.io/kubernetes/test/e2e_kubeadm", LDFlags: ld, Tags: k8sTags, Test: true},
			{Name: Ginkgo, Package: "github.com/onsi/ginkgo/v2/ginkgo", LDFlags: ldStrip},
			{Name: Agnhost, Package: "k8s.io/kubernetes/test/images/agnhost", LDFlags: ldStrip, Tags: k8sTags},
			{Name: E2ETest, Package: "k8s.io/kubernetes/test/e2e", LDFlags: ld, Tags: k8sTags, Test: true},
			{Name: SampleAPIServer, Package: "k8s.io/sample-apiserver", LDFlags: ld, Tags: k8sTags},
		},
	}
}

// TestNames lists the conformance binaries of a release, sorted.
func TestNames(kubernetesVersion string) ([]string, error) {
	r, ok := versions.Lookup(kubernetesVersion)
	if !ok {
		return nil, fmt.Errorf("kubernetes %s is not supported (supported: %s)", kubernetesVersion, versions.SupportedList())
	}
	var names []string
	for _, u := range testUnits(r) {
		for _, t := range u.Tools {
			names = append(names, t.Name)
		}
	}
	names = append(names, Busybox)
	sort.Strings(names)
	return names, nil
}

// TestBinaries builds (or finds cached) the conformance binaries of a release: e2e.test,
// e2e_kubeadm.test, ginkgo, and agnhost, sample-apiserver, nnp and busybox for the test images. They are not
// part of Set: `make lab` does not build them (about 5 min on 2 cores, even with Go's cache warm).
func (b *Builder) TestBinaries(ctx context.Context, kubernetesVersion string) (Set, error) {
	return b.testBinaries(ctx, kubernetesVersion, nil)
}

// TestBinary builds (or finds cached) one conformance binary of a release.
func (b *Builder) TestBinary(ctx context.Context, name, kubernetesVersion string) (string, error) {
	set, err := b.testBinaries(ctx, kubernetesVersion, []string{name})
	if err != nil {
		return "", err
	}
	return set.Path(name), nil
}

func (b *Builder) testBinaries(ctx context.Context, kubernetesVersion string, names []string) (Set, error) {
	r, ok := versions.Lookup(kubernetesVersion)
	if !ok {
		return Set{}, fmt.Errorf("kubernetes %s is not supported (supported: %s)", kubernetesVersion, versions.SupportedList())
	}
	set := Set{Release: r, Paths: map[string]string{}}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	for _, u := range testUnits(r) {
		var these []string
		for _, t := range u.Tools {
			if want[t.Name] {
				these = append(these, t.Name)
				delete(want, t.Name)
			}
		}
		if names != nil && len(these) == 0 {
			continue
		}
		paths, err := b.ensure(ctx, u, these)
		if err != nil {
			return Set{}, err
		}
		for n, p := range paths {
			set.Paths[n] = p
		}
	}
	if names == nil || want[Busybox] {
		p, err := b.BusyboxBinary(ctx)
		if err != nil {
			return Set{}, err
		}
		set.Paths[Busybox] = p
		delete(want, Busybox)
	}
	for n := range want {
		return Set{}, fmt.Errorf("no conformance binary %q for %s", n, kubernetesVersion)
	}
	return set, nil
}

// ModuleDir returns the directory of a module version in the Go module cache, downloading it
// first (the test images take static files from k8s.io/kubernetes's test/images).
func (b *Builder) ModuleDir(ctx context.Context, module, version string) (string, error) {
	cache, err := b.CacheDir()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(cache, "work")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("module %s@%s: %w", module, version, err)
	}
	dl, err := b.download(ctx, dir, module, version)
	if err != nil {
		return "", err
	}
	return dl.Dir, nil
}
