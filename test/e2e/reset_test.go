//go:build e2e

package e2e

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"installer.dev/installer/lab/images"
	"installer.dev/installer/pkg/state"
)

// adminRules adds a host's own firewall rules (an iptables rule, and an nftables table when the host
// has nft): a reset must leave them alone.
const adminRules = `sudo sh -c '
iptables -C INPUT -p tcp --dport 2222 -m comment --comment e2e-admin -j ACCEPT 2>/dev/null ||
  iptables -A INPUT -p tcp --dport 2222 -m comment --comment e2e-admin -j ACCEPT
if command -v nft >/dev/null 2>&1; then
  nft add table inet e2eadmin && nft add chain inet e2eadmin input "{ type filter hook input priority 10 ; policy accept ; }" &&
  nft flush chain inet e2eadmin input && nft add rule inet e2eadmin input tcp dport 2223 accept
fi'`

// adminRulesLeft prints the host's own rules that must survive.
const adminRulesLeft = `sudo sh -c 'iptables -S INPUT | grep -c e2e-admin; if command -v nft >/dev/null 2>&1; then nft list table inet e2eadmin | grep -c "tcp dport 2223 accept"; else echo no-nft; fi'`

// leftoverScript prints one line per thing a reset must have removed and is still there: files,
// interfaces, routes into the pod network, iptables/nftables rules of kube-proxy, the kubelet and the
// CNI, processes, mounts, pods, listening ports, the kubelet unit. Empty output: the host is clean.
const leftoverScript = `sudo sh -c '
for p in /etc/kubernetes /var/lib/kubelet /var/lib/etcd /var/lib/cni /run/flannel /var/lib/installer \
  /etc/keepalived/keepalived.conf /etc/haproxy/haproxy.cfg; do
  [ -e "$p" ] && echo "file $p: $(ls -A "$p" 2>/dev/null | head -5 | tr "\n" " ")"
done
[ -n "$(ls -A /etc/cni/net.d 2>/dev/null)" ] && echo "file /etc/cni/net.d/: $(ls -A /etc/cni/net.d | tr "\n" " ")"
for l in cni0 flannel.1 flannel-v6.1 kube-ipvs0; do ip link show dev $l >/dev/null 2>&1 && echo "link $l"; done
ip -o link show | grep -q "veth" && echo "link veth: $(ip -o link show | grep veth | cut -d: -f2 | tr "\n" " ")"
ip -4 route show root 10.244.0.0/16 | sed "s/^/route /"
[ -n "$(ls -A /run/netns 2>/dev/null)" ] && echo "netns $(ls -A /run/netns | tr "\n" " ")"
for c in iptables-nft-save ip6tables-nft-save iptables-legacy-save ip6tables-legacy-save; do
  command -v $c >/dev/null 2>&1 && $c 2>/dev/null | grep -E "KUBE-|FLANNEL-|CNI-" | sed "s/^/$c: /"
done
command -v nft >/dev/null 2>&1 && nft list tables | grep -E " (kube-proxy|flannel-ipv4|flannel-ipv6|cni_hostport|cni_plugins_masquerade)$" | sed "s/^/nft: /"
for p in kubelet kube-proxy flanneld kube-apiserver etcd kube-controller kube-scheduler coredns pause containerd-shim lab-ccm; do
  pgrep -x "$p" >/dev/null && echo "process $p $(pgrep -x "$p" | tr "\n" " ")"
done
findmnt -rn -o TARGET | grep -E "^/var/lib/kubelet|^/run/containerd/io.containerd|^/run/netns|^/var/lib/containerd/.*/k8s.io" | sed "s/^/mount /"
n=$(crictl pods -q 2>/dev/null | wc -l); [ "$n" -gt 0 ] && echo "pods $n"
n=$(crictl ps -aq 2>/dev/null | wc -l); [ "$n" -gt 0 ] && echo "containers $n"
for port in 6443 2379 2380 10250 10256 10257 10259; do ss -Hltn "sport = :$port" | grep -q . && echo "listening $port"; done
[ "$(systemctl is-enabled kubelet 2>/dev/null)" = disabled ] || echo "kubelet unit $(systemctl is-enabled kubelet 2>&1)"
[ "$(systemctl is-active kubelet 2>/dev/null)" = inactive ] || echo "kubelet $(systemctl is-active kubelet 2>&1)"
true'`

