package phases

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/exitcode"
	"installer.dev/installer/pkg/facts"
	"installer.dev/installer/pkg/scripts"
	"installer.dev/installer/pkg/ssh"
	"installer.dev/installer/pkg/state"
)

// etcdSim is the member list of the simulated cluster's etcd.
type etcdSim struct {
	mu      sync.Mutex
	members map[string]string // name -> hex ID
	next    int
}

// resetSimHost adds to simHost what a cluster leaves on a host and what kubeadm reset and the
// installer's reset scripts do to it, measured on real hosts (lab-notes/lab-upgrade-ha.md §5):
// kubeadm reset stops the kubelet, removes pods, empties /var/lib/kubelet, /var/lib/etcd,
// manifests/ and pki/, deletes kubeadm's kubeconfigs and an etcd member; it leaves the directories,
// /etc/kubernetes/installer and tmp/, the CNI's files, links and firewall rules, and the kubelet
// enabled.
type resetSimHost struct {
	*simHost
	role v1alpha1.Role
	etcd *etcdSim

	rmu  sync.Mutex
	log  []string
	gone map[string]bool // files removed from the fake's map (it has no delete)
	// What a node leaves.
	kubeletDir, etcdDir, pods, cni, links, firewall bool
	// keepMember: kubeadm reset could not remove this host's etcd member.
	keepMember bool
	// etcdDown: no etcd answers on this host (etcdctl fails).
	etcdDown bool
}

func newResetSimHost(s *simHost, role v1alpha1.Role, etcd *etcdSim) *resetSimHost {
	return &resetSimHost{simHost: s, role: role, etcd: etcd, gone: map[string]bool{}}
}

func (s *resetSimHost) record(line string) {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	s.log = append(s.log, line)
}

func (s *resetSimHost) marks() int {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	return len(s.log)
}

func (s *resetSimHost) since(mark int) []string {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	return append([]string(nil), s.log[mark:]...)
}

// fileUnder lists the fake's files below dir that a reset has not removed.
func (s *resetSimHost) fileUnder(dir string) bool {
	for _, c := range s.Fake.Calls() {
		if c.Op == "write" && strings.HasPrefix(c.Path, dir) && !s.gone[c.Path] {
			return true
		}
	}
	return false
}

func (s *resetSimHost) ReadFile(ctx context.Context, path string, o ssh.ReadOptions) ([]byte, error) {
	s.record("read " + path)
	s.rmu.Lock()
	gone := s.gone[path]
	s.rmu.Unlock()
	if gone {
		return nil, fmt.Errorf("read %s: %w", path, fs.ErrNotExist)
	}
	return s.simHost.ReadFile(ctx, path, o)
}

func (s *resetSimHost) WriteFile(ctx context.Context, f ssh.File) (bool, error) {
	s.record(fmt.Sprintf("write %s %04o", f.Path, f.Mode))
	s.rmu.Lock()
	wasGone := s.gone[f.Path]
	delete(s.gone, f.Path)
	s.rmu.Unlock()
	changed, err := s.simHost.WriteFile(ctx, f)
	return changed || wasGone, err
}

func (s *resetSimHost) Run(ctx context.Context, cmd ssh.Cmd) (ssh.Result, error) {
	s.record("run " + shortCommand(cmd))
	a := cmd.Args
	name, args := scriptCall(cmd)
	switch {
	case name == scripts.ResetHost.Name: // MODE PODNETS FILE...
		return s.hostReset(args[0] == "remove", args[2:]), nil
	case name == scripts.ResetFirewall.Name:
		return s.firewallReset(args[0] == "remove"), nil
	case name == scripts.Etcd.Name:
		return s.etcdctl(args)
	case len(a) > 1 && a[0] == "kubeadm" && a[1] == "reset":
		s.kubeadmReset()
		return ssh.Result{}, nil
	case name == scripts.FileState.Name:
		s.rmu.Lock()
		gone := s.gone[args[0]]
		s.rmu.Unlock()
		if gone {
			return ssh.Result{Stdout: []byte("missing\n")}, nil
		}
	}
	res, err := s.simHost.Run(ctx, cmd)
	line := strings.Join(a, " ")
	if err == nil && (strings.HasPrefix(line, "kubeadm init") || strings.HasPrefix(line, "kubeadm join")) {
		s.rmu.Lock()
		s.kubeletDir, s.pods, s.cni, s.links, s.firewall = true, true, true, true, true
		s.etcdDir = s.role == v1alpha1.RoleControlPlane
		s.rmu.Unlock()
		if s.role == v1alpha1.RoleControlPlane {
			s.etcd.mu.Lock()
			s.etcd.next++
			s.etcd.members[s.name] = fmt.Sprintf("%x", 0x1e9e05c52164694d+s.etcd.next)
			s.etcd.mu.Unlock()
		}
	}
	return res, err
}

