package kubeadm

import (
	"bytes"
	"regexp"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	kubeadmv1beta4 "k8s.io/kubernetes/cmd/kubeadm/app/apis/kubeadm/v1beta4"
	"sigs.k8s.io/yaml"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/facts"
	"installer.dev/installer/pkg/manifests"
)

// spec builds a defaulted, validated spec from a YAML fragment of spec.
func spec(t *testing.T, body string) *v1alpha1.ClusterSpec {
	t.Helper()
	c, err := v1alpha1.Load([]byte("apiVersion: installer.dev/v1alpha1\nkind: Cluster\nmetadata: {name: t}\nspec:\n" + body))
	if err != nil {
		t.Fatal(err)
	}
	c.Default()
	if errs, _ := v1alpha1.Validate(c); len(errs) > 0 {
		t.Fatal(errs.ToAggregate())
	}
	return &c.Spec
}

const twoCPs = `
  hosts:
    - {name: cp1, address: 203.0.113.1, privateAddress: 10.0.0.1, role: control-plane}
    - {name: cp2, address: 203.0.113.2, privateAddress: 10.0.0.2, role: control-plane}
    - {name: cp3, address: 203.0.113.3, privateAddress: 10.0.0.3, role: control-plane}
    - {name: w1, address: 203.0.113.4, privateAddress: 10.0.0.4, role: worker}
`

func render(t *testing.T, s *v1alpha1.ClusterSpec, host string) []byte {
	t.Helper()
	h, ok := s.Host(host)
	if !ok {
		t.Fatalf("no host %s", host)
	}
	out, err := Render(Input{Spec: s, Host: h, Facts: facts.Assumed(s, h), Token: manifests.PlaceholderToken, CACertHashes: []string{"sha256:" + strings.Repeat("ab", 32)}})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// documents splits a rendering into its documents, decoded into v1beta4 types by kind.
func documents(t *testing.T, data []byte) (init *kubeadmv1beta4.InitConfiguration, cluster *kubeadmv1beta4.ClusterConfiguration, join *kubeadmv1beta4.JoinConfiguration, other []map[string]any) {
	t.Helper()
	for _, doc := range bytes.Split(data, []byte("\n---\n")) {
		var meta struct{ Kind string }
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			t.Fatal(err)
		}
		var err error
		switch meta.Kind {
		case "InitConfiguration":
			init = &kubeadmv1beta4.InitConfiguration{}
			err = yaml.UnmarshalStrict(doc, init)
		case "ClusterConfiguration":
			cluster = &kubeadmv1beta4.ClusterConfiguration{}
			err = yaml.UnmarshalStrict(doc, cluster)
		case "JoinConfiguration":
			join = &kubeadmv1beta4.JoinConfiguration{}
			err = yaml.UnmarshalStrict(doc, join)
		default:
			var m map[string]any
			err = yaml.Unmarshal(doc, &m)
			other = append(other, m)
		}
		if err != nil {
			t.Fatalf("%v\n%s", err, doc)
		}
	}
	return init, cluster, join, other
}

func TestKindFor(t *testing.T) {
	s := spec(t, twoCPs)
	for host, want := range map[string]Kind{"cp1": KindInit, "cp2": KindJoinControlPlane, "cp3": KindJoinControlPlane, "w1": KindJoinWorker} {
		h, _ := s.Host(host)
		if got := KindFor(s, h); got != want {
			t.Errorf("%s: %s, want %s", host, got, want)
		}
	}
}

