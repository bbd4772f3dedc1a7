//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"installer.dev/installer/lab/images"
	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/versions"
)

const (
	upgradeFrom = "v1.36.5"
	upgradeTo   = "v1.37.2"
	upgradeNS   = "e2e-upgrade"
)

// TestScenario5Upgrade: a 1 control plane + 2 worker cluster created at v1.36.5 is upgraded to
// v1.37.2 while a Deployment (3 replicas, PodDisruptionBudget minAvailable 2) behind a Service
// answers a steady request loop. w2 loses power while the workers upgrade; that run fails
// before draining anything, w2 is started again and a re-run completes. Every node ends on v1.37.2,
// the etcd snapshot exists (0600) and verifies with etcdutl, and one more run does nothing.
func TestScenario5Upgrade(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 55*time.Minute)
	defer cancel()
	c := startLab(ctx, t, "-n", "3", "--kubernetes-version", upgradeFrom)
	if c.Spec.Spec.KubernetesVersion != upgradeFrom {
		fatalf(t, "lab spec at %s, want %s", c.Spec.Spec.KubernetesVersion, upgradeFrom)
	}
	create := c.installer("create", "cluster")
	if create.Code != 0 {
		fatalf(t, "create cluster: exit %d\n%s", create.Code, create.Stderr)
	}
	k := c.kube()
	checkNodeVersions(ctx, t, k, upgradeFrom)
	deployWorkload(ctx, t, k)
	loopStart := time.Now()

	// The spec moves to the new version; the lab CCM's image tag follows it, as `lab up` writes it.
	spec := c.versionSpec(upgradeTo)
	plan := c.installerSpec(spec, "upgrade", "--dry-run")
	if plan.Code != 0 {
		fatalf(t, "upgrade --dry-run: exit %d\n%s", plan.Code, plan.Stderr)
	}
	for _, want := range []string{"host cp1:", "kubeadm upgrade apply --config /etc/kubernetes/installer/upgrade.yaml --yes",
		"host w2:", "kubeadm upgrade node --config /etc/kubernetes/installer/upgrade.yaml", "cordon node w1", "drain node w1 (evict " + upgradeNS + "/web-", "uncordon node w1"} {
		if !strings.Contains(plan.Stdout, want) {
			errorf(t, "dry-run plan lacks %q:\n%s", want, plan.Stdout)
		}
	}
	checkNodeVersions(ctx, t, k, upgradeFrom)

	// Run 1: w2 loses power once the control plane is done and the workers' turn begins (w1
	// cordoned), so the control plane's upgrade is measured without the outage. The run must stop
	// rather than drain further: at w1's drain (the PodDisruptionBudget), or before touching w2 (not
	// Ready yet, or its lease still fresh but its SSH port unreachable).
	done := make(chan installerRun, 1)
	upgradeStart := time.Now()
	go func() { done <- c.installerSpec(spec, "upgrade", "--wait-timeout", "2m", "--drain-timeout", "2m") }()
	var first installerRun
	ended := false
	waitFor(ctx, t, 15*time.Minute, "the upgrade cordoning w1", func() bool {
		select {
		case first = <-done:
			ended = true
			return true
		default:
		}
		n, err := k.CoreV1().Nodes().Get(ctx, "w1", metav1.GetOptions{})
		return err == nil && n.Spec.Unschedulable
	})
	if ended {
		fatalf(t, "the upgrade ended before it cordoned w1: exit %d\n%s", first.Code, first.Stderr)
	}
	stopAt := time.Now()
	if err := c.Lab.Kill(ctx, "w2"); err != nil {
		fatalf(t, "power loss of w2: %v", err)
	}
	t.Logf("MEASURE w2 lost power %s after the upgrade began", stopAt.Sub(upgradeStart).Round(time.Second))
	first = <-done
	if first.Code == 0 {
		fatalf(t, "the upgrade succeeded with w2 down:\n%s", first.Stderr)
	}
	reason := lastLine(first.Stderr)
	stoppedAtW2 := strings.Contains(reason, "w2 (not Ready") ||
		strings.Contains(reason, "host w2: gather facts: cannot reach")
	if !stoppedAtW2 && !strings.Contains(reason, "blocked by PodDisruptionBudget "+upgradeNS+"/web") {
		errorf(t, "run 1 did not stop at w2 being down:\n%s", first.Stderr)
	}
	t.Logf("MEASURE run 1 (w2 lost power mid-upgrade) failed as expected after %s: %s", first.Wall.Round(time.Second), reason)
	if w2, err := k.CoreV1().Nodes().Get(ctx, "w2", metav1.GetOptions{}); err == nil && w2.Status.NodeInfo.KubeletVersion != upgradeFrom {
		errorf(t, "w2 reports %s after run 1", w2.Status.NodeInfo.KubeletVersion)
	}
	if err := c.Lab.Start(ctx, "w2"); err != nil {
		fatalf(t, "start w2: %v", err)
	}
	startAt := time.Now()

	second := c.installerSpec(spec, "upgrade")
	if second.Code != 0 {
		fatalf(t, "re-run after w2 came back: exit %d\n%s", second.Code, second.Stderr)
	}
	upgradeEnd := time.Now()
	t.Logf("MEASURE upgrade wall time: run 1 %s (failed at w2), run 2 %s, total with the outage %s",
		first.Wall.Round(time.Second), second.Wall.Round(time.Second), upgradeEnd.Sub(upgradeStart).Round(time.Second))
	reportUpgradeTimes(t, first.Stderr+second.Stderr)

	checkNodeVersions(ctx, t, k, upgradeTo)
	checkUpgradedCluster(ctx, t, c, k)
	checkSnapshot(ctx, t, c, first.Stderr)

	third := c.installerSpec(spec, "upgrade")
	if third.Code != 0 || third.TotalChanges() != 0 || !strings.Contains(third.Stderr, "every node runs "+upgradeTo) {
		errorf(t, "upgrade at the target: exit %d, %d changes (%v)\n%s", third.Code, third.TotalChanges(), third.Changes, third.Stderr)
	}
	t.Logf("MEASURE upgrade at the target (does nothing): %s", third.Wall.Round(time.Millisecond))
	snaps, _ := filepath.Glob(filepath.Join(c.Lab.StateDir(), "etcd-snapshots", "*.db"))
	if len(snaps) != 1 {
		errorf(t, "snapshots after 3 runs: %v, want exactly 1 (taken before the control plane moved)", snaps)
	}

	reportRequests(ctx, t, k, loopStart, []window{
		{"before the upgrade", loopStart, upgradeStart},
		{"upgrade until w2 lost power", upgradeStart, stopAt},
		{"w2 down until booted again", stopAt, startAt},
		{"w2 back until the upgrade finished", startAt, upgradeEnd},
		{"after the upgrade", upgradeEnd, time.Now()},
	})
	// The pods evicted from the last node drained may still be starting elsewhere: wait for them.
	waitFor(ctx, t, 3*time.Minute, "web available with 3 replicas after the upgrade", func() bool {
		out, err := k.AppsV1().Deployments(upgradeNS).Get(ctx, "web", metav1.GetOptions{})
		return err == nil && out.Status.AvailableReplicas == 3
	})
}

