package manifests

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/constants"
	"installer.dev/installer/pkg/facts"
	"installer.dev/installer/pkg/versions"
)

func defaulted(t *testing.T, mutate func(s *v1alpha1.ClusterSpec)) *v1alpha1.ClusterSpec {
	t.Helper()
	c := &v1alpha1.Cluster{APIVersion: v1alpha1.APIVersion, Kind: v1alpha1.Kind, Metadata: v1alpha1.ObjectMeta{Name: "t"},
		Spec: v1alpha1.ClusterSpec{KubernetesVersion: "v1.37.2", Hosts: []v1alpha1.Host{
			{Name: "cp1", Address: "10.0.0.11", Role: v1alpha1.RoleControlPlane},
			{Name: "cp2", Address: "10.0.0.12", Role: v1alpha1.RoleControlPlane},
			{Name: "w1", Address: "10.0.0.21", Role: v1alpha1.RoleWorker},
		}}}
	if mutate != nil {
		mutate(&c.Spec)
	}
	c.Default()
	if errs, _ := v1alpha1.Validate(c); len(errs) > 0 {
		t.Fatal(errs.ToAggregate())
	}
	return &c.Spec
}

func fileAt(t *testing.T, files []File, p string) File {
	t.Helper()
	for _, f := range files {
		if f.Path == p {
			return f
		}
	}
	t.Fatalf("no file %s", p)
	return File{}
}

