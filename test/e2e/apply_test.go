//go:build e2e

package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
)

// Issue 21's `installer apply` against a real cluster.

// The changes the apply scenarios make: two names in the apiserver certificate, an apiserver and
// a controller-manager flag, a kubelet setting, a registry mirror, a label and a taint on a worker.
const (
	applyDNSName   = "api.example.com"
	applyIP        = "203.0.113.10"
	applyAPIFlag   = "--event-ttl=2h"
	applyKCMFlag   = "--terminated-pod-gc-threshold=500"
	applyMaxPods   = 150
	applyRegistry  = "example.com"
	applyLabelKey  = "tier"
	applyTaintKey  = "dedicated"
	applyMirrorDir = "/etc/containerd/certs.d/" + applyRegistry
	// applyVolume is an apiserver extra volume (a host directory the kubelet creates).
	applyVolume    = "apply-e2e"
	applyVolumeDir = "/var/log/apply-e2e"
)

// applyChanges edits a spec with every change above; the label and taint go to worker.
func applyChanges(worker string) func(*v1alpha1.Cluster) {
	return func(cl *v1alpha1.Cluster) {
		s := &cl.Spec
		s.CertSANs = append(s.CertSANs, applyDNSName, applyIP)
		s.APIServer.ExtraArgs = map[string]string{"event-ttl": "2h"}
		s.ControllerManager.ExtraArgs = map[string]string{"terminated-pod-gc-threshold": "500"}
		s.APIServer.ExtraVolumes = []v1alpha1.HostPathMount{{Name: applyVolume, HostPath: applyVolumeDir, MountPath: applyVolumeDir, PathType: "DirectoryOrCreate"}}
		if s.Kubelet.Config == nil {
			s.Kubelet.Config = map[string]any{}
		}
		s.Kubelet.Config["maxPods"] = applyMaxPods
		if s.Images.Mirrors == nil {
			s.Images.Mirrors = map[string][]v1alpha1.MirrorEndpoint{}
		}
		s.Images.Mirrors[applyRegistry] = []v1alpha1.MirrorEndpoint{{URL: "http://172.30.0.1:5000"}}
		for i := range s.Hosts {
			if s.Hosts[i].Name == worker {
				s.Hosts[i].Labels = map[string]string{applyLabelKey: "web"}
				s.Hosts[i].Taints = []v1alpha1.Taint{{Key: applyTaintKey, Value: "web", Effect: "PreferNoSchedule"}}
			}
		}
	}
}