func (s *resetSimHost) kubeadmReset() {
	s.simHost.mu.Lock()
	s.kubeletConf, s.adminConf, s.initDone = false, false, false
	s.active["kubelet"] = false
	s.simHost.mu.Unlock()
	s.rmu.Lock()
	s.pods = false
	for _, c := range s.Fake.Calls() {
		if c.Op == "write" && (strings.HasPrefix(c.Path, "/etc/kubernetes/pki/") || strings.HasPrefix(c.Path, "/etc/kubernetes/manifests/")) {
			s.gone[c.Path] = true
		}
	}
	s.rmu.Unlock()
	if s.role == v1alpha1.RoleControlPlane && !s.keepMember {
		s.etcd.mu.Lock()
		delete(s.etcd.members, s.name)
		s.etcd.mu.Unlock()
	}
}

// hostReset answers the host reset script: the lines it prints, and in remove mode its effect.
func (s *resetSimHost) hostReset(remove bool, extra []string) ssh.Result {
	s.simHost.mu.Lock()
	enabled, active, manifests, kubeadm := s.enabled["kubelet"], s.active["kubelet"], s.manifests, s.kube["kubeadm"] != ""
	if remove {
		s.enabled["kubelet"], s.active["kubelet"], s.manifests = false, false, false
	}
	s.simHost.mu.Unlock()
	s.rmu.Lock()
	defer s.rmu.Unlock()
	var b strings.Builder
	if kubeadm {
		b.WriteString("have kubeadm\n")
	}
	if enabled || active {
		fmt.Fprintf(&b, "unit kubelet (%s, %s)\n", map[bool]string{true: "enabled", false: "disabled"}[enabled], map[bool]string{true: "active", false: "inactive"}[active])
	}
	if s.pods {
		b.WriteString("pods 7 pod sandboxes\n")
	}
	paths := []struct {
		path    string
		present bool
	}{
		{"/etc/kubernetes", manifests || s.fileUnder("/etc/kubernetes/")},
		{"/var/lib/kubelet", s.kubeletDir}, {"/var/lib/etcd", s.etcdDir},
		{"/var/lib/cni", s.cni}, {"/run/flannel", s.cni},
	}
	for _, p := range extra {
		paths = append(paths, struct {
			path    string
			present bool
		}{p, s.fileUnder(p)})
	}
	for _, p := range paths {
		if p.present {
			fmt.Fprintf(&b, "path %s\n", p.path)
		}
	}
	if s.cni {
		b.WriteString("path /etc/cni/net.d/10-flannel.conflist\n")
	}
	if s.links {
		b.WriteString("link cni0\nlink flannel.1\n")
	}
	if remove {
		if s.pods {
			s.pods = false
		}
		for _, c := range s.Fake.Calls() {
			if c.Op == "write" && strings.HasPrefix(c.Path, "/etc/kubernetes/") {
				s.gone[c.Path] = true
			}
			for _, p := range extra {
				if c.Op == "write" && c.Path == p {
					s.gone[c.Path] = true
				}
			}
		}
		s.kubeletDir, s.etcdDir, s.cni, s.links = false, false, false, false
	}
	return ssh.Result{Stdout: []byte(b.String())}
}

func (s *resetSimHost) firewallReset(remove bool) ssh.Result {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	if !s.firewall {
		return ssh.Result{}
	}
	if remove {
		s.firewall = false
	}
	return ssh.Result{Stdout: []byte("jump iptables-nft nat PREROUTING#1 -> KUBE-SERVICES\nchain iptables-nft nat KUBE-SERVICES\nchain iptables-nft nat FLANNEL-POSTRTG\n")}
}

