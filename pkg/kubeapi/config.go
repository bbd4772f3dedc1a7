package kubeapi

import (
	"context"
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	kubeadmv1beta4 "k8s.io/kubernetes/cmd/kubeadm/app/apis/kubeadm/v1beta4"
	"sigs.k8s.io/yaml"
)

// KubeadmConfig is kubeadm's ClusterConfiguration as the cluster stores it (kube-system/
// kubeadm-config): what init and the last upgrade apply (or installer apply) wrote.
func (c *Client) KubeadmConfig(ctx context.Context) (*kubeadmv1beta4.ClusterConfiguration, error) {
	cm, err := c.Kube.CoreV1().ConfigMaps("kube-system").Get(ctx, "kubeadm-config", metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("read kubeadm-config: %w", err)
	}
	var cc kubeadmv1beta4.ClusterConfiguration
	if err := yaml.Unmarshal([]byte(cm.Data["ClusterConfiguration"]), &cc); err != nil {
		return nil, fmt.Errorf("kubeadm-config: %w", err)
	}
	return &cc, nil
}

// KubeletConfig is the KubeletConfiguration (YAML) kubeadm stores for every node
// (kube-system/kubelet-config) and writes to each node's /var/lib/kubelet/config.yaml at join
// and upgrade.
func (c *Client) KubeletConfig(ctx context.Context) ([]byte, error) {
	cm, err := c.Kube.CoreV1().ConfigMaps("kube-system").Get(ctx, "kubelet-config", metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("read kubelet-config: %w", err)
	}
	data, ok := cm.Data["kubelet"]
	if !ok {
		return nil, fmt.Errorf("kubelet-config has no kubelet key")
	}
	return []byte(data), nil
}

// NodeMeta is what SetNodeMeta makes of a node: its labels and taints as a whole, and the
// annotations to set (a nil value removes one).
type NodeMeta struct {
	Labels      map[string]string
	Taints      []corev1.Taint
	Annotations map[string]*string
}

// SetNodeMeta replaces a node's labels and taints with m's, and sets m's annotations, in one merge
// patch guarded by the node's resourceVersion (a concurrent change makes it fail, not lose either).
func (c *Client) SetNodeMeta(ctx context.Context, node, resourceVersion string, m NodeMeta, removedLabels []string) error {
	labels := map[string]any{}
	for k, v := range m.Labels {
		labels[k] = v
	}
	for _, k := range removedLabels {
		labels[k] = nil
	}
	taints := m.Taints
	if taints == nil {
		taints = []corev1.Taint{}
	}
	patch, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"resourceVersion": resourceVersion, "labels": labels, "annotations": m.Annotations},
		"spec":     map[string]any{"taints": taints},
	})
	if err != nil {
		return err
	}
	return c.retryTransient(ctx, "set the labels and taints of node "+node, func(ctx context.Context) error {
		_, err := c.Kube.CoreV1().Nodes().Patch(ctx, node, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: FieldManager})
		return err
	})
}

// KubeletConfigz is the configuration a node's running kubelet reports (its /configz, through the
// apiserver's node proxy): what it really runs with, not what its file says.
func (c *Client) KubeletConfigz(ctx context.Context, node string) (map[string]any, error) {
	raw, err := c.Kube.CoreV1().RESTClient().Get().AbsPath("/api/v1/nodes", node, "proxy", "configz").DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the configuration of node %s's kubelet: %w", node, err)
	}
	var out struct {
		KubeletConfig map[string]any `json:"kubeletconfig"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, fmt.Errorf("node %s's kubelet configz: %w", node, err)
	}
	return out.KubeletConfig, nil
}

// KubeProxyConfig is the KubeProxyConfiguration (YAML) kubeadm stores for kube-proxy
// (kube-system/kube-proxy, config.conf).
func (c *Client) KubeProxyConfig(ctx context.Context) ([]byte, error) {
	cm, err := c.Kube.CoreV1().ConfigMaps("kube-system").Get(ctx, "kube-proxy", metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("read kube-proxy's ConfigMap: %w", err)
	}
	data, ok := cm.Data["config.conf"]
	if !ok {
		return nil, fmt.Errorf("kube-proxy's ConfigMap has no config.conf")
	}
	return []byte(data), nil
}
