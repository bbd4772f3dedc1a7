package drift

import (
	"crypto/x509"
	"net"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	kubeadmv1beta4 "k8s.io/kubernetes/cmd/kubeadm/app/apis/kubeadm/v1beta4"
)

func TestFlags(t *testing.T) {
	command := []string{"kube-apiserver", "--advertise-address=10.0.0.1", "--audit-log-maxage=7", "--profiling=false", "--enable-admission-plugins=NodeRestriction", "--v"}
	for _, tc := range []struct {
		name          string
		want, removed map[string]string
		lines         []string
	}{
		{name: "matches", want: map[string]string{"audit-log-maxage": "7", "v": "true"}},
		{name: "added and changed", want: map[string]string{"audit-log-maxage": "30", "event-ttl": "2h"},
			lines: []string{"~ --audit-log-maxage=30 (now 7)", "+ --event-ttl=2h"}},
		{name: "removed still there", want: map[string]string{}, removed: map[string]string{"profiling": "false"},
			lines: []string{"- --profiling=false"}},
		// kubeadm renders its own value for a flag it sets itself: once that is there, the removal is done.
		{name: "removed, kubeadm's default back", want: map[string]string{}, removed: map[string]string{"enable-admission-plugins": "NodeRestriction,PodNodeSelector"}},
		{name: "removed but kept by the spec", want: map[string]string{"profiling": "false"}, removed: map[string]string{"profiling": "false"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Flags(tc.want, tc.removed, command)
			if !slices.Equal(got, tc.lines) {
				t.Errorf("Flags = %q, want %q", got, tc.lines)
			}
		})
	}
}

func TestSANs(t *testing.T) {
	cert := &x509.Certificate{DNSNames: []string{"cp1", "localhost", "old.example.com"}, IPAddresses: []net.IP{net.ParseIP("10.0.0.1"), net.ParseIP("127.0.0.1")}}
	got := SANs([]string{"cp1", "10.0.0.1", "api.example.com", "203.0.113.7", "127.0.0.1"}, []string{"old.example.com", "198.51.100.1"}, cert)
	want := []string{"+ api.example.com", "+ 203.0.113.7", "- old.example.com"}
	if !slices.Equal(got, want) {
		t.Errorf("SANs = %q, want %q", got, want)
	}
	if got := SANs([]string{"cp1", "::ffff:10.0.0.1"}, nil, cert); len(got) != 0 {
		t.Errorf("an IP written another way is the same IP: %q", got)
	}
}

// The stored configuration is kubeadm's: every field of the typed struct, zero or not, and the
// fields kubeadm fills in. Only what the spec sets or dropped is a difference.
const storedKubelet = `apiVersion: kubelet.config.k8s.io/v1beta1
authentication:
  anonymous:
    enabled: false
  webhook:
    cacheTTL: 0s
    enabled: true
  x509:
    clientCAFile: /etc/kubernetes/pki/ca.crt
authorization:
  mode: Webhook
cgroupDriver: systemd
clusterDNS:
- 10.96.0.10
clusterDomain: cluster.local
cpuManagerReconcilePeriod: 0s
evictionHard:
  memory.available: 200Mi
evictionPressureTransitionPeriod: 0s
healthzBindAddress: 127.0.0.1
healthzPort: 10248
kind: KubeletConfiguration
logging:
  flushFrequency: 0
  options:
    json:
      infoBufferSize: "0"
  verbosity: 0
maxPods: 110
memorySwap: {}
nodeStatusReportFrequency: 1m0s
rotateCertificates: true
runtimeRequestTimeout: 0s
staticPodPath: /etc/kubernetes/manifests
syncFrequency: 0s
`

