package phases

import (
	"bytes"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/manifests"
)

// TestParseLBView reads api-lb.sh's state with the `show stat` that haproxy 2.6.12 (Debian 12)
// printed for this backend: cp1 up, cp2 set to drain, cp3 set to maint (testdata, captured from
// the real haproxy with the rendered haproxy.cfg).
func TestParseLBView(t *testing.T) {
	stat, err := os.ReadFile("testdata/haproxy-show-stat.csv")
	if err != nil {
		t.Fatal(err)
	}
	out := "marker no\nkeepalived yes\nvip yes\nhaproxy\n" + string(stat)
	v, err := parseLBView(nil, []byte(out))
	if err != nil {
		t.Fatal(err)
	}
	if v.maintenance || !v.keepalived || !v.vip || !v.haproxy {
		t.Errorf("flags: %+v", v)
	}
	want := map[string]string{"cp1": "UP", "cp2": "DRAIN", "cp3": "MAINT"}
	if len(v.servers) != len(want) {
		t.Errorf("servers %v, want %v", v.servers, want)
	}
	for name, status := range want {
		if v.servers[name].Status != status {
			t.Errorf("%s: %+v, want %s", name, v.servers[name], status)
		}
	}
	if !v.up("cp1") || v.up("cp2") {
		t.Errorf("up: cp1 %t cp2 %t", v.up("cp1"), v.up("cp2"))
	}

	none, err := parseLBView(nil, []byte("marker yes\nkeepalived no\nvip no\nhaproxy none\n"))
	if err != nil || none.haproxy || !none.maintenance || none.keepalived {
		t.Errorf("without haproxy: %+v, %v", none, err)
	}
	for _, bad := range []string{"", "marker no\nvip no\n", "marker no\nkeepalived no\nvip no\nhaproxy\nnot csv\n", "nonsense\n"} {
		if _, err := parseLBView(nil, []byte(bad)); err == nil {
			t.Errorf("parseLBView(%q) did not fail", bad)
		}
	}
}

// TestKubeadmProgress: kubeadm's lines, even split across writes, become one log line per
// component with kubeadm's time for it.
func TestKubeadmProgress(t *testing.T) {
	var logs bytes.Buffer
	p := newKubeadmProgress(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{ReplaceAttr: dropTime})), "cp1")
	clock := time.Unix(0, 0)
	p.now = func() time.Time { return clock }
	out := `[upgrade/staticpods] Preparing for "etcd" upgrade
[upgrade/staticpods] Renewing etcd-server certificate
[upgrade/staticpods] Component "etcd" upgraded successfully!
[upgrade/staticpods] Preparing for "kube-apiserver" upgrade
[upgrade/staticpods] Current and new manifests of kube-scheduler are equal, skipping upgrade
[addons] Applied essential addon: CoreDNS
`
	for i, part := range []string{out[:20], out[20:120], out[120:]} {
		if i == 2 {
			clock = clock.Add(12500 * time.Millisecond)
		}
		if _, err := p.Write([]byte(part)); err != nil {
			t.Fatal(err)
		}
	}
	want := `level=INFO msg="upgrade: kubeadm upgraded a component" host=cp1 component=etcd seconds=12.5
level=INFO msg="upgrade: kubeadm left a component unchanged" host=cp1 component=kube-scheduler
level=INFO msg="upgrade: kubeadm applied an add-on" host=cp1 addon=CoreDNS
`
	if logs.String() != want {
		t.Errorf("logs:\n%s\nwant:\n%s", logs.String(), want)
	}
}

func dropTime(_ []string, a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}

// haUpgradeCluster: 3 control planes behind keepalived-haproxy and a worker, at v1.36.5.
func haUpgradeCluster(t *testing.T) *simCluster {
	t.Helper()
	spec := simSpec(t, "v1.37.2", v1alpha1.Install{Source: v1alpha1.InstallBinary, BinaryMirror: "http://mirror:8080", ArtifactMirror: "http://mirror:8080"},
		func(s *v1alpha1.ClusterSpec) {
			s.CNI = v1alpha1.CNI{Plugin: v1alpha1.CNINone}
			s.LoadBalancer = v1alpha1.LoadBalancer{Type: v1alpha1.LoadBalancerKeepalivedHAProxy, VIP: "10.0.0.100", Interface: "eth0"}
		}, "cp1", "cp2", "cp3", "w1")
	return runningCluster(t, spec, "v1.36.5")
}

// assertAllInService: no marker left, every haproxy sends to every control plane, one holds the VIP.
func (sc *simCluster) assertAllInService(t *testing.T) {
	t.Helper()
	for _, e := range sc.LBEvents() {
		// kubeadm leaves haproxy and keepalived alone: a VIP holder keeps serving from the others.
		if strings.Contains(e, "(in service: true") || strings.Contains(e, "kubelet restart (in service: false, holds the VIP: true)") {
			t.Errorf("a control plane restarted while clients could reach it: %s", e)
		}
	}
	out := map[string]bool{}
	for _, e := range sc.LBEvents() {
		for _, cp := range []string{"cp1", "cp2", "cp3"} {
			switch {
			case strings.HasSuffix(e, " keepalived: hold") && strings.HasPrefix(e, cp+" "):
				out[cp] = true
			case strings.HasSuffix(e, " keepalived: release") && strings.HasPrefix(e, cp+" "):
				out[cp] = false
			}
		}
	}
	for cp, o := range out {
		if o {
			t.Errorf("%s left in maintenance", cp)
		}
	}
	if sc.VIPHolder() == "" {
		t.Error("no control plane holds the VIP")
	}
}

