package kubeapi

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"installer.dev/installer/pkg/constants"
)

// CordonedBy is the annotation the installer puts on a node it cordons, naming why ("upgrade"). A
// later run uncordons only nodes carrying it, never one an administrator cordoned.
const CordonedBy = "installer.dev/cordoned-by"

// mirrorPodAnnotation marks the API copy of a static pod; such pods cannot be evicted.
const mirrorPodAnnotation = "kubernetes.io/config.mirror"

// Cordon marks a node unschedulable and records who did it.
func (c *Client) Cordon(ctx context.Context, node, by string) error {
	patch, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"annotations": map[string]string{CordonedBy: by}},
		"spec":     map[string]any{"unschedulable": true},
	})
	if err != nil {
		return err
	}
	return c.patchNode(ctx, "cordon "+node, node, patch)
}

// Uncordon makes a node schedulable again and removes the installer's annotation.
func (c *Client) Uncordon(ctx context.Context, node string) error {
	patch := []byte(`{"metadata":{"annotations":{"` + CordonedBy + `":null}},"spec":{"unschedulable":null}}`)
	return c.patchNode(ctx, "uncordon "+node, node, patch)
}

// patchNode applies a strategic merge patch to a node. The apiserver may be restarting (a single
// control plane right after its kubelet re-created the static pods), so an answer that is not the
// API's final word is retried for up to writeRetry.
func (c *Client) patchNode(ctx context.Context, what, node string, patch []byte) error {
	return c.retryTransient(ctx, what, func(ctx context.Context) error {
		_, err := c.Kube.CoreV1().Nodes().Patch(ctx, node, types.StrategicMergePatchType, patch, metav1.PatchOptions{FieldManager: FieldManager})
		return err
	})
}

// DrainOptions tune Drain.
type DrainOptions struct {
	// Timeout bounds the whole drain; a pod a PodDisruptionBudget still protects then fails it.
	Timeout time.Duration
	// Force also deletes pods no controller manages (they are gone for good).
	Force bool
	// Interval between eviction attempts (default 2 s).
	Interval time.Duration
	// Report is told, once per pod, what blocks its eviction.
	Report func(msg string)
}

// Drain evicts every pod from a cordoned node through the Eviction API, so PodDisruptionBudgets are
// honoured, and waits until they are gone. DaemonSet pods and static pods stay (kubectl drain
// --ignore-daemonsets); finished pods are deleted. Pods no controller manages are refused up front
// unless Force, because nothing would re-create them.
//
// It returns what it set out to do: the pods on the node when it began.
func (c *Client) Drain(ctx context.Context, node string, o DrainOptions) (DrainPlan, error) {
	if o.Interval == 0 {
		o.Interval = 2 * time.Second
	}
	plan, err := c.PlanDrain(ctx, node, o.Force)
	if err != nil {
		return plan, err
	}
	return plan, c.evictAll(ctx, node, o)
}

// evictAll evicts or deletes the node's pods until none is left but DaemonSet and static pods.
func (c *Client) evictAll(ctx context.Context, node string, o DrainOptions) error {
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	blocked := map[string]string{} // pod -> why, reported once
	for {
		pods, err := c.podsOn(ctx, node)
		if err != nil && ctx.Err() == nil {
			// The apiserver may be restarting (a control plane's upgrade): try again.
			pods = nil
		}
		var left []string
		for _, p := range pods {
			key := p.Namespace + "/" + p.Name
			switch kindOf(p) {
			case podDaemon, podStatic:
				continue
			}
			left = append(left, key)
			if p.DeletionTimestamp != nil {
				continue // on its way out
			}
			if why := c.remove(ctx, p, o.Force); why != "" {
				if blocked[key] != why {
					blocked[key] = why
					if o.Report != nil {
						o.Report(fmt.Sprintf("drain %s: pod %s: %s; retrying until %s", node, key, why, o.Timeout))
					}
				}
			} else {
				delete(blocked, key)
			}
		}
		if err == nil && len(left) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("drain %s: not done within %s; still on the node: %s", node, o.Timeout, describeLeft(left, blocked))
		case <-time.After(o.Interval):
		}
	}
}

// DrainPlan is what a drain of one node does, pod by pod ("namespace/name", sorted): the
// classification Drain acts on, and what a dry run shows.
type DrainPlan struct {
	// Evict are the pods evicted through the Eviction API (PodDisruptionBudgets may hold them).
	Evict []string
	// Delete are finished pods and, with force, pods no controller manages: deleted outright.
	Delete []string
}