// versionSpec writes the lab's spec moved to version; the lab CCM's image tag follows it, as `lab
// up` writes it.
func (c *labCluster) versionSpec(version string) string {
	c.t.Helper()
	return c.specVariant("cluster-"+version+".yaml", func(s *v1alpha1.Cluster) {
		s.Spec.KubernetesVersion = version
		s.Spec.CloudProvider.Image = images.CCMImage(version)
	})
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func waitFor(ctx context.Context, t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			fatalf(t, "%s: not within %s", what, timeout)
		}
		time.Sleep(2 * time.Second)
	}
}

// checkNodeVersions: the 3 nodes run version, none cordoned.
func checkNodeVersions(ctx context.Context, t *testing.T, k kubernetes.Interface, version string) {
	t.Helper()
	checkNodeCountVersions(ctx, t, k, 3, version)
}

func checkNodeCountVersions(ctx context.Context, t *testing.T, k kubernetes.Interface, want int, version string) {
	t.Helper()
	nodes, err := k.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		fatal(t, err)
	}
	if len(nodes.Items) != want {
		errorf(t, "%d nodes, want %d", len(nodes.Items), want)
	}
	for _, n := range nodes.Items {
		if v := n.Status.NodeInfo.KubeletVersion; v != version {
			errorf(t, "node %s: kubelet %s, want %s", n.Name, v, version)
		}
		if n.Spec.Unschedulable {
			errorf(t, "node %s is cordoned", n.Name)
		}
	}
}

// deployWorkload runs the web Deployment (labnet serve, 3 replicas, a readiness probe) with its
// PodDisruptionBudget and Service, and the request loop: a DaemonSet pinned to cp1 (drains leave
// DaemonSet pods alone) running labnet get against the Service's ClusterIP five times a second,
// one "ok"/"fail" line with the time per request. Its shell is the lab's static busybox, copied in
// by an init container.
func deployWorkload(ctx context.Context, t *testing.T, k kubernetes.Interface) {
	t.Helper()
	deployWorkloadOn(ctx, t, k, false)
}