// TestScenario15ApplyHA: 3 control planes behind the keepalived-haproxy VIP and a worker, with a
// request loop through the VIP (a kept and a fresh connection per request) and one to a Service
// with a PodDisruptionBudget from a pod; a fifth host, w2, is not in the spec yet.
//   - A converged cluster: apply prints "no changes". A spec changing the pod network is refused
//     with the field, before anything runs; without --yes and a terminal apply refuses too.
//   - apply of every change above, with w2 added to the spec (failed requests counted during it):
//     w2 is joined; the certificate verifies for both new names on every apiserver, the flags are
//     in the running processes, every kubelet (w2's too) reports the setting, the mirror file is on
//     every node, the worker has its label and taint; a second apply changes nothing.
//   - Back to the lab's spec, killed (SIGKILL) while the first control plane is out of the load
//     balancer: the re-run puts it back and finishes, everything above is gone again, and the next
//     apply changes nothing.
func TestScenario15ApplyHA(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Minute)
	defer cancel()
	c := startLab(ctx, t, "-n", "5", "--control-planes", "3", "--lb", "keepalived-haproxy")
	// w2 is not in the spec the cluster is made from: the first apply joins it.
	initial := c.specWithout("apply-initial.yaml", "w2")
	create := c.installerSpec(initial, "create", "cluster")
	if create.Code != 0 {
		fatalf(t, "create cluster: exit %d\n%s", create.Code, create.Stderr)
	}
	k := c.kube()
	checkNodeCountVersions(ctx, t, k, 4, c.Spec.Spec.KubernetesVersion)
	deployWorkloadOn(ctx, t, k, true)
	nodes := []string{"cp1", "cp2", "cp3", "w1", "w2"}
	cps := nodes[:3]

	converged := c.installerSpec(initial, "apply", "--dry-run")
	if converged.Code != 0 || !strings.Contains(converged.Stdout, "no changes") {
		errorf(t, "apply --dry-run on the cluster create made: exit %d\n%s\n%s", converged.Code, converged.Stdout, converged.Stderr)
	}
	t.Logf("MEASURE apply --dry-run on a converged cluster of 4: %s", converged.Wall.Round(time.Millisecond))

	changed := c.specVariant("apply.yaml", applyChanges("w1"))
	applied := applyWithLoops(ctx, t, c, k, changed, true, "+ joined as a worker", "phase apply/join:")
	if !strings.Contains(applied.Stdout, "host w2:\n  node:") || !strings.Contains(applied.Stdout, "+ joined as a worker") {
		errorf(t, "apply did not say it joins w2:\n%s", applied.Stdout)
	}
	checkNodeCountVersions(ctx, t, k, 5, c.Spec.Spec.KubernetesVersion)
	checkApplied(ctx, t, c, k, cps, nodes, "w1")
	again := c.installerSpec(changed, "apply", "--yes")
	if again.Code != 0 || !strings.Contains(again.Stdout, "no changes") {
		errorf(t, "second apply: exit %d\n%s\n%s", again.Code, again.Stdout, again.Stderr)
	}
	t.Logf("MEASURE second apply (no changes): %s", again.Wall.Round(time.Millisecond))

	// Back to the lab's spec, killed while the first control plane is out of the load balancer.
	run := c.startInstaller("apply", "--yes")
	for !strings.Contains(run.Stderr(), "apply: out of the API load balancer") {
		select {
		case <-run.exited:
			fatalf(t, "apply ended (%v) before a control plane left the load balancer:\n%s", run.err, run.Stderr())
		case <-time.After(200 * time.Millisecond):
		}
	}
	time.Sleep(10 * time.Second) // its apiserver is stopping
	if err := run.cmd.Process.Kill(); err != nil {
		fatal(t, err)
	}
	<-run.exited
	t.Logf("apply killed (SIGKILL) 10 s after the first control plane left the API load balancer")
	resumed := c.installer("apply", "--yes")
	if resumed.Code != 0 {
		fatalf(t, "apply after the kill: exit %d\n%s\n%s", resumed.Code, resumed.Stdout, resumed.Stderr)
	}
	if !strings.Contains(resumed.Stdout, "back in service (an interrupted run left it out)") {
		errorf(t, "the apply after the kill did not put the control plane back into the load balancer:\n%s", resumed.Stdout)
	}
	t.Logf("MEASURE apply after the kill: %s\n%s", resumed.Wall.Round(time.Second), resumed.Stdout)
	checkReverted(ctx, t, c, k, cps, nodes, "w1")
	final := c.installer("apply", "--yes")
	if final.Code != 0 || !strings.Contains(final.Stdout, "no changes") {
		errorf(t, "apply after the revert: exit %d\n%s\n%s", final.Code, final.Stdout, final.Stderr)
	}
	c.etcdHealthy(t, "cp1", 3)
	checkNoSecrets(t, c, create, applied, again, resumed, final)
}

// applyWithLoops checks the refusals and the dry run of spec (its plan must also hold planWants),
// then applies it, with request loops
// through the VIP and to the Service when ha, and reports the failed requests. Returns the apply.
func applyWithLoops(ctx context.Context, t *testing.T, c *labCluster, k kubernetes.Interface, spec string, ha bool, planWants ...string) installerRun {
	t.Helper()
	refused := c.specVariant("apply-refused.yaml", func(cl *v1alpha1.Cluster) {
		applyChanges("w1")(cl)
		cl.Spec.Networking.PodSubnet = "10.200.0.0/16"
	})
	if r := c.installerSpec(refused, "apply", "--yes"); r.Code != 2 || !strings.Contains(r.Stderr, "spec.networking.podSubnet") || !strings.Contains(r.Stderr, "nothing was changed") {
		errorf(t, "apply of a new pod network: exit %d, want 2 naming spec.networking.podSubnet\n%s", r.Code, r.Stderr)
	}
	plan := c.installerSpec(spec, "apply", "--dry-run")
	if plan.Code != 0 {
		fatalf(t, "apply --dry-run: exit %d\n%s", plan.Code, plan.Stderr)
	}
	for _, want := range append([]string{"+ " + applyDNSName, "+ " + applyIP, "+ " + applyAPIFlag, "+ " + applyKCMFlag, fmt.Sprintf("+ maxPods: %d", applyMaxPods),
		"+ " + applyMirrorDir + "/hosts.toml", "+ volume " + applyVolume, "+ apiServer.extraVolumes " + applyVolume, "+ label " + applyLabelKey + "=web", "+ taint " + applyTaintKey + "=web:PreferNoSchedule", "what apply would run:"}, planWants...) {
		if !strings.Contains(plan.Stdout, want) {
			errorf(t, "apply --dry-run lacks %q:\n%s", want, plan.Stdout)
		}
	}
	t.Logf("apply --dry-run (%s):\n%s", plan.Wall.Round(time.Millisecond), plan.Stdout)
	if r := c.installerSpec(spec, "apply"); r.Code != 2 || !strings.Contains(r.Stderr, "needs confirmation") {
		errorf(t, "apply without --yes and without a terminal: exit %d\n%s", r.Code, r.Stderr)
	}

	r := underLoad(ctx, t, c, k, "apply", ha, func() installerRun { return c.installerSpec(spec, "apply", "--yes") })
	if r.Code != 0 {
		fatalf(t, "apply: exit %d\n%s\n%s", r.Code, r.Stdout, r.Stderr)
	}
	t.Logf("MEASURE apply: %s\n%s", r.Wall.Round(time.Second), r.Stdout)
	return r
}

