package phases

import (
	"context"
	"strings"
	"testing"
	"time"

	"installer.dev/installer/pkg/exitcode"
	"installer.dev/installer/pkg/facts"
	"installer.dev/installer/pkg/guard"
	"installer.dev/installer/pkg/pki"
	"installer.dev/installer/pkg/scripts"
	"installer.dev/installer/pkg/ssh"
	"installer.dev/installer/pkg/state"
)

// fakeLocal stands in for the state directory: it records whether Save ran.
type fakeLocal struct {
	pending []string
	saved   int
}

func (l *fakeLocal) Pending() []string { return l.pending }
func (l *fakeLocal) Save() error {
	l.saved++
	l.pending = nil
	return nil
}

// safetyRun is a create run over the simulated cluster with a chosen PKI, the API wait shortened.
func (sc *simCluster) safetyRun(t *testing.T, b *pki.Bundle, generated bool, local LocalState) (*Run, error) {
	t.Helper()
	r := sc.newRun(t, nil)
	r.PKI, r.PKIGenerated, r.Local, r.StateDir = b, generated, local, state.Dir("/state")
	list := hostPhases()
	for i, p := range list {
		if ic, ok := p.(InitCheck); ok {
			ic.apiWait = 50 * time.Millisecond
			list[i] = ic
		}
	}
	_, err := Execute(context.Background(), r, list)
	return r, err
}

// changedNothing asserts the run made no change and no host saw a write or a changing command.
func (sc *simCluster) changedNothing(t *testing.T, r *Run, mark simMarks) {
	t.Helper()
	if n := totalChanges(r); n != 0 {
		t.Errorf("refused run made %d changes: %v", n, r.Changes())
	}
	for _, h := range sc.Hosts() {
		for _, l := range h.Transcript(mark.hosts[h.Name()]) {
			if strings.HasPrefix(l, "write ") || strings.Contains(l, "kubeadm reset") || strings.Contains(l, "kubeadm init") || strings.HasPrefix(l, "rm ") {
				t.Errorf("refused run changed %s: %s", h.Name(), l)
			}
		}
	}
}

func mustRefuse(t *testing.T, err error, want ...string) {
	t.Helper()
	if exitcode.Of(err) != exitcode.Refused || !strings.Contains(err.Error(), guard.RefusalPhrase) {
		t.Fatalf("got %v (exit %d), want a refusal (exit 6)", err, exitcode.Of(err))
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("refusal lacks %q:\n%v", w, err)
		}
	}
}

// TestCreateRefusesForeignOrMissingPKI: against a running cluster, create with another cluster's
// PKI, or with a PKI generated because the state directory was empty, stops in the identity phase
// before any change, and never saves the generated PKI.
func TestCreateRefusesForeignOrMissingPKI(t *testing.T) {
	sc := newSimCluster(t, createSpec(t))
	sc.create(t)
	other := otherClusterPKI(t)
	ours := pki.Fingerprint(sc.pki.Cluster.Cert)

	mark := sc.marks()
	r, err := sc.safetyRun(t, other, false, nil)
	mustRefuse(t, err, "phase identity: ", "host cp1 belongs to another cluster: its cluster CA is "+ours, "host w1 belongs to another cluster")
	sc.changedNothing(t, r, mark)

	mark = sc.marks()
	local := &fakeLocal{pending: []string{"/state/pki/"}}
	r, err = sc.safetyRun(t, other, true, local)
	mustRefuse(t, err, "host cp1 is part of an existing cluster (cluster CA "+ours+"), but the state directory /state has no PKI")
	sc.changedNothing(t, r, mark)
	if local.saved != 0 {
		t.Error("the generated PKI was saved although the hosts hold a cluster")
	}
}

// TestCreateSavesNewPKIBeforeAnyChange: on fresh hosts the generated PKI is saved in the identity
// phase, before the first host is changed.
func TestCreateSavesNewPKIBeforeAnyChange(t *testing.T) {
	sc := newSimCluster(t, createSpec(t))
	local := &fakeLocal{pending: []string{"/state/pki/", "/state/secrets/vrrp-password"}}
	var writesBeforeSave int
	sc.Host("cp1").OnWrite(func() {
		if local.saved == 0 {
			writesBeforeSave++
		}
	})
	r, err := sc.safetyRun(t, sc.pki, true, local)
	if err != nil {
		t.Fatal(err)
	}
	if local.saved != 1 || writesBeforeSave != 0 {
		t.Errorf("saved %d times, %d host writes before the save", local.saved, writesBeforeSave)
	}
	if got := r.Changes()["identity"]; got != 2 {
		t.Errorf("identity phase counted %d changes, want one per saved path", got)
	}
}

