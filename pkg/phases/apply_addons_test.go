package phases

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"installer.dev/installer/lab/testapiserver"
	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/kubeapi"
	"installer.dev/installer/pkg/manifests"
)

// addonSecret is an add-on holding a credential: the diff may name its Secret, never show it.
const addonSecret = `apiVersion: v1
kind: Namespace
metadata: {name: demo}
---
apiVersion: v1
kind: Secret
metadata: {name: creds, namespace: demo}
stringData: {token: hunter2}
`

// TestClusterFilesToApply: apply compares the files create applies, in create's order, skipped
// for create's reasons.
func TestClusterFilesToApply(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*v1alpha1.ClusterSpec)
		in     manifests.Inputs
		want   []string
	}{
		{"flannel", nil, manifests.Inputs{}, []string{"cni.yaml"}},
		{"no CNI, an add-on", func(s *v1alpha1.ClusterSpec) {
			s.CNI.Plugin = v1alpha1.CNINone
			s.Addons = []v1alpha1.Addon{{Manifest: "/srv/creds.yaml"}}
		}, manifests.Inputs{Addons: [][]byte{[]byte(addonSecret)}}, []string{"addons/01-creds.yaml"}},
		{"a cloud provider", func(s *v1alpha1.ClusterSpec) {
			s.CloudProvider = v1alpha1.CloudProvider{Name: v1alpha1.CloudHetzner, CredentialsEnv: map[string]string{"token": "HCLOUD_TOKEN"}}
		}, manifests.Inputs{CloudCredentials: map[string]string{"token": "t"}}, []string{"cni.yaml", "ccm.yaml"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := NewRun(createSpecWith(t, tc.mutate), nil)
			if err != nil {
				t.Fatal(err)
			}
			r.Inputs = tc.in
			files, err := clusterFilesToApply(r)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range files {
				got = append(got, f.Path)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("files %q, want %q", got, tc.want)
			}
		})
	}
}

