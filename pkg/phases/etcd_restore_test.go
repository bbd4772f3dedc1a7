package phases

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/constants"
	"installer.dev/installer/pkg/exitcode"
	"installer.dev/installer/pkg/phases/internal/simhost"
)

// restoreSim plays etcd-restore.sh on each control plane of a simulated cluster: it records every
// step and answers status from the steps each host went through, as the script's files would.
type restoreSim struct {
	mu    sync.Mutex
	steps []string                     // "host action", in the order they ran
	state map[string]map[string]string // host -> restore ID -> its step
}

func newRestoreSim(t *testing.T, sc *simCluster, cps ...string) *restoreSim {
	t.Helper()
	s := &restoreSim{state: map[string]map[string]string{}}
	for i, name := range cps {
		h := sc.Host(name)
		s.state[name] = map[string]string{}
		ip := "10.0.0.1" + string(rune('1'+i))
		h.SetFile(constants.EtcdManifest, []byte("apiVersion: v1\nkind: Pod\nmetadata:\n  name: etcd\nspec:\n  containers:\n  - name: etcd\n    image: registry.k8s.io/etcd:3.6.5-0\n    command:\n    - etcd\n    - --name="+name+"\n    - --initial-advertise-peer-urls=https://"+ip+":2380\n    - --initial-cluster="+name+"=https://"+ip+":2380\n"), 0o600, "root:root")
		h.HandleScript("etcd-restore.sh", func(args []string) simhost.Reply {
			s.mu.Lock()
			defer s.mu.Unlock()
			action := args[0]
			if action == "status" {
				var out []string
				for id, step := range s.state[name] {
					out = append(out, id+" "+step)
				}
				slices.Sort(out)
				return simhost.Out(strings.Join(out, "\n"))
			}
			id := args[1]
			line := name + " " + action
			if action == "start" {
				line += " " + args[2]
			}
			s.steps = append(s.steps, line)
			step := map[string]string{"receive": "received", "prepare": "prepared", "stop": "stopped", "swap": "swapped", "start": "swapped", "finish": "done"}[action]
			s.state[name][id] = step
			return simhost.Out("")
		})
	}
	return s
}

// index is the position of the first step equal to want, or -1.
func (s *restoreSim) index(want string) int { return slices.Index(s.steps, want) }

func restoreRun(t *testing.T, sc *simCluster, sum string, dryRun bool) (*Run, RestoreReport, error) {
	t.Helper()
	r := sc.newRun(t, nil)
	r.DryRun = dryRun
	var rep RestoreReport
	_, err := Execute(context.Background(), r, []Phase{Connect{}, GatherFacts{},
		EtcdRestore{Snapshot: []byte("snapshot"), SHA256: sum, Timeout: time.Second, Report: &rep, settle: time.Millisecond, now: func() time.Time { return time.Date(2026, 12, 6, 1, 2, 3, 0, time.UTC) }}})
	return r, rep, err
}

const (
	restoreSum = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	otherSum   = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
)

// TestEtcdRestoreHA restores three control planes: every control plane has the snapshot restored
// beside its data before any stops; all stop before any swaps its data; etcd starts everywhere
// before the rest; each member gets its own name and peer URL in one initial cluster.
func TestEtcdRestoreHA(t *testing.T) {
	sc := haUpgradeCluster(t)
	sim := newRestoreSim(t, sc, "cp1", "cp2", "cp3")
	_, rep, err := restoreRun(t, sc, restoreSum, false)
	if err != nil {
		t.Fatal(err)
	}
	if rep.ID != "20261206T010203Z-0123456789abcdef" || rep.Resumed ||
		strings.Join(rep.Members, ",") != "cp1=https://10.0.0.11:2380,cp2=https://10.0.0.12:2380,cp3=https://10.0.0.13:2380" {
		t.Errorf("report %+v", rep)
	}
	order := []string{"receive", "prepare", "stop", "swap", "start etcd", "start rest", "finish"}
	for i := 1; i < len(order); i++ {
		for _, a := range []string{"cp1", "cp2", "cp3"} {
			for _, b := range []string{"cp1", "cp2", "cp3"} {
				if ia, ib := sim.index(a+" "+order[i-1]), sim.index(b+" "+order[i]); ia < 0 || ib < 0 || ia > ib {
					t.Errorf("%s %s (step %d) not before %s %s (step %d):\n%s", a, order[i-1], ia, b, order[i], ib, strings.Join(sim.steps, "\n"))
				}
			}
		}
	}
	for id, step := range sim.state["cp2"] {
		if step != "done" {
			t.Errorf("restore %s left at %s on cp2", id, step)
		}
	}
}

