package kubeapi

import (
	"context"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"installer.dev/installer/lab/testapiserver"
	"installer.dev/installer/pkg/constants"
)

const manifest = `apiVersion: v1
kind: Namespace
metadata: {name: demo}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: conf, namespace: demo}
data: {key: one}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  names: {kind: Widget, plural: widgets, singular: widget}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
---
apiVersion: example.com/v1
kind: Widget
metadata: {name: w, namespace: demo}
spec: {size: 3}
`

// TestAgainstRealAPIServer: server-side apply counts real changes (an unchanged object keeps its
// resourceVersion), waits for a CRD from the same manifest, and the waits read real conditions. The
// client dials only through the given DialFunc, as through an SSH tunnel.
func TestAgainstRealAPIServer(t *testing.T) {
	srv := testapiserver.Start(t)
	var dials atomic.Int32
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		if addr != constants.LocalAPIServer {
			t.Errorf("dialed %s, want the control plane's local apiserver %s", addr, constants.LocalAPIServer)
		}
		dials.Add(1)
		var d net.Dialer
		return d.DialContext(ctx, network, srv.Addr) // the tunnel's far end
	}
	c, err := Connect(srv.Kubeconfig, dial)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	n, err := c.Apply(ctx, []byte(manifest))
	if err != nil || n != 4 {
		t.Fatalf("first apply: %d changed, %v", n, err)
	}
	if n, err = c.Apply(ctx, []byte(manifest)); err != nil || n != 0 {
		t.Fatalf("re-apply: %d changed, %v", n, err)
	}
	if n, err = c.Apply(ctx, []byte(strings.Replace(manifest, "key: one", "key: two", 1))); err != nil || n != 1 {
		t.Fatalf("changed ConfigMap: %d changed, %v", n, err)
	}
	if dials.Load() == 0 {
		t.Fatal("the client never used the dial function")
	}

	// Nodes: Ready and, with a CCM, initialised (no uninitialized taint, a providerID).
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "w1"}, Spec: corev1.NodeSpec{
		Taints: []corev1.Taint{{Key: UninitializedTaint, Value: "true", Effect: corev1.TaintEffectNoSchedule}}}}
	created, err := srv.Client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	created.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()}}
	if created, err = srv.Client.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := c.NodesReady(ctx, []string{"w1"}, false, 10*time.Second); err != nil {
		t.Fatalf("Ready node without CCM: %v", err)
	}
	err = c.NodesReady(ctx, []string{"w1", "w2"}, true, 3*time.Second)
	if err == nil || !strings.Contains(err.Error(), "(last seen: waiting for w1 (not initialised by the cloud-controller-manager), w2 (not registered)") {
		t.Fatalf("uninitialised node: %v", err)
	}
	created.Spec.Taints, created.Spec.ProviderID = nil, "lab://w1"
	if _, err := srv.Client.CoreV1().Nodes().Update(ctx, created, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := c.NodesReady(ctx, []string{"w1"}, true, 10*time.Second); err != nil {
		t.Fatalf("initialised node: %v", err)
	}

	// A Deployment whose pods all sit on one node is restarted once; spread pods are left alone.
	replicas := int32(2)
	labels := map[string]string{"app": "dns"}
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "coredns", Namespace: "demo"}, Spec: appsv1.DeploymentSpec{
		Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: labels},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "registry.k8s.io/pause:3.10.1"}}}}}}
	// No controller-manager runs here to create the namespace's default service account.
	if _, err := srv.Client.CoreV1().ServiceAccounts("demo").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Client.AppsV1().Deployments("demo").Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"dns-a", "dns-b"} {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "demo", Labels: labels},
			Spec: corev1.PodSpec{NodeName: "w1", Containers: []corev1.Container{{Name: "c", Image: "registry.k8s.io/pause:3.10.1"}}}}
		if _, err := srv.Client.CoreV1().Pods("demo").Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	restarted, err := c.SpreadDeployment(ctx, "demo", "coredns")
	if err != nil || !restarted {
		t.Fatalf("pods on one node: restarted=%v %v", restarted, err)
	}
	got, _ := srv.Client.AppsV1().Deployments("demo").Get(ctx, "coredns", metav1.GetOptions{})
	if got.Spec.Template.Annotations["installer.dev/restartedAt"] == "" {
		t.Error("restart annotation missing")
	}
	if err := srv.Client.CoreV1().Pods("demo").Delete(ctx, "dns-b", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "dns-c", Namespace: "demo", Labels: labels},
		Spec: corev1.PodSpec{NodeName: "w2", Containers: []corev1.Container{{Name: "c", Image: "registry.k8s.io/pause:3.10.1"}}}}
	if _, err := srv.Client.CoreV1().Pods("demo").Create(ctx, p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if restarted, err := c.SpreadDeployment(ctx, "demo", "coredns"); err != nil || restarted {
		t.Fatalf("spread pods restarted=%v %v", restarted, err)
	}

	// Without controllers the Deployment never becomes available: the wait says what it saw.
	err = c.DeploymentAvailable(ctx, "demo", "coredns", 2*time.Second)
	// A request cut short by the deadline may add "; then: <error>" after the last state.
	if err == nil || !strings.Contains(err.Error(), "deployment demo/coredns available: not reached within 2s (last seen: 0/2 updated, 0 available") {
		t.Fatalf("unavailable deployment: %v", err)
	}
}
