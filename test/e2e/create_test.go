//go:build e2e

package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"installer.dev/installer/lab/images"
	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/kubeadm"
)

// TestScenario1Create: `installer create cluster` turns 3 fresh lab hosts (1 control plane, 2
// workers; flannel; the lab CCM as a custom cloud provider) into a working cluster, and a second run
// changes nothing. It asserts cluster state, not log lines.
func TestScenario1Create(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	c := startLab(ctx, t, "-n", "3")

	first := c.installer("create", "cluster")
	if first.Code != 0 {
		fatalf(t, "create cluster: exit %d\n%s", first.Code, first.Stderr)
	}
	reportTimings(t, first)

	k := c.kube()
	checkNodes(ctx, t, c, k)
	checkCoreDNS(ctx, t, k)
	checkPodNetwork(ctx, t, k, "w1", "w2")
	checkCertSANs(t, c)
	checkCertsAgainstKubeadm(t, c, "cp1", "w1", "w2")
	checkEtcdBackups(t, c)

	names := []string{"cp1", "w1", "w2"}
	before := c.managedState(names...)
	second := c.installer("create", "cluster")
	if second.Code != 0 {
		fatalf(t, "second create cluster: exit %d\n%s", second.Code, second.Stderr)
	}
	t.Logf("MEASURE second create cluster (converged): %s", second.Wall.Round(time.Millisecond))
	if n := second.TotalChanges(); n != 0 || len(second.Order) == 0 {
		errorf(t, "second run made %d changes (%v):\n%s", n, second.Changes, second.Stderr)
	}
	after := c.managedState(names...)
	for _, h := range names {
		if before[h] != after[h] {
			errorf(t, "host %s changed on the second run:\nbefore:\n%s\nafter:\n%s", h, before[h], after[h])
		}
		if !strings.Contains(before[h], "/usr/bin/kubelet") || !strings.Contains(before[h], "/etc/containerd/config.toml") {
			errorf(t, "host %s: managed files missing from the checksum list:\n%s", h, before[h])
		}
	}
	checkNoSecrets(t, c, first, second)

	// Day 2 on one control plane: its certificates renewed (the API is down while it restarts),
	// then etcd restored from a snapshot.
	renew := renewExpiringCerts(ctx, t, c, k, []string{"cp1"}, false)
	restoreScenario(ctx, t, c, k, []string{"cp1"}, false)
	checkNoSecrets(t, c, renew)

	// apply on one control plane (the API is down while its apiserver restarts).
	changed := c.specVariant("apply.yaml", applyChanges("w1"))
	applied := applyWithLoops(ctx, t, c, k, changed, false)
	checkApplied(ctx, t, c, k, []string{"cp1"}, names, "w1")
	again := c.installerSpec(changed, "apply", "--yes")
	if again.Code != 0 || !strings.Contains(again.Stdout, "no changes") {
		errorf(t, "second apply: exit %d\n%s\n%s", again.Code, again.Stdout, again.Stderr)
	}
	checkNoSecrets(t, c, applied, again)
}

// reportTimings prints the wall time, the time per phase, and the overhead ratio against the steps
// no installer can avoid doing one after another: runtime and binaries on the slowest host, kubeadm
// init, the slowest join, and the CNI until nodes are Ready.
func reportTimings(t *testing.T, r installerRun) {
	t.Helper()
	var b strings.Builder
	for _, p := range r.Order {
		fmt.Fprintf(&b, "  %-26s %8s %3d change(s)\n", p, r.Phases[p].Round(time.Millisecond), r.Changes[p])
	}
	t.Logf("MEASURE create cluster wall time %s; per phase:\n%s", r.Wall.Round(time.Millisecond), b.String())
	var unavoidable time.Duration
	for _, p := range []string{"runtime", "kubernetes", "init", "join/control-planes", "join/workers", "cni", "wait"} {
		unavoidable += r.Phases[p]
	}
	t.Logf("MEASURE unavoidable serial steps %s; installer overhead ratio %.2f (wall / unavoidable)",
		unavoidable.Round(time.Millisecond), r.Wall.Seconds()/unavoidable.Seconds())
}