// deployWorkloadOn is deployWorkload whose web pods may also run on control planes (a cluster
// with one worker could not drain it while the PodDisruptionBudget holds).
func deployWorkloadOn(ctx context.Context, t *testing.T, k kubernetes.Interface, controlPlanes bool) {
	t.Helper()
	var tolerations []corev1.Toleration
	if controlPlanes {
		tolerations = []corev1.Toleration{{Key: "node-role.kubernetes.io/control-plane", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}}
	}
	if _, err := k.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: upgradeNS}}, metav1.CreateOptions{}); err != nil {
		fatal(t, err)
	}
	labels := map[string]string{"app": "web"}
	replicas := int32(3)
	web := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: upgradeNS}, Spec: appsv1.DeploymentSpec{
		Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: labels},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: ptr(int64(10)),
			Tolerations:                   tolerations,
			// A Service backend that is evicted must keep serving until every node's kube-proxy has
			// dropped it (Kubernetes' advice for graceful termination): a 5 s preStop sleep.
			Containers: []corev1.Container{{Name: "web", Image: images.LabnetImage, Args: []string{"serve", ":8080"},
				Lifecycle: &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: 5}}},
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: intstr.FromInt32(8080)}},
					PeriodSeconds: 2}}}}}}}
	if _, err := k.AppsV1().Deployments(upgradeNS).Create(ctx, web, metav1.CreateOptions{}); err != nil {
		fatal(t, err)
	}
	minAvailable := intstr.FromInt32(2)
	pdb := &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: upgradeNS},
		Spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: &minAvailable, Selector: &metav1.LabelSelector{MatchLabels: labels}}}
	if _, err := k.PolicyV1().PodDisruptionBudgets(upgradeNS).Create(ctx, pdb, metav1.CreateOptions{}); err != nil {
		fatal(t, err)
	}
	svc, err := k.CoreV1().Services(upgradeNS).Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: upgradeNS},
		Spec: corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}}}, metav1.CreateOptions{})
	if err != nil {
		fatal(t, err)
	}
	waitFor(ctx, t, 3*time.Minute, "web available", func() bool {
		d, err := k.AppsV1().Deployments(upgradeNS).Get(ctx, "web", metav1.GetOptions{})
		return err == nil && d.Status.AvailableReplicas == 3
	})
	loop := `i=0
while :; do
  if out=$(/labnet get "$1" 2>&1 >/dev/null); then r=ok; else r=fail; fi
  echo "$r $(/tools/busybox date +%s)"
  [ "$r" = ok ] || echo "err: $out"
  /tools/busybox sleep 0.2
done`
	loopLabels := map[string]string{"app": "loop"}
	ds := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "loop", Namespace: upgradeNS}, Spec: appsv1.DaemonSetSpec{
		Selector: &metav1.LabelSelector{MatchLabels: loopLabels},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: loopLabels}, Spec: corev1.PodSpec{
			NodeSelector: map[string]string{"kubernetes.io/hostname": "cp1"},
			Tolerations:  []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
			Volumes:      []corev1.Volume{{Name: "tools", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
			InitContainers: []corev1.Container{{Name: "tools", Image: images.BusyboxImage, Command: []string{"cp", "/usr/bin/busybox", "/tools/busybox"},
				VolumeMounts: []corev1.VolumeMount{{Name: "tools", MountPath: "/tools"}}}},
			Containers: []corev1.Container{{Name: "loop", Image: images.LabnetImage,
				Command:      []string{"/tools/busybox", "sh", "-c", loop, "loop", "http://" + svc.Spec.ClusterIP + "/"},
				VolumeMounts: []corev1.VolumeMount{{Name: "tools", MountPath: "/tools"}}}}}}}}
	if _, err := k.AppsV1().DaemonSets(upgradeNS).Create(ctx, ds, metav1.CreateOptions{}); err != nil {
		fatal(t, err)
	}
	waitFor(ctx, t, 3*time.Minute, "request loop answered", func() bool {
		n, _, err := loopResults(ctx, k)
		return err == nil && len(n) > 10
	})
}

func ptr[T any](v T) *T { return &v }

type sample struct {
	at time.Time
	ok bool
	// err is what the failed request printed.
	err string
}

