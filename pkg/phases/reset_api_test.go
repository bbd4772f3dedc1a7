package phases

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"installer.dev/installer/lab/testapiserver"
	"installer.dev/installer/pkg/exitcode"
	"installer.dev/installer/pkg/scripts"
)

// apiCluster connects the simulated cp1 to a real apiserver: its admin.conf is the server's admin
// kubeconfig and its tunnel dials the server. The nodes of the spec are registered, and a stand-in
// kubelet finishes the deletion of terminating pods (no kubelet runs here).
func apiCluster(t *testing.T, sc *simCluster) kubernetes.Interface {
	t.Helper()
	srv := testapiserver.Start(t)
	cp1 := sc.Host("cp1")
	cp1.SetFile("/etc/kubernetes/admin.conf", srv.Kubeconfig, 0o600, "root")
	cp1.OnDial(func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, srv.Addr)
	})
	k := srv.Client
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	for _, h := range sc.spec.Spec.Hosts {
		if _, err := k.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: h.Name}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := k.CoreV1().ServiceAccounts("default").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	go func() {
		zero := int64(0)
		for ctx.Err() == nil {
			pods, err := k.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
			if err == nil {
				for _, p := range pods.Items {
					if p.DeletionTimestamp != nil {
						_ = k.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
					}
				}
			}
			time.Sleep(200 * time.Millisecond)
		}
	}()
	return k
}