// TestEtcdRestoreResumes: a failed swap on cp2 leaves every control plane stopped; the error says
// the API may be down and how to finish; nothing is started. A restore of another snapshot is then
// refused with nothing run, and the same snapshot's restore resumes the same restore and finishes.
func TestEtcdRestoreResumes(t *testing.T) {
	sc := haUpgradeCluster(t)
	sim := newRestoreSim(t, sc, "cp1", "cp2", "cp3")
	sc.Host("cp2").FailAt("etcd-restore.sh swap")
	_, rep, err := restoreRun(t, sc, restoreSum, false)
	if err == nil || !strings.Contains(err.Error(), "host cp2") || !strings.Contains(err.Error(), "stopped half-way and the API may be down: run etcd restore again with the same snapshot") {
		t.Fatalf("err = %v", err)
	}
	for _, s := range sim.steps {
		if strings.Contains(s, " start ") {
			t.Errorf("%s after a failed swap", s)
		}
	}
	first := rep.ID

	n := len(sim.steps)
	_, _, err = restoreRun(t, sc, otherSum, false)
	if exitcode.Of(err) != exitcode.Refused || !strings.Contains(err.Error(), "an unfinished restore of another snapshot is on the control planes: "+first+" on cp1 (") {
		t.Fatalf("another snapshot: err = %v", err)
	}
	if len(sim.steps) != n {
		t.Errorf("the refused run ran %v", sim.steps[n:])
	}

	_, rep, err = restoreRun(t, sc, restoreSum, false)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Resumed || rep.ID != first {
		t.Errorf("resumed %v with %s, want %s", rep.Resumed, rep.ID, first)
	}
	if i := sim.index("cp1 finish"); i < 0 {
		t.Errorf("not finished:\n%s", strings.Join(sim.steps, "\n"))
	}
}

// TestEtcdRestoreDryRun plans every step and runs none.
func TestEtcdRestoreDryRun(t *testing.T) {
	sc := haUpgradeCluster(t)
	sim := newRestoreSim(t, sc, "cp1", "cp2", "cp3")
	r, _, err := restoreRun(t, sc, restoreSum, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(sim.steps) != 0 {
		t.Errorf("a dry run ran %v", sim.steps)
	}
	var plan []string
	for _, a := range r.Planned() {
		plan = append(plan, a.Host+": "+a.Command)
	}
	text := strings.Join(plan, "\n")
	for _, want := range []string{"cp1: copy the snapshot (8 bytes, sha256 0123456789abcdef)", "cp3: restore it into /var/lib/installer/etcd-restore/20261206T010203Z-0123456789abcdef/data as member cp3 (https://10.0.0.13:2380)",
		"cp2: move /var/lib/etcd/member to", "cp1: start etcd and the kubelet", "cp1: start kube-apiserver, kube-controller-manager and kube-scheduler"} {
		if !strings.Contains(text, want) {
			t.Errorf("plan lacks %q:\n%s", want, text)
		}
	}
}

// TestEtcdRestoreRefusesToDropAMember: etcd has a member that is not a control plane of the spec
// (cp3 left out of it): the restore would drop it, so it is refused before any step.
func TestEtcdRestoreRefusesToDropAMember(t *testing.T) {
	sc := haUpgradeCluster(t)
	// A spec without cp3, against the same hosts: etcd still lists cp3.
	spec := *sc.spec
	spec.Spec.Hosts = slices.DeleteFunc(slices.Clone(spec.Spec.Hosts), func(h v1alpha1.Host) bool { return h.Name == "cp3" })
	sc.spec = &spec
	sim := newRestoreSim(t, sc, "cp1", "cp2")
	_, _, err := restoreRun(t, sc, restoreSum, false)
	if exitcode.Of(err) != exitcode.Refused || !strings.Contains(err.Error(), "has members that are not control planes of the spec: cp3") {
		t.Fatalf("err = %v", err)
	}
	if len(sim.steps) != 0 {
		t.Errorf("steps ran: %v", sim.steps)
	}
}