// loopResults reads every request the loop made (its current and, after a restart, its previous
// container's log) and how often the loop container restarted.
func loopResults(ctx context.Context, k kubernetes.Interface) ([]sample, int32, error) {
	pods, err := k.CoreV1().Pods(upgradeNS).List(ctx, metav1.ListOptions{LabelSelector: "app=loop"})
	if err != nil || len(pods.Items) != 1 {
		return nil, 0, fmt.Errorf("loop pod: %v (%d pods)", err, len(pods.Items))
	}
	p := pods.Items[0]
	var restarts int32
	for _, s := range p.Status.ContainerStatuses {
		restarts += s.RestartCount
	}
	var raw bytes.Buffer
	if restarts > 0 {
		prev, _ := k.CoreV1().Pods(upgradeNS).GetLogs(p.Name, &corev1.PodLogOptions{Container: "loop", Previous: true}).DoRaw(ctx)
		raw.Write(prev)
	}
	cur, err := k.CoreV1().Pods(upgradeNS).GetLogs(p.Name, &corev1.PodLogOptions{Container: "loop"}).DoRaw(ctx)
	if err != nil {
		return nil, restarts, err
	}
	raw.Write(cur)
	var out []sample
	for _, l := range strings.Split(raw.String(), "\n") {
		if msg, ok := strings.CutPrefix(l, "err: "); ok {
			if len(out) > 0 && !out[len(out)-1].ok {
				out[len(out)-1].err = strings.TrimSpace(msg)
			}
			continue
		}
		f := strings.Fields(l)
		if len(f) != 2 {
			continue
		}
		sec, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			continue
		}
		out = append(out, sample{at: time.Unix(sec, 0), ok: f[0] == "ok"})
	}
	return out, restarts, nil
}

type window struct {
	name       string
	start, end time.Time
}

// reportRequests logs, per window, how many requests the loop made and how many failed, and the
// seconds in which failures happened; a clean upgrade (w2's outage aside) must not fail any.
func reportRequests(ctx context.Context, t *testing.T, k kubernetes.Interface, since time.Time, windows []window) {
	t.Helper()
	samples, restarts, err := loopResults(ctx, k)
	if err != nil {
		errorf(t, "request loop: %v", err)
		return
	}
	// A loop pod made after the loop started (evicted and replaced: kubelets evict under disk
	// pressure) has lost the results before it; the counts below would hide failures.
	if pods, err := k.CoreV1().Pods(upgradeNS).List(ctx, metav1.ListOptions{LabelSelector: "app=loop"}); err == nil && len(pods.Items) == 1 {
		if created := pods.Items[0].CreationTimestamp.Time; created.After(since) {
			errorf(t, "the request loop's pod was replaced %s after the loop started (evicted?): the requests before are lost", created.Sub(since).Round(time.Second))
		}
	}
	if restarts > 0 {
		t.Logf("MEASURE the request loop container restarted %d time(s); earlier logs before the last restart are lost", restarts)
	}
	for _, w := range windows {
		total, failed := 0, 0
		var when, errs []string
		for _, s := range samples {
			if s.at.Before(w.start.Truncate(time.Second)) || !s.at.Before(w.end) {
				continue
			}
			total++
			if !s.ok {
				failed++
				when = append(when, s.at.Sub(since).Round(time.Second).String())
				errs = append(errs, s.err)
			}
		}
		t.Logf("MEASURE requests %s: %d, failed %d %v", w.name, total, failed, compact(when))
		if len(errs) > 0 {
			t.Logf("  their errors: %s", strings.Join(compact(errs), "; "))
		}
	}
}