// PlanDrain reads what Drain would do on node, and refuses as Drain does when pods no controller
// manages would be lost without force. DaemonSet and static pods stay.
func (c *Client) PlanDrain(ctx context.Context, node string, force bool) (DrainPlan, error) {
	var plan DrainPlan
	pods, err := c.podsOn(ctx, node)
	if err != nil {
		return plan, err
	}
	var unmanaged []string
	for _, p := range pods {
		key := p.Namespace + "/" + p.Name
		switch kind := kindOf(p); {
		case kind == podDaemon, kind == podStatic:
		case kind == podFinished, kind == podUnmanaged && force:
			plan.Delete = append(plan.Delete, key)
		case kind == podUnmanaged:
			unmanaged = append(unmanaged, key)
		default:
			plan.Evict = append(plan.Evict, key)
		}
	}
	if len(unmanaged) > 0 {
		sort.Strings(unmanaged)
		return plan, fmt.Errorf("drain %s: pods not managed by a controller would be lost: %s (delete them, or use --force)", node, strings.Join(unmanaged, ", "))
	}
	sort.Strings(plan.Evict)
	sort.Strings(plan.Delete)
	return plan, nil
}

// Describe says what the drain of node does, in one line (plans and logs).
func (p DrainPlan) Describe(node string, timeout time.Duration) string {
	var what []string
	if len(p.Evict) > 0 {
		what = append(what, "evict "+strings.Join(p.Evict, ", "))
	}
	if len(p.Delete) > 0 {
		what = append(what, "delete "+strings.Join(p.Delete, ", "))
	}
	if len(what) == 0 {
		what = []string{"no pods to evict"}
	}
	return fmt.Sprintf("drain node %s (%s; timeout %s)", node, strings.Join(what, "; "), timeout)
}

func describeLeft(left []string, blocked map[string]string) string {
	if len(left) == 0 {
		return "(could not list pods)"
	}
	sort.Strings(left)
	out := make([]string, 0, len(left))
	for _, k := range left {
		if why := blocked[k]; why != "" {
			out = append(out, k+" ("+why+")")
		} else {
			out = append(out, k+" (terminating)")
		}
	}
	return strings.Join(out, ", ")
}

// remove evicts (or, for finished and forced unmanaged pods, deletes) one pod. It returns why the
// pod cannot go yet, "" when the request was accepted.
func (c *Client) remove(ctx context.Context, p corev1.Pod, force bool) string {
	kind := kindOf(p)
	if kind == podFinished || (kind == podUnmanaged && force) {
		err := c.Kube.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return "delete: " + err.Error()
		}
		return ""
	}
	ev := &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace}}
	err := c.Kube.PolicyV1().Evictions(p.Namespace).Evict(ctx, ev)
	switch {
	case err == nil, apierrors.IsNotFound(err):
		return ""
	case apierrors.IsTooManyRequests(err):
		return c.budgetsBlocking(ctx, p)
	}
	return "eviction: " + err.Error()
}

// budgetsBlocking names the PodDisruptionBudgets that select the pod, with their numbers.
func (c *Client) budgetsBlocking(ctx context.Context, p corev1.Pod) string {
	pdbs, err := c.Kube.PolicyV1().PodDisruptionBudgets(p.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return "blocked by a PodDisruptionBudget"
	}
	var names []string
	for _, b := range pdbs.Items {
		sel, err := metav1.LabelSelectorAsSelector(b.Spec.Selector)
		if err != nil || !sel.Matches(labels.Set(p.Labels)) {
			continue
		}
		limit := ""
		switch {
		case b.Spec.MinAvailable != nil:
			limit = "minAvailable " + b.Spec.MinAvailable.String()
		case b.Spec.MaxUnavailable != nil:
			limit = "maxUnavailable " + b.Spec.MaxUnavailable.String()
		}
		names = append(names, fmt.Sprintf("PodDisruptionBudget %s/%s (%s, %d of %d healthy, %d disruptions allowed)",
			b.Namespace, b.Name, limit, b.Status.CurrentHealthy, b.Status.ExpectedPods, b.Status.DisruptionsAllowed))
	}
	if len(names) == 0 {
		return "blocked by a PodDisruptionBudget"
	}
	sort.Strings(names)
	return "blocked by " + strings.Join(names, ", ")
}

func (c *Client) podsOn(ctx context.Context, node string) ([]corev1.Pod, error) {
	list, err := c.Kube.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("spec.nodeName", node).String()})
	if err != nil {
		return nil, fmt.Errorf("list pods on %s: %w", node, err)
	}
	// Fake clients ignore field selectors; filter again.
	out := list.Items[:0]
	for _, p := range list.Items {
		if p.Spec.NodeName == node {
			out = append(out, p)
		}
	}
	return out, nil
}

type podKind int