// TestInitNeverResetsWithoutMarker: an initialised control plane whose API server does not answer
// stops the run (exit 6) and is not reset; the same host with the installer's marker of an init
// that never finished is reset and initialised again.
func TestInitNeverResetsWithoutMarker(t *testing.T) {
	sc := newSimCluster(t, createSpec(t))
	sc.create(t)
	cp1 := sc.Host("cp1")
	cp1.StopAPIServer()

	mark := sc.marks()
	r, err := sc.safetyRun(t, sc.pki, false, nil)
	mustRefuse(t, err, "phase init-check: ", "host cp1 initialised a cluster on an earlier run, but its API server does not answer")
	sc.changedNothing(t, r, mark)

	// The installer's marker is proof only while no other host is a node.
	marker := facts.Marker{Cluster: "sim", CAFingerprint: pki.Fingerprint(sc.pki.Cluster.Cert), Host: "cp1"}
	cp1.SetFile(facts.InitMarkerPath, marker.Render(), 0o644, "root:root")
	mark = sc.marks()
	r, err = sc.safetyRun(t, sc.pki, false, nil)
	mustRefuse(t, err, "w1, w2 are nodes already")
	sc.changedNothing(t, r, mark)

	// A fresh cluster whose init was cut short after admin.conf: marker, no other node.
	fresh := newSimCluster(t, createSpec(t))
	freshCP := fresh.Host("cp1")
	freshCP.FailAt("kubeadm init")
	if _, err := fresh.run(t, hostPhases()); err == nil {
		t.Fatal("the injected init failure did not fail the run")
	}
	if _, ok := freshCP.File(facts.InitMarkerPath); !ok {
		t.Fatal("no init marker after a failed init")
	}
	// kubeadm wrote admin.conf before it died.
	freshCP.SetFile("/etc/kubernetes/admin.conf", []byte("apiVersion: v1\nkind: Config\n"), 0o600, "root:root")
	mark = fresh.marks()
	if _, err := fresh.safetyRun(t, fresh.pki, false, nil); err != nil {
		t.Fatal(err)
	}
	var reset, initRan bool
	for _, line := range freshCP.Commands(mark.hosts["cp1"]) {
		reset = reset || line == "kubeadm reset -f"
		initRan = initRan || (reset && strings.HasPrefix(line, "kubeadm init"))
	}
	if !reset || !initRan {
		t.Errorf("unfinished init: reset %v, then init %v", reset, initRan)
	}
	if _, ok := freshCP.File(facts.InitMarkerPath); ok {
		t.Error("the marker is still there after init completed")
	}
}

// TestJoinNodeLeavesExistingNodeAlone: join node of a host that is a node already changes nothing
// on any host.
func TestJoinNodeLeavesExistingNodeAlone(t *testing.T) {
	sc := newSimCluster(t, createSpec(t))
	sc.create(t)
	mark := sc.marks()
	r := sc.newRun(t, []string{"w1"}, "cp1")
	list := JoinNode()
	if _, err := Execute(context.Background(), r, list[:len(list)-1]); err != nil { // WaitReady needs a real API
		t.Fatal(err)
	}
	if len(r.Targets()) != 0 || strings.Join(r.Settled(), ",") != "w1" {
		t.Errorf("targets %d, settled %v", len(r.Targets()), r.Settled())
	}
	sc.changedNothing(t, r, mark)
	if got := sc.Host("w1").Transcript(mark.hosts["w1"]); len(got) != 1 || got[0] != scripts.Facts.Name {
		t.Errorf("w1 saw %q, want only the facts", got)
	}
}

// TestPlanRecordsStateWrites: a dry run with a generated PKI records the state directory's writes
// and saves nothing.
func TestPlanRecordsStateWrites(t *testing.T) {
	sc := newSimCluster(t, createSpec(t))
	local := &fakeLocal{pending: []string{"/state/pki/"}}
	r := sc.newRun(t, nil)
	r.PKIGenerated, r.Local, r.DryRun = true, local, true
	if _, err := Execute(context.Background(), r, hostPhases()); err != nil {
		t.Fatal(err)
	}
	if local.saved != 0 {
		t.Error("a dry run saved the state")
	}
	var recorded bool
	for _, p := range r.Planned() {
		recorded = recorded || (p.Host == LocalHost && p.Command == "write /state/pki/" && p.Phase == "identity")
	}
	if !recorded {
		t.Errorf("the plan lacks the state directory's write: %+v", r.Planned())
	}
}

func TestKubectlSaid(t *testing.T) {
	err := &ssh.CommandError{Host: "cp1", ExitCode: 1, Command: "sh -c kubectl ...",
		Stderr: `E1205 memcache.go:265] "Unhandled Error" err="couldn't get current server API group list" | The connection to the server 172.31.0.11:6443 was refused - did you specify the right host or port?`}
	if got := kubectlSaid(err); got != "kubectl on cp1: The connection to the server 172.31.0.11:6443 was refused - did you specify the right host or port?" {
		t.Errorf("got %q", got)
	}
	if got := kubectlSaid(context.DeadlineExceeded); got != "context deadline exceeded" {
		t.Errorf("got %q", got)
	}
}

// TestIdentityIfPresent: reset and kubeconfig compare the PKI when the state directory has one, go
// on without one, and never save what the run generated.
func TestIdentityIfPresent(t *testing.T) {
	sc := newSimCluster(t, createSpec(t))
	sc.create(t)
	other := otherClusterPKI(t)
	for _, tc := range []struct {
		name    string
		pki     *pki.Bundle
		refused bool
	}{{"no PKI", nil, false}, {"the cluster's PKI", sc.pki, false}, {"another cluster's PKI", other, true}} {
		t.Run(tc.name, func(t *testing.T) {
			r := sc.newRun(t, nil)
			local := &fakeLocal{pending: []string{"/state/secrets/vrrp-password"}}
			r.PKI, r.Local, r.StateDir = tc.pki, local, state.Dir("/state")
			_, err := Execute(context.Background(), r, []Phase{Connect{}, GatherFacts{}, ClusterIdentity{Policy: PKIIfPresent}})
			if tc.refused {
				mustRefuse(t, err, "belongs to another cluster")
			} else if err != nil {
				t.Fatal(err)
			}
			if local.saved != 0 || totalChanges(r) != 0 {
				t.Errorf("saved %d times, %d changes", local.saved, totalChanges(r))
			}
		})
	}
}