// checkApplied: every apiserver's certificate verifies for the new names, the running processes
// have the new flags, every kubelet reports maxPods, every node has the mirror file, the worker
// its label and taint.
func checkApplied(ctx context.Context, t *testing.T, c *labCluster, k kubernetes.Interface, cps, nodes []string, worker string) {
	t.Helper()
	pool := clusterCAPool(t, c)
	for _, cp := range cps {
		addr := net.JoinHostPort(nodeInternalIP(ctx, t, k, cp), "6443")
		for _, name := range []string{applyDNSName, applyIP} {
			if err := verifyTLS(addr, name, pool); err != nil {
				errorf(t, "%s (%s) for %s: %v", addr, cp, name, err)
			}
		}
		if got := processArgs(t, c, cp, "kube-apiserver"); !slices.Contains(got, applyAPIFlag) {
			errorf(t, "%s: kube-apiserver runs without %s", cp, applyAPIFlag)
		}
		if got := processArgs(t, c, cp, "kube-controller"); !slices.Contains(got, applyKCMFlag) {
			errorf(t, "%s: kube-controller-manager runs without %s", cp, applyKCMFlag)
		}
		if got := apiserverMounts(t, c, cp); !strings.Contains(got, applyVolumeDir) {
			errorf(t, "%s: the running kube-apiserver does not mount %s: %s", cp, applyVolumeDir, got)
		}
	}
	for _, n := range nodes {
		if got := kubeletMaxPods(ctx, t, k, n); got != applyMaxPods {
			errorf(t, "%s: the kubelet runs with maxPods %d, want %d", n, got, applyMaxPods)
		}
		if out := c.ssh(n, "test -f "+applyMirrorDir+"/hosts.toml && echo yes || echo no"); strings.TrimSpace(out) != "yes" {
			errorf(t, "%s: no mirror file for %s", n, applyRegistry)
		}
	}
	node, err := k.CoreV1().Nodes().Get(ctx, worker, metav1.GetOptions{})
	if err != nil {
		fatal(t, err)
	}
	if node.Labels[applyLabelKey] != "web" || !slices.ContainsFunc(node.Spec.Taints, func(t corev1.Taint) bool { return t.Key == applyTaintKey && t.Value == "web" }) {
		errorf(t, "%s: labels %v, taints %v", worker, node.Labels, node.Spec.Taints)
	}
	t.Logf("applied: the certificate verifies for %s and %s on %d apiservers; %s and %s run; maxPods %d on %d kubelets; %s mirrored; %s labelled and tainted",
		applyDNSName, applyIP, len(cps), applyAPIFlag, applyKCMFlag, applyMaxPods, len(nodes), applyRegistry, worker)
}

