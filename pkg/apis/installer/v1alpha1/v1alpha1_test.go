package v1alpha1

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite golden files")

// loadValidate is the offline pipeline every command runs: strict load, defaults, validation.
// It returns the lines a user sees.
func loadValidate(data []byte) []string {
	c, err := Load(data)
	if err != nil {
		return strings.Split(err.Error(), "\n")
	}
	c.Default()
	errs, warns := Validate(c)
	var lines []string
	for _, e := range errs {
		lines = append(lines, e.Error())
	}
	for _, w := range warns {
		lines = append(lines, w.String())
	}
	return lines
}

func checkGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run go test -update to create it): %v", err)
	}
	if string(want) != string(got) {
		t.Errorf("%s differs (run go test -update after checking):\n--- want\n%s\n--- got\n%s", path, want, got)
	}
}

// TestInvalidSpecs pins the exact error list of every testdata/invalid-*.yaml (and the warnings of
// warnings-*.yaml) in a golden file beside it.
func TestInvalidSpecs(t *testing.T) {
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	for _, f := range files {
		base := filepath.Base(f)
		if !strings.HasPrefix(base, "invalid-") && !strings.HasPrefix(base, "warnings-") {
			continue
		}
		t.Run(base, func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			lines := loadValidate(data)
			if len(lines) == 0 {
				t.Fatalf("%s produced no errors or warnings", base)
			}
			if strings.HasPrefix(base, "warnings-") {
				for _, l := range lines {
					if !strings.HasPrefix(l, "warning: ") {
						t.Errorf("warnings file produced an error: %s", l)
					}
				}
			}
			checkGolden(t, strings.TrimSuffix(f, ".yaml")+".golden", []byte(strings.Join(lines, "\n")+"\n"))
		})
	}
}

// TestExampleConfigs loads, defaults and validates every example spec in configs/ (pure validation;
// the local files they name do not exist here) and pins the defaulted result.
func TestExampleConfigs(t *testing.T) {
	files, err := filepath.Glob("../../../../configs/*.yaml")
	if err != nil || len(files) < 6 {
		t.Fatalf("want at least 6 example specs, found %d (%v)", len(files), err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			c, err := Load(data)
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			c.Default()
			errs, warns := Validate(c)
			if len(errs) > 0 || len(warns) > 0 {
				t.Fatalf("example is not clean:\n%v\n%v", errs.ToAggregate(), warns)
			}
			out, err := yaml.Marshal(c)
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, filepath.Join("testdata", "defaulted-"+filepath.Base(f)), out)
		})
	}
}

// TestDefaultIsIdempotent: defaulting a defaulted spec changes nothing.
func TestDefaultIsIdempotent(t *testing.T) {
	files, _ := filepath.Glob("../../../../configs/*.yaml")
	for _, f := range files {
		data, _ := os.ReadFile(f)
		c, err := Load(data)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		c.Default()
		once, _ := yaml.Marshal(c)
		c.Default()
		twice, _ := yaml.Marshal(c)
		if string(once) != string(twice) {
			t.Errorf("%s: Default is not idempotent:\n%s\n---\n%s", f, once, twice)
		}
	}
}

// TestDefaultVersionGetsItsV: "1.37.2" (kubeadm's and the repositories' spelling) means v1.37.2.
func TestDefaultVersionGetsItsV(t *testing.T) {
	c := &Cluster{Spec: ClusterSpec{KubernetesVersion: "1.37.2"}}
	c.Default()
	if c.Spec.KubernetesVersion != "v1.37.2" {
		t.Errorf("kubernetesVersion %q, want v1.37.2", c.Spec.KubernetesVersion)
	}
	c.Default()
	if c.Spec.KubernetesVersion != "v1.37.2" {
		t.Errorf("second Default: %q", c.Spec.KubernetesVersion)
	}
}