// TestHAUpgradeTakesEachControlPlaneOut: every restart of a control plane's static pods (kubeadm's
// and the new kubelet's) happens with that control plane out of every haproxy, and a new kubelet
// never starts on the VIP holder; each is put back afterwards. kubeadm leaves haproxy and keepalived
// alone, so the VIP stays through it; the holder's kubelet comes last, so the VIP moves once, to a
// control plane already done, and stays there (nopreempt); kubeadm's components are reported as it
// finishes them.
func TestHAUpgradeTakesEachControlPlaneOut(t *testing.T) {
	sc := haUpgradeCluster(t)
	if h := sc.VIPHolder(); h != "cp1" {
		t.Fatalf("VIP on %q before the upgrade, want cp1", h)
	}
	var logs bytes.Buffer
	r := sc.newRun(t, nil)
	r.Log = slog.New(slog.NewTextHandler(&logs, nil))
	o := testUpgradeOptions
	o.pollInterval = time.Millisecond
	if _, err := Execute(t.Context(), r, Upgrade(o)); err != nil {
		t.Fatal(err)
	}
	sc.assertAt(t, "v1.37.2")
	sc.assertAllInService(t)
	events := sc.LBEvents()
	restarts := 0
	for _, e := range events {
		if strings.Contains(e, "(in service: false,") {
			restarts++
		}
	}
	// kubeadm and the kubelet on each of 3 control planes.
	if restarts != 6 {
		t.Errorf("%d control-plane restarts out of service, want 6:\n%s", restarts, strings.Join(events, "\n"))
	}
	// kubeadm on cp1: every haproxy drains it, then maint; it keeps the VIP. The kubelets: cp2, cp3,
	// then cp1, whose keepalived gives the VIP up first.
	order := []string{"cp1 haproxy: set server k8s-api/cp1 state drain",
		"cp3 haproxy: set server k8s-api/cp1 state drain", "cp1 haproxy: set server k8s-api/cp1 state maint",
		"cp1 haproxy: shutdown sessions server k8s-api/cp1", "cp1 kubeadm upgrade (in service: false, holds the VIP: true)",
		"cp1 haproxy: set server k8s-api/cp1 state ready",
		"cp2 kubeadm upgrade (in service: false, holds the VIP: false)", "cp3 kubeadm upgrade (in service: false, holds the VIP: false)",
		"cp2 kubelet restart (in service: false, holds the VIP: false)", "cp3 kubelet restart (in service: false, holds the VIP: false)",
		"cp1 keepalived: hold", "vip cp1 -> cp2", "cp1 haproxy: set server k8s-api/cp1 state maint",
		"cp1 kubelet restart (in service: false, holds the VIP: false)", "cp1 keepalived: release"}
	at := 0
	for _, want := range order {
		i := slices.Index(events[at:], want)
		if i < 0 {
			t.Fatalf("event %q missing or out of order after %d:\n%s", want, at, strings.Join(events, "\n"))
		}
		at += i + 1
	}
	if i, j := slices.Index(events, "cp1 keepalived: release"), slices.Index(events, "cp1 keepalived: hold"); i < j {
		t.Errorf("cp1's marker released before it was ever set (kubeadm does not move the VIP):\n%s", strings.Join(events, "\n"))
	}
	moves := 0
	for _, e := range events {
		if strings.HasPrefix(e, "vip ") && !strings.HasPrefix(e, "vip none") {
			moves++
		}
	}
	if moves != 1 || sc.VIPHolder() != "cp2" {
		t.Errorf("the VIP moved %d times and is on %s, want once, to cp2:\n%s", moves, sc.VIPHolder(), strings.Join(events, "\n"))
	}
	for _, want := range []string{`msg="upgrade: out of the API load balancer" host=cp1 for="kubeadm upgrade apply" vip="" closed=0`,
		`msg="upgrade: out of the API load balancer" host=cp1 for="its kubelet's upgrade" vip=cp2`,
		`msg="upgrade: back in the API load balancer" host=cp3 etcdHealthy=3`,
		`msg="upgrade: kubeadm upgraded a component" host=cp2 component=etcd seconds=`,
		`msg="upgrade: out of the API load balancer" host=cp2 for="its kubelet's upgrade"`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, logs.String())
		}
	}
}