// TestApplyAddonsDryRunRecords: the reconcile phase acts only on a completed observation, skips
// when nothing differs, and in a dry run records the server-side apply of each file instead of
// making it (no cluster API is reachable here).
func TestApplyAddonsDryRunRecords(t *testing.T) {
	ctx := context.Background()
	r, err := NewRun(createSpec(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	d := &ApplyDiff{}
	if _, err := Execute(ctx, r, []Phase{ApplyAddons{Diff: d}}); !errors.Is(err, errNotObserved) {
		t.Fatalf("not observed: %v, want %v", err, errNotObserved)
	}
	d.observed = true
	timings, err := Execute(ctx, r, []Phase{ApplyAddons{Diff: d}})
	if err != nil || timings[0].Skipped == "" {
		t.Fatalf("nothing differs: %+v, %v; want skipped", timings, err)
	}
	if d.addons, err = clusterFilesToApply(r); err != nil {
		t.Fatal(err)
	}
	r.DryRun = true
	if _, err := Execute(ctx, r, []Phase{ApplyAddons{Diff: d}}); err != nil {
		t.Fatal(err)
	}
	want := "apply/addons cluster: server-side apply cluster/cni.yaml (6 objects)"
	if got := apiEffects(r.Planned()); got != want {
		t.Errorf("planned:\n%s\nwant:\n%s", got, want)
	}
	if n := r.Changes()["apply/addons"]; n != 1 {
		t.Errorf("%d changes counted, want 1 (a dry run counts a planned apply per file)", n)
	}
}

// TestApplyAddonsThroughRealAPI: against a real apiserver, the observation names every object of
// cni.yaml and of an add-on as to be created (object names only: the add-on's Secret value appears
// nowhere) and creates nothing; a dry run of the reconcile phase records and applies nothing; the
// real run applies both files, after which nothing differs; a changed pod subnet then shows as the
// two flannel objects it changes, and the dry-run apply of the observation stored none of it.
func TestApplyAddonsThroughRealAPI(t *testing.T) {
	srv := testapiserver.Start(t)
	addon := filepath.Join(t.TempDir(), "creds.yaml")
	if err := os.WriteFile(addon, []byte(addonSecret), 0o600); err != nil {
		t.Fatal(err)
	}
	sc := newSimCluster(t, createSpecWith(t, func(s *v1alpha1.ClusterSpec) { s.Addons = []v1alpha1.Addon{{Manifest: addon}} }))
	c, err := kubeapi.Connect(srv.Kubeconfig, func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, srv.Addr)
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	observe := func() (*ApplyDiff, *Run) {
		t.Helper()
		r := sc.newRun(t, nil)
		r.api = connectedAPI(c)
		d := &ApplyDiff{}
		if err := (ApplyObserve{Diff: d}).addons(ctx, r, c); err != nil {
			t.Fatal(err)
		}
		d.observed = true
		return d, r
	}

	d, dry := observe()
	want := []string{
		"+ cni.yaml: Namespace kube-flannel",
		"+ cni.yaml: ServiceAccount kube-flannel/flannel",
		"+ cni.yaml: ClusterRole flannel",
		"+ cni.yaml: ClusterRoleBinding flannel",
		"+ cni.yaml: ConfigMap kube-flannel/kube-flannel-cfg",
		"+ cni.yaml: DaemonSet kube-flannel/kube-flannel-ds",
		"+ addons/01-creds.yaml: Namespace demo",
		"+ addons/01-creds.yaml: Secret demo/creds",
	}
	if len(d.Changes) != 1 || d.Changes[0].Component != clusterFilesComponent || !slices.Equal(d.Changes[0].Lines, want) {
		t.Fatalf("changes %+v, want one %q change with lines %q", d.Changes, clusterFilesComponent, want)
	}
	if len(d.addons) != 2 {
		t.Fatalf("%d files recorded, want cni.yaml and the add-on", len(d.addons))
	}
	dry.DryRun = true
	if _, err := Execute(ctx, dry, []Phase{ApplyAddons{Diff: d}}); err != nil {
		t.Fatal(err)
	}
	planned := "apply/addons cluster: server-side apply cluster/cni.yaml (6 objects)\napply/addons cluster: server-side apply cluster/addons/01-creds.yaml (2 objects)"
	if got := apiEffects(dry.Planned()); got != planned {
		t.Errorf("dry run planned:\n%s\nwant:\n%s", got, planned)
	}
	if _, err := srv.Client.CoreV1().Namespaces().Get(ctx, "kube-flannel", metav1.GetOptions{}); err == nil {
		t.Fatal("the observation or the dry run created namespace kube-flannel")
	}

	r := sc.newRun(t, nil)
	r.api = connectedAPI(c)
	if _, err := Execute(ctx, r, []Phase{ApplyAddons{Diff: d}}); err != nil {
		t.Fatal(err)
	}
	if n := r.Changes()["apply/addons"]; n != 8 {
		t.Errorf("%d objects changed, want 8", n)
	}
	if got := apiEffects(r.Performed()); got != planned {
		t.Errorf("the run made:\n%s\nthe dry run planned:\n%s", got, planned)
	}
	if s, err := srv.Client.CoreV1().Secrets("demo").Get(ctx, "creds", metav1.GetOptions{}); err != nil || string(s.Data["token"]) != "hunter2" {
		t.Fatalf("the add-on's Secret: %v", err)
	}

	d, r = observe()
	if len(d.Changes) != 0 || len(d.addons) != 0 {
		t.Fatalf("after the apply: %+v, %d files; want nothing", d.Changes, len(d.addons))
	}
	if run, why := (ApplyAddons{Diff: d}).ShouldRun(r); run || why == "" {
		t.Errorf("ShouldRun with nothing to apply: %v %q", run, why)
	}

	before, err := srv.Client.CoreV1().ConfigMaps("kube-flannel").Get(ctx, "kube-flannel-cfg", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sc.spec.Spec.Networking.PodSubnet = "10.200.0.0/16"
	d, _ = observe()
	want = []string{"~ cni.yaml: ConfigMap kube-flannel/kube-flannel-cfg", "~ cni.yaml: DaemonSet kube-flannel/kube-flannel-ds"}
	if len(d.Changes) != 1 || !slices.Equal(d.Changes[0].Lines, want) || len(d.addons) != 1 || d.addons[0].Path != "cni.yaml" {
		t.Fatalf("changed pod subnet: %+v, %d files; want lines %q for cni.yaml", d.Changes, len(d.addons), want)
	}
	after, err := srv.Client.CoreV1().ConfigMaps("kube-flannel").Get(ctx, "kube-flannel-cfg", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if after.ResourceVersion != before.ResourceVersion || strings.Contains(after.Data["net-conf.json"], "10.200.0.0") {
		t.Errorf("the observation's dry run stored the change: %s", after.Data["net-conf.json"])
	}
}
