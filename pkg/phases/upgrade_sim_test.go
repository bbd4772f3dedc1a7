package phases

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
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

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/facts"
	"installer.dev/installer/pkg/kubeapi"
	"installer.dev/installer/pkg/manifests"
	"installer.dev/installer/pkg/pki"
	"installer.dev/installer/pkg/scripts"
	"installer.dev/installer/pkg/ssh"
	"installer.dev/installer/pkg/ssh/sshtest"
	"installer.dev/installer/pkg/state"
)

// upHost simulates a node of a running kubeadm cluster for the upgrade workflow: installed tools,
// the control-plane static pods' version, the kubelet that runs and whether `kubeadm upgrade`
// rewrote its flags. Like the real 1.35 kubelet, a kubelet of a newer minor started on the flags
// an older kubeadm wrote crash-loops: its node never reports the new version.
type upHost struct {
	*sshtest.Fake
	name, ip string
	cp       bool
	cluster  *upCluster

	mu           sync.Mutex
	kube         map[string]string // installed binaries
	manifests    string            // control-plane static pods' tag ("" on workers)
	running      string            // kubelet version running
	flagsVersion string            // the kubeadm version that last wrote kubeadm-flags.env
	crashLoop    bool
	kubeletStart time.Time
	failOn       string
}

// upCluster is the simulated cluster: hosts plus a fake API server.
type upCluster struct {
	spec  *v1alpha1.Cluster
	hosts map[string]*upHost
	order []string
	api   *fake.Clientset
	in    manifests.Inputs
	pki   *pki.Bundle
	// failEvictions makes evictions of pods with this label value of "app" answer 429.
	mu            sync.Mutex
	failEvictions string
}

