package phases

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/exitcode"
	"installer.dev/installer/pkg/manifests"
	"installer.dev/installer/pkg/pki"
	"installer.dev/installer/pkg/scripts"
	"installer.dev/installer/pkg/ssh"
	"installer.dev/installer/pkg/state"
)

// hostPhases are the create workflow's phases that act on hosts only (the cluster API phases are
// proven against a real cluster in the lab).
func hostPhases() []Phase {
	var out []Phase
	for _, p := range CreateCluster() {
		out = append(out, p)
		if p.Name() == "join/workers" {
			break
		}
	}
	return out
}

type simCluster struct {
	spec  *v1alpha1.Cluster
	hosts map[string]*simHost
	pki   *pki.Bundle
	in    manifests.Inputs
}

func newSimCluster(t *testing.T) *simCluster {
	t.Helper()
	return newSimClusterWith(t, nil)
}

// newSimClusterWith is newSimCluster with the spec changed by mutate before it is defaulted.
func newSimClusterWith(t *testing.T, mutate func(*v1alpha1.ClusterSpec)) *simCluster {
	t.Helper()
	c := &v1alpha1.Cluster{APIVersion: v1alpha1.APIVersion, Kind: v1alpha1.Kind, Metadata: v1alpha1.ObjectMeta{Name: "sim"},
		Spec: v1alpha1.ClusterSpec{
			KubernetesVersion: "v1.34.10",
			Install:           v1alpha1.Install{Source: v1alpha1.InstallBinary, BinaryMirror: "http://mirror:8080", ArtifactMirror: "http://mirror:8080", PackageProxy: "http://mirror:3142"},
			Hosts: []v1alpha1.Host{
				{Name: "cp1", Address: "10.0.0.11", Role: v1alpha1.RoleControlPlane},
				{Name: "w1", Address: "10.0.0.21", Role: v1alpha1.RoleWorker},
				{Name: "w2", Address: "10.0.0.22", Role: v1alpha1.RoleWorker},
			},
		}}
	if mutate != nil {
		mutate(&c.Spec)
	}
	c.Default()
	if errs, _ := v1alpha1.Validate(c); len(errs) > 0 {
		t.Fatal(errs.ToAggregate())
	}
	in, err := manifests.LoadInputs(context.Background(), &c.Spec, manifests.LoadOptions{VRRPPassword: "vrrppass", HashKey: []byte("k")})
	if err != nil {
		t.Fatal(err)
	}
	sc := &simCluster{spec: c, hosts: map[string]*simHost{}, pki: testPKI(t), in: in}
	for _, h := range c.Spec.Hosts {
		sc.hosts[h.Name] = newSimHost(h.Name, h.Address)
		sc.hosts[h.Name].caPEM = sc.pki.Cluster.CertPEM
	}
	return sc
}