// TestHAUpgradeRefusesWithoutAnotherAPIServer: when every haproxy has the other control planes out
// of service (an operator's maintenance), taking cp1 out would stop the API: the run stops before
// changing the load balancer or the control plane.
func TestHAUpgradeRefusesWithoutAnotherAPIServer(t *testing.T) {
	sc := haUpgradeCluster(t)
	for _, h := range []string{"cp1", "cp2", "cp3"} {
		sc.SetHAProxyAdmin(h, "cp2", "maint")
		sc.SetHAProxyAdmin(h, "cp3", "maint")
	}
	_, err := sc.upgrade(t, t.TempDir(), false, testUpgradeOptions)
	if err == nil || !strings.Contains(err.Error(), "haproxy has no apiserver up besides cp1's") {
		t.Fatalf("err = %v", err)
	}
	if got := sc.Host("cp1").State().ControlPlane; got != "v1.36.5" {
		t.Errorf("cp1's control plane at %s", got)
	}
	for _, e := range sc.LBEvents() {
		if strings.Contains(e, "keepalived:") || strings.Contains(e, "haproxy:") || strings.Contains(e, "kubeadm upgrade") {
			t.Errorf("the refused run changed %s", e)
		}
	}
}

// TestHAUpgradeResumesOutOfService: kubeadm fails on cp2 while it is out of the load balancer; the
// error says so, cp2 stays out (its apiserver may be half-upgraded), and the re-run first puts it
// back once healthy, then finishes.
func TestHAUpgradeResumesOutOfService(t *testing.T) {
	sc := haUpgradeCluster(t)
	sc.Host("cp2").FailAt("kubeadm upgrade node")
	state := t.TempDir()
	_, err := sc.upgrade(t, state, false, testUpgradeOptions)
	if err == nil || !strings.Contains(err.Error(), "cp2 stays out of the API load balancer until the next run of upgrade, certs renew or apply puts it back") {
		t.Fatalf("err = %v", err)
	}
	events := sc.LBEvents()
	if events[len(events)-1] == "cp2 keepalived: release" {
		t.Errorf("cp2 put back after its kubeadm failed:\n%s", strings.Join(events, "\n"))
	}
	if _, err := sc.upgrade(t, state, false, testUpgradeOptions); err != nil {
		t.Fatalf("re-run: %v", err)
	}
	sc.assertAt(t, "v1.37.2")
	sc.assertAllInService(t)
}

// TestHAUpgradeWithALaterControlPlane: cp3 joined after cp1's and cp2's haproxy configs were written,
// so only its own haproxy balances to it. The upgrade takes each control plane out of the haproxies
// that know it and never names cp3 to the others (they would answer "No such server.").
func TestHAUpgradeWithALaterControlPlane(t *testing.T) {
	sc := haUpgradeCluster(t)
	sc.SetHAProxyAdmin("cp1", "cp3", "absent")
	sc.SetHAProxyAdmin("cp2", "cp3", "absent")
	if _, err := sc.upgrade(t, t.TempDir(), false, testUpgradeOptions); err != nil {
		t.Fatal(err)
	}
	sc.assertAt(t, "v1.37.2")
	for _, e := range sc.LBEvents() {
		if (strings.HasPrefix(e, "cp1 haproxy:") || strings.HasPrefix(e, "cp2 haproxy:")) && strings.Contains(e, "k8s-api/cp3") {
			t.Errorf("cp3 named to a haproxy that does not balance to it: %s", e)
		}
	}
	if !slices.Contains(sc.LBEvents(), "cp3 haproxy: set server k8s-api/cp3 state drain") {
		t.Errorf("cp3 not taken out of its own haproxy:\n%s", strings.Join(sc.LBEvents(), "\n"))
	}
}

// TestHAUpgradeOlderHAFiles: keepalived's check on these control planes predates the maintenance
// marker (files of an older installer). The upgrade still completes, takes each control plane out
// of haproxy, and says once per host, not at every turn, that the VIP cannot be moved first.
func TestHAUpgradeOlderHAFiles(t *testing.T) {
	sc := haUpgradeCluster(t)
	for _, h := range []string{"cp1", "cp2", "cp3"} {
		sc.Host(h).SetFile(manifests.KeepalivedCheckPath, []byte("#!/bin/sh\nexec curl -sfk https://127.0.0.1:6443/livez\n"), 0o755, "root:root")
	}
	var logs bytes.Buffer
	r := sc.newRun(t, nil)
	r.Log = slog.New(slog.NewTextHandler(&logs, nil))
	o := testUpgradeOptions
	o.pollInterval = time.Millisecond
	if _, err := Execute(t.Context(), r, Upgrade(o)); err != nil {
		t.Fatal(err)
	}
	sc.assertAt(t, "v1.37.2")
	if n := strings.Count(logs.String(), "keepalived's check has no maintenance marker"); n != 3 {
		t.Errorf("%d warnings about the old check script, want one per control plane (3):\n%s", n, logs.String())
	}
	for _, e := range sc.LBEvents() {
		if strings.Contains(e, "keepalived: hold") {
			t.Errorf("a marker was set although keepalived ignores it: %s", e)
		}
	}
	if !slices.Contains(sc.LBEvents(), "cp2 haproxy: set server k8s-api/cp1 state drain") {
		t.Errorf("cp1 not taken out of cp2's haproxy:\n%s", strings.Join(sc.LBEvents(), "\n"))
	}
}