func TestCertSANs(t *testing.T) {
	s := spec(t, `
  controlPlaneEndpoint: {host: api.example.com}
  loadBalancer: {type: keepalived-haproxy, vip: 10.0.0.100}
  certSANs: [api.example.com, 198.51.100.1, 10.0.0.1]
`+twoCPs)
	want := []string{"10.0.0.1", "10.0.0.100", "10.0.0.2", "10.0.0.3", "127.0.0.1", "198.51.100.1",
		"203.0.113.1", "203.0.113.2", "203.0.113.3", "api.example.com", "cp1", "cp2", "cp3", "localhost"}
	if got := CertSANs(s); !slices.Equal(got, want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
	_, cluster, _, _ := documents(t, render(t, s, "cp1"))
	if !slices.Equal(cluster.APIServer.CertSANs, want) {
		t.Errorf("rendered %v", cluster.APIServer.CertSANs)
	}
	if cluster.ControlPlaneEndpoint != "api.example.com:8443" {
		t.Errorf("endpoint %s, want api.example.com:8443", cluster.ControlPlaneEndpoint)
	}
}

func TestEndpointDefaults(t *testing.T) {
	for _, tc := range []struct{ name, body, want string }{
		{"first control plane", twoCPs, "10.0.0.1:6443"},
		{"keepalived VIP", "  loadBalancer: {type: keepalived-haproxy, vip: 10.0.0.100}\n" + twoCPs, "10.0.0.100:8443"},
		{"kube-vip VIP", "  loadBalancer: {type: kube-vip, vip: 10.0.0.100}\n" + twoCPs, "10.0.0.100:6443"},
		{"explicit port", "  controlPlaneEndpoint: {host: lb.example.com, port: 443}\n  loadBalancer: {type: external}\n" + twoCPs, "lb.example.com:443"},
		{"IPv6", "  controlPlaneEndpoint: {host: \"2001:db8::1\"}\n" + twoCPs, "[2001:db8::1]:6443"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := spec(t, tc.body)
			if got := ControlPlaneEndpoint(s); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
			_, _, join, _ := documents(t, render(t, s, "w1"))
			if join.Discovery.BootstrapToken.APIServerEndpoint != tc.want {
				t.Errorf("join discovery endpoint %s", join.Discovery.BootstrapToken.APIServerEndpoint)
			}
		})
	}
}

func TestTaints(t *testing.T) {
	cpTaint := corev1.Taint{Key: ControlPlaneTaintKey, Effect: corev1.TaintEffectNoSchedule}
	custom := corev1.Taint{Key: "dedicated", Value: "db", Effect: corev1.TaintEffectNoExecute}
	for _, tc := range []struct {
		name, body, host string
		want             []corev1.Taint
	}{
		{"control plane with workers", twoCPs, "cp1", []corev1.Taint{cpTaint}},
		{"joining control plane", twoCPs, "cp2", []corev1.Taint{cpTaint}},
		{"worker", twoCPs, "w1", []corev1.Taint{}},
		{"lone control plane", "  hosts: [{name: cp1, address: 10.0.0.1, role: control-plane}]\n", "cp1", []corev1.Taint{}},
		{"control planes without workers", "  hosts: [{name: cp1, address: 10.0.0.1, role: control-plane}, {name: cp2, address: 10.0.0.2, role: control-plane}, {name: cp3, address: 10.0.0.3, role: control-plane}]\n", "cp3", []corev1.Taint{}},
		{"own taints, sorted", "  hosts: [{name: cp1, address: 10.0.0.1, role: control-plane, taints: [{key: dedicated, value: db, effect: NoExecute}]}, {name: w1, address: 10.0.0.2, role: worker}]\n", "cp1", []corev1.Taint{custom, cpTaint}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := spec(t, tc.body)
			out := render(t, s, tc.host)
			init, _, join, _ := documents(t, out)
			var got []corev1.Taint
			if init != nil {
				got = init.NodeRegistration.Taints
			} else {
				got = join.NodeRegistration.Taints
			}
			if got == nil || !slices.Equal(got, tc.want) {
				t.Errorf("got %#v, want %#v", got, tc.want)
			}
			// An empty list must be written out: a missing one means kubeadm's default taint.
			if len(tc.want) == 0 && !bytes.Contains(out, []byte("taints: []")) {
				t.Errorf("no explicit empty taint list in:\n%s", out)
			}
		})
	}
}

