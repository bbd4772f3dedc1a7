package phases

import (
	"context"
	"strings"
	"testing"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/exitcode"
	"installer.dev/installer/pkg/manifests"
	"installer.dev/installer/pkg/scripts"
	"installer.dev/installer/pkg/ssh"
)

// TestCreateOnFreshHosts pins every command the host phases run on three fresh hosts, then proves a
// second run on the converged hosts changes nothing.
func TestCreateOnFreshHosts(t *testing.T) {
	sc := newSimCluster(t, createSpec(t))
	r := sc.create(t)
	if totalChanges(r) == 0 {
		t.Fatal("a fresh cluster needed no changes?")
	}
	got := sc.transcript(simMarks{})
	checkGolden(t, "create-fresh.transcript", got)
	for _, token := range []string{"kubeadm init", "kubeadm join"} {
		if !strings.Contains(got, token) {
			t.Errorf("transcript lacks %q", token)
		}
	}

	mark := sc.marks()
	r2 := sc.create(t)
	if n := totalChanges(r2); n != 0 {
		t.Errorf("converged re-run made %d changes: %v\n%s", n, r2.Changes(), sc.transcript(mark))
	}
	again := sc.transcript(mark)
	// Uploads still compare checksums (a "write" call the fake records); the change counter above
	// says none changed. No command that changes a host may run.
	// Scripts appear by name ("apt.sh <proxy> update").
	for _, forbidden := range []string{"kubeadm init", "kubeadm join", "systemctl restart", "apt.sh ", "download.sh "} {
		if strings.Contains(again, forbidden) {
			t.Errorf("converged re-run ran %q:\n%s", forbidden, again)
		}
	}
}

// TestKubeVIPAdminConfAfterInit: kube-vip on the first control plane gets super-admin.conf before
// kubeadm init (admin.conf has no rights yet) and admin.conf once init is done; a re-run, which sees
// admin.conf on the host, leaves the admin.conf pod alone.
func TestKubeVIPAdminConfAfterInit(t *testing.T) {
	sc := newSimCluster(t, createSpecWith(t, func(s *v1alpha1.ClusterSpec) {
		s.LoadBalancer = v1alpha1.LoadBalancer{Type: v1alpha1.LoadBalancerKubeVIP, VIP: "10.0.0.100"}
	}))
	kubeconfigs := func(from int) []string {
		var out []string
		for _, c := range sc.Host("cp1").Calls()[from:] {
			if c.Op == "write" && c.Path == manifests.KubeVIPPodPath {
				switch {
				case strings.Contains(string(c.File.Content), "path: /etc/kubernetes/super-admin.conf"):
					out = append(out, "super-admin.conf")
				case strings.Contains(string(c.File.Content), "path: /etc/kubernetes/admin.conf"):
					out = append(out, "admin.conf")
				default:
					out = append(out, "?")
				}
			}
		}
		return out
	}
	sc.create(t)
	if got := strings.Join(kubeconfigs(0), ", "); got != "super-admin.conf, admin.conf" {
		t.Errorf("kube-vip pods written on cp1: %s, want super-admin.conf, admin.conf", got)
	}
	mark := sc.marks()
	r := sc.create(t)
	// The re-run compares every file in one round trip and finds the pod as it should be.
	pod, _ := sc.Host("cp1").File(manifests.KubeVIPPodPath)
	if got := strings.Join(kubeconfigs(mark.hosts["cp1"]), ", "); got != "" || totalChanges(r) != 0 || !strings.Contains(string(pod.Content), "path: /etc/kubernetes/admin.conf") {
		t.Errorf("re-run: kube-vip pods written %q, changes %v; want none, no change, and the pod on admin.conf", got, r.Changes())
	}
}