func TestDefaults(t *testing.T) {
	c := &Cluster{APIVersion: APIVersion, Kind: Kind, Metadata: ObjectMeta{Name: "x"}, Spec: ClusterSpec{
		Hosts: []Host{
			{Name: "w1", Address: "10.0.0.2", Role: RoleWorker},
			{Name: "cp1", Address: "203.0.113.1", PrivateAddress: "10.0.0.1", Role: RoleControlPlane},
		},
	}}
	c.Default()
	s := c.Spec
	checks := []struct{ name, got, want string }{
		{"kubernetesVersion", s.KubernetesVersion, "v1.37.2"},
		{"endpoint host = first control plane's private address", s.ControlPlaneEndpoint.Host, "10.0.0.1"},
		{"loadBalancer.type", string(s.LoadBalancer.Type), "none"},
		{"podSubnet", s.Networking.PodSubnet, "10.244.0.0/16"},
		{"serviceSubnet", s.Networking.ServiceSubnet, "10.96.0.0/12"},
		{"dnsDomain", s.Networking.DNSDomain, "cluster.local"},
		{"ssh.user", s.SSH.User, "root"},
		{"ssh.hostKeyPolicy", string(s.SSH.HostKeyPolicy), "strict"},
		{"privateAddress defaults to address", s.Hosts[0].PrivateAddress, "10.0.0.2"},
		{"install.source", string(s.Install.Source), "package"},
		{"images.repository", s.Images.Repository, "registry.k8s.io"},
		{"cni.plugin", string(s.CNI.Plugin), "flannel"},
		{"cloudProvider.name", string(s.CloudProvider.Name), "none"},
		{"kubeProxy.mode", s.KubeProxy.Mode, "iptables"},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %q, want %q", ch.name, ch.got, ch.want)
		}
	}
	if s.ControlPlaneEndpoint.Port != 6443 || s.SSH.Port != 22 || s.SSH.Agent == nil || !*s.SSH.Agent {
		t.Errorf("port %d, ssh port %d, agent %v", s.ControlPlaneEndpoint.Port, s.SSH.Port, s.SSH.Agent)
	}

	ha := &Cluster{Spec: ClusterSpec{LoadBalancer: LoadBalancer{Type: LoadBalancerKeepalivedHAProxy, VIP: "10.0.0.100"},
		Hosts: []Host{{Name: "cp1", Address: "10.0.0.1", Role: RoleControlPlane}}}}
	ha.Default()
	if ha.Spec.ControlPlaneEndpoint.Host != "10.0.0.100" || ha.Spec.ControlPlaneEndpoint.Port != 8443 || ha.Spec.LoadBalancer.VirtualRouterID != 51 {
		t.Errorf("keepalived-haproxy endpoint = %+v, router id %d; want VIP:8443, 51", ha.Spec.ControlPlaneEndpoint, ha.Spec.LoadBalancer.VirtualRouterID)
	}
	bastion := &Cluster{Spec: ClusterSpec{SSH: SSH{User: "ops", KeyFile: "/k", Bastion: &Bastion{Address: "b"}}}}
	bastion.Default()
	if b := bastion.Spec.SSH.Bastion; b.User != "ops" || b.KeyFile != "/k" || b.Port != 22 {
		t.Errorf("bastion defaults = %+v", b)
	}
}

func TestDNSServiceIP(t *testing.T) {
	tests := []struct{ subnet, want string }{
		{"10.96.0.0/12", "10.96.0.10"},
		{"172.20.0.0/16", "172.20.0.10"},
		{"10.0.0.0/28", "10.0.0.10"},
		{"fd00:10:96::/112", "fd00:10:96::a"},
	}
	for _, tt := range tests {
		ip, err := DNSServiceIP(tt.subnet)
		if err != nil || ip.String() != tt.want {
			t.Errorf("DNSServiceIP(%s) = %v, %v; want %s", tt.subnet, ip, err, tt.want)
		}
	}
	if _, err := DNSServiceIP("10.0.0.0/29"); err == nil || !strings.Contains(err.Error(), "too small") {
		t.Errorf("a /29 has no 10th address; got %v", err)
	}
}