func TestKubeletConfig(t *testing.T) {
	base := func(extra map[string]any) map[string]any {
		m := map[string]any{"apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
			"cgroupDriver": "systemd", "clusterDomain": "cluster.local", "clusterDNS": []any{"10.96.0.10"}}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	for _, tc := range []struct {
		name  string
		want  map[string]any
		lines []string
	}{
		{name: "same, written differently", want: base(map[string]any{"maxPods": 110, "nodeStatusReportFrequency": "60s", "evictionHard": map[string]any{"memory.available": "200Mi"}})},
		{name: "changed and added", want: base(map[string]any{"maxPods": 120, "nodeStatusReportFrequency": "1m", "evictionHard": map[string]any{"memory.available": "200Mi"}, "serializeImagePulls": false}),
			lines: []string{`~ maxPods: 120 (now 110)`, `+ serializeImagePulls: false`}},
		{name: "dropped from the spec", want: base(map[string]any{"maxPods": 110}),
			lines: []string{`- evictionHard: {"memory.available":"200Mi"}`, `- nodeStatusReportFrequency: "1m0s"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := KubeletConfig(tc.want, []byte(storedKubelet))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.lines) {
				t.Errorf("KubeletConfig =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.lines, "\n"))
			}
		})
	}
	if _, err := KubeletConfig(base(map[string]any{"maxPods": "many"}), []byte(storedKubelet)); err == nil {
		t.Error("a mistyped field passed")
	}
}

func TestKubeletRunning(t *testing.T) {
	set := map[string]any{"apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration", "maxPods": 120, "nodeStatusReportFrequency": "60s"}
	running := map[string]any{"maxPods": 110, "nodeStatusReportFrequency": "1m0s", "staticPodPath": "/etc/kubernetes/manifests"}
	got, err := KubeletRunning(set, running)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"maxPods: 120 (runs with 110)"}; !slices.Equal(got, want) {
		t.Errorf("KubeletRunning = %q, want %q", got, want)
	}
	running["maxPods"] = float64(120)
	if got, _ := KubeletRunning(set, running); len(got) != 0 {
		t.Errorf("a kubelet running the settings differs: %q", got)
	}
}

func TestLabels(t *testing.T) {
	have := map[string]string{"kubernetes.io/hostname": "w1", "zone": "a", "team": "web", "tier": "old", "set-by-someone": "x"}
	lines, next := Labels(map[string]string{"zone": "b", "disk": "ssd", "team": "web"}, []string{"zone", "team", "tier"}, have)
	want := []string{"+ label disk=ssd", "~ label zone=b (now a)", "- label tier=old"}
	if !slices.Equal(lines, want) {
		t.Errorf("lines = %q, want %q", lines, want)
	}
	if next["zone"] != "b" || next["disk"] != "ssd" || next["set-by-someone"] != "x" || next["kubernetes.io/hostname"] != "w1" {
		t.Errorf("labels become %v", next)
	}
	if _, ok := next["tier"]; ok {
		t.Errorf("a managed label the spec dropped stays: %v", next)
	}
	if _, ok := have["disk"]; ok {
		t.Error("Labels changed its input")
	}
	if lines, next := Labels(map[string]string{"zone": "a"}, []string{"zone"}, have); lines != nil || next != nil {
		t.Errorf("nothing to change: %q %v", lines, next)
	}
}

func TestTaints(t *testing.T) {
	cp := corev1.Taint{Key: "node-role.kubernetes.io/control-plane", Effect: corev1.TaintEffectNoSchedule}
	notReady := corev1.Taint{Key: "node.kubernetes.io/not-ready", Effect: corev1.TaintEffectNoExecute}
	have := []corev1.Taint{cp, notReady, {Key: "dedicated", Value: "db", Effect: corev1.TaintEffectNoSchedule}}
	want := []corev1.Taint{cp, {Key: "dedicated", Value: "web", Effect: corev1.TaintEffectNoSchedule}, {Key: "gpu", Effect: corev1.TaintEffectPreferNoSchedule}}
	lines, next := Taints(want, nil, have)
	if w := []string{"~ taint dedicated=web:NoSchedule (now dedicated=db:NoSchedule)", "+ taint gpu:PreferNoSchedule"}; !slices.Equal(lines, w) {
		t.Errorf("lines = %q, want %q", lines, w)
	}
	if len(next) != 4 || !slices.Contains(next, notReady) {
		t.Errorf("taints become %v", next)
	}
	lines, next = Taints(nil, []string{TaintKey(cp), "gpu:PreferNoSchedule"}, have)
	if w := []string{"- taint node-role.kubernetes.io/control-plane:NoSchedule"}; !slices.Equal(lines, w) {
		t.Errorf("lines = %q, want %q", lines, w)
	}
	if len(next) != 2 || slices.Contains(next, cp) {
		t.Errorf("taints become %v", next)
	}
}

func TestClusterConfig(t *testing.T) {
	have := &kubeadmv1beta4.ClusterConfiguration{KubernetesVersion: "v1.37.2", ControlPlaneEndpoint: "10.0.0.10:8443", ImageRepository: "registry.k8s.io",
		Networking: kubeadmv1beta4.Networking{PodSubnet: "10.244.0.0/16", ServiceSubnet: "10.96.0.0/12", DNSDomain: "cluster.local"}}
	same := *have
	same.KubernetesVersion = "1.37.2"
	same.APIServer.CertSANs = []string{"api.example.com"}
	if got := ClusterConfig(&same, have); len(got) != 0 {
		t.Errorf("refused: %v", got)
	}
	other := same
	other.KubernetesVersion = "v1.38.0"
	other.Networking.PodSubnet = "10.200.0.0/16"
	got := ClusterConfig(&other, have)
	if len(got) != 2 || got[0].Field != "spec.kubernetesVersion" || !strings.Contains(got[0].Reason, "installer upgrade") ||
		got[1].Field != "spec.networking.podSubnet" || !strings.Contains(got[1].Reason, `the cluster has "10.244.0.0/16", the spec "10.200.0.0/16"`) {
		t.Errorf("refusals: %v", got)
	}
}