// TestResumeAfterFailure injects a failure into one step of each phase; the run fails naming the
// phase and host, and a re-run completes the cluster; a third run changes nothing.
func TestResumeAfterFailure(t *testing.T) {
	points := []struct{ host, step, phase string }{
		{"w1", "swap-off.sh", "prepare"},
		{"w2", "sysctl -q -p", "prepare"},
		{"cp1", "download.sh archive http://mirror:8080/containerd/containerd/releases/download/v2.3.7/containerd-2.3.7-linux-amd64.tar.gz", "runtime"},
		{"w2", "download.sh binary http://mirror:8080/opencontainers/runc/releases/download/v1.5.3/runc.amd64", "runtime"},
		{"w1", "systemctl restart containerd", "runtime"},
		{"w2", "download.sh binary http://mirror:8080/release/v1.36.5/bin/linux/amd64/kubelet", "kubernetes"},
		{"cp1", "download.sh archive http://mirror:8080/kubernetes-sigs/cri-tools/releases/download/v1.36.0/crictl-v1.36.0-linux-amd64.tar.gz", "kubernetes"},
		{"w1", "systemctl enable kubelet", "kubernetes"},
		{"cp1", "kubeadm init", "init"},
		{"w2", "kubeadm join", "join/workers"},
	}
	for _, p := range points {
		t.Run(p.phase+"/"+p.host+"/"+p.step, func(t *testing.T) {
			sc := newSimCluster(t, createSpec(t))
			sc.Host(p.host).FailAt(p.step)
			_, err := sc.run(t, hostPhases())
			if err == nil {
				t.Fatalf("injected failure at %q on %s did not fail the run", p.step, p.host)
			}
			if !strings.HasPrefix(err.Error(), "phase "+p.phase+": ") || !strings.Contains(err.Error(), "host "+p.host+": ") || exitcode.Of(err) != exitcode.Failure {
				t.Fatalf("error %q does not name phase %s and host %s", err, p.phase, p.host)
			}
			if _, err := sc.run(t, hostPhases()); err != nil {
				t.Fatalf("re-run after the failure: %v", err)
			}
			for _, h := range sc.Hosts() {
				if st := h.State(); !st.Node || st.Kubelet != "v1.36.5" || st.Containerd == "" || !st.Sysctl || st.Swap {
					t.Errorf("host %s not converged: %+v", h.Name(), st)
				}
			}
			r3, err := sc.run(t, hostPhases())
			if err != nil || totalChanges(r3) != 0 {
				t.Errorf("third run: %v, changes %v", err, r3.Changes())
			}
		})
	}
}

// TestJoinNodeTouchesNoExistingNode converges cp1 and w1, then joins w2 alone: w2 becomes a node,
// w1 is not even connected, and cp1 is only read from (plus the bootstrap token kubeadm makes).
func TestJoinNodeTouchesNoExistingNode(t *testing.T) {
	sc := newSimCluster(t, createSpec(t))
	if _, err := sc.run(t, hostPhases(), "cp1", "w1"); err != nil {
		t.Fatal(err)
	}
	mark := sc.marks()

	r := sc.newRun(t, []string{"w2"}, "cp1")
	joinPhases := JoinNode()
	if _, err := Execute(context.Background(), r, joinPhases[:len(joinPhases)-1]); err != nil { // WaitReady needs a real API
		t.Fatal(err)
	}
	if !sc.Host("w2").State().Node {
		t.Fatal("w2 did not join")
	}
	if got := sc.Host("w1").Transcript(mark.hosts["w1"]); len(got) != 0 {
		t.Errorf("join node sent %d calls to w1: %q", len(got), got)
	}
	for _, l := range sc.Host("cp1").Transcript(mark.hosts["cp1"]) {
		readOnly := l == scripts.Facts.Name || l == leftoverCheck || l == ssh.Quote(initCompleteCheck.Args) || strings.HasPrefix(l, "kubeadm token create ")
		if !readOnly {
			t.Errorf("join node changed cp1: %s", l)
		}
	}

	// Joining the first control plane is refused: it initialises the cluster.
	bad := sc.newRun(t, []string{"cp1"})
	if _, err := Execute(context.Background(), bad, JoinNode()); err == nil || !strings.Contains(err.Error(), "host cp1 initialises the cluster; use create cluster") {
		t.Errorf("join of the first control plane: %v", err)
	}
}

// TestPlanOnFreshHosts: a dry run over fresh hosts changes nothing (only reads reach the hosts),
// records what a real run would do, and renders containerd's config for the version a package
// install brings.
func TestPlanOnFreshHosts(t *testing.T) {
	sc := newSimCluster(t, createSpec(t))
	r := sc.newRun(t, nil)
	r.DryRun = true
	if _, err := Execute(context.Background(), r, hostPhases()); err != nil {
		t.Fatal(err)
	}
	for _, h := range sc.Hosts() {
		for _, l := range h.Transcript(0) {
			if strings.HasPrefix(l, "write ") {
				t.Errorf("dry run on %s: %s", h.Name(), l)
			}
		}
		for _, line := range h.Commands(0) {
			for _, change := range []string{"kubeadm init", "kubeadm join", "apt.sh", "download.sh", "systemctl", "swap-off.sh", "sysctl -q -p"} {
				if strings.Contains(line, change) && !strings.Contains(line, "is-enabled") {
					t.Errorf("dry run ran %q on %s", line, h.Name())
				}
			}
		}
		if st := h.State(); st.Containerd != "" || st.Node {
			t.Errorf("dry run changed %s's state", h.Name())
		}
	}
	var sawConfig, sawInit bool
	for _, p := range r.Planned() {
		if p.File != nil && p.File.Path == "/etc/containerd/config.toml" {
			sawConfig = strings.Contains(string(p.File.Display), "version = 3")
		}
		if p.Host == "cp1" && strings.HasPrefix(p.Command, "kubeadm init") {
			sawInit = true
		}
	}
	if !sawConfig || !sawInit {
		t.Errorf("plan lacks containerd 2's config (%v) or kubeadm init (%v)", sawConfig, sawInit)
	}
}