// keptScript prints what a reset keeps so the host can be used again.
const keptScript = `sudo sh -c 'systemctl is-active containerd; for b in /usr/bin/kubeadm /usr/bin/kubelet /usr/bin/kubectl /usr/local/bin/crictl /opt/cni/bin/bridge /etc/containerd/config.toml; do [ -e $b ] && echo $b; done; crictl images -q | wc -l'`

// TestScenario6Reset: on a 1 control plane + 2 workers cluster, `installer reset --host w1` drains w1
// (a PodDisruptionBudget allows it), deletes its Node and leaves the host clean (every check of
// leftoverScript) with the host's own firewall rules intact and containerd, binaries and images kept;
// a second reset changes nothing; `join node --host w1` makes it a working node again. Then the whole
// cluster is reset (all hosts clean, a second run changes nothing) and `create cluster` on the same
// hosts builds a working cluster again.
func TestScenario6Reset(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	c := startLab(ctx, t, "-n", "3")
	hosts := []string{"cp1", "w1", "w2"}

	r := c.installer("create", "cluster")
	if r.Code != 0 {
		fatalf(t, "create cluster: exit %d\n%s", r.Code, r.Stderr)
	}
	t.Logf("MEASURE create cluster: %s", r.Wall.Round(time.Millisecond))
	for _, h := range hosts {
		c.ssh(h, adminRules)
	}
	k := c.kube()
	deployWeb(ctx, t, k)

	// A dry run lists what would go and changes nothing.
	dry := c.installer("reset", "--host", "w1", "--dry-run")
	if dry.Code != 0 {
		fatalf(t, "reset --host w1 --dry-run: exit %d\n%s", dry.Code, dry.Stderr)
	}
	for _, want := range []string{"host w1:", "cordon node w1", "drain node w1 (evict default/web-", "kubeadm reset -f", "remove path /etc/kubernetes",
		"remove path /var/lib/kubelet", "remove link cni0", "remove link flannel.1", "remove unit kubelet (enabled, active)", "-> KUBE-SERVICES", "delete node w1"} {
		if !strings.Contains(dry.Stdout, want) {
			errorf(t, "dry run output lacks %q:\n%s", want, dry.Stdout)
		}
	}
	if out := c.ssh("w1", "systemctl is-active kubelet; test -e /etc/kubernetes/kubelet.conf && echo conf"); out != "active\nconf" {
		errorf(t, "the dry run changed w1: %q", out)
	}
	t.Logf("dry run of reset --host w1 (%s):\n%s", dry.Wall.Round(time.Millisecond), dry.Stdout)

	// One worker leaves.
	r = c.installer("reset", "--host", "w1", "--yes")
	if r.Code != 0 {
		fatalf(t, "reset --host w1: exit %d\n%s", r.Code, r.Stderr)
	}
	t.Logf("MEASURE reset --host w1: %s (phases %v)", r.Wall.Round(time.Millisecond), r.Phases)
	// The dry run came from the same code as the reset: it planned the cluster-API changes the
	// reset then made, word for word.
	// Finished pods are the exception: the pod garbage collector or their controller may delete
	// them between the two runs (CI saw a finished coredns pod go), so they are compared apart.
	planned, performed := plannedAPIEffects(dry.Stdout), performedAPIEffects(r.Stderr)
	plannedFinished, performedFinished := withoutFinishedPods(planned), withoutFinishedPods(performed)
	for _, p := range performedFinished {
		if !slices.Contains(plannedFinished, p) {
			errorf(t, "the reset deleted finished pod %s, which the dry run did not plan (it planned %v)", p, plannedFinished)
		}
	}
	if len(performed) != 3 || strings.Join(planned, "\n") != strings.Join(performed, "\n") {
		errorf(t, "the dry run planned:\n%s\nthe reset made:\n%s", strings.Join(planned, "\n"), strings.Join(performed, "\n"))
	}
	t.Logf("cluster-API changes planned by the dry run and made by the reset:\n%s", strings.Join(performed, "\n"))
	if _, err := k.CoreV1().Nodes().Get(ctx, "w1", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		errorf(t, "node w1 after its reset: %v, want not found", err)
	}
	webAvailable(ctx, t, k, "w2")
	c.checkClean(t, "w1")
	c.checkKept(t, "w1")
	for _, h := range []string{"cp1", "w2"} {
		if out := c.ssh(h, "sudo crictl pods -q | wc -l"); out == "0" {
			errorf(t, "%s has no pods: resetting w1 touched it", h)
		}
	}

	again := c.installer("reset", "--host", "w1", "--yes")
	if again.Code != 0 || again.TotalChanges() != 0 {
		errorf(t, "second reset --host w1: exit %d, %d changes (%v)\n%s", again.Code, again.TotalChanges(), again.Changes, again.Stderr)
	}
	t.Logf("MEASURE second reset --host w1 (nothing to do): %s", again.Wall.Round(time.Millisecond))

	// The host joins again.
	r = c.installer("join", "node", "--host", "w1")
	if r.Code != 0 {
		fatalf(t, "join node --host w1 after its reset: exit %d\n%s", r.Code, r.Stderr)
	}
	t.Logf("MEASURE join node --host w1 after reset: %s", r.Wall.Round(time.Millisecond))
	waitNodeReady(ctx, t, k, "w1", 3*time.Minute)
	checkPodNetwork(ctx, t, k, "w1", "w2")

	// The whole cluster.
	r = c.installer("reset", "--yes")
	if r.Code != 0 {
		fatalf(t, "reset (whole cluster): exit %d\n%s", r.Code, r.Stderr)
	}
	t.Logf("MEASURE reset whole cluster: %s (phases %v)", r.Wall.Round(time.Millisecond), r.Phases)
	for _, h := range hosts {
		c.checkClean(t, h)
		c.checkKept(t, h)
	}
	if _, err := os.Stat(state.Dir(c.Lab.StateDir()).AdminConf()); !os.IsNotExist(err) {
		errorf(t, "the state directory still has the admin kubeconfig of the reset cluster: %v", err)
	}
	if _, err := os.Stat(filepath.Join(c.Lab.StateDir(), "pki", "ca.crt")); err != nil {
		errorf(t, "the cluster CA was not kept: %v", err)
	}
	again = c.installer("reset", "--yes")
	if again.Code != 0 || again.TotalChanges() != 0 {
		errorf(t, "second whole reset: exit %d, %d changes (%v)\n%s", again.Code, again.TotalChanges(), again.Changes, again.Stderr)
	}
	t.Logf("MEASURE second whole reset (nothing to do): %s", again.Wall.Round(time.Millisecond))

	// And a new cluster on the same hosts.
	r = c.installer("create", "cluster")
	if r.Code != 0 {
		fatalf(t, "create cluster after the whole reset: exit %d\n%s", r.Code, r.Stderr)
	}
	t.Logf("MEASURE create cluster on reset hosts: %s", r.Wall.Round(time.Millisecond))
	k = c.kube()
	checkNodes(ctx, t, c, k)
	checkCoreDNS(ctx, t, k)
	checkPodNetwork(ctx, t, k, "w2", "w1")
}