func TestKubeletArgsAndCCM(t *testing.T) {
	args := func(list []kubeadmv1beta4.Arg) map[string]string {
		m := map[string]string{}
		for _, a := range list {
			m[a.Name] = a.Value
		}
		return m
	}
	plain := spec(t, twoCPs)
	ccm := spec(t, "  cloudProvider: {name: aws}\n  kubelet: {extraArgs: {v: \"3\"}}\n"+twoCPs)
	for _, tc := range []struct {
		name string
		s    *v1alpha1.ClusterSpec
		host string
		want map[string]string
	}{
		{"node-ip is the private address", plain, "cp1", map[string]string{"node-ip": "10.0.0.1"}},
		{"worker", plain, "w1", map[string]string{"node-ip": "10.0.0.4"}},
		{"external CCM", ccm, "cp2", map[string]string{"node-ip": "10.0.0.2", "cloud-provider": "external", "v": "3"}},
		{"external CCM worker", ccm, "w1", map[string]string{"node-ip": "10.0.0.4", "cloud-provider": "external", "v": "3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			init, cluster, join, _ := documents(t, render(t, tc.s, tc.host))
			var nr kubeadmv1beta4.NodeRegistrationOptions
			if init != nil {
				nr = init.NodeRegistration
				if init.LocalAPIEndpoint.AdvertiseAddress != tc.want["node-ip"] {
					t.Errorf("advertiseAddress %s", init.LocalAPIEndpoint.AdvertiseAddress)
				}
				for _, c := range [][]kubeadmv1beta4.Arg{cluster.APIServer.ExtraArgs, cluster.ControllerManager.ExtraArgs} {
					if _, ok := args(c)["cloud-provider"]; ok {
						t.Error("cloud-provider flag on a control-plane component")
					}
				}
			} else {
				nr = join.NodeRegistration
				if join.ControlPlane != nil && join.ControlPlane.LocalAPIEndpoint.AdvertiseAddress != tc.want["node-ip"] {
					t.Errorf("advertiseAddress %s", join.ControlPlane.LocalAPIEndpoint.AdvertiseAddress)
				}
			}
			if got := args(nr.KubeletExtraArgs); !mapsEqual(got, tc.want) {
				t.Errorf("kubelet args %v, want %v", got, tc.want)
			}
			if !slices.IsSortedFunc(nr.KubeletExtraArgs, func(a, b kubeadmv1beta4.Arg) int { return strings.Compare(a.Name, b.Name) }) {
				t.Errorf("kubelet args not sorted: %v", nr.KubeletExtraArgs)
			}
			if nr.CRISocket != CRISocket || nr.Name != tc.host {
				t.Errorf("nodeRegistration %+v", nr)
			}
		})
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

func TestJoinDiscovery(t *testing.T) {
	s := spec(t, twoCPs)
	for _, host := range []string{"cp2", "w1"} {
		_, _, join, _ := documents(t, render(t, s, host))
		bt := join.Discovery.BootstrapToken
		if bt == nil || bt.UnsafeSkipCAVerification || len(bt.CACertHashes) != 1 || bt.Token != manifests.PlaceholderToken {
			t.Errorf("%s: discovery %+v", host, bt)
		}
		if host == "cp2" && (join.ControlPlane == nil || join.ControlPlane.CertificateKey != "") {
			t.Errorf("cp2: controlPlane %+v; want a local endpoint and no certificate key", join.ControlPlane)
		}
		if host == "w1" && join.ControlPlane != nil {
			t.Errorf("w1 joins as a control plane")
		}
	}
	h, _ := s.Host("w1")
	if _, err := Render(Input{Spec: s, Host: h, Token: manifests.PlaceholderToken}); err == nil {
		t.Error("a join without a CA hash rendered")
	}
}

func TestComponentConfigs(t *testing.T) {
	s := spec(t, `
  networking: {serviceSubnet: 10.200.0.0/16, dnsDomain: corp.local}
  kubelet: {config: {maxPods: 50, evictionHard: {memory.available: 5%}}}
  kubeProxy: {mode: ipvs, config: {ipvs: {scheduler: wrr}}}
`+twoCPs)
	_, _, _, other := documents(t, render(t, s, "cp1"))
	if len(other) != 2 {
		t.Fatalf("got %d component documents", len(other))
	}
	kubelet, proxy := other[0], other[1]
	want := map[string]any{
		"apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
		"cgroupDriver": "systemd", "clusterDNS": []any{"10.200.0.10"}, "clusterDomain": "corp.local",
		"maxPods": float64(50), "evictionHard": map[string]any{"memory.available": "5%"},
	}
	if got, _ := yaml.Marshal(kubelet); !bytes.Equal(got, mustYAML(t, want)) {
		t.Errorf("kubelet:\n%s\nwant:\n%s", got, mustYAML(t, want))
	}
	// failCgroupV1 appears only when the spec asks.
	if _, ok := kubelet["failCgroupV1"]; ok {
		t.Error("failCgroupV1 rendered without the spec asking")
	}
	wantProxy := map[string]any{
		"apiVersion": "kubeproxy.config.k8s.io/v1alpha1", "kind": "KubeProxyConfiguration",
		"mode": "ipvs", "clusterCIDR": "10.244.0.0/16", "ipvs": map[string]any{"scheduler": "wrr"},
	}
	if got, _ := yaml.Marshal(proxy); !bytes.Equal(got, mustYAML(t, wantProxy)) {
		t.Errorf("kube-proxy:\n%s\nwant:\n%s", got, mustYAML(t, wantProxy))
	}
}

func mustYAML(t *testing.T, v any) []byte {
	t.Helper()
	b, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCheckSpec: every problem kubeadm or the kubelet would hit later is reported now, at its path.
func TestCheckSpec(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       []string
	}{
		{"valid", twoCPs, nil},
		{"unknown kubelet key", "  kubelet: {config: {maxPod: 3, maxPods: 4}}\n" + twoCPs,
			[]string{`spec.kubelet.config.maxPod: Unsupported value: unknown field of KubeletConfiguration`}},
		{"nested unknown key", "  kubelet: {config: {logging: {format: json, colour: true}}}\n" + twoCPs,
			[]string{`spec.kubelet.config.logging.colour`}},
		{"mistyped kubelet key", "  kubelet: {config: {maxPods: lots}}\n" + twoCPs,
			[]string{`spec.kubelet.config.maxPods: Invalid value: "lots": wrong type: got string, want int32`}},
		{"reserved key", "  kubelet: {config: {kind: Pod}}\n" + twoCPs,
			[]string{`spec.kubelet.config.kind: Forbidden: set by the installer`}},
		{"unknown kube-proxy key", "  kubeProxy: {config: {conntrak: {maxPerCore: 0}}}\n" + twoCPs,
			[]string{`spec.kubeProxy.config.conntrak`}},
		{"kube-proxy mode twice", "  kubeProxy: {mode: iptables, config: {mode: nftables}}\n" + twoCPs,
			[]string{`spec.kubeProxy.config.mode: Invalid value: "nftables": set the mode with spec.kubeProxy.mode`}},
		{"derived kubelet flags", "  kubelet: {extraArgs: {node-ip: 1.2.3.4, node-labels: a=b}}\n" + twoCPs,
			[]string{`spec.kubelet.extraArgs[node-ip]: Forbidden`, `spec.kubelet.extraArgs[node-labels]: Forbidden`}},
		{"cloud-provider with a CCM", "  cloudProvider: {name: aws}\n  kubelet: {extraArgs: {cloud-provider: aws}}\n" + twoCPs,
			[]string{`spec.kubelet.extraArgs[cloud-provider]: Invalid value: "aws"`}},
		{"restricted label", "  hosts: [{name: cp1, address: 10.0.0.1, role: control-plane, labels: {node-role.kubernetes.io/db: \"\", topology.kubernetes.io/zone: a}}]\n",
			[]string{`spec.hosts[0].labels[node-role.kubernetes.io/db]: Invalid value: ""`}},
		{"control-plane image override", "  images: {overrides: {registry.k8s.io/kube-apiserver:v1.37.2: my.registry/kube-apiserver:v1.37.2}}\n" + twoCPs,
			[]string{`spec.images.overrides[registry.k8s.io/kube-apiserver:v1.37.2]: Invalid value: "my.registry/kube-apiserver:v1.37.2": kubeadm takes this image only from spec.images.repository`}},
		{"coredns override with another name", "  images: {overrides: {registry.k8s.io/coredns/coredns:v1.14.6: my.registry/dns:v1}}\n" + twoCPs,
			[]string{`spec.images.overrides[registry.k8s.io/coredns/coredns:v1.14.6]: Invalid value: "my.registry/dns:v1": kubeadm appends the image name itself`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs := CheckSpec(spec(t, tc.body))
			if len(errs) != len(tc.want) {
				t.Fatalf("got %d errors %v, want %d", len(errs), errs, len(tc.want))
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(errs[i].Error(), w) {
					t.Errorf("error %d: %q\nwant prefix %q", i, errs[i].Error(), w)
				}
			}
			// The renderer refuses the same spec.
			s := spec(t, tc.body)
			h := s.ControlPlanes()[0]
			_, err := Render(Input{Spec: s, Host: h, Token: manifests.PlaceholderToken})
			if (err != nil) != (len(tc.want) > 0) {
				t.Errorf("Render: %v", err)
			}
		})
	}
}

func TestToken(t *testing.T) {
	re := regexp.MustCompile(`^[a-z0-9]{6}\.[a-z0-9]{16}$`)
	seen := map[string]bool{}
	for i := 0; i < 200; i++ {
		tok, err := GenerateToken()
		if err != nil {
			t.Fatal(err)
		}
		if !re.MatchString(tok) || ValidateToken(tok) != nil {
			t.Fatalf("bad token format (length %d)", len(tok))
		}
		if seen[tok] {
			t.Fatal("token repeated")
		}
		seen[tok] = true
	}
	if _, err := generateToken(bytes.NewReader(nil)); err == nil {
		t.Error("no error from an empty random source")
	}
	for _, bad := range []string{"", "abcdef.0123456789abcdeF", "abcde.0123456789abcdef0", "abcdef-0123456789abcdef"} {
		err := ValidateToken(bad)
		if err == nil {
			t.Errorf("%q accepted", bad)
		} else if bad != "" && strings.Contains(err.Error(), bad) {
			t.Errorf("the error quotes the token: %v", err)
		}
	}
	s := spec(t, twoCPs)
	if _, err := Render(Input{Spec: s, Host: s.Hosts[0], Token: "nope"}); err == nil || strings.Contains(err.Error(), "nope") {
		t.Errorf("Render with a bad token: %v", err)
	}
}

func TestUpgrade(t *testing.T) {
	s := spec(t, "  kubeadm: {ignorePreflightErrors: [SystemVerification]}\n"+twoCPs)
	out, err := Upgrade(s, "v1.37.2")
	if err != nil {
		t.Fatal(err)
	}
	var u kubeadmv1beta4.UpgradeConfiguration
	if err := yaml.UnmarshalStrict(out, &u); err != nil {
		t.Fatal(err)
	}
	if u.Kind != "UpgradeConfiguration" || u.Apply.KubernetesVersion != "v1.37.2" || u.Plan.KubernetesVersion != "v1.37.2" {
		t.Errorf("%+v", u)
	}
	for _, l := range [][]string{u.Apply.IgnorePreflightErrors, u.Plan.IgnorePreflightErrors, u.Node.IgnorePreflightErrors} {
		if !slices.Equal(l, []string{"SystemVerification"}) {
			t.Errorf("ignorePreflightErrors %v", l)
		}
	}
	if _, err := Upgrade(s, "v1.99.0"); err == nil {
		t.Error("unsupported target accepted")
	}
	f, err := UpgradeFile(s, "v1.37.2")
	if err != nil || f.Sensitive || f.Path != UpgradeConfigPath {
		t.Errorf("%+v %v", f, err)
	}
}

func TestNoDirAvailableIgnore(t *testing.T) {
	// Measured (DESIGN.md §3): kubeadm 1.34/1.35 has no DirAvailable--etc-kubernetes-manifests check.
	for path, data := range goldenFiles(t) {
		if bytes.Contains(data, []byte("DirAvailable")) {
			t.Errorf("%s ignores a DirAvailable check", path)
		}
	}
}
