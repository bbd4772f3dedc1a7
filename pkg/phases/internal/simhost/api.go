package simhost

import (
	"fmt"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// API is a fake cluster API (client-go's fake clientset) that the simulated hosts keep current: a
// kubelet that starts reports its node's version and readiness, `kubeadm upgrade` rewrites
// kubeadm's ConfigMap and the add-ons. Evictions delete their pod at once (its replacement is not
// simulated) unless BlockEvictions makes them answer 429 as a PodDisruptionBudget would.
type API struct {
	*fake.Clientset
	mu      sync.Mutex
	blocked string
}

var (
	podsGVR       = schema.GroupVersionResource{Version: "v1", Resource: "pods"}
	nodesGVR      = schema.GroupVersionResource{Version: "v1", Resource: "nodes"}
	configMapsGVR = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	daemonSetsGVR = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "daemonsets"}
)

// StartAPI gives the cluster a fake API holding a running cluster at version: a Ready node with a
// fresh Lease per host, the control planes' mirror pods, a kube-proxy pod per node and a web pod
// (of a ReplicaSet, label app=web) per worker, kubeadm's ConfigMap, kube-proxy's DaemonSet and an
// available CoreDNS Deployment. Call it after adding the hosts.
func (c *Cluster) StartAPI(version string) (*API, error) {
	a := &API{Clientset: fake.NewClientset()}
	a.PrependReactor("create", "pods", a.evict)
	ctrl := true
	var objs []runtime.Object
	for _, h := range c.Hosts() {
		objs = append(objs,
			&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: h.name},
				Status: corev1.NodeStatus{NodeInfo: corev1.NodeSystemInfo{KubeletVersion: version},
					Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}}},
			&coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: h.name, Namespace: "kube-node-lease"},
				Spec: coordinationv1.LeaseSpec{RenewTime: &metav1.MicroTime{Time: time.Now().Add(time.Hour)}}})
		if h.controlPlane {
			for _, comp := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"} {
				objs = append(objs, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: comp + "-" + h.name, Namespace: "kube-system",
					Annotations: map[string]string{"kubernetes.io/config.mirror": "x"}}, Spec: corev1.PodSpec{NodeName: h.name},
					Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}}})
			}
		}
		ds := metav1.OwnerReference{APIVersion: "apps/v1", Kind: "DaemonSet", Name: "kube-proxy", UID: "ds", Controller: &ctrl}
		objs = append(objs, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "kube-proxy-" + h.name, Namespace: "kube-system",
			OwnerReferences: []metav1.OwnerReference{ds}}, Spec: corev1.PodSpec{NodeName: h.name}})
		if !h.controlPlane {
			rs := metav1.OwnerReference{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-1", UID: "rs", Controller: &ctrl}
			objs = append(objs, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-" + h.name, Namespace: "default",
				Labels: map[string]string{"app": "web"}, OwnerReferences: []metav1.OwnerReference{rs}}, Spec: corev1.PodSpec{NodeName: h.name},
				Status: corev1.PodStatus{Phase: corev1.PodRunning}})
		}
	}
	replicas := int32(2)
	objs = append(objs, kubeadmConfig(version), kubeProxy(version),
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "coredns", Namespace: "kube-system"},
			Spec:   appsv1.DeploymentSpec{Replicas: &replicas},
			Status: appsv1.DeploymentStatus{Replicas: 2, UpdatedReplicas: 2, AvailableReplicas: 2}})
	for _, o := range objs {
		if err := a.Tracker().Add(o); err != nil {
			return nil, err
		}
	}
	c.API = a
	return a, nil
}

func kubeadmConfig(version string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "kubeadm-config", Namespace: "kube-system"},
		Data: map[string]string{"ClusterConfiguration": "kubernetesVersion: " + version + "\n"}}
}

func kubeProxy(version string) *appsv1.DaemonSet {
	return &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "kube-proxy", Namespace: "kube-system"},
		Spec: appsv1.DaemonSetSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "kube-proxy", Image: "registry.k8s.io/kube-proxy:" + version}}}}}}
}

// BlockEvictions makes evictions of pods labelled app=value answer 429 ("" lets them pass again).
func (a *API) BlockEvictions(value string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.blocked = value
}

func (a *API) evict(act k8stesting.Action) (bool, runtime.Object, error) {
	if act.GetSubresource() != "eviction" {
		return false, nil, nil
	}
	ev := act.(k8stesting.CreateAction).GetObject().(*policyv1.Eviction)
	obj, err := a.Tracker().Get(podsGVR, ev.Namespace, ev.Name)
	if err != nil {
		return true, nil, err
	}
	a.mu.Lock()
	blocked := a.blocked
	a.mu.Unlock()
	if blocked != "" && obj.(*corev1.Pod).Labels["app"] == blocked {
		return true, nil, apierrors.NewTooManyRequests("Cannot evict pod as it would violate the pod's disruption budget.", 10)
	}
	return true, nil, a.Tracker().Delete(podsGVR, ev.Namespace, ev.Name)
}

// setNode changes a node the way its kubelet reports itself.
func (a *API) setNode(name, version string, ready bool) {
	obj, err := a.Tracker().Get(nodesGVR, "", name)
	if err != nil {
		return // not a registered node
	}
	n := obj.(*corev1.Node).DeepCopy()
	n.Status.NodeInfo.KubeletVersion = version
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: st}}
	if err := a.Tracker().Update(nodesGVR, n, ""); err != nil {
		panic(err)
	}
}

// kubeadmUpgraded is what `kubeadm upgrade apply` (config: kubeadm's ConfigMap) and the last
// control plane's upgrade (addons: kube-proxy) change in the cluster.
func (a *API) kubeadmUpgraded(version string, config, addons bool) {
	if config {
		if err := a.Tracker().Update(configMapsGVR, kubeadmConfig(version), "kube-system"); err != nil {
			panic(err)
		}
	}
	if addons {
		if err := a.Tracker().Update(daemonSetsGVR, kubeProxy(version), "kube-system"); err != nil {
			panic(err)
		}
	}
}

// Mark is where the API's transcript is now.
func (a *API) Mark() int { return len(a.Actions()) }

// Changes is every change asked of the API since mark, one line each: the verb, the resource
// and what identifies the change (a patch's body, an eviction's or deletion's pod).
func (a *API) Changes(mark int) []string {
	var out []string
	for _, act := range a.Actions()[mark:] {
		switch act.GetVerb() {
		case "get", "list", "watch":
			continue
		}
		what := ""
		switch x := act.(type) {
		case k8stesting.PatchAction:
			what = x.GetName() + " " + string(x.GetPatch())
		case k8stesting.CreateAction:
			if ev, ok := x.GetObject().(*policyv1.Eviction); ok {
				what = ev.Namespace + "/" + ev.Name
			}
		case k8stesting.DeleteAction:
			what = x.GetNamespace() + "/" + x.GetName()
		}
		out = append(out, fmt.Sprintf("%s %s %s", act.GetVerb(), strings.Trim(act.GetResource().Resource+"/"+act.GetSubresource(), "/"), what))
	}
	return out
}