func newUpCluster(t *testing.T, version string, names ...string) *upCluster {
	t.Helper()
	c := &v1alpha1.Cluster{APIVersion: v1alpha1.APIVersion, Kind: v1alpha1.Kind, Metadata: v1alpha1.ObjectMeta{Name: "sim"},
		Spec: v1alpha1.ClusterSpec{
			KubernetesVersion: "v1.35.8",
			Install:           v1alpha1.Install{Source: v1alpha1.InstallBinary, BinaryMirror: "http://mirror:8080", ArtifactMirror: "http://mirror:8080"},
			// Server-side apply needs a real apiserver: the lab proves the CNI/CCM re-apply.
			CNI: v1alpha1.CNI{Plugin: v1alpha1.CNINone},
		}}
	for i, n := range names {
		role := v1alpha1.RoleWorker
		if strings.HasPrefix(n, "cp") {
			role = v1alpha1.RoleControlPlane
		}
		c.Spec.Hosts = append(c.Spec.Hosts, v1alpha1.Host{Name: n, Address: fmt.Sprintf("10.0.0.%d", 11+i), Role: role})
	}
	c.Default()
	if errs, _ := v1alpha1.Validate(c); len(errs) > 0 {
		t.Fatal(errs.ToAggregate())
	}
	in, err := manifests.LoadInputs(context.Background(), &c.Spec, manifests.LoadOptions{VRRPPassword: "vrrppass", HashKey: []byte("k")})
	if err != nil {
		t.Fatal(err)
	}
	uc := &upCluster{spec: c, hosts: map[string]*upHost{}, order: names, in: in, pki: testPKI(t)}
	uc.api = fake.NewClientset()
	uc.api.PrependReactor("create", "pods", uc.evict)
	for _, h := range c.Spec.Hosts {
		cp := h.Role == v1alpha1.RoleControlPlane
		uh := &upHost{Fake: sshtest.NewFake(h.Name), name: h.Name, ip: h.Address, cp: cp, cluster: uc,
			kube: map[string]string{"kubeadm": version, "kubelet": version, "kubectl": version}, running: version, flagsVersion: version}
		if cp {
			uh.manifests = version
		}
		uh.SetFile("/etc/kubernetes/admin.conf", []byte(testKubeconfig), 0o600, "root:root")
		seedPKI(uh.Fake, uc.pki, cp)
		// What create left: the kubelet's unit and drop-ins as rendered.
		files, err := manifests.RenderHostFiles(manifests.HostInput{Spec: &c.Spec, Host: h, Facts: facts.Host{Name: h.Name, Arch: "amd64", CgroupVersion: 2}, Inputs: in})
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files.Kubelet {
			mode := f.Mode
			if mode == 0 {
				mode = 0o644
			}
			uh.SetFile(f.Path, f.Content, mode, "root:root")
		}
		uh.On(sshtest.Any()).Do(uh.handle)
		uc.hosts[h.Name] = uh
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: h.Name},
			Status: corev1.NodeStatus{NodeInfo: corev1.NodeSystemInfo{KubeletVersion: version},
				Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}}}
		mustCreate(t, uc.api.Tracker().Add(node))
		mustCreate(t, uc.api.Tracker().Add(&coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: h.Name, Namespace: "kube-node-lease"},
			Spec: coordinationv1.LeaseSpec{RenewTime: &metav1.MicroTime{Time: time.Now().Add(time.Hour)}}}))
		if cp {
			for _, comp := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"} {
				mustCreate(t, uc.api.Tracker().Add(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: comp + "-" + h.Name, Namespace: "kube-system",
					Annotations: map[string]string{"kubernetes.io/config.mirror": "x"}}, Spec: corev1.PodSpec{NodeName: h.Name},
					Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}}}))
			}
		}
		ds := metav1.OwnerReference{APIVersion: "apps/v1", Kind: "DaemonSet", Name: "kube-proxy", UID: "ds", Controller: ptrTrue()}
		mustCreate(t, uc.api.Tracker().Add(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "kube-proxy-" + h.Name, Namespace: "kube-system",
			OwnerReferences: []metav1.OwnerReference{ds}}, Spec: corev1.PodSpec{NodeName: h.Name}}))
		if !cp {
			rs := metav1.OwnerReference{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-1", UID: "rs", Controller: ptrTrue()}
			mustCreate(t, uc.api.Tracker().Add(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-" + h.Name, Namespace: "default",
				Labels: map[string]string{"app": "web"}, OwnerReferences: []metav1.OwnerReference{rs}}, Spec: corev1.PodSpec{NodeName: h.Name},
				Status: corev1.PodStatus{Phase: corev1.PodRunning}}))
		}
	}
	mustCreate(t, uc.api.Tracker().Add(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "kubeadm-config", Namespace: "kube-system"},
		Data: map[string]string{"ClusterConfiguration": "kubernetesVersion: " + version + "\n"}}))
	mustCreate(t, uc.api.Tracker().Add(&appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "kube-proxy", Namespace: "kube-system"},
		Spec: appsv1.DaemonSetSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "kube-proxy", Image: "registry.k8s.io/kube-proxy:" + version}}}}}}))
	replicas := int32(2)
	mustCreate(t, uc.api.Tracker().Add(&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "coredns", Namespace: "kube-system"},
		Spec:   appsv1.DeploymentSpec{Replicas: &replicas},
		Status: appsv1.DeploymentStatus{Replicas: 2, UpdatedReplicas: 2, AvailableReplicas: 2}}))
	return uc
}

const testKubeconfig = `apiVersion: v1
kind: Config
clusters: [{name: sim, cluster: {server: "https://10.0.0.11:6443"}}]
users: [{name: admin, user: {token: sim}}]
contexts: [{name: sim, context: {cluster: sim, user: admin}}]
current-context: sim
`

func ptrTrue() *bool { b := true; return &b }