// compact shortens a list of failure times to its distinct seconds.
func compact(ts []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range ts {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

var (
	nodeLine     = regexp.MustCompile(`msg="upgrade of the (node|control plane) done" host=(\S+) version=\S+ seconds=(\S+)`)
	snapshotLine = regexp.MustCompile(`msg="etcd snapshot saved and verified" path=(\S+) bytes=(\d+) revision=(\d+) keys=(\d+) .*seconds=(\S+)`)
)

func reportUpgradeTimes(t *testing.T, stderr string) {
	t.Helper()
	var lines []string
	for _, m := range nodeLine.FindAllStringSubmatch(stderr, -1) {
		s, _ := strconv.ParseFloat(m[3], 64)
		what := "kubelet (drain, kubelet, restart, wait, uncordon)"
		if m[1] == "control plane" {
			what = "control plane (kubeadm upgrade plan/apply or node)"
		}
		lines = append(lines, fmt.Sprintf("%s %s: %.1f s", m[2], what, s))
	}
	sort.Strings(lines)
	t.Logf("MEASURE upgrade wall time per node:\n  %s", strings.Join(lines, "\n  "))
	if len(lines) != 4 {
		errorf(t, "expected 4 timing lines (cp1 control plane, cp1, w1, w2 nodes), got %d", len(lines))
	}
}

// checkUpgradedCluster: the add-ons kubeadm upgrades, etcd, and the CCM follow the new version.
func checkUpgradedCluster(ctx context.Context, t *testing.T, c *labCluster, k kubernetes.Interface) {
	t.Helper()
	dss, err := k.AppsV1().DaemonSets("kube-system").List(ctx, metav1.ListOptions{})
	if err != nil {
		fatal(t, err)
	}
	have := map[string]string{}
	for _, ds := range dss.Items {
		have[ds.Name] = strings.Join(imagesOf(ds.Spec.Template.Spec), ",")
	}
	var ccm bool
	for _, imgs := range have {
		ccm = ccm || imgs == images.CCMImage(upgradeTo)
	}
	if have["kube-proxy"] != "registry.k8s.io/kube-proxy:"+upgradeTo || !ccm {
		errorf(t, "DaemonSets in kube-system after the upgrade (want kube-proxy %s and the CCM at %s): %v", upgradeTo, images.CCMImage(upgradeTo), have)
	}
	rel, _ := versions.Lookup(upgradeTo)
	dns, err := k.AppsV1().Deployments("kube-system").Get(ctx, "coredns", metav1.GetOptions{})
	if err != nil || imagesOf(dns.Spec.Template.Spec)[0] != "registry.k8s.io/coredns/coredns:"+rel.CoreDNS {
		errorf(t, "coredns after the upgrade: %v %v, want %s", err, imagesOf(dns.Spec.Template.Spec), rel.CoreDNS)
	}
	etcd := c.ssh("cp1", "sudo sed -n 's/^ *image: *//p' /etc/kubernetes/manifests/etcd.yaml")
	if !strings.HasSuffix(strings.TrimSpace(etcd), "etcd:"+rel.Etcd) {
		errorf(t, "etcd image after the upgrade: %q, want %s", etcd, rel.Etcd)
	}
	for _, h := range []string{"cp1", "w1", "w2"} {
		out := c.ssh(h, "kubeadm version -o short; kubelet --version; kubectl version --client | head -n1; sudo cat /var/lib/kubelet/kubeadm-flags.env")
		if strings.Count(out, upgradeTo) != 3 || strings.Contains(out, "pod-infra-container-image") {
			errorf(t, "%s after the upgrade:\n%s", h, out)
		}
	}
}

func imagesOf(s corev1.PodSpec) []string {
	var out []string
	for _, c := range s.Containers {
		out = append(out, c.Image)
	}
	return out
}

// checkSnapshot: the snapshot the first run took is in the state directory (0600), and etcdutl in
// cp1's etcd container reads it back.
func checkSnapshot(ctx context.Context, t *testing.T, c *labCluster, stderr string) {
	t.Helper()
	m := snapshotLine.FindStringSubmatch(stderr)
	if m == nil {
		errorf(t, "no snapshot line in the first run's output")
		return
	}
	t.Logf("MEASURE etcd snapshot: %s bytes, revision %s, %s keys, saved+verified+copied in %s s", m[2], m[3], m[4], m[5])
	st, err := os.Stat(m[1])
	if err != nil || st.Mode().Perm() != 0o600 || strconv.FormatInt(st.Size(), 10) != m[2] {
		fatalf(t, "snapshot file %s: %v %v", m[1], st, err)
	}
	data, err := os.ReadFile(m[1])
	if err != nil {
		fatal(t, err)
	}
	cmd, err := c.Lab.SSHCommand(ctx, "cp1", `sudo sh -c 'cat > /var/lib/etcd/e2e-verify.db
c=$(crictl ps -q --name "^etcd$" --state running | head -n 1)
crictl exec "$c" etcdutl snapshot status /var/lib/etcd/e2e-verify.db -w json; rc=$?
rm -f /var/lib/etcd/e2e-verify.db; exit $rc'`)
	if err != nil {
		fatal(t, err)
	}
	var out, errb bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(data), &out, &errb
	if err := cmd.Run(); err != nil {
		fatalf(t, "etcdutl snapshot status: %v\n%s", err, errb.String())
	}
	var status struct {
		Revision int64 `json:"revision"`
		TotalKey int   `json:"totalKey"`
	}
	if err := json.Unmarshal(out.Bytes(), &status); err != nil || status.Revision == 0 || status.TotalKey == 0 {
		errorf(t, "etcdutl on the copied snapshot: %v %s", err, out.String())
	}
	t.Logf("etcdutl snapshot status of the state directory's copy: %s", strings.TrimSpace(out.String()))
}