func (s *resetSimHost) etcdctl(args []string) (ssh.Result, error) {
	if s.etcdDown {
		return ssh.Result{ExitCode: 1}, &ssh.CommandError{Host: s.name, ExitCode: 1, Stderr: "no running etcd container on this host"}
	}
	s.etcd.mu.Lock()
	defer s.etcd.mu.Unlock()
	switch args[0] {
	case "member-list":
		var names []string
		for n := range s.etcd.members {
			names = append(names, n)
		}
		sort.Strings(names)
		var b strings.Builder
		for i, n := range names {
			fmt.Fprintf(&b, "%s, started, %s, https://10.0.0.%d:2380, https://10.0.0.%d:2379, false\n", s.etcd.members[n], n, 100+i, 100+i)
		}
		return ssh.Result{Stdout: []byte(b.String())}, nil
	case "member-remove":
		for n, id := range s.etcd.members {
			if id == args[1] {
				delete(s.etcd.members, n)
				return ssh.Result{Stdout: []byte("Member " + id + " removed\n")}, nil
			}
		}
	}
	return ssh.Result{ExitCode: 1}, &ssh.CommandError{Host: s.name, ExitCode: 1, Command: ssh.Quote(args)}
}

// clean reports what the host still has of a node.
func (s *resetSimHost) clean() []string {
	var left []string
	if out := string(s.hostReset(false, []string{"/etc/keepalived/keepalived.conf"}).Stdout); strings.TrimPrefix(out, "have kubeadm\n") != "" {
		left = append(left, strings.TrimPrefix(out, "have kubeadm\n"))
	}
	if s.firewallReset(false).Stdout != nil {
		left = append(left, "firewall")
	}
	return left
}

// resetSim is a simulated cluster whose hosts know what a reset does.
type resetSim struct {
	*simCluster
	hosts map[string]*resetSimHost
	names []string
}

func newResetSim(t *testing.T, extraCP bool) *resetSim {
	t.Helper()
	sc := newSimCluster(t)
	if extraCP {
		// cp2 joins after cp1: a control plane that can leave while another stays.
		sc.spec.Spec.Hosts = append(sc.spec.Spec.Hosts[:1], append([]v1alpha1.Host{{Name: "cp2", Address: "10.0.0.12", Role: v1alpha1.RoleControlPlane}}, sc.spec.Spec.Hosts[1:]...)...)
		sc.spec.Default()
		sc.hosts["cp2"] = newSimHost("cp2", "10.0.0.12")
		sc.hosts["cp2"].caPEM = sc.pki.Cluster.CertPEM
	}
	rs := &resetSim{simCluster: sc, hosts: map[string]*resetSimHost{}}
	etcd := &etcdSim{members: map[string]string{}}
	for _, h := range sc.spec.Spec.Hosts {
		rs.hosts[h.Name] = newResetSimHost(sc.hosts[h.Name], h.Role, etcd)
		rs.names = append(rs.names, h.Name)
	}
	return rs
}

func (rs *resetSim) newRun(t *testing.T, names []string, helpers []string, dry bool) *Run {
	t.Helper()
	r, err := NewRun(rs.spec, names, helpers...)
	if err != nil {
		t.Fatal(err)
	}
	r.PKI, r.Inputs, r.StateDir, r.DryRun = rs.pki, rs.in, state.Dir(t.TempDir()), dry
	r.Connect = func(ctx context.Context, h v1alpha1.Host) (ssh.Runner, error) { return rs.hosts[h.Name], nil }
	return r
}

func (rs *resetSim) create(t *testing.T) *Run {
	t.Helper()
	r := rs.newRun(t, nil, nil, false)
	if _, err := Execute(context.Background(), r, hostPhases()); err != nil {
		t.Fatalf("create: %v", err)
	}
	return r
}

func (rs *resetSim) marks() map[string]int {
	m := map[string]int{}
	for n, h := range rs.hosts {
		m[n] = h.marks()
	}
	return m
}