// checkClean fails for everything leftoverScript finds, and for the host's own rules gone missing.
func (c *labCluster) checkClean(t *testing.T, host string) {
	t.Helper()
	if out := c.ssh(host, leftoverScript); out != "" {
		errorf(t, "%s is not clean after its reset:\n%s", host, out)
	} else {
		t.Logf("%s clean: no kubeadm/CNI files, links, pod routes, KUBE-/FLANNEL-/CNI- rules or kube-proxy/CNI nft tables, processes, mounts, pods, ports; kubelet inactive and disabled", host)
	}
	got := c.ssh(host, adminRulesLeft)
	if lines := strings.Fields(got); len(lines) != 2 || lines[0] != "1" || (lines[1] != "1" && lines[1] != "no-nft") {
		errorf(t, "%s: the host's own firewall rules after the reset: %q, want the iptables rule and the nft rule once each", host, got)
	} else {
		t.Logf("%s: its own firewall rules survived (iptables e2e-admin: %s, nft e2eadmin: %s)", host, lines[0], lines[1])
	}
}

// checkKept fails when what makes the host reusable is gone: containerd running, the binaries, the
// CNI plugins, containerd's config and the cached images.
func (c *labCluster) checkKept(t *testing.T, host string) {
	t.Helper()
	got := strings.Split(c.ssh(host, keptScript), "\n")
	want := []string{"active", "/usr/bin/kubeadm", "/usr/bin/kubelet", "/usr/bin/kubectl", "/usr/local/bin/crictl", "/opt/cni/bin/bridge", "/etc/containerd/config.toml"}
	if len(got) != len(want)+1 || strings.Join(got[:len(want)], " ") != strings.Join(want, " ") || got[len(want)] == "0" {
		errorf(t, "%s after the reset keeps %q; want %v and cached images", host, got, want)
	}
}

