package kubeapi

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

func pod(name, node, ownerKind string, mutate ...func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Labels: map[string]string{"app": name}},
		Spec: corev1.PodSpec{NodeName: node}, Status: corev1.PodStatus{Phase: corev1.PodRunning}}
	if ownerKind != "" {
		yes := true
		p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: ownerKind, Name: "owner", UID: "u", Controller: &yes}}
	}
	for _, m := range mutate {
		m(p)
	}
	return p
}

// drainClient is a fake API whose evictions delete the pod, except for pods whose app label is in
// blocked: those answer 429 as the apiserver does when a PodDisruptionBudget allows no disruption.
func drainClient(t *testing.T, blocked map[string]bool, objs ...runtime.Object) (*Client, *fake.Clientset) {
	t.Helper()
	cs := fake.NewClientset(objs...)
	gvr := schema.GroupVersionResource{Version: "v1", Resource: "pods"}
	cs.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "eviction" {
			return false, nil, nil
		}
		ev := a.(k8stesting.CreateAction).GetObject().(*policyv1.Eviction)
		obj, err := cs.Tracker().Get(gvr, ev.Namespace, ev.Name)
		if err != nil {
			return true, nil, err
		}
		if blocked[obj.(*corev1.Pod).Labels["app"]] {
			return true, nil, apierrors.NewTooManyRequests("Cannot evict pod as it would violate the pod's disruption budget.", 10)
		}
		return true, nil, cs.Tracker().Delete(gvr, ev.Namespace, ev.Name)
	})
	return &Client{Kube: cs}, cs
}

func remaining(t *testing.T, cs *fake.Clientset) []string {
	t.Helper()
	list, err := cs.CoreV1().Pods("").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range list.Items {
		out = append(out, p.Name)
	}
	return out
}

// TestDrain: managed pods are evicted, finished pods deleted, DaemonSet and static pods stay, pods on
// other nodes are untouched.
func TestDrain(t *testing.T) {
	c, cs := drainClient(t, nil,
		pod("web", "w1", "ReplicaSet"),
		pod("db", "w1", "StatefulSet"),
		pod("proxy", "w1", "DaemonSet"),
		pod("static", "w1", "", func(p *corev1.Pod) { p.Annotations = map[string]string{"kubernetes.io/config.mirror": "h"} }),
		pod("done", "w1", "", func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded }),
		pod("elsewhere", "w2", "ReplicaSet"),
	)
	plan, err := c.Drain(context.Background(), "w1", DrainOptions{Timeout: time.Second, Interval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(remaining(t, cs), ",")
	if got != "elsewhere,proxy,static" {
		t.Errorf("pods left: %s", got)
	}
	// What it set out to do, as a dry run describes it.
	if d, want := plan.Describe("w1", time.Second), "drain node w1 (evict default/db, default/web; delete default/done; timeout 1s)"; d != want {
		t.Errorf("drain described as %q, want %q", d, want)
	}
}

// TestDrainUnmanaged: a pod no controller manages stops the drain before any eviction unless
// Force, which deletes it.
func TestDrainUnmanaged(t *testing.T) {
	c, cs := drainClient(t, nil, pod("web", "w1", "ReplicaSet"), pod("bare", "w1", ""))
	_, err := c.Drain(context.Background(), "w1", DrainOptions{Timeout: time.Second, Interval: time.Millisecond})
	want := "drain w1: pods not managed by a controller would be lost: default/bare (delete them, or use --force)"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
	if got := strings.Join(remaining(t, cs), ","); got != "bare,web" {
		t.Errorf("a refused drain evicted pods: left %s", got)
	}
	if _, err := c.Drain(context.Background(), "w1", DrainOptions{Timeout: time.Second, Interval: time.Millisecond, Force: true}); err != nil {
		t.Fatal(err)
	}
	if got := remaining(t, cs); len(got) != 0 {
		t.Errorf("forced drain left %v", got)
	}
}

// TestDrainBlockedByBudget: a PodDisruptionBudget that allows no disruption is reported once with
// its numbers while the drain retries, and the timeout names the pod and the budget.
func TestDrainBlockedByBudget(t *testing.T) {
	min := intstr.FromInt32(2)
	pdb := &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec:   policyv1.PodDisruptionBudgetSpec{MinAvailable: &min, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}},
		Status: policyv1.PodDisruptionBudgetStatus{CurrentHealthy: 2, DesiredHealthy: 2, ExpectedPods: 3, DisruptionsAllowed: 0}}
	other := &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "default"},
		Spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: &min, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}}}}
	c, _ := drainClient(t, map[string]bool{"web": true}, pod("web", "w1", "ReplicaSet"), pod("api", "w1", "ReplicaSet"), pdb, other)
	var mu sync.Mutex
	var reports []string
	_, err := c.Drain(context.Background(), "w1", DrainOptions{Timeout: 300 * time.Millisecond, Interval: 10 * time.Millisecond,
		Report: func(m string) { mu.Lock(); reports = append(reports, m); mu.Unlock() }})
	why := "blocked by PodDisruptionBudget default/web (minAvailable 2, 2 of 3 healthy, 0 disruptions allowed)"
	want := "drain w1: not done within 300ms; still on the node: default/web (" + why + ")"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
	if len(reports) != 1 || reports[0] != "drain w1: pod default/web: "+why+"; retrying until 300ms" {
		t.Errorf("reports: %q", reports)
	}
}