const (
	podManaged podKind = iota
	podDaemon
	podStatic
	podFinished
	podUnmanaged
)

func kindOf(p corev1.Pod) podKind {
	if _, ok := p.Annotations[mirrorPodAnnotation]; ok {
		return podStatic
	}
	if c := metav1.GetControllerOf(&p); c != nil && c.Kind == "DaemonSet" {
		return podDaemon
	}
	if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		return podFinished
	}
	if metav1.GetControllerOf(&p) == nil {
		return podUnmanaged
	}
	return podManaged
}

// NodeVersion waits until a node is Ready and its kubelet reports version.
func (c *Client) NodeVersion(ctx context.Context, node, version string, timeout time.Duration) error {
	return Poll(ctx, pollInterval, timeout, "node "+node+" Ready at "+version, func(ctx context.Context) (bool, string, error) {
		n, err := c.Kube.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
		if err != nil {
			return false, err.Error(), nil
		}
		v := n.Status.NodeInfo.KubeletVersion
		return v == version && nodeReady(*n), fmt.Sprintf("kubelet %s, ready %v", v, nodeReady(*n)), nil
	})
}

// ControlPlaneHealthy waits until the static pods of every named control plane (etcd, apiserver,
// controller-manager, scheduler) run and are Ready.
func (c *Client) ControlPlaneHealthy(ctx context.Context, nodes []string, timeout time.Duration) error {
	return Poll(ctx, pollInterval, timeout, "control-plane pods running", func(ctx context.Context) (bool, string, error) {
		var waiting []string
		for _, n := range nodes {
			for _, comp := range constants.ControlPlaneComponents {
				p, err := c.Kube.CoreV1().Pods("kube-system").Get(ctx, comp+"-"+n, metav1.GetOptions{})
				if err != nil {
					waiting = append(waiting, comp+"-"+n+" ("+shortErr(err)+")")
					continue
				}
				if p.Status.Phase != corev1.PodRunning || !podReady(*p) {
					waiting = append(waiting, fmt.Sprintf("%s (%s, not ready)", p.Name, p.Status.Phase))
				}
			}
		}
		return len(waiting) == 0, "waiting for " + strings.Join(waiting, ", "), nil
	})
}

func podReady(p corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func shortErr(err error) string {
	if apierrors.IsNotFound(err) {
		return "not found"
	}
	return err.Error()
}

// DaemonSetImageTag returns the tag of a DaemonSet's first container image ("" when the DaemonSet or
// the tag is missing): kube-proxy's DaemonSet tells which version kubeadm last applied its add-ons at.
func (c *Client) DaemonSetImageTag(ctx context.Context, namespace, name string) (string, error) {
	ds, err := c.Kube.AppsV1().DaemonSets(namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	if len(ds.Spec.Template.Spec.Containers) == 0 {
		return "", nil
	}
	return ImageTag(ds.Spec.Template.Spec.Containers[0].Image), nil
}

// ImageTag is the tag of an image reference ("" when it has none or only a digest).
func ImageTag(image string) string {
	if i := strings.IndexByte(image, '@'); i >= 0 {
		image = image[:i]
	}
	i := strings.LastIndexByte(image, ':')
	if i < 0 || strings.Contains(image[i:], "/") {
		return ""
	}
	return image[i+1:]
}

// NodesAlive waits until every named node is Ready and its kubelet renewed its Lease within
// staleAfter. The Ready condition alone lags: a controller-manager that kubeadm just restarted
// keeps a dead node Ready for its whole grace period again (measured in the lab during
// `kubeadm upgrade apply`), while the Lease stops moving the moment the kubelet is gone.
func (c *Client) NodesAlive(ctx context.Context, names []string, staleAfter, timeout time.Duration) error {
	return Poll(ctx, pollInterval, timeout, "nodes ready", func(ctx context.Context) (bool, string, error) {
		nodes, err := c.Kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			// What the last list showed stays the news; a failed list (the apiserver restarting, a
			// request cut short by the deadline) is reported after it.
			return false, "", Transient(fmt.Errorf("list nodes: %w", err))
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
				continue
			case !nodeReady(n):
				waiting = append(waiting, name+" (not Ready)")
				continue
			}
			lease, err := c.Kube.CoordinationV1().Leases("kube-node-lease").Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				waiting = append(waiting, name+" (lease: "+shortErr(err)+")")
				continue
			}
			if lease.Spec.RenewTime == nil || time.Since(lease.Spec.RenewTime.Time) > staleAfter {
				waiting = append(waiting, name+" (not Ready: its kubelet stopped renewing its lease)")
			}
		}
		sort.Strings(waiting)
		return len(waiting) == 0, "waiting for " + strings.Join(waiting, ", "), nil
	})
}