// deployWeb runs 2 replicas spread over the workers with a PodDisruptionBudget of minAvailable 1, so
// the drain must go through the Eviction API one pod at a time.
func deployWeb(ctx context.Context, t *testing.T, k kubernetes.Interface) {
	t.Helper()
	labels := map[string]string{"app": "web"}
	replicas := int32(2)
	// Tainted nodes (the control plane, a cordoned node) are no topology domain.
	honor := corev1.NodeInclusionPolicyHonor
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"}, Spec: appsv1.DeploymentSpec{
		Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: labels},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{
			TopologySpreadConstraints: []corev1.TopologySpreadConstraint{{MaxSkew: 1, TopologyKey: "kubernetes.io/hostname",
				WhenUnsatisfiable: corev1.DoNotSchedule, NodeTaintsPolicy: &honor, LabelSelector: &metav1.LabelSelector{MatchLabels: labels}}},
			Containers: []corev1.Container{{Name: "web", Image: images.LabnetImage, Args: []string{"serve", ":8080"}}},
		}}}}
	if _, err := k.AppsV1().Deployments("default").Create(ctx, d, metav1.CreateOptions{}); err != nil {
		fatal(t, err)
	}
	one := intstr.FromInt32(1)
	pdb := &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: &one, Selector: &metav1.LabelSelector{MatchLabels: labels}}}
	if _, err := k.PolicyV1().PodDisruptionBudgets("default").Create(ctx, pdb, metav1.CreateOptions{}); err != nil {
		fatal(t, err)
	}
	webAvailable(ctx, t, k, "w1", "w2")
}

// webAvailable waits until both web replicas are available on exactly the given nodes.
func webAvailable(ctx context.Context, t *testing.T, k kubernetes.Interface, nodes ...string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		d, err := k.AppsV1().Deployments("default").Get(ctx, "web", metav1.GetOptions{})
		on := map[string]bool{}
		if pods, perr := k.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=web"}); perr == nil {
			for _, p := range pods.Items {
				if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning {
					on[p.Spec.NodeName] = true
				}
			}
		}
		match := len(on) == len(nodes)
		for _, n := range nodes {
			match = match && on[n]
		}
		if err == nil && d.Status.AvailableReplicas == 2 && match {
			return
		}
		if time.Now().After(deadline) {
			fatalf(t, "web: %v, running on %v; want 2 available on %v", err, on, nodes)
		}
		time.Sleep(2 * time.Second)
	}
}

// apiVerbs begin the cluster-API changes as plans show them and the installer logs them.
var apiVerbs = regexp.MustCompile(`^(cordon|uncordon|drain|delete) node `)

// plannedAPIEffects are the cluster-API changes of a dry run's plan ("    run    cordon node w1").
func plannedAPIEffects(plan string) []string {
	var out []string
	for _, l := range strings.Split(plan, "\n") {
		if cmd, ok := strings.CutPrefix(strings.TrimSpace(l), "run "); ok && apiVerbs.MatchString(strings.TrimSpace(cmd)) {
			out = append(out, strings.TrimSpace(cmd))
		}
	}
	return out
}

// withoutFinishedPods removes the "delete <finished pods>" part from each drain line in place and
// returns those pods.
func withoutFinishedPods(effects []string) []string {
	var finished []string
	for i, e := range effects {
		m := drainDeletes.FindStringSubmatch(e)
		if m == nil {
			continue
		}
		finished = append(finished, strings.Split(m[1], ", ")...)
		e = strings.Replace(e, m[0], "", 1)
		effects[i] = strings.Replace(e, "(timeout ", "(no pods to evict; timeout ", 1)
	}
	return finished
}

// drainDeletes is the finished pods' part of a drain line, "drain node w1 (evict a/b; delete c/d,
// e/f; timeout 5m0s)": always followed by the timeout.
var drainDeletes = regexp.MustCompile(`delete ([^;()]+); `)

// performedAPIEffects are the cluster-API changes a real run logged (msg="cordon node w1").
func performedAPIEffects(log string) []string {
	var out []string
	for _, m := range logMsg.FindAllStringSubmatch(log, -1) {
		if apiVerbs.MatchString(m[1]) {
			out = append(out, m[1])
		}
	}
	return out
}

var logMsg = regexp.MustCompile(`msg="((?:[^"\\]|\\.)*)"`)
