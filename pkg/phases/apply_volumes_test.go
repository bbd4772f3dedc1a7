package phases

import (
	"context"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	kubeadmv1beta4 "k8s.io/kubernetes/cmd/kubeadm/app/apis/kubeadm/v1beta4"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/constants"
	"installer.dev/installer/pkg/drift"
	"installer.dev/installer/pkg/kubeadm"
)

func TestClusterConfigLinesExtraVolumes(t *testing.T) {
	audit := kubeadmv1beta4.HostPathMount{Name: "audit", HostPath: "/etc/k/audit", MountPath: "/etc/audit", ReadOnly: true}
	moved := audit
	moved.HostPath, moved.PathType = "/srv/audit", corev1.HostPathDirectoryOrCreate
	logs := kubeadmv1beta4.HostPathMount{Name: "logs", HostPath: "/var/log/k", MountPath: "/var/log/k"}
	have := &kubeadmv1beta4.ClusterConfiguration{
		APIServer:         kubeadmv1beta4.APIServer{ControlPlaneComponent: kubeadmv1beta4.ControlPlaneComponent{ExtraVolumes: []kubeadmv1beta4.HostPathMount{audit}}},
		ControllerManager: kubeadmv1beta4.ControlPlaneComponent{ExtraVolumes: []kubeadmv1beta4.HostPathMount{logs}},
	}
	want := &kubeadmv1beta4.ClusterConfiguration{
		APIServer: kubeadmv1beta4.APIServer{ControlPlaneComponent: kubeadmv1beta4.ControlPlaneComponent{ExtraVolumes: []kubeadmv1beta4.HostPathMount{moved}}},
		Scheduler: kubeadmv1beta4.ControlPlaneComponent{ExtraVolumes: []kubeadmv1beta4.HostPathMount{logs}},
	}
	got := clusterConfigLines(want, have)
	w := []string{
		"~ apiServer.extraVolumes audit: /srv/audit -> /etc/audit (ro, DirectoryOrCreate) (now /etc/k/audit -> /etc/audit (ro))",
		"- controllerManager.extraVolumes logs: /var/log/k -> /var/log/k",
		"+ scheduler.extraVolumes logs: /var/log/k -> /var/log/k",
	}
	if !slices.Equal(got, w) {
		t.Errorf("clusterConfigLines =\n%q\nwant\n%q", got, w)
	}
	if got := clusterConfigLines(want, want); len(got) != 0 {
		t.Errorf("the same configuration differs: %q", got)
	}
}

// A kube-apiserver manifest as kubeadm rendered it from a stored configuration with one extra
// volume, logs.
const storedAPIServerPod = `apiVersion: v1
kind: Pod
metadata: {name: kube-apiserver, namespace: kube-system}
spec:
  containers:
  - name: kube-apiserver
    image: registry.k8s.io/kube-apiserver:v1.36.5
    volumeMounts:
    - {mountPath: /etc/kubernetes/pki, name: k8s-certs, readOnly: true}
    - {mountPath: /var/log/k, name: logs}
  volumes:
  - {name: k8s-certs, hostPath: {path: /etc/kubernetes/pki, type: DirectoryOrCreate}}
  - {name: logs, hostPath: {path: /var/log/k, type: ""}}
`

// TestApplyObserveExtraVolumes: on a simulated control plane, apply sees that the kube-apiserver
// manifest lacks the spec's new extra volume and still holds the one the spec dropped, and has
// kubeadm render that component again; kubeadm-config is rewritten with the same difference.
func TestApplyObserveExtraVolumes(t *testing.T) {
	audit := v1alpha1.HostPathMount{Name: "audit", HostPath: "/etc/kubernetes/audit", MountPath: "/etc/kubernetes/audit", ReadOnly: true, PathType: "DirectoryOrCreate"}
	spec := createSpecWith(t, func(s *v1alpha1.ClusterSpec) { s.APIServer.ExtraVolumes = []v1alpha1.HostPathMount{audit} })
	sc := runningCluster(t, spec, "v1.36.5")
	sc.Host("cp1").SetFile(constants.StaticPodDir+"/kube-apiserver.yaml", []byte(storedAPIServerPod), 0o600, "root:root")
	r := sc.newRun(t, nil)
	ctx := context.Background()
	if err := connectHosts(ctx, r, nil); err != nil {
		t.Fatal(err)
	}
	cp1, err := r.firstControlPlane()
	if err != nil {
		t.Fatal(err)
	}
	want, err := kubeadm.ClusterConfiguration(&r.Cluster.Spec)
	if err != nil {
		t.Fatal(err)
	}
	have := want.DeepCopy()
	have.APIServer.ExtraVolumes = []kubeadmv1beta4.HostPathMount{{Name: "logs", HostPath: "/var/log/k", MountPath: "/var/log/k"}}

	d := &ApplyDiff{controlPlanes: map[string]*controlPlaneDrift{}}
	if err := (ApplyObserve{Diff: d}).controlPlane(ctx, cp1, want, have); err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(d.Changes, func(c drift.Change) bool { return c.Component == "kube-apiserver" })
	if i < 0 {
		t.Fatalf("no kube-apiserver change in %+v", d.Changes)
	}
	wantLines := []string{
		"+ volume audit /etc/kubernetes/audit -> /etc/kubernetes/audit (ro, DirectoryOrCreate)",
		"- volume logs /var/log/k -> /var/log/k",
	}
	if c := d.Changes[i]; c.Host != "cp1" || !slices.Equal(c.Lines, wantLines) {
		t.Errorf("kube-apiserver change on %s:\n%q\nwant on cp1:\n%q", c.Host, c.Lines, wantLines)
	}
	if cp := d.controlPlanes["cp1"]; cp == nil || !slices.Contains(cp.components, "apiserver") {
		t.Errorf("kube-apiserver is not rendered again: %+v", cp)
	}
	if got, w := clusterConfigLines(want, have), []string{
		"+ apiServer.extraVolumes audit: /etc/kubernetes/audit -> /etc/kubernetes/audit (ro, DirectoryOrCreate)",
		"- apiServer.extraVolumes logs: /var/log/k -> /var/log/k",
	}; !slices.Equal(got, w) {
		t.Errorf("clusterConfigLines =\n%q\nwant\n%q", got, w)
	}
	// The documents kubeadm renders the component from carry the new volume.
	f, err := kubeadm.Reconfigure(&r.Cluster.Spec, cp1.Spec)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(f.Content), "  extraVolumes:\n  - hostPath: /etc/kubernetes/audit\n    mountPath: /etc/kubernetes/audit\n    name: audit\n") {
		t.Errorf("%s lacks the extra volume:\n%s", f.Path, f.Content)
	}
}
