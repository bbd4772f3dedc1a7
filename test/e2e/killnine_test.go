//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// killPoint is where a run of the installer is killed with SIGKILL: once ready holds (it sees the
// run's output so far), after delay.
type killPoint struct {
	name  string
	ready func(c *labCluster, stderr string) bool
	delay time.Duration
}

// phaseDone: the phase printed its summary, so the next one runs.
func phaseDone(phase string) func(*labCluster, string) bool {
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(phase) + `\s+(done|nothing to do)`)
	return func(_ *labCluster, stderr string) bool { return re.MatchString(stderr) }
}

// running: a process whose command line contains what runs on host.
func running(host, what string) func(*labCluster, string) bool {
	// The bracket keeps pgrep from matching the shell that runs it.
	pattern := "[" + what[:1] + "]" + what[1:]
	return func(c *labCluster, _ string) bool {
		out, err := sshRun(c.ctx, c.Lab, host, fmt.Sprintf("pgrep -f %q >/dev/null && echo yes || echo no", pattern))
		return err == nil && out == "yes"
	}
}

// logged: the run's output has a line matching re.
func logged(re string) func(*labCluster, string) bool {
	r := regexp.MustCompile(re)
	return func(_ *labCluster, stderr string) bool { return r.MatchString(stderr) }
}

// TestScenario12KillNine: the installer is killed with SIGKILL (no chance to clean up) at phase
// boundaries and in the middle of the long phases of create (runtime, kubernetes, kubeadm init and
// join running on the hosts, the add-ons) and of upgrade (kubeadm upgrade apply running, a node's
// drain, between a worker's kubeadm and its kubelet). Each next run picks up where the killed one
// stopped, the state directory's PKI never changes, the cluster keeps its CA and etcd its member,
// the upgrade keeps its one etcd snapshot, and a run after the last changes nothing.
func TestScenario12KillNine(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Minute)
	defer cancel()
	c := startLab(ctx, t, "-n", "3", "--kubernetes-version", upgradeFrom)
	spec := c.Lab.SpecFile()

	create := []killPoint{
		{"create: in the runtime phase", phaseDone("prepare"), 1500 * time.Millisecond},
		{"create: in the kubernetes phase", phaseDone("runtime"), 1500 * time.Millisecond},
		{"create: between kubernetes and pki", phaseDone("kubernetes"), 0},
		{"create: kubeadm init running on cp1", running("cp1", "kubeadm init"), 3 * time.Second},
		{"create: kubeadm join running on w1", running("w1", "kubeadm join"), 2 * time.Second},
		{"create: between join/workers and cni", phaseDone("join/workers"), 0},
		{"create: in the add-ons and the wait", phaseDone("cni"), 500 * time.Millisecond},
	}
	var pkiAfterFirst map[string]string
	c.killChain(t, spec, []string{"create", "cluster"}, create, func(i int) {
		if i == 0 {
			pkiAfterFirst = fileSums(t, filepath.Join(c.Lab.StateDir(), "pki"))
		}
	})
	final := c.installerSpec(spec, "create", "cluster")
	if final.Code != 0 {
		fatalf(t, "create cluster after %d killed runs: exit %d\n%s", len(create), final.Code, final.Stderr)
	}
	t.Logf("MEASURE create cluster after %d killed runs: %s, %d change(s) %v", len(create), final.Wall.Round(time.Millisecond), final.TotalChanges(), final.Changes)
	again := c.installerSpec(spec, "create", "cluster")
	if again.Code != 0 || again.TotalChanges() != 0 {
		errorf(t, "create cluster once more: exit %d, %d change(s) (%v), want none\n%s", again.Code, again.TotalChanges(), again.Changes, again.Stderr)
	}
	t.Logf("MEASURE create cluster once more: %s, %d change(s)", again.Wall.Round(time.Millisecond), again.TotalChanges())
	diffMaps(t, "after the killed creates, the state directory's pki", pkiAfterFirst, fileSums(t, filepath.Join(c.Lab.StateDir(), "pki")))
	k := c.kube()
	checkNodes(ctx, t, c, k)
	c.etcdHealthy(t, "cp1", 1)
	caPEM, err := os.ReadFile(filepath.Join(c.Lab.StateDir(), "pki", "ca.crt"))
	if err != nil {
		fatal(t, err)
	}
	stateCA := pemFingerprint(t, caPEM)
	for _, h := range []string{"cp1", "w1", "w2"} {
		if fp := pemFingerprint(t, []byte(c.ssh(h, "sudo cat /etc/kubernetes/pki/ca.crt"))); fp != stateCA {
			errorf(t, "%s trusts CA %s, the state directory holds %s", h, fp, stateCA)
		}
	}

	upSpec := c.versionSpec(upgradeTo)
	upgrade := []killPoint{
		{"upgrade: kubeadm upgrade apply running on cp1", running("cp1", "kubeadm upgrade apply"), 5 * time.Second},
		{"upgrade: w1 cordoned, draining", func(c *labCluster, _ string) bool {
			n, err := k.CoreV1().Nodes().Get(c.ctx, "w1", metav1.GetOptions{})
			return err == nil && n.Spec.Unschedulable
		}, 0},
		{"upgrade: w2's kubeadm done, its kubelet not yet", logged(`msg="kubeadm upgrade node done" host=w2`), 0},
	}
	var firstUpgradeOut string
	c.killChain(t, upSpec, []string{"upgrade"}, upgrade, func(i int) {
		if i == 0 {
			firstUpgradeOut = c.lastKilledOutput
		}
	})
	done := c.installerSpec(upSpec, "upgrade")
	if done.Code != 0 {
		fatalf(t, "upgrade after %d killed runs: exit %d\n%s", len(upgrade), done.Code, done.Stderr)
	}
	t.Logf("MEASURE upgrade after %d killed runs: %s", len(upgrade), done.Wall.Round(time.Second))
	checkNodeVersions(ctx, t, k, upgradeTo)
	checkUpgradedCluster(ctx, t, c, k)
	checkSnapshot(ctx, t, c, firstUpgradeOut)
	// The snapshot of the first run, taken before anything moved, is kept. A run that resumes before
	// the first control plane reached the target takes one more (kubeadm, killed with its SSH
	// session, may have left etcd upgraded): nothing is deleted.
	snaps, _ := filepath.Glob(filepath.Join(c.Lab.StateDir(), "etcd-snapshots", "*.db"))
	first := snapshotLine.FindStringSubmatch(firstUpgradeOut)
	if first == nil || !slices.Contains(snaps, first[1]) {
		errorf(t, "etcd snapshots after the killed upgrades: %v, want the first run's among them", snaps)
	}
	t.Logf("MEASURE etcd snapshots kept after the killed upgrades: %d", len(snaps))
	last := c.installerSpec(upSpec, "upgrade")
	if last.Code != 0 || last.TotalChanges() != 0 || !strings.Contains(last.Stderr, "every node runs "+upgradeTo) {
		errorf(t, "upgrade once more: exit %d, %d change(s) (%v)\n%s", last.Code, last.TotalChanges(), last.Changes, last.Stderr)
	}
	diffMaps(t, "after the killed upgrades, the state directory's pki", pkiAfterFirst, fileSums(t, filepath.Join(c.Lab.StateDir(), "pki")))
	c.etcdHealthy(t, "cp1", 1)
}