func mustCreate(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

var snapshotTime = regexp.MustCompile(`[0-9]{8}T[0-9]{6}\.[0-9]{3}Z`)

var podsGVR = schema.GroupVersionResource{Version: "v1", Resource: "pods"}

// evict answers the Eviction API: the pod goes at once (its replacement is not simulated), unless
// evictions of its app are made to fail with 429 as a PodDisruptionBudget would.
func (uc *upCluster) evict(a k8stesting.Action) (bool, runtime.Object, error) {
	if a.GetSubresource() != "eviction" {
		return false, nil, nil
	}
	ev := a.(k8stesting.CreateAction).GetObject().(*policyv1.Eviction)
	obj, err := uc.api.Tracker().Get(podsGVR, ev.Namespace, ev.Name)
	if err != nil {
		return true, nil, err
	}
	uc.mu.Lock()
	blocked := uc.failEvictions
	uc.mu.Unlock()
	if blocked != "" && obj.(*corev1.Pod).Labels["app"] == blocked {
		return true, nil, apierrors.NewTooManyRequests("Cannot evict pod as it would violate the pod's disruption budget.", 10)
	}
	return true, nil, uc.api.Tracker().Delete(podsGVR, ev.Namespace, ev.Name)
}

// setNode changes the node the way its kubelet reports itself.
func (uc *upCluster) setNode(name, version string, ready bool) {
	obj, err := uc.api.Tracker().Get(schema.GroupVersionResource{Version: "v1", Resource: "nodes"}, "", name)
	if err != nil {
		panic(err)
	}
	n := obj.(*corev1.Node).DeepCopy()
	n.Status.NodeInfo.KubeletVersion = version
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: st}}
	if err := uc.api.Tracker().Update(schema.GroupVersionResource{Version: "v1", Resource: "nodes"}, n, ""); err != nil {
		panic(err)
	}
}

// upgradeClusterObjects is what `kubeadm upgrade apply/node` does to the cluster.
func (uc *upCluster) upgradeClusterObjects(version string, config, addons bool) {
	if config {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "kubeadm-config", Namespace: "kube-system"},
			Data: map[string]string{"ClusterConfiguration": "kubernetesVersion: " + version + "\n"}}
		if err := uc.api.Tracker().Update(schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}, cm, "kube-system"); err != nil {
			panic(err)
		}
	}
	if addons {
		ds := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "kube-proxy", Namespace: "kube-system"},
			Spec: appsv1.DaemonSetSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "kube-proxy", Image: "registry.k8s.io/kube-proxy:" + version}}}}}}
		if err := uc.api.Tracker().Update(schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "daemonsets"}, ds, "kube-system"); err != nil {
			panic(err)
		}
	}
}

func (uc *upCluster) allControlPlanesAt(version string) bool {
	for _, n := range uc.order {
		if h := uc.hosts[n]; h.cp && h.manifests != version {
			return false
		}
	}
	return true
}

