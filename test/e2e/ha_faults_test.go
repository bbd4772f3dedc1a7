//go:build e2e

package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestScenario13HAUpgradePowerLoss: 3 control planes behind the keepalived-haproxy VIP and a worker
// are upgraded v1.36.5 -> v1.37.2. cp2 loses power while `kubeadm upgrade node` runs on it: the run
// fails naming cp2, the API keeps answering through the VIP on cp1 and cp3, and once cp2 has booted
// a re-run finishes the upgrade: every node at v1.37.2, etcd with 3 healthy voting members, no
// control plane left out of the load balancer, and one more run changes nothing.
func TestScenario13HAUpgradePowerLoss(t *testing.T) {
	const from, to = "v1.36.5", "v1.37.2"
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Minute)
	defer cancel()
	c := startLab(ctx, t, "-n", "4", "--control-planes", "3", "--lb", "keepalived-haproxy", "--kubernetes-version", from)
	if r := c.installer("create", "cluster"); r.Code != 0 {
		fatalf(t, "create cluster: exit %d\n%s", r.Code, r.Stderr)
	}
	k := c.kube()
	checkNodeCountVersions(ctx, t, k, 4, from)

	spec := c.versionSpec(to)
	run := c.startInstallerSpec(spec, "upgrade", "--wait-timeout", "4m", "--drain-timeout", "4m")
	upgrading := running("cp2", "kubeadm upgrade node")
	for !upgrading(c, "") {
		select {
		case <-run.exited:
			fatalf(t, "the upgrade ended (%v) before kubeadm upgrade node ran on cp2:\n%s", run.err, run.Stderr())
		case <-time.After(200 * time.Millisecond):
		}
	}
	time.Sleep(5 * time.Second) // well into kubeadm's work: manifests being replaced
	if err := c.Lab.Kill(ctx, "cp2"); err != nil {
		fatal(t, err)
	}
	lostAt := time.Now()
	<-run.exited
	out := run.Stderr()
	t.Logf("MEASURE power loss of cp2 during kubeadm upgrade node: the run ended %s later: %s", time.Since(lostAt).Round(100*time.Millisecond), lastLine(out))
	if !strings.Contains(lastLine(out), "host cp2") {
		errorf(t, "the error does not name cp2:\n%s", out)
	}
	oneLineErrors(t, installerRun{Stderr: out})
	// cp1 and cp3 serve the API through the VIP while cp2 is down.
	if _, err := k.CoreV1().Nodes().List(ctx, metav1.ListOptions{}); err != nil {
		errorf(t, "the API through the VIP with cp2 down: %v", err)
	}
	if err := c.Lab.Start(ctx, "cp2"); err != nil {
		fatal(t, err)
	}
	second := c.installerSpec(spec, "upgrade", "--wait-timeout", "6m", "--drain-timeout", "4m")
	if second.Code != 0 {
		fatalf(t, "upgrade after cp2 booted again: exit %d\n%s", second.Code, second.Stderr)
	}
	t.Logf("MEASURE upgrade after cp2 lost power and booted again: %s", second.Wall.Round(time.Second))
	checkNodeCountVersions(ctx, t, k, 4, to)
	for _, cp := range []string{"cp1", "cp2", "cp3"} {
		c.etcdHealthy(t, cp, 3)
	}
	c.etcdVoters(t, "cp1", 3)
	for _, cp := range []string{"cp1", "cp2", "cp3"} {
		if out := c.ssh(cp, "sudo sh -c 'test -e /run/installer/keepalived/maintenance && echo left || echo none'"); strings.TrimSpace(out) != "none" {
			errorf(t, "%s: maintenance marker %s after the upgrade", cp, out)
		}
	}
	again := c.installerSpec(spec, "upgrade")
	if again.Code != 0 || again.TotalChanges() != 0 {
		errorf(t, "a third upgrade: exit %d, %d changes (%v)\n%s", again.Code, again.TotalChanges(), again.Changes, again.Stderr)
	}
}
