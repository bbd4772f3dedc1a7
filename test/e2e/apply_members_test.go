//go:build e2e

package e2e

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
)

// TestScenario16ApplyMembers: `installer apply` changes who is in the cluster. The lab has 4
// control planes behind the keepalived-haproxy VIP and a worker; the cluster is made of cp1-cp3
// and w1, with a Service behind a PodDisruptionBudget.
//   - One apply replaces cp2 by cp4 (cp4 added to the spec, cp2 marked remove), under request
//     loops through the VIP and to the Service: cp4 joins, cp2 is drained and reset, etcd has 3
//     healthy voting members, every haproxy balances exactly cp1, cp3, cp4 (all up), and a second
//     apply changes nothing.
//   - cp3 loses power. apply marking cp4 remove is refused (an etcd member is down: quorum);
//     apply --skip-unreachable with cp3 still in the spec leaves it out and exits 4; apply marking
//     cp3 remove is refused while its kubelet's lease is fresh, and 2 minutes later removes it from
//     the surviving side (its etcd member and Node) without reaching it.
//   - w1 marked remove is drained and reset.
func TestScenario16ApplyMembers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Minute)
	defer cancel()
	c := startLab(ctx, t, "-n", "5", "--control-planes", "4", "--lb", "keepalived-haproxy")
	initial := c.specWithout("members-initial.yaml", "cp4")
	create := c.installerSpec(initial, "create", "cluster")
	if create.Code != 0 {
		fatalf(t, "create cluster: exit %d\n%s", create.Code, create.Stderr)
	}
	k := c.kube()
	checkNodeCountVersions(ctx, t, k, 4, c.Spec.Spec.KubernetesVersion)
	deployWorkloadOn(ctx, t, k, true)

	// Replace cp2 by cp4.
	replace := c.specVariant("members-replace.yaml", markRemove("cp2"))
	if r := c.installer("etcd", "snapshot"); r.Code == 0 {
		t.Logf("etcd snapshot before the replacement: %s", strings.TrimSpace(r.Stdout))
	}
	plan := c.installerSpec(replace, "apply", "--dry-run")
	if plan.Code != 0 {
		fatalf(t, "apply --dry-run of the replacement: exit %d\n%s\n%s", plan.Code, plan.Stdout, plan.Stderr)
	}
	for _, want := range []string{"host cp4:\n  node:", "+ joined as a control plane", "host cp2:\n  node:", "- removed from the cluster",
		"+ haproxy backend cp4", "- haproxy backend cp2", "what apply would run:"} {
		if !strings.Contains(plan.Stdout, want) {
			errorf(t, "the replacement's dry run lacks %q:\n%s", want, plan.Stdout)
		}
	}
	t.Logf("apply --dry-run of the replacement (%s):\n%s", plan.Wall.Round(time.Millisecond), plan.Stdout)
	if r := c.installerSpec(replace, "create", "cluster"); r.Code != 2 || !strings.Contains(r.Stderr, "spec.hosts[1].remove") {
		errorf(t, "create cluster with a host marked remove: exit %d, want 2 naming spec.hosts[1].remove\n%s", r.Code, r.Stderr)
	}
	applied := underLoad(ctx, t, c, k, "the replacement of cp2 by cp4", true, func() installerRun { return c.installerSpec(replace, "apply", "--yes") })
	if applied.Code != 0 {
		fatalf(t, "apply replacing cp2 by cp4: exit %d\n%s\n%s", applied.Code, applied.Stdout, applied.Stderr)
	}
	t.Logf("MEASURE apply replacing cp2 by cp4: %s (phases %v)\n%s", applied.Wall.Round(time.Second), applied.Phases, applied.Stdout)
	checkMembers(ctx, t, c, "cp1", []string{"cp1", "cp3", "cp4", "w1"}, []string{"cp1", "cp3", "cp4"})
	if out := c.ssh("cp2", leftoverScript); out != "" {
		errorf(t, "cp2 is not clean after its removal:\n%s", out)
	}
	again := c.installerSpec(replace, "apply", "--yes")
	if again.Code != 0 || !strings.Contains(again.Stdout, "no changes") {
		errorf(t, "second apply of the replacement: exit %d\n%s\n%s", again.Code, again.Stdout, again.Stderr)
	}
	t.Logf("MEASURE second apply (no changes): %s", again.Wall.Round(time.Millisecond))

	// cp3 loses power; cp2's entry is gone from the spec.
	afterReplace := c.specVariant("members-after.yaml", dropHosts("cp2"))
	if err := c.Lab.Kill(ctx, "cp3"); err != nil {
		fatal(t, err)
	}
	killed := time.Now()
	t.Logf("cp3 lost power")
	quorum := c.specVariant("members-quorum.yaml", func(cl *v1alpha1.Cluster) { dropHosts("cp2")(cl); markRemove("cp4")(cl) })
	if r := c.installerSpec(quorum, "apply", "--yes", "--skip-unreachable"); r.Code != 2 || !strings.Contains(r.Stderr, "could cost etcd its quorum") {
		errorf(t, "apply removing cp4 while cp3 is down: exit %d, want 2 (quorum)\n%s\n%s", r.Code, r.Stdout, r.Stderr)
	} else {
		t.Logf("apply removing cp4 while cp3 is down (%s), refused:\n%s", r.Wall.Round(time.Millisecond), r.Stderr)
	}
	skipped := c.installerSpec(afterReplace, "apply", "--dry-run", "--skip-unreachable")
	if skipped.Code != 4 || !strings.Contains(skipped.Stdout, "not reached, left out (--skip-unreachable): cp3") || !strings.Contains(skipped.Stderr, "cp3") {
		errorf(t, "apply --skip-unreachable with cp3 down: exit %d, want 4 naming cp3\n%s\n%s", skipped.Code, skipped.Stdout, skipped.Stderr)
	} else {
		t.Logf("apply --dry-run --skip-unreachable with cp3 down (%s):\n%s%s", skipped.Wall.Round(time.Millisecond), skipped.Stdout, skipped.Stderr)
	}
	if r := c.installerSpec(afterReplace, "apply", "--dry-run"); r.Code != 4 {
		errorf(t, "apply with cp3 down, without --skip-unreachable: exit %d, want 4\n%s", r.Code, r.Stderr)
	}
	removeGone := c.specVariant("members-gone.yaml", func(cl *v1alpha1.Cluster) { dropHosts("cp2")(cl); markRemove("cp3")(cl) })
	if r := c.installerSpec(removeGone, "apply", "--yes"); r.Code != 2 || !strings.Contains(r.Stderr, "renewed its lease") {
		errorf(t, "apply removing cp3 %s after its power loss: exit %d, want 2 (its lease is fresh)\n%s\n%s", time.Since(killed).Round(time.Second), r.Code, r.Stdout, r.Stderr)
	} else {
		t.Logf("apply removing cp3 %s after its power loss, refused:\n%s", time.Since(killed).Round(time.Second), r.Stderr)
	}
	// The kubelet renews its lease every 10 s: 2 minutes after the last renewal it counts as gone.
	time.Sleep(time.Until(killed.Add(2*time.Minute + 15*time.Second)))
	gone := c.installerSpec(removeGone, "apply", "--yes")
	if gone.Code != 0 || !strings.Contains(gone.Stdout, "it cannot be reached; its kubelet silent for") {
		fatalf(t, "apply removing cp3 (gone): exit %d\n%s\n%s", gone.Code, gone.Stdout, gone.Stderr)
	}
	t.Logf("MEASURE apply removing cp3, gone for good: %s\n%s", gone.Wall.Round(time.Second), gone.Stdout)
	checkMembers(ctx, t, c, "cp1", []string{"cp1", "cp4", "w1"}, []string{"cp1", "cp4"})

	// A worker leaves.
	removeWorker := c.specVariant("members-worker.yaml", func(cl *v1alpha1.Cluster) { dropHosts("cp2", "cp3")(cl); markRemove("w1")(cl) })
	worker := c.installerSpec(removeWorker, "apply", "--yes")
	if worker.Code != 0 {
		fatalf(t, "apply removing w1: exit %d\n%s\n%s", worker.Code, worker.Stdout, worker.Stderr)
	}
	t.Logf("MEASURE apply removing w1: %s\n%s", worker.Wall.Round(time.Second), worker.Stdout)
	checkMembers(ctx, t, c, "cp1", []string{"cp1", "cp4"}, []string{"cp1", "cp4"})
	if out := c.ssh("w1", leftoverScript); out != "" {
		errorf(t, "w1 is not clean after its removal:\n%s", out)
	}
	final := c.installerSpec(removeWorker, "apply", "--yes")
	if final.Code != 0 || !strings.Contains(final.Stdout, "no changes") {
		errorf(t, "apply after the removals: exit %d\n%s\n%s", final.Code, final.Stdout, final.Stderr)
	}
	checkNoSecrets(t, c, create, plan, applied, again, gone, worker, final)
}

