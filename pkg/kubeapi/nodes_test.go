package kubeapi

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// TestNodesAndClusterVersion: the reads phases make through kubeapi, and a node deletion that is
// idempotent.
func TestNodesAndClusterVersion(t *testing.T) {
	ctx := context.Background()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "kubeadm-config", Namespace: "kube-system"},
		Data: map[string]string{"ClusterConfiguration": "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nkubernetesVersion: v1.37.2\n"}}
	c := &Client{Kube: fake.NewClientset(cm,
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "cp1"}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "w1"}, Spec: corev1.NodeSpec{Unschedulable: true}})}
	v, err := c.KubeadmClusterVersion(ctx)
	if err != nil || v != "v1.37.2" {
		t.Errorf("cluster version %q, %v", v, err)
	}
	nodes, err := c.Nodes(ctx)
	if err != nil || len(nodes) != 2 || !nodes["w1"].Spec.Unschedulable {
		t.Errorf("nodes %v, %v", nodes, err)
	}
	if err := c.DeleteNode(ctx, "w1"); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteNode(ctx, "w1"); err != nil {
		t.Errorf("deleting a node that is gone: %v", err)
	}
	if _, err := c.Node(ctx, "w1"); !apierrors.IsNotFound(err) {
		t.Errorf("node w1 after its deletion: %v", err)
	}
}
