//go:build e2e

package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
)

// TestScenario9RuntimeUpgrade: a v1.35.8 cluster made on Debian's containerd 1.6.20 (as installers
// before containerd's release binaries left it; source package) is upgraded to v1.36.5, which needs
// containerd 2: every node gets containerd 2.3.7 while drained, before its kubelet moves, and a
// Service behind a PodDisruptionBudget keeps answering. A second run changes nothing. Then the same
// cluster moves on to v1.37.2 (the upgrade chain across the supported window, one minor at a time),
// keeping its containerd.
func TestScenario9RuntimeUpgrade(t *testing.T) {
	const from, to, last = "v1.35.8", "v1.36.5", "v1.37.2"
	ctx, cancel := context.WithTimeout(context.Background(), 65*time.Minute)
	defer cancel()
	c := startLab(ctx, t, "-n", "3", "--kubernetes-version", from)
	old := c.specVariant("cluster-distro-containerd.yaml", func(s *v1alpha1.Cluster) {
		s.Spec.ContainerRuntime.Containerd.Source = v1alpha1.InstallPackage
		s.Spec.ContainerRuntime.Containerd.Version = ""
	})
	create := c.installerSpec(old, "create", "cluster")
	if create.Code != 0 {
		fatalf(t, "create cluster on Debian's containerd: exit %d\n%s", create.Code, create.Stderr)
	}
	k := c.kube()
	checkRuntimes(ctx, t, k, "containerd://1.6.")
	deployWorkload(ctx, t, k)
	loopStart := time.Now()

	spec := c.versionSpec(to)
	upgradeStart := time.Now()
	run := c.installerSpec(spec, "upgrade", "--wait-timeout", "3m", "--drain-timeout", "3m")
	if run.Code != 0 {
		fatalf(t, "upgrade: exit %d\n%s", run.Code, run.Stderr)
	}
	upgradeEnd := time.Now()
	t.Logf("MEASURE upgrade %s -> %s with containerd 1.6 -> 2.3.7 on 3 nodes: %s", from, to, run.Wall.Round(time.Second))
	if n := strings.Count(run.Stderr, "upgrade: containerd replaced"); n != 3 {
		errorf(t, "containerd replaced on %d nodes, want 3:\n%s", n, run.Stderr)
	}
	reportUpgradeTimes(t, run.Stderr)
	checkNodeVersions(ctx, t, k, to)
	checkRuntimes(ctx, t, k, "containerd://2.3.7")
	for _, h := range []string{"cp1", "w1", "w2"} {
		out := c.ssh(h, "sudo sh -c 'command -v containerd; grep ^version /etc/containerd/config.toml; systemctl is-active containerd'")
		if !strings.Contains(out, "/usr/local/bin/containerd") || !strings.Contains(out, "version = 3") || !strings.HasSuffix(strings.TrimSpace(out), "active") {
			errorf(t, "%s after the upgrade:\n%s", h, out)
		}
	}
	again := c.installerSpec(spec, "upgrade")
	if again.Code != 0 || again.TotalChanges() != 0 {
		errorf(t, "a second upgrade: exit %d, %d changes (%v)\n%s", again.Code, again.TotalChanges(), again.Changes, again.Stderr)
	}

	// The next minor: the chain 1.35 -> 1.36 -> 1.37 on one cluster.
	waitFor(ctx, t, 3*time.Minute, "web available with 3 replicas before the next upgrade", func() bool {
		d, err := k.AppsV1().Deployments(upgradeNS).Get(ctx, "web", metav1.GetOptions{})
		return err == nil && d.Status.AvailableReplicas == 3
	})
	spec2 := c.versionSpec(last)
	secondStart := time.Now()
	run2 := c.installerSpec(spec2, "upgrade", "--wait-timeout", "3m", "--drain-timeout", "3m")
	if run2.Code != 0 {
		fatalf(t, "upgrade %s -> %s: exit %d\n%s", to, last, run2.Code, run2.Stderr)
	}
	secondEnd := time.Now()
	t.Logf("MEASURE upgrade %s -> %s on 3 nodes (containerd kept): %s", to, last, run2.Wall.Round(time.Second))
	if n := strings.Count(run2.Stderr, "upgrade: containerd replaced"); n != 0 {
		errorf(t, "containerd replaced on %d nodes in the second upgrade, want 0", n)
	}
	reportUpgradeTimes(t, run2.Stderr)
	checkNodeVersions(ctx, t, k, last)
	checkRuntimes(ctx, t, k, "containerd://2.3.7")
	if again := c.installerSpec(spec2, "upgrade"); again.Code != 0 || again.TotalChanges() != 0 {
		errorf(t, "a second upgrade to %s: exit %d, %d changes (%v)\n%s", last, again.Code, again.TotalChanges(), again.Changes, again.Stderr)
	}
	reportRequests(ctx, t, k, loopStart, []window{
		{"before the upgrades", loopStart, upgradeStart},
		{"during the upgrade to " + to, upgradeStart, upgradeEnd},
		{"between the upgrades", upgradeEnd, secondStart},
		{"during the upgrade to " + last, secondStart, secondEnd},
		{"after the upgrades", secondEnd, time.Now()},
	})
	waitFor(ctx, t, 3*time.Minute, "web available with 3 replicas after the upgrade", func() bool {
		d, err := k.AppsV1().Deployments(upgradeNS).Get(ctx, "web", metav1.GetOptions{})
		return err == nil && d.Status.AvailableReplicas == 3
	})
}

// checkRuntimes: every node reports a runtime version starting with prefix.
func checkRuntimes(ctx context.Context, t *testing.T, k kubernetes.Interface, prefix string) {
	t.Helper()
	nodes, err := k.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		fatal(t, err)
	}
	for _, n := range nodes.Items {
		if v := n.Status.NodeInfo.ContainerRuntimeVersion; !strings.HasPrefix(v, prefix) {
			errorf(t, "node %s runs %s, want %s*", n.Name, v, prefix)
		}
	}
}