// checkNodes: every node Ready, InternalIP = its host's privateAddress (not the SSH address), and
// initialised by the CCM (no uninitialized taint, providerID and zone set).
func checkNodes(ctx context.Context, t *testing.T, c *labCluster, k kubernetes.Interface) {
	t.Helper()
	nodes, err := k.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		fatal(t, err)
	}
	if len(nodes.Items) != len(c.Spec.Spec.Hosts) {
		fatalf(t, "%d nodes, want %d", len(nodes.Items), len(c.Spec.Spec.Hosts))
	}
	for _, n := range nodes.Items {
		h, ok := c.Spec.Spec.Host(n.Name)
		if !ok {
			errorf(t, "node %s is not a host of the spec", n.Name)
			continue
		}
		ready := false
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
				ready = true
			}
		}
		internal := ""
		for _, a := range n.Status.Addresses {
			if a.Type == corev1.NodeInternalIP {
				internal = a.Address
			}
		}
		if !ready || internal != h.PrivateAddress || internal == h.Address {
			errorf(t, "node %s: ready=%v InternalIP=%s, want Ready with %s (not %s)", n.Name, ready, internal, h.PrivateAddress, h.Address)
		}
		for _, taint := range n.Spec.Taints {
			if taint.Key == "node.cloudprovider.kubernetes.io/uninitialized" {
				errorf(t, "node %s still carries the uninitialized taint", n.Name)
			}
		}
		if n.Spec.ProviderID != "lab://"+n.Name || n.Labels["topology.kubernetes.io/zone"] == "" {
			errorf(t, "node %s: providerID %q zone %q; the CCM did not initialise it", n.Name, n.Spec.ProviderID, n.Labels["topology.kubernetes.io/zone"])
		}
		if n.Status.NodeInfo.KubeletVersion != c.Spec.Spec.KubernetesVersion {
			errorf(t, "node %s runs kubelet %s, want %s", n.Name, n.Status.NodeInfo.KubeletVersion, c.Spec.Spec.KubernetesVersion)
		}
		if want := wantRuntime(c); want != "" && n.Status.NodeInfo.ContainerRuntimeVersion != want {
			errorf(t, "node %s runs %s, want %s", n.Name, n.Status.NodeInfo.ContainerRuntimeVersion, want)
		}
	}
}

// wantRuntime is the runtime a node of the lab spec reports with containerd's release binaries
// ("containerd://2.3.7"); "" when the spec installs the distribution's package.
func wantRuntime(c *labCluster) string {
	if rt := c.Spec.Spec.ContainerRuntime.Containerd; rt.Source == v1alpha1.InstallBinary {
		return "containerd://" + strings.TrimPrefix(rt.Version, "v") // the CRI reports it without the v
	}
	return ""
}

func checkCoreDNS(ctx context.Context, t *testing.T, k kubernetes.Interface) {
	t.Helper()
	d, err := k.AppsV1().Deployments("kube-system").Get(ctx, "coredns", metav1.GetOptions{})
	if err != nil {
		fatal(t, err)
	}
	if d.Status.AvailableReplicas < 1 || d.Status.AvailableReplicas != *d.Spec.Replicas {
		errorf(t, "CoreDNS: %d/%d available", d.Status.AvailableReplicas, *d.Spec.Replicas)
	}
	pods, err := k.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{LabelSelector: "k8s-app=kube-dns"})
	if err != nil {
		fatal(t, err)
	}
	on := map[string]bool{}
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil {
			on[p.Spec.NodeName] = true
		}
	}
	if len(on) < 2 {
		errorf(t, "CoreDNS replicas all on %v; they should spread over the nodes", on)
	}
}

