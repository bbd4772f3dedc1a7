package phases

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"installer.dev/installer/pkg/exitcode"
	"installer.dev/installer/pkg/facts"
	"installer.dev/installer/pkg/manifests"
	"installer.dev/installer/pkg/scripts"
)

// TestResetWholeCluster pins every command a whole-cluster reset runs on a converged cluster
// (workers first, the control plane last; kubeadm reset, then the rest and the firewall), checks
// that each host is clean and that its facts now show a host that is no node, proves a second reset
// changes nothing, and that create cluster initialises and joins the same hosts again.
func TestResetWholeCluster(t *testing.T) {
	sc := newSimCluster(t, createSpec(t))
	sc.create(t)
	mark := sc.marks()
	r := sc.newRun(t, nil)
	timings, err := Execute(context.Background(), r, Reset(ResetOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	got := sc.transcript(mark)
	checkGolden(t, "reset-whole.transcript", got)
	var order []string
	for _, tm := range timings {
		order = append(order, tm.Phase+"="+map[bool]string{true: "skipped", false: "ran"}[tm.Skipped != ""])
	}
	if want := "connect=ran facts=ran identity=ran check=ran cordon=skipped reset/workers=ran reset/control-planes=ran state=ran unreachable=skipped"; strings.Join(order, " ") != want {
		t.Errorf("phases: %s\nwant:  %s", strings.Join(order, " "), want)
	}
	// Workers are reset before the control plane starts.
	cpStart := strings.Index(got, "== cp1")
	if !strings.Contains(got[cpStart:], "kubeadm reset -f") {
		t.Error("cp1 was not reset")
	}
	for _, h := range sc.Hosts() {
		if left := h.Leftovers(manifests.KeepalivedConfigPath); len(left) > 0 {
			t.Errorf("%s after the reset: %v", h.Name(), left)
		}
		f, err := facts.Gather(context.Background(), h)
		if err != nil {
			t.Fatal(err)
		}
		if f.KubeletConfPresent || f.AdminConfPresent || f.Listening(10250) || f.KubeletVersion == "" || f.ContainerdVersion == "" {
			t.Errorf("%s facts after the reset: kubelet.conf %v admin.conf %v kubelet listening %v, kubelet %q containerd %q; want a fresh host with the binaries kept",
				h.Name(), f.KubeletConfPresent, f.AdminConfPresent, f.Listening(10250), f.KubeletVersion, f.ContainerdVersion)
		}
	}

	mark = sc.marks()
	r2, err := sc.run(t, Reset(ResetOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	if n := totalChanges(r2); n != 0 {
		t.Errorf("second reset made %d changes: %v", n, r2.Changes())
	}
	again := sc.transcript(mark)
	for _, forbidden := range []string{"kubeadm reset", "reset-host.sh remove", "reset-firewall.sh remove", "systemctl"} {
		if strings.Contains(again, forbidden) {
			t.Errorf("second reset ran %q:\n%s", forbidden, again)
		}
	}

	mark = sc.marks()
	sc.create(t)
	recreated := sc.transcript(mark)
	for _, want := range []string{"kubeadm init", "kubeadm join", "write /etc/kubernetes/pki/ca.crt", "systemctl enable kubelet", "mkdir -p -m 0755 /etc/kubernetes/manifests"} {
		if !strings.Contains(recreated, want) {
			t.Errorf("create after the reset lacks %q:\n%s", want, recreated)
		}
	}
}

// TestResetDryRun: a dry run lists what a reset would remove per host and changes nothing.
func TestResetDryRun(t *testing.T) {
	sc := newSimCluster(t, createSpec(t))
	sc.create(t)
	mark := sc.marks()
	r := sc.newRun(t, nil)
	r.DryRun = true
	if _, err := Execute(context.Background(), r, Reset(ResetOptions{})); err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(sc.transcript(mark), "\n") {
		if strings.Contains(line, " remove") || strings.Contains(line, "kubeadm reset") || strings.HasPrefix(line, "write") {
			t.Errorf("dry run changed a host: %s", line)
		}
	}
	for _, h := range sc.Hosts() {
		if len(h.Leftovers(manifests.KeepalivedConfigPath)) == 0 {
			t.Errorf("dry run cleaned %s", h.Name())
		}
	}
	var w1 []string
	for _, p := range r.Planned() {
		if p.Host == "w1" {
			w1 = append(w1, p.Phase+": "+p.Command)
		}
	}
	want := []string{
		"reset/workers: kubeadm reset -f --cri-socket unix:///run/containerd/containerd.sock",
		"reset/workers: remove unit kubelet (enabled, active)",
		"reset/workers: remove pods 7 pod sandboxes",
		"reset/workers: remove path /etc/kubernetes",
		"reset/workers: remove path /var/lib/kubelet",
		"reset/workers: remove path /var/lib/cni",
		"reset/workers: remove path /run/flannel",
		"reset/workers: remove path /etc/cni/net.d/10-flannel.conflist",
		"reset/workers: remove link cni0",
		"reset/workers: remove link flannel.1",
		"reset/workers: remove jump iptables-nft nat PREROUTING#1 -> KUBE-SERVICES",
		"reset/workers: remove chain iptables-nft nat KUBE-SERVICES",
		"reset/workers: remove chain iptables-nft nat FLANNEL-POSTRTG",
	}
	if strings.Join(w1, "\n") != strings.Join(want, "\n") {
		t.Errorf("planned for w1:\n%s\nwant:\n%s", strings.Join(w1, "\n"), strings.Join(want, "\n"))
	}
}

// TestResetRefusesLastControlPlane: resetting the only control plane while workers stay is refused
// with exit code 2 before anything changes; with the workers named too it is a whole reset.
func TestResetRefusesLastControlPlane(t *testing.T) {
	sc := newSimCluster(t, createSpec(t))
	sc.create(t)
	mark := sc.marks()
	r, err := sc.run(t, Reset(ResetOptions{}), "cp1")
	if err == nil || exitcode.Of(err) != exitcode.InvalidInput ||
		!strings.Contains(err.Error(), "refusing to reset the last control plane(s): w1, w2 would be left without one (in the spec; the cluster API did not answer") {
		t.Fatalf("reset of the last control plane: %v (exit %d)", err, exitcode.Of(err))
	}
	if n := totalChanges(r); n != 0 {
		t.Errorf("the refused reset made %d changes", n)
	}
	if got := sc.transcript(mark); strings.Contains(got, "kubeadm reset") || strings.Contains(got, "remove") {
		t.Errorf("the refused reset changed a host:\n%s", got)
	}

	if _, err := sc.run(t, Reset(ResetOptions{}), "cp1", "w1", "w2"); err != nil {
		t.Fatalf("every host named: %v", err)
	}
	for _, h := range sc.Hosts() {
		if left := h.Leftovers(manifests.KeepalivedConfigPath); len(left) > 0 {
			t.Errorf("%s: %v", h.Name(), left)
		}
	}
}

// TestResetControlPlaneEtcdMember: a control plane leaves while another stays. When kubeadm reset
// removed its etcd member, the check on the surviving control plane finds nothing to do; when the
// member was left behind, the check removes it there. The survivor itself is only read from and
// runs etcdctl.
func TestResetControlPlaneEtcdMember(t *testing.T) {
	for _, keep := range []bool{false, true} {
		t.Run(fmt.Sprintf("member-left-%v", keep), func(t *testing.T) {
			sc := newSimCluster(t, createSpec(t, "cp1", "cp2", "w1", "w2"))
			sc.create(t)
			members := sc.EtcdMembers()
			if len(members) != 2 {
				t.Fatalf("etcd members after create: %v", members)
			}
			if keep {
				sc.Host("cp2").KeepEtcdMemberOnReset()
			}
			mark := sc.marks()
			r := sc.newRun(t, []string{"cp2"}, "cp1")
			if _, err := Execute(context.Background(), r, Reset(ResetOptions{})); err != nil {
				t.Fatal(err)
			}
			if after := sc.EtcdMembers(); after["cp2"] != "" || len(after) != 1 {
				t.Errorf("etcd members after cp2's reset: %v, want cp1's only", after)
			}
			var cp1 []string
			for _, l := range sc.Host("cp1").Commands(mark.hosts["cp1"]) {
				if l != scripts.Facts.Name && l != leftoverCheck { // read everywhere
					cp1 = append(cp1, l)
				}
			}
			// The check before anything changes, then the member check after cp2's reset.
			want := []string{"etcd.sh member-list", "etcd.sh member-list"}
			if keep {
				want = append(want, "etcd.sh member-remove "+members["cp2"])
			}
			if strings.Join(cp1, "\n") != strings.Join(want, "\n") {
				t.Errorf("commands on cp1:\n%s\nwant:\n%s", strings.Join(cp1, "\n"), strings.Join(want, "\n"))
			}
			if left := sc.Host("cp2").Leftovers(manifests.KeepalivedConfigPath); len(left) > 0 {
				t.Errorf("cp2 after its reset: %v", left)
			}
			for _, n := range []string{"w1", "w2"} {
				if got := sc.Host(n).Transcript(mark.hosts[n]); len(got) != 0 {
					t.Errorf("%s was touched: %v", n, got)
				}
			}
		})
	}
}

// TestResetControlPlaneRefusedWithoutEtcd: resetting cp2 while cp1 stays needs cp1's etcd to
// remove cp2's member; when it does not answer, the reset is refused before anything changes.
func TestResetControlPlaneRefusedWithoutEtcd(t *testing.T) {
	sc := newSimCluster(t, createSpec(t, "cp1", "cp2", "w1", "w2"))
	sc.create(t)
	sc.Host("cp1").StopEtcd()
	mark := sc.marks()
	r := sc.newRun(t, []string{"cp2"}, "cp1")
	_, err := Execute(context.Background(), r, Reset(ResetOptions{}))
	if exitcode.Of(err) != exitcode.Refused || !strings.Contains(err.Error(), "cannot reset control plane cp2: etcd does not answer on cp1") {
		t.Fatalf("got %v (exit %d), want a refusal naming cp2 and cp1", err, exitcode.Of(err))
	}
	if n := totalChanges(r); n != 0 {
		t.Errorf("refused reset made %d changes: %v", n, r.Changes())
	}
	for _, h := range sc.Hosts() {
		for _, l := range h.Transcript(mark.hosts[h.Name()]) {
			if strings.HasPrefix(l, "write ") || strings.Contains(l, "kubeadm reset") || strings.Contains(l, "etcd.sh member-remove") || strings.HasPrefix(l, scripts.ResetHost.Name) {
				t.Errorf("%s changed by a refused reset: %s", h.Name(), l)
			}
		}
	}
	if left := sc.Host("cp2").Leftovers(manifests.KeepalivedConfigPath); len(left) == 0 {
		t.Error("cp2 was reset")
	}
}

func TestParseEtcdMembers(t *testing.T) {
	out := "8e9e05c52164694d, started, cp1, https://10.0.0.11:2380, https://10.0.0.11:2379, false\n" +
		"91bc3c398fb3c146, unstarted, , https://10.0.0.12:2380,https://[fd00::12]:2380, , false\n"
	members, err := parseEtcdMembers(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, ip, id string
		ok           bool
	}{
		{"cp1", "10.0.0.99", "8e9e05c52164694d", true},
		{"cp2", "10.0.0.12", "91bc3c398fb3c146", true}, // never started: found by its peer URL
		{"cp2", "fd00::12", "91bc3c398fb3c146", true},
		{"cp3", "10.0.0.13", "", false},
	} {
		m, ok := memberOf(members, c.name, c.ip)
		if ok != c.ok || m.ID != c.id {
			t.Errorf("%s/%s: %+v %v", c.name, c.ip, m, ok)
		}
	}
	for _, bad := range []string{"", "Error: context deadline exceeded", "xyz, started, cp1, https://a:2380, https://a:2379, false", "8e9e05c52164694d; rm -rf /, started, a, b, c, false"} {
		if _, err := parseEtcdMembers(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}