// killChain starts the installer with args once per kill point and kills it there; each run goes
// on from what the killed one left. after, when set, runs after each kill with the point's index.
func (c *labCluster) killChain(t *testing.T, spec string, args []string, points []killPoint, after func(int)) {
	t.Helper()
	for i, p := range points {
		run := c.startInstallerSpec(spec, args...)
		began := time.Now()
		deadline := began.Add(15 * time.Minute)
		for !p.ready(c, run.Stderr()) {
			select {
			case <-run.exited:
				fatalf(t, "%s: the run ended (%v) before the kill point:\n%s", p.name, run.err, run.Stderr())
			default:
			}
			if time.Now().After(deadline) {
				_ = run.cmd.Process.Kill()
				fatalf(t, "%s: not reached within 15m:\n%s", p.name, run.Stderr())
			}
			time.Sleep(200 * time.Millisecond)
		}
		time.Sleep(p.delay)
		select {
		case <-run.exited:
			fatalf(t, "%s: the run ended (%v) before the kill:\n%s", p.name, run.err, run.Stderr())
		default:
		}
		if err := run.cmd.Process.Kill(); err != nil {
			fatal(t, err)
		}
		<-run.exited
		out := run.Stderr()
		c.lastKilledOutput = out
		waited := ""
		if strings.Contains(out, "kubeadm still runs on the host") {
			waited = " (it first waited for the kubeadm the kill before it left running)"
		}
		t.Logf("MEASURE kill -9 #%d (%s) after %s%s; the killed run's last lines:\n%s", i+1, p.name,
			time.Since(began).Round(100*time.Millisecond), waited, tailLines(out, 4))
		if after != nil {
			after(i)
		}
	}
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "  " + strings.Join(lines, "\n  ")
}