// addPod creates a pod bound to node, owned by a controller of the given kind.
func addPod(t *testing.T, k kubernetes.Interface, name, node, ownerKind string, labels map[string]string) {
	t.Helper()
	yes := true
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Labels: labels,
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: ownerKind, Name: name + "-owner", UID: "00000000-0000-0000-0000-000000000001", Controller: &yes}}},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: "registry.k8s.io/pause:3.10.1"}}}}
	if _, err := k.CoreV1().Pods("default").Create(context.Background(), p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// addProtectedPod creates a running pod bound to node that a PodDisruptionBudget allowing no
// disruption protects (app=db, minAvailable 1).
func addProtectedPod(t *testing.T, k kubernetes.Interface, name, node string) {
	t.Helper()
	ctx := context.Background()
	// A budget that allows no disruption (no controller updates its status here) blocks the drain.
	one := intstr.FromInt32(1)
	pdb := &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "default"},
		Spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: &one, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}}}}
	pdb, err := k.PolicyV1().PodDisruptionBudgets("default").Create(ctx, pdb, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The status the disruption controller would write (none runs here). Without it the apiserver
	// answers 429 with Retry-After: 10, which client-go waits out by itself.
	pdb.Status = policyv1.PodDisruptionBudgetStatus{ObservedGeneration: pdb.Generation, DisruptionsAllowed: 0, CurrentHealthy: 1, DesiredHealthy: 1, ExpectedPods: 1}
	if _, err := k.PolicyV1().PodDisruptionBudgets("default").UpdateStatus(ctx, pdb, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	addPod(t, k, name, node, "StatefulSet", map[string]string{"app": "db"})
	// Only a running pod counts for a budget (a pending one is evicted regardless).
	db, err := k.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	db.Status.Phase = corev1.PodRunning
	db.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	if _, err := k.CoreV1().Pods("default").UpdateStatus(ctx, db, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestResetNodeThroughRealAPI: `reset --host w1` on a cluster whose API is a real apiserver reached
// through cp1's tunnel. The dry run plans cordon, drain (naming the pod it would evict) and delete
// and changes nothing; the real run cordons w1, evicts its pod (the DaemonSet's stays for kubeadm
// reset), resets the host and deletes the Node; cp1 is only read from. A pod a PodDisruptionBudget
// protects stops w2's drain at the timeout: w2 stays cordoned, its host and Node untouched. With the
// API answering, resetting the control plane is refused because w2 is still a node.
func TestResetNodeThroughRealAPI(t *testing.T) {
	sc := newSimCluster(t, createSpec(t))
	sc.create(t)
	k := apiCluster(t, sc)
	ctx := context.Background()
	addPod(t, k, "web-1", "w1", "ReplicaSet", nil)
	addPod(t, k, "flannel-w1", "w1", "DaemonSet", nil)
	addPod(t, k, "web-2", "w2", "ReplicaSet", nil)

	o := ResetOptions{DrainTimeout: 30 * time.Second}
	dry := sc.newRun(t, []string{"w1"}, "cp1")
	dry.DryRun = true
	if _, err := Execute(ctx, dry, Reset(o)); err != nil {
		t.Fatal(err)
	}
	var plan []string
	for _, p := range dry.Planned() {
		if p.Host == "w1" && !strings.HasPrefix(p.Command, "remove ") && !strings.HasPrefix(p.Command, "kubeadm") {
			plan = append(plan, p.Phase+": "+p.Command)
		}
	}
	want := "cordon: cordon node w1\nreset/workers: drain node w1 (evict default/web-1; timeout 30s)\nreset/workers: delete node w1"
	if strings.Join(plan, "\n") != want {
		t.Errorf("dry run plan:\n%s\nwant:\n%s", strings.Join(plan, "\n"), want)
	}
	if n, _ := k.CoreV1().Nodes().Get(ctx, "w1", metav1.GetOptions{}); n.Spec.Unschedulable {
		t.Error("the dry run cordoned w1")
	}

	mark := sc.marks()
	r := sc.newRun(t, []string{"w1"}, "cp1")
	if _, err := Execute(ctx, r, Reset(o)); err != nil {
		t.Fatal(err)
	}
	// The real reset made exactly the cluster-API changes the dry run planned.
	if planned, performed := apiEffects(dry.Planned()), apiEffects(r.Performed()); planned != performed {
		t.Errorf("the dry run planned:\n%s\nthe reset made:\n%s", planned, performed)
	}
	if _, err := k.CoreV1().Nodes().Get(ctx, "w1", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("node w1: %v, want deleted", err)
	}
	if _, err := k.CoreV1().Pods("default").Get(ctx, "web-1", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("pod web-1: %v, want evicted", err)
	}
	if _, err := k.CoreV1().Pods("default").Get(ctx, "flannel-w1", metav1.GetOptions{}); err != nil {
		t.Errorf("the DaemonSet's pod was evicted: %v", err)
	}
	if left := sc.Host("w1").Leftovers(); len(left) > 0 {
		t.Errorf("w1: %v", left)
	}
	if got := sc.Host("w2").Transcript(mark.hosts["w2"]); len(got) != 0 {
		t.Errorf("w2 was touched: %v", got)
	}
	for _, l := range sc.Host("cp1").Transcript(mark.hosts["cp1"]) {
		// Read: the check for a leftover kubeadm, the facts, admin.conf, and the API through the
		// host's tunnel (dial).
		if l != scripts.Facts.Name && l != leftoverCheck && l != "read /etc/kubernetes/admin.conf" && !strings.HasPrefix(l, "dial ") {
			t.Errorf("cp1 did more than being read: %s", l)
		}
	}
	if n, err := k.CoreV1().Nodes().Get(ctx, "w2", metav1.GetOptions{}); err != nil || n.Spec.Unschedulable {
		t.Errorf("w2: %v, unschedulable %v", err, n.Spec.Unschedulable)
	}

	addProtectedPod(t, k, "db-1", "w2")
	mark = sc.marks()
	r = sc.newRun(t, []string{"w2"}, "cp1")
	start := time.Now()
	_, err := Execute(ctx, r, Reset(ResetOptions{DrainTimeout: 3 * time.Second}))
	if err == nil || !strings.Contains(err.Error(), "phase reset/workers: host w2: drain w2: not done within 3s; still on the node: default/db-1 (blocked by PodDisruptionBudget default/db (minAvailable 1, 1 of 1 healthy, 0 disruptions allowed))") {
		t.Fatalf("drain blocked by a budget: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the blocked drain took %s; its timeout is 3s", d)
	}
	if _, err := k.CoreV1().Pods("default").Get(ctx, "web-2", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("web-2, which no budget protects, was not evicted: %v", err)
	}
	for _, l := range sc.Host("w2").Transcript(mark.hosts["w2"]) {
		if strings.Contains(l, "kubeadm reset") || strings.Contains(l, " remove") {
			t.Errorf("w2's host was reset although its drain failed: %s", l)
		}
	}
	if n, err := k.CoreV1().Nodes().Get(ctx, "w2", metav1.GetOptions{}); err != nil || !n.Spec.Unschedulable {
		t.Errorf("w2 after the blocked drain: %v, unschedulable %v; want it kept, cordoned", err, n.Spec.Unschedulable)
	}

	// The API answers, and says w2 is still a node.
	r = sc.newRun(t, []string{"cp1"})
	_, err = Execute(ctx, r, Reset(ResetOptions{}))
	if err == nil || exitcode.Of(err) != exitcode.InvalidInput || !strings.Contains(err.Error(), "refusing to reset the last control plane(s): w2 would be left without one (still nodes of the cluster)") {
		t.Errorf("reset of the last control plane with w2 a node: %v", err)
	}
}
