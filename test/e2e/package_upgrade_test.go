//go:build e2e

package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/versions"
)

// TestScenario11PackageUpgrade: a cluster installed from the lab's apt repositories (one per minor,
// as upstream's) at v1.36.5 is upgraded to v1.37.2 while a Service behind a PodDisruptionBudget
// answers: every node's sources list moves to the 1.37 repository, kubeadm, kubelet and kubectl are
// the 1.37.2 packages, held again, and a second run changes nothing.
func TestScenario11PackageUpgrade(t *testing.T) {
	const from, to = "v1.36.5", "v1.37.2"
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Minute)
	defer cancel()
	c := startLab(ctx, t, "-n", "3", "--install", "package", "--kubernetes-version", from)
	if c.Spec.Spec.Install.Source != v1alpha1.InstallPackage {
		fatalf(t, "lab spec installs from %s, want package", c.Spec.Spec.Install.Source)
	}
	create := c.installer("create", "cluster")
	if create.Code != 0 {
		fatalf(t, "create cluster: exit %d\n%s", create.Code, create.Stderr)
	}
	k := c.kube()
	checkNodeVersions(ctx, t, k, from)
	deployWorkload(ctx, t, k)
	loopStart := time.Now()

	spec := c.versionSpec(to)
	upgradeStart := time.Now()
	run := c.installerSpec(spec, "upgrade", "--wait-timeout", "3m", "--drain-timeout", "3m")
	if run.Code != 0 {
		fatalf(t, "upgrade: exit %d\n%s", run.Code, run.Stderr)
	}
	upgradeEnd := time.Now()
	t.Logf("MEASURE package upgrade %s -> %s on 3 nodes: %s", from, to, run.Wall.Round(time.Second))
	reportUpgradeTimes(t, run.Stderr)
	checkNodeVersions(ctx, t, k, to)

	rel, ok := versions.Lookup(to)
	if !ok {
		fatalf(t, "no release %s", to)
	}
	kube := strings.TrimPrefix(to, "v") + "-" + rel.PackageRevision
	for _, h := range []string{"cp1", "w1", "w2"} {
		got := c.ssh(h, `dpkg-query -W -f='${Package} ${Version} ${db:Status-Abbrev}\n' kubeadm kubelet kubectl | sed 's/ *$//'; echo holds: $(apt-mark showhold | sort); cat /etc/apt/sources.list.d/kubernetes.list`)
		for _, want := range []string{"kubeadm " + kube + " hi", "kubelet " + kube + " hi", "kubectl " + kube + " hi",
			"holds: kubeadm kubectl kubelet", "/core:/stable:/" + rel.Minor() + "/deb/ /"} {
			if !strings.Contains(got, want) {
				errorf(t, "%s lacks %q after the upgrade:\n%s", h, want, got)
			}
		}
	}
	again := c.installerSpec(spec, "upgrade")
	if again.Code != 0 || again.TotalChanges() != 0 {
		errorf(t, "a second upgrade: exit %d, %d changes (%v)\n%s", again.Code, again.TotalChanges(), again.Changes, again.Stderr)
	}
	reportRequests(ctx, t, k, loopStart, []window{
		{"before the upgrade", loopStart, upgradeStart},
		{"during the upgrade", upgradeStart, upgradeEnd},
		{"after the upgrade", upgradeEnd, time.Now()},
	})
	serviceFailures(ctx, t, k, upgradeStart, upgradeEnd, nil)
}