// checkPodNetwork: a pod on one worker reaches a pod on the other over the pod network, and a
// Service by its DNS name (the labnet test image, served by the lab registry).
func checkPodNetwork(ctx context.Context, t *testing.T, k kubernetes.Interface, clientNode, serverNode string) {
	t.Helper()
	ns := "e2e-net"
	if _, err := k.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		fatal(t, err)
	}
	labels := map[string]string{"app": "echo"}
	server := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "echo", Namespace: ns, Labels: labels}, Spec: corev1.PodSpec{
		NodeName:   serverNode,
		Containers: []corev1.Container{{Name: "echo", Image: images.LabnetImage, Args: []string{"serve", ":8080"}}}}}
	if _, err := k.CoreV1().Pods(ns).Create(ctx, server, metav1.CreateOptions{}); err != nil {
		fatal(t, err)
	}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "echo", Namespace: ns}, Spec: corev1.ServiceSpec{
		Selector: labels, Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}}}
	if _, err := k.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		fatal(t, err)
	}
	podIP := waitPod(ctx, t, k, ns, "echo", corev1.PodRunning).Status.PodIP
	for i, url := range []string{fmt.Sprintf("http://%s:8080/", podIP), "http://echo." + ns + ".svc.cluster.local/"} {
		name := fmt.Sprintf("client-%d", i)
		client := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: corev1.PodSpec{
			NodeName: clientNode, RestartPolicy: corev1.RestartPolicyOnFailure,
			Containers: []corev1.Container{{Name: "get", Image: images.LabnetImage, Args: []string{"get", url}}}}}
		if _, err := k.CoreV1().Pods(ns).Create(ctx, client, metav1.CreateOptions{}); err != nil {
			fatal(t, err)
		}
		waitPod(ctx, t, k, ns, name, corev1.PodSucceeded)
		logs, err := k.CoreV1().Pods(ns).GetLogs(name, &corev1.PodLogOptions{}).DoRaw(ctx)
		if err != nil || strings.TrimSpace(string(logs)) != "echo" {
			errorf(t, "%s from %s: %q, %v; want the server's host name \"echo\"", url, clientNode, logs, err)
		} else {
			t.Logf("pod on %s reached %s: %s", clientNode, url, strings.TrimSpace(string(logs)))
		}
	}
}

func waitPod(ctx context.Context, t *testing.T, k kubernetes.Interface, ns, name string, phase corev1.PodPhase) *corev1.Pod {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		p, err := k.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err == nil && p.Status.Phase == phase && (phase != corev1.PodRunning || p.Status.PodIP != "") {
			return p
		}
		if time.Now().After(deadline) {
			fatalf(t, "pod %s/%s not %s after 3m: %v %+v", ns, name, phase, err, p.Status)
		}
		time.Sleep(time.Second)
	}
}

// checkCertSANs: the API server's certificate verifies against the installer's CA for every name
// in the rendered certSANs, dialling the control plane's address (never the names themselves), and
// not for a name outside them.
func checkCertSANs(t *testing.T, c *labCluster) {
	t.Helper()
	caPEM, err := os.ReadFile(filepath.Join(c.Lab.StateDir(), "pki", "ca.crt"))
	if err != nil {
		fatal(t, err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	cp := c.Spec.Spec.ControlPlanes()[0]
	addr := net.JoinHostPort(cp.PrivateAddress, "6443")
	dial := func(name string) error {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, &tls.Config{ServerName: name, RootCAs: pool})
		if err == nil {
			conn.Close()
		}
		return err
	}
	sans := kubeadm.CertSANs(&c.Spec.Spec)
	if len(sans) < 4 {
		fatalf(t, "certSANs = %v", sans)
	}
	for _, san := range sans {
		if err := dial(san); err != nil {
			errorf(t, "certSAN %s: %v", san, err)
		}
	}
	if err := dial("not-a-san.example.com"); err == nil {
		errorln(t, "the certificate verified for a name outside certSANs")
	}
	t.Logf("apiserver certificate verified for %d certSANs: %s", len(sans), strings.Join(sans, ", "))
}
