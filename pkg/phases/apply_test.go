package phases

import (
	"maps"
	"slices"
	"testing"

	kubeadmv1beta4 "k8s.io/kubernetes/cmd/kubeadm/app/apis/kubeadm/v1beta4"
)

func TestParseKubeadmFlags(t *testing.T) {
	got := parseKubeadmFlags([]byte(`KUBELET_KUBEADM_ARGS="--cloud-provider=external --node-ip=172.31.0.14 --node-labels=tier=web,zone=a --register-with-taints=dedicated=web:PreferNoSchedule"` + "\n"))
	want := map[string]string{"cloud-provider": "external", "node-ip": "172.31.0.14", "node-labels": "tier=web,zone=a", "register-with-taints": "dedicated=web:PreferNoSchedule"}
	if len(got) != len(want) {
		t.Fatalf("parseKubeadmFlags = %v", got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}

func TestClusterConfigLines(t *testing.T) {
	have := &kubeadmv1beta4.ClusterConfiguration{
		APIServer: kubeadmv1beta4.APIServer{CertSANs: []string{"127.0.0.1", "old.example.com"},
			ControlPlaneComponent: kubeadmv1beta4.ControlPlaneComponent{ExtraArgs: []kubeadmv1beta4.Arg{{Name: "event-ttl", Value: "1h"}, {Name: "profiling", Value: "false"}}}},
	}
	want := &kubeadmv1beta4.ClusterConfiguration{
		APIServer: kubeadmv1beta4.APIServer{CertSANs: []string{"127.0.0.1", "api.example.com"},
			ControlPlaneComponent: kubeadmv1beta4.ControlPlaneComponent{ExtraArgs: []kubeadmv1beta4.Arg{{Name: "event-ttl", Value: "2h"}}}},
		Scheduler: kubeadmv1beta4.ControlPlaneComponent{ExtraArgs: []kubeadmv1beta4.Arg{{Name: "v", Value: "2"}}},
	}
	got := clusterConfigLines(want, have)
	w := []string{"+ apiServer.certSANs api.example.com", "- apiServer.certSANs old.example.com",
		"~ apiServer.extraArgs --event-ttl=2h (now 1h)", "- apiServer.extraArgs --profiling=false", "+ scheduler.extraArgs --v=2"}
	if !slices.Equal(got, w) {
		t.Errorf("clusterConfigLines =\n%q\nwant\n%q", got, w)
	}
	if got := clusterConfigLines(want, want); len(got) != 0 {
		t.Errorf("the same configuration differs: %q", got)
	}
}

func TestHAProxyServers(t *testing.T) {
	cfg := []byte(`global
  stats socket /run/installer/haproxy/admin.sock mode 600 level admin
frontend k8s-api
  bind *:8443
  default_backend k8s-api
# a comment: server x 1.2.3.4:1
backend k8s-api
  option httpchk GET /readyz
  server cp1 10.0.0.11:6443
  server cp3 10.0.0.13:6443
backend other
  server z 10.9.9.9:80
`)
	got := haproxyServers(cfg)
	want := map[string]string{"cp1": "10.0.0.11:6443", "cp3": "10.0.0.13:6443"}
	if !maps.Equal(got, want) {
		t.Errorf("haproxyServers = %v, want %v", got, want)
	}
	added, removed := backendChanges(map[string]string{"cp1": "10.0.0.11:6443", "cp2": "10.0.0.12:6443", "cp3": "10.0.0.13:6443"},
		map[string]string{"cp1": "10.0.0.11:6443", "cp3": "10.0.0.23:6443", "cp4": "10.0.0.14:6443"})
	if !slices.Equal(added, []string{"cp3", "cp4"}) || !slices.Equal(removed, []string{"cp2"}) {
		t.Errorf("backendChanges: added %v, removed %v; want [cp3 cp4] (cp3 at a new address) and [cp2]", added, removed)
	}
	if a, r := backendChanges(want, want); len(a)+len(r) != 0 {
		t.Errorf("the same servers differ: %v %v", a, r)
	}
}