func (sc *simCluster) run(t *testing.T) (*Run, error) {
	t.Helper()
	r, err := NewRun(sc.spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.PKI, r.Inputs, r.StateDir = sc.pki, sc.in, state.Dir(t.TempDir())
	r.Connect = func(ctx context.Context, h v1alpha1.Host) (ssh.Runner, error) { return sc.hosts[h.Name], nil }
	_, err = Execute(context.Background(), r, hostPhases())
	return r, err
}

// transcript is what each host saw, one line per call, scripts by their name (shortCommand).
func (sc *simCluster) transcript(from map[string]int) string {
	var b strings.Builder
	for _, name := range []string{"cp1", "w1", "w2"} {
		calls := sc.hosts[name].Calls()[from[name]:]
		fmt.Fprintf(&b, "== %s (%d calls)\n", name, len(calls))
		for _, c := range calls {
			switch c.Op {
			case "write":
				fmt.Fprintf(&b, "write %s %04o sensitive=%v\n", c.Path, c.File.Mode, c.File.Sensitive)
			case "run":
				fmt.Fprintln(&b, shortCommand(c.Cmd))
			default:
				fmt.Fprintf(&b, "%s %s\n", c.Op, c.Path)
			}
		}
	}
	return b.String()
}

// shortCommand is a command as transcripts show it: a script of pkg/scripts by its name and
// arguments, anything else as its quoted argv.
func shortCommand(cmd ssh.Cmd) string {
	if name, args := scriptCall(cmd); name != "" {
		return strings.TrimSpace(name + " " + ssh.Quote(args))
	}
	return ssh.Quote(cmd.Args)
}

func (sc *simCluster) marks() map[string]int {
	m := map[string]int{}
	for n, h := range sc.hosts {
		m[n] = len(h.Calls())
	}
	return m
}

func totalChanges(r *Run) int {
	n := 0
	for _, c := range r.Changes() {
		n += c
	}
	return n
}

// TestCreateOnFreshHosts pins every command the host phases run on three fresh hosts, then proves a
// second run on the converged hosts changes nothing.
func TestCreateOnFreshHosts(t *testing.T) {
	sc := newSimCluster(t)
	r, err := sc.run(t)
	if err != nil {
		t.Fatal(err)
	}
	if totalChanges(r) == 0 {
		t.Fatal("a fresh cluster needed no changes?")
	}
	got := sc.transcript(map[string]int{})
	golden := filepath.Join("testdata", "create-fresh.transcript")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if got != string(want) {
		t.Errorf("transcript differs from %s (run with -update after checking):\n%s", golden, got)
	}
	for _, token := range []string{"kubeadm init", "kubeadm join"} {
		if !strings.Contains(got, token) {
			t.Errorf("transcript lacks %q", token)
		}
	}

	mark := sc.marks()
	r2, err := sc.run(t)
	if err != nil {
		t.Fatal(err)
	}
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
	sc := newSimClusterWith(t, func(s *v1alpha1.ClusterSpec) {
		s.LoadBalancer = v1alpha1.LoadBalancer{Type: v1alpha1.LoadBalancerKubeVIP, VIP: "10.0.0.100"}
	})
	kubeconfigs := func(from int) []string {
		var out []string
		for _, c := range sc.hosts["cp1"].Calls()[from:] {
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
	if _, err := sc.run(t); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(kubeconfigs(0), ", "); got != "super-admin.conf, admin.conf" {
		t.Errorf("kube-vip pods written on cp1: %s, want super-admin.conf, admin.conf", got)
	}
	mark := sc.marks()
	r, err := sc.run(t)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(kubeconfigs(mark["cp1"]), ", "); got != "admin.conf" || totalChanges(r) != 0 {
		t.Errorf("re-run: kube-vip pods compared %s, changes %v; want admin.conf only, no change", got, r.Changes())
	}
}

// TestResumeAfterFailure injects a failure into one command of each phase; the run fails naming the
// phase and host, and a re-run completes the cluster; a third run changes nothing.
func TestResumeAfterFailure(t *testing.T) {
	points := []struct{ host, command, phase string }{
		{"w1", "swap-off.sh", "prepare"},
		{"w2", "sysctl -q -p", "prepare"},
		{"cp1", "apt.sh", "runtime"},
		{"w1", "systemctl restart containerd", "runtime"},
		{"w2", "release/v1.34.10/bin/linux/amd64/kubelet", "kubernetes"},
		{"cp1", "kubernetes-sigs/cri-tools/releases", "kubernetes"}, // the crictl download
		{"w1", "systemctl enable kubelet", "kubernetes"},
		{"cp1", "kubeadm init", "init"},
		{"w2", "kubeadm join", "join/workers"},
	}
	for _, p := range points {
		t.Run(p.phase+"/"+p.host+"/"+p.command, func(t *testing.T) {
			sc := newSimCluster(t)
			sc.hosts[p.host].failOn = p.command
			_, err := sc.run(t)
			if err == nil {
				t.Fatalf("injected failure of %q on %s did not fail the run", p.command, p.host)
			}
			if !strings.HasPrefix(err.Error(), "phase "+p.phase+": ") || !strings.Contains(err.Error(), "host "+p.host+": ") || exitcode.Of(err) != exitcode.Failure {
				t.Fatalf("error %q does not name phase %s and host %s", err, p.phase, p.host)
			}
			if _, err := sc.run(t); err != nil {
				t.Fatalf("re-run after the failure: %v", err)
			}
			for name, h := range sc.hosts {
				if !h.kubeletConf || h.kube["kubelet"] != "v1.34.10" || h.containerd == "" || !h.sysctlOK || h.swap {
					t.Errorf("host %s not converged: %+v", name, h)
				}
			}
			r3, err := sc.run(t)
			if err != nil || totalChanges(r3) != 0 {
				t.Errorf("third run: %v, changes %v", err, r3.Changes())
			}
		})
	}
}

// TestJoinNodeTouchesNoExistingNode converges cp1 and w1, then joins w2 alone: w2 becomes a node,
// w1 is not even connected, and cp1 is only read from (plus the bootstrap token kubeadm makes).
func TestJoinNodeTouchesNoExistingNode(t *testing.T) {
	sc := newSimCluster(t)
	first, err := NewRun(sc.spec, []string{"cp1", "w1"})
	if err != nil {
		t.Fatal(err)
	}
	first.PKI, first.Inputs = sc.pki, sc.in
	first.Connect = func(ctx context.Context, h v1alpha1.Host) (ssh.Runner, error) { return sc.hosts[h.Name], nil }
	if _, err := Execute(context.Background(), first, hostPhases()); err != nil {
		t.Fatal(err)
	}
	mark := sc.marks()

	r, err := NewRun(sc.spec, []string{"w2"}, "cp1")
	if err != nil {
		t.Fatal(err)
	}
	r.PKI, r.Inputs = sc.pki, sc.in
	r.Connect = func(ctx context.Context, h v1alpha1.Host) (ssh.Runner, error) { return sc.hosts[h.Name], nil }
	joinPhases := JoinNode()
	if _, err := Execute(context.Background(), r, joinPhases[:len(joinPhases)-1]); err != nil { // WaitReady needs a real API
		t.Fatal(err)
	}
	if !sc.hosts["w2"].kubeletConf {
		t.Fatal("w2 did not join")
	}
	if n := len(sc.hosts["w1"].Calls()) - mark["w1"]; n != 0 {
		t.Errorf("join node sent %d calls to w1", n)
	}
	for _, c := range sc.hosts["cp1"].Calls()[mark["cp1"]:] {
		cmd := strings.Join(c.Cmd.Args, " ")
		name, _ := scriptCall(c.Cmd)
		readOnly := name == scripts.Facts.Name || cmd == strings.Join(initCompleteCheck.Args, " ") || strings.HasPrefix(cmd, "kubeadm token create")
		if c.Op != "run" || !readOnly {
			t.Errorf("join node changed cp1: %s %s", c.Op, cmd)
		}
	}

	// Joining the first control plane is refused: it initialises the cluster.
	bad, _ := NewRun(sc.spec, []string{"cp1"})
	bad.PKI, bad.Inputs = sc.pki, sc.in
	bad.Connect = r.Connect
	if _, err := Execute(context.Background(), bad, JoinNode()); err == nil || !strings.Contains(err.Error(), "host cp1 initialises the cluster; use create cluster") {
		t.Errorf("join of the first control plane: %v", err)
	}
}

// TestPlanOnFreshHosts: a dry run over fresh hosts changes nothing (only reads reach the hosts),
// records what a real run would do, and renders containerd's config for the version a package
// install brings.
func TestPlanOnFreshHosts(t *testing.T) {
	sc := newSimCluster(t)
	r, err := NewRun(sc.spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.PKI, r.Inputs, r.StateDir, r.DryRun = sc.pki, sc.in, state.Dir(t.TempDir()), true
	r.Connect = func(ctx context.Context, h v1alpha1.Host) (ssh.Runner, error) { return sc.hosts[h.Name], nil }
	if _, err := Execute(context.Background(), r, hostPhases()); err != nil {
		t.Fatal(err)
	}
	for name, h := range sc.hosts {
		for _, c := range h.Calls() {
			if c.Op == "write" {
				t.Errorf("dry run wrote %s on %s", c.Path, name)
			}
			line := shortCommand(c.Cmd)
			for _, change := range []string{"kubeadm init", "kubeadm join", "apt.sh", "download.sh", "systemctl", "swap-off.sh", "sysctl -q -p"} {
				if c.Op == "run" && strings.Contains(line, change) && !strings.Contains(line, "is-enabled") {
					t.Errorf("dry run ran %q on %s", line, name)
				}
			}
		}
		if h.containerd != "" || h.kubeletConf {
			t.Errorf("dry run changed %s's state", name)
		}
	}
	var sawConfig, sawInit bool
	for _, p := range r.Planned() {
		if p.File != nil && p.File.Path == "/etc/containerd/config.toml" {
			sawConfig = strings.Contains(string(p.File.Display), "version = 2")
		}
		if p.Host == "cp1" && strings.HasPrefix(p.Command, "kubeadm init") {
			sawInit = true
		}
	}
	if !sawConfig || !sawInit {
		t.Errorf("plan lacks containerd's v2 config (%v) or kubeadm init (%v)", sawConfig, sawInit)
	}
}
