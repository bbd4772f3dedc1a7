package manifests

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/facts"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// Test secrets: every one must stay out of what people read.
const (
	testVRRPPassword = "Xy7pQ2wz"
	testHashKey      = "test-hash-key"
)

func testCredential(env string) string { return "secret-value-of-" + env }

// rendered is everything one spec renders: per-host files and cluster files.
type rendered struct {
	spec    *v1alpha1.Cluster
	hosts   map[string][]File
	cluster []File
	secrets []string
}

// specFiles lists the example specs in configs/ and the test specs in testdata/specs.
func specFiles(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, g := range []string{"../../configs/*.yaml", "testdata/specs/*.yaml"} {
		m, err := filepath.Glob(g)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m...)
	}
	if len(out) < 10 {
		t.Fatalf("found only %d specs", len(out))
	}
	return out
}

func goldenName(specPath string) string {
	name := strings.TrimSuffix(filepath.Base(specPath), ".yaml")
	if strings.Contains(specPath, "configs") {
		return "configs-" + name
	}
	return name
}

// renderSpec loads, defaults and validates a spec, then renders it with assumed facts. Local inputs
// (CA files, cloud configs, manifests) are read from testdata/inputs by their base name.
func renderSpec(t *testing.T, specPath string) rendered {
	t.Helper()
	c, err := v1alpha1.LoadFile(specPath)
	if err != nil {
		t.Fatal(err)
	}
	c.Default()
	if errs, _ := v1alpha1.Validate(c); len(errs) > 0 {
		t.Fatalf("%s: %v", specPath, errs.ToAggregate())
	}
	inputs, err := filepath.Abs("testdata/inputs")
	if err != nil {
		t.Fatal(err)
	}
	// Every local file the spec names is a test input of the same base name.
	flatten := func(p *string) {
		if *p != "" && !v1alpha1.IsURL(*p) {
			*p = filepath.Join(inputs, filepath.Base(*p))
		}
	}
	s := &c.Spec
	for _, eps := range s.Images.Mirrors {
		for i := range eps {
			flatten(&eps[i].CAFile)
		}
	}
	flatten(&s.CloudProvider.CloudConfigFile)
	flatten(&s.Install.PackageRepositoryKeyFile)
	flatten(&s.Install.ChecksumsFile)
	flatten(&s.CNI.Manifest)
	for i := range s.Addons {
		flatten(&s.Addons[i].Manifest)
	}
	in, err := LoadInputs(context.Background(), s, LoadOptions{
		Getenv:       testCredential,
		VRRPPassword: testVRRPPassword,
		HashKey:      []byte(testHashKey),
	})
	if err != nil {
		t.Fatalf("%s: %v", specPath, err)
	}
	r := rendered{spec: c, hosts: map[string][]File{}, secrets: []string{testVRRPPassword, "openstack-secret-pw", "pa55"}}
	for _, env := range s.CloudProvider.CredentialsEnv {
		r.secrets = append(r.secrets, testCredential(env))
	}
	for _, h := range s.Hosts {
		// As create first writes them: kube-vip on the first control plane before init.
		files, err := RenderHostFiles(HostInput{Spec: s, Host: h, Facts: facts.Assumed(s, h), Inputs: in})
		if err != nil {
			t.Fatalf("%s: host %s: %v", specPath, h.Name, err)
		}
		r.hosts[h.Name] = files.All()
	}
	if r.cluster, err = ClusterFiles(s, in); err != nil {
		t.Fatalf("%s: %v", specPath, err)
	}
	return r
}

// tree lays the rendered files out as `installer render` does: hosts/<host>/rootfs/<path>, cluster/<path>.
func (r rendered) tree() map[string]File {
	out := map[string]File{}
	for h, files := range r.hosts {
		for _, f := range files {
			out[path.Join("hosts", h, "rootfs", f.Path)] = f
		}
	}
	for _, f := range r.cluster {
		out[path.Join("cluster", f.Path)] = f
	}
	return out
}

// TestGolden compares what people read of every rendered file (secrets masked) with the golden
// files, plus one index per spec with each file's mode and sensitivity. go test -run TestGolden -update
// rewrites them.
func TestGolden(t *testing.T) {
	for _, sp := range specFiles(t) {
		t.Run(goldenName(sp), func(t *testing.T) {
			r := renderSpec(t, sp)
			dir := filepath.Join("testdata", "golden", goldenName(sp))
			tree := r.tree()
			var index bytes.Buffer
			names := make([]string, 0, len(tree))
			for n := range tree {
				names = append(names, n)
			}
			sort.Strings(names)
			got := map[string][]byte{}
			for _, n := range names {
				f := tree[n]
				fmt.Fprintf(&index, "%s %04o sensitive=%t\n", n, f.Mode, f.Sensitive)
				got[n] = f.Display()
				for _, s := range r.secrets {
					if bytes.Contains(f.Display(), []byte(s)) {
						t.Errorf("%s shows the secret %q", n, s)
					}
				}
				if f.Sensitive && f.Mode&0o077 != 0 {
					t.Errorf("%s is sensitive but mode %04o", n, f.Mode)
				}
			}
			got["INDEX"] = index.Bytes()
			if *update {
				if err := os.RemoveAll(dir); err != nil {
					t.Fatal(err)
				}
				for n, b := range got {
					p := filepath.Join(dir, filepath.FromSlash(n))
					if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(p, b, 0o644); err != nil {
						t.Fatal(err)
					}
				}
				return
			}
			seen := map[string]bool{}
			err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					return err
				}
				rel, _ := filepath.Rel(dir, p)
				rel = filepath.ToSlash(rel)
				seen[rel] = true
				want, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				if g, ok := got[rel]; !ok {
					t.Errorf("%s: golden file no longer rendered", rel)
				} else if !bytes.Equal(g, want) {
					t.Errorf("%s differs from the golden file (go test -run TestGolden -update):\n%s", rel, g)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			for n := range got {
				if !seen[n] {
					t.Errorf("%s: rendered but has no golden file (go test -run TestGolden -update)", n)
				}
			}
		})
	}
}