func (rs *resetSim) transcript(from map[string]int) string {
	var b strings.Builder
	for _, n := range rs.names {
		lines := rs.hosts[n].since(from[n])
		fmt.Fprintf(&b, "== %s (%d calls)\n", n, len(lines))
		for _, l := range lines {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	golden := filepath.Join("testdata", name)
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
}

// TestResetWholeCluster pins every command a whole-cluster reset runs on a converged cluster
// (workers first, the control plane last; kubeadm reset, then the rest and the firewall), checks
// that each host is clean and that its facts now show a host that is no node, proves a second reset
// changes nothing, and that create cluster initialises and joins the same hosts again.
func TestResetWholeCluster(t *testing.T) {
	rs := newResetSim(t, false)
	rs.create(t)
	mark := rs.marks()
	r := rs.newRun(t, nil, nil, false)
	timings, err := Execute(context.Background(), r, Reset(ResetOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	got := rs.transcript(mark)
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
	for _, n := range rs.names {
		if left := rs.hosts[n].clean(); len(left) > 0 {
			t.Errorf("%s after the reset: %v", n, left)
		}
		f, err := facts.Gather(context.Background(), rs.hosts[n])
		if err != nil {
			t.Fatal(err)
		}
		if f.KubeletConfPresent || f.AdminConfPresent || f.Listening(10250) || f.KubeletVersion == "" || f.ContainerdVersion == "" {
			t.Errorf("%s facts after the reset: kubelet.conf %v admin.conf %v kubelet listening %v, kubelet %q containerd %q; want a fresh host with the binaries kept",
				n, f.KubeletConfPresent, f.AdminConfPresent, f.Listening(10250), f.KubeletVersion, f.ContainerdVersion)
		}
	}

	mark = rs.marks()
	r2 := rs.newRun(t, nil, nil, false)
	if _, err := Execute(context.Background(), r2, Reset(ResetOptions{})); err != nil {
		t.Fatal(err)
	}
	if n := totalChanges(r2); n != 0 {
		t.Errorf("second reset made %d changes: %v", n, r2.Changes())
	}
	again := rs.transcript(mark)
	for _, forbidden := range []string{"kubeadm reset", "reset remove", "firewall remove", "systemctl"} {
		if strings.Contains(again, forbidden) {
			t.Errorf("second reset ran %q:\n%s", forbidden, again)
		}
	}

	mark = rs.marks()
	rs.create(t)
	recreated := rs.transcript(mark)
	for _, want := range []string{"kubeadm init", "kubeadm join", "write /etc/kubernetes/pki/ca.crt", "systemctl enable kubelet", "mkdir -p -m 0755 /etc/kubernetes/manifests"} {
		if !strings.Contains(recreated, want) {
			t.Errorf("create after the reset lacks %q:\n%s", want, recreated)
		}
	}
}

// TestResetDryRun: a dry run lists what a reset would remove per host and changes nothing.
func TestResetDryRun(t *testing.T) {
	rs := newResetSim(t, false)
	rs.create(t)
	mark := rs.marks()
	r := rs.newRun(t, nil, nil, true)
	if _, err := Execute(context.Background(), r, Reset(ResetOptions{})); err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(rs.transcript(mark), "\n") {
		if strings.Contains(line, " remove") || strings.Contains(line, "kubeadm reset") || strings.HasPrefix(line, "write") {
			t.Errorf("dry run changed a host: %s", line)
		}
	}
	for _, n := range rs.names {
		if len(rs.hosts[n].clean()) == 0 {
			t.Errorf("dry run cleaned %s", n)
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
	rs := newResetSim(t, false)
	rs.create(t)
	mark := rs.marks()
	r := rs.newRun(t, []string{"cp1"}, nil, false)
	_, err := Execute(context.Background(), r, Reset(ResetOptions{}))
	if err == nil || exitcode.Of(err) != exitcode.InvalidInput ||
		!strings.Contains(err.Error(), "refusing to reset the last control plane(s): w1, w2 would be left without one (in the spec; the cluster API did not answer") {
		t.Fatalf("reset of the last control plane: %v (exit %d)", err, exitcode.Of(err))
	}
	if n := totalChanges(r); n != 0 {
		t.Errorf("the refused reset made %d changes", n)
	}
	if got := rs.transcript(mark); strings.Contains(got, "kubeadm reset") || strings.Contains(got, "remove") {
		t.Errorf("the refused reset changed a host:\n%s", got)
	}

	r = rs.newRun(t, []string{"cp1", "w1", "w2"}, nil, false)
	if _, err := Execute(context.Background(), r, Reset(ResetOptions{})); err != nil {
		t.Fatalf("every host named: %v", err)
	}
	for _, n := range rs.names {
		if left := rs.hosts[n].clean(); len(left) > 0 {
			t.Errorf("%s: %v", n, left)
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
			rs := newResetSim(t, true)
			rs.create(t)
			if len(rs.hosts["cp1"].etcd.members) != 2 {
				t.Fatalf("etcd members after create: %v", rs.hosts["cp1"].etcd.members)
			}
			rs.hosts["cp2"].keepMember = keep
			mark := rs.marks()
			r := rs.newRun(t, []string{"cp2"}, []string{"cp1"}, false)
			if _, err := Execute(context.Background(), r, Reset(ResetOptions{})); err != nil {
				t.Fatal(err)
			}
			if _, ok := rs.hosts["cp1"].etcd.members["cp2"]; ok || len(rs.hosts["cp1"].etcd.members) != 1 {
				t.Errorf("etcd members after cp2's reset: %v, want cp1's only", rs.hosts["cp1"].etcd.members)
			}
			var cp1 []string
			for _, l := range rs.hosts["cp1"].since(mark["cp1"]) {
				if strings.HasPrefix(l, "run ") && l != "run "+scripts.Facts.Name { // facts are read everywhere
					cp1 = append(cp1, l)
				}
			}
			// The check before anything changes, then the member check after cp2's reset.
			want := []string{"run etcd.sh member-list", "run etcd.sh member-list"}
			if keep {
				want = append(want, "run etcd.sh member-remove "+fmt.Sprintf("%x", 0x1e9e05c52164694d+2))
			}
			if strings.Join(cp1, "\n") != strings.Join(want, "\n") {
				t.Errorf("commands on cp1:\n%s\nwant:\n%s", strings.Join(cp1, "\n"), strings.Join(want, "\n"))
			}
			if left := rs.hosts["cp2"].clean(); len(left) > 0 {
				t.Errorf("cp2 after its reset: %v", left)
			}
			for _, n := range []string{"w1", "w2"} {
				if got := rs.hosts[n].since(mark[n]); len(got) != 0 {
					t.Errorf("%s was touched: %v", n, got)
				}
			}
		})
	}
}

// TestResetControlPlaneRefusedWithoutEtcd: resetting cp2 while cp1 stays needs cp1's etcd to
// remove cp2's member; when it does not answer, the reset is refused before anything changes.
func TestResetControlPlaneRefusedWithoutEtcd(t *testing.T) {
	rs := newResetSim(t, true)
	rs.create(t)
	rs.hosts["cp1"].etcdDown = true
	mark := rs.marks()
	r := rs.newRun(t, []string{"cp2"}, []string{"cp1"}, false)
	_, err := Execute(context.Background(), r, Reset(ResetOptions{}))
	if exitcode.Of(err) != exitcode.Refused || !strings.Contains(err.Error(), "cannot reset control plane cp2: etcd does not answer on cp1") {
		t.Fatalf("got %v (exit %d), want a refusal naming cp2 and cp1", err, exitcode.Of(err))
	}
	if n := totalChanges(r); n != 0 {
		t.Errorf("refused reset made %d changes: %v", n, r.Changes())
	}
	for _, n := range rs.names {
		for _, l := range rs.hosts[n].since(mark[n]) {
			if strings.HasPrefix(l, "write ") || strings.Contains(l, "kubeadm reset") || strings.Contains(l, "etcd.sh member-remove") || strings.HasPrefix(l, "run reset-host.sh") {
				t.Errorf("%s changed by a refused reset: %s", n, l)
			}
		}
	}
	if left := rs.hosts["cp2"].clean(); len(left) == 0 {
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