// TestCordonUncordon: the installer's mark goes on with the cordon and off with the uncordon.
func TestCordonUncordon(t *testing.T) {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "w1", Annotations: map[string]string{"keep": "me"}}}
	c, cs := drainClient(t, nil, node)
	ctx := context.Background()
	if err := c.Cordon(ctx, "w1", "upgrade"); err != nil {
		t.Fatal(err)
	}
	n, _ := cs.CoreV1().Nodes().Get(ctx, "w1", metav1.GetOptions{})
	if !n.Spec.Unschedulable || n.Annotations[CordonedBy] != "upgrade" || n.Annotations["keep"] != "me" {
		t.Fatalf("after cordon: %+v %+v", n.Spec, n.Annotations)
	}
	if err := c.Uncordon(ctx, "w1"); err != nil {
		t.Fatal(err)
	}
	n, _ = cs.CoreV1().Nodes().Get(ctx, "w1", metav1.GetOptions{})
	if n.Spec.Unschedulable || n.Annotations[CordonedBy] != "" || n.Annotations["keep"] != "me" {
		t.Fatalf("after uncordon: %+v %+v", n.Spec, n.Annotations)
	}
}

// TestUncordonRetriesARestartingAPIServer: connection errors and 5xx answers (an apiserver the new
// kubelet is re-creating) are retried until the patch lands; a refusal (not found) is not retried.
func TestUncordonRetriesARestartingAPIServer(t *testing.T) {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "cp1", Annotations: map[string]string{CordonedBy: "upgrade"}}, Spec: corev1.NodeSpec{Unschedulable: true}}
	c, cs := drainClient(t, nil, node)
	c.retryInterval = time.Millisecond
	answers := []error{
		errors.New(`Patch "https://127.0.0.1:6443/api/v1/nodes/cp1": dial tcp 127.0.0.1:6443: connect: connection refused`),
		apierrors.NewServiceUnavailable("etcd is restarting"),
		apierrors.NewInternalError(errors.New("etcdserver: leader changed")),
	}
	var patches int
	cs.PrependReactor("patch", "nodes", func(k8stesting.Action) (bool, runtime.Object, error) {
		patches++
		if patches <= len(answers) {
			return true, nil, answers[patches-1]
		}
		return false, nil, nil
	})
	if err := c.Uncordon(context.Background(), "cp1"); err != nil {
		t.Fatalf("uncordon through a restarting apiserver: %v", err)
	}
	n, _ := cs.CoreV1().Nodes().Get(context.Background(), "cp1", metav1.GetOptions{})
	if patches != len(answers)+1 || n.Spec.Unschedulable || n.Annotations[CordonedBy] != "" {
		t.Fatalf("%d patches (want %d), node %+v %v", patches, len(answers)+1, n.Spec, n.Annotations)
	}

	patches, answers = 0, nil
	err := c.Uncordon(context.Background(), "w9")
	if !apierrors.IsNotFound(err) || patches != 1 || !strings.HasPrefix(err.Error(), "uncordon w9: ") {
		t.Fatalf("uncordon of a missing node: %v after %d patches, want not found after 1", err, patches)
	}
}

func TestImageTag(t *testing.T) {
	for in, want := range map[string]string{
		"registry.k8s.io/kube-proxy:v1.37.2":      "v1.37.2",
		"localhost:5000/kube-proxy":               "",
		"localhost:5000/kube-proxy:v1.36.5":       "v1.36.5",
		"registry.k8s.io/pause:3.10.1@sha256:abc": "3.10.1",
		"kube-proxy": "",
	} {
		if got := ImageTag(in); got != want {
			t.Errorf("ImageTag(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestNodesAliveKeepsWhatItSaw: a list that fails after one that showed a node not Ready (the
// apiserver restarting, a request cut short at the deadline) does not hide that node from the
// timeout's message.
func TestNodesAliveKeepsWhatItSaw(t *testing.T) {
	w2 := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "w2"}, Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionFalse}}}}
	c, cs := drainClient(t, nil, w2)
	lists := 0
	cs.PrependReactor("list", "nodes", func(k8stesting.Action) (bool, runtime.Object, error) {
		if lists++; lists == 1 {
			return false, nil, nil
		}
		return true, nil, errors.New("client rate limiter Wait returned an error: rate: Wait(n=1) would exceed context deadline")
	})
	err := c.NodesAlive(context.Background(), []string{"w2"}, time.Minute, 1500*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "w2 (not Ready)") || !strings.Contains(err.Error(), "then: list nodes: client rate limiter") {
		t.Fatalf("error %v; want the node not Ready, then the failed list", err)
	}
}
