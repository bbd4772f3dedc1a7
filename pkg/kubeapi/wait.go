package kubeapi

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

const (
	pollInterval = time.Second
	crdWait      = 60 * time.Second
)

// UninitializedTaint is set on every node by a kubelet with --cloud-provider=external until the
// cloud-controller-manager initialises it.
const UninitializedTaint = "node.cloudprovider.kubernetes.io/uninitialized"

// NodesReady waits until every named node exists and is Ready, and, when ccm is true, carries no
// uninitialized taint and has a providerID (the CCM initialised it).
func (c *Client) NodesReady(ctx context.Context, names []string, ccm bool, timeout time.Duration) error {
	return Poll(ctx, pollInterval, timeout, "nodes ready", func(ctx context.Context) (bool, string, error) {
		nodes, err := c.Kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, "", Transient(fmt.Errorf("list nodes: %w", err)) // the apiserver may be restarting
		}
		byName := map[string]corev1.Node{}
		for _, n := range nodes.Items {
			byName[n.Name] = n
		}
		var waiting []string
		for _, name := range names {
			n, ok := byName[name]
			switch {
			case !ok:
				waiting = append(waiting, name+" (not registered)")
			case !nodeReady(n):
				waiting = append(waiting, name+" (not Ready)")
			case ccm && (hasTaint(n, UninitializedTaint) || n.Spec.ProviderID == ""):
				waiting = append(waiting, name+" (not initialised by the cloud-controller-manager)")
			}
		}
		sort.Strings(waiting)
		return len(waiting) == 0, "waiting for " + strings.Join(waiting, ", "), nil
	})
}

func nodeReady(n corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func hasTaint(n corev1.Node, key string) bool {
	for _, t := range n.Spec.Taints {
		if t.Key == key {
			return true
		}
	}
	return false
}

// DeploymentAvailable waits until a Deployment's current generation is rolled out and every
// replica is available.
func (c *Client) DeploymentAvailable(ctx context.Context, namespace, name string, timeout time.Duration) error {
	return Poll(ctx, pollInterval, timeout, "deployment "+namespace+"/"+name+" available", func(ctx context.Context) (bool, string, error) {
		d, err := c.Kube.AppsV1().Deployments(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			if apierrors.IsNotFound(err) {
				return false, "not created yet", nil
			}
			return false, "", Transient(err)
		}
		return deploymentDone(d)
	})
}

func deploymentDone(d *appsv1.Deployment) (bool, string, error) {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	s := d.Status
	state := fmt.Sprintf("%d/%d updated, %d available", s.UpdatedReplicas, want, s.AvailableReplicas)
	return s.ObservedGeneration >= d.Generation && s.UpdatedReplicas == want && s.AvailableReplicas == want && s.Replicas == want, state, nil
}

// DaemonSetReady waits until a DaemonSet runs an up-to-date, available pod on every node it targets.
func (c *Client) DaemonSetReady(ctx context.Context, namespace, name string, timeout time.Duration) error {
	return Poll(ctx, pollInterval, timeout, "daemonset "+namespace+"/"+name+" ready", func(ctx context.Context) (bool, string, error) {
		ds, err := c.Kube.AppsV1().DaemonSets(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, "", Transient(err)
		}
		s := ds.Status
		state := fmt.Sprintf("%d/%d available", s.NumberAvailable, s.DesiredNumberScheduled)
		return s.ObservedGeneration >= ds.Generation && s.DesiredNumberScheduled > 0 && s.UpdatedNumberScheduled == s.DesiredNumberScheduled && s.NumberAvailable == s.DesiredNumberScheduled, state, nil
	})
}

// SpreadDeployment restarts a Deployment whose ready pods all sit on one node while several nodes
// could run them (kubeadm's CoreDNS only prefers spreading: with an external CCM both replicas land
// on the first control plane before any worker is initialised). It reports whether it restarted.
func (c *Client) SpreadDeployment(ctx context.Context, namespace, name string) (bool, error) {
	d, err := c.Kube.AppsV1().Deployments(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return false, err
	}
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		return false, err
	}
	pods, err := c.Kube.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return false, err
	}
	nodes := map[string]bool{}
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil && p.Spec.NodeName != "" {
			nodes[p.Spec.NodeName] = true
		}
	}
	if len(pods.Items) < 2 || len(nodes) > 1 {
		return false, nil
	}
	patch := fmt.Sprintf(`{"spec":{"template":{"metadata":{"annotations":{"installer.dev/restartedAt":%q}}}}}`, time.Now().UTC().Format(time.RFC3339))
	if _, err := c.Kube.AppsV1().Deployments(namespace).Patch(ctx, name, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{FieldManager: FieldManager}); err != nil {
		return false, err
	}
	return true, nil
}
