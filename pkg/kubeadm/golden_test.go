package kubeadm

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"flag"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/facts"
	"installer.dev/installer/pkg/manifests"
	"installer.dev/installer/pkg/pki"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// goldenSpec is one spec the golden tests render: every example of configs/ plus the extra cases in
// testdata/specs.
type goldenSpec struct {
	name string // golden directory name
	path string
	spec *v1alpha1.Cluster
}

func goldenSpecs(t *testing.T) []goldenSpec {
	t.Helper()
	var out []goldenSpec
	for _, pattern := range []string{"../../configs/*.yaml", "testdata/specs/*.yaml"} {
		paths, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range paths {
			c, err := v1alpha1.LoadFile(p)
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			c.Default()
			if errs, _ := v1alpha1.Validate(c); len(errs) > 0 {
				t.Fatalf("%s: %v", p, errs.ToAggregate())
			}
			if errs := CheckSpec(&c.Spec); len(errs) > 0 {
				t.Fatalf("%s: %v", p, errs.ToAggregate())
			}
			out = append(out, goldenSpec{name: strings.TrimSuffix(filepath.Base(p), ".yaml"), path: p, spec: c})
		}
	}
	if len(out) < 8 {
		t.Fatalf("found only %d specs; configs/ moved?", len(out))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// goldenHash is the discovery hash of a fixed CA, so golden files do not change between runs.
func goldenHash(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("testdata/golden-ca.crt")
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return pki.DiscoveryHash(cert)
}

// goldenFiles renders every golden spec × host and returns golden path → displayed content, plus
// the upgrade documents per spec.
func goldenFiles(t *testing.T) map[string][]byte {
	t.Helper()
	hash := goldenHash(t)
	out := map[string][]byte{}
	for _, gs := range goldenSpecs(t) {
		s := &gs.spec.Spec
		for _, h := range s.Hosts {
			token, err := GenerateToken()
			if err != nil {
				t.Fatal(err)
			}
			f, err := File(Input{Spec: s, Host: h, Facts: facts.Assumed(s, h), Token: token, CACertHashes: []string{hash}})
			if err != nil {
				t.Fatalf("%s/%s: %v", gs.name, h.Name, err)
			}
			checkMasking(t, gs.name+"/"+h.Name, f, token)
			out[filepath.Join("testdata", "golden", gs.name, h.Name+".yaml")] = f.Display()
		}
		up, err := Upgrade(s, s.KubernetesVersion)
		if err != nil {
			t.Fatalf("%s: upgrade: %v", gs.name, err)
		}
		out[filepath.Join("testdata", "golden", gs.name, "upgrade.yaml")] = up
	}
	return out
}

// checkMasking: the real token is only in Content; what people read carries the placeholder and is
// otherwise the same document.
func checkMasking(t *testing.T, name string, f manifests.File, token string) {
	t.Helper()
	if !f.Sensitive || f.Mode != 0o600 || f.Path != ConfigPath {
		t.Errorf("%s: file %s mode %v sensitive %v, want %s 0600 sensitive", name, f.Path, f.Mode, f.Sensitive, ConfigPath)
	}
	if !bytes.Contains(f.Content, []byte(token)) {
		t.Errorf("%s: the uploaded content lacks the real token", name)
	}
	shown := f.Display()
	if bytes.Contains(shown, []byte(token)) || bytes.Contains(shown, []byte(strings.Split(token, ".")[1])) {
		t.Errorf("%s: the displayed content leaks the token", name)
	}
	if !bytes.Contains(shown, []byte(manifests.PlaceholderToken)) {
		t.Errorf("%s: the displayed content lacks the placeholder token", name)
	}
	if !bytes.Equal(bytes.ReplaceAll(f.Content, []byte(token), []byte(manifests.PlaceholderToken)), shown) {
		t.Errorf("%s: masked content differs from the real one by more than the token", name)
	}
}

func TestGolden(t *testing.T) {
	got := goldenFiles(t)
	if *update {
		if err := os.RemoveAll(filepath.Join("testdata", "golden")); err != nil {
			t.Fatal(err)
		}
	}
	for _, path := range slices.Sorted(maps.Keys(got)) {
		if *update {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, got[path], 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("%v (run go test ./pkg/kubeadm -run TestGolden -update)", err)
			continue
		}
		if !bytes.Equal(got[path], want) {
			t.Errorf("%s differs from the rendering (run with -update and review the diff):\n%s", path, got[path])
		}
	}
	// No stale golden file for a host or spec that no longer exists.
	existing, _ := filepath.Glob(filepath.Join("testdata", "golden", "*", "*.yaml"))
	for _, p := range existing {
		if _, ok := got[p]; !ok {
			t.Errorf("stale golden file %s", p)
		}
	}
}

// TestRenderIsStable: the same input renders byte-identical output (maps are never iterated into
// the output unsorted).
func TestRenderIsStable(t *testing.T) {
	a := goldenFiles(t)
	for i := 0; i < 5; i++ {
		b := goldenFiles(t)
		for k := range a {
			if !bytes.Equal(a[k], b[k]) {
				t.Fatalf("%s: rendering differs between runs", k)
			}
		}
	}
}