func (h *upHost) handle(cmd ssh.Cmd) (ssh.Result, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	line := strings.Join(cmd.Args, " ")
	if h.failOn != "" && strings.Contains(shortCommand(cmd), h.failOn) {
		h.failOn = ""
		return ssh.Result{ExitCode: 1, Stderr: []byte("injected failure")}, &ssh.CommandError{Host: h.name, ExitCode: 1, Command: "(injected)", Stderr: "injected failure"}
	}
	ok := func(out string) (ssh.Result, error) { return ssh.Result{Stdout: []byte(out)}, nil }
	a := cmd.Args
	name, args := scriptCall(cmd)
	switch {
	case name == scripts.Facts.Name:
		return ok(h.factsOutput())
	case name == scripts.FileState.Name:
		return ok(fileStateOutput(h.Fake, args[0]))
	case name == scripts.ManifestImages.Name:
		var b strings.Builder
		for _, f := range args {
			img := ""
			if h.manifests != "" {
				img = "registry.k8s.io/" + strings.TrimSuffix(filepath.Base(f), ".yaml") + ":" + h.manifests
			}
			fmt.Fprintf(&b, "%s %s\n", f, img)
		}
		return ok(b.String())
	case name == scripts.Etcd.Name && args[0] == "health":
		return ok(`[{"endpoint":"https://` + h.ip + `:2379","health":true,"took":"1ms"}]`)
	case name == scripts.Etcd.Name && args[0] == "snapshot":
		data := []byte("bbolt snapshot of " + h.name)
		h.SetFile("/var/lib/etcd/"+args[1], data, 0o600, "root:root")
		sum := sha256.Sum256(data)
		return ok(fmt.Sprintf("{\"hash\":1234,\"revision\":1188,\"totalKey\":482,\"totalSize\":%d,\"version\":\"3.6.0\"}\n\n%s\n", len(data), hex.EncodeToString(sum[:])))
	case a[0] == "rm" && a[1] == "-f":
		return ok("")
	case name == scripts.Installed.Name:
		return ok("crictl=v1.36.0\ncni=v1.9.1\nmissing=\n")
	case name == scripts.Download.Name && args[0] == "binary": // URL DEST MODE PROXY
		h.kube[filepath.Base(args[2])] = strings.Split(args[1], "/")[4] // .../release/<version>/bin/...
		return ok("")
	case line == "kubeadm upgrade plan --config "+upgradeConfigPathForTest:
		if h.kube["kubeadm"] != h.cluster.spec.Spec.KubernetesVersion {
			return ssh.Result{ExitCode: 1}, &ssh.CommandError{Host: h.name, ExitCode: 1, Stderr: "kubeadm " + h.kube["kubeadm"] + " cannot plan"}
		}
		return ok("")
	case strings.HasPrefix(line, "kubeadm upgrade apply") || strings.HasPrefix(line, "kubeadm upgrade node"):
		v := h.kube["kubeadm"]
		h.flagsVersion = v
		if h.cp {
			h.manifests = v
			apply := strings.HasPrefix(line, "kubeadm upgrade apply")
			last := h.cluster.allControlPlanesAt(v)
			h.cluster.upgradeClusterObjects(v, apply, last)
		}
		return ok("")
	case a[0] == "test" && a[1] == "-s", a[0] == "apt-mark":
		return ok("")
	case name == scripts.Apt.Name: // proxy, then apt-get's arguments
		for _, arg := range args[1:] {
			if name, v, found := strings.Cut(arg, "="); found && h.kube[name] != "" {
				h.kube[name] = "v" + strings.TrimSuffix(v, "-1.1")
			}
		}
		return ok("")
	case line == "systemctl daemon-reload":
		return ok("")
	case line == "systemctl restart kubelet":
		before := h.running
		h.running = h.kube["kubelet"]
		h.kubeletStart = time.Now()
		// kubelet ≥ 1.35 refuses the flags an older kubeadm wrote (lab-upgrade-ha.md §3.7): it
		// crash-loops, and the node goes NotReady still showing the old version.
		h.crashLoop = minorOf(h.running) > minorOf(h.flagsVersion)
		if h.crashLoop {
			h.cluster.setNode(h.name, before, false)
		} else {
			h.cluster.setNode(h.name, h.running, true)
		}
		return ok("")
	case name == scripts.KubeletPods.Name:
		return ok(fmt.Sprintf("%d\n{\"items\":[{\"createdAt\":\"%d\"}]}\n", h.kubeletStart.Unix()-1, time.Now().UnixNano()))
	case line == "curl -fsk --max-time 5 https://127.0.0.1:6443/readyz":
		return ok("ok")
	}
	return ssh.Result{}, fmt.Errorf("simulated host %s: unexpected command %s", h.name, ssh.Quote(cmd.Args))
}

const upgradeConfigPathForTest = "/etc/kubernetes/installer/upgrade.yaml"

func minorOf(v string) int {
	var maj, min, patch int
	_, _ = fmt.Sscanf(v, "v%d.%d.%d", &maj, &min, &patch)
	return min
}