func TestImageName(t *testing.T) {
	for _, tc := range []struct {
		name      string
		mutate    func(s *v1alpha1.ClusterSpec)
		component string
		want      string
	}{
		{"default pause", nil, "pause", "registry.k8s.io/pause:3.10.2"},
		{"repository moves kubeadm's images", func(s *v1alpha1.ClusterSpec) { s.Images.Repository = "mirror.example:5000/k8s" }, "pause", "mirror.example:5000/k8s/pause:3.10.2"},
		{"coredns loses its sub-path like kubeadm", func(s *v1alpha1.ClusterSpec) { s.Images.Repository = "mirror.example/k8s" }, "coredns", "mirror.example/k8s/coredns:v1.14.6"},
		{"repository leaves flannel alone", func(s *v1alpha1.ClusterSpec) { s.Images.Repository = "mirror.example/k8s" }, "flannel", "ghcr.io/flannel-io/flannel:v0.28.10"},
		{"override after repository", func(s *v1alpha1.ClusterSpec) {
			s.Images.Repository = "mirror.example/k8s"
			s.Images.Overrides = map[string]string{"mirror.example/k8s/pause:3.10.2": "other.example/pause:3.10.2"}
		}, "pause", "other.example/pause:3.10.2"},
		{"override of a table image", func(s *v1alpha1.ClusterSpec) {
			s.Images.Overrides = map[string]string{"ghcr.io/flannel-io/flannel:v0.28.10": "my.registry/flannel:v0.28.10"}
		}, "flannel", "my.registry/flannel:v0.28.10"},
		{"mirrors never rename", func(s *v1alpha1.ClusterSpec) {
			s.Images.Mirrors = map[string][]v1alpha1.MirrorEndpoint{"registry.k8s.io": {{URL: "http://10.0.0.5:5000"}}}
		}, "pause", "registry.k8s.io/pause:3.10.2"},
		{"ccm preset image", nil, "ccm-aws", "registry.k8s.io/provider-aws/cloud-controller-manager:v1.37.0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ImageName(defaulted(t, tc.mutate), tc.component)
			if err != nil || got != tc.want {
				t.Errorf("ImageName = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestContainerdConfigVersion(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
		err  bool
	}{
		{"1.6.20", 2, false}, {"1.7.27", 2, false}, {"v2.1.4", 3, false}, {"2.0.0", 3, false},
		{"3.0.0", 0, true}, {"", 0, true}, {"latest", 0, true},
	} {
		got, err := ContainerdConfigVersion(tc.in)
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("ContainerdConfigVersion(%q) = %d, %v", tc.in, got, err)
		}
	}
	s := defaulted(t, func(s *v1alpha1.ClusterSpec) {
		s.ContainerRuntime.Containerd = v1alpha1.Containerd{Source: v1alpha1.InstallPackage, Version: "2.1.4"}
	})
	real := facts.Host{ContainerdVersion: "1.7.27"}
	if v := ContainerdVersion(s, real); v != "1.7.27" {
		t.Errorf("facts read from the host win: %s", v)
	}
	if v := ContainerdVersion(s, facts.Assumed(s, s.Hosts[0])); v != "2.1.4" {
		t.Errorf("the spec wins over assumed facts: %s", v)
	}
}

func TestContainerdExtraConfigErrors(t *testing.T) {
	for name, cfg := range map[string]map[string]any{
		"version clash": {"version": float64(2)},
		"null value":    {"debug": map[string]any{"level": nil}},
	} {
		s := defaulted(t, func(s *v1alpha1.ClusterSpec) { s.ContainerRuntime.Containerd.Config = cfg })
		if _, err := hostFiles(s, s.Hosts[0], facts.Assumed(s, s.Hosts[0]), Inputs{VRRPPassword: "x"}); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func haSpec(t *testing.T, lb v1alpha1.LoadBalancerType) *v1alpha1.ClusterSpec {
	return defaulted(t, func(s *v1alpha1.ClusterSpec) {
		s.LoadBalancer = v1alpha1.LoadBalancer{Type: lb, VIP: "10.0.0.100"}
	})
}

func TestKeepalivedHAProxy(t *testing.T) {
	s := haSpec(t, v1alpha1.LoadBalancerKeepalivedHAProxy)
	// Real facts: the private address sits on eth1 in a /24, so the VIP gets /24 on eth1.
	f := facts.Host{OS: facts.OS{PackageManager: "apt"},
		Interfaces: []facts.Interface{{Name: "eth0", Addrs: []string{"192.168.1.5/24"}}, {Name: "eth1", Addrs: []string{"10.0.0.12/24"}}}}
	in := Inputs{VRRPPassword: "abcd1234", HashKey: []byte("k")}
	files, err := hostFiles(s, s.Hosts[1], f, in)
	if err != nil {
		t.Fatal(err)
	}
	conf := fileAt(t, files, KeepalivedConfigPath)
	for _, want := range []string{"interface eth1", "priority 140", "virtual_router_id 51", "10.0.0.100/24", "auth_pass abcd1234"} {
		if !bytes.Contains(conf.Content, []byte(want)) {
			t.Errorf("keepalived.conf lacks %q", want)
		}
	}
	if !conf.Sensitive || bytes.Contains(conf.Display(), []byte("abcd1234")) || !bytes.Contains(conf.Display(), []byte("auth_pass <redacted>")) {
		t.Errorf("keepalived.conf is not masked: %s", conf.Display())
	}
	hcfg := fileAt(t, files, HAProxyConfigPath).Content
	for _, want := range []string{"bind *:8443", "option httpchk GET /readyz", "server cp1 10.0.0.11:6443", "server cp2 10.0.0.12:6443"} {
		if !bytes.Contains(hcfg, []byte(want)) {
			t.Errorf("haproxy.cfg lacks %q", want)
		}
	}
	if _, err := hostFiles(s, s.Hosts[2], f, in); err != nil {
		t.Fatal(err)
	}
	for _, w := range mustHostFiles(t, s, s.Hosts[2], in) {
		if strings.HasPrefix(w.Path, constants.StaticPodDir) {
			t.Errorf("worker got %s", w.Path)
		}
	}
	for _, bad := range []string{"", "123456789", "ab\"cd"} {
		if _, err := hostFiles(s, s.Hosts[0], f, Inputs{VRRPPassword: bad}); err == nil {
			t.Errorf("password %q accepted", bad)
		}
	}
	// No interface known: the error says what to set.
	if _, err := hostFiles(s, s.Hosts[0], facts.Host{}, in); err == nil || !strings.Contains(err.Error(), "spec.loadBalancer.interface") {
		t.Errorf("err = %v", err)
	}
}

// hostFiles renders every group of a host's files as one list (before init on the first control
// plane).
func hostFiles(s *v1alpha1.ClusterSpec, h v1alpha1.Host, f facts.Host, in Inputs) ([]File, error) {
	files, err := RenderHostFiles(HostInput{Spec: s, Host: h, Facts: f, Inputs: in})
	return files.All(), err
}

func mustHostFiles(t *testing.T, s *v1alpha1.ClusterSpec, h v1alpha1.Host, in Inputs) []File {
	t.Helper()
	files, err := hostFiles(s, h, facts.Assumed(s, h), in)
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func podHash(t *testing.T, files []File, p string) string {
	t.Helper()
	obj, _, err := strictDecoder().Decode(fileAt(t, files, p).Content, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return obj.(*corev1.Pod).Annotations[ConfigHashAnnotation]
}

func TestStaticPodConfigHash(t *testing.T) {
	s := haSpec(t, v1alpha1.LoadBalancerKeepalivedHAProxy)
	h := s.Hosts[0]
	base := podHash(t, mustHostFiles(t, s, h, Inputs{VRRPPassword: "aaaa1111", HashKey: []byte("k")}), KeepalivedPodPath)
	if base == "" {
		t.Fatal("no config hash")
	}
	if got := podHash(t, mustHostFiles(t, s, h, Inputs{VRRPPassword: "bbbb2222", HashKey: []byte("k")}), KeepalivedPodPath); got == base {
		t.Error("a new password does not roll keepalived")
	}
	// Without a key the hash must not depend on the secret (nobody could test guesses against it).
	a := podHash(t, mustHostFiles(t, s, h, Inputs{VRRPPassword: "aaaa1111"}), KeepalivedPodPath)
	b := podHash(t, mustHostFiles(t, s, h, Inputs{VRRPPassword: "bbbb2222"}), KeepalivedPodPath)
	if a != b {
		t.Error("unkeyed hash depends on the password")
	}
	s2 := haSpec(t, v1alpha1.LoadBalancerKeepalivedHAProxy)
	s2.Hosts = append(s2.Hosts, v1alpha1.Host{Name: "cp3", Address: "10.0.0.13", PrivateAddress: "10.0.0.13", Role: v1alpha1.RoleControlPlane})
	in := Inputs{VRRPPassword: "aaaa1111"}
	if podHash(t, mustHostFiles(t, s, h, in), HAProxyPodPath) == podHash(t, mustHostFiles(t, s2, h, in), HAProxyPodPath) {
		t.Error("a new backend does not roll haproxy")
	}
}

// TestKubeVIPKubeconfig: kube-vip on the first control plane reads super-admin.conf until the
// caller says init is done, whatever the facts say about admin.conf (it exists early in an init).
func TestKubeVIPKubeconfig(t *testing.T) {
	s := haSpec(t, v1alpha1.LoadBalancerKubeVIP)
	kubeconfigOf := func(h v1alpha1.Host, adminConf, initDone bool) string {
		f := facts.Assumed(s, h)
		f.AdminConfPresent = adminConf
		files, err := RenderHostFiles(HostInput{Spec: s, Host: h, Facts: f, InitDone: initDone})
		if err != nil {
			t.Fatal(err)
		}
		obj, _, err := strictDecoder().Decode(fileAt(t, files.HAEndpoint, KubeVIPPodPath).Content, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		p := obj.(*corev1.Pod)
		if p.Spec.Containers[0].VolumeMounts[0].MountPath != "/etc/kubernetes/admin.conf" {
			t.Errorf("kube-vip reads %s", p.Spec.Containers[0].VolumeMounts[0].MountPath)
		}
		return p.Spec.Volumes[0].HostPath.Path
	}
	for _, tc := range []struct {
		host                int
		adminConf, initDone bool
		want                string
	}{
		{0, false, false, "/etc/kubernetes/super-admin.conf"}, // first control plane, before init
		{0, true, false, "/etc/kubernetes/super-admin.conf"},  // admin.conf written, init not finished
		{0, true, true, "/etc/kubernetes/admin.conf"},         // after init
		{1, false, false, "/etc/kubernetes/admin.conf"},       // joining control planes
	} {
		if got := kubeconfigOf(s.Hosts[tc.host], tc.adminConf, tc.initDone); got != tc.want {
			t.Errorf("host %s admin.conf=%t init done=%t: %s, want %s", s.Hosts[tc.host].Name, tc.adminConf, tc.initDone, got, tc.want)
		}
	}
}

// newNodeTaints are the taints a node can carry before its pod network and CCM exist.
var newNodeTaints = []corev1.Taint{
	{Key: "node.cloudprovider.kubernetes.io/uninitialized", Value: "true", Effect: corev1.TaintEffectNoSchedule},
	{Key: "node-role.kubernetes.io/control-plane", Effect: corev1.TaintEffectNoSchedule},
	{Key: "node.kubernetes.io/not-ready", Effect: corev1.TaintEffectNoSchedule},
	{Key: "node.kubernetes.io/not-ready", Effect: corev1.TaintEffectNoExecute},
}

func tolerates(ts []corev1.Toleration, taint corev1.Taint) bool {
	for i := range ts {
		if ts[i].ToleratesTaint(&taint) {
			return true
		}
	}
	return false
}

func daemonSets(t *testing.T, b []byte) []*appsv1.DaemonSet {
	t.Helper()
	var out []*appsv1.DaemonSet
	for _, d := range yamlDocuments(b) {
		obj, _, err := strictDecoder().Decode(d, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if ds, ok := obj.(*appsv1.DaemonSet); ok {
			out = append(out, ds)
		}
	}
	return out
}

func TestFlannel(t *testing.T) {
	s := defaulted(t, func(s *v1alpha1.ClusterSpec) { s.Networking.PodSubnet = "10.50.0.0/16" })
	files, err := ClusterFiles(s, Inputs{})
	if err != nil {
		t.Fatal(err)
	}
	cni := fileAt(t, files, "cni.yaml").Content
	if !bytes.Contains(cni, []byte(`\"Network\": \"10.50.0.0/16\"`)) {
		t.Errorf("net-conf.json does not carry the pod subnet")
	}
	ds := daemonSets(t, cni)
	if len(ds) != 1 {
		t.Fatalf("%d DaemonSets", len(ds))
	}
	ps := ds[0].Spec.Template.Spec
	for _, taint := range newNodeTaints {
		if !tolerates(ps.Tolerations, taint) {
			t.Errorf("flannel does not tolerate %v", taint)
		}
	}
	c := ps.Containers[0]
	if !slices.Contains(c.Args, "--iface=$(HOST_IP)") || c.Env[2].ValueFrom.FieldRef.FieldPath != "status.hostIP" {
		t.Errorf("flanneld does not pick the node IP: %v %v", c.Args, c.Env)
	}
	if ps.PriorityClassName != "system-node-critical" || !ps.HostNetwork {
		t.Error("flannel must be node-critical on the host network")
	}
	other := defaulted(t, nil)
	files2, _ := ClusterFiles(other, Inputs{})
	if daemonSets(t, fileAt(t, files2, "cni.yaml").Content)[0].Spec.Template.Annotations[ConfigHashAnnotation] == ds[0].Spec.Template.Annotations[ConfigHashAnnotation] {
		t.Error("a new pod subnet does not roll flannel")
	}
}

func TestCCMPresets(t *testing.T) {
	for _, tc := range []struct {
		spec     string
		provider string
		image    string
		env      map[string]string // variable -> Secret
		secrets  []string
		mount    bool
	}{
		{"../../configs/aws-external-ccm.yaml", "aws", "registry.k8s.io/provider-aws/cloud-controller-manager:v1.37.0", nil, nil, false},
		{"testdata/specs/ccm-openstack.yaml", "openstack", "registry.k8s.io/provider-os/openstack-cloud-controller-manager:v1.37.0", nil, []string{CCMCloudConfigSecret}, true},
		{"testdata/specs/ccm-hetzner.yaml", "hcloud", "docker.io/hetznercloud/hcloud-cloud-controller-manager:v1.26.0", map[string]string{"HCLOUD_TOKEN": "hcloud"}, []string{"hcloud"}, false},
		{"testdata/specs/ccm-digitalocean.yaml", "digitalocean", "docker.io/digitalocean/digitalocean-cloud-controller-manager:v0.1.63", map[string]string{"DO_ACCESS_TOKEN": "digitalocean"}, []string{"digitalocean"}, false},
		{"testdata/specs/ccm-vsphere.yaml", "vsphere", "registry.k8s.io/cloud-pv-vsphere/cloud-provider-vsphere:v1.37.0", nil, []string{CCMCloudConfigSecret, "vsphere-cloud-secret"}, true},
		{"testdata/specs/ccm-custom.yaml", "lab", "docker.io/lab/cloud-controller-manager:v1.37.2", nil, nil, false},
	} {
		t.Run(tc.provider, func(t *testing.T) {
			r := renderSpec(t, tc.spec)
			ccm := fileAt(t, r.cluster, "ccm.yaml")
			if (len(tc.secrets) > 0) != ccm.Sensitive {
				t.Errorf("sensitive = %t with Secrets %v", ccm.Sensitive, tc.secrets)
			}
			var secrets []string
			var ds *appsv1.DaemonSet
			for _, d := range yamlDocuments(ccm.Content) {
				obj, _, err := strictDecoder().Decode(d, nil, nil)
				if err != nil {
					t.Fatal(err)
				}
				switch o := obj.(type) {
				case *corev1.Secret:
					secrets = append(secrets, o.Name)
					for k, v := range o.StringData {
						if v == "" || v == Redacted {
							t.Errorf("secret %s key %s has no real value", o.Name, k)
						}
					}
				case *appsv1.DaemonSet:
					ds = o
				}
			}
			if !slices.Equal(secrets, tc.secrets) {
				t.Errorf("secrets = %v, want %v", secrets, tc.secrets)
			}
			ps := ds.Spec.Template.Spec
			c := ps.Containers[0]
			if c.Image != tc.image {
				t.Errorf("image = %s", c.Image)
			}
			for _, a := range []string{"--cloud-provider=" + tc.provider, "--use-service-account-credentials=true", "--leader-elect=true"} {
				if !slices.Contains(c.Args, a) {
					t.Errorf("args %v lack %s", c.Args, a)
				}
			}
			if tc.provider == "lab" {
				// custom: exactly the spec's args, then the installer's own; no command.
				want := []string{"--cloud-provider=lab", "--use-service-account-credentials=true", "--leader-elect=true"}
				if !slices.Equal(c.Args, want) || c.Command != nil {
					t.Errorf("custom command %v args %v", c.Command, c.Args)
				}
			} else if len(c.Command) != 1 || !strings.HasPrefix(c.Command[0], "/bin/") {
				t.Errorf("command = %v", c.Command)
			}
			for v, sec := range tc.env {
				found := false
				for _, e := range c.Env {
					found = found || (e.Name == v && e.ValueFrom.SecretKeyRef.Name == sec)
				}
				if !found {
					t.Errorf("no %s from Secret %s in %v", v, sec, c.Env)
				}
			}
			if tc.mount != (len(c.VolumeMounts) == 1) || tc.mount != slices.ContainsFunc(c.Args, func(a string) bool { return strings.HasPrefix(a, "--cloud-config=/etc/kubernetes/cloud-config/") }) {
				t.Errorf("cloud config mount %v args %v", c.VolumeMounts, c.Args)
			}
			for _, taint := range newNodeTaints {
				if !tolerates(ps.Tolerations, taint) {
					t.Errorf("CCM does not tolerate %v", taint)
				}
			}
			if !ps.HostNetwork || ps.NodeSelector["node-role.kubernetes.io/control-plane"] != "" || len(ps.NodeSelector) != 1 {
				t.Errorf("CCM must run on the control planes' host network")
			}
			if ds.Spec.Template.Annotations[ConfigHashAnnotation] == "" {
				t.Error("no config hash")
			}
		})
	}
}

func TestCCMMissingInputs(t *testing.T) {
	s := defaulted(t, func(s *v1alpha1.ClusterSpec) {
		s.CloudProvider = v1alpha1.CloudProvider{Name: v1alpha1.CloudHetzner, CredentialsEnv: map[string]string{"token": "HCLOUD_TOKEN"}}
	})
	if _, err := ClusterFiles(s, Inputs{}); err == nil || !strings.Contains(err.Error(), "HCLOUD_TOKEN") {
		t.Errorf("missing credential: %v", err)
	}
	vs := defaulted(t, func(s *v1alpha1.ClusterSpec) {
		s.CloudProvider = v1alpha1.CloudProvider{Name: v1alpha1.CloudVSphere, CloudConfigFile: "/vs.conf",
			CredentialsEnv: map[string]string{"username": "U", "password": "P"}}
	})
	creds := map[string]string{"username": "u", "password": "p"}
	for name, conf := range map[string]string{
		"no server":      "[Global]\nsecret-name = \"vsphere-cloud-secret\"\n",
		"no secret name": "[VirtualCenter \"vc\"]\n",
	} {
		if _, err := ClusterFiles(vs, Inputs{Files: map[string][]byte{"/vs.conf": []byte(conf)}, CloudCredentials: creds}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	yamlConf := "global:\n  secretName: vsphere-cloud-secret\nvcenter:\n  main:\n    server: vc.example\n"
	files, err := ClusterFiles(vs, Inputs{Files: map[string][]byte{"/vs.conf": []byte(yamlConf)}, CloudCredentials: creds})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(fileAt(t, files, "ccm.yaml").Content, []byte(`"vc.example.username":"u"`)) {
		t.Error("YAML cloud config: credentials not keyed by server")
	}
}

func TestFetchManifest(t *testing.T) {
	body := []byte("apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n")
	sum := sha256.Sum256(body)
	good := hex.EncodeToString(sum[:])
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/calico.yaml" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(body)
	}))
	defer srv.Close()
	ctx := context.Background()
	if b, err := FetchManifest(ctx, srv.Client(), srv.URL+"/calico.yaml", strings.ToUpper(good)); err != nil || !bytes.Equal(b, body) {
		t.Errorf("good fetch: %v", err)
	}
	for name, tc := range map[string]struct{ url, sha, want string }{
		"checksum mismatch": {srv.URL + "/calico.yaml", strings.Repeat("0", 64), "sha256 is " + good},
		"not found":         {srv.URL + "/nope.yaml", good, "404"},
		"url without sum":   {srv.URL + "/calico.yaml", "", "needs its sha256"},
		"missing file":      {"/nonexistent/calico.yaml", "", "no such file"},
	} {
		if _, err := FetchManifest(ctx, srv.Client(), tc.url, tc.sha); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", name, err, tc.want)
		}
	}
}

// TestCNIFetchVerifyTransform runs the calico path end to end against a local HTTP server: fetch,
// verify, decode, transform, and the result decodes strictly.
func TestCNIFetchVerifyTransform(t *testing.T) {
	for _, tc := range []struct {
		plugin v1alpha1.CNIPlugin
		file   string
		check  func(t *testing.T, out []byte)
	}{
		{v1alpha1.CNICalico, "testdata/inputs/calico-manifest.yaml", func(t *testing.T, out []byte) {
			ds := daemonSets(t, out)[0]
			c := ds.Spec.Template.Spec.Containers[0]
			if c.Image != "registry.example/calico/node:v3.30.3" {
				t.Errorf("override not applied: %s", c.Image)
			}
			if !slices.Contains(c.Env, corev1.EnvVar{Name: "CALICO_IPV4POOL_CIDR", Value: "10.200.0.0/16"}) {
				t.Errorf("pod CIDR not set: %v", c.Env)
			}
			for _, taint := range newNodeTaints {
				if !tolerates(ds.Spec.Template.Spec.Tolerations, taint) {
					t.Errorf("calico-node does not tolerate %v", taint)
				}
			}
			if !bytes.Contains(out, []byte("image: calico/kube-controllers:v3.30.3")) {
				t.Error("images without an override changed")
			}
		}},
		{v1alpha1.CNICilium, "testdata/inputs/cilium-manifest.yaml", func(t *testing.T, out []byte) {
			if !bytes.Contains(out, []byte("cluster-pool-ipv4-cidr: 10.200.0.0/16")) {
				t.Errorf("cilium pool CIDR not set:\n%s", out)
			}
			if n := len(daemonSets(t, out)[0].Spec.Template.Spec.Tolerations); n != 1 {
				t.Errorf("a tolerate-all list grew to %d entries", n)
			}
		}},
	} {
		t.Run(string(tc.plugin), func(t *testing.T) {
			body, err := os.ReadFile(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(body)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(body) }))
			defer srv.Close()
			s := defaulted(t, func(s *v1alpha1.ClusterSpec) {
				s.Networking.PodSubnet = "10.200.0.0/16"
				s.CNI = v1alpha1.CNI{Plugin: tc.plugin, Manifest: srv.URL + "/manifest.yaml", SHA256: hex.EncodeToString(sum[:])}
				s.Images.Overrides = map[string]string{"docker.io/calico/node:v3.30.3": "registry.example/calico/node:v3.30.3"}
			})
			in, err := LoadInputs(context.Background(), s, LoadOptions{HTTPClient: srv.Client()})
			if err != nil {
				t.Fatal(err)
			}
			files, err := ClusterFiles(s, in)
			if err != nil {
				t.Fatal(err)
			}
			out := fileAt(t, files, "cni.yaml").Content
			for i, d := range yamlDocuments(out) {
				if _, _, err := strictDecoder().Decode(d, nil, nil); err != nil {
					t.Errorf("document %d: %v", i+1, err)
				}
			}
			tc.check(t, out)

			s.CNI.SHA256 = strings.Repeat("a", 64)
			if _, err := LoadInputs(context.Background(), s, LoadOptions{HTTPClient: srv.Client()}); err == nil || !strings.Contains(err.Error(), "sha256") {
				t.Errorf("tampered manifest accepted: %v", err)
			}
		})
	}
	if _, err := TransformCNI(defaulted(t, nil), []byte("kind: ConfigMap\n")); err == nil {
		t.Error("a document without apiVersion was accepted")
	}
}

func TestNoProxy(t *testing.T) {
	s := defaulted(t, func(s *v1alpha1.ClusterSpec) {
		s.Proxy = v1alpha1.Proxy{HTTP: "http://proxy:3128", NoProxy: []string{"localhost", ".corp"}}
	})
	got := NoProxy(s)
	for _, want := range []string{"localhost", ".corp", "127.0.0.1", "10.244.0.0/16", "10.96.0.0/12", ".svc", ".cluster.local", "10.0.0.11", "10.0.0.21", "cp1"} {
		if !slices.Contains(got, want) {
			t.Errorf("NO_PROXY %v lacks %s", got, want)
		}
	}
	if strings.Count(strings.Join(got, ","), "localhost") != 1 {
		t.Errorf("duplicates: %v", got)
	}
	files := mustHostFiles(t, s, s.Hosts[2], Inputs{})
	for _, p := range []string{ContainerdProxyPath, KubeletProxyPath} {
		if !bytes.Contains(fileAt(t, files, p).Content, []byte(`Environment="HTTP_PROXY=http://proxy:3128"`)) {
			t.Errorf("%s lacks HTTP_PROXY", p)
		}
	}

	// systemd would read "%7E" as a specifier and drop the assignment: the % is doubled.
	s.Proxy.HTTPS = "http://corp%5Cop@proxy:3128/%7Eop"
	files = mustHostFiles(t, s, s.Hosts[2], Inputs{})
	if c := fileAt(t, files, ContainerdProxyPath).Content; !bytes.Contains(c, []byte(`Environment="HTTPS_PROXY=http://corp%%5Cop@proxy:3128/%%7Eop"`)) {
		t.Errorf("percent-encoded proxy URL not escaped for systemd:\n%s", c)
	}
}

func TestBinaryInstallKubeletUnit(t *testing.T) {
	s := defaulted(t, func(s *v1alpha1.ClusterSpec) { s.Install.Source = v1alpha1.InstallBinary })
	f := facts.Assumed(s, s.Hosts[2])
	files, err := hostFiles(s, s.Hosts[2], f, Inputs{})
	if err != nil {
		t.Fatal(err)
	}
	dropIn := fileAt(t, files, KubeletDropInPath).Content
	for _, want := range []string{"KUBELET_KUBECONFIG_ARGS=", "KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml",
		"EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env", "EnvironmentFile=-/etc/default/kubelet", "ExecStart=\n"} {
		if !bytes.Contains(dropIn, []byte(want)) {
			t.Errorf("drop-in lacks %q", want)
		}
	}
	fileAt(t, files, KubeletUnitPath)
	fileAt(t, files, "/etc/default/kubelet")
	f.OS.PackageManager = "dnf"
	files, _ = hostFiles(s, s.Hosts[2], f, Inputs{})
	fileAt(t, files, "/etc/sysconfig/kubelet")

	pkg := defaulted(t, nil)
	for _, f := range mustHostFiles(t, pkg, pkg.Hosts[2], Inputs{}) {
		if strings.Contains(f.Path, "kubelet") {
			t.Errorf("package install got %s (the package brings it)", f.Path)
		}
	}
}

func TestCloudProviderImagesInTable(t *testing.T) {
	for _, r := range versions.Releases() {
		seen := map[string]bool{}
		for _, i := range AllImages(r) {
			if seen[i.Component] {
				t.Errorf("%s: component %s twice", r.Kubernetes, i.Component)
			}
			seen[i.Component] = true
		}
		for _, p := range v1alpha1.CloudPresets() {
			if p.Component == "" {
				continue // custom: the spec names the image
			}
			i, err := ImageFor(r, p.Component)
			if err != nil || i.Tag() == "" || len(i.Binaries) != 1 || !strings.HasPrefix(i.Binaries[0], "/") {
				t.Errorf("%s: %s = %+v, %v", r.Kubernetes, p.Component, i, err)
			}
		}
		// The lab builds DefaultImages; presets stay out of it.
		for _, i := range DefaultImages(r) {
			if strings.HasPrefix(i.Component, "ccm-") {
				t.Errorf("%s is in DefaultImages", i.Component)
			}
		}
	}
}

// TestLoadAddonsVerified: an add-on over https is applied only when it matches the SHA-256 the spec
// pins; a local add-on with a pinned SHA-256 is checked too (security review M5: add-ons run with
// cluster-admin rights).
func TestLoadAddonsVerified(t *testing.T) {
	body := []byte("apiVersion: v1\nkind: Namespace\nmetadata: {name: addon}\n")
	sum := sha256.Sum256(body)
	good := hex.EncodeToString(sum[:])
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(body) }))
	defer srv.Close()
	local := filepath.Join(t.TempDir(), "local.yaml")
	if err := os.WriteFile(local, body, 0o600); err != nil {
		t.Fatal(err)
	}
	spec := func(addons ...v1alpha1.Addon) *v1alpha1.ClusterSpec {
		return &v1alpha1.ClusterSpec{KubernetesVersion: "v1.37.2", Addons: addons}
	}
	in, err := LoadInputs(context.Background(), spec(v1alpha1.Addon{Manifest: srv.URL + "/a.yaml", SHA256: good}, v1alpha1.Addon{Manifest: local, SHA256: good}, v1alpha1.Addon{Manifest: local}),
		LoadOptions{HTTPClient: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	if len(in.Addons) != 3 || !bytes.Equal(in.Addons[0], body) || !bytes.Equal(in.Addons[1], body) {
		t.Errorf("addons loaded: %q", in.Addons)
	}
	bad := strings.Repeat("0", 64)
	for name, tc := range map[string]struct {
		addon v1alpha1.Addon
		want  string
	}{
		"URL with another sum":   {v1alpha1.Addon{Manifest: srv.URL + "/a.yaml", SHA256: bad}, "sha256 is " + good},
		"URL without a sum":      {v1alpha1.Addon{Manifest: srv.URL + "/a.yaml"}, "needs its sha256"},
		"local with another sum": {v1alpha1.Addon{Manifest: local, SHA256: bad}, "sha256 is " + good},
	} {
		_, err := LoadInputs(context.Background(), spec(tc.addon), LoadOptions{HTTPClient: srv.Client()})
		if err == nil || !strings.HasPrefix(err.Error(), "spec.addons[0]: ") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want spec.addons[0]: ... %s", name, err, tc.want)
		}
	}
}

// TestLoadInputsDefaultClientTimesOut: without a client of the caller's, a server that never
// answers does not hang the command (security review, low: a stalled add-on server hung render).
func TestLoadInputsDefaultClientTimesOut(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	defer srv.Close()
	defer close(release)
	ctx, cancel := context.WithTimeout(context.Background(), FetchTimeout+30*time.Second)
	defer cancel()
	c := defaultHTTPClient()
	if c.Timeout != FetchTimeout {
		t.Fatalf("default client timeout %s, want %s", c.Timeout, FetchTimeout)
	}
	c.Timeout = 200 * time.Millisecond
	start := time.Now()
	_, err := FetchManifest(ctx, c, srv.URL+"/stalled.yaml", strings.Repeat("0", 64))
	if err == nil || !strings.Contains(err.Error(), "Client.Timeout exceeded") || time.Since(start) > 10*time.Second {
		t.Errorf("stalled server: err %v after %s, want the client's timeout", err, time.Since(start))
	}
}
