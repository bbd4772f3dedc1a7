package kubeapi

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// Nodes returns the cluster's Node objects by name.
func (c *Client) Nodes(ctx context.Context) (map[string]corev1.Node, error) {
	list, err := c.Kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	out := make(map[string]corev1.Node, len(list.Items))
	for _, n := range list.Items {
		out[n.Name] = n
	}
	return out, nil
}

// Node reads one Node object; apierrors.IsNotFound(err) when it is not registered.
func (c *Client) Node(ctx context.Context, name string) (*corev1.Node, error) {
	n, err := c.Kube.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("read node %s: %w", name, err)
	}
	return n, nil
}

// DeleteNode deletes a Node object; one that is gone already is fine.
func (c *Client) DeleteNode(ctx context.Context, name string) error {
	err := c.Kube.CoreV1().Nodes().Delete(ctx, name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete node %s: %w", name, err)
	}
	return nil
}

// KubeadmClusterVersion is the kubernetesVersion of kubeadm's ClusterConfiguration in the cluster
// (kube-system/kubeadm-config): the version the last `kubeadm upgrade apply` completed.
func (c *Client) KubeadmClusterVersion(ctx context.Context) (string, error) {
	cm, err := c.Kube.CoreV1().ConfigMaps("kube-system").Get(ctx, "kubeadm-config", metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("read kubeadm-config: %w", err)
	}
	var cc struct {
		KubernetesVersion string `json:"kubernetesVersion"`
	}
	if err := yaml.Unmarshal([]byte(cm.Data["ClusterConfiguration"]), &cc); err != nil {
		return "", fmt.Errorf("kubeadm-config: %w", err)
	}
	return cc.KubernetesVersion, nil
}

// LeaseRenewed is when node's kubelet last renewed its Lease (kube-node-lease); zero when the
// Lease does not exist or was never renewed.
func (c *Client) LeaseRenewed(ctx context.Context, node string) (time.Time, error) {
	lease, err := c.Kube.CoordinationV1().Leases("kube-node-lease").Get(ctx, node, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("node %s's lease: %w", node, err)
	}
	if lease.Spec.RenewTime == nil {
		return time.Time{}, nil
	}
	return lease.Spec.RenewTime.Time, nil
}