func (h *upHost) factsOutput() string {
	var b strings.Builder
	sec := func(name, body string) { fmt.Fprintf(&b, "==%s\n%s", name, body) }
	sec("os-release", "ID=debian\nVERSION_ID=\"12\"\n")
	sec("arch", "x86_64\n")
	sec("hostname", h.name+"\n")
	sec("cgroupfs", "cgroup2fs\n")
	sec("init", "systemd\n")
	sec("addrs", "2: eth0    inet "+h.ip+"/24 brd x scope global eth0\n")
	sec("default-route", "default via 10.0.0.254 dev eth0\n")
	sec("product-uuid", "uuid-"+h.name+"\n")
	sec("swaps", "Filename Type Size Used Priority\n")
	sec("containerd", "containerd github.com/containerd/containerd 1.6.20~ds1 x\n")
	sec("kubelet", "Kubernetes "+h.kube["kubelet"]+"\n")
	sec("kubeadm", h.kube["kubeadm"]+"\n")
	sec("kubectl", "Client Version: "+h.kube["kubectl"]+"\n")
	if h.cluster.spec.Spec.Install.Source == v1alpha1.InstallPackage {
		pkgs := ""
		for _, n := range []string{"kubeadm", "kubelet", "kubectl"} {
			pkgs += "hi " + n + " " + strings.TrimPrefix(h.kube[n], "v") + "-1.1\n"
		}
		sec("packages", pkgs+"ii cri-tools 1.36.0-1.1\nii kubernetes-cni 1.9.1-1.1\n")
	}
	files := "/etc/kubernetes/kubelet.conf\n"
	present := []string{"/etc/kubernetes/kubelet.conf"}
	if h.cp {
		files += "/etc/kubernetes/admin.conf\n"
		present = append(present, "/etc/kubernetes/admin.conf", "/etc/kubernetes/manifests/kube-apiserver.yaml")
	}
	sec("files", files)
	b.WriteString(clusterSections(h.Fake, present))
	sec("listening", "0.0.0.0:22\n*:10250\n")
	sec("time", "")
	sec("end", "")
	return b.String()
}

// run executes the upgrade workflow against the simulated cluster.
func (uc *upCluster) run(t *testing.T, stateDir string, dryRun bool, o UpgradeOptions) (*Run, error) {
	t.Helper()
	r, err := NewRun(uc.spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.PKI, r.Inputs, r.StateDir, r.DryRun = uc.pki, uc.in, state.Dir(stateDir), dryRun
	r.Connect = func(ctx context.Context, h v1alpha1.Host) (ssh.Runner, error) { return uc.hosts[h.Name], nil }
	r.api = connectedAPI(&kubeapi.Client{Kube: uc.api})
	o.pollInterval = time.Millisecond
	_, err = Execute(context.Background(), r, Upgrade(o))
	return r, err
}

func (uc *upCluster) marks() map[string]int {
	m := map[string]int{}
	for n, h := range uc.hosts {
		m[n] = len(h.Calls())
	}
	return m
}

// transcript is what each host saw plus what the run asked of the API, long scripts shortened.
func (uc *upCluster) transcript(from map[string]int, fromActions int) string {
	var b strings.Builder
	for _, name := range uc.order {
		calls := uc.hosts[name].Calls()[from[name]:]
		fmt.Fprintf(&b, "== %s (%d calls)\n", name, len(calls))
		for _, c := range calls {
			switch c.Op {
			case "write":
				fmt.Fprintf(&b, "write %s %04o\n", c.Path, c.File.Mode)
			case "run":
				fmt.Fprintln(&b, snapshotTime.ReplaceAllString(shortCommand(c.Cmd), "<time>"))
			default:
				fmt.Fprintf(&b, "%s %s\n", c.Op, snapshotTime.ReplaceAllString(c.Path, "<time>"))
			}
		}
	}
	b.WriteString("== API changes\n")
	for _, a := range uc.api.Actions()[fromActions:] {
		switch a.GetVerb() {
		case "get", "list", "watch":
			continue
		}
		name := ""
		switch x := a.(type) {
		case k8stesting.PatchAction:
			name = x.GetName() + " " + string(x.GetPatch())
		case k8stesting.CreateAction:
			if ev, ok := x.GetObject().(*policyv1.Eviction); ok {
				name = ev.Namespace + "/" + ev.Name
			}
		case k8stesting.DeleteAction:
			name = x.GetNamespace() + "/" + x.GetName()
		}
		fmt.Fprintf(&b, "%s %s %s\n", a.GetVerb(), strings.Trim(a.GetResource().Resource+"/"+a.GetSubresource(), "/"), name)
	}
	return b.String()
}
