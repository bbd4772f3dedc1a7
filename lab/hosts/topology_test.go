package hosts

import (
	"strings"
	"testing"
)

func TestPlan(t *testing.T) {
	pub, priv := DefaultNetworks()
	topo := Topology{Hosts: 4, ControlPlanes: 2}.withDefaults()
	if err := topo.validate(); err != nil {
		t.Fatal(err)
	}
	hs := topo.plan(pub, priv)
	want := []Host{
		{Name: "cp1", Role: RoleControlPlane, Address: "172.30.0.11", PrivateAddress: "172.31.0.11",
			PublicMAC: "02:00:ac:1e:00:0b", PrivateMAC: "02:00:ac:1f:00:0b"},
		{Name: "cp2", Role: RoleControlPlane, Address: "172.30.0.12", PrivateAddress: "172.31.0.12",
			PublicMAC: "02:00:ac:1e:00:0c", PrivateMAC: "02:00:ac:1f:00:0c"},
		{Name: "w1", Role: RoleWorker, Address: "172.30.0.13", PrivateAddress: "172.31.0.13",
			PublicMAC: "02:00:ac:1e:00:0d", PrivateMAC: "02:00:ac:1f:00:0d"},
		{Name: "w2", Role: RoleWorker, Address: "172.30.0.14", PrivateAddress: "172.31.0.14",
			PublicMAC: "02:00:ac:1e:00:0e", PrivateMAC: "02:00:ac:1f:00:0e"},
	}
	if len(hs) != len(want) {
		t.Fatalf("plan = %+v", hs)
	}
	for i := range want {
		if hs[i] != want[i] {
			t.Errorf("host %d = %+v, want %+v", i, hs[i], want[i])
		}
	}
}

func TestTopologyDefaultsAndErrors(t *testing.T) {
	d := Topology{}.withDefaults()
	if d.Hosts != 3 || d.ControlPlanes != 1 || d.LoadBalancer != "none" || d.KubernetesVersion == "" {
		t.Fatalf("defaults = %+v", d)
	}
	for _, c := range []struct {
		topo Topology
		want string
	}{
		{Topology{Hosts: 2, ControlPlanes: 3}, "3 control planes among 2 hosts"},
		{Topology{Hosts: 100}, "1 to 89"},
		{Topology{LoadBalancer: "external"}, "no external load balancer"},
		{Topology{LoadBalancer: "f5"}, `unknown load balancer "f5"`},
		{Topology{Install: "snap"}, `unknown install source "snap"`},
		{Topology{KubernetesVersion: "v1.20.0"}, "Kubernetes v1.20.0 is not supported"},
	} {
		err := c.topo.withDefaults().validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want %q", c.topo, err, c.want)
		}
	}
}
