package drift

import (
	"crypto/x509"
	"net"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	kubeadmv1beta4 "k8s.io/kubernetes/cmd/kubeadm/app/apis/kubeadm/v1beta4"
	"sigs.k8s.io/yaml"
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

// A kube-apiserver manifest as kubeadm writes it, with extra volumes besides kubeadm's own.
const apiServerPod = `apiVersion: v1
kind: Pod
metadata: {name: kube-apiserver, namespace: kube-system}
spec:
  containers:
  - name: kube-apiserver
    command: [kube-apiserver, --advertise-address=10.0.0.1]
    volumeMounts:
    - {mountPath: /etc/ssl/certs, name: ca-certs, readOnly: true}
    - {mountPath: /etc/kubernetes/pki, name: k8s-certs, readOnly: true}
    - {mountPath: /etc/audit, name: audit, readOnly: true}
    - {mountPath: /var/log/audit, name: audit-log}
    - {mountPath: /etc/old, name: old}
    - {mountPath: /etc/policy, name: policy}
    - {mountPath: /etc/ghost, name: ghost}
  volumes:
  - {name: ca-certs, hostPath: {path: /etc/ssl/certs, type: DirectoryOrCreate}}
  - {name: k8s-certs, hostPath: {path: /etc/kubernetes/pki, type: DirectoryOrCreate}}
  - {name: audit, hostPath: {path: /etc/k/audit, type: DirectoryOrCreate}}
  - {name: audit-log, hostPath: {path: /var/log/k/audit, type: ""}}
  - {name: old, hostPath: {path: /etc/k/old, type: Directory}}
  - {name: policy, emptyDir: {}}
  - {name: unmounted, hostPath: {path: /etc/k/unmounted}}
`

func TestMounts(t *testing.T) {
	var pod corev1.Pod
	if err := yaml.Unmarshal([]byte(apiServerPod), &pod); err != nil {
		t.Fatal(err)
	}
	audit := kubeadmv1beta4.HostPathMount{Name: "audit", HostPath: "/etc/k/audit", MountPath: "/etc/audit", ReadOnly: true, PathType: corev1.HostPathDirectoryOrCreate}
	auditLog := kubeadmv1beta4.HostPathMount{Name: "audit-log", HostPath: "/var/log/k/audit", MountPath: "/var/log/audit"}
	old := kubeadmv1beta4.HostPathMount{Name: "old", HostPath: "/etc/k/old", MountPath: "/etc/old", PathType: corev1.HostPathDirectory}
	with := func(m kubeadmv1beta4.HostPathMount, change func(*kubeadmv1beta4.HostPathMount)) kubeadmv1beta4.HostPathMount {
		change(&m)
		return m
	}
	type mounts = []kubeadmv1beta4.HostPathMount
	for _, tc := range []struct {
		name         string
		want, stored mounts
		lines        []string
	}{
		// An empty path type and none are the same; kubeadm's own volumes are not compared.
		{name: "matches", want: mounts{auditLog, audit, old}, stored: mounts{audit, auditLog, old}},
		{name: "added", want: mounts{audit, {Name: "tmp", HostPath: "/tmp/k", MountPath: "/tmp/k"}, old},
			lines: []string{"+ volume tmp /tmp/k -> /tmp/k"}},
		{name: "host path, read-only and type changed", want: mounts{
			with(audit, func(m *kubeadmv1beta4.HostPathMount) { m.HostPath = "/etc/k/audit2" }),
			with(auditLog, func(m *kubeadmv1beta4.HostPathMount) { m.ReadOnly = true }),
			with(old, func(m *kubeadmv1beta4.HostPathMount) {
				m.PathType = corev1.HostPathDirectoryOrCreate
				m.MountPath = "/etc/new"
			}),
		}, lines: []string{
			"~ volume audit /etc/k/audit2 -> /etc/audit (ro, DirectoryOrCreate) (now /etc/k/audit -> /etc/audit (ro, DirectoryOrCreate))",
			"~ volume audit-log /var/log/k/audit -> /var/log/audit (ro) (now /var/log/k/audit -> /var/log/audit)",
			"~ volume old /etc/k/old -> /etc/new (DirectoryOrCreate) (now /etc/k/old -> /etc/old (Directory))",
		}},
		{name: "not a hostPath volume, not mounted, no volume", want: mounts{
			{Name: "policy", HostPath: "/etc/k/policy", MountPath: "/etc/policy"},
			{Name: "unmounted", HostPath: "/etc/k/unmounted", MountPath: "/etc/unmounted"},
			{Name: "ghost", HostPath: "/etc/k/ghost", MountPath: "/etc/ghost"},
		}, lines: []string{
			"~ volume ghost /etc/k/ghost -> /etc/ghost (now no volume, mounted at /etc/ghost)",
			"~ volume policy /etc/k/policy -> /etc/policy (now not a hostPath volume)",
			"~ volume unmounted /etc/k/unmounted -> /etc/unmounted (now /etc/k/unmounted, not mounted)",
		}},
		{name: "removed from the spec, still there", want: mounts{audit}, stored: mounts{old, audit, auditLog},
			lines: []string{"- volume audit-log /var/log/k/audit -> /var/log/audit", "- volume old /etc/k/old -> /etc/old (Directory)"}},
		// A name the stored configuration had that the pod holds at another host path is kubeadm's own.
		{name: "removed, kubeadm's own volume of the name back", stored: mounts{{Name: "k8s-certs", HostPath: "/srv/pki", MountPath: "/etc/kubernetes/pki"}}},
		{name: "removed and gone", stored: mounts{{Name: "gone", HostPath: "/etc/gone", MountPath: "/etc/gone"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Mounts(tc.want, tc.stored, &pod)
			if !slices.Equal(got, tc.lines) {
				t.Errorf("Mounts =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.lines, "\n"))
			}
		})
	}
	if got := Mounts([]kubeadmv1beta4.HostPathMount{audit}, nil, &corev1.Pod{}); !slices.Equal(got, []string{"+ volume audit /etc/k/audit -> /etc/audit (ro, DirectoryOrCreate)"}) {
		t.Errorf("a pod without containers: %q", got)
	}
}

func TestMountLines(t *testing.T) {
	audit := kubeadmv1beta4.HostPathMount{Name: "audit", HostPath: "/etc/k/audit", MountPath: "/etc/audit", ReadOnly: true}
	moved := audit
	moved.HostPath, moved.PathType = "/srv/audit", corev1.HostPathDirectory
	logs := kubeadmv1beta4.HostPathMount{Name: "logs", HostPath: "/var/log/k", MountPath: "/var/log/k"}
	tmp := kubeadmv1beta4.HostPathMount{Name: "tmp", HostPath: "/tmp/k", MountPath: "/tmp/k", PathType: corev1.HostPathDirectoryOrCreate}
	got := MountLines("apiServer.extraVolumes", []kubeadmv1beta4.HostPathMount{tmp, moved}, []kubeadmv1beta4.HostPathMount{logs, audit})
	want := []string{
		"~ apiServer.extraVolumes audit: /srv/audit -> /etc/audit (ro, Directory) (now /etc/k/audit -> /etc/audit (ro))",
		"+ apiServer.extraVolumes tmp: /tmp/k -> /tmp/k (DirectoryOrCreate)",
		"- apiServer.extraVolumes logs: /var/log/k -> /var/log/k",
	}
	if !slices.Equal(got, want) {
		t.Errorf("MountLines =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got := MountLines("scheduler.extraVolumes", []kubeadmv1beta4.HostPathMount{logs, audit}, []kubeadmv1beta4.HostPathMount{audit, logs}); len(got) != 0 {
		t.Errorf("the same volumes in another order differ: %q", got)
	}
}