// checkReverted: everything checkApplied checked is gone again.
func checkReverted(ctx context.Context, t *testing.T, c *labCluster, k kubernetes.Interface, cps, nodes []string, worker string) {
	t.Helper()
	pool := clusterCAPool(t, c)
	for _, cp := range cps {
		addr := net.JoinHostPort(nodeInternalIP(ctx, t, k, cp), "6443")
		if err := verifyTLS(addr, applyDNSName, pool); err == nil {
			errorf(t, "%s (%s) still verifies for %s", addr, cp, applyDNSName)
		}
		if got := processArgs(t, c, cp, "kube-apiserver"); slices.Contains(got, applyAPIFlag) {
			errorf(t, "%s: kube-apiserver still runs with %s", cp, applyAPIFlag)
		}
		if got := processArgs(t, c, cp, "kube-controller"); slices.Contains(got, applyKCMFlag) {
			errorf(t, "%s: kube-controller-manager still runs with %s", cp, applyKCMFlag)
		}
		if got := apiserverMounts(t, c, cp); strings.Contains(got, applyVolumeDir) {
			errorf(t, "%s: the running kube-apiserver still mounts %s", cp, applyVolumeDir)
		}
	}
	for _, n := range nodes {
		if got := kubeletMaxPods(ctx, t, k, n); got != 110 {
			errorf(t, "%s: the kubelet runs with maxPods %d, want the default 110", n, got)
		}
		if out := c.ssh(n, "test -e "+applyMirrorDir+"/hosts.toml && echo yes || echo no"); strings.TrimSpace(out) != "no" {
			errorf(t, "%s: the mirror file for %s is still there", n, applyRegistry)
		}
	}
	node, err := k.CoreV1().Nodes().Get(ctx, worker, metav1.GetOptions{})
	if err != nil {
		fatal(t, err)
	}
	if _, ok := node.Labels[applyLabelKey]; ok || slices.ContainsFunc(node.Spec.Taints, func(t corev1.Taint) bool { return t.Key == applyTaintKey }) {
		errorf(t, "%s: labels %v, taints %v after the revert", worker, node.Labels, node.Spec.Taints)
	}
}

// apiserverMounts lists the mount destinations of the running kube-apiserver container on host (its
// runtime's view, not the manifest's).
func apiserverMounts(t *testing.T, c *labCluster, host string) string {
	t.Helper()
	return c.ssh(host, `sudo sh -c 'crictl inspect $(crictl ps -q --name "^kube-apiserver$" --state running | head -n 1)' | grep -o '"containerPath": *"[^"]*"' | sort -u | tr '\n' ' '`)
}

func clusterCAPool(t *testing.T, c *labCluster) *x509.CertPool {
	t.Helper()
	caPEM, err := os.ReadFile(filepath.Join(c.Lab.StateDir(), "pki", "ca.crt"))
	if err != nil {
		fatal(t, err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	return pool
}

// verifyTLS dials addr and verifies its certificate for name against the cluster CA, as a client
// that reaches the API by that name or IP does.
func verifyTLS(addr, name string, pool *x509.CertPool) error {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, &tls.Config{ServerName: name, RootCAs: pool})
	if err == nil {
		conn.Close()
	}
	return err
}

func nodeInternalIP(ctx context.Context, t *testing.T, k kubernetes.Interface, name string) string {
	t.Helper()
	node, err := k.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		fatal(t, err)
	}
	for _, a := range node.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			return a.Address
		}
	}
	fatalf(t, "node %s has no internal IP", name)
	return ""
}

// processArgs is the command line of the one process named comm on host (comm: at most 15
// characters, as the kernel keeps it).
func processArgs(t *testing.T, c *labCluster, host, comm string) []string {
	t.Helper()
	out := c.ssh(host, "for p in $(pgrep -x "+comm+"); do tr '\\0' '\\n' < /proc/$p/cmdline; echo; done")
	return strings.Split(strings.TrimSpace(out), "\n")
}

// kubeletMaxPods is what a node's running kubelet reports (configz through the API).
func kubeletMaxPods(ctx context.Context, t *testing.T, k kubernetes.Interface, node string) int {
	t.Helper()
	raw, err := k.CoreV1().RESTClient().Get().AbsPath("/api/v1/nodes", node, "proxy", "configz").DoRaw(ctx)
	if err != nil {
		errorf(t, "%s configz: %v", node, err)
		return -1
	}
	var z struct {
		KubeletConfig struct {
			MaxPods int `json:"maxPods"`
		} `json:"kubeletconfig"`
	}
	if err := json.Unmarshal(raw, &z); err != nil {
		errorf(t, "%s configz: %v", node, err)
		return -1
	}
	return z.KubeletConfig.MaxPods
}