// markRemove marks the named hosts remove: true.
func markRemove(names ...string) func(*v1alpha1.Cluster) {
	return func(cl *v1alpha1.Cluster) {
		for i := range cl.Spec.Hosts {
			if slices.Contains(names, cl.Spec.Hosts[i].Name) {
				cl.Spec.Hosts[i].Remove = true
			}
		}
	}
}

// dropHosts deletes the named hosts' entries.
func dropHosts(names ...string) func(*v1alpha1.Cluster) {
	return func(cl *v1alpha1.Cluster) {
		cl.Spec.Hosts = slices.DeleteFunc(cl.Spec.Hosts, func(h v1alpha1.Host) bool { return slices.Contains(names, h.Name) })
	}
}

// checkMembers: the cluster's nodes are exactly nodes; etcd, asked on host, has one healthy voting
// member per control plane; each control plane's haproxy balances exactly controlPlanes, all UP,
// and one of them holds the VIP.
func checkMembers(ctx context.Context, t *testing.T, c *labCluster, host string, nodes, controlPlanes []string) {
	t.Helper()
	list, err := c.kube().CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		fatal(t, err)
	}
	var names []string
	for _, n := range list.Items {
		names = append(names, n.Name)
	}
	slices.Sort(names)
	if !slices.Equal(names, nodes) {
		errorf(t, "nodes %v, want %v", names, nodes)
	}
	c.etcdHealthy(t, host, len(controlPlanes))
	c.etcdVoters(t, host, len(controlPlanes))
	const stat = `sudo sh -c "printf 'show stat\n' | socat -t 5 stdio UNIX-CONNECT:/run/installer/haproxy/admin.sock" | awk -F, '$1 == "k8s-api" && $2 != "BACKEND" && $2 != "FRONTEND" {print $2 "=" $18}' | sort | tr '\n' ' '`
	var want []string
	for _, cp := range controlPlanes {
		want = append(want, cp+"=UP")
	}
	holders := 0
	for _, cp := range controlPlanes {
		if got := strings.Fields(c.ssh(cp, stat)); !slices.Equal(got, want) {
			errorf(t, "haproxy on %s balances %v, want %v", cp, got, want)
		}
		if strings.Contains(c.ssh(cp, "ip -4 -o addr show"), " "+c.Spec.Spec.LoadBalancer.VIP+"/") {
			holders++
		}
		if out := c.ssh(cp, "ls /run/installer/keepalived/maintenance /run/installer/haproxy-out 2>/dev/null | wc -l"); strings.TrimSpace(out) != "0" {
			errorf(t, "%s still has a load balancer marker", cp)
		}
	}
	if holders != 1 {
		errorf(t, "%d of %v hold the VIP, want 1", holders, controlPlanes)
	}
	t.Logf("members: nodes %v; etcd %d healthy voters; every haproxy balances %v, all up; the VIP on one of them", names, len(controlPlanes), controlPlanes)
}