func TestEffectiveSSH(t *testing.T) {
	s := ClusterSpec{SSH: SSH{User: "root", Port: 22, KeyFile: "/a"}}
	h := Host{Name: "w1", SSH: &HostSSH{User: "ubuntu", Port: 2222}}
	e := s.EffectiveSSH(h)
	if e.User != "ubuntu" || e.Port != 2222 || e.KeyFile != "/a" {
		t.Errorf("EffectiveSSH = %+v", e)
	}
}

func TestMirrorEndpointForms(t *testing.T) {
	c, err := Load([]byte(`apiVersion: installer.dev/v1alpha1
kind: Cluster
metadata: {name: m}
spec:
  hosts: [{name: cp1, address: 10.0.0.1, role: control-plane}]
  images:
    mirrors:
      registry.k8s.io: [http://10.0.0.5:5000, {url: "https://m.example.com", caFile: /ca.pem}]
`))
	if err != nil {
		t.Fatal(err)
	}
	got := c.Spec.Images.Mirrors["registry.k8s.io"]
	if len(got) != 2 || got[0].URL != "http://10.0.0.5:5000" || got[1].URL != "https://m.example.com" || got[1].CAFile != "/ca.pem" {
		t.Errorf("mirrors = %+v", got)
	}
}

// TestSpecSizeLimits: a file over MaxSpecBytes and a spec over MaxHosts hosts get one clear error
// each, quickly (security review, low).
func TestSpecSizeLimits(t *testing.T) {
	big := filepath.Join(t.TempDir(), "big.yaml")
	if err := os.WriteFile(big, append([]byte("apiVersion: installer.dev/v1alpha1\nkind: Cluster\n# "), bytes.Repeat([]byte("x"), MaxSpecBytes)...), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadFile(big); err == nil || !strings.Contains(err.Error(), "larger than 4 MiB") {
		t.Errorf("big file: %v", err)
	}
	c := &Cluster{APIVersion: APIVersion, Kind: Kind, Metadata: ObjectMeta{Name: "many"}}
	for i := range MaxHosts + 1 {
		c.Spec.Hosts = append(c.Spec.Hosts, Host{Name: fmt.Sprintf("h%d", i), Address: fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255), Role: RoleWorker})
	}
	c.Default()
	errs, _ := Validate(c)
	found := false
	for _, e := range errs {
		found = found || (e.Field == "spec.hosts" && strings.Contains(e.Error(), "must have at most 5000 items"))
	}
	if !found {
		t.Errorf("%d hosts: %v", len(c.Spec.Hosts), errs.ToAggregate())
	}
}

// TestLoadBOMAndMergeKeys pins the outcomes decided for two malformed-looking inputs of the
// security review: a UTF-8 byte-order mark (editors on Windows write one) is accepted, and YAML
// merge keys are YAML: a host merged from another gets its fields.
func TestLoadBOMAndMergeKeys(t *testing.T) {
	bom := "\xef\xbb\xbfapiVersion: installer.dev/v1alpha1\nkind: Cluster\nmetadata: {name: bom}\nspec:\n  hosts:\n    - {name: cp1, address: 10.0.0.1, role: control-plane}\n"
	c, err := Load([]byte(bom))
	if err != nil || c.Metadata.Name != "bom" {
		t.Errorf("BOM: %v %+v", err, c)
	}
	merge := `apiVersion: installer.dev/v1alpha1
kind: Cluster
metadata: {name: merge}
spec:
  hosts:
    - &cp {name: cp1, address: 10.0.0.1, role: control-plane}
    - <<: *cp
      name: cp2
      address: 10.0.0.2
`
	c, err = Load([]byte(merge))
	if err != nil || len(c.Spec.Hosts) != 2 || c.Spec.Hosts[1].Role != RoleControlPlane || c.Spec.Hosts[1].Address != "10.0.0.2" {
		t.Errorf("merge keys: %v %+v", err, c)
	}
}
